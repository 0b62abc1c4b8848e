"""The cached tool list of each MCP server (``mcp_server_tools``): what ``GET /mcp-servers/{id}/tools`` shows
and what Code Mode searches, without asking the upstream.

A list is replaced whole whenever a fresh one is fetched (:func:`fetch_tools`, the upstream client's
``list_tools``): by ``POST .../test`` and ``POST .../refresh-tools`` (docs/reference/behaviour.md 1.6) and
after every successful health probe (:mod:`voidllm.mcp.health`), and by Code Mode for a server whose list
was never fetched. Only ``name``, ``description`` and ``inputSchema`` of each tool are kept; tools without a
string name are skipped. A fetch that changes the stored list calls its ``changed`` callback (the server
reloads the MCP registry, whose snapshot carries the lists, and publishes ``mcp``), so every process's Code
Mode sees the new list at once.

:func:`load_tool_catalog` reads, for the MCP registry's snapshot, what Code Mode needs in one
:class:`ToolCatalog`: every list with its input schemas, the blocklists and the learned output schemas.

Beside it, the per-tool blocklist (``mcp_tool_blocklist``, managed through ``/mcp-servers/{id}/blocklist``,
docs/reference/behaviour.md 1.6): :func:`read_blocklist` and :func:`read_blocked` read which tool names of
which server are blocked. A name may be blocked before the server ever listed it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import sqlalchemy as sa
import trio

from voidllm.store import tables as t
from voidllm.store.ids import utcnow

if TYPE_CHECKING:
    from voidllm.store.store import Store

log = logging.getLogger(__name__)

__all__ = [
    "FETCH_TIMEOUT",
    "CachedTool",
    "LearnedOutput",
    "LearnedSchema",
    "ToolCatalog",
    "fetch_tools",
    "load_tool_catalog",
    "read_blocked",
    "read_blocklist",
    "read_tools",
    "replace_tools",
]

FETCH_TIMEOUT = 10.0

MAX_TOOLS = 1000
"""At most this many tools of one server are kept (a misbehaving upstream cannot fill the table)."""


@attrs.frozen
class CachedTool:
    """One tool of a server's cached list (``mcp_server_tools``)."""

    name: str
    description: str
    input_schema: Mapping[str, Any]


@attrs.frozen
class LearnedSchema:
    """The output schema Code Mode inferred from a tool's result, and when (``output_schemas``)."""

    schema: Mapping[str, Any]
    inferred_at: datetime


@attrs.frozen
class LearnedOutput:
    """An output schema Code Mode inferred from one result, waiting to be stored."""

    server_id: str
    tool: str
    schema: dict[str, Any]


@attrs.frozen
class ToolCatalog:
    """What Code Mode knows of the servers' tools: lists, blocklists and learned output schemas by server
    id (see the module docstring)."""

    tools: Mapping[str, tuple[CachedTool, ...]] = attrs.field(factory=dict)
    blocked: Mapping[str, frozenset[str]] = attrs.field(factory=dict)
    schemas: Mapping[tuple[str, str], LearnedSchema] = attrs.field(factory=dict)

    def with_tools(self, server_id: str, tools: tuple[CachedTool, ...]) -> ToolCatalog:
        """This catalog with ``server_id``'s list replaced (after this process fetched it)."""
        return attrs.evolve(self, tools={**self.tools, server_id: tools})

    def with_schema(self, server_id: str, tool: str, learned: LearnedSchema) -> ToolCatalog:
        return attrs.evolve(self, schemas={**self.schemas, (server_id, tool): learned})


def load_tool_catalog(conn: sa.Connection, server_ids: set[str]) -> ToolCatalog:
    """The cached tool lists, blocklists and learned output schemas of ``server_ids``."""
    tools: dict[str, list[CachedTool]] = {}
    cached = t.mcp_server_tools
    for row in conn.execute(sa.select(cached).order_by(cached.c.server_id, cached.c.name)):
        if row.server_id in server_ids:
            tools.setdefault(row.server_id, []).append(
                CachedTool(row.name, row.description or "", _json_object(row.input_schema))
            )
    learned = t.output_schemas
    schemas = {
        (row.server_id, row.tool_name): LearnedSchema(_json_object(row.json_schema), row.inferred_at)
        for row in conn.execute(sa.select(learned))
        if row.server_id in server_ids
    }
    return ToolCatalog(
        tools={server_id: tuple(found) for server_id, found in tools.items()},
        blocked=read_blocklist(conn),
        schemas=schemas,
    )


