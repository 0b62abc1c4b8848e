"""Code Mode: the MCP server on ``/api/v1/mcp`` whose scripts orchestrate the caller's MCP tools
(docs/reference/behaviour.md 8.7).

:class:`CodeModeBackend` is an :class:`~voidllm.mcp.gateway.server.McpBackend` with three tools:

- ``list_servers``: the servers the caller may use from a script, ``[{alias, name, code_mode_enabled,
  tool_count}]`` (blocked tools not counted).
- ``search_tools`` ``{query, server?}``: tools whose name or description contains ``query`` (any case), as
  TypeScript declarations (:func:`voidllm.codemode.discovery.search`).
- ``execute_code`` ``{code, servers?}``: runs the script in the sandbox (:mod:`voidllm.codemode.sandbox`) and
  answers ``{execution_id, result, tool_calls: [{server, tool, duration_ms, status}], logs: [{level, msg}],
  duration_ms}``, or ``isError: true`` with only the script's error text. Its description is rebuilt on every
  ``tools/list`` from what *this caller* may use (the reference lists every server's tools to everyone).

**Which servers** (:func:`usable_servers`): the built-in ``voidllm`` server (its tools run in-process with the
caller's RBAC, :class:`~voidllm.mcp.gateway.builtin.BuiltinBackend`), and every active server with
``code_mode_enabled`` that the caller's key resolves to its alias (a team server shadows an org server which
shadows a global one) and may use (global servers need the org's grant unless the caller is a system admin).
``servers`` in ``execute_code`` narrows that set for one script. Everything is decided per execution from the
registry snapshot, which every process loads from the store: no execution depends on state only one process
holds.

**A tool call** of a script, ``await tools.<alias>.<tool>(args)``, runs as a trio task: an alias or tool the
caller cannot use is the JavaScript error ``unknown tool: <alias>/<tool>``, a blocked one ``tool is blocked:
<alias>/<tool>``; otherwise the call goes through :func:`voidllm.mcp.gateway.proxy.call_tool` (the upstream
client, ``settings.mcp.call_timeout``, the caller's upstream session, one ``mcp_tool_calls`` row with
``code_mode`` and the execution id, the ``voidllm_mcp_*`` metrics). The result is unwrapped
(:func:`voidllm.codemode.discovery.unwrap_result`). A result with ``isError`` rejects the script's promise
with the tool's error text, so a script can ``try``/``catch`` it (the reference hands it back as a value).
A server whose tool list was never fetched is asked for it on first use (then cached for every process).

**Output types** are learned: after a successful call whose result is at most :data:`MAX_LEARNED_RESULT`
bytes, when the tool has no learned schema or it is older than ``schema_ttl`` (0: learned once, never
refreshed), a schema of the result's *shape* (types and property names, never values) is queued to
:func:`serve_schema_learner`, which stores it (``output_schemas``), updates this process's registry and
publishes ``mcp``, so the declarations of every process show it.

**Limits**: ``settings.mcp.code_mode`` (``memory_limit_mb``, ``timeout`` counted from the call including the
wait for one of ``pool_size`` slots, ``max_tool_calls``); a client that disconnects cancels its execution (the
transport watches for it).

**Metrics**: ``voidllm_code_mode_executions_total{status}`` (success, error, timeout, oom, cancelled),
``voidllm_code_mode_execution_duration_seconds``, ``voidllm_code_mode_tool_calls_per_execution`` and
``voidllm_code_mode_pool_available`` (slots free in this process; summed over processes).

**Tracing** (:mod:`voidllm.tracing`): an execution is an ``execute_tool execute_code`` span with its outcome
and the number of tool calls, current in the task that runs it, so each tool call (a trio task started from
the sandbox's thread in that task's context) is its child: ``execute_tool`` spans (:mod:`.proxy`, and here
for the built-in tools). Spans start and end on the trio side, never in the worker thread.

Zero knowledge: code, arguments, results and console output pass through memory only; nothing here logs them,
and error messages that reach logs are fixed texts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import sqlalchemy as sa
import trio
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge, Histogram

from voidllm import __version__, tracing
from voidllm.codemode.discovery import (
    ServerTools,
    ToolSpec,
    execute_code_description,
    infer_schema,
    search,
    unwrap_result,
)
from voidllm.codemode.errors import (
    ExecutionTimeout,
    MemoryLimitExceeded,
    SandboxError,
    ScriptError,
    ToolCallError,
)
from voidllm.errors import ContentBlockedError, StoreError
from voidllm.mcp.gateway.builtin import TOOLS as BUILTIN_TOOLS
from voidllm.mcp.gateway.builtin import BuiltinBackend
from voidllm.mcp.gateway.proxy import ProxyState, call_tool
from voidllm.mcp.gateway.server import STATELESS_VERSION, McpContext
from voidllm.mcp.registry import McpRegistry, McpServerEntry
from voidllm.mcp.tools_cache import LearnedOutput, ToolCatalog, fetch_tools
from voidllm.mcp.upstream.client import UpstreamRpcError, UpstreamTimeout, UpstreamUnavailable
from voidllm.mcp.upstream.jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, JsonRpcError
from voidllm.mcp.usage import ToolCallOutcome, record_tool_call
from voidllm.metrics import REGISTRY
from voidllm.proxy.guarding import effective_policy
from voidllm.store import tables as t
from voidllm.store.errors import StoreIntegrityError
from voidllm.store.ids import new_id, utcnow
from voidllm.tracing import conventions as c

if TYPE_CHECKING:
    from voidllm.admin.services import CodeModeRuntime, McpRuntime, Services
    from voidllm.codemode.errors import ExecutionResult
    from voidllm.identity import KeyIdentity
    from voidllm.store.store import Store

__all__ = [
    "BUILTIN_ALIAS",
    "CodeModeBackend",
    "SchemaQueue",
    "UsableServer",
    "open_schema_queue",
    "serve_schema_learner",
    "usable_servers",
]

log = logging.getLogger(__name__)

BUILTIN_ALIAS = "voidllm"
MAX_LEARNED_RESULT = 1024 * 1024
"""Results larger than this (JSON bytes) teach no output schema."""
REFETCH_AFTER = 60.0
"""Seconds before this process asks again for the tool list of a server that did not give one."""

EXECUTIONS = Counter(
    "voidllm_code_mode_executions_total",
    "Code Mode executions by how they ended (success, error, timeout, oom, cancelled).",
    ["status"],
    registry=REGISTRY,
)
EXECUTION_SECONDS = Histogram(
    "voidllm_code_mode_execution_duration_seconds",
    "Wall time of Code Mode executions, from the call to the answer (waiting for a slot included).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
    registry=REGISTRY,
)
TOOL_CALLS_PER_EXECUTION = Histogram(
    "voidllm_code_mode_tool_calls_per_execution",
    "Tool calls a Code Mode execution made.",
    buckets=(0, 1, 2, 5, 10, 20, 50, 100, 250, 1000),
    registry=REGISTRY,
)
POOL_AVAILABLE = Gauge(
    "voidllm_code_mode_pool_available",
    "Code Mode execution slots free (pool_size minus running and waiting executions; summed over processes).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)

_NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
_SEARCH_ARGS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {
            "type": "string",
            "minLength": 1,
            "description": "text to find in tool names and descriptions",
        },
        "server": {"type": "string", "description": "only this server alias"},
    },
    "required": ["query"],
    "additionalProperties": False,
}
_EXECUTE_ARGS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {
            "type": "string",
            "minLength": 1,
            "description": "JavaScript: the body of an async function",
        },
        "servers": {
            "type": "array",
            "items": {"type": "string"},
            "description": "only these server aliases may be called",
        },
    },
    "required": ["code"],
    "additionalProperties": False,
}
INSTRUCTIONS = (
    "Code Mode: call search_tools to find the tools of the MCP servers you may use (TypeScript "
    "declarations), then execute_code with JavaScript that calls them as `await tools.<alias>.<tool>(args)` "
    "and returns a value; Promise.all runs calls concurrently."
)


@attrs.frozen
class UsableServer:
    """One server a caller may use from a script: its catalog entry (``None`` for the built-in server) and
    its tools, blocked ones apart."""

    alias: str
    name: str
    entry: McpServerEntry | None
    tools: Mapping[str, ToolSpec]
    blocked: frozenset[str] = frozenset()

    @property
    def listing(self) -> ServerTools:
        """The server as discovery renders it: its tools that are not blocked."""
        usable = tuple(spec for name, spec in sorted(self.tools.items()) if name not in self.blocked)
        return ServerTools(alias=self.alias, name=self.name, tools=usable)


_BUILTIN = UsableServer(
    alias=BUILTIN_ALIAS,
    name="VoidLLM",
    entry=None,
    tools={
        name: ToolSpec(name=name, description=tool.description, input_schema=tool.input_schema)
        for name, tool in BUILTIN_TOOLS.items()
    },
)


@attrs.define(eq=False)
class _SpecCache:
    """The tool specs of each server for one catalog snapshot, built on first use: every execution looks its
    servers' tools up, and a snapshot changes only when the registry reloads (a new catalog object)."""

    catalog: ToolCatalog | None = None
    by_server: dict[str, dict[str, ToolSpec]] = attrs.field(factory=dict)

    def specs(self, catalog: ToolCatalog, server_id: str) -> dict[str, ToolSpec]:
        if catalog is not self.catalog:
            self.catalog, self.by_server = catalog, {}
        found = self.by_server.get(server_id)
        if found is None:
            found = self.by_server[server_id] = _specs(catalog, server_id)
        return found


