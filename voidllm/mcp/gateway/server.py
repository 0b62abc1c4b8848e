"""The MCP streamable HTTP transport, server side, for both protocol eras (docs/reference/mcp-transport.md
5.1, 5.2).

:class:`McpEndpoint` is a raw ASGI app serving one MCP endpoint path; what the endpoint *does* is a
:class:`McpBackend` (the built-in ``voidllm`` tools, or a proxied upstream server). Rules, in order:

1. **Origin.** Absent (non-browser clients), same origin as ``Host``, or listed in ``allowed_origins`` (a
   constructor parameter: ``settings.mcp.allowed_origins`` and the exact origins of
   ``server.cors.allowed_origins``, :mod:`voidllm.web.mcp`); anything else is 403 with a JSON-RPC error
   without id (DNS-rebinding defence). The edge answers the CORS preflights of the pages listed there, so
   they never get here (:mod:`voidllm.web.cors`).
2. **Authentication** on every request: ``Authorization: Bearer vl_...`` (or ``X-Api-Key: vl_...``) through
   the key cache; 401 with a JSON-RPC error and ``WWW-Authenticate: Bearer``.
3. **Protocol version.** ``MCP-Protocol-Version`` must be one of :data:`SUPPORTED_VERSIONS`, else 400 with
   error -32022 and ``data.supported``; missing means 2025-03-26 (session era). ``2026-07-28`` selects the
   stateless revision.
4. **Methods.** POST carries messages. GET is 405 (no server-initiated stream is offered; clients handle
   405 per spec). DELETE ends a session (204) in the session era and is 405 in the stateless one.
5. **Body.** At most :data:`MAX_BODY` bytes (413; a larger ``Content-Length`` is refused before reading),
   received within ``read_timeout`` in whole (408; :func:`voidllm.asgi.read_body`). Empty: HTTP 200 with
   -32700 "empty request body", as the reference does. Invalid JSON: 400 -32700; not a JSON-RPC message: 400
   -32600. A batch array is accepted only in a 2025-03-26 session (each element answered, the answers as one
   JSON array; invalid elements answered with -32600 and id null; ``initialize`` cannot be batched); later
   revisions get 400 -32600. Notifications and client responses: 202 with no body.
6. **Accept.** A POST must accept ``application/json`` or ``text/event-stream`` (or a wildcard), else 406.
   The answer is JSON unless the client accepts SSE and not JSON; an SSE answer is one ``event: message``
   per JSON-RPC message, sent unbuffered (``Cache-Control: no-cache``, ``X-Accel-Buffering: no``).
   Notifications during a request: when the client accepts SSE, a backend may relay notifications about
   the request (:attr:`McpContext.relay`: the proxy's upstream progress and log messages). The first one
   starts the SSE answer, each is sent as its own event the moment it is relayed (through a queue of
   :data:`RELAY_BUFFER`, so a client that stops reading never holds up the upstream: a notification that
   finds the queue full is dropped), and the response ends the stream; what is left of the stream after the
   backend answered gets ``write_timeout`` (``read_timeout`` when that is 0), then the request ends; a
   refusal after that (the upstream failed or timed out) becomes a JSON-RPC error response
   with the request's id on the stream, since the HTTP status is sent. An answer without notifications
   goes out as above, and a client that accepts only JSON gets the response alone. Batches relay nothing.
7. **Session era** (2025-03-26 .. 2025-11-25). ``initialize`` negotiates the version (the client's if we
   support it, else our newest session-era version), asks the backend for its session state and answers with
   ``Mcp-Session-Id``: a sealed token (:mod:`voidllm.mcp.gateway.sessions`). Every later request needs it:
   missing is 400; unknown, forged, expired, ended or presented by another key is 404. An
   ``MCP-Protocol-Version`` header that differs from the session's negotiated version is 400 (a missing one
   means the session's version).
8. **Stateless era** (2026-07-28). No ``initialize``; every request's ``params._meta`` carries the protocol
   version (equal to the header, else -32020) and client capabilities (else 400 -32602), and client info.
   ``Mcp-Method`` must equal the body's method and ``Mcp-Name`` the tool/prompt name or resource URI (400
   -32020 HeaderMismatch). ``server/discover`` is answered by the transport from the backend's ``initialize``
   answer. ``Mcp-Session-Id`` is ignored.

A client that disconnects while its request is answered cancels the answer (the backend's work with it: an
upstream call, a Code Mode execution).

JSON-RPC errors raised by the backend are answered with HTTP 200 (they are JSON-RPC responses to a valid
request); anything else a backend raises becomes -32603 "internal error" and is logged without arguments.
Nothing here logs request or response bodies, or relayed notifications.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs
import trio

from voidllm.asgi import (  # SCOPE_KEY: the request id the edge put into the scope
    SCOPE_KEY,
    ClientDisconnectedError,
    Receive,
    Send,
    header,
    read_body,
)
from voidllm.errors import AuthenticationError, GatewayError
from voidllm.identity import KeyIdentity
from voidllm.mcp.gateway.sessions import InvalidSession, SessionSealer, SessionState
from voidllm.mcp.upstream import jsonrpc
from voidllm.mcp.upstream.jsonrpc import JsonRpcError, Notification, Request

if TYPE_CHECKING:
    from voidllm.admin.services import Services
    from voidllm.auth.cache import KeyCache

__all__ = [
    "MAX_BODY",
    "SESSION_VERSIONS",
    "STATELESS_VERSION",
    "SUPPORTED_VERSIONS",
    "McpBackend",
    "McpContext",
    "McpEndpoint",
    "McpHttpError",
]

log = logging.getLogger(__name__)

SESSION_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")
STATELESS_VERSION = "2026-07-28"
SUPPORTED_VERSIONS = (*SESSION_VERSIONS, STATELESS_VERSION)
DEFAULT_VERSION = "2025-03-26"
MAX_BODY = 4 * 1024 * 1024
RELAY_BUFFER = 16  # relayed notifications waiting for a slow client; more are dropped

META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
NAME_BEARING = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}

SESSION_HEADER = b"mcp-session-id"
VERSION_HEADER = b"mcp-protocol-version"

Scope = dict[str, Any]


@attrs.frozen
class McpContext:
    """One request as a backend sees it.

    ``session`` is the backend state sealed into the session token (session era; the dict
    :meth:`McpBackend.open_session` returned), empty in the stateless era. ``meta`` is the request's
    ``params._meta`` (stateless era: protocol version, client capabilities, client info). ``relay``, set
    when the client accepts an SSE answer to this request, sends a notification to the client at once
    (before the response; the backend picks which notifications the client asked for); ``None`` otherwise.
    """

    identity: KeyIdentity
    services: Services
    request_id: str | None
    protocol_version: str
    endpoint: str
    session: dict[str, Any] = attrs.field(factory=dict)
    meta: dict[str, Any] = attrs.field(factory=dict)
    relay: Callable[[Notification], Awaitable[None]] | None = None


@runtime_checkable
class McpBackend(Protocol):
    """What an MCP endpoint serves; the transport handles HTTP, versions, sessions and ``ping``.

    - ``handle`` answers one request: the JSON-RPC ``result`` object, or raises :class:`JsonRpcError`.
      It must answer ``initialize`` with ``{capabilities, serverInfo, instructions?}`` (the transport adds
      ``protocolVersion``; for ``server/discover`` it adds ``supportedVersions``). While it runs, it may
      send notifications about the request through ``ctx.relay`` when that is set.
    - ``notify`` receives a notification (``notifications/initialized``, ``notifications/cancelled``...).

    Optional, looked up with ``getattr``: ``async open_session(ctx) -> dict`` returns state to seal into
    the session token (small, JSON-serialisable, no secrets); ``async close_session(ctx, state)`` runs on
    ``DELETE``.
    """

    @property
    def name(self) -> str:
        """The server's name (the alias), for logs and metrics."""
        ...

    async def handle(self, ctx: McpContext, method: str, params: dict[str, Any] | None) -> dict[str, Any]: ...

    async def notify(self, ctx: McpContext, method: str, params: dict[str, Any] | None) -> None: ...


