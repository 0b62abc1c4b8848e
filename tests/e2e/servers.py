"""The servers the end-to-end tests run, all on 127.0.0.1, all synchronous (Playwright's sync API runs its
own event loop, so these tests are plain functions, not trio tests):

- :func:`start_gateway`: ``python -m voidllm serve`` on a fresh SQLite file, serving the UI build
  (``ui/dist``, or ``VOIDLLM_TEST_UI_DIR``), with the demo model (``provider: mock``) and
  :data:`GATED_MODEL` on a :class:`GatedUpstream`; its stderr is kept in a file beside the database, so
  the zero-knowledge scan (:func:`files_containing`) reads every file the gateway wrote.
- :class:`GatedUpstream`: an OpenAI-compatible upstream whose streamed answer goes out one piece at a time,
  each when the test releases it, so a test sees the page show a partial answer while the stream is open.
- :class:`PrefixProxy`: a reverse proxy that mounts the gateway under ``/voidllm/`` and strips the prefix.
"""

from __future__ import annotations

import http.server
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import httpx
import orjson

from tests.gateway import ADMIN_KEY, ENCRYPTION_KEY

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]

UI_DIST = ROOT / "ui" / "dist"

UI_DIR = os.environ.get("VOIDLLM_TEST_UI_DIR", "")
"""A UI build elsewhere to test instead of ui/dist (``settings.ui_dir``), e.g. one made with
``npx vite build --outDir /tmp/ui-build`` while ui/src is being edited; not checked for staleness."""

UI_SOURCES = ROOT / "ui" / "src"

GATED_MODEL = "e2e-stream"

DEMO_MODEL = "demo"


T = TypeVar("T")


def eventually(probe: Callable[[], T | None], *, timeout: float = 30, what: str = "the condition") -> T:
    """Ask ``probe`` until it returns something truthy (a state of a real server that settles on its own,
    such as the usage rollups); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


# ----------------------------------------------------------------------------------------------- gateway


@attrs.define
class Gateway:
    """A running ``voidllm serve``: its URL, the bootstrap credentials from its banner, its files."""

    process: subprocess.Popen[bytes]
    directory: Path
    log_path: Path
    url: str = ""
    api_key: str = ""
    email: str = ""
    password: str = ""
    lines: list[str] = attrs.field(factory=list)
    ready: threading.Event = attrs.field(factory=threading.Event)

    def api(self, key: str | None = None) -> httpx.Client:
        """An API client with ``Authorization: Bearer`` (the bootstrap admin's key unless ``key``)."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key or self.api_key}"}, timeout=30
        )

    def files(self) -> Iterator[Path]:
        """Every file the gateway wrote: database, WAL, spill files, its stderr log."""
        return (path for path in self.directory.rglob("*") if path.is_file())

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        with self.log_path.open("ab") as log:
            for raw in self.process.stderr:
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                for field in ("API Key", "Email", "Password"):
                    if line.startswith(f"  {field}:"):
                        setattr(self, field.lower().replace(" ", "_"), line.split(":", 1)[1].strip())
                if '"msg":"listening"' in line:
                    self.url = orjson.loads(line)["binds"][0]
                if self.url and self.api_key and self.email and self.password:
                    self.ready.set()
        self.ready.set()


