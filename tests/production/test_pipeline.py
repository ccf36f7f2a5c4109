"""A tagged notebook to production, end to end with real parts: `kiln componentize` builds
the example notebook's three components, pushes them to a real registry (Debian's
docker-registry) and registers them in a real `kiln server`; skopeo pulls them back; podman
runs data → train → infer from the registry; an Open Inference Protocol v2 request gets the
same answer the notebook's own `infer(&varmap, x)` gives in the Kiln kernel; and building the
same notebook again gives the same digests."""

import json
import os
import pathlib
import re
import socket
import subprocess
import time

import nbclient
import nbformat
import pytest
import requests

from conftest import kiln_binary

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "classifier.ipynb"
HANDLE = "iris-e2e"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def registry() -> str:
    host = os.environ.get("KILN_TEST_REGISTRY")
    if not host:
        pytest.fail("KILN_TEST_REGISTRY is not set: run the suite with `cargo xtask test`, which starts a registry")
    return host


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, timeout=1800, **kwargs)
    assert result.returncode == 0, f"{args[0]} {args[1]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


def componentize(store, *extra):
    url, token = store
    out = run(
        [kiln_binary(), "componentize", str(NOTEBOOK), "--handle", HANDLE, "--registry", registry(), "--json", *extra],
        env={**os.environ, "KILN_SERVER": url, "KILN_TOKEN": token},
    )
    return json.loads(out)


def podman(*args):
    """Plain `podman`, as the README runs the images: with the project's `containers.conf`
    where the machine needs it (lowered ulimits). Kiln's own runners manage without it."""
    conf = os.environ.get("KILN_TEST_CONTAINERS_CONF")
    return run(["podman", *args], env={**os.environ, **({"CONTAINERS_CONF": conf} if conf else {})})


def component_env(store):
    url, token = store
    return ["--network", "host", "-e", f"KILN_SERVER={url}", "-e", f"KILN_TOKEN={token}"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def notebook_answer(path):
    """A notebook run top to bottom by the Kiln kernel under nbclient: its last cell's answer
    (a Rust String holding the `infer` answer's Debug text, which reads as JSON)."""
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, kernel_name="kiln", timeout=2400, resources={"metadata": {"path": str(path.parent)}}).execute()
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    return json.loads(json.loads(last.outputs[0]["data"]["text/plain"]))


