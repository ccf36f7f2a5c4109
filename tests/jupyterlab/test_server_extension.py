"""Kiln's Jupyter server extension against a real Jupyter server, the real `kiln` CLI and a
real `kiln server`: Jupyter's authentication guards every route, the store token is added on
the server and never reaches the browser, a componentize child (and everything it started)
stops when its request goes away, and bad requests are refused naming the field."""

import asyncio
import json
import os
import time

import pathlib
import socket
import sys
import urllib.request

import psutil
import pytest
import tornado.httpclient

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Run on its own (`-p pytest_jupyter.jupyter_server`, whose fixtures set HOME to a temporary
# directory for the Jupyter server): the server extension from the source tree, the shared
# `kiln server` helpers, and the toolchain found where it was before HOME moved.
sys.path[:0] = [str(ROOT / "extension"), str(ROOT / "tests")]
from conftest import kiln_binary, start_kiln_server  # noqa: E402

TOOLCHAIN = {
    "CARGO_HOME": os.environ.get("CARGO_HOME") or os.path.expanduser("~/.cargo"),
    "RUSTUP_HOME": os.environ.get("RUSTUP_HOME") or os.path.expanduser("~/.rustup"),
}
NOTEBOOK = "notebooks/classifier.ipynb"


@pytest.fixture
def jp_root_dir():
    """The repository: notebooks/ and the SDK their `:dep` lines point at."""
    return ROOT


@pytest.fixture
def store_process(tmp_path):
    """The `kiln server` the Jupyter server forwards to: (process, url, admin token)."""
    proc, url, token = start_kiln_server(tmp_path / "store")
    yield proc, url, token
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.fixture
def store(store_process):
    _, url, token = store_process
    return url, token


def store_api(url, token, method, path, body=None):
    """A request straight to the store (not through Jupyter): (status, JSON answer)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}/api/v1/{path}", data=data, method=method, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture
def jp_server_config(store):
    url, token = store
    return {
        "ServerApp": {"jpserver_extensions": {"kiln_jupyterlab": True}},
        "Kiln": {"kiln_bin": kiln_binary(), "store_url": url, "store_token": token, "registry": ""},
    }


def notebook_json(path=NOTEBOOK):
    return json.loads((ROOT / path).read_text())


async def post(jp_fetch, route, body):
    return await jp_fetch("kiln", route, method="POST", body=json.dumps(body), raise_error=False)


async def test_routes_need_jupyters_authentication(http_server_client, jp_http_port, jp_base_url):
    client = tornado.httpclient.AsyncHTTPClient()
    routes = [("status", "GET", None), ("api/v1/experiments", "GET", None), ("v2/health/live", "GET", None), ("show", "POST", "{}"), ("componentize", "POST", "{}")]
    for route, method, body in routes:
        answer = await client.fetch(f"http://127.0.0.1:{jp_http_port}{jp_base_url}kiln/{route}", method=method, body=body, raise_error=False)
        assert answer.code == 403, (route, answer.code)


async def test_the_store_token_is_added_here_and_never_echoed(jp_fetch, store):
    url, token = store
    created = await post(jp_fetch, "api/v1/experiments", {"name": "from-the-lab"})
    assert created.code in (200, 201), created.body
    listed = await jp_fetch("kiln", "api/v1/experiments", raise_error=False)
    assert listed.code == 200
    assert "from-the-lab" in [e["name"] for e in json.loads(listed.body)]
    # What the store says is passed on as it said it: an unknown run is its own 404.
    missing = await jp_fetch("kiln", "api/v1/runs/no-such-run", raise_error=False)
    assert missing.code == 404 and json.loads(missing.body)
    status = await jp_fetch("kiln", "status", raise_error=False)
    assert json.loads(status.body)["store"] == {"ok": True, "url": url}
    # The server's root, as a kernel names a notebook (the Experiments panel goes from a run's
    # notebook path back to the file under it).
    assert str(ROOT) in json.loads(status.body)["root"]
    for answer in (created, listed, missing, status):
        assert token not in answer.body.decode(), "the store token reached the browser"
        assert all(token not in value for _, value in answer.headers.get_all())


async def test_the_gateway_is_forwarded_and_refusals_come_back_whole(jp_fetch, store):
    # The serving gateway's OIP v2 face, as the Deployments panel's "try it" box reaches it:
    # an unknown model is the gateway's own 404.
    live = await jp_fetch("kiln", "v2/health/live", raise_error=False)
    assert live.code == 200, live.body
    unknown = await jp_fetch("kiln", "v2/models/nobody/infer", method="POST", body=json.dumps({"inputs": []}), raise_error=False)
    assert unknown.code == 404 and "nobody" in json.loads(unknown.body)["error"], unknown.body
    # A deployment change's refusal comes back as the store said it, naming the field (who
    # made a change is checked by the browser tests, whose deployments have instances).
    refused = await jp_fetch("kiln", "api/v1/deployments/nobody", method="PUT", body=json.dumps({"model_version": 1, "strategy": "canary:0"}), raise_error=False)
    assert refused.code == 400 and json.loads(refused.body)["field"] == "strategy", refused.body


async def test_a_store_that_goes_away_mid_deploy_leaves_the_deployment_whole(jp_fetch, store_process, tmp_path):
    proc, url, token = store_process
    # A registry that takes connections and never answers: the instance waits for its image,
    # so the deploy is still in flight when the store is killed.
    silent = socket.create_server(("127.0.0.1", 0))
    registry = f"127.0.0.1:{silent.getsockname()[1]}"
    for path, body in [
        ("models", {"name": "iris"}),
        ("models/iris/versions", {"source": "artifact:" + "0" * 64}),
        ("code-packages", {"handle": "iris", "role": "infer", "image": f"{registry}/iris-infer:latest", "digest": "sha256:" + "e" * 64, "notebook_sha256": "a" * 64, "cell_sha256": [], "cargo_lock_sha256": "d" * 64}),
    ]:
        status, answer = store_api(url, token, "POST", path, body)
        assert status in (200, 201), (path, answer)
    change = {"model_version": 1, "strategy": "blue-green", "runner": "process"}
    deploy = asyncio.ensure_future(jp_fetch("kiln", "api/v1/deployments/iris", method="PUT", body=json.dumps(change), raise_error=False))
    deadline = time.monotonic() + 120
    instances = []
    while not instances:
        assert not deploy.done(), deploy.result().body
        assert time.monotonic() < deadline, "the store started no instance"
        await asyncio.sleep(0.1)
        instances = [p for p in psutil.Process(proc.pid).children() if "instance" in p.cmdline()]
    proc.kill()
    proc.wait()

    answer = await deploy
    assert answer.code == 504, (answer.code, answer.body)
    message = json.loads(answer.body)["message"]
    assert message.startswith(f"the Kiln store at {url} went away before it answered"), message
    assert "saved whole or not at all" in message and "look again" in message, message
    # The instance it was starting did not outlive it.
    gone, alive = psutil.wait_procs(instances, timeout=60)
    assert not alive, [p.cmdline() for p in alive]
    silent.close()
    # Back on the same data: nothing half-made, nothing served.
    again, url, token = start_kiln_server(tmp_path / "store")
    try:
        assert store_api(url, token, "GET", "deployments/iris")[0] == 404
        assert store_api(url, token, "GET", "deployments") == (200, [])
    finally:
        again.terminate()
        again.wait(timeout=60)


async def test_status_names_what_does_not_answer(jp_fetch, jp_serverapp):
    kiln = jp_serverapp.web_app.settings["kiln"]
    kiln.store_url = "http://127.0.0.1:9"  # discard: nothing listens there
    kiln.registry = "127.0.0.1:9"
    kiln.kiln_bin = "/nonexistent/kiln"
    status = json.loads((await jp_fetch("kiln", "status")).body)
    assert not status["store"]["ok"] and "does not answer" in status["store"]["reason"]
    assert not status["registry"]["ok"] and "does not answer" in status["registry"]["reason"]
    assert not status["cli"]["ok"] and "KILN_BIN" in status["cli"]["reason"]
    forwarded = await jp_fetch("kiln", "api/v1/experiments", raise_error=False)
    assert forwarded.code == 502 and "does not answer" in json.loads(forwarded.body)["message"]


async def test_show_reads_the_editors_content(jp_fetch):
    notebook = notebook_json()
    answer = await post(jp_fetch, "show", {"path": NOTEBOOK, "content": notebook})
    assert answer.code == 200, answer.body
    reply = json.loads(answer.body)
    assert reply["ok"] and {"setup", "data", "train", "infer"} <= set(reply["analysis"]["steps"]), reply
    # An unsaved edit: the data cell now uses a name only an untagged cell defines.
    edited = json.loads(json.dumps(notebook))
    edited["cells"].insert(1, {"cell_type": "code", "id": "scratch", "metadata": {}, "source": "let scratch = 1;", "outputs": [], "execution_count": None})
    data = next(c for c in edited["cells"] if "data" in c.get("metadata", {}).get("tags", []))
    data["source"] = "".join(data["source"]) + "\nlet unused = scratch;"
    reply = json.loads((await post(jp_fetch, "show", {"path": NOTEBOOK, "content": edited})).body)
    assert not reply["ok"]
    [problem] = [d for d in reply["analysis"]["diagnostics"] if "scratch" in d["message"]]
    assert problem["cell_id"] == data["id"], problem


# (request body, status, what the message must name)
BAD_REQUESTS = [
    ("show", "not json", 400, "`body`"),
    ("show", [], 400, "`body`"),
    ("show", {"content": {}}, 400, "`path`"),
    ("show", {"path": NOTEBOOK}, 400, "`content`"),
    ("show", {"path": NOTEBOOK, "content": "cells"}, 400, "`content`"),
    ("show", {"path": "../outside.ipynb", "content": {}}, 400, "`path`"),
    ("show", {"path": "README.md", "content": {}}, 400, "`path`"),
    ("show", {"path": NOTEBOOK, "content": {}, "types": "yes"}, 400, "`types`"),
    # Not nbformat: the CLI's own message, naming the notebook.
    ("show", {"path": NOTEBOOK, "content": {"cells": "none"}}, 422, "classifier.ipynb"),
    ("componentize", {"path": NOTEBOOK}, 400, "`handle`"),
    ("componentize", {"path": NOTEBOOK, "handle": ""}, 400, "`handle`"),
    ("componentize", {"path": NOTEBOOK, "handle": "h", "kernel_cells": []}, 400, "`kernel_cells`"),
    ("train", {}, 400, "`handle`"),
    ("train", {"handle": "iris", "params": ["epochs=1"]}, 400, "`params`"),
    ("train", {"handle": "iris", "params": {"epochs": 1}}, 400, "`params.epochs`"),
    ("train", {"handle": "iris", "runner": "docker"}, 400, "`runner`"),
]


@pytest.mark.parametrize("route,body,status,named", BAD_REQUESTS)
async def test_bad_requests_name_the_field(jp_fetch, route, body, status, named):
    raw = body if isinstance(body, str) else json.dumps(body)
    answer = await jp_fetch("kiln", route, method="POST", body=raw, raise_error=False)
    assert answer.code == status, (answer.code, answer.body)
    assert named in json.loads(answer.body)["message"], answer.body


async def test_training_a_handle_with_no_images_ends_with_the_clis_reason(jp_fetch):
    answer = await post(jp_fetch, "train", {"handle": "nothing-registered", "params": {"epochs": "5"}})
    assert answer.code == 200, answer.body
    events = [json.loads(line) for line in answer.body.decode().splitlines()]
    assert events[0]["event"] == "started"
    assert events[-1]["event"] == "exit" and events[-1]["code"] != 0, events
    assert "nothing-registered" in events[-1]["message"], events[-1]


async def test_a_handle_the_cli_refuses_is_an_error_event(jp_fetch):
    answer = await post(jp_fetch, "componentize", {"path": NOTEBOOK, "handle": "Not A Handle"})
    events = [json.loads(line) for line in answer.body.decode().splitlines()]
    assert events[0]["event"] == "started"
    assert events[-1]["event"] == "exit" and events[-1]["code"] == 1
    [error] = [e for e in events if e["event"] == "error"]
    assert "cannot be a handle" in error["message"]


def group(pgid):
    return [p for p in psutil.process_iter(["pid", "name"]) if _pgid(p.pid) == pgid]


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


async def test_closing_the_request_stops_the_build(jp_serverapp, http_server_client, jp_http_port, jp_base_url, tmp_path, monkeypatch):
    # A work directory of its own: nothing built yet, so cargo is busy for a while.
    monkeypatch.setenv("KILN_WORK_DIR", str(tmp_path / "work"))
    for name, value in TOOLCHAIN.items():
        monkeypatch.setenv(name, value)
    token = jp_serverapp.identity_provider.token
    body = json.dumps({"path": NOTEBOOK, "handle": "cancelled"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    writer.write(
        f"POST {jp_base_url}kiln/componentize HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    pid = None
    while pid is None:
        line = await asyncio.wait_for(reader.readline(), 120)
        assert line, "the stream ended before the child started"
        if b'"started"' in line:
            pid = json.loads(line[line.index(b"{") :])["pid"]
    # Wait until the build is under way: cargo or rustc in the child's group.
    deadline = time.monotonic() + 600
    while not any(p.info["name"] in ("cargo", "rustc") for p in group(pid)):
        assert time.monotonic() < deadline, "no cargo started"
        await asyncio.sleep(0.2)
    writer.close()
    deadline = time.monotonic() + 30
    while group(pid):
        assert time.monotonic() < deadline, f"still running: {[p.info for p in group(pid)]}"
        await asyncio.sleep(0.2)


def test_a_root_in_the_home_directory_is_found(tmp_path, monkeypatch):
    """Jupyter keeps a root under HOME as `~/…` in its settings (`server_root_dir`)."""
    from kiln_jupyterlab.handlers import BadRequest, notebook_path

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "work").mkdir()
    assert notebook_path("~/work", "a/n.ipynb") == str(tmp_path / "work" / "a" / "n.ipynb")
    with pytest.raises(BadRequest, match="outside"):
        notebook_path("~/work", "../n.ipynb")
