"""Serving through `kiln server`'s gateway with real instances of the componentized infer
step: blue-green, canary and bandit deployments switched under load with zero failed
requests, an instance killed and replaced, traffic reported per version and minute, malformed
bodies (JSON and binary) refused with 400, overload refused with 429/503, and the unmodified Triton client."""

import collections
import json
import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from conftest import kiln_binary, running_kiln_server, start_kiln_server
from test_pipeline import HANDLE, componentize

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
BODY = {"inputs": [{"name": "features", "shape": [2, 4], "datatype": "FP32", "data": ROWS}]}


def kiln(store, *args, check=True):
    url, token = store
    result = subprocess.run([kiln_binary(), *args], capture_output=True, text=True, timeout=600, env={**os.environ, "KILN_SERVER": url, "KILN_TOKEN": token})
    if check:
        assert result.returncode == 0, f"kiln {' '.join(args)}: {result.stderr}"
    return result


def two_versions(store):
    """The example notebook componentized and trained twice: versions 1 and 2."""
    componentize(store)
    kiln(store, "run", HANDLE, "--runner", "process")
    kiln(store, "run", HANDLE, "--runner", "process", "--param", "epochs=150")


def one_version_deployed(store):
    """The example notebook componentized, trained once and deployed (blue-green)."""
    componentize(store)
    kiln(store, "run", HANDLE, "--runner", "process")
    kiln(store, "deploy", HANDLE, "--model-version", "1", "--runner", "process")


class Load:
    """Threads sending the same request until stopped: (time, status, version) per answer."""

    def __init__(self, url, threads=6):
        self.url, self.answers, self.stop = url, [], threading.Event()
        self.threads = [threading.Thread(target=self.loop) for _ in range(threads)]

    def loop(self):
        session = requests.Session()
        while not self.stop.is_set():
            try:
                r = session.post(f"{self.url}/v2/models/{HANDLE}/infer", json=BODY, timeout=30)
                self.answers.append((time.time(), r.status_code, r.headers.get("kiln-model-version")))
            except requests.RequestException as error:
                self.answers.append((time.time(), type(error).__name__, None))

    def __enter__(self):
        [t.start() for t in self.threads]
        return self

    def __exit__(self, *exc):
        self.stop.set()
        [t.join() for t in self.threads]


