"""A served `fn infer` that takes a polars DataFrame, end to end with real parts: the
`dataframes.ipynb` notebook is componentized (its data step hands a DataFrame to train as
Parquet), trained by `kiln run`, deployed behind `kiln server`'s gateway, and answers
Open Inference Protocol requests whose inputs are the columns its infer cell declares, from
plain HTTP and from the unmodified Triton client, which finds them in the model metadata."""

import json
import os
import pathlib
import subprocess

import pytest
import requests

from conftest import kiln_binary
from test_pipeline import registry, run

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "notebooks" / "dataframes.ipynb"
HANDLE = "petals-e2e"
# The notebook's flowers: setosa petals 1.4 and 1.3, versicolor 4.5, virginica 6.0 and 5.1.
MEANS = {"setosa": 1.35, "versicolor": 4.5, "virginica": 5.55}


def kiln(store, *args):
    url, token = store
    return run([kiln_binary(), *args], env={**os.environ, "KILN_SERVER": url, "KILN_TOKEN": token})


def infer(url, inputs):
    return requests.post(f"{url}/v2/models/{HANDLE}/infer", json={"inputs": inputs}, timeout=30)


def test_a_dataframe_input_is_served_as_named_columns(kiln_server):
    store = kiln_server
    url, token = store
    summary = json.loads(kiln(store, "componentize", str(NOTEBOOK), "--handle", HANDLE, "--registry", registry(), "--json"))
    assert {i["role"] for i in summary["images"]} == {"data", "train", "infer"}

    trained = json.loads(kiln(store, "run", HANDLE, "--runner", "process", "--json"))
    assert trained["model_version"] == 1, trained
    headers = {"Authorization": f"Bearer {token}"}
    lineage = requests.get(f"{url}/api/v1/lineage/{HANDLE}/1", headers=headers, timeout=30).json()
    assert [d["id"] for d in lineage["datasets_read"]] == [trained["dataset_version"]], "the DataFrame crossed as a dataset version"

    kiln(store, "deploy", HANDLE, "--model-version", "1", "--runner", "process")
    metadata = requests.get(f"{url}/v2/models/{HANDLE}", timeout=30).json()
    assert metadata["inputs"] == [
        {"name": "species", "datatype": "BYTES", "shape": [-1]},
        {"name": "petal_length", "datatype": "FP64", "shape": [-1]},
    ]
    assert metadata["outputs"] == [{"name": "output", "datatype": "FP64", "shape": [-1]}]

    species = {"name": "species", "shape": [3], "datatype": "BYTES", "data": ["setosa", "virginica", "versicolor"]}
    lengths = {"name": "petal_length", "shape": [3, 1], "datatype": "FP64", "data": [[1.5], [5.0], [4.5]]}
    expected = [1.5 - MEANS["setosa"], 5.0 - MEANS["virginica"], 0.0]
    for order in ([species, lengths], [lengths, species]):  # columns by name, in any order
        answer = infer(url, order)
        assert answer.status_code == 200, answer.text
        [output] = answer.json()["outputs"]
        assert output["shape"] == [3] and output["data"] == pytest.approx(expected)
        assert answer.json()["model_version"] == "1"

    # What a client gets wrong, named: a missing column, an extra one, a datatype, a length.
    refusals = {
        "lack `petal_length`": [species],
        "`sepal` is not a column of `rows`": [species, lengths, {**lengths, "name": "sepal"}],
        "column `petal_length` takes FP64": [species, {**lengths, "datatype": "FP32"}],
        "has 2 rows; `species` (inputs[0]) has 3": [species, {**lengths, "shape": [2], "data": [1.0, 2.0]}],
        "unknown species `daisy`": [{**species, "data": ["daisy", "setosa", "setosa"]}, lengths],
    }
    for message, inputs in refusals.items():
        answer = infer(url, inputs)
        assert answer.status_code == 400 and message in answer.json()["error"], (message, answer.status_code, answer.text)

    python = os.environ.get("KILN_TRITON_PYTHON")
    if not python:
        pytest.fail("KILN_TRITON_PYTHON is not set: run the suite with `cargo xtask test`, which makes the tritonclient venv")
    rows = {"species": ["virginica", "setosa"], "petal_length": [6.0, 1.0]}
    check = subprocess.run(
        [python, os.path.join(os.path.dirname(__file__), "triton_table_check.py"), url.removeprefix("http://"), HANDLE, json.dumps(rows)],
        capture_output=True, text=True, timeout=120,
    )
    assert check.returncode == 0, check.stderr
    result = json.loads(check.stdout)
    assert result["output"] == pytest.approx([6.0 - MEANS["virginica"], 1.0 - MEANS["setosa"]])
    assert result["response"]["id"] == "table-1" and result["response"]["model_version"] == "1"
