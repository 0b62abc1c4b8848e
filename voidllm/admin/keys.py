"""API keys: create, list, read, change, revoke and rotate (docs/reference/behaviour.md 1.6 "API keys", 4).

Who may do what:

- Only user-scoped callers create keys (a team or service-account key cannot mint keys); the CLI acts as
  :meth:`Actor.system` and may create any key for any user.
- Below org admin a caller creates only ``user_key`` keys for itself, bound to no team or to a team it
  belongs to. Org admins create any kind for their organisation; only system admins create keys for system
  admins (such a key would carry system-admin rights).
- Visibility (list, read, change, revoke, rotate): org admins see every key of the organisation; others see
  their own keys plus, as team admins, the keys bound to the teams they administer. Anything else is 404.
  Login session keys are never listed and never rotated, and below org admin nobody rotates another
  user's key (that would hand them a key acting as that user).
- Limits and expiry (``requests_per_minute``, ``requests_per_day``, ``daily_token_limit``,
  ``monthly_token_limit``, ``expires_at``) are set by the admins above a key, never by its holder: a system
  admin; an org admin of the key's organisation; or, for a key bound to a team, that team's admin (a user
  who is ``team_admin`` of the team, the team's team key, a service-account key bound to the team), each
  limit within the team's own: when the team's limit ``L`` is > 0 the value must be ``1..L`` (0, unlimited,
  is refused). Below org admin the key's holder (its user, its service account) is refused, and nobody but a
  system admin changes them through the key being changed. A holder still renames, rotates and revokes its
  own key. Key creation below org admin (own user keys) may set any limits: team and organisation limits
  still apply above the key. Key model allowlists are org-admin business (:mod:`voidllm.admin.access`).

Every write reaches the key cache before the use case returns: the fresh identity is read back with
:func:`~voidllm.auth.loader.load_live_key` inside the write's transaction and put into (or evicted from) the
cache, and revocations are published on the ``keys`` topic for the other processes.

Rotation issues a new key with the old one's name (suffixed ``(rotated)``), scope, limits, expiry,
model/MCP allowlists and policies (:mod:`voidllm.admin.policies`), and lets the old key live on for a grace
period: its expiry becomes ``min(current expiry, now + 24 h)``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.pages import Page, PageQuery, paginate
from voidllm.admin.services import Services
from voidllm.admin.tenancy import (
    LIMIT_FIELDS,
    administered_teams,
    is_team_admin,
    limit_field,
    limits_of,
    live_org,
    name_field,
    optional_limit_field,
    optional_name_field,
    org_role,
    set_fields,
    team_role,
)
from voidllm.auth.loader import load_live_key
from voidllm.bus import TOPIC_ACCESS, TOPIC_KEYS
from voidllm.crypto import KeyKind, Keyring, generate_key, key_hint
from voidllm.errors import BadRequestError, NotFoundError, PermissionDeniedError
from voidllm.identity import KeyIdentity, Role
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow
from voidllm.store.policies import copy_key_policies, delete_policies

ROTATION_GRACE = timedelta(hours=24)
GUARDED = (*LIMIT_FIELDS, "expires_at")
"""The fields of a key set by the admins above it, never by its holder (see the module docstring)."""
CREATABLE = ("user_key", "team_key", "sa_key")
_KINDS = {kind.key_type: kind for kind in KeyKind if kind.key_type}
_ROTATED = " (rotated)"


def _key_type(value: str) -> str:
    if value not in CREATABLE:
        raise BadRequestError("key_type must be one of: user_key, team_key, sa_key")
    return value


def _blank_is_none(value: str | None) -> str | None:
    return value or None


def _id_field() -> Any:
    return attrs.field(default=None, converter=_blank_is_none)


@attrs.frozen(kw_only=True)
class KeyCreate:
    name: str = name_field()
    key_type: str = attrs.field(converter=_key_type)
    team_id: str | None = _id_field()
    user_id: str | None = _id_field()
    service_account_id: str | None = _id_field()
    daily_token_limit: int = limit_field()
    monthly_token_limit: int = limit_field()
    requests_per_minute: int = limit_field()
    requests_per_day: int = limit_field()
    expires_at: datetime | None = None


@attrs.frozen(kw_only=True)
class KeyUpdate:
    """PATCH body: ``None`` leaves a field unchanged (an expiry cannot be removed, only moved)."""

    name: str | None = optional_name_field()
    daily_token_limit: int | None = optional_limit_field()
    monthly_token_limit: int | None = optional_limit_field()
    requests_per_minute: int | None = optional_limit_field()
    requests_per_day: int | None = optional_limit_field()
    expires_at: datetime | None = None


@attrs.frozen(kw_only=True)
class KeyOut:
    """A key as the API shows it: never the key itself, never its hash."""

    id: str
    name: str
    key_type: str
    key_hint: str
    org_id: str
    team_id: str | None
    user_id: str | None
    service_account_id: str | None
    daily_token_limit: int
    monthly_token_limit: int
    requests_per_minute: int
    requests_per_day: int
    expires_at: datetime | None
    last_used_at: datetime | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> KeyOut:
        return cls(
            id=row["id"],
            name=row["name"],
            key_type=row["key_type"],
            key_hint=row["key_hint"],
            org_id=row["org_id"],
            team_id=row["team_id"],
            user_id=row["user_id"],
            service_account_id=row["service_account_id"],
            **limits_of(row),
            expires_at=row["expires_at"],
            last_used_at=row["last_used_at"],
            created_by=row["created_by"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@attrs.frozen(kw_only=True)
class KeyCreated(KeyOut):
    """A new key with its plaintext ``key``: the only time it is ever shown."""

    key: str = attrs.field(repr=False)

    @classmethod
    def of(cls, out: KeyOut, key: str) -> KeyCreated:
        return cls(**attrs.asdict(out, recurse=False), key=key)


@attrs.frozen(kw_only=True)
class KeyRotation:
    new_key: KeyCreated
    old_key: KeyOut


CacheEntry = tuple[str, KeyIdentity | None]
"""A key's hash and its identity as the cache should now hold it (``None``: evict)."""


