"""Types from the kernel's knowledge: the example notebook's tagged cells run in the real
Kiln kernel, its `kiln` comm hands over the records of what ran, and `kiln show
--kernel-cells` takes those types (marked as the kernel's) instead of asking the compiler;
they are the types the compiler's probe finds."""

import json
import os
import re
import subprocess
import uuid

import jupyter_client
import nbformat

from conftest import kiln_binary
from test_pipeline import NOTEBOOK


def kernel_records(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    manager = jupyter_client.KernelManager(kernel_name="kiln")
    manager.start_kernel(cwd=str(NOTEBOOK.parent))
    client = manager.blocking_client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        for cell in nb.cells:
            tagged = cell.cell_type == "code" and cell.source.startswith("// kiln:") and "infer" not in cell.source.splitlines()[0]
            if tagged:
                reply = client.execute_interactive(cell.source, timeout=2400, output_hook=lambda msg: None)
                assert reply["content"]["status"] == "ok", reply["content"]
        comm_id = uuid.uuid4().hex
        client.shell_channel.send(client.session.msg("comm_open", {"comm_id": comm_id, "target_name": "kiln", "data": {}}))
        client.shell_channel.send(client.session.msg("comm_msg", {"comm_id": comm_id, "data": {"request": "cells"}}))
        while True:
            msg = client.get_iopub_msg(timeout=60)
            data = msg["content"].get("data", {})
            if msg["msg_type"] == "comm_msg" and "cells" in data:
                break
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    path = tmp_path / "cells.json"
    path.write_text(json.dumps(data))
    return path


def show(*extra):
    result = subprocess.run([kiln_binary(), "show", str(NOTEBOOK), "--handle", "iris-show", *extra], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_kernel_types_are_used_and_agree_with_the_compiler(kiln_server, tmp_path, monkeypatch):
    url, token = kiln_server
    monkeypatch.setenv("KILN_SERVER", url)  # the train cell logs a run
    monkeypatch.setenv("KILN_TOKEN", token)
    records = kernel_records(tmp_path)
    from_kernel = show("--kernel-cells", str(records))
    from_rustc = show()
    marked = [line for line in from_kernel.splitlines() if line.endswith("[typed by the kernel]")]
    # lr, epochs, samples_per_class, flowers (the cleaned DataFrame), varmap.
    assert len(marked) == 5, from_kernel
    assert re.sub(r"  \[typed by the kernel\]", "", from_kernel) == from_rustc
    assert "varmap: VarMap as safetensors" in from_kernel
    assert "flowers: DataFrame as parquet" in from_kernel, from_kernel
