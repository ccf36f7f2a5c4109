"""The unmodified `mlflow` client (mlflow-skinny, pinned) logging to and reading from Kiln."""

import json
import math
import os
import subprocess

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from conftest import kiln_binary


def error_code(excinfo):
    return excinfo.value.error_code


def test_fluent_tracking_round_trip(tracking):
    experiment = mlflow.set_experiment("mlflow-compat")
    assert tracking.get_experiment_by_name("mlflow-compat").experiment_id == experiment.experiment_id
    assert tracking.get_experiment_by_name("no-such-experiment") is None
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"epochs": 3, "batch": 32})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.91, "f1": 0.8}, step=4)
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"owner": "ann"})
    fetched = tracking.get_run(run.info.run_id)
    assert fetched.info.status == "FINISHED"
    assert fetched.info.run_name == "baseline"
    assert fetched.info.end_time is not None
    assert fetched.data.params == {"lr": "0.01", "epochs": "3", "batch": "32"}
    assert fetched.data.metrics == {"loss": pytest.approx(0.2), "acc": 0.91, "f1": 0.8}
    assert fetched.data.tags["stage"] == "dev" and fetched.data.tags["owner"] == "ann"
    history = tracking.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, round(m.value, 4)) for m in history] == [(0, 1.0), (1, 0.5), (2, 0.3333), (3, 0.25), (4, 0.2)]


def test_search_runs_with_filters_and_order(tracking):
    experiment_id = tracking.create_experiment("search")
    for i in range(6):
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"r{i}"):
            mlflow.log_param("lr", f"0.{i}")
            mlflow.log_metric("acc", i / 10)
    runs = tracking.search_runs([experiment_id], "metrics.acc >= 0.3", order_by=["metrics.acc DESC"])
    assert [r.info.run_name for r in runs] == ["r5", "r4", "r3"]
    runs = mlflow.search_runs(experiment_ids=[experiment_id], filter_string="params.lr = '0.2'", output_format="list")
    assert [r.info.run_name for r in runs] == ["r2"]
    page = tracking.search_runs([experiment_id], "", order_by=["attributes.run_name ASC"], max_results=4)
    assert [r.info.run_name for r in page] == ["r0", "r1", "r2", "r3"]
    assert page.token
    rest = tracking.search_runs([experiment_id], "", order_by=["attributes.run_name ASC"], max_results=4, page_token=page.token)
    assert [r.info.run_name for r in rest] == ["r4", "r5"]


def test_mlflow_semantics_and_error_codes(tracking):
    experiment_id = tracking.create_experiment("errors")
    with pytest.raises(MlflowException) as duplicate:
        tracking.create_experiment("errors")
    assert error_code(duplicate) == "RESOURCE_ALREADY_EXISTS"
    run = tracking.create_run(experiment_id)
    run_id = run.info.run_id
    tracking.log_param(run_id, "lr", "0.1")
    tracking.log_param(run_id, "lr", "0.1")  # the same value again is fine
    with pytest.raises(MlflowException) as changed:
        tracking.log_param(run_id, "lr", "0.2")
    assert error_code(changed) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as non_finite:
        tracking.log_metric(run_id, "loss", math.inf)
    assert error_code(non_finite) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as missing:
        tracking.get_run("0" * 32)
    assert error_code(missing) == "RESOURCE_DOES_NOT_EXIST"
    tracking.set_terminated(run_id, status="FAILED")
    assert tracking.get_run(run_id).info.status == "FAILED"