# -- shared pieces --------------------------------------------------------------------------------------


def _columns() -> list[sa.Column[Any]]:
    return [c for c in t.api_keys.c if c.key != "key_hash"]


def _visible_to(actor: Actor) -> sa.ColumnElement[bool]:
    """Keys the actor may see and manage within its organisation (see the module docstring)."""
    k = t.api_keys
    if actor.role >= Role.ORG_ADMIN:
        return sa.true()
    own = k.c.user_id == actor.user_id if actor.user_id else sa.false()
    return sa.or_(own, k.c.team_id.in_(administered_teams(actor)))


def _find(conn: sa.Connection, actor: Actor, org_id: str, key_id: str) -> sa.RowMapping:
    """The live key row (with its hash), or 404 when missing, in another organisation or not visible."""
    k = t.api_keys
    query = sa.select(k).where(
        k.c.id == key_id, k.c.org_id == org_id, k.c.deleted_at.is_(None), _visible_to(actor)
    )
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFoundError("api key not found")
    return row


def _read(conn: sa.Connection, key_id: str) -> sa.RowMapping:
    return conn.execute(sa.select(t.api_keys).where(t.api_keys.c.id == key_id)).mappings().one()


def _cache_entry(conn: sa.Connection, key_id: str, key_hash: str, now: datetime) -> CacheEntry:
    live = load_live_key(conn, key_id, now=now)
    return (key_hash, None) if live is None else live


def _apply(services: Services, entry: CacheEntry) -> None:
    key_hash, identity = entry
    if identity is None:
        services.keys.evict(key_hash)
    else:
        services.keys.put(key_hash, identity)


