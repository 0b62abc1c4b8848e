"""The upstream MCP client: sessions with, and calls to, the MCP servers behind the gateway
(docs/reference/behaviour.md 8.2).

:class:`McpUpstreams` sends the JSON-RPC traffic through one keep-alive pool
(:class:`~voidllm.mcp.upstream.ssrf.GuardedPool`, the trio/h11 pool of the LLM proxy with the URL policy
applied when connecting: httpx cost about 1 ms of CPU per call, most of a proxied tool call's), and keeps an
``httpx.AsyncClient`` per upstream server id for the rare rest (OAuth token requests, the legacy transport's
probe); all are closed by :meth:`McpUpstreams.aclose`. It keeps no sessions itself: :meth:`~McpUpstreams.open`
returns an :class:`UpstreamSession` (session id and negotiated protocol version, a small value the gateway
seals into its own session token) and :meth:`~McpUpstreams.request` takes one back (or ``None`` to open
one lazily) and returns the session to use from then on, which differs after a transparent re-initialize.

Protocol eras (docs/reference/mcp-transport.md):

- **2026-07-28** (stateless): :meth:`open` first POSTs ``server/discover`` with the modern envelope; a
  server that lists 2026-07-28 gets no handshake and no session id (``UpstreamSession(None,
  "2026-07-28")``). Every request then carries ``params._meta`` (protocol version, client capabilities,
  client info) and the ``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name`` headers. The answer is
  remembered per server, so older servers pay the extra round trip once per process.
- **2025-03-26 to 2025-11-25** (sessions): ``initialize`` with the newest handshake version we speak, the
  server's answer is the negotiated version (refused if we do not know it), then
  ``notifications/initialized``. Later requests carry ``Mcp-Session-Id`` and ``MCP-Protocol-Version``.
  A 404 on a request with a session id means the session expired: :meth:`request` initializes again and
  retries exactly once. :meth:`close` sends ``DELETE`` (405 and 404 are fine).
- **2024-11-05 HTTP+SSE** (deprecated): not spoken. :meth:`probe` recognises such a server (POST refused
  with 400/404/405, then ``GET`` with ``Accept: text/event-stream`` streams an ``endpoint`` event) and
  reports ``legacy_sse``, which the registration code uses to deactivate it, as the reference does.

Every POST sends ``Accept: application/json, text/event-stream``; a JSON answer is one message, an SSE
answer is read until the response with our request id. Notifications on that stream (progress, log
messages) go, as each arrives, to the ``on_notification`` callback of :meth:`~McpUpstreams.request` (which
awaits it before reading on: a slow consumer slows the upstream's stream, nothing is buffered), or are
skipped without one; server requests on the stream are skipped. Responses are capped at
``max_response_bytes`` while they are read, notifications included. While tracing is on, every request
carries the current span's ``traceparent`` (a tool call's span, :mod:`voidllm.tracing`).

Deadlines: ``call_timeout`` is a trio cancel scope around each public call (open, request with its
possible re-initialize and retry, notify, close, a whole paginated list); httpx only bounds connecting.
A request that times out is followed by a best-effort ``notifications/cancelled`` (session era).

Errors: :class:`UpstreamUnavailable` (transport failure, timeout, non-2xx, unusable answer, refused
address) and its subclasses; :class:`UpstreamRpcError` for a JSON-RPC error object the server answered
(forward it to the client as is). Zero knowledge: params, arguments and results are never logged and never
put in exception messages; messages name the server alias and what failed.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import attrs
import orjson
import trio

from voidllm import __version__, tracing
from voidllm.mcp.upstream.jsonrpc import JsonRpcError, Notification, parse_message
from voidllm.mcp.upstream.oauth import OAuthError, TokenCache
from voidllm.mcp.upstream.ssrf import (
    KEEPALIVE_EXPIRY,
    BlockedAddress,
    GuardedPool,
    check_url,
    guarded_transport,
)
from voidllm.sse import Event, EventFramer, parse_event
from voidllm.transport.base import UpstreamError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping

    import httpx

__all__ = [
    "HANDSHAKE_VERSIONS",
    "LATEST_HANDSHAKE_VERSION",
    "MODERN_VERSION",
    "McpUpstreams",
    "NotificationHandler",
    "ProbeResult",
    "SessionExpired",
    "UpstreamRpcError",
    "UpstreamServer",
    "UpstreamSession",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]

log = logging.getLogger(__name__)

HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST_HANDSHAKE_VERSION = HANDSHAKE_VERSIONS[-1]
MODERN_VERSION = "2026-07-28"

_META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
_META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
_META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
# 2026-07-28: the params key mirrored in the Mcp-Name header.
_NAME_BEARING = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_CLIENT_INFO = {"name": "voidllm", "version": __version__}

NotificationHandler: TypeAlias = "Callable[[Notification], Awaitable[None]]"
"""Takes the notifications an upstream sends before its response (:meth:`McpUpstreams.request`)."""

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
_MAX_ERROR_BODY = 64 * 1024
_MAX_LIST_PAGES = 100
_CONNECT_TIMEOUT = 10.0
_CANCEL_GRACE = 2.0
# How long the rest of an answer may take to arrive before its connection is given up rather than reused.
# A server ends its SSE stream right after our response, so the end comes at once; one that keeps the
# stream open costs each call this much, so it stays short.
_DRAIN_GRACE = 0.1


@attrs.frozen
class UpstreamServer:
    """An upstream MCP server as the client needs it: where, and with which credentials."""

    id: str
    alias: str
    url: str
    auth_type: str = "none"
    auth_header: str = ""
    auth_token: str = attrs.field(default="", repr=False)
    oauth_token_url: str = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = attrs.field(default="", repr=False)
    oauth_scopes: str = ""


@attrs.frozen
class UpstreamSession:
    """One session with one upstream: ``session_id`` is ``None`` for sessionless (and 2026-07-28) servers."""

    session_id: str | None
    protocol_version: str

    @property
    def modern(self) -> bool:
        return self.protocol_version == MODERN_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"s": self.session_id, "v": self.protocol_version}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> UpstreamSession:
        session_id, version = value.get("s"), value.get("v")
        if (session_id is not None and not isinstance(session_id, str)) or not isinstance(version, str):
            raise ValueError("invalid upstream session")
        return cls(session_id, version)


@attrs.frozen
class ProbeResult:
    ok: bool
    tools: int | None = None
    error: str | None = None
    legacy_sse: bool = False


class UpstreamUnavailable(Exception):
    """The upstream could not be used: unreachable, timed out, refused, or answered something unusable."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UpstreamTimeout(UpstreamUnavailable):
    """``settings.mcp.call_timeout`` passed before the upstream answered."""


