"""Service accounts: non-human principals that own ``sa_key`` keys (docs/reference/behaviour.md 1.6).

An org-scoped account (no team) is managed by the organisation's admins and its keys act as org admins; a
team-scoped one is managed by that team's admins (org admins, the team's team-scoped key, users whose team
role is ``team_admin``) and its keys act as team admins (docs/reference/behaviour.md 4). Other callers do not
see service accounts at all (404). The team of an account is fixed at creation: its keys copy it. Deleting an
account soft-deletes its keys; they stop working at once.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.pages import Page, PageQuery, paginate
from voidllm.admin.services import Services
from voidllm.admin.tenancy import (
    administered_teams,
    evict_keys,
    is_team_admin,
    live_key_count,
    live_org,
    live_team,
    name_field,
    optional_name_field,
    soft_delete_keys,
)
from voidllm.errors import NotFoundError, PermissionDeniedError
from voidllm.identity import Role
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow


@attrs.frozen(kw_only=True)
class ServiceAccountCreate:
    name: str = name_field()
    team_id: str | None = None


@attrs.frozen(kw_only=True)
class ServiceAccountUpdate:
    name: str | None = optional_name_field()


@attrs.frozen(kw_only=True)
class ServiceAccountOut:
    id: str
    name: str
    org_id: str
    team_id: str | None
    created_by: str | None
    key_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> ServiceAccountOut:
        return cls(
            id=row["id"],
            name=row["name"],
            org_id=row["org_id"],
            team_id=row["team_id"],
            created_by=row["created_by"],
            key_count=int(row["key_count"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


def _query(org_id: str) -> sa.Select[Any]:
    s = t.service_accounts
    return sa.select(s, live_key_count("service_account_id", s.c.id).label("key_count")).where(
        s.c.org_id == org_id, s.c.deleted_at.is_(None)
    )


def _managed(conn: sa.Connection, actor: Actor, org_id: str, sa_id: str) -> ServiceAccountOut:
    """The account if the actor manages its scope, else 404 ``service account not found``."""
    row = conn.execute(_query(org_id).where(t.service_accounts.c.id == sa_id)).mappings().first()
    if row is None or not _manages(conn, actor, row["team_id"]):
        raise NotFoundError("service account not found")
    return ServiceAccountOut.from_row(row)


def _manages(conn: sa.Connection, actor: Actor, team_id: str | None) -> bool:
    if team_id is None:
        return actor.role >= Role.ORG_ADMIN
    return is_team_admin(conn, actor, team_id)


# -- use cases ---------------------------------------------------------------------------------------


async def create(
    services: Services, actor: Actor, org_id: str, req: ServiceAccountCreate
) -> ServiceAccountOut:
    """Create an account: org-scoped needs an org admin, team-scoped an admin of that team."""
    actor.require_org(org_id)
    return await services.store.run(partial(_create_tx, actor=actor, org_id=org_id, req=req))


def _create_tx(
    conn: sa.Connection, *, actor: Actor, org_id: str, req: ServiceAccountCreate
) -> ServiceAccountOut:
    live_org(conn, org_id)
    if req.team_id is not None:
        live_team(conn, org_id, req.team_id)
    if not _manages(conn, actor, req.team_id):
        raise PermissionDeniedError("insufficient permissions")
    sa_id, now = new_id(), utcnow()
    conn.execute(
        t.service_accounts.insert().values(
            id=sa_id,
            name=req.name,
            org_id=org_id,
            team_id=req.team_id,
            created_by=actor.actor_id,
            created_at=now,
            updated_at=now,
        )
    )
    return _managed(conn, actor, org_id, sa_id)


async def list_accounts(
    services: Services, actor: Actor, org_id: str, page: PageQuery
) -> Page[ServiceAccountOut]:
    """The accounts the actor manages, one page (all of them for org admins)."""
    actor.require_org(org_id)
    query = _query(org_id)
    if actor.role < Role.ORG_ADMIN:
        query = query.where(t.service_accounts.c.team_id.in_(administered_teams(actor)))

    def read(conn: sa.Connection) -> Page[ServiceAccountOut]:
        live_org(conn, org_id)
        return paginate(conn, query, t.service_accounts.c.id, page, ServiceAccountOut.from_row)

    return await services.store.run(read)


async def get(services: Services, actor: Actor, org_id: str, sa_id: str) -> ServiceAccountOut:
    actor.require_org(org_id)
    return await services.store.run(_managed, actor, org_id, sa_id)


async def update(
    services: Services, actor: Actor, org_id: str, sa_id: str, req: ServiceAccountUpdate
) -> ServiceAccountOut:
    """Rename the account."""
    actor.require_org(org_id)

    def write(conn: sa.Connection) -> ServiceAccountOut:
        _managed(conn, actor, org_id, sa_id)
        if req.name is not None:
            s = t.service_accounts
            conn.execute(s.update().where(s.c.id == sa_id).values(name=req.name, updated_at=utcnow()))
        return _managed(conn, actor, org_id, sa_id)

    return await services.store.run(write)


async def delete(services: Services, actor: Actor, org_id: str, sa_id: str) -> None:
    """Soft-delete the account and its keys; the keys stop working at once."""
    actor.require_org(org_id)

    def write(conn: sa.Connection) -> list[str]:
        _managed(conn, actor, org_id, sa_id)
        now, s = utcnow(), t.service_accounts
        conn.execute(s.update().where(s.c.id == sa_id).values(deleted_at=now, updated_at=now))
        return soft_delete_keys(conn, now, t.api_keys.c.service_account_id == sa_id)

    hashes = await services.store.run(write)
    await evict_keys(services, hashes, service_account_id=sa_id)
