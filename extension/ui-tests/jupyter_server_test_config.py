"""The Jupyter server the browser tests drive: galata's test settings (no token, the app
exposed to the page), on the port and root directory `cargo xtask test` chose, with Kiln's
server extension pointed at the real store, registry and CLI through the environment."""

import os

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # noqa: F821 - provided by Jupyter when it loads this file
configure_jupyter_server(c)
c.ServerApp.port = int(os.environ.get("KILN_UI_PORT", "8888"))
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.allow_root = True
os.makedirs(os.environ["KILN_UI_ROOT"], exist_ok=True)
c.ServerApp.root_dir = os.environ["KILN_UI_ROOT"]
