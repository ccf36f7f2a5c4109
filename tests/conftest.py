"""A `kiln server` on port 0 in a fresh data dir, for tests that drive it with real clients."""

import contextlib
import os
import pathlib
import subprocess

import pytest


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