def _json_object(text: str | None) -> dict[str, Any]:
    """A stored JSON schema; anything unreadable (or not an object) is the empty schema."""
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def replace_tools(
    conn: sa.Connection, server_id: str, tools: Sequence[Mapping[str, Any]]
) -> tuple[tuple[CachedTool, ...], bool]:
    """Replace the server's cached list with ``tools`` (MCP ``tools/list`` entries); returns the tools kept
    and whether the stored list changed.

    The server's row is locked first, so replacements of one list run one after the other: processes that
    fetched the list at the same moment (on PostgreSQL, where transactions overlap) would otherwise both
    insert into an empty list and the second would fail on the first one's rows. SQLite transactions are
    serialised anyway."""
    servers = t.mcp_servers
    conn.execute(sa.select(servers.c.id).where(servers.c.id == server_id).with_for_update())
    table = t.mcp_server_tools
    now = utcnow()
    kept: dict[str, CachedTool] = {}
    for tool in tools[:MAX_TOOLS]:
        name = tool.get("name") if isinstance(tool, Mapping) else None
        if not isinstance(name, str) or not name or name in kept:
            continue
        description = tool.get("description")
        schema = tool.get("inputSchema")
        kept[name] = CachedTool(
            name,
            description if isinstance(description, str) else "",
            schema if isinstance(schema, dict) else {},
        )
    stored = {
        row.name: (row.description, row.input_schema)
        for row in conn.execute(sa.select(table).where(table.c.server_id == server_id))
    }
    rows = {
        name: (tool.description, orjson.dumps(tool.input_schema, option=orjson.OPT_SORT_KEYS).decode())
        for name, tool in kept.items()
    }
    changed = stored != rows
    conn.execute(sa.delete(table).where(table.c.server_id == server_id))
    if rows:
        conn.execute(
            sa.insert(table),
            [
                {
                    "server_id": server_id,
                    "name": name,
                    "fetched_at": now,
                    "description": description,
                    "input_schema": schema,
                }
                for name, (description, schema) in rows.items()
            ],
        )
    return tuple(sorted(kept.values(), key=lambda tool: tool.name)), changed


def read_tools(conn: sa.Connection, server_id: str) -> list[tuple[str, str]]:
    """``(name, description)`` of the server's cached tools, by name."""
    table = t.mcp_server_tools
    query = sa.select(table.c.name, table.c.description).where(table.c.server_id == server_id)
    return [(row.name, row.description) for row in conn.execute(query.order_by(table.c.name))]


def read_blocklist(conn: sa.Connection) -> dict[str, frozenset[str]]:
    """The blocked tool names of every live server that has any, by server id."""
    b, s = t.mcp_tool_blocklist, t.mcp_servers
    query = sa.select(b.c.server_id, b.c.tool_name).join(s, s.c.id == b.c.server_id)
    found: dict[str, set[str]] = {}
    for row in conn.execute(query.where(s.c.deleted_at.is_(None))):
        found.setdefault(row.server_id, set()).add(row.tool_name)
    return {server_id: frozenset(names) for server_id, names in found.items()}


def read_blocked(conn: sa.Connection, server_id: str) -> frozenset[str]:
    """The blocked tool names of one server."""
    b = t.mcp_tool_blocklist
    return frozenset(conn.execute(sa.select(b.c.tool_name).where(b.c.server_id == server_id)).scalars())


async def fetch_tools(
    store: Store,
    lister: Any,
    server: Any,
    *,
    changed: Callable[[], Awaitable[None]] | None = None,
) -> tuple[CachedTool, ...] | None:
    """Ask the upstream for its tools (``lister.list_tools(server)``, bounded by :data:`FETCH_TIMEOUT`) and
    replace the cached list; ``None`` when the upstream failed or timed out (the cache is left as it was).
    When the stored list changed, ``changed()`` is awaited."""
    tools: list[dict[str, Any]] | None = None
    with trio.move_on_after(FETCH_TIMEOUT):
        try:
            tools = await lister.list_tools(server)
        except Exception as exc:  # the client's errors: unavailable, timeout, JSON-RPC error
            log.info(
                "MCP tool list not fetched", extra={"server": server.alias, "error_type": type(exc).__name__}
            )
    if tools is None:
        return None
    kept, different = await store.run(partial(replace_tools, server_id=server.id, tools=tools))
    if different and changed is not None:
        await changed()
    return kept
