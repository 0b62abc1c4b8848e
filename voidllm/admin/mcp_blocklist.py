"""The per-tool blocklist of an MCP server through the admin API (docs/reference/behaviour.md 1.6 "Code-Mode
blocklist").

A blocked tool is one Code Mode must not call on that server, whoever asks. The list is read by whoever can
see the server (as its tool list, ``GET .../tools``, which marks each tool ``blocked``) and changed by the
admin of the server's scope (:func:`~voidllm.admin.mcp_servers.owned_server`). Unlike the server's own
settings, the blocklist is not configuration: the blocklist of a server from ``voidllm.yaml`` and of the
built-in ``voidllm`` server may be changed here too (``editable=False``).

A name is blocked as sent, without surrounding spaces (an MCP tool name has none), at most 256 characters
and without control characters (:data:`TOOL_NAME`). It need not be in the server's cached tool list, so a
tool can be blocked before the server lists it. A name blocked twice is a 409 ``tool_already_blocked``;
unblocking a name that is not blocked is a 404.

Every write reloads this process's MCP registry at once and publishes ``mcp`` on the bus
(:func:`~voidllm.admin.mcp_servers.mcp_changed`), so every process sees the change.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.mcp_servers import mcp_changed, owned_server, visible_server
from voidllm.admin.services import Services
from voidllm.bounds import TEXT, Bounds, bounded
from voidllm.errors import BadRequestError, ConflictError, NotFoundError
from voidllm.store import tables as t
from voidllm.store.errors import StoreIntegrityError
from voidllm.store.ids import new_id

TOOL_NAME = Bounds(
    max_length=256, pattern=r"[^\x00-\x1f\x7f]*", pattern_means="text without control characters"
)


def _tool_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise BadRequestError("tool_name must not be blank")
    return value


@attrs.frozen
class BlockedTool:
    """One blocked tool of a server."""

    tool_name: str
    reason: str
    created_by: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> BlockedTool:
        return cls(
            tool_name=row["tool_name"],
            reason=row["reason"],
            created_by=row["created_by"],
            created_at=row["created_at"],
        )


@attrs.frozen
class BlockedToolCreate:
    tool_name: str = bounded(TOOL_NAME, converter=_tool_name)
    reason: str = bounded(TEXT, default="", converter=str.strip)


@attrs.frozen
class BlockedToolQuery:
    """``DELETE .../blocklist?tool_name=``: the tool to unblock."""

    tool_name: str = bounded(TOOL_NAME, converter=_tool_name)


# ------------------------------------------------------------------------------------------ use cases


async def list_blocked(services: Services, actor: Actor, server_id: str) -> list[BlockedTool]:
    """The server's blocked tools, by name."""
    return await services.store.run(partial(_list_tx, server_id=server_id, actor=actor))


async def block(services: Services, actor: Actor, server_id: str, req: BlockedToolCreate) -> BlockedTool:
    """Block a tool of the server (409 ``tool_already_blocked`` when it is)."""
    try:
        out = await services.store.run(partial(_block_tx, server_id=server_id, actor=actor, req=req))
    except StoreIntegrityError as exc:
        if exc.kind == "unique":
            raise ConflictError(
                "this tool is already blocked on this MCP server", code="tool_already_blocked"
            ) from None
        raise
    await mcp_changed(services)
    return out


async def unblock(services: Services, actor: Actor, server_id: str, tool_name: str) -> None:
    """Unblock a tool of the server (404 when it is not blocked)."""
    await services.store.run(partial(_unblock_tx, server_id=server_id, actor=actor, tool_name=tool_name))
    await mcp_changed(services)


# -------------------------------------------------------------------------------------- transactions


def _list_tx(conn: sa.Connection, *, server_id: str, actor: Actor) -> list[BlockedTool]:
    visible_server(conn, actor, server_id)
    b = t.mcp_tool_blocklist
    query = sa.select(b).where(b.c.server_id == server_id).order_by(b.c.tool_name)
    return [BlockedTool.from_row(row) for row in conn.execute(query).mappings()]


def _block_tx(conn: sa.Connection, *, server_id: str, actor: Actor, req: BlockedToolCreate) -> BlockedTool:
    owned_server(conn, actor, server_id, editable=False)
    b, row_id = t.mcp_tool_blocklist, new_id()
    conn.execute(
        sa.insert(b).values(
            id=row_id,
            server_id=server_id,
            tool_name=req.tool_name,
            reason=req.reason,
            created_by=actor.actor_id,
        )
    )
    return BlockedTool.from_row(conn.execute(sa.select(b).where(b.c.id == row_id)).mappings().one())


def _unblock_tx(conn: sa.Connection, *, server_id: str, actor: Actor, tool_name: str) -> None:
    owned_server(conn, actor, server_id, editable=False)
    b = t.mcp_tool_blocklist
    deleted = conn.execute(sa.delete(b).where(b.c.server_id == server_id, b.c.tool_name == tool_name))
    if deleted.rowcount == 0:
        raise NotFoundError("this tool is not blocked on this MCP server")
