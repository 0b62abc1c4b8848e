"""A real upstream MCP server for tests: the official ``mcp`` SDK's server, served by hypercorn on trio.

:func:`open_mock_mcp` starts the SDK's streamable HTTP app (``MCPServer.streamable_http_app``, anyio code, so
it runs on trio) on an ephemeral port of 127.0.0.1 in the caller's trio run and yields a :class:`MockMcp`
with its ``url``. Its tools:

- ``echo(text)``: structured output ``{"text": text}`` (and the same as text content);
- ``fail(reason)``: raises a tool error, i.e. a ``CallToolResult`` with ``isError: true``;
- ``slow(seconds)``: sleeps (cancellable), then answers ``"done"``;
- ``chatty(text)``, only with ``chatty=True``: sends two log notifications, then answers ``text`` (on an
  SSE answer, the notifications come before the response);
- ``progress(steps, note="")``, only with ``chatty=True``: for each step, a progress notification
  (``progress`` = the step, ``total`` = ``steps``, ``message`` = ``note`` when given, for the request's
  ``_meta.progressToken``; none without one), then an ``info`` log message ``"step N of M"`` + ``note``;
  then answers ``"M steps done"``. With ``MockMcp.pacing.paced``
  set, step N waits for :meth:`Pacing.release` (N), so a test decides when each notification is sent;
- ``big(size)``: a text result of ``size`` characters (for response size caps);
- ``reverse(text)``, only with ``reverse=True``: structured output ``{"text": text reversed}`` (and the same
  as text content): an answer that holds what its request did not;
- ``tool_0`` ... ``tool_{extra_tools-1}``: filler tools to make ``tools/list`` long.

By default the mock behaves as a 2025-11-25 server: requests in the 2026-07-28 era (an
``MCP-Protocol-Version`` the handshake never yields) get 400, as an older server answers them; with
``modern=True`` the SDK's own 2026-07-28 support answers them (``server/discover``, stateless requests).
``json_response=True`` makes the SDK answer requests with ``application/json``; the default answers with
``text/event-stream``. ``page_size`` paginates ``tools/list`` (the SDK itself does not).

A thin ASGI layer in front of the SDK app adds what a test needs to drive the client's edge cases:

- every HTTP request is recorded as a :class:`Received` (HTTP method, JSON-RPC method, headers, the
  client's address and port, which tells connections apart);
- :meth:`MockMcp.expire_sessions` makes every session id seen so far answer 404, as an upstream whose
  sessions expired; ``expire_every_session = True`` answers 404 to every request with a session id;
- ``require_header=("Authorization", "Bearer s3cret")`` answers 401 to requests without that exact header;
- ``POST /token`` is an OAuth client-credentials token endpoint (:class:`OAuthBehaviour`): it issues
  ``tok-1``, ``tok-2``... and, when ``oauth`` is set, the MCP endpoint accepts only a live issued token;
  ``GET /.well-known/oauth-authorization-server`` (RFC 8414 metadata) then names that token endpoint.

:func:`open_legacy_sse_server` serves a tiny hand-written server of the deprecated HTTP+SSE transport
(2024-11-05): ``POST`` answers 405 and ``GET`` streams an ``endpoint`` event.
"""

from __future__ import annotations

import urllib.parse
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import hypercorn.config
import orjson
import trio
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

from voidllm.sse import EventFramer, parse_event

__all__ = ["MockMcp", "OAuthBehaviour", "Pacing", "Received", "open_legacy_sse_server", "open_mock_mcp"]

ASGIApp = Callable[..., Any]

_HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")


@attrs.frozen
class Received:
    """One HTTP request the mock received; ``rpc_method`` is the JSON-RPC method of a POST body, if any."""

    http_method: str
    path: str
    rpc_method: str | None
    headers: dict[str, str]
    peer: tuple[str, int] | None = None

    @property
    def session_id(self) -> str | None:
        return self.headers.get("mcp-session-id")


@attrs.define
class OAuthBehaviour:
    """The mock token endpoint: credentials it accepts and the lifetime it grants."""

    client_id: str = "client"
    client_secret: str = "secret"
    expires_in: int | None = 3600
    issued: list[str] = attrs.field(factory=list)
    scopes: list[str] = attrs.field(factory=list)
    revoked: set[str] = attrs.field(factory=set)

    def live(self, token: str) -> bool:
        return token in self.issued and token not in self.revoked


@attrs.define(eq=False)
class Pacing:
    """When the ``progress`` tool may take each step: at once, or (``paced``) when the test releases it."""

    paced: bool = False
    _gates: dict[int, trio.Event] = attrs.field(factory=dict)

    def release(self, step: int) -> None:
        """Let the ``progress`` tool take step ``step`` (counted from 1)."""
        self._gate(step).set()

    async def wait(self, step: int) -> None:
        if self.paced:
            await self._gate(step).wait()

    def _gate(self, step: int) -> trio.Event:
        return self._gates.setdefault(step, trio.Event())


