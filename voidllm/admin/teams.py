"""Teams of an organisation (docs/reference/behaviour.md 1.6).

Org admins create and delete teams and see all of them. Below org admin, a caller sees only the teams it
belongs to (others answer 404 ``team not found``), and changes a team's name and slug only as its admin (a
team-scoped key, or a user whose team role is ``team_admin``). A team's limits are a ceiling set from above:
only org admins (and system admins) change them; a team admin sending one gets 403 naming the field. Team
limits are copied into cached key identities, so a limit change reloads the key cache at once. Deleting
soft-deletes the team (slug tombstoned), its service accounts and every key bound to it; those keys stop
working at once. The policies of the team and of those keys are deleted with them.
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
    LIMIT_FIELDS,
    count_of,
    evict_keys,
    is_team_admin,
    is_team_member,
    joined_teams,
    limit_field,
    live_key_count,
    live_org,
    live_team,
    name_field,
    optional_limit_field,
    optional_name_field,
    reload_keys,
    run_unique,
    set_fields,
    slug_field,
    slug_from,
    soft_delete_keys,
    tombstone,
)
from voidllm.errors import NotFoundError, PermissionDeniedError
from voidllm.identity import Role
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow
from voidllm.store.policies import delete_policies

_SLUG_TAKEN = "a team with this slug already exists in this organization"


@attrs.frozen(kw_only=True)
class TeamCreate:
    """``slug`` defaults to one derived from ``name``."""

    name: str = name_field()
    slug: str | None = slug_field(optional=True)
    daily_token_limit: int = limit_field()
    monthly_token_limit: int = limit_field()
    requests_per_minute: int = limit_field()
    requests_per_day: int = limit_field()


@attrs.frozen(kw_only=True)
class TeamUpdate:
    name: str | None = optional_name_field()
    slug: str | None = slug_field(optional=True)
    daily_token_limit: int | None = optional_limit_field()
    monthly_token_limit: int | None = optional_limit_field()
    requests_per_minute: int | None = optional_limit_field()
    requests_per_day: int | None = optional_limit_field()


@attrs.frozen(kw_only=True)
class TeamOut:
    id: str
    org_id: str
    name: str
    slug: str
    daily_token_limit: int
    monthly_token_limit: int
    requests_per_minute: int
    requests_per_day: int
    member_count: int
    key_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> TeamOut:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            name=row["name"],
            slug=row["slug"],
            **{name: int(row[name]) for name in LIMIT_FIELDS},
            member_count=int(row["member_count"]),
            key_count=int(row["key_count"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


def _team_query(org_id: str) -> sa.Select[Any]:
    tm, m = t.teams, t.team_memberships
    return sa.select(
        tm,
        count_of(m, m.c.team_id == tm.c.id).label("member_count"),
        live_key_count("team_id", tm.c.id).label("key_count"),
    ).where(tm.c.org_id == org_id, tm.c.deleted_at.is_(None))


def _read(conn: sa.Connection, org_id: str, team_id: str) -> TeamOut:
    row = conn.execute(_team_query(org_id).where(t.teams.c.id == team_id)).mappings().first()
    if row is None:
        raise NotFoundError("team not found")
    return TeamOut.from_row(row)


def _visible(conn: sa.Connection, actor: Actor, org_id: str, team_id: str) -> sa.RowMapping:
    """The team, or 404 ``team not found`` when missing or not the actor's (docs/reference/behaviour.md
    1.6)."""
    row = live_team(conn, org_id, team_id)
    if not is_team_member(conn, actor, team_id):
        raise NotFoundError("team not found")
    return row


# -- use cases ---------------------------------------------------------------------------------------


async def create(services: Services, actor: Actor, org_id: str, req: TeamCreate) -> TeamOut:
    """Create a team (org admins of the organisation); 409 when the slug is taken in it."""
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)
    return await run_unique(services, partial(_create_tx, org_id=org_id, req=req), _SLUG_TAKEN)


def _create_tx(conn: sa.Connection, *, org_id: str, req: TeamCreate) -> TeamOut:
    live_org(conn, org_id)
    team_id, now = new_id(), utcnow()
    conn.execute(
        t.teams.insert().values(
            id=team_id,
            org_id=org_id,
            name=req.name,
            slug=req.slug or slug_from(req.name),
            created_at=now,
            updated_at=now,
            **{name: getattr(req, name) for name in LIMIT_FIELDS},
        )
    )
    return _read(conn, org_id, team_id)


async def list_teams(services: Services, actor: Actor, org_id: str, page: PageQuery) -> Page[TeamOut]:
    """The organisation's teams, one page: all for org admins, else the caller's own."""
    actor.require_org(org_id)
    query = _team_query(org_id)
    if actor.role < Role.ORG_ADMIN:
        query = query.where(t.teams.c.id.in_(joined_teams(actor)))

    def read(conn: sa.Connection) -> Page[TeamOut]:
        live_org(conn, org_id)
        return paginate(conn, query, t.teams.c.id, page, TeamOut.from_row)

    return await services.store.run(read)


async def get(services: Services, actor: Actor, org_id: str, team_id: str) -> TeamOut:
    actor.require_org(org_id)

    def read(conn: sa.Connection) -> TeamOut:
        _visible(conn, actor, org_id, team_id)
        return _read(conn, org_id, team_id)

    return await services.store.run(read)


async def update(services: Services, actor: Actor, org_id: str, team_id: str, req: TeamUpdate) -> TeamOut:
    """Change name or slug (the team's admins) or limits (org admins); a limit change reaches the key cache
    at once."""
    actor.require_org(org_id)
    values = set_fields(req, ("name", "slug", *LIMIT_FIELDS))
    write = partial(_update_tx, actor=actor, org_id=org_id, team_id=team_id, values=values)
    out = await run_unique(services, write, _SLUG_TAKEN)
    if any(name in values for name in LIMIT_FIELDS):
        await reload_keys(services)
    return out


def _update_tx(
    conn: sa.Connection, *, actor: Actor, org_id: str, team_id: str, values: dict[str, Any]
) -> TeamOut:
    _visible(conn, actor, org_id, team_id)
    if not is_team_admin(conn, actor, team_id):
        raise PermissionDeniedError("insufficient permissions")
    limits = [name for name in LIMIT_FIELDS if name in values]
    if limits and actor.role < Role.ORG_ADMIN:
        raise PermissionDeniedError(f"a team's limits are set by an org admin ({', '.join(limits)})")
    if values:
        conn.execute(t.teams.update().where(t.teams.c.id == team_id).values(**values, updated_at=utcnow()))
    return _read(conn, org_id, team_id)


async def delete(services: Services, actor: Actor, org_id: str, team_id: str) -> None:
    """Soft-delete the team, its service accounts and its keys (org admins); the keys stop working at once."""
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)
    hashes = await services.store.run(partial(_delete_tx, org_id=org_id, team_id=team_id))
    await evict_keys(services, hashes, team_id=team_id)


def _delete_tx(conn: sa.Connection, *, org_id: str, team_id: str) -> list[str]:
    row, now = live_team(conn, org_id, team_id), utcnow()
    tm, sa_ = t.teams, t.service_accounts
    gone = dict(slug=tombstone(row["slug"], team_id), deleted_at=now, updated_at=now)
    conn.execute(tm.update().where(tm.c.id == team_id).values(**gone))
    accounts = sa.select(sa_.c.id).where(sa_.c.team_id == team_id)
    hashes = soft_delete_keys(
        conn, now, sa.or_(t.api_keys.c.team_id == team_id, t.api_keys.c.service_account_id.in_(accounts))
    )
    live_accounts = sa_.update().where(sa_.c.team_id == team_id, sa_.c.deleted_at.is_(None))
    conn.execute(live_accounts.values(deleted_at=now, updated_at=now))
    delete_policies(conn, "team", [team_id])  # its keys' went with them (soft_delete_keys)
    return hashes
