"""Rules shared by the tenancy use cases (organisations, memberships, teams, service accounts, keys).

- **Input checks**: names (at most 256 characters) and slugs (docs/reference/behaviour.md 1.6: slug
  ``^[a-z0-9][a-z0-9-]{1,62}$``), the reserved ``:deleted:`` substring, limits from 0 (unlimited) to 10^15.
  The field helpers declare their :class:`~voidllm.bounds.Bounds`, which the admin codec checks as it reads
  the request; converters and validators raise :class:`BadRequestError`, which the codec passes through.
- **Soft deletes** set ``deleted_at`` and tombstone unique values as ``<value>:deleted:<id>`` so the value can
  be used again (docs/reference/behaviour.md 3, migration 0015).
- **Scope lookups** inside a transaction: the live organisation, team, org role and team role, raising 404
  with the reference's messages.
- **Key cache propagation**: limits and roles are copied into every cached
  :class:`~voidllm.identity.KeyIdentity`, so a change to them reloads the cache at once and tells the
  other processes (``keys`` topic, ``*``); a revocation evicts the matching keys first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.services import Services
from voidllm.auth.cache import reload_key_cache
from voidllm.bounds import LIMIT, NAME, Bounds, bounded
from voidllm.bus import TOPIC_KEYS
from voidllm.errors import BadRequestError, ConflictError, NotFoundError
from voidllm.identity import Role
from voidllm.store import tables as t
from voidllm.store.errors import StoreIntegrityError
from voidllm.store.policies import delete_policies

T = TypeVar("T")

RESERVED = ":deleted:"
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
SLUG = Bounds(max_length=63)
LIMIT_FIELDS = ("daily_token_limit", "monthly_token_limit", "requests_per_minute", "requests_per_day")


# -- input checks -------------------------------------------------------------------------------------


def check_name(value: str, field: str = "name") -> str:
    """``value`` stripped; 400 when empty, longer than :data:`~voidllm.bounds.NAME` allows or containing
    ``:deleted:``."""
    value = value.strip()
    if not value:
        raise BadRequestError(f"{field} is required")
    too_long = NAME.message(field, value)
    if too_long is not None:
        raise BadRequestError(too_long)
    if RESERVED in value:
        raise BadRequestError(f"{field} must not contain '{RESERVED}'")
    return value


def check_slug(value: str) -> str:
    """400 unless ``value`` is 2-63 lowercase letters, digits and hyphens, starting with a letter or digit."""
    if RESERVED in value or not _SLUG.fullmatch(value):
        raise BadRequestError(
            "slug must be 2-63 lowercase letters, digits or hyphens, starting with a letter or digit"
        )
    return value


def slug_from(name: str) -> str:
    """A slug derived from a display name (``"Data Science!"`` -> ``data-science``), checked."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].rstrip("-")
    return check_slug(slug)


def _optional(check: Callable[[str], str]) -> Callable[[str | None], str | None]:
    return lambda value: None if value is None else check(value)


def name_field() -> Any:
    """A required display name of at most 256 characters, checked and stripped by :func:`check_name`."""
    return bounded(NAME, converter=check_name)


def optional_name_field() -> Any:
    return bounded(NAME, default=None, converter=_optional(check_name))


def slug_field(*, optional: bool = False) -> Any:
    """A slug checked by :func:`check_slug`; ``optional`` fields default to ``None``."""
    if optional:
        return bounded(SLUG, default=None, converter=_optional(check_slug))
    return bounded(SLUG, converter=check_slug)