class _Refusal(Exception):
    """A transport-level refusal: HTTP status plus a JSON-RPC error without id."""

    def __init__(self, status: int, error: JsonRpcError, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(error.message)
        self.status = status
        self.error = error
        self.headers = headers or []


class McpHttpError(_Refusal):
    """Raised by a backend to answer with an HTTP status and a JSON-RPC error without id
    (docs/reference/behaviour.md 1.7: the proxy's 404/403/503/502), instead of a JSON-RPC error response with
    HTTP 200."""


@attrs.define(eq=False)
class McpEndpoint:
    """The ASGI app of one MCP endpoint; see the module docstring.

    ``services`` and ``sealer`` are callables so the endpoint can be built before the process's services
    exist (the app is assembled once, the services are read per request).
    """

    path: str
    backend: McpBackend
    services: Callable[[], Services]
    keys: Callable[[], KeyCache]
    sealer: Callable[[], SessionSealer]
    allowed_origins: frozenset[str] = frozenset()
    read_timeout: float = 30.0  # the whole request body (``server.proxy.read_timeout``), else 408
    write_timeout: float = 120.0  # an event stream's end (``server.proxy.write_timeout``; 0: read_timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = scope.get(SCOPE_KEY)
        try:
            await self._serve(scope, receive, send, request_id)
        except _Refusal as refusal:
            await _send_json(send, refusal.status, jsonrpc.error_object(refusal.error), refusal.headers)
        except ClientDisconnectedError:
            return  # gone before its body was complete: no one to answer

    async def _serve(self, scope: Scope, receive: Receive, send: Send, request_id: str | None) -> None:
        self._check_origin(scope)
        identity = await self._authenticate(scope)
        version = self._version(scope)
        method = scope["method"]
        if method == "POST":
            await self._post(scope, receive, send, identity, version, request_id)
        elif method == "DELETE" and version != STATELESS_VERSION:
            await self._delete(scope, send, identity, version, request_id)
        else:
            allow = b"POST" if version == STATELESS_VERSION else b"POST, DELETE"
            raise _Refusal(
                405, JsonRpcError(jsonrpc.INVALID_REQUEST, "method not allowed"), [(b"allow", allow)]
            )

    # -- checks every request passes -----------------------------------------------------------------

    def _check_origin(self, scope: Scope) -> None:
        origin = header(scope, b"origin")
        if origin is None or origin in self.allowed_origins:
            return
        host = header(scope, b"host")
        _, _, origin_host = origin.partition("://")
        if host is not None and origin_host.rstrip("/") == host:
            return
        raise _Refusal(403, JsonRpcError(jsonrpc.INVALID_REQUEST, "origin not allowed"))

    async def _authenticate(self, scope: Scope) -> KeyIdentity:
        try:
            return await self.keys().resolve(header(scope, b"authorization"), header(scope, b"x-api-key"))
        except AuthenticationError as exc:
            raise _Refusal(
                401, JsonRpcError(jsonrpc.INVALID_REQUEST, exc.message), [(b"www-authenticate", b"Bearer")]
            ) from None

    def _version(self, scope: Scope) -> str:
        version = header(scope, VERSION_HEADER)
        if version is None:
            return DEFAULT_VERSION
        if version not in SUPPORTED_VERSIONS:
            raise _Refusal(400, _unsupported(version))
        return version

    # -- POST ------------------------------------------------------------------------------------------

    async def _post(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        identity: KeyIdentity,
        version: str,
        request_id: str | None,
    ) -> None:
        json_ok, sse_ok = _accepts(header(scope, b"accept"))
        try:
            body = await read_body(scope, receive, limit=MAX_BODY, read_timeout=self.read_timeout)
        except GatewayError as exc:  # 413, 408, 400 (a malformed Content-Length)
            raise _Refusal(exc.status, JsonRpcError(jsonrpc.INVALID_REQUEST, exc.message)) from None
        try:
            parsed = jsonrpc.parse_body(body)
        except JsonRpcError as exc:
            status = 200 if not body.strip() else 400  # the reference answers an empty body with 200
            await _send_json(send, status, jsonrpc.error_object(exc))
            return
        ctx = self._context(identity, version, request_id)
        failure: Exception | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_disconnect, receive, nursery.cancel_scope)
            try:
                await self._answer_post(scope, send, ctx, parsed, json_ok=json_ok, sse_ok=sse_ok)
            except Exception as exc:  # re-raised below, outside the nursery (not as an exception group)
                failure = exc
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _answer_post(
        self, scope: Scope, send: Send, ctx: McpContext, parsed: Any, *, json_ok: bool, sse_ok: bool
    ) -> None:
        if isinstance(parsed, list):
            await self._batch(scope, send, ctx, parsed)
            return
        if isinstance(parsed, JsonRpcError):  # pragma: no cover - parse_body raises for single values
            raise _Refusal(400, parsed)
        if ctx.protocol_version == STATELESS_VERSION:
            ctx = self._stateless(scope, ctx, parsed)
            headers: list[tuple[bytes, bytes]] = []
        else:
            ctx, headers = await self._session(scope, ctx, parsed)
        if sse_ok and isinstance(parsed, Request):
            await self._streamed(send, ctx, parsed, headers, json_ok=json_ok)
            return
        answer = await self._dispatch(ctx, parsed)
        if answer is None:
            await _send_empty(send, 202, headers)
        elif not json_ok:
            await _send_sse(send, [answer], headers)
        else:
            await _send_json(send, 200, answer, headers)

    async def _streamed(
        self,
        send: Send,
        ctx: McpContext,
        request: Request,
        headers: list[tuple[bytes, bytes]],
        *,
        json_ok: bool,
    ) -> None:
        """Answer a request of a client that accepts SSE: an event stream once a notification is relayed.

        Relayed notifications go through a small channel to one sender task, so a client that stops
        reading never holds up the upstream call (a notification that finds the channel full is dropped:
        notifications are advisory). Once the dispatch returns, the rest of the stream and its end get
        ``write_timeout`` (``read_timeout`` when that is 0); a client that reads nothing by then is cut off.
        """
        outbox, inbox = trio.open_memory_channel[Notification](RELAY_BUFFER)
        stream = _EventStream(send, headers, outbox)
        refused: _Refusal | None = None
        answer: dict[str, Any] | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.pump, inbox)
            with outbox:
                try:
                    answer = await self._dispatch(attrs.evolve(ctx, relay=stream.relay), request)
                except _Refusal as refusal:
                    refused = refusal
            deadline = trio.current_time() + (self.write_timeout or self.read_timeout)
            nursery.cancel_scope.deadline = deadline
        if refused is not None:
            if not stream.started:
                raise refused
            answer = jsonrpc.error_object(refused.error, request.id)  # the HTTP status is already sent
        if stream.started:
            if not nursery.cancel_scope.cancelled_caught:  # else the client read nothing in time
                with trio.move_on_at(deadline):
                    await stream.end(answer)
        elif json_ok:
            await _send_json(send, 200, answer, headers)
        else:
            await _send_sse(send, [answer], headers)

    def _context(self, identity: KeyIdentity, version: str, request_id: str | None) -> McpContext:
        return McpContext(
            identity=identity,
            services=self.services(),
            request_id=request_id,
            protocol_version=version,
            endpoint=self.path,
        )

    async def _batch(self, scope: Scope, send: Send, ctx: McpContext, items: list[Any]) -> None:
        if ctx.protocol_version != DEFAULT_VERSION:
            raise _Refusal(
                400,
                JsonRpcError(jsonrpc.INVALID_REQUEST, "batches are not supported in this protocol version"),
            )
        if any(isinstance(m, Request) and m.method == "initialize" for m in items):
            raise _Refusal(400, JsonRpcError(jsonrpc.INVALID_REQUEST, "initialize must not be batched"))
        state = self._open(scope, ctx)
        if state.protocol_version != DEFAULT_VERSION:
            raise _Refusal(
                400,
                JsonRpcError(jsonrpc.INVALID_REQUEST, "batches are not supported in this protocol version"),
            )
        session_ctx = attrs.evolve(ctx, session=state.backend)
        answers: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, JsonRpcError):
                answers.append(jsonrpc.error_object(item))
                continue
            answer = await self._dispatch(session_ctx, item)
            if answer is not None:
                answers.append(answer)
        if answers:
            await _send_json(send, 200, answers)
        else:
            await _send_empty(send, 202)

    async def _session(
        self, scope: Scope, ctx: McpContext, message: jsonrpc.Message
    ) -> tuple[McpContext, list[tuple[bytes, bytes]]]:
        """Session era: open the session token, or mint one for ``initialize``."""
        if isinstance(message, Request) and message.method == "initialize":
            requested = (message.params or {}).get("protocolVersion")
            version = requested if requested in SESSION_VERSIONS else SESSION_VERSIONS[-1]
            ctx = attrs.evolve(ctx, protocol_version=version)
            opener = getattr(self.backend, "open_session", None)
            state = dict(await opener(ctx)) if opener is not None else {}
            sealed = SessionState.new(
                key_id=ctx.identity.key_id, endpoint=self.path, protocol_version=version, backend=state
            )
            token = self.sealer().seal(sealed)
            return attrs.evolve(ctx, session=state), [(SESSION_HEADER, token.encode("ascii"))]
        opened = self._open(scope, ctx)
        if header(scope, VERSION_HEADER) not in (None, opened.protocol_version):
            raise _Refusal(
                400,
                JsonRpcError(
                    jsonrpc.INVALID_REQUEST, "MCP-Protocol-Version does not match the session's version"
                ),
            )
        return attrs.evolve(ctx, protocol_version=opened.protocol_version, session=opened.backend), []

    def _open(self, scope: Scope, ctx: McpContext) -> SessionState:
        token = header(scope, SESSION_HEADER)
        if token is None:
            raise _Refusal(400, JsonRpcError(jsonrpc.INVALID_REQUEST, "missing Mcp-Session-Id header"))
        try:
            return self.sealer().open(token, key_id=ctx.identity.key_id, endpoint=self.path)
        except InvalidSession:
            raise _Refusal(404, JsonRpcError(jsonrpc.INVALID_REQUEST, "session not found")) from None

    def _stateless(self, scope: Scope, ctx: McpContext, message: jsonrpc.Message) -> McpContext:
        """2026-07-28: routing headers must agree with the body; ``_meta`` carries the envelope."""
        if not isinstance(message, (Request, Notification)):
            return ctx
        if header(scope, b"mcp-method") != message.method:
            raise _Refusal(
                400, JsonRpcError(jsonrpc.HEADER_MISMATCH, "Mcp-Method header does not match the body")
            )
        params = message.params or {}
        name_key = NAME_BEARING.get(message.method)
        if name_key is not None and params.get(name_key) is not None:
            if _decode_header(header(scope, b"mcp-name")) != params.get(name_key):
                raise _Refusal(
                    400, JsonRpcError(jsonrpc.HEADER_MISMATCH, "Mcp-Name header does not match the body")
                )
        meta = params.get("_meta")
        meta = dict(meta) if isinstance(meta, dict) else {}
        if not isinstance(message, Request):
            return attrs.evolve(ctx, meta=meta)
        if META_PROTOCOL_VERSION not in meta or META_CLIENT_CAPABILITIES not in meta:
            raise _Refusal(
                400,
                JsonRpcError(
                    jsonrpc.INVALID_PARAMS,
                    f"params._meta must carry {META_PROTOCOL_VERSION} and {META_CLIENT_CAPABILITIES}",
                ),
            )
        if meta[META_PROTOCOL_VERSION] != ctx.protocol_version:
            raise _Refusal(
                400, JsonRpcError(jsonrpc.HEADER_MISMATCH, "MCP-Protocol-Version header does not match _meta")
            )
        return attrs.evolve(ctx, meta=meta)

    # -- dispatch ----------------------------------------------------------------------------------

    async def _dispatch(self, ctx: McpContext, message: jsonrpc.Message) -> dict[str, Any] | None:
        """The answer to one message, or ``None`` for notifications and client responses."""
        if isinstance(message, Notification):
            try:
                await self.backend.notify(ctx, message.method, message.params)
            except _Refusal:
                raise
            except Exception:
                log.exception("mcp notification handler failed", extra={"endpoint": self.path})
            return None
        if not isinstance(message, Request):
            return None  # a response to a server request: we send none, so nothing waits for it
        try:
            result = await self._call(ctx, message)
        except _Refusal:
            raise  # a backend's McpHttpError: answered by __call__ with its HTTP status
        except JsonRpcError as exc:
            return jsonrpc.error_object(exc, message.id)
        except Exception:
            log.exception("mcp handler failed", extra={"endpoint": self.path, "method": message.method})
            return jsonrpc.error_object(JsonRpcError(jsonrpc.INTERNAL_ERROR, "internal error"), message.id)
        return jsonrpc.Response(message.id, result).to_json()

    async def _call(self, ctx: McpContext, request: Request) -> dict[str, Any]:
        result = await self._answer(ctx, request)
        if ctx.protocol_version == STATELESS_VERSION and "resultType" not in result:
            result = {**result, "resultType": "complete"}  # required on every 2026-07-28 result
        return result

    async def _answer(self, ctx: McpContext, request: Request) -> dict[str, Any]:
        stateless = ctx.protocol_version == STATELESS_VERSION
        method = request.method
        if method == "ping" and not stateless:
            return {}
        if method == "initialize":
            if stateless:
                raise JsonRpcError(jsonrpc.METHOD_NOT_FOUND, "method not found")
            result = await self.backend.handle(ctx, "initialize", request.params)
            return {"protocolVersion": ctx.protocol_version, **result}
        if method == "server/discover":
            result = dict(await self.backend.handle(ctx, "initialize", request.params))
            meta = dict(result.pop("_meta", None) or {})
            if "serverInfo" in result:  # 2026-07-28 moves serverInfo into the result's _meta stamp
                meta[META_SERVER_INFO] = result.pop("serverInfo")
            return {
                "supportedVersions": list(SUPPORTED_VERSIONS),
                "ttlMs": 0,
                "cacheScope": "private",
                **result,
                "_meta": meta,
            }
        return await self.backend.handle(ctx, method, request.params)

    # -- DELETE --------------------------------------------------------------------------------------

    async def _delete(
        self, scope: Scope, send: Send, identity: KeyIdentity, version: str, request_id: str | None
    ) -> None:
        ctx = self._context(identity, version, request_id)
        state = self._open(scope, ctx)
        closer = getattr(self.backend, "close_session", None)
        if closer is not None:
            await closer(attrs.evolve(ctx, session=state.backend), state.backend)
        self.sealer().revoke(state)
        await _send_empty(send, 204)


