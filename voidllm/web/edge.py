"""The ASGI layer in front of the Quart app: request ids for every response (``X-Request-Id``; on
``/v1/messages`` also Anthropic's ``request-id``, the same value, which Anthropic's SDKs read), drain tracking
for ``/v1``, and the dispatch of proxied ``POST /v1/...`` routes to the raw proxy handler (Quart's routing
would cost 35-50 % of proxied throughput). It also sends ``GET``/``HEAD`` of paths outside the APIs to the
web UI (:mod:`voidllm.web.spa`) and ``/api/v1/playground/...`` to the playground tunnel
(:mod:`voidllm.web.playground`), which is drain-tracked like ``/v1``. When web pages of other origins may call
``/v1`` or the MCP endpoints (``server.cors``), it answers their CORS preflights itself, before any app and so
before authentication, and adds the CORS headers to every response of those paths, its own errors included
(:mod:`voidllm.web.cors`). In dual-port mode (``server.admin``) each port has its own edge over the same app:
a path its port does not serve (:mod:`voidllm.web.listeners`) is answered 404 before anything else, in the
envelope of the endpoint the path names; only the proxy port's edge hands the app its lifespan events, the
admin port's answers them itself, so the app starts and stops once.

While tracing is on (:mod:`voidllm.tracing`), every HTTP request is a ``SERVER`` span, current for the whole
exchange and continuing an incoming ``traceparent``; it ends with the response status (an unhandled failure:
its error types, never its message).

It is plain ASGI so it also covers responses Quart never sees (a request refused while draining). Each
``/v1`` request runs in a cancel scope held by the :class:`~voidllm.nursery.DrainTracker`: while draining, new
requests get 503 ``service_unavailable``; when the drain deadline passes, the ones still running are cancelled
and, if nothing was sent yet, answered with 503.

The last part of every response waits (at most :data:`BODY_DRAIN_LIMIT`) until the request body has been fully
received: hypercorn closes a keep-alive connection whose request body is still arriving when the response ends
(a 405 answered before a ``PUT`` body was read, say), and a client that reuses the connection in that moment
waits for an answer that never comes.

Two rules keep failures cheap and quiet:

- **No WebSocket.** The gateway serves none, so every upgrade (any path, before authentication) is refused
  with 400 ``bad_request`` in the envelope, through the ASGI ``websocket.http.response`` extension (a bare
  403 where the server lacks it). Nothing reaches Quart, whose WebSocket error path fails and logs twice.
- **Last resort.** An exception that escapes the app (a route, the proxy, an MCP endpoint, Quart's own
  error handling, an exception group out of a nursery) never reaches the HTTP server: the edge logs one
  line (:func:`log_unhandled`: error types, method, path, request id; never the exception's message, which
  may carry content) and answers 500 ``internal_error`` if nothing was sent yet; once the response has
  started, it ends the exchange without its end, so the server closes the connection and the client sees a
  broken response, not a truncated one passed off as whole. Cancellation and interpreter exits
  (``KeyboardInterrupt``, ``SystemExit``) pass through untouched, also out of exception groups.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
import trio

from voidllm import tracing
from voidllm.asgi import REQUEST_ID_HEADER, SCOPE_KEY, error_body, request_id_from, send_error
from voidllm.errors import ServiceUnavailableError
from voidllm.request_policy import ORIGIN_VERDICT
from voidllm.web.listeners import Listener

if TYPE_CHECKING:
    from collections.abc import Mapping

    from voidllm.nursery import DrainTracker
    from voidllm.web.cors import CorsExchange, CorsPolicy

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]

_SHUTTING_DOWN = "request cancelled: server is shutting down"
_NOT_ON_THIS_PORT = "no such endpoint on this port"

LOGGED_PATH = 256
"""At most this many characters of a failed request's path go into its log line."""

ANTHROPIC_PATHS = "/v1/messages"
"""Responses under this path prefix (Anthropic's Messages API) carry the request id as ``request-id`` too."""

ANTHROPIC_REQUEST_ID = b"request-id"

BODY_DRAIN_LIMIT = 1.0
"""Seconds the end of a response waits for the rest of an unread request body."""


