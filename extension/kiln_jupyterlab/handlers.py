"""The server extension's routes, under `{base_url}kiln/`, all behind Jupyter's own
authentication:

- `POST show`: `kiln show --stdin --json` over the notebook as the editor holds it;
- `POST componentize`: `kiln componentize --progress json`, its events streamed back one
  JSON object a line as they happen; the build stops when the request goes away (cancel);
- `GET status`: whether the CLI, the store and the registry answer, with the reason if not;
- `/api/v1/…`: forwarded to the Kiln store with the store token added here.

Bad requests are answered 400 with a message naming the field. What the CLI says about the
notebook (its problems, a handle it refuses) comes back as the CLI said it."""

import asyncio
import json
import os
import tempfile

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError

from . import child
from .config import Kiln


class BadRequest(Exception):
    def __init__(self, field, problem):
        super().__init__(f"`{field}`: {problem}")


def _body(handler):
    try:
        body = json.loads(handler.request.body or b"{}")
    except ValueError as error:
        raise BadRequest("body", f"not JSON ({error})") from error
    if not isinstance(body, dict):
        raise BadRequest("body", "must be a JSON object")
    return body


def _field(body, name, kind, required=True, default=None):
    if name not in body or body[name] is None:
        if required:
            raise BadRequest(name, "required")
        return default
    value = body[name]
    names = {str: "a string", dict: "an object", bool: "true or false"}
    if not isinstance(value, kind) or (kind is str and not value.strip()):
        raise BadRequest(name, f"must be {'a non-empty string' if kind is str else names[kind]}")
    return value


def notebook_path(server_root, relative):
    """The file behind `relative`, the notebook's path as the contents API names it, under
    the server's root, which it must not leave. Jupyter writes a root inside the home
    directory as `~/…` in its settings, so the root is expanded first."""
    root = os.path.realpath(os.path.expanduser(server_root))
    path = os.path.realpath(os.path.join(root, relative.lstrip("/")))
    if os.path.commonpath([root, path]) != root:
        raise BadRequest("path", f"{relative!r} is outside the server's root directory")
    if not path.endswith(".ipynb"):
        raise BadRequest("path", f"{relative!r} is not a notebook (.ipynb)")
    return path


class KilnHandler(APIHandler):
    """What every Kiln route shares: settings, the notebook's place on disk, JSON errors."""

    @property
    def kiln(self) -> Kiln:
        return self.settings["kiln"]

    def reply(self, status, payload):
        self.set_status(status)
        self.finish(json.dumps(payload))

    def notebook_path(self, body):
        return notebook_path(self.settings["server_root_dir"], _field(body, "path", str))

    def on_connection_close(self):
        """The browser went away (or cancelled): the child it started stops with it."""
        process = getattr(self, "_process", None)
        if process is not None and process.returncode is None:
            asyncio.ensure_future(child.stop(process))

    def child_env(self):
        env = dict(os.environ)
        if self.kiln.store_url:
            env["KILN_SERVER"] = self.kiln.store_url
        if self.kiln.store_token:
            env["KILN_TOKEN"] = self.kiln.store_token
        return env


    async def start_stream(self, argv):
        """Starts the CLI as `argv` for a streamed answer (JSON lines): the child, or `None`
        when there is no CLI (then the 503 is already sent)."""
        try:
            process = await child.start(argv, env=self.child_env())
        except child.MissingCli as error:
            self.reply(503, {"message": str(error)})
            return None
        self._process = process
        self.set_header("Content-Type", "application/x-ndjson")
        self.set_header("Cache-Control", "no-cache")
        return process

    async def send(self, event):
        await self.send_line(json.dumps(event).encode() + b"\n")

    async def send_line(self, line):
        self.write(line)
        await self.flush()


