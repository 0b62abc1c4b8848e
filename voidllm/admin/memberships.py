"""Organisation and team memberships (docs/reference/behaviour.md 1.6).

Org memberships are managed by org admins of the organisation (role ``org_admin`` or ``member``). A user key
acts with its user's org role (docs/reference/behaviour.md 4), so changing a role reloads the key cache at
once.

Adding an existing account to an organisation directly is for system admins only: an org admin gets 403 and
sends an invite instead (``POST /api/v1/orgs/{org_id}/invites``), which the account's user accepts or declines
while signed in (:mod:`voidllm.admin.invites`). Otherwise an org admin could attach another organisation's
user to their own and, as an admin of every organisation of that user, take the account over.

Team memberships are managed by the team's admins: org admins, the team's own team-scoped keys, and users
whose membership role in the team is ``team_admin``. The user must already belong to the organisation, and
only the team roles ``team_admin`` and ``member`` exist here: no team route can grant an org role.

Removing a member revokes what the membership granted: leaving an organisation soft-deletes the user's keys
in it (user and session keys) and their team memberships there; leaving a team soft-deletes the user's keys
bound to that team. Those keys stop working at once. The user account itself is untouched.
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
    evict_keys,
    is_team_admin,
    is_team_member,
    live_org,
    live_team,
    org_role,
    reload_keys,
    run_unique,
    soft_delete_keys,
)
from voidllm.errors import BadRequestError, NotFoundError, PermissionDeniedError
from voidllm.identity import Role
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow

ORG_ROLES = ("org_admin", "member")
TEAM_ROLES = ("team_admin", "member")


def _org_role(value: str) -> str:
    if value not in ORG_ROLES:
        raise BadRequestError("role must be one of: org_admin, member")
    return value


def _team_role(value: str) -> str:
    if value not in TEAM_ROLES:
        raise BadRequestError("role must be one of: team_admin, member (org roles are not granted by teams)")
    return value


@attrs.frozen(kw_only=True)
class OrgMemberCreate:
    user_id: str
    role: str = attrs.field(default="member", converter=_org_role)


@attrs.frozen(kw_only=True)
class OrgMemberUpdate:
    role: str = attrs.field(converter=_org_role)


@attrs.frozen(kw_only=True)
class TeamMemberCreate:
    user_id: str
    role: str = attrs.field(default="member", converter=_team_role)


@attrs.frozen(kw_only=True)
class TeamMemberUpdate:
    role: str = attrs.field(converter=_team_role)


@attrs.frozen(kw_only=True)
class MemberOut:
    """A membership with the member's email and display name; ``team_id`` is set for team memberships."""

    id: str
    org_id: str
    user_id: str
    role: str
    email: str
    display_name: str
    created_at: datetime
    updated_at: datetime
    team_id: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> MemberOut:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            team_id=row.get("team_id"),
            user_id=row["user_id"],
            role=row["role"],
            email=row["email"],
            display_name=row["display_name"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


def _org_members() -> sa.Select[Any]:
    m, u = t.org_memberships, t.users
    return (
        sa.select(m, u.c.email, u.c.display_name)
        .select_from(m.join(u, u.c.id == m.c.user_id))
        .where(u.c.deleted_at.is_(None))
    )


def _team_members() -> sa.Select[Any]:
    m, u, tm = t.team_memberships, t.users, t.teams
    return (
        sa.select(m, tm.c.org_id, u.c.email, u.c.display_name)
        .select_from(m.join(u, u.c.id == m.c.user_id).join(tm, tm.c.id == m.c.team_id))
        .where(u.c.deleted_at.is_(None))
    )


def _one(conn: sa.Connection, query: sa.Select[Any]) -> MemberOut:
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFoundError("membership not found")
    return MemberOut.from_row(row)


def _live_user(conn: sa.Connection, user_id: str) -> None:
    u = t.users
    if conn.execute(sa.select(u.c.id).where(u.c.id == user_id, u.c.deleted_at.is_(None))).first() is None:
        raise NotFoundError("user not found")


def _org_admin(actor: Actor, org_id: str) -> None:
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)