class _RequestBody:
    """Wraps ``receive`` to notice when the request body is complete; see the module docstring."""

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        self._receiving = 0
        self.complete = trio.Event()

    async def receive(self) -> Message:
        self._receiving += 1
        try:
            message: Message = await self._receive()
        finally:
            self._receiving -= 1
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.complete.set()
        return message

    async def wait_complete(self) -> None:
        """Let the app's own reader take the rest of the body, or read and discard it here."""
        with trio.move_on_after(BODY_DRAIN_LIMIT):
            while not self.complete.is_set():
                if self._receiving:
                    await self.complete.wait()
                else:
                    await self.receive()


class _Response:
    """The sending side of one exchange: adds the request id (also as ``request-id`` when ``anthropic``, and
    the CORS headers of ``cors``), notes whether the response has started, and lets the last part wait for
    the rest of the request body."""

    def __init__(
        self,
        send: Any,
        body: _RequestBody,
        request_id: str,
        cors: CorsExchange | None,
        *,
        anthropic: bool,
        scope: Scope | None = None,
    ) -> None:
        self._send = send
        self._scope = scope
        self._body = body
        self.request_id = request_id
        self.cors = cors
        self._names = (REQUEST_ID_HEADER, ANTHROPIC_REQUEST_ID) if anthropic else (REQUEST_ID_HEADER,)
        self.started = False
        self.status = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            headers = [h for h in message.get("headers", ()) if h[0].lower() not in self._names]
            headers.extend((name, self.request_id.encode()) for name in self._names)
            if self.cors is not None:
                verdict = self._scope.get(ORIGIN_VERDICT) if self._scope is not None else None
                headers = self.cors.response_headers(headers, verdict)
            message = {**message, "headers": headers}
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            await self._body.wait_complete()
        await self._send(message)


class Edge:
    """Wraps an ASGI app; see the module docstring."""

    def __init__(
        self,
        app: Any,
        drain: DrainTracker,
        *,
        proxy: Any = None,
        proxy_paths: frozenset[str] = frozenset(),
        tracked_prefixes: tuple[str, ...] = ("/v1/",),
        spa: Any = None,
        playground: Any = None,
        playground_prefix: str = "/api/v1/playground/",
        cors: CorsPolicy | None = None,
        listener: Listener = Listener.ALL,
        lifespan: bool = True,
    ) -> None:
        self.app = app
        self.drain = drain
        self.proxy = proxy
        self.proxy_paths = proxy_paths
        self.tracked_prefixes = tracked_prefixes
        self.spa = spa  # serves(scope) -> bool, and an ASGI app
        self.playground = playground
        self.playground_prefix = playground_prefix
        self.cors = cors
        self.listener = listener  # which paths this port serves
        self.lifespan = lifespan  # whether the app gets the lifespan events of this port's server

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await refuse_websocket(scope, receive, send)
            return
        if scope["type"] == "lifespan" and not self.lifespan:
            await _serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        scope[SCOPE_KEY] = request_id
        body = _RequestBody(receive)
        cors = self.cors.exchange(scope) if self.cors is not None else None
        preflight = cors is not None and cors.preflight
        anthropic = scope["path"].startswith(ANTHROPIC_PATHS)
        response = _Response(
            send, body, request_id, None if preflight else cors, anthropic=anthropic, scope=scope
        )
        traced = tracing.start_request(scope["method"], scope["path"], scope["headers"], request_id)
        failure_type: str | None = None
        try:
            if not self.listener.serves(scope["path"]):  # also a preflight: no such resource on this port
                await _send_edge_error(response.send, 404, scope["path"], request_id, _NOT_ON_THIS_PORT)
            elif cors is not None and preflight:
                await _send_preflight(response.send, cors)
            else:
                await self._dispatch(scope, body.receive, response)
        except BaseException as exc:
            passing, failure = split_failure(exc)
            if failure is None:
                raise
            failure_type = error_types(failure)
            log_unhandled(failure, scope)
            if passing is not None:
                raise passing from None
            if not response.started:
                await _send_internal_error(response.send, scope["path"], request_id)
        finally:
            if traced is not None:
                traced.status = response.status
                traced.finish(error_type=failure_type)

    async def _dispatch(self, scope: Scope, receive: Any, response: _Response) -> None:
        """``/v1`` and playground requests under drain tracking (proxied routes to the raw handler), the web
        UI's to it, the rest to the app."""
        send = response.send
        path = scope["path"]
        if self.spa is not None and self.spa.serves(scope):
            await self.spa(scope, receive, send)
            return
        if self.playground is not None and path.startswith(self.playground_prefix):
            app = self.playground
        elif path.startswith(self.tracked_prefixes):
            app = self.proxy if scope["method"] == "POST" and path in self.proxy_paths else self.app
        else:
            await self.app(scope, receive, send)
            return
        try:
            with self.drain.track() as cancel_scope:
                with cancel_scope:
                    await app(scope, receive, send)
                if cancel_scope.cancelled_caught and not response.started:
                    await send_error(send, 503, "service_unavailable", _SHUTTING_DOWN, response.request_id)
        except ServiceUnavailableError as exc:
            await send_error(send, exc.status, exc.code, exc.message, response.request_id, param=exc.param)