def test_notebook_to_served_model(kiln_server, monkeypatch):
    store = kiln_server
    url, token = store
    summary = componentize(store)
    images = {i["role"]: i for i in summary["images"]}
    assert set(images) == {"data", "train", "infer"}
    for role, image in images.items():
        assert image["reference"] == f"{registry()}/{HANDLE}-{role}@{image['digest']}"
        assert image["size"] < 40e6, f"{role} image is {image['size']} bytes"

    # The registry holds what the layout holds: skopeo pulls it back with the same digest
    # and the labels that say where it came from.
    for role, image in images.items():
        inspected = json.loads(run(["skopeo", "inspect", "--tls-verify=false", f"docker://{registry()}/{HANDLE}-{role}:latest"]))
        assert inspected["Digest"] == image["digest"]
        assert inspected["Labels"]["dev.kiln.role"] == role and inspected["Labels"]["dev.kiln.handle"] == HANDLE
        assert len(inspected["Labels"]["dev.kiln.notebook.sha256"]) == 64
        copied = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"kiln-e2e-{os.getpid()}-{role}"
        run(["skopeo", "copy", "--src-tls-verify=false", "--preserve-digests", f"docker://{registry()}/{HANDLE}-{role}:latest", f"oci:{copied}:{role}"])
        index = json.loads((copied / "index.json").read_text())
        assert index["manifests"][0]["digest"] == image["digest"]

    # The store knows the three code packages.
    headers = {"Authorization": f"Bearer {token}"}
    packages = requests.get(f"{url}/api/v1/code-packages", params={"handle": HANDLE}, headers=headers, timeout=30).json()
    assert {(p["role"], p["digest"]) for p in packages} == {(r, i["digest"]) for r, i in images.items()}

    # data → train → infer under podman, pulled from the registry.
    ref = lambda role: f"{registry()}/{HANDLE}-{role}:latest"  # noqa: E731
    for role in ("data", "train", "infer"):
        podman("pull", "--tls-verify=false", ref(role))
    data = json.loads(podman("run", "--rm", *component_env(store), ref("data")).strip().splitlines()[-1])
    assert data["role"] == "data" and data["values"] == ["flowers"]
    train = json.loads(podman("run", "--rm", *component_env(store), "-e", "KILN_PARAM_EPOCHS=300", ref("train")).strip().splitlines()[-1])
    assert train["model"] == HANDLE and train["values"] == ["varmap"]
    lineage = requests.get(f"{url}/api/v1/lineage/{HANDLE}/{train['model_version']}", headers=headers, timeout=30).json()
    assert [d["id"] for d in lineage["datasets_read"]] == [data["dataset_version"]]
    assert {p["key"]: p["value"] for p in lineage["run"]["params"]} == {"epochs": "300", "lr": "0.05", "samples_per_class": "50"}
    assert any(m["key"] == "accuracy" for m in lineage["run"]["metrics"])

    port = free_port()
    container = f"kiln-e2e-{os.getpid()}"
    podman("run", "-d", "--name", container, *component_env(store), "-e", f"KILN_LISTEN=127.0.0.1:{port}", ref("infer"))
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                if requests.get(f"{base}/v2/health/ready", timeout=2).json() == {"ready": True}:
                    break
            except requests.ConnectionError:
                pass
            assert time.time() < deadline, podman("logs", container)
            time.sleep(0.2)
        metadata = requests.get(f"{base}/v2/models/{HANDLE}", timeout=10).json()
        assert metadata["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}]
        assert metadata["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 3]}]
        assert metadata["versions"] == [str(train["model_version"])]
        body = {"id": "e2e", "inputs": [{"name": "features", "shape": [2, 4], "datatype": "FP32", "data": ROWS}]}
        answer = requests.post(f"{base}/v2/models/{HANDLE}/infer", json=body, timeout=10).json()
        assert answer["model_version"] == str(train["model_version"]) and answer["id"] == "e2e"
        [output] = answer["outputs"]
        assert output["shape"] == [2, 3]
        bad = requests.post(f"{base}/v2/models/{HANDLE}/infer", json={"inputs": [{"name": "features", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}, timeout=10)
        assert bad.status_code == 400 and "shape" in bad.json()["error"]
    finally:
        subprocess.run(["podman", "rm", "-f", container], capture_output=True)

    # The notebook's own call gives the same probabilities (f32 both ways).
    monkeypatch.setenv("KILN_SERVER", url)  # the kernel inherits these; the train cell logs
    monkeypatch.setenv("KILN_TOKEN", token)
    expected = [v for row in notebook_answer(NOTEBOOK) for v in row]
    assert len(expected) == 6
    assert all(abs(a - b) <= 1e-6 for a, b in zip(output["data"], expected)), (output["data"], expected)


def test_same_notebook_same_digests(kiln_server, tmp_path):
    first = componentize(kiln_server, "--out", str(tmp_path / "one"))
    # Rebuild the three binaries from scratch (dependencies stay built), into another layout.
    workspace = pathlib.Path(os.environ.get("KILN_CACHE_DIR", pathlib.Path.home() / ".cache" / "kiln")) / "componentize" / HANDLE
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGO")}
    run(["cargo", "clean", "--release", "-p", f"{HANDLE}-data", "-p", f"{HANDLE}-train", "-p", f"{HANDLE}-infer"], cwd=workspace, env=env)
    # The second build reports itself as the JupyterLab extension reads it: JSON events.
    url, token = kiln_server
    lines = run(
        [kiln_binary(), "componentize", str(NOTEBOOK), "--handle", HANDLE, "--registry", registry(), "--progress", "json", "--out", str(tmp_path / "two")],
        env={**os.environ, "KILN_SERVER": url, "KILN_TOKEN": token},
    ).splitlines()
    events = [json.loads(line) for line in lines]
    assert_progress_events(events)
    second = events[-1]
    assert [i["digest"] for i in first["images"]] == [i["digest"] for i in second["images"]]
    one = json.loads((tmp_path / "one" / "index.json").read_text())
    two = json.loads((tmp_path / "two" / "index.json").read_text())
    assert one == two


def assert_progress_events(events):
    """Each phase starts, then ends done, in the order the work goes; per component where the
    work is per component; the compile phase moves forward; the summary comes last."""
    phases = [e for e in events if e["event"] == "phase"]
    ends = [(e["phase"], e.get("component")) for e in phases if e["state"] in ("done", "failed")]
    roles = ["data", "train", "infer"]
    # Registry and store are asked first; the three code packages are registered together.
    assert ends == [("connect", None), ("analyse", None), ("generate", None), ("compile", None)] + [("package", r) for r in roles] + [
        ("push", r) for r in roles
    ] + [("register", None)], ends
    assert all(e["state"] == "done" for e in phases if e["state"] in ("done", "failed"))
    for phase, component in ends:
        states = [e["state"] for e in phases if (e["phase"], e.get("component")) == (phase, component)]
        assert states[0] == "started" and states[-1] == "done", (phase, component, states)
    fractions = [e["progress"] for e in phases if e["phase"] == "compile" and "progress" in e]
    assert fractions and fractions == sorted(fractions) and all(0 < f < 1 for f in fractions), fractions
    packaged = {e["component"]: e["message"] for e in phases if e["phase"] == "package" and e["state"] == "done"}
    result = events[-1]
    assert result["event"] == "result" and [i["role"] for i in result["images"]] == roles
    for image in result["images"]:
        assert image["digest"] in packaged[image["role"]] and image["code_package"], image


def kiln_run(store, *args):
    url, token = store
    env = {**os.environ, "KILN_SERVER": url, "KILN_TOKEN": token}
    result = subprocess.run([kiln_binary(), "run", HANDLE, "--json", *args], capture_output=True, text=True, timeout=1800, env=env)
    return result.returncode, (json.loads(result.stdout) if result.returncode == 0 else None), result.stderr


def test_workflow_runs_cached_retried_and_resumed(kiln_server):
    store = kiln_server
    url, token = store
    headers = {"Authorization": f"Bearer {token}"}
    componentize(store)

    # Under podman from the registered images: both steps run, one run holds everything.
    code, first, err = kiln_run(store, "--runner", "podman")
    assert code == 0, err
    assert (first["data"]["status"], first["train"]["status"]) == ("ran", "ran")
    run = requests.get(f"{url}/api/v1/runs/{first['run_id']}", headers=headers, timeout=30).json()
    tags = {t["key"]: t["value"] for t in run["tags"]}
    images = {p["role"]: p["digest"] for p in requests.get(f"{url}/api/v1/code-packages", params={"handle": HANDLE}, headers=headers, timeout=30).json()}
    assert tags["kiln.data.image"] == images["data"] and tags["kiln.train.image"] == images["train"]
    assert run["status"] == "FINISHED" and run["source"] == "workflow"
    assert sorted(a["path"] for a in run["artifacts"] if a["path"].startswith("logs/")) == ["logs/data.attempt-1.log", "logs/train.attempt-1.log"]
    lineage = requests.get(f"{url}/api/v1/lineage/{HANDLE}/{first['model_version']}", headers=headers, timeout=30).json()
    assert {p["role"] for p in lineage["code_packages"]} == {"data", "train"}
    assert [d["id"] for d in lineage["datasets_read"]] == [first["dataset_version"]]

    # Nothing changed: no step runs, no run is made.
    code, again, err = kiln_run(store)
    assert code == 0, err
    assert (again["data"]["status"], again["train"]["status"], again["run_id"]) == ("cached", "cached", None)
    assert again["model_version"] == first["model_version"] and "nothing changed" in err

    # A new parameter, as processes from the images' binaries.
    code, changed, err = kiln_run(store, "--runner", "process", "--param", "epochs=100")
    assert code == 0, err
    assert changed["train"]["status"] == "ran" and changed["model_version"] == first["model_version"] + 1
    assert changed["dataset_version"] == first["dataset_version"], "same data, same fingerprint"
    # The notebook declares `register when metrics.accuracy >= 0.9` and `promote champion when
    # metrics.accuracy >= 0.95`: 100 epochs reach 0.99, one epoch does not reach 0.9.
    assert changed["aliases"] == ["champion"]
    champion = requests.get(f"{url}/api/v1/models/{HANDLE}/aliases/champion", headers=headers, timeout=30).json()
    assert champion["version"] == changed["model_version"]
    code, weak, err = kiln_run(store, "--runner", "process", "--param", "epochs=1")
    assert code == 0, err
    assert weak["model_version"] is None and weak["not_registered"] == "metrics.accuracy >= 0.9", weak
    assert "not registered" in err
    code, weak_again, err = kiln_run(store, "--runner", "process", "--param", "epochs=1")
    assert code == 0 and weak_again["train"]["status"] == "cached" and weak_again["not_registered"] == "metrics.accuracy >= 0.9", err

    # A train step that fails (no samples) is retried, then resumed from the failed step.
    code, _, err = kiln_run(store, "--runner", "process", "--param", "samples_per_class=0", "--retries", "1")
    assert code == 1 and "attempt 2" in err, err
    failed_id = re.search(r"logs are in run ([0-9a-f]+)", err).group(1)
    failed = requests.get(f"{url}/api/v1/runs/{failed_id}", headers=headers, timeout=30).json()
    assert failed["status"] == "FAILED"
    assert sorted(a["path"] for a in failed["artifacts"] if a["path"].startswith("logs/")) == ["logs/data.attempt-1.log", "logs/train.attempt-1.log", "logs/train.attempt-2.log"]
    code, _, err = kiln_run(store, "--runner", "process", "--param", "samples_per_class=0", "--resume", failed_id)
    assert code == 1 and "resumed: dataset version" in err, err
    # An unknown parameter is a usage error: not retried.
    code, _, err = kiln_run(store, "--runner", "process", "--param", "epoch=3", "--retries", "2", "--no-cache")
    assert code == 1 and "unknown parameter `epoch`" in err and "attempt 2" not in err, err


def test_a_schedule_runs_the_workflow_from_the_server(kiln_server):
    store = kiln_server
    url, token = store
    headers = {"Authorization": f"Bearer {token}"}
    componentize(store)
    env = {**os.environ, "KILN_SERVER": url, "KILN_TOKEN": token}
    made = subprocess.run([kiln_binary(), "schedule", HANDLE, "--cron", "*/2 * * * * *", "--runner", "process", "--json"], capture_output=True, text=True, timeout=60, env=env)
    assert made.returncode == 0, made.stderr
    schedule = json.loads(made.stdout)
    try:
        deadline = time.time() + 120
        firings = []
        while len(firings) < 2:
            assert time.time() < deadline, firings
            seen = requests.get(f"{url}/api/v1/schedules/{schedule['id']}", headers=headers, timeout=10).json()
            if seen.get("last_exit") is not None and (not firings or seen["last_fired_at"] != firings[-1]["last_fired_at"]):
                firings.append(seen)
            time.sleep(0.3)
    finally:
        subprocess.run([kiln_binary(), "schedules", "delete", schedule["id"]], capture_output=True, env=env, timeout=60)
    assert all(f["last_exit"] == 0 for f in firings), firings
    # The first firing trained; the next found nothing changed.
    page = requests.post(f"{url}/api/v1/runs/search", json={"experiments": [HANDLE], "filter": f"tags.`kiln.schedule` = '{schedule['id']}'"}, headers=headers, timeout=30).json()
    assert len(page["runs"]) == 1 and page["runs"][0]["status"] == "FINISHED"
    assert firings[0]["last_run_id"] == page["runs"][0]["id"]
    assert firings[-1].get("last_run_id") is None