# -- organisation memberships -----------------------------------------------------------------------


async def add_org_member(services: Services, actor: Actor, org_id: str, req: OrgMemberCreate) -> MemberOut:
    """Add an existing user to the organisation (system admins only); 409 when already a member.

    No key-cache work: a user has no live keys in an organisation before joining it (leaving deletes them).
    """
    _org_admin(actor, org_id)
    if not actor.is_system_admin:
        raise PermissionDeniedError(
            f"only system admins add existing users directly; send an invite instead "
            f"(POST /api/v1/orgs/{org_id}/invites)"
        )
    write = partial(_add_org_member_tx, org_id=org_id, req=req)
    return await run_unique(services, write, "user is already a member of this organization")


def _add_org_member_tx(conn: sa.Connection, *, org_id: str, req: OrgMemberCreate) -> MemberOut:
    live_org(conn, org_id)
    _live_user(conn, req.user_id)
    membership_id, now = new_id(), utcnow()
    conn.execute(
        t.org_memberships.insert().values(
            id=membership_id,
            org_id=org_id,
            user_id=req.user_id,
            role=req.role,
            created_at=now,
            updated_at=now,
        )
    )
    return _one(conn, _org_members().where(t.org_memberships.c.id == membership_id))


async def list_org_members(services: Services, actor: Actor, org_id: str, page: PageQuery) -> Page[MemberOut]:
    _org_admin(actor, org_id)

    def read(conn: sa.Connection) -> Page[MemberOut]:
        live_org(conn, org_id)
        query = _org_members().where(t.org_memberships.c.org_id == org_id)
        return paginate(conn, query, t.org_memberships.c.id, page, MemberOut.from_row)

    return await services.store.run(read)


async def get_org_member(services: Services, actor: Actor, org_id: str, membership_id: str) -> MemberOut:
    _org_admin(actor, org_id)
    m = t.org_memberships
    query = _org_members().where(m.c.id == membership_id, m.c.org_id == org_id)
    return await services.store.run(_one, query)


async def update_org_member(
    services: Services, actor: Actor, org_id: str, membership_id: str, req: OrgMemberUpdate
) -> MemberOut:
    """Change the member's org role; the user's keys act with the new role at once."""
    _org_admin(actor, org_id)
    write = partial(_update_org_member_tx, org_id=org_id, membership_id=membership_id, role=req.role)
    out = await services.store.run(write)
    await reload_keys(services)
    return out


def _update_org_member_tx(conn: sa.Connection, *, org_id: str, membership_id: str, role: str) -> MemberOut:
    m = t.org_memberships
    query = _org_members().where(m.c.id == membership_id, m.c.org_id == org_id)
    _one(conn, query)
    conn.execute(m.update().where(m.c.id == membership_id).values(role=role, updated_at=utcnow()))
    return _one(conn, query)


async def remove_org_member(services: Services, actor: Actor, org_id: str, membership_id: str) -> None:
    """Remove the member: their team memberships in the organisation go, their keys in it are revoked."""
    _org_admin(actor, org_id)
    user_id, hashes = await services.store.run(
        partial(_remove_org_member_tx, actor=actor, org_id=org_id, membership_id=membership_id)
    )
    await evict_keys(services, hashes, org_id=org_id, user_id=user_id)


def _remove_org_member_tx(
    conn: sa.Connection, *, actor: Actor, org_id: str, membership_id: str
) -> tuple[str, list[str]]:
    m, tm, teams, k = t.org_memberships, t.team_memberships, t.teams, t.api_keys
    user_id = conn.execute(
        sa.select(m.c.user_id).where(m.c.id == membership_id, m.c.org_id == org_id)
    ).scalar()
    if user_id is None:
        raise NotFoundError("membership not found")
    if user_id == actor.user_id:
        raise BadRequestError("cannot remove your own membership")
    org_teams = sa.select(teams.c.id).where(teams.c.org_id == org_id)
    conn.execute(tm.delete().where(tm.c.user_id == user_id, tm.c.team_id.in_(org_teams)))
    conn.execute(m.delete().where(m.c.id == membership_id))
    return user_id, soft_delete_keys(conn, utcnow(), k.c.org_id == org_id, k.c.user_id == user_id)