class SessionExpired(UpstreamUnavailable):
    """The upstream answered 404 to a request with a session id (re-initialize)."""


class UpstreamRpcError(JsonRpcError):
    """The upstream answered a JSON-RPC error object; ``to_object()`` gives it back for forwarding.

    ``str()`` names the server and code only: the upstream's message may echo request content.
    """

    def __init__(self, alias: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        self.alias = alias

    def __str__(self) -> str:
        return f"MCP server {self.alias!r} answered JSON-RPC error {self.code}"

    @classmethod
    def from_object(cls, alias: str, error: Any) -> UpstreamRpcError:
        if (
            not isinstance(error, dict)
            or not isinstance(error.get("code"), int)
            or isinstance(error.get("code"), bool)
        ):
            raise UpstreamUnavailable(f"MCP server {alias!r} answered an invalid error object")
        message = error.get("message")
        return cls(alias, error["code"], message if isinstance(message, str) else "", error.get("data"))


@attrs.frozen
class _Reply:
    status: int
    headers: dict[str, str]  # lowercased names
    message: dict[str, Any] | None


class _Body(Protocol):
    """A response body read chunk by chunk: the pool's responses and httpx's."""

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...


class _TooLarge(Exception):
    pass


@attrs.define(eq=False)
class McpUpstreams:
    """Pooled HTTP clients to the upstream MCP servers, and the MCP client protocol on top of them."""

    call_timeout: float = 30.0
    allow_private_urls: bool = False
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    tokens: TokenCache = attrs.field(default=None)
    _clients: dict[str, httpx.AsyncClient] = attrs.field(factory=dict, init=False)
    _pool: GuardedPool = attrs.field(default=None, init=False)
    _allowed_urls: set[str] = attrs.field(factory=set, init=False)
    _modern: dict[str, bool] = attrs.field(factory=dict, init=False)
    _ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)

    def __attrs_post_init__(self) -> None:
        if self.tokens is None:
            self.tokens = TokenCache(allow_private_urls=self.allow_private_urls)
        self._pool = self._new_pool()

    @classmethod
    def from_settings(cls, mcp: Any) -> McpUpstreams:
        """From ``config.settings.mcp`` (:class:`voidllm.config.MCPConfig`)."""
        return cls(call_timeout=mcp.call_timeout, allow_private_urls=mcp.allow_private_urls)

    # -- clients ---------------------------------------------------------------------------------------

    def client(self, server: UpstreamServer) -> httpx.AsyncClient:
        """The pooled client of ``server`` (created on first use)."""
        client = self._clients.get(server.id)
        if client is None:
            client = self._clients[server.id] = self._new_client()
        return client

    def _new_client(self) -> httpx.AsyncClient:
        import httpx  # loaded at first use (voidllm.lazyhttp)

        return httpx.AsyncClient(
            transport=guarded_transport(self.allow_private_urls),
            timeout=httpx.Timeout(None, connect=_CONNECT_TIMEOUT, pool=_CONNECT_TIMEOUT),
            follow_redirects=False,
            trust_env=False,
        )

    def _new_pool(self) -> GuardedPool:
        return GuardedPool(
            max_connections_per_origin=100,
            max_idle_per_origin=20,
            keepalive_expiry=KEEPALIVE_EXPIRY,
            connect_timeout=_CONNECT_TIMEOUT,
            allow_private=self.allow_private_urls,
        )

    async def aclose(self) -> None:
        """Close every connection; a later call opens new ones."""
        clients, self._clients = list(self._clients.values()), {}
        pool, self._pool = self._pool, self._new_pool()
        with trio.move_on_after(_CANCEL_GRACE, shield=True):
            await pool.aclose()
        for client in clients:
            with trio.move_on_after(_CANCEL_GRACE, shield=True):
                await client.aclose()

    # -- public calls ----------------------------------------------------------------------------------

    async def open(self, server: UpstreamServer) -> UpstreamSession:
        """A new session (or, for a 2026-07-28 server, the sessionless equivalent)."""
        with self._deadline(server):
            return await self._open(server)

    async def request(
        self,
        server: UpstreamServer,
        session: UpstreamSession | None,
        method: str,
        params: dict[str, Any] | None,
        *,
        on_notification: NotificationHandler | None = None,
    ) -> tuple[dict[str, Any], UpstreamSession]:
        """Send one JSON-RPC request; returns its result and the session to use from now on.

        ``on_notification`` is awaited with each notification the upstream sends on the answer's event
        stream before the response, in order, as it arrives (the caller filters and forwards them; they are
        content). ``params`` go upstream as they are, ``_meta.progressToken`` included.
        """
        with self._deadline(server):
            if session is None:
                session = await self._open(server)
            try:
                return await self._call(server, session, method, params, on_notification), session
            except SessionExpired:
                pass
            session = await self._open(server)
            try:
                return await self._call(server, session, method, params, on_notification), session
            except SessionExpired as exc:
                raise UpstreamUnavailable(
                    f"MCP server {server.alias!r}: session expired again after re-initialize", status=404
                ) from exc

    async def notify(
        self, server: UpstreamServer, session: UpstreamSession, method: str, params: dict[str, Any] | None
    ) -> None:
        """Send a notification (the server answers 202)."""
        with self._deadline(server):
            await self._notify(server, session, method, params)

    async def close(self, server: UpstreamServer, session: UpstreamSession) -> None:
        """End the session with ``DELETE`` (nothing to do without a session id; 404 and 405 are fine)."""
        if session.session_id is None:
            return
        with self._deadline(server):
            reply = await self._send(server, "DELETE", self._headers(session), None, None)
        if reply.status not in (200, 202, 204, 404, 405):
            raise UpstreamUnavailable(
                f"MCP server {server.alias!r}: DELETE answered HTTP {reply.status}", status=reply.status
            )

    async def list_tools(self, server: UpstreamServer) -> list[dict[str, Any]]:
        """Every tool of the server (``tools/list`` page by page) in one short-lived session."""
        with self._deadline(server):
            session = await self._open(server)
            try:
                return await self._list_tools(server, session)
            finally:
                with trio.move_on_after(_CANCEL_GRACE, shield=True):
                    try:
                        await self._close_quietly(server, session)
                    except UpstreamUnavailable:
                        pass

    async def probe(self, server: UpstreamServer) -> ProbeResult:
        """For health and ``…/test``: open a session and count the tools; recognise HTTP+SSE-only servers."""
        try:
            tools = await self.list_tools(server)
        except UpstreamRpcError as exc:
            return ProbeResult(False, None, str(exc))
        except UpstreamUnavailable as exc:
            if exc.status in (400, 404, 405):
                try:
                    with self._deadline(server):
                        legacy = await self._speaks_legacy_sse(server)
                except UpstreamUnavailable:
                    legacy = False
                if legacy:
                    message = f"MCP server {server.alias!r} speaks only the deprecated HTTP+SSE transport"
                    return ProbeResult(False, None, message, legacy_sse=True)
            return ProbeResult(False, None, str(exc))
        return ProbeResult(True, len(tools), None)

    # -- protocol --------------------------------------------------------------------------------------

    def _deadline(self, server: UpstreamServer) -> contextlib.AbstractContextManager[None]:
        return _deadline(self.call_timeout, server.alias)

    async def _open(self, server: UpstreamServer) -> UpstreamSession:
        """Once per server and process: does it speak 2026-07-28? Then no handshake; else ``initialize``."""
        modern = self._modern.get(server.id)
        if modern:
            return UpstreamSession(None, MODERN_VERSION)
        if modern is None:
            session = await self._discover(server)
            self._modern[server.id] = session is not None
            if session is not None:
                return session
        return await self._initialize(server)

    async def _discover(self, server: UpstreamServer) -> UpstreamSession | None:
        """``server/discover`` in the 2026-07-28 envelope; ``None`` when the server does not speak it."""
        probe = UpstreamSession(None, MODERN_VERSION)
        request_id = next(self._ids)
        params = self._modern_params(None)
        body = {"jsonrpc": "2.0", "id": request_id, "method": "server/discover", "params": params}
        headers = self._headers(probe) | {"Mcp-Method": "server/discover"}
        reply = await self._post(server, headers, body, request_id)
        if reply.status in (401, 403):
            raise UpstreamUnavailable(
                f"MCP server {server.alias!r} refused the credentials (HTTP {reply.status})",
                status=reply.status,
            )
        if reply.status != 200 or reply.message is None:
            return None
        result = reply.message.get("result")
        if isinstance(result, dict) and MODERN_VERSION in (result.get("supportedVersions") or ()):
            return probe
        return None

    async def _initialize(self, server: UpstreamServer) -> UpstreamSession:
        params = {"protocolVersion": LATEST_HANDSHAKE_VERSION, "capabilities": {}, "clientInfo": _CLIENT_INFO}
        request_id = next(self._ids)
        body = {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}
        reply = await self._post(server, self._headers(None), body, request_id)
        result = self._result(server, reply, None)
        version = result.get("protocolVersion")
        if version not in HANDSHAKE_VERSIONS:
            raise UpstreamUnavailable(
                f"MCP server {server.alias!r} negotiated an unsupported protocol version"
            )
        session_id = reply.headers.get("mcp-session-id")
        if session_id is not None and not (session_id and all(0x21 <= ord(c) <= 0x7E for c in session_id)):
            raise UpstreamUnavailable(f"MCP server {server.alias!r} sent an invalid session id")
        session = UpstreamSession(session_id, version)
        await self._notify(server, session, "notifications/initialized", None)
        return session

    async def _call(
        self,
        server: UpstreamServer,
        session: UpstreamSession,
        method: str,
        params: dict[str, Any] | None,
        on_notification: NotificationHandler | None = None,
    ) -> dict[str, Any]:
        request_id = next(self._ids)
        headers = self._headers(session)
        if session.modern:
            params = self._modern_params(params)
            headers |= self._modern_headers(method, params)
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            body["params"] = params
        try:
            reply = await self._post(server, headers, body, request_id, on_notification)
        except trio.Cancelled:
            if not session.modern:
                with trio.move_on_after(_CANCEL_GRACE, shield=True):
                    await self._cancelled(server, session, request_id)
            raise
        return self._result(server, reply, session)

    async def _cancelled(self, server: UpstreamServer, session: UpstreamSession, request_id: int) -> None:
        try:
            await self._notify(
                server, session, "notifications/cancelled", {"requestId": request_id, "reason": "timeout"}
            )
        except (UpstreamUnavailable, UpstreamRpcError):
            pass

    async def _notify(
        self, server: UpstreamServer, session: UpstreamSession, method: str, params: dict[str, Any] | None
    ) -> None:
        headers = self._headers(session)
        if session.modern:
            params = self._modern_params(params)
            headers |= self._modern_headers(method, params)
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            body["params"] = params
        reply = await self._post(server, headers, body, None)
        if reply.status in (200, 202, 204):
            return
        if reply.status == 404 and session.session_id is not None:
            raise SessionExpired(f"MCP server {server.alias!r}: session expired", status=404)
        raise UpstreamUnavailable(
            f"MCP server {server.alias!r}: notification answered HTTP {reply.status}", status=reply.status
        )

    async def _list_tools(self, server: UpstreamServer, session: UpstreamSession) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(_MAX_LIST_PAGES):
            result = await self._call(server, session, "tools/list", {"cursor": cursor} if cursor else None)
            page = result.get("tools")
            if not isinstance(page, list):
                raise UpstreamUnavailable(
                    f"MCP server {server.alias!r}: tools/list result has no tools array"
                )
            tools.extend(t for t in page if isinstance(t, dict))
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                return tools
        raise UpstreamUnavailable(
            f"MCP server {server.alias!r}: tools/list has more than {_MAX_LIST_PAGES} pages"
        )

    async def _close_quietly(self, server: UpstreamServer, session: UpstreamSession) -> None:
        if session.session_id is not None:
            await self._send(server, "DELETE", self._headers(session), None, None)

    async def _speaks_legacy_sse(self, server: UpstreamServer) -> bool:
        """``GET`` the URL as an SSE stream: an ``endpoint`` event means the old HTTP+SSE transport."""
        import httpx  # loaded at first use (voidllm.lazyhttp)

        headers = {"Accept": "text/event-stream"} | await self._auth_headers(server)
        check_url(server.url, allow_private=self.allow_private_urls)
        try:
            async with self.client(server).stream("GET", server.url, headers=headers) as response:
                if response.status_code != 200 or _content_type(response.headers) != "text/event-stream":
                    return False
                async with contextlib.aclosing(_sse_events(response, _MAX_ERROR_BODY)) as events:
                    async for event, _data in events:
                        if event == "endpoint":
                            return True
        except (httpx.HTTPError, BlockedAddress, _TooLarge):
            return False
        return False

    # -- HTTP ------------------------------------------------------------------------------------------

    def _headers(self, session: UpstreamSession | None) -> dict[str, str]:
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if session is not None:
            headers["MCP-Protocol-Version"] = session.protocol_version
            if session.session_id is not None:
                headers["Mcp-Session-Id"] = session.session_id
        return headers

    @staticmethod
    def _modern_params(params: dict[str, Any] | None) -> dict[str, Any]:
        out = dict(params or {})
        meta = dict(out.get("_meta") or {}) if isinstance(out.get("_meta"), dict) else {}
        meta[_META_PROTOCOL_VERSION] = MODERN_VERSION
        meta[_META_CLIENT_CAPABILITIES] = {}
        meta[_META_CLIENT_INFO] = _CLIENT_INFO
        out["_meta"] = meta
        return out

    @staticmethod
    def _modern_headers(method: str, params: dict[str, Any]) -> dict[str, str]:
        headers = {"Mcp-Method": method}
        key = _NAME_BEARING.get(method)
        if key is not None and isinstance(params.get(key), str):
            headers["Mcp-Name"] = _header_value(params[key])
        return headers

    async def _auth_headers(self, server: UpstreamServer) -> dict[str, str]:
        if server.auth_type == "bearer":
            return {"Authorization": f"Bearer {server.auth_token}"}
        if server.auth_type == "header" and server.auth_header:
            return {server.auth_header: server.auth_token}
        if server.auth_type == "oauth":
            try:
                token = await self.tokens.token(self.client(server), server)
            except OAuthError as exc:
                raise UpstreamUnavailable(
                    f"MCP server {server.alias!r}: OAuth token request failed: {exc}"
                ) from exc
            except BlockedAddress as exc:
                raise UpstreamUnavailable(
                    f"MCP server {server.alias!r}: OAuth token URL refused: {exc}"
                ) from exc
            return {"Authorization": f"Bearer {token}"}
        return {}

    async def _post(
        self,
        server: UpstreamServer,
        headers: dict[str, str],
        body: dict[str, Any],
        request_id: int | None,
        on_notification: NotificationHandler | None = None,
    ) -> _Reply:
        return await self._send(server, "POST", headers, orjson.dumps(body), request_id, on_notification)

    async def _send(
        self,
        server: UpstreamServer,
        method: str,
        headers: dict[str, str],
        content: bytes | None,
        request_id: int | None,
        on_notification: NotificationHandler | None = None,
    ) -> _Reply:
        """One HTTP exchange with auth; an OAuth token the upstream refuses (401) is replaced once."""
        auth = await self._auth_headers(server)
        headers = headers | tracing.current_traceparent()  # the caller's span (a tool call's), if tracing
        reply = await self._exchange(server, method, headers | auth, content, request_id, on_notification)
        if reply.status == 401 and server.auth_type == "oauth":
            self.tokens.invalidate(server, auth["Authorization"].removeprefix("Bearer "))
            auth = await self._auth_headers(server)
            reply = await self._exchange(server, method, headers | auth, content, request_id, on_notification)
        return reply

    async def _exchange(
        self,
        server: UpstreamServer,
        method: str,
        headers: dict[str, str],
        content: bytes | None,
        request_id: int | None,
        on_notification: NotificationHandler | None,
    ) -> _Reply:
        alias = server.alias
        try:
            self._check_url(server.url)
            raw_headers = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
            async with self._pool.request(
                method.encode(), server.url, raw_headers, content or b""
            ) as response:
                status = response.status
                response_headers = {
                    name.decode("latin-1"): value.decode("latin-1") for name, value in response.headers
                }
                if status in (202, 204) or method == "DELETE" or request_id is None:
                    await _drain(response)
                    return _Reply(status, response_headers, None)
                limit = self.max_response_bytes if status == 200 else _MAX_ERROR_BODY
                declared = response_headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise _TooLarge
                if _content_type(response_headers) == "text/event-stream":
                    message = await _sse_response(response, request_id, limit, on_notification)
                else:
                    message = _decode(await _read_capped(response, limit))
                if message is not None and (
                    message.get("jsonrpc") != "2.0" or message.get("id") != request_id
                ):
                    message = None  # not the answer to this request (e.g. a gateway's own error page)
                await _drain(response)
        except BlockedAddress as exc:
            raise UpstreamUnavailable(f"MCP server {alias!r}: {exc}") from exc
        except _TooLarge as exc:
            raise UpstreamUnavailable(
                f"MCP server {alias!r}: response larger than {self.max_response_bytes} bytes"
            ) from exc
        except (UpstreamError, trio.BrokenResourceError, OSError) as exc:
            kind = type(exc).__name__.removeprefix("Upstream")
            raise UpstreamUnavailable(f"MCP server {alias!r} unreachable ({kind})") from exc
        except (ValueError, UnicodeError) as exc:  # a header or URL h11 cannot send; the message may quote it
            raise UpstreamUnavailable(f"MCP server {alias!r}: the request could not be sent") from exc
        return _Reply(status, response_headers, message)

    def _check_url(self, url: str) -> None:
        """:func:`check_url`, once per URL that passed (the policy depends on the URL and the setting only; a
        host name is checked again at every connection)."""
        if url not in self._allowed_urls:
            check_url(url, allow_private=self.allow_private_urls)
            if len(self._allowed_urls) > 10_000:
                self._allowed_urls.clear()
            self._allowed_urls.add(url)

    def _result(
        self, server: UpstreamServer, reply: _Reply, session: UpstreamSession | None
    ) -> dict[str, Any]:
        alias = server.alias
        if reply.status == 404 and session is not None and session.session_id is not None:
            raise SessionExpired(f"MCP server {alias!r}: session expired", status=404)
        message = reply.message
        if message is not None and "error" in message and (reply.status == 200 or 400 <= reply.status < 500):
            raise UpstreamRpcError.from_object(alias, message["error"])
        if reply.status != 200:
            raise UpstreamUnavailable(
                f"MCP server {alias!r} answered HTTP {reply.status}", status=reply.status
            )
        if message is None or not isinstance(message.get("result"), dict):
            raise UpstreamUnavailable(f"MCP server {alias!r} answered without a result")
        result: dict[str, Any] = message["result"]
        return result