class ShowHandler(KilnHandler):
    """The analysis of the notebook as it is in the editor, saved or not."""

    @tornado.web.authenticated
    async def post(self):
        try:
            body = _body(self)
            path = self.notebook_path(body)
            content = _field(body, "content", dict)
            types = _field(body, "types", bool, required=False, default=False)
            handle = _field(body, "handle", str, required=False)
        except BadRequest as error:
            return self.reply(400, {"message": str(error)})
        argv = [self.kiln.kiln_bin, "show", path, "--stdin", "--json"]
        if not types:
            argv.append("--syntax-only")
        if handle:
            argv += ["--handle", handle]
        try:
            process = await child.start(argv, env=self.child_env(), stdin=True)
        except child.MissingCli as error:
            return self.reply(503, {"message": str(error)})
        self._process = process
        try:
            stdout, stderr = await process.communicate(json.dumps(content).encode())
        finally:
            await child.stop(process)
        text = stderr.decode(errors="replace")
        if process.returncode in (0, 1):
            try:
                analysis = json.loads(stdout)
            except ValueError:
                # No analysis: the notebook itself could not be read (the CLI names the place).
                return self.reply(422, {"message": child.last_lines(text, 5) or "kiln show failed"})
            return self.reply(200, {"ok": process.returncode == 0, "analysis": analysis})
        return self.reply(500, {"message": f"kiln show exited {process.returncode}: {child.last_lines(text, 5)}"})


class ComponentizeHandler(KilnHandler):
    """Streams `kiln componentize --progress json`: a `started` event with the child's pid,
    every event the CLI prints, then `exit` with its code (and what it said on stderr when it
    failed). Closing the request stops the build, with everything it started."""

    @tornado.web.authenticated
    async def post(self):
        try:
            body = _body(self)
            path = self.notebook_path(body)
            handle = _field(body, "handle", str)
            registry = _field(body, "registry", str, required=False, default=self.kiln.registry)
            kernel_cells = _field(body, "kernel_cells", dict, required=False)
        except BadRequest as error:
            return self.reply(400, {"message": str(error)})
        argv = [self.kiln.kiln_bin, "componentize", path, "--handle", handle, "--progress", "json"]
        if registry:
            argv += ["--registry", registry]
        cells_file = None
        if kernel_cells is not None:
            cells_file = tempfile.NamedTemporaryFile("w", suffix=".json", prefix="kiln-cells-", delete=False)
            with cells_file:
                json.dump(kernel_cells, cells_file)
            argv += ["--kernel-cells", cells_file.name]
        try:
            process = await self.start_stream(argv)
            if process is None:
                return
            stderr = asyncio.ensure_future(process.stderr.read())
            try:
                await self.send({"event": "started", "pid": process.pid})
                while line := await process.stdout.readline():
                    await self.send_line(line)
                await process.wait()
                text = (await stderr).decode(errors="replace")
                done = {"event": "exit", "code": process.returncode}
                if process.returncode != 0:
                    done["message"] = child.last_lines(text, 10)
                await self.send(done)
                self.finish(set_content_type="application/x-ndjson")
            except StreamClosedError:
                pass  # the browser went away: on_connection_close stops the child
            finally:
                await child.stop(process)
                stderr.cancel()
        finally:
            if cells_file is not None:
                os.unlink(cells_file.name)

