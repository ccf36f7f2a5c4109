"""`kiln export` validated against the upstream schemas: the Argo WorkflowTemplate against
hera's Argo models, the Deployment and Service against the Kubernetes OpenAPI schemas
(kubernetes-validate, strict), the InferenceService against KServe's SDK models. Each
document must also survive a round trip through the models unchanged, so no field is
silently dropped."""

import json
import os
import pathlib
import subprocess

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml
from hera.workflows.models import WorkflowTemplate

from conftest import kiln_binary
from test_pipeline import HANDLE, componentize


def export(store, *args):
    url, token = store
    env = {**os.environ, "KILN_SERVER": url, "KILN_TOKEN": token}
    result = subprocess.run([kiln_binary(), "export", *args], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_argo_and_kubernetes_exports_match_upstream_schemas(kiln_server):
    componentize(kiln_server)
    argo = json.loads(export(kiln_server, "argo", HANDLE, "--store-url", "http://kiln.kiln.svc:7878", "--json"))
    template = WorkflowTemplate.model_validate(argo)
    assert template.model_dump(mode="json", by_alias=True, exclude_none=True) == argo
    assert [p["name"] for p in argo["spec"]["arguments"]["parameters"]] == ["lr", "epochs", "samples_per_class"]
    steps = {t["name"]: t for t in argo["spec"]["templates"]}
    assert "@sha256:" in steps["data"]["container"]["image"] and steps["train"]["retryStrategy"]["limit"] == "2"
    # The YAML form says the same.
    assert yaml.safe_load(export(kiln_server, "argo", HANDLE, "--store-url", "http://kiln.kiln.svc:7878")) == argo

    listing = json.loads(export(kiln_server, "k8s", HANDLE, "--canary", "10", "--model", f"{HANDLE}@champion", "--json"))
    deployment, service, isvc = listing["items"]
    version = kubernetes_validate.utils.latest_version()
    for doc in (deployment, service):
        kubernetes_validate.validate(doc, version, strict=True)
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert [e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == "KILN_MODEL"][0]["value"] == f"{HANDLE}@champion"
    kserve_python = os.environ.get("KILN_KSERVE_PYTHON")
    if not kserve_python:
        pytest.fail("KILN_KSERVE_PYTHON is not set: run the suite with `cargo xtask test`, which makes the kserve venv")
    check = subprocess.run([kserve_python, str(pathlib.Path(__file__).with_name("kserve_check.py"))], input=json.dumps(isvc), capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and check.stdout.strip() == "ok", check.stdout + check.stderr
    assert list(yaml.safe_load_all(export(kiln_server, "k8s", HANDLE, "--canary", "10", "--model", f"{HANDLE}@champion"))) == listing["items"]


def test_a_local_only_image_cannot_be_exported(kiln_server, tmp_path):
    url, token = kiln_server
    env = {**os.environ, "KILN_SERVER": url, "KILN_TOKEN": token}
    out = subprocess.run([kiln_binary(), "componentize", str(pathlib.Path(__file__).resolve().parents[2] / "notebooks" / "classifier.ipynb"), "--handle", HANDLE, "--out", str(tmp_path / "oci")], capture_output=True, text=True, timeout=1800, env=env)
    assert out.returncode == 0, out.stderr
    result = subprocess.run([kiln_binary(), "export", "k8s", HANDLE], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 1 and "only in a local layout" in result.stderr, result.stderr


def test_the_checks_refuse_broken_documents():
    """The same checks, on documents with one field misspelled: each must say no."""
    argo = {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "x"}, "spec": {"entrypoint": "p", "templatez": []}}
    assert WorkflowTemplate.model_validate(argo).model_dump(mode="json", by_alias=True, exclude_none=True) != argo
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"selectr": {}, "ports": [{"port": 80}]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, kubernetes_validate.utils.latest_version(), strict=True)
    isvc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "x"}, "spec": {"predictor": {"canaryTraficPercent": 10}}}
    check = subprocess.run([os.environ["KILN_KSERVE_PYTHON"], str(pathlib.Path(__file__).with_name("kserve_check.py"))], input=json.dumps(isvc), capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and "canaryTraficPercent" in check.stdout
