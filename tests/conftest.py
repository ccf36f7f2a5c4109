"""A `kiln server` on port 0 in a fresh data dir, for tests that drive it with real clients."""

import contextlib
import os
import pathlib
import subprocess
import uuid

import pytest
import requests


def kiln_binary() -> str:
    explicit = os.environ.get("KILN_BIN")
    if explicit:
        return explicit
    target = os.environ.get("CARGO_TARGET_DIR") or str(pathlib.Path(__file__).resolve().parents[2] / "target")
    return str(pathlib.Path(target) / "release" / "kiln")


def start_kiln_server(data, *args):
    """`kiln server` on port 0 with its data in `data`: (process, url, admin token)."""
    proc = subprocess.Popen(
        [kiln_binary(), "server", "--listen", "127.0.0.1:0", "--data-dir", str(data), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "KILN_LOG": "warn"},
    )
    line = proc.stdout.readline().strip()
    prefix = "kiln server listening on "
    if not line.startswith(prefix):
        proc.kill()
        proc.wait()
        raise AssertionError(f"unexpected first line from kiln server: {line!r}")
    return proc, line[len(prefix):], (data / "admin.token").read_text().strip()


@contextlib.contextmanager
def running_kiln_server(data, *args):
    """`kiln server` on port 0 with its data in `data`: (url, admin token)."""
    proc, url, token = start_kiln_server(data, *args)
    try:
        yield url, token
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.fixture()
def kiln_server(tmp_path):
    with running_kiln_server(tmp_path / "data") as server:
        yield server


def postgres_s3_args():
    """`kiln server` arguments for a fresh database on the test PostgreSQL and a fresh bucket
    on the test S3 server (`cargo xtask test` starts both and names them in the environment,
    with the AWS_* variables the server reads)."""
    admin = os.environ.get("KILN_TEST_POSTGRES")
    if not admin:
        if os.environ.get("KILN_SKIP_POSTGRES") == "1":
            pytest.skip("KILN_SKIP_POSTGRES=1: the PostgreSQL + S3 half")
        pytest.fail("KILN_TEST_POSTGRES and KILN_TEST_S3 are not set: run `cargo xtask test`, which starts both, or set KILN_SKIP_POSTGRES=1")
    database = f"kiln_test_{uuid.uuid4().hex}"
    subprocess.run(["psql", admin, "-q", "-c", f"CREATE DATABASE {database}"], check=True, capture_output=True, timeout=60)
    bucket = f"kiln-test-{uuid.uuid4().hex[:12]}"
    requests.put(f"{os.environ['KILN_TEST_S3']}/{bucket}", timeout=30).raise_for_status()
    return ["--db", f"{admin.rsplit('/', 1)[0]}/{database}", "--artifacts", f"s3://{bucket}/kiln"]


@pytest.fixture(params=["sqlite", "postgres_s3"])
def store_server(request, tmp_path):
    """`kiln server` on each store backend: SQLite + files, and PostgreSQL + S3."""
    args = postgres_s3_args() if request.param == "postgres_s3" else []
    with running_kiln_server(tmp_path / "data", *args) as server:
        yield server


@pytest.fixture()
def tracking(store_server, monkeypatch):
    """The unmodified mlflow client pointed at `store_server` (both backends), fluent API
    and `MlflowClient` alike; a run left active by a failed test is ended."""
    import mlflow

    url, token = store_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(url)
    yield mlflow.MlflowClient(tracking_uri=url)
    if mlflow.active_run():
        mlflow.end_run()