def _check_future(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise BadRequestError("expires_at must be in the future")


def _insert(
    conn: sa.Connection, *, plaintext: str, hashed: str, values: dict[str, Any], now: datetime
) -> str:
    key_id = new_id()
    conn.execute(
        t.api_keys.insert().values(
            id=key_id, key_hash=hashed, key_hint=key_hint(plaintext), created_at=now, updated_at=now, **values
        )
    )
    return key_id


# -- create -------------------------------------------------------------------------------------------


async def create(services: Services, actor: Actor, org_id: str, req: KeyCreate) -> KeyCreated:
    """Create a key; the response carries the plaintext key once, and the key works at once.

    Raises:
        PermissionDeniedError: not a user-scoped caller, or below org admin asking for more than an own
            user key in an own team.
        BadRequestError: fields that do not fit the key type, unknown team/user/service account, past expiry.
    """
    actor.require_org(org_id)
    req = _authorize_create(actor, req)
    _check_shape(req)
    now = utcnow()
    _check_future(req.expires_at, now)
    plaintext = generate_key(_KINDS[req.key_type])
    hashed = services.keyring.hash_key(plaintext)
    out, entry = await services.store.run(
        partial(_create_tx, actor=actor, org_id=org_id, req=req, plaintext=plaintext, hashed=hashed, now=now)
    )
    _apply(services, entry)
    await services.bus.publish(TOPIC_KEYS, "*")  # other processes load the new key now, not at key_ttl
    return out


def _authorize_create(actor: Actor, req: KeyCreate) -> KeyCreate:
    if actor.identity is not None and actor.user_id is None:
        raise PermissionDeniedError("keys can only be created with a user key")
    if actor.role >= Role.ORG_ADMIN:
        return req
    if req.key_type != "user_key":
        raise PermissionDeniedError("you can only create user keys")
    if req.user_id is not None and req.user_id != actor.user_id:
        raise PermissionDeniedError("you can only create keys for yourself")
    return attrs.evolve(req, user_id=actor.user_id)


def _check_shape(req: KeyCreate) -> None:
    """Which of team_id / user_id / service_account_id each key type needs and forbids."""
    required = {"user_key": "user_id", "team_key": "team_id", "sa_key": "service_account_id"}[req.key_type]
    if getattr(req, required) is None:
        raise BadRequestError(f"{required} is required for {req.key_type}")
    forbidden = {
        "user_key": (),
        "team_key": ("user_id", "service_account_id"),
        "sa_key": ("user_id", "team_id"),
    }
    for name in forbidden[req.key_type]:
        if getattr(req, name) is not None:
            raise BadRequestError(f"{name} must not be set for {req.key_type}")


def _create_tx(
    conn: sa.Connection,
    *,
    actor: Actor,
    org_id: str,
    req: KeyCreate,
    plaintext: str,
    hashed: str,
    now: datetime,
) -> tuple[KeyCreated, CacheEntry]:
    live_org(conn, org_id)
    team_id = req.team_id
    if team_id is not None:
        _check_team(conn, actor, org_id, team_id)
    if req.user_id is not None:
        _check_user(conn, actor, org_id, req.user_id)
    if req.service_account_id is not None:
        team_id = _service_account_team(conn, org_id, req.service_account_id)
    values = dict(
        key_type=req.key_type,
        name=req.name,
        org_id=org_id,
        team_id=team_id,
        user_id=req.user_id,
        service_account_id=req.service_account_id,
        expires_at=req.expires_at,
        created_by=actor.actor_id,
        **{name: getattr(req, name) for name in LIMIT_FIELDS},
    )
    key_id = _insert(conn, plaintext=plaintext, hashed=hashed, values=values, now=now)
    created = KeyCreated.of(KeyOut.from_row(_read(conn, key_id)), plaintext)
    return created, _cache_entry(conn, key_id, hashed, now)


def _check_team(conn: sa.Connection, actor: Actor, org_id: str, team_id: str) -> None:
    tm = t.teams
    found = conn.execute(
        sa.select(tm.c.id).where(tm.c.id == team_id, tm.c.org_id == org_id, tm.c.deleted_at.is_(None))
    ).first()
    if found is None:
        raise BadRequestError("team not found")
    if actor.role >= Role.ORG_ADMIN:
        return
    if actor.user_id is None or team_role(conn, team_id, actor.user_id) is None:
        raise PermissionDeniedError("you are not a member of the specified team")


def _check_user(conn: sa.Connection, actor: Actor, org_id: str, user_id: str) -> None:
    if org_role(conn, org_id, user_id) is None:
        raise BadRequestError("user is not a member of this organization")
    u = t.users
    target_is_admin = conn.execute(sa.select(u.c.is_system_admin).where(u.c.id == user_id)).scalar()
    if target_is_admin and not actor.is_system_admin:
        raise PermissionDeniedError("only system admins can create keys for system admins")


def _service_account_team(conn: sa.Connection, org_id: str, sa_id: str) -> str | None:
    """The account's team (its keys copy it), or 400 when the account is not a live one of ``org_id``."""
    s = t.service_accounts
    row = conn.execute(
        sa.select(s.c.team_id).where(s.c.id == sa_id, s.c.org_id == org_id, s.c.deleted_at.is_(None))
    ).first()
    if row is None:
        raise BadRequestError("service account not found")
    team_id: str | None = row.team_id
    return team_id


# -- read ---------------------------------------------------------------------------------------------


async def list_keys(services: Services, actor: Actor, org_id: str, page: PageQuery) -> Page[KeyOut]:
    """The keys the actor may see in the organisation, one page; session keys are never listed."""
    actor.require_org(org_id)
    k = t.api_keys
    query = sa.select(*_columns()).where(
        k.c.org_id == org_id, k.c.deleted_at.is_(None), k.c.key_type != "session_key", _visible_to(actor)
    )

    def read(conn: sa.Connection) -> Page[KeyOut]:
        live_org(conn, org_id)
        return paginate(conn, query, k.c.id, page, KeyOut.from_row)

    return await services.store.run(read)


async def get(services: Services, actor: Actor, org_id: str, key_id: str) -> KeyOut:
    actor.require_org(org_id)
    row = await services.store.run(_find, actor, org_id, key_id)
    return KeyOut.from_row(row)


# -- change, revoke -------------------------------------------------------------------------------------


async def update(services: Services, actor: Actor, org_id: str, key_id: str, req: KeyUpdate) -> KeyOut:
    """Change name, limits or expiry; the cached key changes at once.

    Raises:
        NotFoundError: no such key visible to the actor in ``org_id``.
        PermissionDeniedError: limits or expiry sent by the key's holder below org admin, through the key
            itself (unless a system admin), or by a team admin beyond the team's own limits.
    """
    actor.require_org(org_id)
    now = utcnow()
    _check_future(req.expires_at, now)
    values = set_fields(req, ("name", *GUARDED))

    def write(conn: sa.Connection) -> tuple[KeyOut, CacheEntry]:
        row = _find(conn, actor, org_id, key_id)
        _authorize_update(conn, actor, row, values)
        if values:
            k = t.api_keys
            conn.execute(k.update().where(k.c.id == key_id).values(**values, updated_at=now))
        return KeyOut.from_row(_read(conn, key_id)), _cache_entry(conn, key_id, row["key_hash"], now)

    out, entry = await services.store.run(write)
    _apply(services, entry)
    await services.bus.publish(TOPIC_KEYS, "*")
    return out


def _authorize_update(conn: sa.Connection, actor: Actor, row: sa.RowMapping, values: dict[str, Any]) -> None:
    """403 unless the actor may set the limits and expiry it sent for the key ``row`` (module docstring)."""
    guarded = [name for name in GUARDED if name in values]
    if not guarded:
        return
    message = f"a key's limits and expiry are set by an administrator ({', '.join(guarded)})"
    require_admin_above(conn, actor, row, message)
    if actor.role < Role.ORG_ADMIN:
        _check_team_ceiling(conn, row["team_id"], values)


def find_key(conn: sa.Connection, actor: Actor, org_id: str, key_id: str) -> sa.RowMapping:
    """The live key row the actor may see (its holder, the admins above it); else 404 api key not found."""
    return _find(conn, actor, org_id, key_id)


def require_admin_above(conn: sa.Connection, actor: Actor, row: sa.RowMapping, message: str) -> None:
    """403 (``message``) unless the actor administers the key ``row`` from above: a system admin; an org admin
    (not through the key itself); for a key bound to a team, that team's admin who does not hold the key.
    What a key's limits, expiry and policies need (module docstring)."""
    if actor.is_system_admin:
        return
    if actor.key_id == row["id"]:
        raise PermissionDeniedError(message)
    if actor.role >= Role.ORG_ADMIN:
        return
    team_id = row["team_id"]
    if _holds(actor, row) or team_id is None or not is_team_admin(conn, actor, team_id):
        raise PermissionDeniedError(message)


def _holds(actor: Actor, row: sa.RowMapping) -> bool:
    """Whether the key ``row`` belongs to the acting user or service account."""
    holder = (row["user_id"], row["service_account_id"])
    return actor.actor_id is not None and actor.actor_id in holder


def _check_team_ceiling(conn: sa.Connection, team_id: str, values: dict[str, Any]) -> None:
    """A team admin sets a key's limits within the team's own: 1..L where the team's limit L is > 0."""
    team = conn.execute(sa.select(t.teams).where(t.teams.c.id == team_id)).mappings().one()
    for name, ceiling in limits_of(team).items():
        if name in values and ceiling > 0 and not 1 <= values[name] <= ceiling:
            raise PermissionDeniedError(
                f"{name} must be between 1 and {ceiling}, the team's limit (only an org admin goes beyond it)"
            )


async def delete(services: Services, actor: Actor, org_id: str, key_id: str) -> None:
    """Revoke (soft-delete) the key; it stops working at once, here and, via the bus, elsewhere."""
    actor.require_org(org_id)

    def write(conn: sa.Connection) -> str:
        row, now = _find(conn, actor, org_id, key_id), utcnow()
        k = t.api_keys
        conn.execute(k.update().where(k.c.id == key_id).values(deleted_at=now, updated_at=now))
        delete_policies(conn, "key", [key_id])
        return str(row["key_hash"])

    key_hash = await services.store.run(write)
    services.keys.evict(key_hash)
    await services.bus.publish(TOPIC_KEYS, key_hash)


# -- rotate -------------------------------------------------------------------------------------------


async def rotate(services: Services, actor: Actor, org_id: str, key_id: str) -> KeyRotation:
    """Issue a successor of the key and give the old key at most 24 more hours (see the module docstring).

    Raises:
        NotFoundError: no such key visible to the actor in ``org_id``.
        BadRequestError: a session key, or an already expired key.
        PermissionDeniedError: below org admin, another user's key.
    """
    actor.require_org(org_id)
    write = partial(
        _rotate_tx, actor=actor, org_id=org_id, key_id=key_id, keyring=services.keyring, now=utcnow()
    )
    rotation, entries, copied_access, _old_hash = await services.store.run(write)
    for entry in entries:
        _apply(services, entry)
    if copied_access:
        await services.catalog_changed(TOPIC_ACCESS)
    # "*", not the old hash: the old key stays valid through its grace period, the successor is new
    await services.bus.publish(TOPIC_KEYS, "*")
    return rotation


def _rotate_tx(
    conn: sa.Connection, *, actor: Actor, org_id: str, key_id: str, keyring: Keyring, now: datetime
) -> tuple[KeyRotation, list[CacheEntry], bool, str]:
    old = _find(conn, actor, org_id, key_id)
    if old["key_type"] not in CREATABLE:
        raise BadRequestError("only user, team and service account keys can be rotated")
    if old["expires_at"] is not None and old["expires_at"] <= now:
        raise BadRequestError("an expired key cannot be rotated")
    if actor.role < Role.ORG_ADMIN and old["user_id"] not in (None, actor.user_id):
        # a team admin manages a member's team-bound key but must not obtain a key acting as that member
        raise PermissionDeniedError("you can only rotate your own user keys")
    plaintext = generate_key(_KINDS[old["key_type"]])
    hashed = keyring.hash_key(plaintext)
    copied = dict(
        key_type=old["key_type"],
        name=old["name"].removesuffix(_ROTATED) + _ROTATED,
        org_id=org_id,
        team_id=old["team_id"],
        user_id=old["user_id"],
        service_account_id=old["service_account_id"],
        expires_at=old["expires_at"],
        created_by=actor.actor_id,
        **limits_of(old),
    )
    new_id_ = _insert(conn, plaintext=plaintext, hashed=hashed, values=copied, now=now)
    grace = now + ROTATION_GRACE
    old_expiry = grace if old["expires_at"] is None else min(old["expires_at"], grace)
    k = t.api_keys
    conn.execute(k.update().where(k.c.id == key_id).values(expires_at=old_expiry, updated_at=now))
    access = _copy_allowlists(conn, key_id, new_id_, now)
    copy_key_policies(conn, key_id, new_id_)
    rotation = KeyRotation(
        new_key=KeyCreated.of(KeyOut.from_row(_read(conn, new_id_)), plaintext),
        old_key=KeyOut.from_row(_read(conn, key_id)),
    )
    entries = [_cache_entry(conn, new_id_, hashed, now), _cache_entry(conn, key_id, old["key_hash"], now)]
    return rotation, entries, access, str(old["key_hash"])


def _copy_allowlists(conn: sa.Connection, old_id: str, new_id_: str, now: datetime) -> bool:
    """Give the new key the old key's model and MCP allowlists; whether there were any."""
    copied = False
    for table, item in ((t.key_model_access, "model_name"), (t.key_mcp_access, "server_id")):
        items = list(conn.execute(sa.select(table.c[item]).where(table.c.key_id == old_id)).scalars())
        if items:
            rows = [{"key_id": new_id_, item: value, "created_at": now} for value in items]
            conn.execute(table.insert(), rows)
            copied = True
    return copied
