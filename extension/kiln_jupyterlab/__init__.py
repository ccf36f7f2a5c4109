"""Kiln's JupyterLab extension: the prebuilt labextension (tags, the Pipeline panel,
"Componentize notebook") and the thin Jupyter server extension it talks to.

The server extension holds no product logic. It runs the `kiln` CLI as a child process and
forwards `/api/v1/…` to the Kiln store with the store token added on the server, so the
browser only ever talks to the Jupyter server, with Jupyter's own authentication."""

from .handlers import setup_handlers


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "kiln-jupyterlab"}]


def _jupyter_server_extension_points():
    return [{"module": "kiln_jupyterlab"}]


def _load_jupyter_server_extension(server_app):
    setup_handlers(server_app)
    server_app.log.info("kiln_jupyterlab: handlers at %skiln/", server_app.web_app.settings["base_url"])