class TrainHandler(KilnHandler):
    """Streams `kiln run HANDLE` (data → train from the handle's registered images): a
    `started` event, each progress line the CLI writes (`log`), then `exit` with its code and
    the run's summary (the model version it registered), or what it said when it failed.
    Closing the request stops the run."""

    @tornado.web.authenticated
    async def post(self):
        try:
            body = _body(self)
            handle = _field(body, "handle", str)
            params = _field(body, "params", dict, required=False, default={})
            runner = _field(body, "runner", str, required=False, default="")
            for name, value in params.items():
                if not isinstance(value, str) or not name or "=" in name:
                    raise BadRequest(f"params.{name}", "is a NAME: 'VALUE' pair of strings")
            if runner not in ("", "podman", "process"):
                raise BadRequest("runner", f"'{runner}' is not a runner (podman or process)")
        except BadRequest as error:
            return self.reply(400, {"message": str(error)})
        argv = [self.kiln.kiln_bin, "run", handle, "--json"]
        for name, value in params.items():
            argv += ["--param", f"{name}={value}"]
        if runner:
            argv += ["--runner", runner]
        process = await self.start_stream(argv)
        if process is None:
            return
        stdout = asyncio.ensure_future(process.stdout.read())
        lines = []
        try:
            await self.send({"event": "started", "pid": process.pid})
            while line := await process.stderr.readline():
                text = line.decode(errors="replace").rstrip()
                lines.append(text)
                if text:
                    await self.send({"event": "log", "line": text})
            await process.wait()
            done = {"event": "exit", "code": process.returncode}
            out = (await stdout).decode(errors="replace")
            if process.returncode == 0:
                try:
                    done["summary"] = json.loads(out)
                except ValueError:
                    done["message"] = f"kiln run printed no summary: {out[-500:]}"
            else:
                done["message"] = child.last_lines("\n".join(lines), 10)
            await self.send(done)
            self.finish(set_content_type="application/x-ndjson")
        except StreamClosedError:
            pass  # the browser went away: on_connection_close stops the child
        finally:
            await child.stop(process)
            stdout.cancel()


class StatusHandler(KilnHandler):
    """Whether each part answers, and the reason when it does not."""

    @tornado.web.authenticated
    async def get(self):
        cli, store, registry = await asyncio.gather(self.cli(), self.store(), self.registry())
        # Where notebooks live, as a kernel may name them (runs carry their notebook's path).
        root = os.path.expanduser(self.settings["server_root_dir"])
        roots = sorted({os.path.abspath(root), os.path.realpath(root)})
        self.reply(200, {"cli": cli, "store": store, "registry": registry, "root": roots})

    async def cli(self):
        try:
            process = await child.start([self.kiln.kiln_bin, "--version"])
        except child.MissingCli as error:
            return {"ok": False, "path": self.kiln.kiln_bin, "reason": str(error)}
        stdout, stderr = await process.communicate()
        if process.returncode != 0:
            return {"ok": False, "path": self.kiln.kiln_bin, "reason": child.last_lines(stderr.decode(errors="replace"), 3)}
        return {"ok": True, "path": self.kiln.kiln_bin, "version": stdout.decode().strip()}

    async def store(self):
        url = self.kiln.store_url
        if not url:
            return {"ok": False, "url": None, "reason": "no store is set: KILN_SERVER (or c.Kiln.store_url)"}
        client = AsyncHTTPClient()
        headers = {"Authorization": f"Bearer {self.kiln.store_token}"} if self.kiln.store_token else {}
        try:
            # An authenticated call, so a wrong token shows here rather than on first use.
            answer = await client.fetch(f"{url}/api/v1/experiments", headers=headers, request_timeout=5, raise_error=False)
        except Exception as error:  # noqa: BLE001 - any failure to connect is the reason
            return {"ok": False, "url": url, "reason": f"does not answer: {error}"}
        if answer.code == 599:
            return {"ok": False, "url": url, "reason": f"does not answer: {answer.error}"}
        if answer.code in (401, 403):
            return {"ok": False, "url": url, "reason": f"refused the token (HTTP {answer.code}): check KILN_TOKEN"}
        if answer.code != 200:
            return {"ok": False, "url": url, "reason": f"answered HTTP {answer.code}"}
        return {"ok": True, "url": url}

    async def registry(self):
        host = self.kiln.registry
        if not host:
            return {"ok": False, "host": None, "reason": "no registry is set: KILN_REGISTRY (or c.Kiln.registry)"}
        try:
            answer = await AsyncHTTPClient().fetch(f"http://{host}/v2/", request_timeout=5, raise_error=False)
        except Exception as error:  # noqa: BLE001
            return {"ok": False, "host": host, "reason": f"does not answer: {error}"}
        # 401 is a registry that wants credentials: it answers.
        if answer.code in (200, 401):
            return {"ok": True, "host": host}
        if answer.code == 599:
            return {"ok": False, "host": host, "reason": f"does not answer: {answer.error}"}
        return {"ok": False, "host": host, "reason": f"answered HTTP {answer.code} to /v2/"}