@contextlib.contextmanager
def _deadline(seconds: float, alias: str) -> Iterator[None]:
    """``call_timeout`` as a cancel scope; expiry becomes :class:`UpstreamTimeout`."""
    with trio.move_on_after(seconds) as scope:
        yield
    if scope.cancelled_caught:
        raise UpstreamTimeout(f"MCP server {alias!r} did not answer within {seconds:g} s")


def _content_type(headers: Mapping[str, str] | httpx.Headers) -> str:
    value: str = headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


def _header_value(value: str) -> str:
    """A header-safe value: the SDK's ``=?base64?…?=`` sentinel for anything but plain printable ASCII."""
    import base64

    if (
        value == value.strip()
        and all(0x20 <= ord(c) <= 0x7E for c in value)
        and not value.startswith("=?base64?")
    ):
        return value
    return f"=?base64?{base64.b64encode(value.encode()).decode('ascii')}?="


async def _read_capped(response: _Body, limit: int) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


async def _drain(response: _Body) -> None:
    """Read what is left of a small answer, so its connection goes back to the pool.

    A body left unread closes the connection. An SSE stream normally ends right after our response; one
    that goes on (or a large body) is cut after a short grace instead, which costs only the connection. A body
    already read to its end ends at once.
    """
    with trio.move_on_after(_DRAIN_GRACE):
        read = 0
        async for chunk in response.aiter_bytes():
            read += len(chunk)
            if read > _MAX_ERROR_BODY:
                return