def requests_of(gateway: Gateway, model: str | None = None) -> int:
    """How many requests (to ``model``, or in all) the usage report counts over the last 24 hours."""
    now = datetime.now(UTC)
    query = {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    with gateway.api() as api:
        report = api.get("/api/v1/usage", params={**query, "group_by": "model"}).raise_for_status().json()
    wanted = [p for p in report["data"] if model is None or model in (p["group_key"], p["group_label"])]
    return sum(point["total_requests"] for point in wanted)


def gateway_config(
    directory: Path, upstream_url: str, server_yaml: str = "", settings_yaml: str = ""
) -> Path:
    """A voidllm.yaml: SQLite in ``directory/data``, usage written and rolled up within a second or two,
    the demo model (alias ``default``) and :data:`GATED_MODEL` on the gated upstream; ``server_yaml`` adds
    lines under ``server:`` and ``settings_yaml`` under ``settings:`` (both indented by two spaces)."""
    path = directory / "voidllm.yaml"
    path.write_text(
        f"""
server:
  proxy:
    host: 127.0.0.1
    port: 0
{server_yaml}database:
  driver: sqlite
  dsn: {directory / "data" / "voidllm.db"}
settings:
  encryption_key: {ENCRYPTION_KEY}
  admin_key: {ADMIN_KEY}
  ui_dir: "{UI_DIR}"
  usage:
    flush_interval: 200ms
    rollup_interval: 1s
    rollup_lateness: 2s
{settings_yaml}logging:
  level: info
models:
  - name: {DEMO_MODEL}
    provider: mock
    aliases: [default]
  - name: {GATED_MODEL}
    provider: openai
    base_url: {upstream_url}/v1
    api_key: sk-e2e-upstream
"""
    )
    return path


def start_gateway(
    directory: Path, upstream_url: str, server_yaml: str = "", settings_yaml: str = ""
) -> Gateway:
    """Start ``voidllm serve`` in ``directory`` and wait until it listens and printed its banner
    (``server_yaml`` and ``settings_yaml`` as for :func:`gateway_config`)."""
    (directory / "data").mkdir(parents=True, exist_ok=True)
    config = gateway_config(directory, upstream_url, server_yaml, settings_yaml)
    env = {name: value for name, value in os.environ.items() if not name.startswith("VOIDLLM_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "voidllm", "serve", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=directory,
    )
    gateway = Gateway(process, directory / "data", directory / "data" / "stderr.log")
    threading.Thread(target=gateway._read_stderr, daemon=True).start()
    if not gateway.ready.wait(60) or not gateway.password:
        stop_gateway(gateway)
        raise AssertionError("voidllm serve did not start:\n" + "\n".join(gateway.lines))
    return gateway


def stop_gateway(gateway: Gateway) -> None:
    if gateway.process.poll() is None:
        gateway.process.terminate()
        try:
            gateway.process.wait(30)
        except subprocess.TimeoutExpired:
            gateway.process.kill()
            gateway.process.wait(10)


# ------------------------------------------------------------------------------------------ HTTP servers


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> _Server:
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_json(self, status: int, payload: object) -> None:
        data = orjson.dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


@attrs.define(eq=False)
class GatedUpstream:
    """An OpenAI-compatible chat upstream. A streamed answer sends :attr:`pieces` as content deltas, each
    only after :meth:`release` (then a final chunk with usage and ``[DONE]`` go out at once); an answer that
    is not streamed is the whole text at once. :attr:`bodies` holds the request bodies it received."""

    pieces: list[str]
    bodies: list[bytes] = attrs.field(factory=list)
    _gate: queue.Queue[None] = attrs.field(factory=queue.Queue)
    _server: _Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def release(self, count: int = 1) -> None:
        """Let ``count`` more pieces of the current (or next) streamed answer go out."""
        for _ in range(count):
            self._gate.put(None)

    def reset(self) -> None:
        """Forget the releases not used yet (a previous test's)."""
        while not self._gate.empty():
            self._gate.get_nowait()

    def start(self) -> GatedUpstream:
        upstream = self

        class Handler(_QuietHandler):
            def do_GET(self) -> None:
                self.send_json(200, {"object": "list", "data": [{"id": GATED_MODEL, "object": "model"}]})

            def do_POST(self) -> None:
                raw = self.body()
                upstream.bodies.append(raw)
                request = orjson.loads(raw)
                if request.get("stream"):
                    upstream._stream(self, request)
                else:
                    self.send_json(200, _completion("".join(upstream.pieces)))

        self._server = _serve(Handler)
        return self

    def _stream(self, handler: _QuietHandler, request: dict[str, Any]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for piece in self.pieces:
            self._gate.get(timeout=60)
            handler.send_chunk(_event(_chunk({"content": piece}, None)))
        last = _chunk({}, "stop")
        if (request.get("stream_options") or {}).get("include_usage"):
            handler.send_chunk(_event(last))
            last = {**_chunk({}, None), "choices": [], "usage": _usage(len(self.pieces))}
        handler.send_chunk(_event(last) + b"data: [DONE]\n\n")
        handler.send_chunk(b"")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _usage(completion_tokens: int) -> dict[str, int]:
    prompt = 12
    total = prompt + completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": total}


def _chunk(delta: dict[str, str], finish_reason: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-e2e",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": GATED_MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-e2e",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": GATED_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": _usage(len(text.split())),
    }


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}


@attrs.define(eq=False)
class PrefixProxy:
    """A reverse proxy in front of ``target`` that serves it under ``/voidllm/`` (stripping the prefix, as
        an nginx ``location /voidllm/ { proxy_pass http://gateway/; }`` does, redirecting ``/voidllm`` to
    ``/voidllm/`` like nginx) and answers 404 elsewhere. The
        browser's ``Host`` goes through unchanged. :attr:`paths` records every path the browser asked for."""

    target: str
    prefix: str = "/voidllm/"
    paths: list[str] = attrs.field(factory=list)
    _server: _Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> PrefixProxy:
        proxy = self
        client = httpx.Client(base_url=self.target, timeout=60)

        class Handler(_QuietHandler):
            def forward(self) -> None:
                proxy.paths.append(self.path)
                if self.path.split("?")[0] == proxy.prefix.rstrip("/"):  # as nginx does for such a location
                    self.send_response(301)
                    self.send_header("Location", proxy.prefix + self.path[len(proxy.prefix) - 1 :])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if not self.path.startswith(proxy.prefix):
                    self.send_json(404, {"error": "outside the proxy's prefix"})
                    return
                headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
                request = client.build_request(
                    self.command,
                    "/" + self.path.removeprefix(proxy.prefix),
                    headers=headers,
                    content=self.body(),
                )
                response = client.send(request, stream=True)
                try:
                    self.send_response(response.status_code)
                    for name, value in response.headers.multi_items():
                        if name.lower() not in _HOP_BY_HOP:
                            self.send_header(name, value)
                    if self.command == "HEAD" or response.status_code in (204, 304):
                        self.end_headers()  # no body, so no framing either
                        return
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for data in response.iter_raw():
                        if data:
                            self.send_chunk(data)
                    self.send_chunk(b"")
                finally:
                    response.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = forward

        self._server = _serve(Handler)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def is_built_source(path: Path) -> bool:
    """A file of ui/src that goes into the build (not a unit test or its helpers)."""
    return path.is_file() and "test" not in path.relative_to(UI_SOURCES).parts and ".test." not in path.name


def ui_build_current() -> str | None:
    """Why the UI build cannot be tested (missing, or older than its sources), or None when it is current."""
    if UI_DIR:
        found = (Path(UI_DIR) / "index.html").is_file()
        return None if found else f"VOIDLLM_TEST_UI_DIR={UI_DIR} has no index.html"
    index = UI_DIST / "index.html"
    if not index.is_file():
        return "ui/dist is missing: build the UI first (scripts/test does: npm ci && npm run build in ui/)"
    built = index.stat().st_mtime
    stale = [p for p in UI_SOURCES.rglob("*") if is_built_source(p) and p.stat().st_mtime > built]
    if stale:
        return f"ui/dist is older than {stale[0].relative_to(ROOT)}: rebuild it (scripts/test does)"
    return None


def marker_variants(marker: str) -> list[bytes]:
    """The byte forms in which ``marker`` could sit in a file: UTF-8 and UTF-16 (SQLite, Chromium)."""
    return [marker.encode(), marker.encode("utf-16-le"), marker.encode("utf-16-be")]


def files_containing(paths: Iterator[Path], marker: str) -> list[str]:
    variants = marker_variants(marker)
    found = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if any(variant in data for variant in variants):
            found.append(str(path))
    return found


def session_state(base_url: str, email: str, password: str) -> dict[str, Any]:
    """A Playwright ``storage_state`` holding the cookies of a browser session signed in through the API
    (``POST /api/v1/auth/session``), for tests of pages other than the sign-in page."""
    response = httpx.post(f"{base_url}/api/v1/auth/session", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    host = urllib.parse.urlsplit(base_url).hostname
    cookies = [
        {
            "name": cookie.name,
            "value": cookie.value or "",
            "domain": host,
            "path": "/",
            "expires": -1,
            "httpOnly": cookie.has_nonstandard_attr("HttpOnly"),
            "secure": False,
            "sameSite": "Strict",
        }
        for cookie in response.cookies.jar
    ]
    assert {cookie["name"] for cookie in cookies} == {"voidllm_session", "voidllm_csrf"}, cookies
    return {"cookies": cookies, "origins": []}
