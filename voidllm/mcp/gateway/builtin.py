"""The built-in ``voidllm`` MCP server (``/api/v1/mcp/voidllm``, docs/reference/behaviour.md 8.6): management
tools.

Every tool calls the same admin use cases as the REST API with an :class:`~voidllm.admin.context.Actor`
built from the caller's key, so permissions are exactly the REST API's. A refusal or a failed lookup of a
use case (any :class:`~voidllm.errors.GatewayError`) becomes a tool result with ``isError: true`` and the
error's message, which the model can read and act on; arguments that do not fit the tool's input schema are
a JSON-RPC -32602, like an unknown tool. Results are text content holding pretty JSON plus the same value
as ``structuredContent``.

``get_usage`` returns real figures: the organisation's usage for org admins and above, the caller's own
otherwise (``voidllm.admin.usage``), over ``from``..``to`` (RFC 3339; default the last 30 days).

Arguments and results are never logged: they can hold keys (``create_key``) and business data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import attrs
import orjson

from voidllm import __version__, codec
from voidllm.admin import deployments, keys, probes, usage
from voidllm.admin.context import Actor
from voidllm.admin.pages import PageQuery
from voidllm.admin.services import AuditEntry
from voidllm.errors import GatewayError
from voidllm.identity import Role
from voidllm.mcp.gateway.server import STATELESS_VERSION, McpContext
from voidllm.mcp.upstream.jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, JsonRpcError
from voidllm.store.ids import utcnow

__all__ = ["TOOLS", "BuiltinBackend"]

log = logging.getLogger(__name__)

_GROUP_BY = ("model", "team", "key", "user", "day", "hour", "source", "project")
_NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


@attrs.frozen
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    run: Callable[[McpContext, Actor, dict[str, Any]], Awaitable[Any]]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "inputSchema": self.input_schema}


# -- tools --------------------------------------------------------------------------------------------


async def _list_models(ctx: McpContext, actor: Actor, args: dict[str, Any]) -> Any:
    catalog = ctx.services.catalog
    if catalog is None:
        return []
    if actor.role < Role.ORG_ADMIN:
        return [{"name": m.name, "type": m.type} for m in catalog.visible(ctx.identity)]
    board = ctx.services.health.board if ctx.services.health is not None else None
    out = []
    for model in catalog.registry.models:
        report = board.report(model.name) if board is not None else None
        out.append(
            {
                "name": model.name,
                "provider": model.upstreams[0].provider if model.upstreams else "",
                "type": model.type,
                "aliases": list(model.aliases),
                "max_context_tokens": getattr(model, "max_context_tokens", 0),
                "strategy": model.strategy,
                "deployment_count": len(model.upstreams),
                "health": report.status if report is not None else "unknown",
                "latency_ms": report.latency_ms if report is not None else None,
            }
        )
    return out


async def _get_model_health(ctx: McpContext, actor: Actor, args: dict[str, Any]) -> Any:
    name = _string(args, "model", required=True)
    listing = await probes.health(ctx.services, actor)
    catalog = ctx.services.catalog
    if actor.role < Role.ORG_ADMIN and catalog is not None:
        visible = {m.name for m in catalog.visible(ctx.identity)}
        if name.split("/", 1)[0] not in visible:
            raise _ToolError(f"model {name!r} not found")
    found = [h for h in listing.models if h.name == name or h.name.startswith(name + "/")]
    if not found:
        raise _ToolError(f"model {name!r} not found")
    rows = [
        {
            "name": h.name,
            "status": h.status,
            "latency_ms": h.latency_ms,
            "last_error": h.last_error,
            "health_ok": h.health_ok,
            "models_ok": h.models_ok,
            "functional_ok": h.functional_ok,
        }
        for h in found
    ]
    return rows[0] if len(rows) == 1 else rows


async def _get_usage(ctx: McpContext, actor: Actor, args: dict[str, Any]) -> Any:
    to = _time(args, "to") or utcnow()
    from_ = _time(args, "from") or to - timedelta(days=30)
    group_by = _string(args, "group_by")
    if group_by is not None and group_by not in _GROUP_BY:
        raise _ArgumentError("argument group_by is not one of the allowed values")
    query = usage.UsageQuery(from_=from_, to=to, group_by=group_by)
    if actor.role >= Role.ORG_ADMIN and actor.org_id is not None:
        report = await usage.org_usage(ctx.services, actor, actor.org_id, query)
    else:
        report = await usage.my_usage(ctx.services, actor, query)
    return _plain(report)


async def _list_keys(ctx: McpContext, actor: Actor, args: dict[str, Any]) -> Any:
    listed = await _collect(lambda page: keys.list_keys(ctx.services, actor, ctx.identity.org_id, page))
    return [
        {
            "id": k.id,
            "key_hint": k.key_hint,
            "key_type": k.key_type,
            "name": k.name,
            "created_at": _rfc3339(k.created_at),
        }
        for k in listed
    ]


async def _create_key(ctx: McpContext, actor: Actor, args: dict[str, Any]) -> Any:
    name = _string(args, "name", required=True)
    expires_in = _string(args, "expires_in")
    expires_at = utcnow() + _duration(expires_in) if expires_in else None
    req = keys.KeyCreate(name=name, key_type="user_key", user_id=actor.user_id, expires_at=expires_at)
    created = await keys.create(ctx.services, actor, ctx.identity.org_id, req)
    ctx.services.audit.record(
        AuditEntry(
            actor=actor,
            action="create",
            resource_type="api_key",
            resource_id=created.id,
            org_id=created.org_id,
            status_code=201,
            description={"name": name, "source": "mcp"},
        )
    )
    return {
        "id": created.id,
        "key": created.key,
        "key_hint": created.key_hint,
        "name": created.name,
        "expires_at": _rfc3339(created.expires_at),
    }


async def _list_deployments(ctx: McpContext, actor: Actor, args: dict[str, Any]) -> Any:
    model_id = _string(args, "model_id", required=True)
    listed = await _collect(lambda page: deployments.list_deployments(ctx.services, actor, model_id, page))
    return [
        {
            "id": d.id,
            "name": d.name,
            "provider": d.provider,
            "base_url": d.base_url,
            "weight": d.weight,
            "priority": d.priority,
            "is_active": d.is_active,
        }
        for d in listed
    ]


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        Tool(
            "list_models",
            "List the models you can use (admins: with provider, strategy and health).",
            _NO_ARGS,
            _list_models,
        ),
        Tool(
            "get_model_health",
            "Latest health probe results of a model or one of its deployments.",
            {
                "type": "object",
                "properties": {"model": {"type": "string", "description": "model or model/deployment"}},
                "required": ["model"],
                "additionalProperties": False,
            },
            _get_model_health,
        ),
        Tool(
            "get_usage",
            "Token and request usage: your organisation's (admins) or your own, over a time range.",
            {
                "type": "object",
                "properties": {
                    "from": {
                        "type": "string",
                        "format": "date-time",
                        "description": "start (inclusive); default 30 days ago",
                    },
                    "to": {
                        "type": "string",
                        "format": "date-time",
                        "description": "end (exclusive); default now",
                    },
                    "group_by": {"type": "string", "enum": list(_GROUP_BY)},
                },
                "additionalProperties": False,
            },
            _get_usage,
        ),
        Tool(
            "list_keys",
            "List API keys: the organisation's (admins) or your own (at most 200).",
            _NO_ARGS,
            _list_keys,
        ),
        Tool(
            "create_key",
            "Create a personal API key; the key is shown once in the result.",
            {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "expires_in": {"type": "string", "description": "duration such as 24h, 90m or 720h"},
                },
                "required": ["name"],
                "additionalProperties": False,
            },
            _create_key,
        ),
        Tool(
            "list_deployments",
            "List the deployments of a model (system admins only).",
            {
                "type": "object",
                "properties": {"model_id": {"type": "string"}},
                "required": ["model_id"],
                "additionalProperties": False,
            },
            _list_deployments,
        ),
    )
}


# -- backend ------------------------------------------------------------------------------------------


class _ToolError(Exception):
    """A tool-level failure whose message is safe to show (becomes ``isError: true``)."""


@attrs.frozen
class BuiltinBackend:
    """The :class:`~voidllm.mcp.gateway.server.McpBackend` of the built-in server."""

    name: str = "voidllm"

    async def handle(self, ctx: McpContext, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        if method == "initialize":
            return {"capabilities": {"tools": {}}, "serverInfo": {"name": "voidllm", "version": __version__}}
        if method == "tools/list":
            result: dict[str, Any] = {"tools": [tool.describe() for tool in TOOLS.values()]}
            if ctx.protocol_version == STATELESS_VERSION:  # list results carry caching directives
                result.update(ttlMs=0, cacheScope="private")
            return result
        if method == "tools/call":
            return await self._call(ctx, params or {})
        raise JsonRpcError(METHOD_NOT_FOUND, "method not found")

    async def notify(self, ctx: McpContext, method: str, params: dict[str, Any] | None) -> None:
        return None

    async def _call(self, ctx: McpContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        tool = TOOLS.get(name) if isinstance(name, str) else None
        if tool is None:
            raise JsonRpcError(INVALID_PARAMS, "unknown tool")
        args = params.get("arguments") or {}
        if not isinstance(args, dict):
            raise JsonRpcError(INVALID_PARAMS, "arguments must be an object")
        allowed = tool.input_schema.get("properties", {})
        if unknown := sorted(set(args) - set(allowed)):
            raise JsonRpcError(INVALID_PARAMS, f"unknown argument(s): {', '.join(unknown)[:200]}")
        actor = Actor(ctx.identity, request_id=ctx.request_id)
        try:
            value = await tool.run(ctx, actor, args)
        except _ArgumentError as exc:
            raise JsonRpcError(INVALID_PARAMS, str(exc)) from None
        except (_ToolError, GatewayError) as exc:
            return _error_result(exc.message if isinstance(exc, GatewayError) else str(exc))
        except Exception:
            log.exception("built-in MCP tool failed", extra={"tool": tool.name})
            return _error_result("internal error")
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
        result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": False}
        result["structuredContent"] = value if isinstance(value, dict) else {"items": value}
        return result


def _error_result(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}


MAX_ITEMS = 200
"""List tools return at most this many items (docs/reference/behaviour.md 8.6)."""


async def _collect(fetch: Callable[[PageQuery], Awaitable[Any]]) -> list[Any]:
    """Up to :data:`MAX_ITEMS` items of a paginated use case, page by page."""
    items: list[Any] = []
    cursor = None
    while len(items) < MAX_ITEMS:
        page = await fetch(PageQuery(limit=min(100, MAX_ITEMS - len(items)), cursor=cursor))
        items.extend(page.data)
        if not page.has_more or page.next_cursor is None:
            break
        cursor = page.next_cursor
    return items


# -- argument helpers ---------------------------------------------------------------------------------


class _ArgumentError(Exception):
    """Arguments that do not fit the schema: -32602."""


def _string(args: dict[str, Any], key: str, *, required: bool = False) -> Any:
    value = args.get(key)
    if value is None:
        if required:
            raise _ArgumentError(f"missing required argument: {key}")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise _ArgumentError(f"argument {key} must be a non-empty string")
    return value


def _time(args: dict[str, Any], key: str) -> datetime | None:
    """An RFC 3339 time (with its offset) or a date, read by the admin API's codec (same bounds)."""
    value = _string(args, key)
    if value is None:
        return None
    try:
        return codec.structure(value, datetime)
    except GatewayError:
        raise _ArgumentError(
            f"argument {key} must be an RFC 3339 date-time with an offset (or a date), 1970 to before 9000"
        ) from None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")


def _duration(value: str) -> timedelta:
    """A Go-style duration (``720h``, ``1h30m``, ``90s``); must be positive."""
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise _ArgumentError("argument expires_in must be a duration such as 24h or 90m")
    seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0 or seconds > 100 * 365 * 86400:
        raise _ArgumentError("argument expires_in is out of range")
    return timedelta(seconds=seconds)


def _rfc3339(value: datetime | None) -> str | None:
    return None if value is None else codec.format_datetime(value)


def _plain(report: usage.UsageReport) -> dict[str, Any]:
    return {
        "org_id": report.org_id,
        "from": _rfc3339(report.from_),
        "to": _rfc3339(report.to),
        "group_by": report.group_by,
        "data": [attrs.asdict(point) for point in report.data],
    }