_SPECS = _SpecCache()


def usable_servers(registry: McpRegistry, identity: KeyIdentity) -> dict[str, UsableServer]:
    """Alias -> server for every server ``identity`` may call from a script (module docstring); tool lists
    as cached (a server whose list was never fetched has no tools here yet)."""
    catalog = registry.catalog
    found = {BUILTIN_ALIAS: _BUILTIN}
    for entry in registry.servers:
        if entry.alias in found or entry.source == "builtin":
            continue
        if not entry.is_active or not entry.code_mode_enabled:
            continue
        if registry.resolve(identity, entry.alias) is not entry or not registry.allowed(identity, entry):
            continue
        found[entry.alias] = UsableServer(
            alias=entry.alias,
            name=entry.name,
            entry=entry,
            tools=_SPECS.specs(catalog, entry.id),
            blocked=catalog.blocked.get(entry.id, frozenset()),
        )
    return found


def _specs(catalog: ToolCatalog, server_id: str) -> dict[str, ToolSpec]:
    schemas = catalog.schemas
    return {
        tool.name: ToolSpec(
            name=tool.name,
            description=tool.description,
            input_schema=tool.input_schema,
            output_schema=learned.schema if (learned := schemas.get((server_id, tool.name))) else None,
        )
        for tool in catalog.tools.get(server_id, ())
    }


