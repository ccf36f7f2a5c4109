"""Every notebook in notebooks/ (the pipelines) and docs/notebooks/ (the tours) runs top to
bottom with the kiln kernel under nbclient (which sends no cell metadata, like papermill) and
produces the outputs it shows."""

import pathlib

import nbclient
import nbformat
import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
PIPELINES = ROOT / "notebooks"
TOURS = ROOT / "docs" / "notebooks"
NOTEBOOKS = sorted(PIPELINES.glob("*.ipynb")) + sorted(TOURS.glob("*.ipynb"))


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_runs_clean(path):
    nb = execute(path)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"cell {index}: {errors[0].ename}: {errors[0].evalue}"


def test_kernel_tour_outputs():
    nb = execute(TOURS / "kernel-tour.ipynb")
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


@pytest.mark.parametrize(
    "name, table, columns",
    [
        # What preprocessing kept: rows per class and their mean petal length.
        ("classifier.ipynb", "shape: (3, 3)", ["label", "rows", "mean_petal_length"]),
        # Houses and their mean price by number of rooms.
        ("regression.ipynb", "shape: (5, 3)", ["rooms", "houses", "mean_price"]),
    ],
)
def test_dataframes_render_as_tables(name, table, columns):
    """The exploration cell after each data cell ends with a DataFrame: an HTML table with its
    dtypes under the header, and polars' own text as the plain-text twin."""
    nb = execute(PIPELINES / name)
    explore = [c for c in nb.cells if c.cell_type == "code"][3]
    [output] = [o for o in explore.outputs if o.output_type == "execute_result"]
    html, text = output["data"]["text/html"], output["data"]["text/plain"]
    assert "<table" in html and table in html, html[:400]
    for column in columns:
        assert f"<th>{column}</th>" in html, (column, html[:400])
    assert "<td>u32</td>" in html or "<td>i64</td>" in html, "the key column's dtype under the header"
    assert table in text  # polars' own rendering


def test_tracking_notebook_logs_to_the_store(store):
    url, token = store
    nb = execute(TOURS / "tracking.ipynb")
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
