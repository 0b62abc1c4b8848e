"""Users (docs/reference/behaviour.md 1.6 "users") and the caller's own account (``/me``).

Who may change an account (name, email, password, system-admin flag), decided by :func:`update_user`:

- the user itself, with any of its keys or sessions; a change of ``password`` or ``email`` needs the
  correct ``current_password`` in the body (400 "current password is incorrect" otherwise). The
  system-admin flag is never changed this way;
- a system admin: anything, without a current password, except removing their own system-admin flag;
- an org admin of *every* (live) organisation the user belongs to. "Org admin of X" means the caller's key
  acts with the org-admin role in X, or the calling user's membership role in X is ``org_admin``. Anyone
  else gets 403 ("this account also belongs to another organization ..."): an account shared with another
  organisation is that organisation's too, so one of its admins alone cannot take it over. A user without
  any membership, and a system admin, are changed only by themselves or a system admin.

Scope rules: org admins see only users with a membership in their own organisation (others are 404, as if
they did not exist), and cannot grant system-admin rights; listing every user and deleting users are for
system admins. An existing account joins another organisation through an invite it accepts
(:mod:`voidllm.admin.invites`), never by an org admin's decision alone.

Roles: a user is created with an organisation membership whose role is ``org_admin`` or ``member``.
``team_admin`` is accepted for compatibility with the Go API but stored as ``member``: team roles belong to
team memberships, and an org membership of ``team_admin`` would give a key no rights beyond a member's.

A user's ``org_id`` and ``role`` in responses are those of their membership in the caller's organisation for
org admins and the user itself, and of their first membership otherwise.

Bounds (declared with :mod:`voidllm.bounds`, checked by the admin codec: a 400 naming the field): ``email``
at most 254 characters, ``display_name`` 256, passwords 1,024.

Deleting a user soft-deletes the row with a tombstoned email (so the address can be used again), removes
their org and team memberships, revokes all their keys, and evicts those keys from the cache at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.pages import Page, PageQuery, paginate
from voidllm.admin.services import Services
from voidllm.admin.tenancy import org_role
from voidllm.auth.loader import load_live_key
from voidllm.auth.passwords import validate_password
from voidllm.auth.sessions import (
    SESSION_KEY_TYPE,
    forget_keys,
    hash_password_off_loop,
    revoke_keys,
    verify_password_off_loop,
)
from voidllm.bounds import NAME, TEXT, Bounds, bounded
from voidllm.bus import TOPIC_KEYS
from voidllm.errors import BadRequestError, ConflictError, NotFoundError, PermissionDeniedError
from voidllm.identity import KeyIdentity, Role
from voidllm.store import tables as t
from voidllm.store.errors import StoreIntegrityError
from voidllm.store.ids import new_id, utcnow

ORG_ROLES = ("member", "org_admin")
_CREATE_ROLES = {"member": "member", "team_admin": "member", "org_admin": "org_admin"}
_TOMBSTONE = ":deleted:"
MAX_EMAIL = 254
MAX_DISPLAY_NAME = NAME.max_length or 256
EMAIL = Bounds(max_length=MAX_EMAIL)
"""An email address (RFC 5321's limit); display names are :data:`voidllm.bounds.NAME`, passwords
:data:`voidllm.bounds.TEXT` (1,024 characters, as ``voidllm.auth.passwords``)."""
_ELSEWHERE = "this account also belongs to another organization; only a system admin can change it"


@attrs.frozen
class UserCreate:
    email: str = bounded(EMAIL)
    password: str = bounded(TEXT, repr=False)
    display_name: str = bounded(NAME, default="")
    is_system_admin: bool = False
    org_id: str | None = None
    role: str = "member"


@attrs.frozen
class UserUpdate:
    """Fields left out (or ``null``) stay unchanged. ``password`` is the new password (an administrator's
    reset, or the user's own change); ``current_password`` proves a self-service change of password or email.
    """

    display_name: str | None = bounded(NAME, default=None)
    email: str | None = bounded(EMAIL, default=None)
    is_system_admin: bool | None = None
    password: str | None = bounded(TEXT, default=None, repr=False)
    current_password: str | None = bounded(TEXT, default=None, repr=False)


@attrs.frozen
class UserOut:
    id: str
    email: str
    display_name: str
    is_system_admin: bool
    auth_provider: str
    org_id: str | None
    role: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(
        cls, row: Mapping[str, Any] | sa.RowMapping, membership: Mapping[str, Any] | sa.RowMapping | None
    ) -> UserOut:
        return cls(
            id=row["id"],
            email=row["email"],
            display_name=row["display_name"],
            is_system_admin=bool(row["is_system_admin"]),
            auth_provider=row["auth_provider"],
            org_id=membership["org_id"] if membership else None,
            role=membership["role"] if membership else None,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@attrs.frozen
class MeOut:
    """``team_admin_of``: the teams of ``org_id`` where the user's team role is ``team_admin``. A user key's
    ``role`` is its org role, never ``team_admin`` (docs/reference/behaviour.md 4), so this is how a client
    knows it may administer some teams (the web UI shows them Teams)."""

    id: str
    email: str
    display_name: str
    role: str
    org_id: str
    is_system_admin: bool
    team_admin_of: list[str]


@attrs.frozen
class PasswordChange:
    current_password: str = bounded(TEXT, repr=False)
    new_password: str = bounded(TEXT, repr=False)


@attrs.frozen
class ModelBrief:
    name: str
    type: str


@attrs.frozen
class AvailableModels:
    models: list[ModelBrief]


# -- validation -------------------------------------------------------------------------------------


def normalize_email(raw: str) -> str:
    """``raw`` trimmed and lower-cased; 400 unless it looks like an address (and has no ``:deleted:``)."""
    email = raw.strip().lower()
    local, at, domain = email.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(email) > MAX_EMAIL
        or _TOMBSTONE in email
        or any(c.isspace() for c in email)
    ):
        raise BadRequestError("invalid email address")
    return email


def clean_display_name(raw: str) -> str:
    """``raw`` trimmed; 400 when longer than 256 characters."""
    name = raw.strip()
    if len(name) > MAX_DISPLAY_NAME:
        raise BadRequestError(f"display_name must be at most {MAX_DISPLAY_NAME} characters")
    return name


def _duplicate_email() -> ConflictError:
    return ConflictError("a user with this email already exists")


# -- queries shared with sessions and invites --------------------------------------------------------


def live_user(conn: sa.Connection, *where: sa.ColumnElement[bool]) -> sa.RowMapping | None:
    return conn.execute(sa.select(t.users).where(t.users.c.deleted_at.is_(None), *where)).mappings().first()


def membership(conn: sa.Connection, user_id: str, org_id: str | None = None) -> sa.RowMapping | None:
    """The user's membership in ``org_id``, or else their first (by creation) in a live organisation."""
    m, o = t.org_memberships, t.organizations
    query = (
        sa.select(m.c.org_id, m.c.role)
        .select_from(m.join(o, o.c.id == m.c.org_id))
        .where(m.c.user_id == user_id, o.c.deleted_at.is_(None))
        .order_by(m.c.created_at, m.c.id)
        .limit(1)
    )
    if org_id is not None:
        query = query.where(m.c.org_id == org_id)
    return conn.execute(query).mappings().first()


def email_taken(conn: sa.Connection, email: str) -> bool:
    return conn.execute(sa.select(t.users.c.id).where(t.users.c.email == email)).first() is not None


def reload_user_keys(conn: sa.Connection, user_id: str, now: datetime) -> list[tuple[str, KeyIdentity]]:
    """Fresh cache entries for every live key of the user (after their role changed)."""
    ids = conn.execute(
        sa.select(t.api_keys.c.id).where(t.api_keys.c.user_id == user_id, t.api_keys.c.deleted_at.is_(None))
    ).scalars()
    return [entry for key_id in ids if (entry := load_live_key(conn, key_id, now=now)) is not None]


def _scope(actor: Actor) -> str | None:
    """The organisation an actor's user views are limited to (``None``: all of them)."""
    return None if actor.is_system_admin else actor.org_id


def _visible_user(conn: sa.Connection, user_id: str, scope: str | None) -> tuple[sa.RowMapping, Any]:
    user = live_user(conn, t.users.c.id == user_id)
    member = membership(conn, user_id, scope) if user is not None else None
    if user is None or (scope is not None and member is None):
        raise NotFoundError("user not found")
    return user, member


# -- users ------------------------------------------------------------------------------------------


async def create_user(services: Services, actor: Actor, req: UserCreate) -> UserOut:
    """Create a local user with a membership in ``req.org_id`` (default: the actor's organisation)."""
    actor.require(Role.ORG_ADMIN)
    if req.is_system_admin and not actor.is_system_admin:
        raise PermissionDeniedError("only system admins can create system admins")
    org_id = req.org_id or actor.org_id
    if org_id is None:
        raise BadRequestError("org_id is required")
    actor.require_org(org_id)
    role = _CREATE_ROLES.get(req.role)
    if role is None:
        raise BadRequestError("role must be one of member, team_admin, org_admin")
    email, name = normalize_email(req.email), clean_display_name(req.display_name)
    validate_password(req.password)
    password_hash = await hash_password_off_loop(req.password)
    values = dict(
        id=new_id(),
        email=email,
        display_name=name,
        password_hash=password_hash,
        auth_provider="local",
        is_system_admin=req.is_system_admin,
    )
    try:
        write = partial(_create_tx, values=values, org_id=org_id, role=role, now=utcnow())
        row = await services.store.run(write)
    except StoreIntegrityError as exc:
        raise _duplicate_email() from exc
    return UserOut.from_row(row, {"org_id": org_id, "role": role})


def _create_tx(conn: sa.Connection, *, values: dict[str, Any], org_id: str, role: str, now: datetime) -> Any:
    o = t.organizations
    if conn.execute(sa.select(o.c.id).where(o.c.id == org_id, o.c.deleted_at.is_(None))).first() is None:
        raise NotFoundError("organization not found")
    if email_taken(conn, values["email"]):
        raise _duplicate_email()
    conn.execute(t.users.insert().values(**values, created_at=now, updated_at=now))
    conn.execute(
        t.org_memberships.insert().values(
            id=new_id(), org_id=org_id, user_id=values["id"], role=role, created_at=now, updated_at=now
        )
    )
    return live_user(conn, t.users.c.id == values["id"])


async def list_users(services: Services, actor: Actor, page: PageQuery) -> Page[UserOut]:
    """Every live user (system admins only)."""
    actor.require(Role.SYSTEM_ADMIN)
    return await services.store.run(partial(_list_tx, page=page))


def _list_tx(conn: sa.Connection, *, page: PageQuery) -> Page[UserOut]:
    u, m, o = t.users, t.org_memberships, t.organizations
    rows = paginate(conn, sa.select(u).where(u.c.deleted_at.is_(None)), u.c.id, page, dict)
    firsts: dict[str, Any] = {}
    for member in conn.execute(
        sa.select(m.c.user_id, m.c.org_id, m.c.role)
        .select_from(m.join(o, o.c.id == m.c.org_id))
        .where(m.c.user_id.in_([row["id"] for row in rows.data]), o.c.deleted_at.is_(None))
        .order_by(m.c.created_at, m.c.id)
    ).mappings():
        firsts.setdefault(member["user_id"], member)
    data = [UserOut.from_row(row, firsts.get(row["id"])) for row in rows.data]
    return Page(data=data, has_more=rows.has_more, next_cursor=rows.next_cursor)


async def get_user(services: Services, actor: Actor, user_id: str) -> UserOut:
    actor.require(Role.ORG_ADMIN)
    user, member = await services.store.run(partial(_visible_user, user_id=user_id, scope=_scope(actor)))
    return UserOut.from_row(user, member)


async def update_user(services: Services, actor: Actor, user_id: str, req: UserUpdate) -> UserOut:
    """Change a user's name, email, system-admin flag or password (who may: see the module docstring).

    A new password ends the user's sessions except the caller's own.
    """
    if req.is_system_admin is not None and not actor.is_system_admin:
        raise PermissionDeniedError("only system admins can change system admin rights")
    if req.is_system_admin is False and user_id == actor.user_id:
        raise BadRequestError("you cannot remove your own system admin rights")
    changes: dict[str, Any] = {}
    if req.display_name is not None:
        changes["display_name"] = clean_display_name(req.display_name)
    if req.email is not None:
        changes["email"] = normalize_email(req.email)
    if req.is_system_admin is not None:
        changes["is_system_admin"] = req.is_system_admin
    if req.password is not None:
        validate_password(req.password)
    user, _ = await services.store.run(partial(_authorized_user, actor=actor, user_id=user_id))
    if _needs_current_password(actor, user, changes, req):
        await _confirm_password(user, req.current_password)
    if req.password is not None:
        changes["password_hash"] = await hash_password_off_loop(req.password)
    write = partial(_update_tx, user_id=user_id, actor=actor, changes=changes, now=utcnow())
    try:
        user, member, revoked, refreshed = await services.store.run(write)
    except StoreIntegrityError as exc:
        raise _duplicate_email() from exc
    await forget_keys(services, revoked)
    for key_hash, identity in refreshed:
        services.keys.put(key_hash, identity)
    if refreshed:
        await services.bus.publish(TOPIC_KEYS, "*")
    return UserOut.from_row(user, member)


def _needs_current_password(
    actor: Actor, user: sa.RowMapping, changes: dict[str, Any], req: UserUpdate
) -> bool:
    """Whether this is the user's own change of password or email (a system admin needs no proof)."""
    if actor.is_system_admin or actor.user_id != user["id"]:
        return False
    return req.password is not None or changes.get("email", user["email"]) != user["email"]


async def _confirm_password(user: sa.RowMapping, current_password: str | None) -> None:
    """400 unless ``current_password`` is the user's password."""
    if user["auth_provider"] != "local":
        raise BadRequestError("password and email changes are not available for SSO accounts")
    if current_password is None:
        raise BadRequestError("current password is incorrect")
    if not await verify_password_off_loop(user["password_hash"], current_password):
        raise BadRequestError("current password is incorrect")


def _authorized_user(conn: sa.Connection, *, actor: Actor, user_id: str) -> tuple[sa.RowMapping, Any]:
    """The user the actor may change, with the membership shown in the response; 404 or 403 otherwise."""
    if actor.is_system_admin:
        return _visible_user(conn, user_id, None)
    if actor.user_id == user_id:
        user = live_user(conn, t.users.c.id == user_id)
        if user is None:
            raise NotFoundError("user not found")
        return user, membership(conn, user_id, actor.org_id) or membership(conn, user_id)
    actor.require(Role.ORG_ADMIN)
    user, member = _visible_user(conn, user_id, actor.org_id)
    if user["is_system_admin"]:
        raise PermissionDeniedError("insufficient permissions")
    if not all(_administers(conn, actor, org_id) for org_id in _member_orgs(conn, user_id)):
        raise PermissionDeniedError(_ELSEWHERE)
    return user, member


def _member_orgs(conn: sa.Connection, user_id: str) -> list[str]:
    """Every live organisation the user belongs to."""
    m, o = t.org_memberships, t.organizations
    query = (
        sa.select(m.c.org_id)
        .select_from(m.join(o, o.c.id == m.c.org_id))
        .where(m.c.user_id == user_id, o.c.deleted_at.is_(None))
    )
    return list(conn.execute(query).scalars())


def _administers(conn: sa.Connection, actor: Actor, org_id: str) -> bool:
    """Whether the actor is an org admin of ``org_id``: by its key's role there, or by the calling user's
    membership role there."""
    if actor.org_id == org_id and actor.role >= Role.ORG_ADMIN:
        return True
    return actor.user_id is not None and org_role(conn, org_id, actor.user_id) == "org_admin"


def _update_tx(
    conn: sa.Connection,
    *,
    user_id: str,
    actor: Actor,
    changes: dict[str, Any],
    now: datetime,
) -> tuple[Any, Any, list[str], list[tuple[str, KeyIdentity]]]:
    user, member = _authorized_user(conn, actor=actor, user_id=user_id)  # again: memberships may have changed
    if changes.get("email", user["email"]) != user["email"] and email_taken(conn, changes["email"]):
        raise _duplicate_email()
    if changes:
        conn.execute(t.users.update().where(t.users.c.id == user_id).values(**changes, updated_at=now))
    revoked: list[str] = []
    if "password_hash" in changes:
        k = t.api_keys
        others = k.c.id != actor.key_id if actor.key_id else sa.true()
        revoked = revoke_keys(conn, k.c.user_id == user_id, k.c.key_type == SESSION_KEY_TYPE, others, now=now)
    refreshed = reload_user_keys(conn, user_id, now) if "is_system_admin" in changes else []
    return live_user(conn, t.users.c.id == user_id), member, revoked, refreshed


async def delete_user(services: Services, actor: Actor, user_id: str) -> None:
    """Soft-delete a user, remove their memberships and revoke every key of theirs at once."""
    actor.require(Role.SYSTEM_ADMIN)
    if user_id == actor.user_id:
        raise BadRequestError("you cannot delete your own account")
    revoked = await services.store.run(partial(_delete_tx, user_id=user_id, now=utcnow()))
    services.keys.evict_where(user_id=user_id)
    await forget_keys(services, revoked)


def _delete_tx(conn: sa.Connection, *, user_id: str, now: datetime) -> list[str]:
    u = t.users
    user = live_user(conn, u.c.id == user_id)
    if user is None:
        raise NotFoundError("user not found")
    external = user["external_id"]
    conn.execute(
        u.update()
        .where(u.c.id == user_id)
        .values(
            email=f"{user['email']}{_TOMBSTONE}{user_id}",
            external_id=None if external is None else f"{external}{_TOMBSTONE}{user_id}",
            deleted_at=now,
            updated_at=now,
        )
    )
    conn.execute(t.org_memberships.delete().where(t.org_memberships.c.user_id == user_id))
    conn.execute(t.team_memberships.delete().where(t.team_memberships.c.user_id == user_id))
    return revoke_keys(conn, t.api_keys.c.user_id == user_id, now=now)


# -- the caller's own account -----------------------------------------------------------------------


async def get_me(services: Services, actor: Actor) -> MeOut:
    """The acting user as their key sees them (role and organisation of the key)."""
    user_id = actor.require_user()
    org_id = actor.org_id
    user = await services.store.run(lambda conn: live_user(conn, t.users.c.id == user_id))
    if user is None or org_id is None:
        raise NotFoundError("user not found")
    administered = await services.store.run(lambda conn: _administered_team_ids(conn, user_id, org_id))
    return MeOut(
        id=user["id"],
        email=user["email"],
        display_name=user["display_name"],
        role=actor.role.label,
        org_id=org_id,
        is_system_admin=bool(user["is_system_admin"]),
        team_admin_of=administered,
    )


def _administered_team_ids(conn: sa.Connection, user_id: str, org_id: str) -> list[str]:
    """Ids of the live teams of ``org_id`` where the user's team role is ``team_admin``."""
    m, tm = t.team_memberships, t.teams
    query = (
        sa.select(tm.c.id)
        .select_from(m.join(tm, tm.c.id == m.c.team_id))
        .where(m.c.user_id == user_id, m.c.role == "team_admin")
        .where(tm.c.org_id == org_id, tm.c.deleted_at.is_(None))
        .order_by(tm.c.name, tm.c.id)
    )
    return list(conn.execute(query).scalars())


async def change_password(services: Services, actor: Actor, req: PasswordChange) -> None:
    """Replace the caller's password after checking the current one; ends their other sessions."""
    user_id = actor.require_user()
    validate_password(req.new_password)
    user = await services.store.run(lambda conn: live_user(conn, t.users.c.id == user_id))
    if user is None:
        raise NotFoundError("user not found")
    await _confirm_password(user, req.current_password)
    new_hash = await hash_password_off_loop(req.new_password)
    write = partial(
        _change_password_tx, user_id=user_id, keep_key=actor.key_id, new_hash=new_hash, now=utcnow()
    )
    await forget_keys(services, await services.store.run(write))


def _change_password_tx(
    conn: sa.Connection, *, user_id: str, keep_key: str | None, new_hash: str, now: datetime
) -> list[str]:
    u = t.users
    conn.execute(u.update().where(u.c.id == user_id).values(password_hash=new_hash, updated_at=now))
    k = t.api_keys
    others = k.c.id != keep_key if keep_key else sa.true()
    return revoke_keys(conn, k.c.user_id == user_id, k.c.key_type == SESSION_KEY_TYPE, others, now=now)


def available_models(services: Services, actor: Actor) -> AvailableModels:
    """The models the caller's key may use, sorted by name."""
    catalog = services.catalog
    if catalog is None:
        return AvailableModels(models=[])
    models = catalog.registry.models if actor.identity is None else catalog.visible(actor.identity)
    return AvailableModels(models=[ModelBrief(name=m.name, type=m.type) for m in models])
