"""Every pipeline notebook in notebooks/ (every one with an `infer` cell) goes the whole way:
componentized, pushed to a real registry, trained by `kiln run`, deployed through the
gateway, and asked once over OIP v2; the answer equals the notebook's own `infer` on the same
input (its last cell, run by the Kiln kernel under nbclient)."""

import json
import os
import pathlib

import nbformat
import pytest
import requests

from conftest import kiln_binary
from test_pipeline import notebook_answer, registry, run

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[2] / "notebooks"

# notebook: (handle, the request's inputs: what its last cell passes to `infer`)
CASES = {
    "classifier.ipynb": ("nb-iris", [{"name": "features", "datatype": "FP32", "shape": [2, 4], "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]),
    "regression.ipynb": (
        "nb-houses",
        [
            {"name": "area", "datatype": "FP64", "shape": [2], "data": [120.0, 60.0]},
            {"name": "rooms", "datatype": "INT64", "shape": [2], "data": [4, 2]},
            {"name": "age", "datatype": "FP64", "shape": [2], "data": [10.0, 45.0]},
        ],
    ),
    "sentiment.ipynb": ("nb-reviews", [{"name": "reviews", "datatype": "BYTES", "shape": [2], "data": ["fast delivery and friendly staff", "the box was late and broken"]}]),
}


def pipelines():
    """The notebooks with an `infer` cell (a tag or a `// kiln: infer` first line)."""
    found = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        if any("infer" in c.metadata.get("tags", []) or "".join(c.source).startswith("// kiln: infer") for c in cells if c.cell_type == "code"):
            found.append(path.name)
    return found


def test_every_pipeline_notebook_has_a_case():
    """A new pipeline notebook must be added to CASES, so it is served in the tests too."""
    assert sorted(CASES) == pipelines(), "CASES and the pipeline notebooks in notebooks/ differ"


def flat(values):
    return [x for v in values for x in flat(v)] if isinstance(values, list) else [values]


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_served_answer_is_the_notebooks(name, kiln_server, monkeypatch):
    url, token = kiln_server
    monkeypatch.setenv("KILN_SERVER", url)  # the kernel inherits these; the train cell logs
    monkeypatch.setenv("KILN_TOKEN", token)
    handle, given = CASES[name]
    path = NOTEBOOKS / name

    def kiln(*args):
        return json.loads(run([kiln_binary(), *args, "--json"]))

    summary = kiln("componentize", str(path), "--handle", handle, "--registry", registry())
    assert [i["role"] for i in summary["images"]] == ["data", "train", "infer"]
    trained = kiln("run", handle, "--runner", "process")
    assert trained["model_version"] == 1, trained
    deployed = kiln("deploy", handle, "--model-version", "1", "--runner", "process")
    assert deployed["stable"] == 1, deployed

    headers = {"Authorization": f"Bearer {token}"}
    metadata = requests.get(f"{url}/v2/models/{handle}", headers=headers, timeout=30).json()
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [(i["name"], i["datatype"]) for i in given], metadata
    answer = requests.post(f"{url}/v2/models/{handle}/infer", json={"id": name, "inputs": given}, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    assert (reply["model_version"], reply["id"]) == ("1", name), reply
    [output] = reply["outputs"]

    expected = flat(notebook_answer(path))
    assert len(output["data"]) == len(expected), (output, expected)
    for served, own in zip(output["data"], expected):
        assert abs(served - own) <= 1e-5 * max(1.0, abs(own)), (output["data"], expected)
