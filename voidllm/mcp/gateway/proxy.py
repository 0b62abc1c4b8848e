"""The MCP proxy: ``/api/v1/mcp/<alias>`` forwards to the upstream MCP server the alias means for the caller.

:class:`ProxiedServer` is the :class:`~voidllm.mcp.gateway.server.McpBackend` of one alias; the transport
(:mod:`voidllm.mcp.gateway.server`) handles HTTP, protocol versions and the gateway's own session token, and
answers the handshake (``initialize``, ``server/discover``, ``ping``) itself. Every other request
(``tools/*``, ``resources/*``, ``prompts/*``, ``completion/complete``, ...) is forwarded with
:meth:`McpUpstreams.request <voidllm.mcp.upstream.client.McpUpstreams.request>`.

Resolution runs on **every** request (docs/reference/behaviour.md 8.1), so deactivating a server, revoking a
grant or adding a shadowing team server takes effect on open sessions too. Refusals are JSON-RPC errors
without id and with the HTTP statuses of docs/reference/behaviour.md 1.7: 404 -32600 "unknown MCP server",
503 -32603 "MCP server is disabled", 403 -32600 "access denied to MCP server", 502 -32603 "upstream MCP server
unavailable" (unreachable, refused, unusable answer, or no answer within ``settings.mcp.call_timeout``).
JSON-RPC errors the upstream answers are passed through to the client unchanged (HTTP 200), and so are tool
results with ``isError``.

``GET`` (a server-initiated SSE stream) is 405, as on the built-in endpoint: the proxy forwards requests and
their responses, and the notifications an upstream sends about a request on that request's answer stream.
Clients handle 405 per the spec (docs/reference/behaviour.md 1.7's 501 is not used: 405 is what the spec
prescribes for "no stream offered").

Notifications (issue 18 point 5), so that clients' progress bars and logs work: ``notifications/progress``
carrying the client's own ``_meta.progressToken`` (which goes upstream unchanged), and
``notifications/message`` (log messages; a 2026-07-28 client only when its ``_meta`` opts in with
``io.modelcontextprotocol/logLevel``, and at or above that level, since an older upstream does not filter
them). When the client accepts SSE they reach it event by event as the upstream sends them (the transport's
rule 6 in :mod:`voidllm.mcp.gateway.server`); otherwise they are dropped and the client gets the response
alone. Like arguments and results they are content: relayed, never stored, logged or counted. Other
notifications and upstream server-to-client requests (sampling, elicitation) are not relayed.

Sessions across processes (issue point 4):

- **Session era** (the client sends ``initialize``). :meth:`ProxiedServer.open_session` opens the upstream
  session at once (so an unreachable upstream fails the client's ``initialize`` with 502) and returns
  ``{"srv": server id, "up": UpstreamSession.to_dict()}``; the transport seals it into the gateway's
  ``Mcp-Session-Id`` (:mod:`voidllm.mcp.gateway.sessions`). Any gateway process with the same encryption key
  opens the token and continues the same upstream session: nothing is kept in memory or a shared store.
- **Upstream re-initialisation.** When the upstream session expires (404), the client of
  :class:`McpUpstreams` initialises a new one and retries once. The new upstream session id cannot be
  written back into the client's token (the token is the client's; we answer with the same one), so each
  process keeps a bounded map old upstream session -> new one (:class:`ProxyState.renewed`). Trade-off: a
  process that has not seen the renewal pays one extra re-initialise for that session (then it learns the
  new id); a map entry evicted under pressure costs the same. Redis is not used for this map: it would
  cost a round trip on every proxied call to save one ``initialize`` per process per upstream expiry.
- **Stateless era** (2026-07-28 clients send no ``initialize``). Each process keeps one upstream session
  per (server, API key) (:class:`ProxyState.stateless`, bounded), opened lazily on the first call. A
  2026-07-28 upstream needs no session at all; a session-era upstream gets one session per key and
  process, so calls of different keys never share upstream session state.
- **DELETE** ends the upstream session too (best effort: a failure is logged, the client still gets 204).
- If the alias is later resolved to a different server (a shadowing team server appeared, or the server was
  replaced), the sealed upstream session belongs to the old server and is not used: the per-(server, key)
  session is used instead.

Usage (issue point 6): each proxied ``tools/call`` becomes one :class:`voidllm.mcp.usage.ToolCallRecord`
(who, server alias, tool name, duration, status; never arguments or results) on the batched
``mcp_tool_calls`` writer and is counted in the ``voidllm_mcp_*`` metrics (:mod:`voidllm.mcp.usage`).
Code Mode's tool calls go through :func:`call_tool`: the same upstream client, counting and usage row, with
the caller's per-(server, key) upstream session and the execution's id on the row.

Tracing (:mod:`voidllm.tracing`): each ``tools/call`` (proxied or Code Mode's) is an ``execute_tool`` span
with the server alias, and the tool's name only once the upstream recognised it; its upstream request carries
the span's ``traceparent``. Never arguments or results.

Nothing here logs params, arguments or results.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio
from opentelemetry.trace import SpanKind

from voidllm import __version__, tracing
from voidllm.errors import ContentBlockedError
from voidllm.guard import OFF, GuardPolicy, RequestGuard
from voidllm.mcp.gateway.server import STATELESS_VERSION, McpContext, McpHttpError
from voidllm.mcp.registry import McpServerEntry
from voidllm.mcp.upstream import jsonrpc
from voidllm.mcp.upstream.client import (
    McpUpstreams,
    NotificationHandler,
    UpstreamRpcError,
    UpstreamSession,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from voidllm.mcp.upstream.jsonrpc import JsonRpcError, Notification
from voidllm.mcp.usage import ToolCallOutcome, count_transport_error, record_tool_call
from voidllm.proxy import guarding
from voidllm.tracing import conventions as c

if TYPE_CHECKING:
    from voidllm.admin.services import McpRuntime
    from voidllm.identity import KeyIdentity

__all__ = ["ProxiedServer", "ProxyState", "call_tool"]

log = logging.getLogger(__name__)

MAX_REMEMBERED = 4096
"""Entries kept in each of :class:`ProxyState`'s maps (oldest evicted first)."""

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
"""MCP log levels, least severe first."""
META_LOG_LEVEL = "io.modelcontextprotocol/logLevel"