def _decode(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


async def _sse_events(response: _Body, limit: int) -> AsyncGenerator[tuple[str, str], None]:
    """``(event, data)`` per SSE event (:mod:`voidllm.sse`), counting every byte against ``limit``; an
    unterminated last event that has data counts too."""
    total = 0
    framer = EventFramer(max_line=limit)  # never reached: the whole body is bounded by ``limit``
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        for raw in framer.feed(chunk):
            if (event := parse_event(raw)) is not None:
                yield _text(event)
    if (event := parse_event(framer.tail())) is not None:
        yield _text(event)


def _notification(message: dict[str, Any]) -> Notification | None:
    """``message`` as a JSON-RPC notification, or ``None`` when it is anything else."""
    try:
        parsed = parse_message(message)
    except JsonRpcError:
        return None
    return parsed if isinstance(parsed, Notification) else None


def _text(event: Event) -> tuple[str, str]:
    return event.type.decode("utf-8", "replace"), event.data.decode("utf-8", "replace")


async def _sse_response(
    response: _Body, request_id: int, limit: int, on_notification: NotificationHandler | None
) -> dict[str, Any] | None:
    """Read an SSE answer until the JSON-RPC response to ``request_id``; notifications before it go to
    ``on_notification`` (awaited, one at a time), other messages are skipped.

    The rest of the stream (normally nothing: the server ends it after the response) is read for a short
    grace, so the connection can be reused.
    """
    async with contextlib.aclosing(_sse_events(response, limit)) as events:
        async for event, data in events:
            if event != "message":
                continue
            message = _decode(data.encode())
            if message is None:
                continue
            if message.get("id") == request_id and ("result" in message or "error" in message):
                break
            if on_notification is not None and (notification := _notification(message)) is not None:
                await on_notification(notification)
        else:
            return None
        with trio.move_on_after(_DRAIN_GRACE):
            try:
                async for _ in events:
                    pass
            except _TooLarge:
                pass
    return message