async def _send_preflight(send: Any, cors: CorsExchange) -> None:
    """204 to a CORS preflight, with the allow headers when its origin may call the path."""
    await send({"type": "http.response.start", "status": 204, "headers": cors.preflight_headers()})
    await send({"type": "http.response.body", "body": b""})


async def _send_internal_error(send: Any, path: str, request_id: str) -> None:
    """500 in the endpoint's envelope (:func:`_send_edge_error`)."""
    await _send_edge_error(send, 500, path, request_id, "internal server error", rpc_message="internal error")


_EDGE_ERRORS = {
    404: ("not_found", "not_found_error", -32600),
    500: ("internal_error", "api_error", -32603),
}
"""Status -> our code, Anthropic's error type, the JSON-RPC error code."""


async def _send_edge_error(
    send: Any, status: int, path: str, request_id: str, message: str, *, rpc_message: str | None = None
) -> None:
    """An error the edge answers itself, in the envelope of the endpoint ``path`` names: Anthropic's shape on
    ``/v1/messages``, a JSON-RPC error on the MCP endpoints (``rpc_message`` when given), ours everywhere
    else; each with the request id."""
    code, anthropic_type, rpc_code = _EDGE_ERRORS[status]
    if path.startswith("/v1/messages"):
        error = {"type": anthropic_type, "message": message}
        body = orjson.dumps({"type": "error", "error": error, "request_id": request_id})
    elif path.startswith("/api/v1/mcp"):
        rpc_error: dict[str, object] = {
            "code": rpc_code,
            "message": rpc_message or message,
            "data": {"request_id": request_id},
        }
        body = orjson.dumps({"jsonrpc": "2.0", "id": None, "error": rpc_error})
    else:
        await send_error(send, status, code, message, request_id)
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _serve_lifespan(receive: Any, send: Any) -> None:
    """Complete the lifespan protocol without the app (whose lifespan another port's server runs)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def refuse_websocket(scope: Scope, receive: Any, send: Any) -> None:
    """Answer a WebSocket upgrade with 400 in the envelope (see the module docstring), before any app runs."""
    request_id = request_id_from(scope["headers"])
    message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client left before the handshake reached us
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})  # the server answers a bare 403
        return
    body = error_body(400, "bad_request", "WebSocket upgrades are not supported", request_id)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (REQUEST_ID_HEADER, request_id.encode()),
    ]
    await send({"type": "websocket.http.response.start", "status": 400, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


def split_failure(exc: BaseException) -> tuple[BaseException | None, BaseException | None]:
    """``(what passes through, what is a failure)``: cancellation and interpreter exits pass through, other
    exceptions are failures; an exception group is split between the two."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(lambda e: not isinstance(e, Exception | BaseExceptionGroup))
    if isinstance(exc, Exception):
        return None, exc
    return exc, None


def error_types(exc: BaseException) -> str:
    """The exception's type name; for a group, its leaves' (``ExceptionGroup[KeyError, ValueError]``)."""
    if isinstance(exc, BaseExceptionGroup):
        return f"{type(exc).__name__}[{', '.join(sorted({error_types(e) for e in exc.exceptions}))}]"
    return type(exc).__name__


def log_unhandled(exc: BaseException, scope: Mapping[str, object]) -> None:
    """The one line an unhandled exception leaves: its type(s) and the request, never its message."""
    log.error(
        "unhandled error",
        extra={
            "error_type": error_types(exc),
            "method": scope.get("method"),
            "path": str(scope.get("path", ""))[:LOGGED_PATH],
            "request_id": scope.get(SCOPE_KEY),
        },
    )