def _bounded_put(store: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > MAX_REMEMBERED:
        store.popitem(last=False)


@attrs.define(eq=False)
class ProxyState:
    """What one process remembers about upstream sessions; see the module docstring."""

    renewed: OrderedDict[tuple[str, str], UpstreamSession] = attrs.field(factory=OrderedDict)
    stateless: OrderedDict[tuple[str, str], UpstreamSession] = attrs.field(factory=OrderedDict)

    def current(self, server_id: str, session: UpstreamSession) -> UpstreamSession:
        """The newest session this process knows for ``session`` (following renewals)."""
        for _ in range(8):  # a chain of renewals; bounded against cycles
            if session.session_id is None:
                return session
            newer = self.renewed.get((server_id, session.session_id))
            if newer is None:
                return session
            session = newer
        return session

    def renew(self, server_id: str, old: UpstreamSession, new: UpstreamSession) -> None:
        if old.session_id is not None and new != old:
            _bounded_put(self.renewed, (server_id, old.session_id), new)


def _unavailable() -> McpHttpError:
    return McpHttpError(502, JsonRpcError(jsonrpc.INTERNAL_ERROR, "upstream MCP server unavailable"))


@attrs.define(eq=False)
class ProxiedServer:
    """The backend of ``/api/v1/mcp/<alias>``: see the module docstring."""

    alias: str
    state: ProxyState

    @property
    def name(self) -> str:
        return self.alias

    # -- McpBackend --------------------------------------------------------------------------------------

    async def open_session(self, ctx: McpContext) -> dict[str, Any]:
        entry = self._resolve(ctx)
        try:
            session = await self._upstreams(ctx).open(entry.upstream)
        except (UpstreamUnavailable, UpstreamRpcError) as exc:
            _transport_failure(entry.alias, exc)
            raise _unavailable() from exc
        return {"srv": entry.id, "up": session.to_dict()}

    async def close_session(self, ctx: McpContext, state: dict[str, Any]) -> None:
        entry = self._resolve(ctx)
        session = self._sealed(entry, state)
        if session is None:
            return
        try:
            await self._upstreams(ctx).close(entry.upstream, self.state.current(entry.id, session))
        except UpstreamUnavailable as exc:
            log.warning(
                "MCP upstream session not closed",
                extra={"server": entry.alias, "error_type": type(exc).__name__},
            )

    async def handle(self, ctx: McpContext, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        entry = self._resolve(ctx)
        if method == "initialize":
            return {
                "capabilities": {"tools": {}, "resources": {}, "prompts": {}},
                "serverInfo": {"name": entry.alias, "version": __version__},
            }
        name = (params or {}).get("name") if method == "tools/call" else None
        guard = _guard_call(ctx, params, "mcp") if method == "tools/call" and params else None
        try:
            with _counted(
                self._runtime(ctx),
                ctx.identity,
                entry.alias,
                name if isinstance(name, str) else "unknown",
                request_id=ctx.request_id,
                execution_id=None,
                record=method == "tools/call",
                listed=isinstance(name, str) and _listed(self._runtime(ctx), entry, name),
            ) as call:
                result = await self._forward(ctx, entry, method, params)
                call.answered(result)
            if guard is not None:
                guarding.redact_tool_result(result, guard)
            return result
        except UpstreamUnavailable as exc:  # a timeout too
            raise _unavailable() from exc
        finally:
            if guard is not None:
                guarding.count(guard.outcome())

    async def notify(self, ctx: McpContext, method: str, params: dict[str, Any] | None) -> None:
        """``notifications/initialized`` belongs to our handshake; others (cancellation...) go upstream."""
        entry = self._resolve(ctx)
        if method == "notifications/initialized":
            return
        session = self._session_for(ctx, entry)
        if session is None:
            return  # nothing open upstream that the notification could be about
        try:
            await self._upstreams(ctx).notify(entry.upstream, session, method, params)
        except (UpstreamUnavailable, UpstreamRpcError) as exc:
            _transport_failure(entry.alias, exc)

    # -- helpers -----------------------------------------------------------------------------------------

    def _resolve(self, ctx: McpContext) -> McpServerEntry:
        registry = self._runtime(ctx).registry
        entry = registry.resolve(ctx.identity, self.alias)
        if entry is None or entry.source == "builtin":
            raise McpHttpError(404, JsonRpcError(jsonrpc.INVALID_REQUEST, "unknown MCP server"))
        if not entry.is_active:
            raise McpHttpError(503, JsonRpcError(jsonrpc.INTERNAL_ERROR, "MCP server is disabled"))
        if not registry.allowed(ctx.identity, entry):
            raise McpHttpError(403, JsonRpcError(jsonrpc.INVALID_REQUEST, "access denied to MCP server"))
        return entry

    @staticmethod
    def _runtime(ctx: McpContext) -> McpRuntime:
        """The server's MCP runtime; without one (no server running it) every alias is unknown."""
        if ctx.services.mcp is None:
            raise McpHttpError(404, JsonRpcError(jsonrpc.INVALID_REQUEST, "unknown MCP server"))
        return ctx.services.mcp

    def _upstreams(self, ctx: McpContext) -> McpUpstreams:
        return self._runtime(ctx).upstreams

    @staticmethod
    def _sealed(entry: McpServerEntry, state: dict[str, Any]) -> UpstreamSession | None:
        """The upstream session sealed in the client's token, if it belongs to ``entry``."""
        if state.get("srv") != entry.id or not isinstance(state.get("up"), dict):
            return None
        try:
            return UpstreamSession.from_dict(state["up"])
        except ValueError:
            return None

    def _session_for(self, ctx: McpContext, entry: McpServerEntry) -> UpstreamSession | None:
        sealed = self._sealed(entry, ctx.session)
        if sealed is not None:
            return self.state.current(entry.id, sealed)
        return self.state.stateless.get((entry.id, ctx.identity.key_id))

    async def _forward(
        self, ctx: McpContext, entry: McpServerEntry, method: str, params: dict[str, Any] | None
    ) -> dict[str, Any]:
        session = self._session_for(ctx, entry)
        result, used = await self._upstreams(ctx).request(
            entry.upstream, session, method, params, on_notification=_relayed(ctx, params)
        )
        if self._sealed(entry, ctx.session) is not None:
            if session is not None:
                self.state.renew(entry.id, session, used)
        elif used != session:
            _bounded_put(self.state.stateless, (entry.id, ctx.identity.key_id), used)
        return _for_client(result, method, ctx.protocol_version)


_MODERN_ONLY = ("resultType", "ttlMs", "cacheScope")


def _for_client(result: dict[str, Any], method: str, version: str) -> dict[str, Any]:
    """The upstream's result in the client's era, whatever the upstream's era.

    ``resultType`` is the transport's to add (2026-07-28 clients only). List results carry the caching
    directives ``ttlMs``/``cacheScope`` in 2026-07-28 (``0``/``private`` unless the upstream gave them: the
    answer depends on the caller's access) and not before.
    """
    out = {k: v for k, v in result.items() if k != "resultType"}
    if version != STATELESS_VERSION:
        return {k: v for k, v in out.items() if k not in _MODERN_ONLY}
    if method.endswith("/list"):
        out.setdefault("ttlMs", 0)
        out.setdefault("cacheScope", "private")
    return out


def _relayed(ctx: McpContext, params: dict[str, Any] | None) -> NotificationHandler | None:
    """What passes the upstream's notifications about this request on to the client (see the module
    docstring); ``None`` when the client cannot receive any."""
    relay = ctx.relay
    if relay is None:
        return None
    meta = (params or {}).get("_meta")
    meta = meta if isinstance(meta, dict) else {}
    token = meta.get("progressToken")
    if ctx.protocol_version != STATELESS_VERSION:
        log_floor: int | None = 0  # the upstream session's logging/setLevel decides
    else:
        level = meta.get(META_LOG_LEVEL)
        log_floor = LOG_LEVELS.index(level) if level in LOG_LEVELS else None

    async def forward(notification: Notification) -> None:
        if _wanted(notification, token, log_floor):
            await relay(notification)

    return forward


def _wanted(notification: Notification, token: Any, log_floor: int | None) -> bool:
    params = notification.params or {}
    if notification.method == "notifications/progress":
        return token is not None and params.get("progressToken") == token
    if notification.method == "notifications/message":
        level = params.get("level")
        return log_floor is not None and level in LOG_LEVELS and LOG_LEVELS.index(level) >= log_floor
    return False


@attrs.define
class _Call:
    """How one counted upstream call ended (:func:`_counted`); stays ``transport_error`` if cancelled."""

    status: str = "transport_error"
    recognised: bool = False

    def answered(self, result: dict[str, Any]) -> None:
        self.status, self.recognised = ("error" if result.get("isError") is True else "success"), True


@contextmanager
def _counted(
    runtime: McpRuntime,
    identity: KeyIdentity,
    alias: str,
    tool: str,
    *,
    request_id: str | None,
    execution_id: str | None,
    record: bool,
    listed: bool = False,
) -> Iterator[_Call]:
    """Classify the upstream call run in the block (a JSON-RPC error, a timeout, a transport failure, or an
    answer the block reports with :meth:`_Call.answered`), count transport failures, and with ``record``
    write its ``mcp_tool_calls`` row and metrics however it ended; while tracing is on, a recorded call
    is an ``execute_tool`` span, current in the block (:func:`_tool_span`)."""
    started = trio.current_time()
    call = _Call()
    span = _tool_span(alias, execution_id) if record and tracing.state.tracer is not None else None
    token = tracing.use(span) if span is not None else None
    try:
        yield call
    except UpstreamRpcError:
        call.status, call.recognised = "error", False
        raise
    except UpstreamTimeout as exc:
        call.status, call.recognised = "timeout", True
        _transport_failure(alias, exc)
        raise
    except UpstreamUnavailable as exc:
        _transport_failure(alias, exc)
        raise
    finally:
        if span is not None:
            _end_tool_span(span, tool if listed or call.status == "success" else None, call, token)
        if record:
            record_tool_call(
                runtime.tool_calls,
                ToolCallOutcome(
                    identity=identity,
                    request_id=request_id,
                    server_alias=alias,
                    tool_name=tool,
                    status=call.status,
                    seconds=trio.current_time() - started,
                    recognised=call.recognised,
                    execution_id=execution_id,
                ),
            )


def _tool_span(alias: str, execution_id: str | None) -> Any:
    """The span of one tool call, before its name is known to be the upstream's (see :func:`_end_tool_span`);
    a child of the request's span, or of the Code Mode execution's."""
    return tracing.start_child(
        c.EXECUTE_TOOL,
        {c.GEN_AI_OPERATION_NAME: c.EXECUTE_TOOL, c.MCP_METHOD_NAME: "tools/call", c.MCP_SERVER: alias},
        kind=SpanKind.CLIENT if execution_id is None else SpanKind.INTERNAL,
    )


def _end_tool_span(span: Any, tool: str | None, call: _Call, token: object) -> None:
    """Name the span ``execute_tool {tool}`` when ``tool`` is given: a tool the server listed, or one it ran
    successfully (a name a client typed that no server has stays out of the trace); set its status, end it."""
    if tool is not None:
        span.update_name(f"{c.EXECUTE_TOOL} {tool}")
        span.set_attributes({c.GEN_AI_TOOL_NAME: tool})
    span.set_attributes({c.OUTCOME: call.status})
    error = None if call.status == "success" else ("tool_error" if call.status == "error" else call.status)
    tracing.end_span(span, error_type=error, token=token)


def _listed(runtime: McpRuntime, entry: McpServerEntry, tool: str) -> bool:
    """Whether ``tool`` is in the server's cached tool list (only asked while tracing is on)."""
    if tracing.state.tracer is None:
        return False
    return any(cached.name == tool for cached in runtime.registry.catalog.tools.get(entry.id, ()))


async def call_tool(
    runtime: McpRuntime,
    state: ProxyState,
    identity: KeyIdentity,
    entry: McpServerEntry,
    tool: str,
    arguments: dict[str, Any],
    *,
    request_id: str | None,
    execution_id: str,
    guard_policy: GuardPolicy = OFF,
) -> dict[str, Any]:
    """One ``tools/call`` of a Code Mode script on ``entry``, the server the caller resolved and may use.

    The same upstream client, call timeout, usage row and metrics as a proxied call, with the execution's
    id on the row; the upstream session is the caller's per-(server, key) one, as for a stateless client.
    The result is the upstream's as it came (a 2026-07-28 upstream's ``resultType`` included:
    :func:`voidllm.codemode.discovery.unwrap_result` accepts it). Raises the upstream client's errors
    (:class:`UpstreamRpcError`, :class:`UpstreamUnavailable`). With a ``guard_policy`` the arguments are
    scanned before they leave and the result redacted (:mod:`voidllm.proxy.guarding`); a kind set to block
    raises :class:`~voidllm.errors.ContentBlockedError` before any upstream call.
    """
    params = {"name": tool, "arguments": arguments}
    guard = guarding.guard_tool_call(params, guard_policy, "codemode")
    try:
        with _counted(
            runtime,
            identity,
            entry.alias,
            tool,
            request_id=request_id,
            execution_id=execution_id,
            record=True,
            listed=True,  # Code Mode calls only tools of the server's list
        ) as call:
            key = (entry.id, identity.key_id)
            session = state.stateless.get(key)
            result, used = await runtime.upstreams.request(entry.upstream, session, "tools/call", params)
            if used != session:
                _bounded_put(state.stateless, key, used)
            call.answered(result)
        if guard is not None:
            guarding.redact_tool_result(result, guard)
        return result
    finally:
        if guard is not None:
            guarding.count(guard.outcome())


def _guard_call(ctx: McpContext, params: dict[str, Any], route: str) -> RequestGuard | None:
    """The prompt guard of one ``tools/call`` (:func:`voidllm.proxy.guarding.guard_tool_call`): its
    arguments scanned in place before they go upstream; None when the policy is off.

    Raises:
        JsonRpcError: ``-32602`` naming the kinds (``data.code`` ``content_blocked``) when one blocks.
    """
    policy = guarding.effective_policy(ctx.services.config.settings.guard, ctx.identity.guard)
    try:
        return guarding.guard_tool_call(params, policy, route)
    except ContentBlockedError as exc:
        raise JsonRpcError(
            jsonrpc.INVALID_PARAMS, exc.message, {"code": exc.code, "kinds": list(exc.kinds)}
        ) from None


def _transport_failure(alias: str, exc: Exception) -> None:
    error_type = "timeout" if isinstance(exc, UpstreamTimeout) else "call"
    count_transport_error(alias, error_type)
    log.warning("MCP upstream call failed", extra={"server": alias, "error_type": type(exc).__name__})
