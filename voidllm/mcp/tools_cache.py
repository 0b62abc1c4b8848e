"""The cached tool list of each MCP server (``mcp_server_tools``): what ``GET /mcp-servers/{id}/tools`` shows
and what Code Mode searches, without asking the upstream.

A list is replaced whole whenever a fresh one is fetched (:func:`fetch_tools`, the upstream client's
``list_tools``): by ``POST .../test`` and ``POST .../refresh-tools`` (docs/reference/behaviour.md 1.6) and
after every successful health probe (:mod:`voidllm.mcp.health`). Only ``name``,
``description`` and ``inputSchema`` of each tool are kept; tools without a string name are skipped.

Beside it, the per-tool blocklist (``mcp_tool_blocklist``, managed through ``/mcp-servers/{id}/blocklist``,
docs/reference/behaviour.md 1.6): :func:`read_blocklist` and :func:`read_blocked` read which tool names of
which server are blocked. A name may be blocked before the server ever listed it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
import trio

from voidllm.store import tables as t
from voidllm.store.ids import utcnow

if TYPE_CHECKING:
    from voidllm.store.store import Store

log = logging.getLogger(__name__)

__all__ = ["FETCH_TIMEOUT", "fetch_tools", "read_blocked", "read_blocklist", "read_tools", "replace_tools"]

FETCH_TIMEOUT = 10.0

MAX_TOOLS = 1000
"""At most this many tools of one server are kept (a misbehaving upstream cannot fill the table)."""


def replace_tools(conn: sa.Connection, server_id: str, tools: Sequence[Mapping[str, Any]]) -> int:
    """Replace the server's cached list with ``tools`` (MCP ``tools/list`` entries); returns how many were
    kept."""
    table = t.mcp_server_tools
    now = utcnow()
    rows: dict[str, dict[str, Any]] = {}
    for tool in tools[:MAX_TOOLS]:
        name = tool.get("name") if isinstance(tool, Mapping) else None
        if not isinstance(name, str) or not name or name in rows:
            continue
        description = tool.get("description")
        schema = tool.get("inputSchema")
        rows[name] = {
            "server_id": server_id,
            "name": name,
            "fetched_at": now,
            "description": description if isinstance(description, str) else "",
            "input_schema": orjson.dumps(schema if isinstance(schema, dict) else {}).decode(),
        }
    conn.execute(sa.delete(table).where(table.c.server_id == server_id))
    if rows:
        conn.execute(sa.insert(table), list(rows.values()))
    return len(rows)


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


async def fetch_tools(store: Store, lister: Any, server: Any) -> list[tuple[str, str]] | None:
    """Ask the upstream for its tools (``lister.list_tools(server)``, bounded by :data:`FETCH_TIMEOUT`) and
    replace the cached list; ``None`` when the upstream failed or timed out (the cache is left as it was)."""
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
    await store.run(partial(replace_tools, server_id=server.id, tools=tools))
    return await store.run(partial(read_tools, server_id=server.id))
