"""Organisations: create, list, read, change, delete, deactivate and reactivate (docs/reference/behaviour.md
1.6).

Creating, deleting, deactivating and reactivating are system-admin actions; org admins read and change
their own organisation only. An organisation's limits are a ceiling set from above: only system admins
change them; an org admin changes the name, slug and timezone (403 naming the field for a limit). Limits
are copied into every cached key identity, so a limit change reloads the key cache at once. Deleting
soft-deletes the organisation (its slug tombstoned, so it can be reused) and every key of it, and evicts
those keys at once; the policies of the organisation, its teams and its keys are deleted. Deactivating (not
in the Go original) keeps everything but makes every key of the organisation fail authentication at once;
reactivating makes them work again.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.pages import Page, PageQuery, paginate
from voidllm.admin.services import Services
from voidllm.admin.tenancy import (
    LIMIT_FIELDS,
    count_of,
    evict_keys,
    limit_field,
    live_org,
    name_field,
    optional_limit_field,
    optional_name_field,
    reload_keys,
    run_unique,
    set_fields,
    slug_field,
    soft_delete_keys,
    tombstone,
)
from voidllm.errors import BadRequestError, PermissionDeniedError
from voidllm.identity import Role
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow
from voidllm.store.policies import delete_policies

_SLUG_TAKEN = "an organization with this slug already exists"


def _optional_timezone(value: str | None) -> str | None:
    return None if value is None else _check_timezone(value)


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequestError("timezone must be an IANA time zone name, e.g. Europe/Berlin") from None
    return value


@attrs.frozen(kw_only=True)
class OrgCreate:
    name: str = name_field()
    slug: str = slug_field()
    timezone: str = attrs.field(default="UTC", converter=_check_timezone)
    daily_token_limit: int = limit_field()
    monthly_token_limit: int = limit_field()
    requests_per_minute: int = limit_field()
    requests_per_day: int = limit_field()


@attrs.frozen(kw_only=True)
class OrgUpdate:
    """PATCH body: every field optional; ``None`` leaves it unchanged."""

    name: str | None = optional_name_field()
    slug: str | None = slug_field(optional=True)
    timezone: str | None = attrs.field(default=None, converter=_optional_timezone)
    daily_token_limit: int | None = optional_limit_field()
    monthly_token_limit: int | None = optional_limit_field()
    requests_per_minute: int | None = optional_limit_field()
    requests_per_day: int | None = optional_limit_field()


@attrs.frozen(kw_only=True)
class OrgOut:
    id: str
    name: str
    slug: str
    timezone: str
    daily_token_limit: int
    monthly_token_limit: int
    requests_per_minute: int
    requests_per_day: int
    is_active: bool
    member_count: int
    team_count: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> OrgOut:
        return cls(
            id=row["id"],
            name=row["name"],
            slug=row["slug"],
            timezone=row["timezone"],
            **{name: int(row[name]) for name in LIMIT_FIELDS},
            is_active=bool(row["is_active"]),
            member_count=int(row["member_count"]),
            team_count=int(row["team_count"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            deleted_at=row["deleted_at"],
        )


def _org_query() -> sa.Select[Any]:
    o, m, tm = t.organizations, t.org_memberships, t.teams
    return sa.select(
        o,
        count_of(m, m.c.org_id == o.c.id).label("member_count"),
        count_of(tm, tm.c.org_id == o.c.id, tm.c.deleted_at.is_(None)).label("team_count"),
    ).where(o.c.deleted_at.is_(None))


def read_org(conn: sa.Connection, org_id: str) -> OrgOut:
    """The organisation as the API shows it (404 when missing or deleted)."""
    row = conn.execute(_org_query().where(t.organizations.c.id == org_id)).mappings().first()
    if row is None:
        live_org(conn, org_id)  # raises the 404
    return OrgOut.from_row(row)


# -- use cases ---------------------------------------------------------------------------------------


async def create(services: Services, actor: Actor, req: OrgCreate) -> OrgOut:
    """Create an organisation (system admin); 409 when the slug is taken."""
    actor.require(Role.SYSTEM_ADMIN)
    return await run_unique(services, partial(_create_tx, req=req), _SLUG_TAKEN)


def _create_tx(conn: sa.Connection, *, req: OrgCreate) -> OrgOut:
    org_id, now = new_id(), utcnow()
    conn.execute(
        t.organizations.insert().values(
            id=org_id,
            name=req.name,
            slug=req.slug,
            timezone=req.timezone,
            created_at=now,
            updated_at=now,
            **{name: getattr(req, name) for name in LIMIT_FIELDS},
        )
    )
    return read_org(conn, org_id)


async def list_orgs(services: Services, actor: Actor, page: PageQuery) -> Page[OrgOut]:
    """Organisations, one page: all of them for system admins, the own one for org admins."""
    actor.require(Role.ORG_ADMIN)
    query = _org_query()
    if not actor.is_system_admin:
        query = query.where(t.organizations.c.id == actor.org_id)
    return await services.store.run(
        lambda conn: paginate(conn, query, t.organizations.c.id, page, OrgOut.from_row)
    )


async def get(services: Services, actor: Actor, org_id: str) -> OrgOut:
    """One organisation (org admins: only their own)."""
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)
    return await services.store.run(read_org, org_id)


async def update(services: Services, actor: Actor, org_id: str, req: OrgUpdate) -> OrgOut:
    """Change name, slug or timezone (org admins) or limits (system admins); a limit change reaches the key
    cache at once."""
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)
    values = set_fields(req, ("name", "slug", "timezone", *LIMIT_FIELDS))
    limits = [name for name in LIMIT_FIELDS if name in values]
    if limits and not actor.is_system_admin:
        fields = ", ".join(limits)
        raise PermissionDeniedError(f"an organization's limits are set by a system admin ({fields})")
    out = await run_unique(services, partial(_update_tx, org_id=org_id, values=values), _SLUG_TAKEN)
    if any(name in values for name in LIMIT_FIELDS):
        await reload_keys(services)
    return out


def _update_tx(conn: sa.Connection, *, org_id: str, values: dict[str, Any]) -> OrgOut:
    live_org(conn, org_id)
    if values:
        o = t.organizations
        conn.execute(o.update().where(o.c.id == org_id).values(**values, updated_at=utcnow()))
    return read_org(conn, org_id)


async def delete(services: Services, actor: Actor, org_id: str) -> None:
    """Soft-delete the organisation and its keys (system admin); the keys stop working at once."""
    actor.require(Role.SYSTEM_ADMIN)
    _refuse_own_org(actor, org_id, "delete")
    hashes = await services.store.run(_delete_tx, org_id)
    await evict_keys(services, hashes, org_id=org_id)


def _delete_tx(conn: sa.Connection, org_id: str) -> list[str]:
    row, now = live_org(conn, org_id), utcnow()
    o = t.organizations
    gone = dict(slug=tombstone(row["slug"], org_id), deleted_at=now, updated_at=now)
    conn.execute(o.update().where(o.c.id == org_id).values(**gone))
    delete_policies(conn, "org", [org_id])
    delete_policies(conn, "team", sa.select(t.teams.c.id).where(t.teams.c.org_id == org_id))
    return soft_delete_keys(conn, now, t.api_keys.c.org_id == org_id)


async def deactivate(services: Services, actor: Actor, org_id: str) -> OrgOut:
    """Suspend the organisation (system admin): every key of it stops working at once."""
    actor.require(Role.SYSTEM_ADMIN)
    _refuse_own_org(actor, org_id, "deactivate")
    out = await services.store.run(_set_active_tx, org_id, False)
    await evict_keys(services, org_id=org_id)
    return out


async def reactivate(services: Services, actor: Actor, org_id: str) -> OrgOut:
    """Lift a suspension (system admin): the organisation's live keys work again at once."""
    actor.require(Role.SYSTEM_ADMIN)
    out = await services.store.run(_set_active_tx, org_id, True)
    await reload_keys(services)
    return out


def _set_active_tx(conn: sa.Connection, org_id: str, active: bool) -> OrgOut:
    live_org(conn, org_id)
    o = t.organizations
    conn.execute(o.update().where(o.c.id == org_id).values(is_active=active, updated_at=utcnow()))
    return read_org(conn, org_id)


def _refuse_own_org(actor: Actor, org_id: str, verb: str) -> None:
    """A system admin cannot lock themselves out through the key they are using."""
    if actor.org_id == org_id:
        raise BadRequestError(f"cannot {verb} the organization of the key making this request")
