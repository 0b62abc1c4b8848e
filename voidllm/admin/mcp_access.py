"""MCP access allowlists at org, team and key level (docs/reference/behaviour.md 1.6 "Access control", section
4).

An allowlist is a set of MCP server ids. Unlike model allowlists, global servers are **closed by default**:
a key may call a global server only when its org's list names it; a non-empty team list and a non-empty key
list further restrict. Org- and team-scoped servers need no grant. System admins bypass every list. The
rules are applied by :meth:`voidllm.mcp.registry.McpRegistry.allowed`.

A list may name live global servers and the org's own servers (other ids are 400); ``PUT`` replaces it
whole. Who manages which list follows the model allowlists (:mod:`voidllm.admin.access`): org and key
lists need an org admin of the org, a team list a team admin of the team. ``available-mcp-servers`` lists
the global servers an org admin can grant. After a write the MCP registry reloads at once and ``mcp`` is
published for the other processes.
"""

from __future__ import annotations

from functools import partial

import attrs
import sqlalchemy as sa

from voidllm.admin.access import AccessScope, check_scope
from voidllm.admin.context import Actor
from voidllm.admin.mcp_servers import mcp_changed
from voidllm.admin.services import Services
from voidllm.errors import BadRequestError
from voidllm.identity import Role
from voidllm.store import tables as t


@attrs.frozen
class McpAccess:
    """Body and response of the MCP access routes: server ids."""

    servers: list[str] = attrs.Factory(list)


@attrs.frozen
class AvailableMcpServer:
    id: str
    name: str
    alias: str


def _table(scope: AccessScope) -> tuple[sa.Table, sa.Column[str]]:
    if scope.team_id is not None:
        return t.team_mcp_access, t.team_mcp_access.c.team_id
    if scope.key_id is not None:
        return t.key_mcp_access, t.key_mcp_access.c.key_id
    return t.org_mcp_access, t.org_mcp_access.c.org_id


async def read_mcp_access(services: Services, actor: Actor, scope: AccessScope) -> McpAccess:
    """The server ids ``scope`` lists."""
    _gate(actor, scope)
    return await services.store.run(partial(_read_tx, scope=scope, actor=actor))


async def replace_mcp_access(
    services: Services, actor: Actor, scope: AccessScope, req: McpAccess
) -> McpAccess:
    """Replace the list of ``scope``; it holds for new MCP calls at once."""
    _gate(actor, scope)
    out = await services.store.run(partial(_replace_tx, scope=scope, actor=actor, ids=req.servers))
    await mcp_changed(services)
    return out


async def available_servers(services: Services, actor: Actor, org_id: str) -> list[AvailableMcpServer]:
    """The live global servers, which an org admin can grant to the org."""
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)
    return await services.store.run(partial(_available_tx, org_id=org_id, actor=actor))


def _gate(actor: Actor, scope: AccessScope) -> None:
    if scope.team_id is None:
        actor.require(Role.ORG_ADMIN)
    actor.require_org(scope.org_id)


def _read_tx(conn: sa.Connection, *, scope: AccessScope, actor: Actor) -> McpAccess:
    check_scope(conn, scope, actor)
    table, column = _table(scope)
    ids = conn.execute(sa.select(table.c.server_id).where(column == scope.scope_id)).scalars()
    return McpAccess(servers=sorted(ids))


def _replace_tx(conn: sa.Connection, *, scope: AccessScope, actor: Actor, ids: list[str]) -> McpAccess:
    check_scope(conn, scope, actor)
    wanted = sorted(set(ids))
    s = t.mcp_servers
    grantable = sa.or_(sa.and_(s.c.org_id.is_(None), s.c.team_id.is_(None)), s.c.org_id == scope.org_id)
    query = sa.select(s.c.id).where(s.c.deleted_at.is_(None), grantable, s.c.id.in_(wanted))
    known = set(conn.execute(query).scalars())
    unknown = [index for index, server_id in enumerate(ids) if server_id not in known]
    if unknown:
        raise BadRequestError(f"servers[{unknown[0]}] is not an MCP server this organization can use")
    table, column = _table(scope)
    conn.execute(sa.delete(table).where(column == scope.scope_id))
    if wanted:
        conn.execute(sa.insert(table), [{column.key: scope.scope_id, "server_id": sid} for sid in wanted])
    return McpAccess(servers=wanted)


def _available_tx(conn: sa.Connection, *, org_id: str, actor: Actor) -> list[AvailableMcpServer]:
    check_scope(conn, AccessScope(org_id), actor)
    s = t.mcp_servers
    query = (
        sa.select(s.c.id, s.c.name, s.c.alias)
        .where(s.c.org_id.is_(None), s.c.team_id.is_(None), s.c.deleted_at.is_(None), s.c.source != "builtin")
        .order_by(s.c.alias)
    )
    return [AvailableMcpServer(id=row.id, name=row.name, alias=row.alias) for row in conn.execute(query)]