# -- helpers ------------------------------------------------------------------------------------------


async def _watch_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    """Cancel ``scope`` when the client disconnects (the body is read: the next message can only be that)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


def _unsupported(version: str) -> JsonRpcError:
    return JsonRpcError(
        jsonrpc.UNSUPPORTED_PROTOCOL_VERSION,
        f"unsupported protocol version; supported: {', '.join(SUPPORTED_VERSIONS)}",
        {"supported": list(SUPPORTED_VERSIONS), "requested": version[:64]},
    )


def _decode_header(value: str | None) -> str | None:
    """``Mcp-Name`` may be ``=?base64?<payload>?=`` for values that are not visible ASCII."""
    if value is None or not (value.startswith("=?base64?") and value.endswith("?=")):
        return value
    try:
        return base64.b64decode(value[9:-2], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _accepts(accept: str | None) -> tuple[bool, bool]:
    """Whether the client accepts ``(JSON, SSE)``; no Accept means JSON only; refuses (406) an Accept
    that allows neither."""
    if accept is None:
        return True, False
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    json_ok = bool(types & {"application/json", "application/*", "*/*"})
    sse_ok = bool(types & {"text/event-stream", "text/*", "*/*"})
    if not json_ok and not sse_ok:
        raise _Refusal(
            406,
            JsonRpcError(jsonrpc.INVALID_REQUEST, "Accept must allow application/json or text/event-stream"),
        )
    return json_ok, sse_ok


async def _send_json(
    send: Send, status: int, value: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = jsonrpc.dumps(value)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_empty(send: Send, status: int, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", b"0"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": b""})


async def _send_sse(
    send: Send, messages: list[Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """One ``event: message`` per JSON-RPC message, each flushed as its own chunk."""
    await _start_sse(send, headers or [])
    for message in messages:
        await _send_event(send, message)
    await send({"type": "http.response.body", "body": b""})


async def _start_sse(send: Send, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
                *headers,
            ],
        }
    )


async def _send_event(send: Send, message: Any) -> None:
    event = b"event: message\ndata: " + jsonrpc.dumps(message) + b"\n\n"
    await send({"type": "http.response.body", "body": event, "more_body": True})


@attrs.define(eq=False)
class _EventStream:
    """The answer to one request, an event stream from the first relayed notification on (module
    docstring, rule 6); until then nothing is sent, so the answer can still go out as JSON. Notifications
    are queued in ``outbox`` and sent by :meth:`pump` (:meth:`McpEndpoint._streamed`)."""

    send: Send
    headers: list[tuple[bytes, bytes]]
    outbox: trio.MemorySendChannel[Notification]
    started: bool = False  # a notification was queued: the answer is an event stream
    head_sent: bool = False

    async def relay(self, notification: Notification) -> None:
        """Queue ``notification`` to be sent as its own event, or drop it when the queue is full."""
        try:
            self.outbox.send_nowait(notification)
        except trio.WouldBlock:
            return  # the client reads slower than the upstream notifies: advisory, so dropped
        self.started = True

    async def pump(self, inbox: trio.MemoryReceiveChannel[Notification]) -> None:
        """Send the queued notifications (starting the stream on the first one) until the queue closes."""
        async with inbox:
            async for notification in inbox:
                if not self.head_sent:
                    self.head_sent = True
                    await _start_sse(self.send, self.headers)
                await _send_event(self.send, notification)

    async def end(self, answer: Any) -> None:
        """Send the response and end the stream."""
        await _send_event(self.send, answer)
        await self.send({"type": "http.response.body", "body": b""})
