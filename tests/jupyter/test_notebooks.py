"""Every notebook in notebooks/ runs top to bottom with the kiln kernel under nbclient
(which sends no cell metadata, like papermill) and produces the outputs it shows."""

import pathlib

import nbclient
import nbformat
import pytest
import requests

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def execute(path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="kiln", timeout=2400, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    return nb


@pytest.fixture(autouse=True)
def store(kiln_server, monkeypatch):
    """Kernels started by these tests log to a fresh `kiln server`, as under `cargo xtask lab`."""
    url, token = kiln_server
    monkeypatch.setenv("KILN_SERVER", url)
    monkeypatch.setenv("KILN_TOKEN", token)
    return url, token


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_clean(path):
    nb = execute(path)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"cell {index}: {errors[0].ename}: {errors[0].evalue}"


def test_kernel_tour_outputs():
    nb = execute(NOTEBOOKS[0].parent / "kernel-tour.ipynb")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[1].outputs[0]["data"]["text/plain"] == "2.75"
    # Partial lines with \r arrive while the cell runs; the notebook keeps the final text.
    streamed = "".join(o.get("text", "") for o in code[2].outputs if o.output_type == "stream")
    assert "step 3/3" in streamed
    # The progress bar is one display, updated in place (nbclient applies the updates).
    progress = [o for o in code[3].outputs if o.output_type == "display_data"]
    assert len(progress) == 1
    assert "20/20" in progress[0]["data"]["text/plain"]
    assert "<progress" in progress[0]["data"]["text/html"]
    table = code[4].outputs[0]["data"]
    assert "<th>x squared</th>" in table["text/html"] and "| 5 | 25" in table["text/plain"]
    displays = [o for o in code[5].outputs if o.output_type == "display_data"]
    assert [d["data"]["text/plain"] for d in displays] == ["trained", "bold text"]


def test_dataframes_render_as_tables():
    nb = execute(NOTEBOOKS[0].parent / "dataframes.ipynb")
    code = [c for c in nb.cells if c.cell_type == "code"]
    flowers = code[1].outputs[0]["data"]
    assert "<table" in flowers["text/html"] and "shape: (5, 2)" in flowers["text/html"]
    assert "<td>str</td>" in flowers["text/html"] and "<td>f64</td>" in flowers["text/html"]
    assert "shape: (5, 2)" in flowers["text/plain"]  # polars' own rendering
    summary = code[2].outputs[0]["data"]["text/html"]
    assert "<th>mean_petal</th>" in summary and "versicolor" in summary


def test_tracking_notebook_logs_to_the_store(store):
    url, token = store
    nb = execute(NOTEBOOKS[0].parent / "tracking.ipynb")
    code = [c for c in nb.cells if c.cell_type == "code"]
    card = [o for o in code[1].outputs if o.output_type == "display_data"]
    assert len(card) == 1, "one live card per run, updated in place"
    assert "loss" in card[0]["data"]["text/html"] and "<table>" in card[0]["data"]["text/html"]
    assert code[2].outputs[0]["data"]["text/plain"] == "40"
    assert code[3].outputs[0]["data"]["text/plain"] == "Finished"
    headers = {"Authorization": f"Bearer {token}"}
    page = requests.post(f"{url}/api/v1/runs/search", json={"experiments": ["notebook-tour"]}, headers=headers, timeout=30).json()
    [run] = page["runs"]
    assert run["status"] == "FINISHED" and run["source"] == "notebook"
    assert {p["key"]: p["value"] for p in run["params"]} == {"lr": "0.05", "epochs": "40"}
    assert [a["path"] for a in run["artifacts"]] == ["model/weights.json"]
