"""A notebook's dependencies are linked once, into one shared library that every cell uses.

Driven through jupyter_client against the installed `kiln` kernelspec. The runtime's memory
map says whether cells run against `libkiln_deps.so`; with `KILN_SHARED_DEPS=0` they link
their dependencies themselves, as evcxr does.
"""

import os
import pathlib

import jupyter_client
import pytest

SDK = pathlib.Path(__file__).resolve().parents[2] / "server-client" / "client"
DEP = f':dep kiln = {{ path = "{SDK}" }}\nuse kiln::prelude::*;'
# The runtime child's memory map: is the shared library loaded?
LOADED = (
    'std::fs::read_to_string("/proc/self/maps").unwrap()'
    '.lines().any(|l| l.ends_with("/libkiln_deps.so"))'
)
TIMEOUT = 900


class Kernel:
    def __init__(self, env):
        self.km = jupyter_client.KernelManager(kernel_name="kiln")
        self.km.start_kernel(env=env, cwd=str(SDK.parents[1] / "notebooks"))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code):
        """Runs a cell; returns its text/plain result and everything it wrote."""
        outputs = []

        def hook(msg):
            content = msg["content"]
            if msg["msg_type"] in ("execute_result", "display_data"):
                outputs.append(content["data"].get("text/plain", ""))
            elif msg["msg_type"] == "stream":
                outputs.append(content["text"])
            elif msg["msg_type"] == "error":
                outputs.append("\n".join(content["traceback"]))

        reply = self.kc.execute_interactive(code, timeout=TIMEOUT, output_hook=hook)
        assert reply["content"]["status"] == "ok", (code, reply["content"], outputs)
        return "".join(outputs)

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(request):
    env = dict(os.environ, **getattr(request, "param", {}))
    k = Kernel(env)
    yield k
    k.close()


def test_cells_run_against_the_shared_library(kernel):
    kernel.run(DEP)
    # The library is built and loaded right after the cell that declared the dependency.
    assert kernel.run(LOADED) == "true"
    # The SDK works from the library: its display protocol, a variable of one of its types.
    assert kernel.run('show("from the shared library");') == "from the shared library"
    kernel.run('let bundle = MimeBundle::html("<b>b</b>", "b");')
    assert kernel.run("show(bundle.clone());") == "b"
    # A dependency declared after the library was loaded is linked into the cells instead,
    # and cells keep working with both.
    kernel.run(':dep evcxr_input = "1"')
    assert kernel.run("show(bundle); 1 + 1") == "b2"
    assert kernel.run(LOADED) == "true"


@pytest.mark.parametrize("kernel", [{"KILN_SHARED_DEPS": "0"}], indirect=True)
def test_the_library_can_be_switched_off(kernel):
    kernel.run(DEP)
    kernel.run('show("linked into the cell");')
    assert kernel.run(LOADED) == "false"
