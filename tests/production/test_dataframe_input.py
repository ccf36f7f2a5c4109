"""A served `fn infer` that takes a polars DataFrame, end to end with real parts: the
`regression.ipynb` notebook is componentized (its data step hands a DataFrame to train as
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

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "notebooks" / "regression.ipynb"
HANDLE = "houses-e2e"


def kiln(store, *args):
    url, token = store
    return run([kiln_binary(), *args], env={**os.environ, "KILN_SERVER": url, "KILN_TOKEN": token})


def infer(url, inputs):
    return requests.post(f"{url}/v2/models/{HANDLE}/infer", json={"inputs": inputs}, timeout=30)


def market_price(area, rooms, age):
    """The synthetic town's prices (k€), as the notebook's `market_price` makes them."""
    return 30.0 + 2.2 * area + 9.0 * rooms - 1.1 * age


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
    versions = requests.get(f"{url}/api/v1/datasets/{HANDLE}/versions", headers=headers, timeout=30).json()
    [dataset] = [d for d in versions if d["id"] == trained["dataset_version"]]
    assert [(c["name"], c["dtype"]) for c in dataset["schema"]] == [("houses", "polars_core::frame::dataframe::DataFrame")], dataset

    kiln(store, "deploy", HANDLE, "--model-version", "1", "--runner", "process")
    metadata = requests.get(f"{url}/v2/models/{HANDLE}", timeout=30).json()
    assert metadata["inputs"] == [
        {"name": "area", "datatype": "FP64", "shape": [-1]},
        {"name": "rooms", "datatype": "INT64", "shape": [-1]},
        {"name": "age", "datatype": "FP64", "shape": [-1]},
    ]
    assert metadata["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1]}]

    area = {"name": "area", "shape": [3], "datatype": "FP64", "data": [120.0, 60.0, 180.0]}
    rooms = {"name": "rooms", "shape": [3, 1], "datatype": "INT64", "data": [[4], [2], [6]]}
    age = {"name": "age", "shape": [3], "datatype": "FP64", "data": [10.0, 45.0, 5.0]}
    answers = []
    for order in ([area, rooms, age], [age, area, rooms]):  # columns by name, in any order
        answer = infer(url, order)
        assert answer.status_code == 200, answer.text
        [output] = answer.json()["outputs"]
        assert output["shape"] == [3] and answer.json()["model_version"] == "1"
        answers.append(output["data"])
    assert answers[0] == answers[1]
    # The model learnt the town's market (R² ≥ 0.8 gates its registration): each price within
    # a fifth of what the market says, and the bigger, newer house the dearest.
    for price, house in zip(answers[0], zip(area["data"], [r[0] for r in rooms["data"]], age["data"])):
        assert price == pytest.approx(market_price(*house), rel=0.2), (price, house)
    assert answers[0][2] > answers[0][0] > answers[0][1]

    # What a client gets wrong, named: a missing column, an extra one, a datatype, a length,
    # and what the notebook's own infer refuses.
    refusals = {
        "lack `age`": [area, rooms],
        "`garden` is not a column of `houses`": [area, rooms, age, {**age, "name": "garden"}],
        "column `rooms` takes INT64": [area, {**rooms, "datatype": "FP64"}, age],
        "has 2 rows; `area` (inputs[0]) has 3": [area, {**rooms, "shape": [2], "data": [1, 2]}, age],
        "house 1 has 0 rooms; a house has at least one": [area, {**rooms, "data": [[4], [0], [6]]}, age],
    }
    for message, inputs in refusals.items():
        answer = infer(url, inputs)
        assert answer.status_code == 400 and message in answer.json()["error"], (message, answer.status_code, answer.text)

    python = os.environ.get("KILN_TRITON_PYTHON")
    if not python:
        pytest.fail("KILN_TRITON_PYTHON is not set: run the suite with `cargo xtask test`, which makes the tritonclient venv")
    rows = {"area": area["data"], "rooms": [r[0] for r in rooms["data"]], "age": age["data"]}
    check = subprocess.run(
        [python, os.path.join(os.path.dirname(__file__), "triton_table_check.py"), url.removeprefix("http://"), HANDLE, json.dumps(rows)],
        capture_output=True, text=True, timeout=120,
    )
    assert check.returncode == 0, check.stderr
    result = json.loads(check.stdout)
    assert result["output"] == pytest.approx(answers[0])
    # The client's defaults: each column as bytes after the JSON header, the answer too.
    assert result["default"]["output"] == pytest.approx(answers[0])
    assert "binary_data_size" in result["default"]["response"]["outputs"][0]["parameters"]
    assert result["response"]["id"] == "table-1" and result["response"]["model_version"] == "1"