def test_switches_under_load_fail_no_request(kiln_server):
    store = kiln_server
    url, token = store
    two_versions(store)
    kiln(store, "deploy", HANDLE, "--model-version", "1", "--runner", "process")
    with Load(url) as load:
        time.sleep(1)
        kiln(store, "deploy", HANDLE, "--model-version", "2", "--strategy", "canary:30", "--runner", "process")
        canary_from = time.time()
        time.sleep(3)
        canary_to = time.time()
        # The same candidate again with another percent changes the split in place.
        kiln(store, "deploy", HANDLE, "--model-version", "2", "--strategy", "canary:80")
        wider_from = time.time()
        time.sleep(3)
        wider_to = time.time()
        kiln(store, "promote", HANDLE)
        time.sleep(1)
        kiln(store, "deploy", HANDLE, "--model-version", "1", "--strategy", "blue-green")
        time.sleep(1)
        kiln(store, "rollback", HANDLE)
        time.sleep(1)
        # An instance that dies is replaced; requests that found it dead go elsewhere.
        subprocess.run(["pkill", "-9", "-f", f"{HANDLE}-infer"], check=False)
        time.sleep(3)
    statuses = collections.Counter(status for _, status, _ in load.answers)
    assert statuses == {200: len(load.answers)}, statuses
    assert len(load.answers) > 200
    in_canary = [v for t, _, v in load.answers if canary_from + 0.5 < t < canary_to]
    share = in_canary.count("2") / len(in_canary)
    assert 0.15 < share < 0.45, share
    in_wider = [v for t, _, v in load.answers if wider_from + 0.5 < t < wider_to]
    wider = in_wider.count("2") / len(in_wider)
    assert 0.65 < wider < 0.95, wider
    deployment = requests.get(f"{url}/api/v1/deployments/{HANDLE}", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert (deployment["stable"], deployment["standby"]) == (2, 1)
    assert [e["action"] for e in deployment["history"]] == ["deploy", "deploy", "deploy", "promote", "deploy", "rollback"]
    traffic = json.loads(kiln(store, "deployments", "traffic", HANDLE, "--json").stdout)
    per_version = collections.Counter()
    for bucket in traffic["buckets"]:
        per_version[bucket["version"]] += bucket["requests"]
        assert bucket["errors"] == 0 and bucket["p99_ms"] >= bucket["p95_ms"] >= bucket["p50_ms"] > 0
    assert per_version[1] > 0 and per_version[2] > 0
    assert sum(per_version.values()) == len(load.answers)
    # Lineage reaches the deployments serving a version.
    assert f"served by deployment {HANDLE} (blue-green, standby)" in kiln(store, "lineage", f"{HANDLE}@1").stdout
    lineage = requests.get(f"{url}/api/v1/lineage/{HANDLE}/2", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert [d["stable"] for d in lineage["deployments"]] == [2]
    table = kiln(store, "deployments", "traffic", HANDLE).stdout
    assert "p99 ms" in table and "│ 2 " in table.replace("┆", "│")


def test_a_bandit_learns_from_feedback_and_keeps_it_across_a_restart(tmp_path):
    with running_kiln_server(tmp_path / "data") as store:
        bandit_learns(store)
    # A restarted server brings the deployment back with what its arms have earned.
    with running_kiln_server(tmp_path / "data") as store:
        url, _ = store
        deadline = time.time() + 60
        while requests.get(f"{url}/v2/models/{HANDLE}/ready", timeout=30).status_code != 200:
            assert time.time() < deadline, "the deployment did not come back within 60 s"
            time.sleep(0.2)
        shown = json.loads(kiln(store, "deployments", "show", HANDLE, "--json").stdout)
        assert (shown["strategy"], shown["arms"]) == ("bandit:thompson", [1, 2]), shown
        session = requests.Session()
        thompson = [session.post(f"{url}/v2/models/{HANDLE}/infer", json=BODY, timeout=30).json()["model_version"] for _ in range(50)]
        assert thompson.count("2") > 45
        promoted = json.loads(kiln(store, "promote", HANDLE, "--json").stdout)
        assert promoted["stable"] == 2 and promoted["arms"] == [2]


def bandit_learns(store):
    url, _ = store
    two_versions(store)
    kiln(store, "deploy", HANDLE, "--model-version", "1", "--strategy", "bandit:epsilon-greedy:0.1", "--runner", "process")
    kiln(store, "deploy", HANDLE, "--model-version", "2", "--strategy", "bandit:epsilon-greedy:0.1")
    session = requests.Session()
    answered = []
    for i in range(300):
        r = session.post(f"{url}/v2/models/{HANDLE}/infer", json=BODY, timeout=30).json()
        version = r["model_version"]
        answered.append(version)
        # Version 2 pleases, version 1 does not. Half the feedback in Seldon's shape.
        reward = 1.0 if version == "2" else 0.0
        feedback = {"id": r["id"], "reward": reward} if i % 2 else {"request": BODY, "response": r, "reward": reward}
        assert session.post(f"{url}/v2/models/{HANDLE}/feedback", json=feedback, timeout=30).status_code == 200
    assert answered[-100:].count("2") > 80, collections.Counter(answered[-100:])
    bad = session.post(f"{url}/v2/models/{HANDLE}/feedback", json={"id": "nope", "reward": 1}, timeout=30)
    assert bad.status_code == 404 and "nope" in bad.json()["error"]
    assert session.post(f"{url}/v2/models/{HANDLE}/feedback", json={"id": "x", "reward": 7}, timeout=30).status_code == 400
    # Thompson sampling over the same arms and rewards.
    kiln(store, "deploy", HANDLE, "--model-version", "2", "--strategy", "bandit:thompson")
    thompson = [session.post(f"{url}/v2/models/{HANDLE}/infer", json=BODY, timeout=30).json()["model_version"] for _ in range(50)]
    assert thompson.count("2") > 45
    traffic = json.loads(kiln(store, "deployments", "traffic", HANDLE, "--json").stdout)
    rewards = {b["version"]: b["mean_reward"] for b in traffic["buckets"] if b["rewards"]}
    assert rewards[2] == 1.0 and rewards[1] == 0.0


# Each malformed body, and the start of what the refusal says: the field it names, then why.
MALFORMED = [
    (b"", "body: malformed JSON: EOF while parsing a value"),
    (b"not json", "body: malformed JSON: expected ident"),
    (b"[]", "body: invalid length"),
    (b"{}", "body: missing field `inputs`"),
    (b'{"inputs": {}}', "inputs: invalid type: map, expected a sequence"),
    (b'{"inputs": []}', "inputs: is empty; send at least one input tensor"),
    (b'{"inputs": [{}]}', "inputs[0]: missing field `name`"),
    (b'{"inputs": [{"name": "features"}]}', "inputs[0]: missing field `shape`"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32"}]}', "inputs[0].data: is missing; send the elements as an array, or as bytes after the JSON header with parameters.binary_data_size"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "data": [1, 2, 3, 4]}]}', "inputs[0]: missing field `datatype`"),
    (b'{"inputs": [{"name": "features", "datatype": "FP32", "data": [1, 2, 3, 4]}]}', "inputs[0]: missing field `shape`"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP33", "data": [1, 2, 3, 4]}]}', "inputs[0].datatype: `FP33` is not a datatype (one of BOOL, UINT8, UINT16, UINT32, UINT64,"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3]}]}', "inputs[0].data: has 3 element(s) but shape [1, 4] needs 4"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4, 5]}]}', "inputs[0].data: has 5 element(s) but shape [1, 4] needs 4"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, "x", 4]}]}', 'inputs[0].data[2]: "x" is not a number (datatype FP32)'),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, null, 4]}]}', "inputs[0].data[2]: null is not a number (datatype FP32)"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, true, 4]}]}', "inputs[0].data[2]: true is not a number (datatype FP32)"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": 5}]}', "inputs[0].data: must be an array of elements"),
    (b'{"inputs": [{"name": "features", "shape": [1, -4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}', "inputs[0].shape[1]: is -4; a request's dimensions are sizes, 0 or more"),
    (b'{"inputs": [{"name": "features", "shape": "1,4", "datatype": "FP32", "data": [1, 2, 3, 4]}]}', 'inputs[0].shape: invalid type: string "1,4", expected a sequence'),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1e40, 2, 3, 4]}]}', "inputs[0].data[0]: 10000000000000000000000000000000000000000 is out of range for FP32"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "INT32", "data": [1, 2, 3, 4]}]}', "inputs[0].datatype: is INT32; this model takes FP32"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "UINT8", "data": [1, 2, 3, 300]}]}', "inputs[0].data[3]: 300 is out of range for UINT8 (0..=255)"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "INT32", "data": [1, 2, 3, 4.5]}]}', "inputs[0].data[3]: 4.5 is not an integer in -2147483648..=2147483647 (datatype INT32)"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "BOOL", "data": [1, 0, 1, 0]}]}', "inputs[0].data[0]: 1 is not a boolean (datatype BOOL)"),
    (b'{"inputs": [{"name": "features", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}', "inputs[0].shape: is [1, 3]; this model takes [-1, 4] (-1: any size)"),
    (b'{"inputs": [{"name": "features", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}', "inputs[0].shape: is [4]; this model takes [-1, 4] (-1: any size)"),
    (b'{"inputs": [{"name": "other", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}', 'inputs: are ["other"]; this model takes one input, `features`'),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}, {"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}', "inputs[1].name: `features` is given twice"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}], "outputs": [{"name": "probabilities"}]}', "outputs[0].name: `probabilities` is not an output of this model (it has `output`)"),
    (b'{"inputs": [{"name": "", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}', "inputs[0].name: is empty"),
    (b'{"inputs": [{"name": "features", "shape": [100000, 100000], "datatype": "FP32", "data": []}]}', "inputs[0].shape: [100000, 100000] holds 10000000000 elements, over the limit of"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": ' + b"[" * 50 + b"1" + b"]" * 50 + b"}]}", "inputs[0].data[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: is nested more than 32 deep"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]', "body: malformed JSON: EOF while parsing an object"),
    (b'{"id": 7, "inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}', "id: invalid type: integer `7`, expected a string"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}], "parameters": []}', "parameters: invalid type: sequence, expected a map"),
    (b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [' + b"1.0, " * (17 << 20) + b"1.0]}]}", "body: larger than 64 MiB"),
]


def test_malformed_bodies_get_400_and_say_why(kiln_server):
    store = kiln_server
    url, _ = store
    one_version_deployed(store)
    session = requests.Session()
    for body, says in MALFORMED:
        r = session.post(f"{url}/v2/models/{HANDLE}/infer", data=body, headers={"content-type": "application/json"}, timeout=60)
        assert r.status_code == 400, (body[:120], r.status_code, r.text[:200])
        assert r.json()["error"].startswith(says), (body[:120], says, r.json()["error"][:300])
    assert session.post(f"{url}/v2/models/nope/infer", json=BODY, timeout=30).status_code == 404
    assert session.post(f"{url}/v2/models/{HANDLE}/versions/9/infer", json=BODY, timeout=30).status_code == 404
    # A good request still works after all that.
    assert session.post(f"{url}/v2/models/{HANDLE}/infer", json=BODY, timeout=30).status_code == 200
    # A null id is an absent id: answered, with an id the gateway made.
    r = session.post(f"{url}/v2/models/{HANDLE}/infer", json={"id": None, **BODY}, timeout=30)
    assert r.status_code == 200, r.text[:200]
    assert isinstance(r.json()["id"], str) and r.json()["id"], r.json()


def test_overload_is_refused_not_queued_without_bound(tmp_path):
    with running_kiln_server(tmp_path / "data", "--max-in-flight", "1", "--max-waiting", "2", "--workers", "1") as store:
        url, _ = store
        one_version_deployed(store)
        big = {"inputs": [{"name": "features", "shape": [40000, 4], "datatype": "FP32", "data": [[5.1, 3.5, 1.4, 0.2]] * 40000}]}
        statuses = []

        def send():
            try:
                r = requests.post(f"{url}/v2/models/{HANDLE}/infer", json=big, timeout=60)
                statuses.append((r.status_code, r.json().get("error")))
            except requests.RequestException as error:
                statuses.append((type(error).__name__, None))

        threads = [threading.Thread(target=send) for _ in range(24)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        codes = collections.Counter(code for code, _ in statuses)
        assert set(codes) <= {200, 429, 503}, statuses
        assert codes[200] >= 1 and codes[429] >= 1, codes
        assert all("overloaded" in error for code, error in statuses if code in (429, 503))


def test_the_triton_client_works_against_the_gateway(kiln_server):
    """tritonclient as its users call it: by default tensors go as bytes after the JSON header
    both ways (the binary tensor data extension); with `binary_data=False`, as JSON."""
    store = kiln_server
    url, _ = store
    one_version_deployed(store)
    python = os.environ.get("KILN_TRITON_PYTHON")
    if not python:
        pytest.fail("KILN_TRITON_PYTHON is not set: run the suite with `cargo xtask test`, which makes the tritonclient venv")
    check = subprocess.run([python, os.path.join(os.path.dirname(__file__), "triton_check.py"), url.removeprefix("http://"), HANDLE], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    summary = json.loads(check.stdout)
    assert summary["live"] and summary["ready"] and summary["model_ready"]
    assert summary["metadata"]["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}]
    assert "binary_tensor_data" in summary["server"]["extensions"]
    direct = requests.post(f"{url}/v2/models/{HANDLE}/infer", json=BODY, timeout=30).json()["outputs"][0]["data"]
    for way in ("default", "json", "mixed"):
        assert [v for row in summary[way]["output"] for v in row] == pytest.approx(direct, abs=1e-6), way
        assert summary[way]["response"]["model_version"] == "1", way
    assert summary["json"]["response"]["id"] == "triton-1"
    # The default answer came as bytes: its output has a size and no data.
    output = summary["default"]["response"]["outputs"][0]
    assert output["parameters"] == {"binary_data_size": 4 * len(direct)} and "data" not in output
    assert "data" in summary["mixed"]["response"]["outputs"][0]
    assert "shape" in summary["bad_shape"]


def binary_body(header, tail):
    """A request of the binary tensor data extension: JSON `header`, then `tail` bytes."""
    head = json.dumps(header).encode()
    return head + tail, len(head)


FEATURES = struct.pack("<8f", *[v for row in ROWS for v in row])


def binary_input(size, **more):
    return {"inputs": [{"name": "features", "shape": [2, 4], "datatype": "FP32", "parameters": {"binary_data_size": size}, **more}]}


# (body, Inference-Header-Content-Length or None for the JSON's own length, what the 400 says)
MALFORMED_BINARY = [
    (*binary_body(binary_input(28), FEATURES[:28]), "inputs[0].parameters.binary_data_size: is 28 but shape [2, 4] of FP32 needs 32 bytes (8 × 4)"),
    (*binary_body(binary_input(32), FEATURES[:20]), "inputs[0].parameters.binary_data_size: is 32 but only 20 bytes follow the JSON header for it"),
    (*binary_body(binary_input(32), FEATURES + b"\0" * 4), "body: 4 bytes follow the last input's binary data (inputs claim 32 of the 36 after the JSON header)"),
    (*binary_body(binary_input(32), FEATURES[:4] + struct.pack("<f", float("nan")) + FEATURES[8:]), "inputs[0].binary_data[1]: NaN is not a finite number (datatype FP32)"),
    (*binary_body(binary_input(32, data=ROWS), FEATURES), "inputs[0]: has both data and parameters.binary_data_size; send the elements one way"),
    (*binary_body(binary_input("32"), FEATURES), 'inputs[0].parameters.binary_data_size: "32" is not a byte count'),
    (*binary_body(binary_input(32, datatype="BOOL"), FEATURES), "inputs[0].parameters.binary_data_size: is 32 but shape [2, 4] of BOOL needs 8 bytes (8 × 1)"),
    (*binary_body(binary_input(8, datatype="BOOL"), bytes([1, 0, 2, 0, 0, 0, 0, 0])), "inputs[0].binary_data[2]: byte 2 is not a boolean (0 or 1)"),
    (*binary_body({"inputs": [{"name": "features", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 6}}]}, struct.pack("<I", 9) + b"ab"),
     "inputs[0].binary_data[0]: its length prefix says 9 bytes but only 2 remain in binary_data_size"),
    (*binary_body({"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32"}]}, b""), "inputs[0].data: is missing; send the elements as an array, or as bytes after the JSON header"),
    (binary_body(binary_input(32), FEATURES)[0], 9999, "Inference-Header-Content-Length: is 9999 but the body has only"),
    (binary_body(binary_input(32), FEATURES)[0], "lots", "Inference-Header-Content-Length: `lots` is not a byte count"),
    (binary_body(binary_input(32), FEATURES)[0], 20, "inputs[0].name: malformed JSON: EOF while parsing"),
]


def test_malformed_binary_bodies_get_400_and_say_why(kiln_server):
    """The binary tensor data extension's bodies, refused as the JSON ones are: 400 naming
    the field; a good binary request answered after them."""
    store = kiln_server
    url, _ = store
    one_version_deployed(store)
    session = requests.Session()
    for body, length, says in MALFORMED_BINARY:
        headers = {"content-type": "application/octet-stream", "inference-header-content-length": str(length)}
        r = session.post(f"{url}/v2/models/{HANDLE}/infer", data=body, headers=headers, timeout=60)
        assert r.status_code == 400, (says, r.status_code, r.text[:200])
        assert r.json()["error"].startswith(says), (says, r.json()["error"][:300])
    body, length = binary_body({**binary_input(32), "parameters": {"binary_data_output": True}}, FEATURES)
    r = session.post(f"{url}/v2/models/{HANDLE}/infer", data=body, headers={"inference-header-content-length": str(length)}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream", (r.status_code, r.text[:200])
    header = json.loads(r.content[: int(r.headers["inference-header-content-length"])])
    size = header["outputs"][0]["parameters"]["binary_data_size"]
    answer = struct.unpack(f"<{size // 4}f", r.content[-size:])
    direct = session.post(f"{url}/v2/models/{HANDLE}/infer", json=BODY, timeout=30).json()["outputs"][0]["data"]
    assert list(answer) == pytest.approx(direct, abs=1e-6)
    assert header["id"], "the gateway put an id into the JSON header"


def http_head(url, body_length):
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    head = f"POST /v2/models/{HANDLE}/infer HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {body_length}\r\n\r\n"
    sock.sendall(head.encode())
    return sock, (host, int(port))


def refuses_connections(address, within=10.0):
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            socket.create_connection(address, timeout=1).close()
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:
            # Caught in the backlog of a listener that is closing: ask again.
            pass
        time.sleep(0.05)
    return False


def read_response(sock):
    """Status, headers (lower-case names) and body of one HTTP/1.1 response."""
    stream = sock.makefile("rb")
    status = int(stream.readline().split()[1])
    headers = {}
    while (line := stream.readline().strip()):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, stream.read(int(headers["content-length"]))


def instance_pids():
    found = subprocess.run(["pgrep", "-f", f"{HANDLE}-infer"], capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}


def test_shutdown_finishes_requests_in_flight_then_stops_instances(tmp_path):
    proc, url, token = start_kiln_server(tmp_path / "data")
    try:
        store = (url, token)
        one_version_deployed(store)
        expected = requests.post(f"{url}/v2/models/{HANDLE}/infer", json=BODY, timeout=30).json()["outputs"]
        instances = instance_pids()
        assert instances
        # A request the gateway has begun: its head and part of its body.
        body = json.dumps(BODY).encode()
        sock, address = http_head(url, len(body))
        sock.sendall(body[:10])
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert refuses_connections(address), "still accepting connections 10 s after SIGTERM"
        time.sleep(0.5)
        assert proc.poll() is None, "the server stopped with a request in flight"
        assert instances <= instance_pids(), "instances stopped with a request in flight"
        sock.sendall(body[10:])
        status, headers, answer = read_response(sock)
        assert status == 200, answer
        assert headers["kiln-model-version"] == "1"
        assert json.loads(answer)["outputs"] == expected
        sock.close()
        assert proc.wait(timeout=60) == 0
        assert not (instances & instance_pids()), "instances outlived the server"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_shutdown_does_not_wait_forever_for_a_stalled_client(tmp_path):
    proc, url, _ = start_kiln_server(tmp_path / "data", "--shutdown-grace", "2")
    try:
        # A request whose body never comes.
        sock, address = http_head(url, 1000)
        time.sleep(0.3)
        stopping = time.time()
        proc.send_signal(signal.SIGTERM)
        assert refuses_connections(address)
        assert proc.wait(timeout=30) == 0
        assert 1.5 < time.time() - stopping < 15
        sock.settimeout(5)
        try:
            assert sock.recv(1024) == b""
        except ConnectionResetError:
            pass
        sock.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_instances_under_podman_serve_and_leave_no_container():
    # What a user does: the server's defaults, a data dir of a usual length (a long one gets
    # TCP instead of a socket), the default runner (podman, since it works here), and
    # podman's own settings (no containers.conf of the project's).
    assert "CONTAINERS_CONF" not in os.environ, "instances must manage with the machine's podman settings"
    data = pathlib.Path(tempfile.mkdtemp(prefix="kiln-serving-", dir="/tmp")) / "data"
    proc, url, token = start_kiln_server(data)
    try:
        store = (url, token)
        componentize(store)
        kiln(store, "run", HANDLE, "--runner", "process")
        kiln(store, "deploy", HANDLE, "--model-version", "1")
        answer = requests.post(f"{url}/v2/models/{HANDLE}/infer", json=BODY, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == "1"
        running = subprocess.run(["podman", "ps", "--format", "{{.Image}}"], capture_output=True, text=True, check=True).stdout
        assert f"{HANDLE}-infer" in running, running
        # The gateway reached the container through a socket in the server's private folder.
        sockets = data / "instances" / "sockets"
        assert [p.name for p in sockets.glob("*/oip.sock")] == ["oip.sock"], list(sockets.rglob("*"))
        assert sockets.stat().st_mode & 0o777 == 0o700
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0
        left = subprocess.run(["podman", "ps", "-a", "--format", "{{.Image}}"], capture_output=True, text=True, check=True).stdout
        assert f"{HANDLE}-infer" not in left, left
        assert not list(sockets.iterdir()), "a stopped instance leaves no socket folder"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(data.parent, ignore_errors=True)


def answered_version(url):
    """The version that answers a request at `url`, or None while none is deployed there."""
    r = requests.post(f"{url}/v2/models/{HANDLE}/infer", json=BODY, timeout=30)
    return r.json()["model_version"] if r.status_code == 200 else None


def wait_for(predicate, what, seconds=30):
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, f"{what} within {seconds} s"
        time.sleep(0.2)


def test_servers_sharing_a_store_route_alike_and_pool_feedback(tmp_path):
    # Both started before any instance: a's instances run with a's token, which b's start
    # must not revoke.
    data = tmp_path / "data"
    with running_kiln_server(data) as a, running_kiln_server(data) as b:
        (url_a, _), (url_b, _) = a, b
        two_versions(a)
        # Deployed through a; b applies it with an instance of its own.
        kiln(a, "deploy", HANDLE, "--model-version", "1", "--runner", "process")
        wait_for(lambda: answered_version(url_b) == "1", "b serves version 1")
        kiln(a, "deploy", HANDLE, "--model-version", "2")
        wait_for(lambda: answered_version(url_b) == "2", "b switches to version 2")
        # A bandit deployed through a learns from feedback sent only to b. Version 1 pleases;
        # without b's rewards a would keep trying version 2, its first untried arm.
        kiln(a, "deploy", HANDLE, "--model-version", "1", "--strategy", "bandit:epsilon-greedy:0.1")
        wait_for(lambda: json.loads(kiln(b, "deployments", "show", HANDLE, "--json").stdout)["arms"] == [2, 1], "the bandit is stored")
        # Until b routes as a bandit (it tries version 1, which has no feedback yet), and then some.
        session, answered, deadline = requests.Session(), [], time.time() + 30
        while "1" not in answered or len(answered) < 100:
            assert time.time() < deadline, "b never routed as the bandit"
            r = session.post(f"{url_b}/v2/models/{HANDLE}/infer", json=BODY, timeout=30).json()
            answered.append(r["model_version"])
            reward = 1.0 if r["model_version"] == "1" else 0.0
            assert session.post(f"{url_b}/v2/models/{HANDLE}/feedback", json={"id": r["id"], "reward": reward}, timeout=30).status_code == 200
        time.sleep(3)
        from_a = [answered_version(url_a) for _ in range(50)]
        # ε = 0.1: about 45 of 50 (35 or fewer: once in a million); with no shared rewards, 0.
        assert from_a.count("1") > 35, collections.Counter(from_a)
        # And the other way round: changed through b, applied by a.
        kiln(b, "deploy", HANDLE, "--model-version", "2", "--strategy", "blue-green")
        wait_for(lambda: [answered_version(url_a) for _ in range(20)] == ["2"] * 20, "a applies b's blue-green switch")