# -- team memberships -----------------------------------------------------------------------------


def _team_admin_scope(conn: sa.Connection, actor: Actor, org_id: str, team_id: str) -> None:
    """404 unless the team exists and the actor may see it; 403 unless the actor administers it."""
    live_team(conn, org_id, team_id)
    if not is_team_member(conn, actor, team_id):
        raise NotFoundError("team not found")
    if not is_team_admin(conn, actor, team_id):
        raise PermissionDeniedError("insufficient permissions")


async def add_team_member(
    services: Services, actor: Actor, org_id: str, team_id: str, req: TeamMemberCreate
) -> MemberOut:
    """Add an organisation member to the team; 409 when already in it."""
    actor.require_org(org_id)
    write = partial(_add_team_member_tx, actor=actor, org_id=org_id, team_id=team_id, req=req)
    return await run_unique(services, write, "user is already a member of this team")


def _add_team_member_tx(
    conn: sa.Connection, *, actor: Actor, org_id: str, team_id: str, req: TeamMemberCreate
) -> MemberOut:
    _team_admin_scope(conn, actor, org_id, team_id)
    if org_role(conn, org_id, req.user_id) is None:
        raise BadRequestError("user is not a member of this organization")
    membership_id, now = new_id(), utcnow()
    conn.execute(
        t.team_memberships.insert().values(
            id=membership_id,
            team_id=team_id,
            user_id=req.user_id,
            role=req.role,
            created_at=now,
            updated_at=now,
        )
    )
    return _one(conn, _team_members().where(t.team_memberships.c.id == membership_id))


async def list_team_members(
    services: Services, actor: Actor, org_id: str, team_id: str, page: PageQuery
) -> Page[MemberOut]:
    actor.require_org(org_id)

    def read(conn: sa.Connection) -> Page[MemberOut]:
        _team_admin_scope(conn, actor, org_id, team_id)
        query = _team_members().where(t.team_memberships.c.team_id == team_id)
        return paginate(conn, query, t.team_memberships.c.id, page, MemberOut.from_row)

    return await services.store.run(read)


def _team_member_query(team_id: str, membership_id: str) -> sa.Select[Any]:
    m = t.team_memberships
    return _team_members().where(m.c.id == membership_id, m.c.team_id == team_id)


async def get_team_member(
    services: Services, actor: Actor, org_id: str, team_id: str, membership_id: str
) -> MemberOut:
    actor.require_org(org_id)

    def read(conn: sa.Connection) -> MemberOut:
        _team_admin_scope(conn, actor, org_id, team_id)
        return _one(conn, _team_member_query(team_id, membership_id))

    return await services.store.run(read)


async def update_team_member(
    services: Services, actor: Actor, org_id: str, team_id: str, membership_id: str, req: TeamMemberUpdate
) -> MemberOut:
    """Change the member's team role (``team_admin`` or ``member``)."""
    actor.require_org(org_id)

    def write(conn: sa.Connection) -> MemberOut:
        _team_admin_scope(conn, actor, org_id, team_id)
        query = _team_member_query(team_id, membership_id)
        _one(conn, query)
        m = t.team_memberships
        conn.execute(m.update().where(m.c.id == membership_id).values(role=req.role, updated_at=utcnow()))
        return _one(conn, query)

    return await services.store.run(write)


async def remove_team_member(
    services: Services, actor: Actor, org_id: str, team_id: str, membership_id: str
) -> None:
    """Remove the member from the team; their keys bound to the team are revoked at once."""
    actor.require_org(org_id)

    def write(conn: sa.Connection) -> list[str]:
        _team_admin_scope(conn, actor, org_id, team_id)
        member = _one(conn, _team_member_query(team_id, membership_id))
        m, k = t.team_memberships, t.api_keys
        conn.execute(m.delete().where(m.c.id == membership_id))
        return soft_delete_keys(conn, utcnow(), k.c.team_id == team_id, k.c.user_id == member.user_id)

    hashes = await services.store.run(write)
    await evict_keys(services, hashes)