@attrs.define(eq=False)
class CodeModeBackend:
    """The backend of ``/api/v1/mcp``; see the module docstring. ``proxy_state`` is shared with the proxy
    (the per-(server, key) upstream sessions)."""

    proxy_state: ProxyState
    _unlisted: dict[str, float] = attrs.field(factory=dict)  # server id -> when its list was last asked for
    _listing: dict[str, trio.Event] = attrs.field(factory=dict)  # server id -> set when its fetch ends
    _in_flight: int = 0

    @property
    def name(self) -> str:
        return "code-mode"

    async def handle(self, ctx: McpContext, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        if method == "initialize":
            return {
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "voidllm-code-mode", "version": __version__},
                "instructions": INSTRUCTIONS,
            }
        if method == "tools/list":
            return await self._tools_list(ctx)
        if method == "tools/call":
            return await self._tools_call(ctx, params or {})
        raise JsonRpcError(METHOD_NOT_FOUND, "method not found")

    async def notify(self, ctx: McpContext, method: str, params: dict[str, Any] | None) -> None:
        return None

    # -- tools/list ------------------------------------------------------------------------------------

    async def _tools_list(self, ctx: McpContext) -> dict[str, Any]:
        servers = await self._servers(ctx)
        description = execute_code_description([server.listing for server in servers.values()])
        result: dict[str, Any] = {
            "tools": [
                {
                    "name": "list_servers",
                    "description": "List the MCP servers your scripts may call, with their tool counts.",
                    "inputSchema": _NO_ARGS,
                },
                {
                    "name": "search_tools",
                    "description": "Find tools by name or description; answers TypeScript declarations "
                    "of the matches, to call from execute_code.",
                    "inputSchema": _SEARCH_ARGS,
                },
                {"name": "execute_code", "description": description, "inputSchema": _EXECUTE_ARGS},
            ]
        }
        if ctx.protocol_version == STATELESS_VERSION:
            result.update(ttlMs=0, cacheScope="private")
        return result

    # -- tools/call ------------------------------------------------------------------------------------

    async def _tools_call(self, ctx: McpContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        args = params.get("arguments") or {}
        if not isinstance(args, dict):
            raise JsonRpcError(INVALID_PARAMS, "arguments must be an object")
        if name == "list_servers":
            _check_args(args, _NO_ARGS)
            servers = await self._servers(ctx)
            listed = [
                {
                    "alias": server.alias,
                    "name": server.name,
                    "code_mode_enabled": True,
                    "tool_count": len(server.listing.tools),
                }
                for server in servers.values()
            ]
            return _text(orjson.dumps(listed, option=orjson.OPT_INDENT_2).decode())
        if name == "search_tools":
            _check_args(args, _SEARCH_ARGS)
            query = _string_arg(args, "query", required=True)
            only = _string_arg(args, "server")
            servers = await self._servers(ctx)
            return _text(search([s.listing for s in servers.values()], query, server=only))
        if name == "execute_code":
            _check_args(args, _EXECUTE_ARGS)
            code = _string_arg(args, "code", required=True)
            wanted = args.get("servers")
            if wanted is not None and (
                not isinstance(wanted, list) or not all(isinstance(a, str) for a in wanted)
            ):
                raise JsonRpcError(INVALID_PARAMS, "argument servers must be an array of strings")
            return await self._execute(ctx, code, None if wanted is None else frozenset(wanted))
        raise JsonRpcError(INVALID_PARAMS, "unknown tool")

    async def _servers(self, ctx: McpContext) -> dict[str, UsableServer]:
        """The caller's usable servers, after asking for the lists never fetched (concurrently)."""
        mcp = _mcp(ctx)
        servers = usable_servers(mcp.registry, ctx.identity)
        missing = [
            s.entry
            for s in servers.values()
            if s.entry is not None and s.entry.id not in mcp.registry.catalog.tools
        ]
        if missing:
            async with trio.open_nursery() as nursery:
                for entry in missing:
                    nursery.start_soon(self.fetch_list, ctx.services, mcp, entry)
            servers = usable_servers(mcp.registry, ctx.identity)
        return servers

    async def fetch_list(self, services: Services, mcp: McpRuntime, entry: McpServerEntry) -> None:
        """Ask ``entry`` for its tool list (at most once per :data:`REFETCH_AFTER` in this process); while
        that fetch runs, other executions that need the list wait for it rather than finding no tools. A
        fetch that did not finish (cancelled, or the store failed) counts for nothing: the next caller, or
        one that waited for it, asks again."""
        while (pending := self._listing.get(entry.id)) is not None:
            await pending.wait()
        if entry.id in mcp.registry.catalog.tools:
            return
        now = trio.current_time()
        if now - self._unlisted.get(entry.id, -REFETCH_AFTER) < REFETCH_AFTER:
            return
        self._unlisted[entry.id] = now
        done = self._listing[entry.id] = trio.Event()
        try:
            tools = await fetch_tools(services.store, mcp.upstreams, entry.upstream, changed=mcp.changed)
            if tools is not None:
                mcp.registry.catalog = mcp.registry.catalog.with_tools(entry.id, tools)
        except BaseException:
            del self._unlisted[entry.id]
            raise
        finally:
            del self._listing[entry.id]
            done.set()

    async def _execute(self, ctx: McpContext, code: str, only: frozenset[str] | None) -> dict[str, Any]:
        runtime = _code_mode(ctx)
        mcp = _mcp(ctx)
        execution_id = new_id()
        servers = usable_servers(mcp.registry, ctx.identity)
        if only is not None:
            servers = {alias: server for alias, server in servers.items() if alias in only}
        calls = _Calls(self, ctx, mcp, runtime, servers, execution_id)
        started = trio.current_time()
        status = "cancelled"
        span = _execution_span() if tracing.state.tracer is not None else None
        token = tracing.use(span) if span is not None else None  # the tool calls' tasks inherit it
        self._in_flight += 1
        POOL_AVAILABLE.set(max(0, runtime.settings.pool_size - self._in_flight))
        try:
            outcome: ExecutionResult | SandboxError
            try:
                outcome = await runtime.sandbox.execute(
                    code, call_tool=calls.call, max_tool_calls=runtime.settings.max_tool_calls
                )
            except SandboxError as exc:
                outcome = exc
            status = _status(outcome)
        finally:
            self._in_flight -= 1
            POOL_AVAILABLE.set(max(0, runtime.settings.pool_size - self._in_flight))
            EXECUTIONS.labels(status=status).inc()
            EXECUTION_SECONDS.observe(trio.current_time() - started)
            TOOL_CALLS_PER_EXECUTION.observe(calls.made)
            if span is not None:
                span.set_attributes({c.OUTCOME: status, c.TOOL_CALLS: calls.made})
                tracing.end_span(span, error_type=None if status == "success" else status, token=token)
        if isinstance(outcome, SandboxError):
            return _error(_error_text(outcome, runtime))
        answer = {
            "execution_id": execution_id,
            "result": orjson.loads(outcome.result),
            "tool_calls": [
                {
                    "server": call.server,
                    "tool": call.tool,
                    "duration_ms": round(call.duration_ms, 3),
                    "status": call.status,
                }
                for call in outcome.tool_calls
            ],
            "logs": [{"level": line.level, "msg": line.msg} for line in outcome.logs],
            "duration_ms": round(outcome.duration_ms, 3),
        }
        return _text(orjson.dumps(answer).decode())


@attrs.define(eq=False)
class _Calls:
    """The tool calls of one execution (the sandbox's ``call_tool``)."""

    backend: CodeModeBackend
    ctx: McpContext
    mcp: McpRuntime
    runtime: CodeModeRuntime
    servers: dict[str, UsableServer]
    execution_id: str
    made: int = 0

    async def call(self, alias: str, tool: str, args: Any) -> Any:
        self.made += 1
        server = self.servers.get(alias)
        if server is not None and server.entry is not None and tool not in server.tools:
            # this execution's view may predate the list (never fetched, or fetched by another execution)
            if server.entry.id not in self.mcp.registry.catalog.tools:
                await self.backend.fetch_list(self.ctx.services, self.mcp, server.entry)
            server = self._refreshed(alias)
        if server is None or tool not in server.tools:
            raise ToolCallError(f"unknown tool: {alias}/{tool}"[:300])
        if tool in server.blocked:
            raise ToolCallError(f"tool is blocked: {alias}/{tool}"[:300])
        if not isinstance(args, dict):
            raise ToolCallError(f"{alias}/{tool}: arguments must be an object"[:300])
        if server.entry is None:
            result = await self._builtin(tool, args)
        else:
            result = await self._upstream(server.entry, tool, args)
        if result.get("isError") is True:
            raise ToolCallError(_error_content(result))
        value = unwrap_result(result)
        if server.entry is not None:
            self._learn(server.entry, tool, value)
        return value

    def _refreshed(self, alias: str) -> UsableServer | None:
        server = usable_servers(self.mcp.registry, self.ctx.identity).get(alias)
        if server is not None:
            self.servers[alias] = server
        return server

    async def _builtin(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        started = trio.current_time()
        status = "transport_error"
        ctx = attrs.evolve(self.ctx, endpoint=f"/api/v1/mcp/{BUILTIN_ALIAS}", relay=None)
        span = _builtin_span(tool) if tracing.state.tracer is not None else None
        try:
            result = await BuiltinBackend().handle(ctx, "tools/call", {"name": tool, "arguments": args})
            status = "error" if result.get("isError") is True else "success"
            return result
        except JsonRpcError as exc:
            status = "error"
            raise ToolCallError(f"{BUILTIN_ALIAS}/{tool}: {exc.message}"[:1000]) from None
        finally:
            if span is not None:
                span.set_attributes({c.OUTCOME: status})
                tracing.end_span(span, error_type=None if status == "success" else status)
            record_tool_call(
                self.mcp.tool_calls,
                ToolCallOutcome(
                    identity=self.ctx.identity,
                    request_id=self.ctx.request_id,
                    server_alias=BUILTIN_ALIAS,
                    tool_name=tool,
                    status=status,
                    seconds=trio.current_time() - started,
                    recognised=True,
                    execution_id=self.execution_id,
                ),
            )

    async def _upstream(self, entry: McpServerEntry, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            return await call_tool(
                self.mcp,
                self.backend.proxy_state,
                self.ctx.identity,
                entry,
                tool,
                args,
                request_id=self.ctx.request_id,
                execution_id=self.execution_id,
                guard_policy=effective_policy(
                    self.ctx.services.config.settings.guard, self.ctx.identity.guard
                ),
            )
        except ContentBlockedError as exc:
            raise ToolCallError(f"{entry.alias}/{tool}: {exc.message}"[:1000]) from None
        except UpstreamRpcError as exc:
            raise ToolCallError(f"{entry.alias}/{tool}: {exc.message}"[:1000]) from None
        except UpstreamTimeout:
            raise ToolCallError(f"{entry.alias}/{tool}: the MCP server did not answer in time") from None
        except UpstreamUnavailable:
            raise ToolCallError(f"{entry.alias}/{tool}: the MCP server is unavailable") from None

    def _learn(self, entry: McpServerEntry, tool: str, value: Any) -> None:
        """Queue the result's shape as ``tool``'s output schema when none is learned or it is stale."""
        learned = self.mcp.registry.catalog.schemas.get((entry.id, tool))
        ttl = self.runtime.settings.schema_ttl
        if learned is not None and (ttl == 0 or (utcnow() - learned.inferred_at).total_seconds() < ttl):
            return
        if len(orjson.dumps(value)) > MAX_LEARNED_RESULT:
            return
        self.runtime.learn(LearnedOutput(entry.id, tool, infer_schema(value)))


def _execution_span() -> Any:
    """The span of one ``execute_code`` run (its tool calls are its children); never the code."""
    return tracing.start_child(
        f"{c.EXECUTE_TOOL} {c.EXECUTE_CODE}",
        {
            c.GEN_AI_OPERATION_NAME: c.EXECUTE_TOOL,
            c.GEN_AI_TOOL_NAME: c.EXECUTE_CODE,
            c.MCP_METHOD_NAME: "tools/call",
        },
        kind=SpanKind.INTERNAL,
    )


def _builtin_span(tool: str) -> Any:
    """The span of a built-in tool called by a script (a name of the built-in list, checked before)."""
    return tracing.start_child(
        f"{c.EXECUTE_TOOL} {tool}",
        {
            c.GEN_AI_OPERATION_NAME: c.EXECUTE_TOOL,
            c.GEN_AI_TOOL_NAME: tool,
            c.MCP_METHOD_NAME: "tools/call",
            c.MCP_SERVER: BUILTIN_ALIAS,
        },
        kind=SpanKind.INTERNAL,
    )


def _status(outcome: ExecutionResult | SandboxError) -> str:
    if isinstance(outcome, ExecutionTimeout):
        return "timeout"
    if isinstance(outcome, MemoryLimitExceeded):
        return "oom"
    if isinstance(outcome, SandboxError):
        return "error"
    return "success"


def _error_text(error: SandboxError, runtime: CodeModeRuntime) -> str:
    settings = runtime.settings
    if isinstance(error, ScriptError):
        return error.script_message
    if isinstance(error, ExecutionTimeout):
        return f"the script ran out of time (limit {settings.timeout:g} s)"
    if isinstance(error, MemoryLimitExceeded):
        return f"the script ran out of memory (limit {settings.memory_limit_mb} MB)"
    return str(error)


def _error_content(result: Mapping[str, Any]) -> str:
    """The text of a tool's error result (its text items joined), for the script's exception."""
    content = result.get("content")
    texts = [
        item["text"]
        for item in (content if isinstance(content, list) else [])
        if isinstance(item, dict) and isinstance(item.get("text"), str)
    ]
    return "\n".join(texts)[:4096] or "the tool reported an error"


def _text(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": False}


def _error(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}


def _check_args(args: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    if unknown := sorted(set(args) - set(schema["properties"])):
        raise JsonRpcError(INVALID_PARAMS, f"unknown argument(s): {', '.join(unknown)[:200]}")


def _string_arg(args: Mapping[str, Any], key: str, *, required: bool = False) -> Any:
    value = args.get(key)
    if value is None:
        if required:
            raise JsonRpcError(INVALID_PARAMS, f"missing required argument: {key}")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise JsonRpcError(INVALID_PARAMS, f"argument {key} must be a non-empty string")
    return value


def _mcp(ctx: McpContext) -> McpRuntime:
    mcp = ctx.services.mcp
    if mcp is None or mcp.codemode is None:
        raise JsonRpcError(METHOD_NOT_FOUND, "Code Mode is not enabled")
    return mcp


def _code_mode(ctx: McpContext) -> CodeModeRuntime:
    runtime = _mcp(ctx).codemode
    assert runtime is not None
    return runtime


# -- the schema learner -----------------------------------------------------------------------------------


def store_schema(conn: sa.Connection, learned: LearnedOutput) -> bool:
    """Write ``learned`` (replacing the tool's previous schema); false when the server is gone."""
    servers = t.mcp_servers
    live = conn.execute(
        sa.select(servers.c.id).where(servers.c.id == learned.server_id, servers.c.deleted_at.is_(None))
    ).first()
    if live is None:
        return False
    table = t.output_schemas
    now = utcnow()
    text = orjson.dumps(learned.schema, option=orjson.OPT_SORT_KEYS).decode()
    key = sa.and_(table.c.server_id == learned.server_id, table.c.tool_name == learned.tool)
    if conn.execute(sa.update(table).where(key).values(json_schema=text, inferred_at=now)).rowcount == 0:
        conn.execute(
            sa.insert(table).values(
                server_id=learned.server_id, tool_name=learned.tool, json_schema=text, inferred_at=now
            )
        )
    return True


LEARNER_BUFFER = 256
"""Schemas waiting to be stored; more are dropped (the tool's next call learns again)."""


@attrs.define(eq=False)
class SchemaQueue:
    """Schemas waiting for :func:`serve_schema_learner`; a tool already waiting is not queued twice."""

    send: trio.MemorySendChannel[LearnedOutput]
    pending: set[tuple[str, str]] = attrs.field(factory=set)

    def put(self, learned: LearnedOutput) -> None:
        """Queue without waiting; a full or closed queue drops it."""
        key = (learned.server_id, learned.tool)
        if key in self.pending:
            return
        try:
            self.send.send_nowait(learned)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return
        self.pending.add(key)


def open_schema_queue() -> tuple[SchemaQueue, trio.MemoryReceiveChannel[LearnedOutput]]:
    send, receive = trio.open_memory_channel[LearnedOutput](LEARNER_BUFFER)
    return SchemaQueue(send), receive


async def serve_schema_learner(
    *,
    store: Store,
    changed: Callable[[], Awaitable[None]],
    queue: SchemaQueue,
    receive: trio.MemoryReceiveChannel[LearnedOutput],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Store the output schemas executions learned, one at a time, until cancelled: each goes into the store,
    then ``changed()`` reloads this process's registry (under its loader's lock, so an older reload cannot
    undo it) and tells every other process. Another process storing the same tool's schema at the same moment
    wins quietly; a failed write is logged (the tool's next call learns it again)."""
    task_status.started()
    async with receive:
        async for learned in receive:
            queue.pending.discard((learned.server_id, learned.tool))
            try:
                stored = await store.run(partial(store_schema, learned=learned))
            except StoreIntegrityError:
                continue  # another process inserted it between our update and our insert
            except StoreError as exc:
                log.warning("learned output schema not stored", extra={"error_type": type(exc).__name__})
                continue
            if stored:
                await changed()
