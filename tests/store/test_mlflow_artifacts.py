"""MLflow's artifacts proxy on `kiln server`, driven by the unmodified mlflow client: files
logged with `log_artifact`, `log_artifacts`, `log_text` and `log_dict` are listed, downloaded
and deleted through MLflow's calls, and are the run's own artifacts in Kiln's API."""

import hashlib
import json
import os
import subprocess

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository


def test_files_are_logged_listed_downloaded_and_deleted(tracking, store_server, tmp_path):
    url, token = store_server
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(3 << 20))
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "x.csv").write_text("a,b\n1,2\n")
    (tree / "y.txt").write_text("y")
    with mlflow.start_run(run_name="with-files") as run:
        mlflow.log_text("hello", "notes/readme.txt")
        mlflow.log_dict({"lr": 0.1, "layers": [4, 16, 3]}, "config.json")
        mlflow.log_artifact(str(weights), artifact_path="model")
        mlflow.log_artifacts(str(tree), artifact_path="data")
    run_id = run.info.run_id

    assert [(a.path, a.is_dir) for a in tracking.list_artifacts(run_id)] == [("config.json", False), ("data", True), ("model", True), ("notes", True)]
    assert [(a.path, a.file_size) for a in tracking.list_artifacts(run_id, "model")] == [("model/weights.bin", 3 << 20)]
    assert [(a.path, a.is_dir) for a in tracking.list_artifacts(run_id, "data")] == [("data/sub", True), ("data/y.txt", False)]
    assert tracking.list_artifacts(run_id, "model/weights.bin") == [], "a file lists as nothing, as on MLflow"
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/readme.txt") == "hello"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json") == {"lr": 0.1, "layers": [4, 16, 3]}
    fetched = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model/weights.bin", dst_path=str(tmp_path / "one"))
    assert open(fetched, "rb").read() == weights.read_bytes()
    folder = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="data", dst_path=str(tmp_path / "all"))
    assert sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs) == ["sub/x.csv", "y.txt"]
    assert open(os.path.join(folder, "sub", "x.csv")).read() == "a,b\n1,2\n"

    # Kiln's own view of the run holds the same files, content-addressed.
    view = requests.get(f"{url}/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    by_path = {a["path"]: a for a in view["artifacts"]}
    assert sorted(by_path) == ["config.json", "data/sub/x.csv", "data/y.txt", "model/weights.bin", "notes/readme.txt"]
    assert by_path["model/weights.bin"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert by_path["notes/readme.txt"]["media_type"].startswith("text/plain")

    repo = get_artifact_repository(run.info.artifact_uri)
    repo.delete_artifacts("data/sub")
    assert [a.path for a in tracking.list_artifacts(run_id, "data")] == ["data/y.txt"]
    with pytest.raises(Exception) as missing:
        mlflow.artifacts.load_text(f"runs:/{run_id}/notes/nope.txt")
    assert "Failed to download artifacts from path 'nope.txt'" in str(missing.value)


def test_paths_outside_runs_and_bad_paths(tracking, store_server, tmp_path):
    """A path under no run (where MLflow 3 keeps logged models' files) is kept by path; a
    path that climbs out is refused naming the field."""
    url, token = store_server
    auth = {"Authorization": f"Bearer {token}"}
    base = f"{url}/api/2.0/mlflow-artifacts/artifacts"
    assert requests.put(f"{base}/0/models/m-1/artifacts/MLmodel", data=b"flavors: {}\n", headers=auth, timeout=30).status_code == 200
    listed = requests.get(f"{url}/api/2.0/mlflow-artifacts/artifacts", params={"path": "0/models/m-1/artifacts"}, headers=auth, timeout=30).json()
    assert listed == {"files": [{"path": "MLmodel", "is_dir": False, "file_size": 12}]}
    assert requests.get(f"{base}/0/models/m-1/artifacts/MLmodel", headers=auth, timeout=30).content == b"flavors: {}\n"
    bad = requests.put(f"{base}/0/../../etc/passwd", data=b"x", headers=auth, timeout=30)
    assert bad.status_code in (400, 404), bad.text
    refused = requests.put(f"{base}/a/b", data=b"x", timeout=30)
    assert refused.status_code == 401, "writes need a token"
    with pytest.raises(MlflowException):
        tracking.list_artifacts("0" * 32)


def test_a_logged_model_keeps_its_files_and_is_found_from_its_run(tracking, tmp_path):
    """MLflow 3's logged models, as `mlflow.<flavor>.log_model` drives them: created pending
    with params and tags, its files uploaded under its own artifact location, finalized;
    found by name from its run, which lists and downloads the model's files under its name."""
    experiment_id = tracking.create_experiment("logged-models")
    run_id = tracking.create_run(experiment_id, run_name="trainer").info.run_id
    model = tracking.create_logged_model(experiment_id, name="classifier", source_run_id=run_id, params={"hidden": "16"}, tags={"flavor": "candle"})
    assert model.status.to_proto() == 1 or str(model.status).endswith("PENDING")
    (tmp_path / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    (tmp_path / "weights.safetensors").write_bytes(b"\x00" * 64)
    repo = get_artifact_repository(model.artifact_location)
    repo.log_artifact(str(tmp_path / "MLmodel"))
    repo.log_artifact(str(tmp_path / "weights.safetensors"))
    ready = tracking.finalize_logged_model(model.model_id, "READY")
    assert str(ready.status).endswith("READY")
    fetched = tracking.get_logged_model(model.model_id)
    assert (fetched.name, fetched.source_run_id, fetched.params, fetched.tags) == ("classifier", run_id, {"hidden": "16"}, {"flavor": "candle"})

    found = tracking.search_logged_models([experiment_id], filter_string="name = 'classifier'")
    assert [m.model_id for m in found] == [model.model_id]
    assert tracking.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run_id}'")[0].model_id == model.model_id
    assert list(tracking.search_logged_models([experiment_id], filter_string="name = 'other'")) == []
    # The run lists the model's files under the model's name, as MLflow 3 does.
    assert [(a.path, a.file_size) for a in tracking.list_artifacts(run_id, "classifier")] == [("classifier/MLmodel", 31), ("classifier/weights.safetensors", 64)]
    assert mlflow.artifacts.load_text(f"{model.artifact_location}/MLmodel").startswith("flavors:")

    # The run produced it (what `log_model` in a run sends) and another run used it.
    from mlflow.entities import LoggedModelInput, LoggedModelOutput

    tracking.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=3)])
    evaluator = tracking.create_run(experiment_id, run_name="evaluator").info.run_id
    tracking.log_inputs(evaluator, models=[LoggedModelInput(model.model_id)])
    assert [(o.model_id, o.step) for o in tracking.get_run(run_id).outputs.model_outputs] == [(model.model_id, 3)]
    assert [i.model_id for i in tracking.get_run(evaluator).inputs.model_inputs] == [model.model_id]
    with pytest.raises(MlflowException) as unknown:
        tracking.log_outputs(run_id, [LoggedModelOutput("m-" + "0" * 32, step=0)])
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    tracking.set_logged_model_tags(model.model_id, {"stage": "candidate"})
    tracking.delete_logged_model_tag(model.model_id, "flavor")
    assert tracking.get_logged_model(model.model_id).tags == {"stage": "candidate"}
    tracking.delete_logged_model(model.model_id)
    with pytest.raises(MlflowException) as gone:
        tracking.get_logged_model(model.model_id)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_pyfunc_log_model_registers_and_loads_back(store_server):
    """The whole of MLflow 3's `log_model` in a run (logged model, its files through the
    proxy, the run's output, a registered version), and the model loaded back by its id,
    through its run and from the registry."""
    python = os.environ.get("KILN_MLFLOW_PYTHON")
    if not python:
        pytest.fail("KILN_MLFLOW_PYTHON is not set: run the suite with `cargo xtask test`, which makes the full-MLflow venv")
    url, token = store_server
    check = subprocess.run([python, os.path.join(os.path.dirname(__file__), "mlflow_log_model.py"), url, token], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    summary = json.loads(check.stdout.strip().splitlines()[-1])
    assert summary["by_model_id"] == summary["by_run"] == summary["by_registry"] == [[2.0, 4.0]]
    assert summary["outputs"] == [summary["model_id"]]
    assert summary["version_source"] in (f"models:/{summary['model_id']}", f"runs:/{summary['run_id']}/model") or summary["model_id"] in summary["version_source"]