def _in_limit_range(_: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    """The codec checks :data:`~voidllm.bounds.LIMIT` on requests; this covers values built in code (CLI)."""
    if value is not None and LIMIT.problem(value) is not None:
        raise BadRequestError(f"{attribute.name} must be between 0 (unlimited) and {LIMIT.maximum}")


def limit_field() -> Any:
    """An ``int`` limit field defaulting to 0 (unlimited), at most 10^15."""
    return bounded(LIMIT, default=0, validator=_in_limit_range)


def optional_limit_field() -> Any:
    """An ``int | None`` limit field of a PATCH body: ``None`` leaves the value unchanged."""
    return bounded(LIMIT, default=None, validator=_in_limit_range)


def set_fields(body: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The named attributes of a PATCH body that were sent (not ``None``)."""
    return {name: getattr(body, name) for name in names if getattr(body, name) is not None}


def limits_of(row: Any) -> dict[str, int]:
    return {name: int(row[name]) for name in LIMIT_FIELDS}


def tombstone(value: str, row_id: str) -> str:
    """The value a unique column takes when its row is soft-deleted."""
    return f"{value}{RESERVED}{row_id}"


async def run_unique(services: Services, fn: Callable[[sa.Connection], T], conflict: str) -> T:
    """``services.store.run(fn)``, turning a unique-constraint violation into 409 ``conflict``."""
    try:
        return await services.store.run(fn)
    except StoreIntegrityError as exc:
        if exc.kind == "unique":
            raise ConflictError(conflict) from exc
        raise


# -- scope lookups (inside a transaction) ---------------------------------------------------------------


def live_org(conn: sa.Connection, org_id: str) -> sa.RowMapping:
    """The organisation row unless missing or deleted (404 ``organization not found``)."""
    o = t.organizations
    row = conn.execute(sa.select(o).where(o.c.id == org_id, o.c.deleted_at.is_(None))).mappings().first()
    if row is None:
        raise NotFoundError("organization not found")
    return row


def live_team(conn: sa.Connection, org_id: str, team_id: str) -> sa.RowMapping:
    """The team row of ``org_id`` unless missing or deleted (404 ``team not found``)."""
    tm = t.teams
    row = (
        conn.execute(
            sa.select(tm).where(tm.c.id == team_id, tm.c.org_id == org_id, tm.c.deleted_at.is_(None))
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError("team not found")
    return row


def org_role(conn: sa.Connection, org_id: str, user_id: str) -> str | None:
    """The user's ``org_memberships.role`` in ``org_id``, or ``None`` when not a (live) member."""
    m, u = t.org_memberships, t.users
    return conn.execute(
        sa.select(m.c.role)
        .select_from(m.join(u, u.c.id == m.c.user_id))
        .where(m.c.org_id == org_id, m.c.user_id == user_id, u.c.deleted_at.is_(None))
    ).scalar()


def team_role(conn: sa.Connection, team_id: str, user_id: str) -> str | None:
    """The user's ``team_memberships.role`` in ``team_id``, or ``None`` when not a member."""
    m = t.team_memberships
    return conn.execute(sa.select(m.c.role).where(m.c.team_id == team_id, m.c.user_id == user_id)).scalar()


def administered_teams(actor: Actor) -> sa.Select[tuple[str]] | list[str]:
    """Ids of the teams the actor administers below org-admin level: the team of a team-scoped key (team
    key, team service-account key), or the teams where the acting user's membership role is ``team_admin``.
    """
    if actor.user_id is None:
        return [actor.team_id] if actor.team_id and actor.role >= Role.TEAM_ADMIN else []
    m = t.team_memberships
    return sa.select(m.c.team_id).where(m.c.user_id == actor.user_id, m.c.role == "team_admin")


def joined_teams(actor: Actor) -> sa.Select[tuple[str]] | list[str]:
    """Ids of the teams the actor belongs to (any team role), or its key's team."""
    if actor.user_id is None:
        return [actor.team_id] if actor.team_id else []
    m = t.team_memberships
    return sa.select(m.c.team_id).where(m.c.user_id == actor.user_id)


def is_team_admin(conn: sa.Connection, actor: Actor, team_id: str) -> bool:
    """Whether the actor may administer ``team_id``: org admin or above, its team-scoped key, or a user whose
    membership role in the team is ``team_admin``."""
    if actor.role >= Role.ORG_ADMIN:
        return True
    if actor.user_id is None:
        return actor.team_id == team_id and actor.role >= Role.TEAM_ADMIN
    return team_role(conn, team_id, actor.user_id) == "team_admin"


def is_team_member(conn: sa.Connection, actor: Actor, team_id: str) -> bool:
    """Whether the actor may see ``team_id``: org admin or above, its key's team, or a member of the team."""
    if actor.role >= Role.ORG_ADMIN:
        return True
    if actor.user_id is None:
        return actor.team_id == team_id
    return team_role(conn, team_id, actor.user_id) is not None


def count_of(table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
    """A correlated ``COUNT(*)`` subquery for list and detail responses."""
    return sa.select(sa.func.count()).select_from(table).where(*where).scalar_subquery()


def live_key_count(owner: str, owner_id: sa.ColumnElement[str]) -> sa.ScalarSelect[int]:
    """How many live (not deleted) non-session keys have ``api_keys.<owner> == owner_id``."""
    k = t.api_keys
    return count_of(k, k.c[owner] == owner_id, k.c.deleted_at.is_(None), k.c.key_type != "session_key")


def soft_delete_keys(conn: sa.Connection, now: datetime, *where: sa.ColumnElement[bool]) -> list[str]:
    """Soft-delete every live key matching ``where`` and delete their policies; returns their hashes (to
    evict)."""
    k = t.api_keys
    rows = conn.execute(sa.select(k.c.id, k.c.key_hash).where(k.c.deleted_at.is_(None), *where)).all()
    if rows:
        live = k.update().where(k.c.deleted_at.is_(None), *where)
        conn.execute(live.values(deleted_at=now, updated_at=now))
        delete_policies(conn, "key", [row.id for row in rows])
    return [row.key_hash for row in rows]


# -- key cache propagation ----------------------------------------------------------------------------


async def reload_keys(services: Services) -> None:
    """Reload this process's key cache from the store and tell the other processes to do the same.

    Used after changes to what cached identities copy: org/team limits, membership roles, activation.
    """
    await reload_key_cache(services.keys, services.store)
    await services.bus.publish(TOPIC_KEYS, "*")


async def evict_keys(services: Services, hashes: Iterable[str] = (), **match: str) -> None:
    """Evict keys from this process's cache at once (by hash and/or by identity attributes), then tell the
    other processes to reload."""
    for key_hash in hashes:
        services.keys.evict(key_hash)
    if match:
        services.keys.evict_where(**match)
    await services.bus.publish(TOPIC_KEYS, "*")
