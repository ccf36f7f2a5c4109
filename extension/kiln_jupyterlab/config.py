"""Where the server extension finds Kiln. Each setting defaults to the environment variable
the `kiln` CLI itself reads, so `cargo xtask lab`, a terminal and a team's JupyterHub
configure it the same way; `c.Kiln.…` in a Jupyter config file overrides it. The store token
stays on the server: no handler ever writes it into a response."""

import os
import shutil

from traitlets import Unicode, default
from traitlets.config import Configurable


class Kiln(Configurable):
    kiln_bin = Unicode(help="The `kiln` CLI (default: $KILN_BIN, else `kiln` on PATH).").tag(config=True)
    store_url = Unicode(help="The Kiln store, e.g. http://127.0.0.1:8765 (default: $KILN_SERVER).").tag(config=True)
    store_token = Unicode(help="The store's bearer token (default: $KILN_TOKEN). Never sent to the browser.").tag(config=True)
    registry = Unicode(help="The OCI registry images are pushed to, HOST:PORT (default: $KILN_REGISTRY).").tag(config=True)

    @default("kiln_bin")
    def _kiln_bin(self):
        return os.environ.get("KILN_BIN") or shutil.which("kiln") or "kiln"

    @default("store_url")
    def _store_url(self):
        return os.environ.get("KILN_SERVER", "").rstrip("/")

    @default("store_token")
    def _store_token(self):
        return os.environ.get("KILN_TOKEN", "")

    @default("registry")
    def _registry(self):
        return os.environ.get("KILN_REGISTRY", "")