@attrs.define(eq=False)
class MockMcp:
    url: str
    base_url: str
    received: list[Received] = attrs.field(factory=list)
    require_header: tuple[str, str] | None = None
    oauth: OAuthBehaviour | None = None
    expired: set[str] = attrs.field(factory=set)
    modern: bool = False
    expire_every_session: bool = False
    pacing: Pacing = attrs.field(factory=Pacing)

    def expire_sessions(self) -> None:
        """Every session id seen so far answers 404 from now on."""
        self.expired.update(r.session_id for r in self.received if r.session_id)

    def rpc(self, method: str) -> list[Received]:
        return [r for r in self.received if r.rpc_method == method]


def build_server(
    extra_tools: int = 0, chatty: bool = False, pacing: Pacing | None = None, reverse: bool = False
) -> MCPServer:
    server = MCPServer("mock-mcp", version="1.0")

    @server.tool(structured_output=True)
    def echo(text: str) -> dict[str, str]:
        """Echo the text back."""
        return {"text": text}

    @server.tool()
    def fail(reason: str = "failed") -> str:
        """Always fails."""
        raise ToolError(reason)

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep, then answer."""
        await trio.sleep(seconds)
        return "done"

    async def chatty_tool(text: str, ctx: Context) -> str:
        """Logs twice (notifications on the response stream), then answers."""
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # logging is deprecated in 2026-07-28; this mock speaks 2025-11-25
            await ctx.info("working")
            await ctx.info("still working")
        return text

    async def progress_tool(steps: int, ctx: Context, note: str = "") -> str:
        """Reports progress and logs at each step (paced by the test), then answers."""
        for step in range(1, steps + 1):
            if pacing is not None:
                await pacing.wait(step)
            await ctx.report_progress(step, steps, note or None)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # logging is deprecated in 2026-07-28
                await ctx.info(f"step {step} of {steps}{note}")
        return f"{steps} steps done"

    def reverse_tool(text: str) -> dict[str, str]:
        """The text reversed (an answer that holds what the request did not, for the prompt guard)."""
        return {"text": text[::-1]}

    if reverse:
        server.tool(name="reverse", structured_output=True)(reverse_tool)
    if chatty:
        server.tool(name="chatty")(chatty_tool)
        server.tool(name="progress")(progress_tool)

    @server.tool()
    def big(size: int) -> str:
        """A long text."""
        return "x" * size

    for index in range(extra_tools):
        server.tool(name=f"tool_{index}")(lambda: "ok")
    return server


async def _read_body(receive: Callable[..., Any]) -> tuple[bytes, list[dict[str, Any]]]:
    chunks, messages = [], []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


async def _respond(
    send: Callable[..., Any], status: int, body: bytes = b"", content_type: str = "application/json"
) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _wrap(mock: MockMcp, app: ASGIApp, page_size: int | None) -> ASGIApp:
    async def asgi(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body, messages = await _read_body(receive)
        rpc_method = None
        try:
            decoded = orjson.loads(body) if body else None
            rpc_method = decoded.get("method") if isinstance(decoded, dict) else None
        except orjson.JSONDecodeError:
            decoded = None
        client = scope.get("client")
        mock.received.append(
            Received(scope["method"], scope["path"], rpc_method, headers, tuple(client) if client else None)
        )

        if scope["path"] == "/.well-known/oauth-authorization-server" and mock.oauth is not None:
            metadata = {"issuer": mock.base_url, "token_endpoint": mock.base_url + "/token"}
            await _respond(send, 200, orjson.dumps(metadata))
            return
        if scope["path"] == "/token":
            await _token(mock, body, send)
            return
        if not _authorised(mock, headers):
            await _respond(send, 401, b'{"error":"unauthorized"}')
            return
        session_id = headers.get("mcp-session-id")
        if session_id is not None and (mock.expire_every_session or session_id in mock.expired):
            await _respond(
                send,
                404,
                b'{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}',
            )
            return
        version = headers.get("mcp-protocol-version")
        if not mock.modern and version is not None and version not in _HANDSHAKE_VERSIONS:
            await _respond(
                send,
                400,
                b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Unsupported version"}}',
            )
            return
        if page_size and rpc_method == "tools/list" and isinstance(decoded, dict):
            await _paged_tools(app, scope, decoded, page_size, send)
            return

        pending = list(messages)

        async def replay() -> dict[str, Any]:
            if pending:
                return pending.pop(0)
            message: dict[str, Any] = await receive()
            return message

        await app(scope, replay, send)

    return asgi


async def _paged_tools(
    app: ASGIApp, scope: dict[str, Any], request: dict[str, Any], size: int, send: Callable[..., Any]
) -> None:
    """Answer ``tools/list`` a page at a time: ask the SDK for the whole list, return one slice (JSON)."""
    cursor = (request.get("params") or {}).get("cursor")
    start = int(cursor) if cursor else 0
    whole = dict(request, params={})
    captured: list[dict[str, Any]] = []
    body = orjson.dumps(whole)
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await trio.sleep_forever()
        raise AssertionError

    async def capture(message: dict[str, Any]) -> None:
        captured.append(message)

    await app(scope, receive, capture)
    start_message = captured[0]
    raw = b"".join(m.get("body", b"") for m in captured[1:])
    if raw.lstrip().startswith(b"{"):
        response = orjson.loads(raw)
    else:
        framer = EventFramer()
        chunks = [*framer.feed(raw), framer.tail()]
        events = [event for chunk in chunks if (event := parse_event(chunk)) is not None]
        response = orjson.loads(events[-1].data)
    tools = response["result"]["tools"]
    result: dict[str, Any] = {"tools": tools[start : start + size]}
    if start + size < len(tools):
        result["nextCursor"] = str(start + size)
    out = orjson.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": result})
    headers = [
        (k, v) for k, v in start_message["headers"] if k.lower() not in (b"content-type", b"content-length")
    ]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})


def _authorised(mock: MockMcp, headers: dict[str, str]) -> bool:
    if mock.require_header is not None:
        name, value = mock.require_header
        if headers.get(name.lower()) != value:
            return False
    if mock.oauth is not None:
        auth = headers.get("authorization", "")
        if not (auth.startswith("Bearer ") and mock.oauth.live(auth[7:])):
            return False
    return True


async def _token(mock: MockMcp, body: bytes, send: Callable[..., Any]) -> None:
    oauth = mock.oauth or OAuthBehaviour()
    form = dict(urllib.parse.parse_qsl(body.decode()))
    if form.get("grant_type") != "client_credentials" or (
        form.get("client_id"),
        form.get("client_secret"),
    ) != (
        oauth.client_id,
        oauth.client_secret,
    ):
        await _respond(send, 401, b'{"error":"invalid_client"}')
        return
    token = f"tok-{len(oauth.issued) + 1}"
    oauth.issued.append(token)
    oauth.scopes.append(form.get("scope", ""))
    answer: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
    if oauth.expires_in is not None:
        answer["expires_in"] = oauth.expires_in
    await _respond(send, 200, orjson.dumps(answer))


def _hypercorn_config() -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.graceful_timeout = 0.1  # idle keep-alive connections of the client under test would hold shutdown
    return config


@asynccontextmanager
async def _serve(app: ASGIApp) -> AsyncIterator[str]:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: worker_serve(
                wrap_app(app, 0, "asgi"),
                _hypercorn_config(),
                shutdown_trigger=stop.wait,
                task_status=task_status,
            )
        )
        try:
            yield binds[0]
        finally:
            stop.set()
            nursery.cancel_scope.deadline = trio.current_time() + 2


@asynccontextmanager
async def open_mock_mcp(
    *,
    json_response: bool = False,
    require_header: tuple[str, str] | None = None,
    oauth: OAuthBehaviour | None = None,
    extra_tools: int = 0,
    page_size: int | None = None,
    modern: bool = False,
    chatty: bool = False,
    reverse: bool = False,
) -> AsyncIterator[MockMcp]:
    """Serve the SDK's MCP server at ``<base>/mcp`` for the duration of the block."""
    mock = MockMcp(url="", base_url="", require_header=require_header, oauth=oauth, modern=modern)
    server = build_server(extra_tools, chatty, mock.pacing, reverse)
    sdk_app = server.streamable_http_app(
        json_response=json_response,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    async with _serve(_wrap(mock, sdk_app, page_size)) as base:
        mock.base_url = base
        mock.url = base + "/mcp"
        yield mock


@asynccontextmanager
async def open_legacy_sse_server() -> AsyncIterator[str]:
    """A deprecated HTTP+SSE (2024-11-05) server: yields its SSE endpoint URL (``<base>/sse``)."""

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await _read_body(receive)
        if scope["method"] != "GET" or scope["path"] != "/sse":
            await _respond(send, 405, b"")
            return
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {
                "type": "http.response.body",
                "body": b"event: endpoint\ndata: /messages?session_id=abc\n\n",
                "more_body": True,
            }
        )
        await trio.sleep_forever()

    async with _serve(app) as base:
        yield base + "/sse"
