"""Scoped model aliases (docs/reference/behaviour.md 1.6): names an org or a team gives to a model, for its
keys only.

A key's requested name resolves through its team's aliases, then its org's, then the registry's own names
and aliases (:meth:`voidllm.routing.catalog.Catalog.resolve`). An alias points at a live model (given by name
or global alias; the canonical name is stored) and must not be the name of a model; it is unique within its
scope (409). Both names are at most 256 characters. Org admins of the org (or system admins) manage both
scopes. After a write the running catalog reloads at once and ``aliases`` is published for the other
processes.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

import attrs
import sqlalchemy as sa

from voidllm.admin.access import AccessScope, check_scope
from voidllm.admin.context import Actor
from voidllm.admin.models import check_name
from voidllm.admin.pages import Page, PageQuery, paginate
from voidllm.admin.services import Services
from voidllm.bounds import NAME, bounded
from voidllm.bus import TOPIC_ALIASES
from voidllm.errors import BadRequestError, ConflictError, NotFoundError
from voidllm.identity import Role
from voidllm.routing.catalog_store import split_aliases
from voidllm.store import tables as t
from voidllm.store.errors import StoreIntegrityError
from voidllm.store.ids import new_id

log = logging.getLogger(__name__)


@attrs.frozen
class AliasCreate:
    alias: str = bounded(NAME)
    model_name: str = bounded(NAME)


@attrs.frozen
class AliasOut:
    id: str
    alias: str
    model_name: str
    scope_type: str
    org_id: str
    team_id: str | None
    created_by: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> AliasOut:
        return cls(
            id=row["id"],
            alias=row["alias"],
            model_name=row["model_name"],
            scope_type=row["scope_type"],
            org_id=row["org_id"],
            team_id=row["team_id"],
            created_by=row["created_by"],
            created_at=row["created_at"],
        )


async def create(
    services: Services, actor: Actor, org_id: str, team_id: str | None, req: AliasCreate
) -> AliasOut:
    """Create an org alias (``team_id`` None) or a team alias."""
    _gate(actor, org_id)
    tx = partial(_create_tx, scope=AccessScope(org_id, team_id), actor=actor, req=req)
    try:
        out: AliasOut = await services.store.run(tx)
    except StoreIntegrityError as exc:
        if exc.kind == "unique":
            raise ConflictError("this alias already exists in this scope") from None
        raise
    await services.catalog_changed(TOPIC_ALIASES)
    return out


async def list_aliases(
    services: Services, actor: Actor, org_id: str, team_id: str | None, page: PageQuery
) -> Page[AliasOut]:
    """The aliases of one scope, oldest first."""
    _gate(actor, org_id)
    tx = partial(_list_tx, scope=AccessScope(org_id, team_id), actor=actor, page=page)
    return await services.store.run(tx)


async def delete(services: Services, actor: Actor, org_id: str, team_id: str | None, alias_id: str) -> None:
    _gate(actor, org_id)
    tx = partial(_delete_tx, scope=AccessScope(org_id, team_id), actor=actor, alias_id=alias_id)
    await services.store.run(tx)
    await services.catalog_changed(TOPIC_ALIASES)


def _gate(actor: Actor, org_id: str) -> None:
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)


def _in_scope(scope: AccessScope) -> sa.ColumnElement[bool]:
    a = t.model_aliases
    team = a.c.team_id.is_(None) if scope.team_id is None else a.c.team_id == scope.team_id
    return sa.and_(a.c.org_id == scope.org_id, team)


def _canonical(conn: sa.Connection, name: str) -> str | None:
    """The live model ``name`` names (by name, else by global alias)."""
    m = t.models
    rows = conn.execute(sa.select(m.c.name, m.c.aliases).where(m.c.deleted_at.is_(None))).all()
    for row in rows:
        if row.name == name:
            return str(row.name)
    for row in rows:
        if name in split_aliases(row.aliases):
            return str(row.name)
    return None


def _create_tx(conn: sa.Connection, *, scope: AccessScope, actor: Actor, req: AliasCreate) -> AliasOut:
    check_scope(conn, scope, actor)
    alias = check_name(req.alias, "alias")
    target = _canonical(conn, req.model_name.strip())
    if target is None:
        raise BadRequestError("model_name is not a known model")
    m = t.models
    if conn.execute(sa.select(m.c.id).where(m.c.name == alias, m.c.deleted_at.is_(None))).first() is not None:
        raise BadRequestError("alias must not be the name of a model")
    a = t.model_aliases
    if conn.execute(sa.select(a.c.id).where(_in_scope(scope), a.c.alias == alias)).first() is not None:
        raise ConflictError("this alias already exists in this scope")
    alias_id = new_id()
    conn.execute(
        sa.insert(a).values(
            id=alias_id,
            alias=alias,
            model_name=target,
            scope_type="team" if scope.team_id else "org",
            org_id=scope.org_id,
            team_id=scope.team_id,
            created_by=actor.actor_id,
        )
    )
    row = conn.execute(sa.select(a).where(a.c.id == alias_id)).mappings().one()
    return AliasOut.from_row(row)


def _list_tx(conn: sa.Connection, *, scope: AccessScope, actor: Actor, page: PageQuery) -> Page[AliasOut]:
    check_scope(conn, scope, actor)
    a = t.model_aliases
    return paginate(conn, sa.select(a).where(_in_scope(scope)), a.c.id, page, AliasOut.from_row)


def _delete_tx(conn: sa.Connection, *, scope: AccessScope, actor: Actor, alias_id: str) -> None:
    check_scope(conn, scope, actor)
    a = t.model_aliases
    if conn.execute(sa.delete(a).where(a.c.id == alias_id, _in_scope(scope))).rowcount != 1:
        raise NotFoundError("alias not found")