def test_model_registry_versions_and_aliases(tracking):
    experiment_id = tracking.create_experiment("registry")
    run_id = tracking.create_run(experiment_id).info.run_id
    tracking.create_registered_model("visual_recognition", description="cats and dogs")
    with pytest.raises(MlflowException) as duplicate:
        tracking.create_registered_model("visual_recognition")
    assert error_code(duplicate) == "RESOURCE_ALREADY_EXISTS"
    first = tracking.create_model_version("visual_recognition", f"runs:/{run_id}/model", run_id=run_id)
    second = tracking.create_model_version("visual_recognition", f"runs:/{run_id}/model2", run_id=run_id, tags={"framework": "candle"})
    assert (first.version, second.version) == ("1", "2")
    assert second.tags == {"framework": "candle"}
    tracking.set_registered_model_alias("visual_recognition", "champion", "1")
    assert tracking.get_model_version_by_alias("visual_recognition", "champion").version == "1"
    tracking.set_registered_model_alias("visual_recognition", "champion", "2")
    model = tracking.get_registered_model("visual_recognition")
    assert model.aliases == {"champion": "2"}
    assert model.description == "cats and dogs"
    assert tracking.get_model_version("visual_recognition", "2").source == f"runs:/{run_id}/model2"
    versions = tracking.search_model_versions("name='visual_recognition'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    assert [m.name for m in tracking.search_registered_models("name LIKE 'visual%'")] == ["visual_recognition"]
    tracking.delete_registered_model_alias("visual_recognition", "champion")
    with pytest.raises(MlflowException) as gone:
        tracking.get_model_version_by_alias("visual_recognition", "champion")
    assert error_code(gone) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as reserved:
        tracking.set_registered_model_alias("visual_recognition", "latest", "1")
    assert error_code(reserved) == "INVALID_PARAMETER_VALUE"


def test_writes_without_a_token_are_refused(store_server, monkeypatch):
    url, _ = store_server
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(MlflowException) as refused:
        MlflowClient(tracking_uri=url).create_experiment("anonymous")
    assert "UNAUTHENTICATED" in str(refused.value) or "401" in str(refused.value)


def test_name_searches_match_characters_and_stay_fast(tracking, monkeypatch):
    # `_` is one character, not one byte; a pattern with many `%` is as cheap as its length
    # (a backtracking matcher held a core for minutes on this one). The client's timeout
    # makes a slow answer fail the test instead of hanging it.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    tracking.create_experiment("été")
    tracking.create_experiment("a" * 60)
    found = tracking.search_experiments(filter_string="name LIKE '_t_'")
    assert [e.name for e in found] == ["été"]
    found = tracking.search_experiments(filter_string="name ILIKE 'ÉT%'")
    assert [e.name for e in found] == ["été"]
    pathological = "%a" * 30 + "%b"
    assert tracking.search_experiments(filter_string=f"name LIKE '{pathological}'") == []
    assert [e.name for e in tracking.search_experiments(filter_string="name LIKE '" + "%a" * 30 + "'")] == ["a" * 60]


def test_run_and_experiment_lifecycle(tracking):
    """MLflow's lifecycle: a finished run takes evaluation metrics; a deleted run is hidden
    from searches unless asked for and takes nothing until restored; an experiment is
    renamed, tagged, deleted with its runs and restored with them."""
    experiment_id = tracking.create_experiment("lifecycle", tags={"team": "vision"})
    with mlflow.start_run(experiment_id=experiment_id, run_name="trained") as run:
        mlflow.log_metric("loss", 0.5)
    run_id = run.info.run_id
    assert tracking.get_run(run_id).info.status == "FINISHED"
    tracking.log_metric(run_id, "test_acc", 0.93)
    tracking.log_param(run_id, "eval_set", "holdout")
    assert tracking.get_run(run_id).data.metrics == {"loss": 0.5, "test_acc": 0.93}

    kept = tracking.create_run(experiment_id, run_name="kept").info.run_id
    tracking.delete_run(run_id)
    assert tracking.get_run(run_id).info.lifecycle_stage == "deleted"

    def names(view=ViewType.ACTIVE_ONLY):
        return sorted(r.info.run_name for r in tracking.search_runs([experiment_id], run_view_type=view))

    assert names() == ["kept"]
    assert names(ViewType.DELETED_ONLY) == ["trained"]
    assert names(ViewType.ALL) == ["kept", "trained"]
    with pytest.raises(MlflowException) as refused:
        tracking.log_metric(run_id, "late", 1.0)
    assert error_code(refused) == "INVALID_PARAMETER_VALUE" and "active" in refused.value.message
    tracking.restore_run(run_id)
    assert names() == ["kept", "trained"]
    tracking.set_tag(run_id, "temporary", "yes")
    tracking.delete_tag(run_id, "temporary")
    assert "temporary" not in tracking.get_run(run_id).data.tags

    tracking.rename_experiment(experiment_id, "lifecycle-renamed")
    tracking.set_experiment_tag(experiment_id, "owner", "ann")
    experiment = tracking.get_experiment(experiment_id)
    assert experiment.name == "lifecycle-renamed" and experiment.tags == {"team": "vision", "owner": "ann"}
    tracking.delete_experiment_tag(experiment_id, "owner")
    assert tracking.get_experiment_by_name("lifecycle-renamed").tags == {"team": "vision"}
    assert [e.name for e in tracking.search_experiments(filter_string="tags.team = 'vision'")] == ["lifecycle-renamed"]

    tracking.delete_run(kept)
    tracking.delete_experiment(experiment_id)
    assert tracking.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert experiment_id not in [e.experiment_id for e in tracking.search_experiments()]
    assert experiment_id in [e.experiment_id for e in tracking.search_experiments(view_type=ViewType.DELETED_ONLY)]
    assert tracking.get_run(run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException) as closed:
        tracking.create_run(experiment_id)
    assert error_code(closed) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as default:
        tracking.delete_experiment("0")
    assert error_code(default) == "INVALID_PARAMETER_VALUE"

    # Restoring the experiment brings back the runs its deletion took, not one deleted before.
    tracking.restore_experiment(experiment_id)
    assert tracking.get_run(run_id).info.lifecycle_stage == "active"
    assert tracking.get_run(kept).info.lifecycle_stage == "deleted"


def test_a_run_logged_through_mlflow_is_a_kiln_run(tracking, store_server):
    url, token = store_server
    mlflow.set_experiment("shared")
    with mlflow.start_run(run_name="from-mlflow") as run:
        mlflow.log_param("lr", "0.1")
        mlflow.log_metric("acc", 0.75)
        mlflow.log_text("hello", "notes.txt")
    listed = subprocess.run(
        [kiln_binary(), "runs", "list", "--experiment", "shared", "--json"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "KILN_SERVER": url, "KILN_TOKEN": token},
    )
    assert listed.returncode == 0, listed.stderr
    [kiln_run] = json.loads(listed.stdout)["runs"]
    assert kiln_run["id"] == run.info.run_id and kiln_run["name"] == "from-mlflow"
    assert kiln_run["params"] == [{"key": "lr", "value": "0.1"}]
    assert [(m["key"], m["value"]) for m in kiln_run["metrics"]] == [("acc", 0.75)]
    assert [a["path"] for a in kiln_run["artifacts"]] == ["notes.txt"]


def test_an_endpoint_kiln_does_not_serve_says_so_in_mlflows_shape(store_server):
    url, token = store_server
    r = requests.post(f"{url}/api/2.0/mlflow/traces/start-v3", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 404
    body = r.json()
    assert body["error_code"] == "ENDPOINT_NOT_FOUND" and "/api/2.0/mlflow/traces/start-v3" in body["message"]


def test_registry_updates_tags_stages_search_and_deletes(tracking):
    experiment_id = tracking.create_experiment("registry-more")
    run_id = tracking.create_run(experiment_id).info.run_id
    tracking.create_registered_model("detector")
    for i in range(3):
        tracking.create_model_version("detector", f"runs:/{run_id}/model{i}", run_id=run_id)
    tracking.update_registered_model("detector", description="finds things")
    tracking.set_registered_model_tag("detector", "team", "vision")
    model = tracking.get_registered_model("detector")
    assert (model.description, model.tags) == ("finds things", {"team": "vision"})
    tracking.delete_registered_model_tag("detector", "team")
    assert tracking.get_registered_model("detector").tags == {}

    tracking.update_model_version("detector", "2", description="the good one")
    tracking.set_model_version_tag("detector", "2", "validated", "yes")
    version = tracking.get_model_version("detector", "2")
    assert (version.description, version.tags) == ("the good one", {"validated": "yes"})
    tracking.delete_model_version_tag("detector", "2", "validated")
    assert tracking.get_model_version("detector", "2").tags == {}

    found = tracking.search_model_versions("name = 'detector'", order_by=["version_number DESC"], max_results=2)
    assert [v.version for v in found] == ["3", "2"] and found.token
    rest = tracking.search_model_versions("name = 'detector'", order_by=["version_number DESC"], max_results=2, page_token=found.token)
    assert [v.version for v in rest] == ["1"]
    assert [v.version for v in tracking.search_model_versions(f"run_id = '{run_id}'", order_by=["version_number ASC"])] == ["1", "2", "3"]

    # Stages, which MLflow deprecates but its client still sends.
    with pytest.warns(FutureWarning):
        tracking.transition_model_version_stage("detector", "1", "Production")
    with pytest.warns(FutureWarning):
        tracking.transition_model_version_stage("detector", "2", "Production", archive_existing_versions=True)
    assert tracking.get_model_version("detector", "1").current_stage == "Archived"
    with pytest.warns(FutureWarning):
        latest = tracking.get_latest_versions("detector", stages=["Production"])
    assert [(v.version, v.current_stage) for v in latest] == [("2", "Production")]
    assert tracking.get_model_version_download_uri("detector", "3") == f"runs:/{run_id}/model2"

    tracking.delete_model_version("detector", "3")
    with pytest.raises(MlflowException) as gone:
        tracking.get_model_version("detector", "3")
    assert error_code(gone) == "RESOURCE_DOES_NOT_EXIST"
    assert sorted(v.version for v in tracking.search_model_versions("name = 'detector'")) == ["1", "2"]


def test_logged_inputs_are_kiln_dataset_versions(tracking, store_server):
    """`log_inputs`: each dataset becomes a Kiln dataset version the run read (the same
    description again is the same version), and reads back as MLflow sent it."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    url, token = store_server
    run_id = tracking.create_run(tracking.create_experiment("inputs")).info.run_id
    schema = json.dumps({"mlflow_colspec": [{"type": "double", "name": "area"}, {"type": "long", "name": "rooms"}]})
    houses = Dataset(name="houses", digest="a1b2c3d4", source_type="http", source='{"url": "https://example.com/houses.csv"}', schema=schema, profile='{"num_rows": 150}')
    tracking.log_inputs(run_id, datasets=[DatasetInput(houses, tags=[InputTag("mlflow.data.context", "training")])])
    tracking.log_inputs(run_id, datasets=[DatasetInput(houses, tags=[InputTag("mlflow.data.context", "training")])])
    [logged] = tracking.get_run(run_id).inputs.dataset_inputs
    assert (logged.dataset.name, logged.dataset.digest, logged.dataset.source, logged.dataset.profile) == ("houses", "a1b2c3d4", houses.source, '{"num_rows": 150}')
    assert [(t.key, t.value) for t in logged.tags] == [("mlflow.data.context", "training")]

    versions = requests.get(f"{url}/api/v1/datasets/houses/versions", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert len(versions) == 1, "the same dataset logged twice is one version"
    assert versions[0]["rows"] == 150 and versions[0]["schema"] == [{"name": "area", "dtype": "double"}, {"name": "rooms", "dtype": "long"}]
    with pytest.raises(MlflowException) as missing:
        tracking.log_inputs("0" * 32, datasets=[DatasetInput(houses)])
    assert error_code(missing) == "RESOURCE_DOES_NOT_EXIST"


def test_bulk_interval_histories_sample_each_run_keeping_the_ends(tracking, store_server):
    """`get-history-bulk-interval`, what MLflow's own UI asks for its charts (the Python
    client samples full histories itself, which must work too)."""
    from mlflow.tracking._tracking_service.utils import _get_store

    url, token = store_server
    experiment_id = tracking.create_experiment("bulk")
    runs = []
    for length in (100, 10):
        run_id = tracking.create_run(experiment_id).info.run_id
        tracking.log_batch(run_id, metrics=[mlflow.entities.Metric("loss", 1.0 / (step + 1), 1_700_000_000_000 + step, step) for step in range(length)])
        runs.append(run_id)
    sampled = _get_store().get_metric_history_bulk_interval(runs, "loss", max_results=5, start_step=None, end_step=None)
    for run, last in zip(runs, (99, 9)):
        steps = [m.step for m in sampled if m.run_id == run]
        assert steps[0] == 0 and steps[-1] == last, steps

    def bulk(**params):
        r = requests.get(f"{url}/api/2.0/mlflow/metrics/get-history-bulk-interval", params={"run_ids": runs, "metric_key": "loss", **params},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["metrics"]

    answer = bulk(max_results=5)
    assert {run: [m["step"] for m in answer if m["run_id"] == run] for run in runs} == {runs[0]: [0, 24, 49, 74, 99], runs[1]: [0, 2, 4, 6, 9]}
    window = bulk(max_results=100, start_step=10, end_step=12)
    assert [(m["step"], round(m["value"], 4)) for m in window if m["run_id"] == runs[0]] == [(10, 0.0909), (11, 0.0833), (12, 0.0769)]
    bad = requests.get(f"{url}/api/2.0/mlflow/metrics/get-history-bulk-interval", params={"run_ids": runs, "metric_key": "loss", "start_step": "x"},
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE" and "start_step" in bad.json()["message"]