class StoreHandler(KilnHandler):
    """`/kiln/api/v1/{rest}` → `{store}/api/v1/{rest}` (and `/kiln/v2/{rest}` → the serving
    gateway's `{store}/v2/{rest}`), the token added here, and the signed-in user named in
    `Kiln-Actor` so a deployment's history says who changed it; the store's answer (status,
    JSON) comes back as it is."""

    def initialize(self, prefix="api/v1"):
        self.prefix = prefix

    async def forward(self, rest):
        url = self.kiln.store_url
        if not url:
            return self.reply(503, {"message": "no Kiln store is set for this Jupyter server: KILN_SERVER (or c.Kiln.store_url)"})
        target = f"{url}/{self.prefix}/{rest}"
        if self.request.query:
            target += f"?{self.request.query}"
        headers = {"Accept": "application/json"}
        if self.kiln.store_token:
            headers["Authorization"] = f"Bearer {self.kiln.store_token}"
        if "Content-Type" in self.request.headers:
            headers["Content-Type"] = self.request.headers["Content-Type"]
        user = getattr(self.current_user, "username", None)
        if user and user.isascii():
            headers["Kiln-Actor"] = user
        method = self.request.method
        body = self.request.body if method in ("POST", "PUT", "PATCH") else None
        # A deploy answers once its instances pass their health checks (up to two minutes
        # each under podman): changes get longer than reads.
        timeout = 60 if method == "GET" else 600
        request = HTTPRequest(target, method=method, headers=headers, body=body, request_timeout=timeout, allow_nonstandard_methods=True)
        try:
            answer = await AsyncHTTPClient().fetch(request, raise_error=False)
        except HTTPClientError as error:
            if error.response is None and error.code == 599:
                # It took the request and gave no answer: 504, as the browser tells apart
                # from a store that never answered (502, nothing sent).
                return self.reply(504, {"message": went_away(url, method, error)})
            answer = error.response
        except Exception as error:  # noqa: BLE001
            return self.reply(502, {"message": f"the Kiln store at {url} does not answer: {error}"})
        if answer is None or answer.code == 599:
            reason = answer.error if answer is not None else "no response"
            return self.reply(502, {"message": f"the Kiln store at {url} does not answer: {reason}"})
        self.set_status(answer.code)
        self.finish(answer.body or b"", set_content_type=answer.headers.get("Content-Type", "application/json"))

    @tornado.web.authenticated
    async def get(self, rest):
        await self.forward(rest)

    @tornado.web.authenticated
    async def post(self, rest):
        await self.forward(rest)

    @tornado.web.authenticated
    async def put(self, rest):
        await self.forward(rest)

    @tornado.web.authenticated
    async def patch(self, rest):
        await self.forward(rest)

    @tornado.web.authenticated
    async def delete(self, rest):
        await self.forward(rest)


def went_away(url, method, error):
    """What to say when the store took the request and then closed or timed out before it
    answered. A change may or may not have been saved by then, and the store saves a
    deployment change whole before it switches anything, so the message says that rather
    than "nothing changed"."""
    said = f"the Kiln store at {url} went away before it answered ({error.message})"
    if method == "GET":
        return said
    return f"{said}; a change is saved whole or not at all: once the store is back, look again at what it has"


def setup_handlers(server_app):
    web_app = server_app.web_app
    web_app.settings["kiln"] = Kiln(config=server_app.config)
    base = url_path_join(web_app.settings["base_url"], "kiln")
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "show"), ShowHandler),
            (url_path_join(base, "componentize"), ComponentizeHandler),
            (url_path_join(base, "status"), StatusHandler),
            (url_path_join(base, "train"), TrainHandler),
            (url_path_join(base, "api/v1/(.*)"), StoreHandler),
            (url_path_join(base, "v2/(.*)"), StoreHandler, {"prefix": "v2"}),
        ],
    )
