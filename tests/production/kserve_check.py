"""Reads a KServe InferenceService (JSON) on stdin and checks it against KServe's own SDK
models (kserve 0.21.0, in a venv of its own: its pins clash with the test venv's): it must
build into V1beta1InferenceService — with the Kubernetes models KServe embeds — and serialize
back to the same document, so no field is unknown, misnamed or of the wrong type. Prints
"ok" or what differs; exits 1 on a mismatch."""

import json
import re
import sys

import kserve.models
import kubernetes.client
from kserve.api_client import ApiClient

PRIMITIVES = {"str": str, "int": int, "float": float, "bool": bool, "object": object}


def build(data, type_name):
    """`data` as the OpenAPI-generated model `type_name` (KServe's or Kubernetes')."""
    if data is None:
        return None
    match = re.fullmatch(r"(?:list\[|List\[)(.*)\]", type_name)
    if match:
        assert isinstance(data, list), f"{type_name}: {data!r} is not a list"
        return [build(item, match.group(1)) for item in data]
    match = re.fullmatch(r"(?:dict\(str, (.*)\)|Dict\[str, (.*)\])", type_name)
    if match:
        inner = match.group(1) or match.group(2)
        assert isinstance(data, dict), f"{type_name}: {data!r} is not a map"
        return {k: build(v, inner) for k, v in data.items()}
    if type_name in PRIMITIVES:
        if type_name == "object":
            return data
        assert isinstance(data, PRIMITIVES[type_name]) or (type_name == "float" and isinstance(data, int)), f"{type_name}: {data!r}"
        return data
    klass = getattr(kserve.models, type_name, None) or getattr(kubernetes.client, type_name)
    assert isinstance(data, dict), f"{type_name}: {data!r} is not an object"
    by_json = {json_key: attr for attr, json_key in klass.attribute_map.items()}
    unknown = set(data) - set(by_json)
    assert not unknown, f"{type_name} has no field(s) {sorted(unknown)}"
    return klass(**{by_json[k]: build(v, klass.openapi_types[by_json[k]]) for k, v in data.items()})


doc = json.load(sys.stdin)
try:
    model = build(doc, "V1beta1InferenceService")
except (AssertionError, ValueError, TypeError) as error:
    print(f"not a KServe InferenceService: {error}")
    sys.exit(1)
back = ApiClient().sanitize_for_serialization(model)
if back != doc:
    print(json.dumps({"sent": doc, "kserve_read": back}, indent=1))
    sys.exit(1)
print("ok")
