"""Reads every live API key with the limits of its team and organisation, in one query, and the request and
guard policies of its organisation, team and key (a second query), merged most restrictive first.
"""

from __future__ import annotations

from datetime import datetime

import attrs
import sqlalchemy as sa

from voidllm import guard, request_policy
from voidllm.auth.identity import effective_role
from voidllm.identity import KeyIdentity, Limits
from voidllm.request_policy import ScopePolicy
from voidllm.store import tables as t
from voidllm.store.policies import read_scope_policies

_NONE = ScopePolicy()

_LIMIT_COLUMNS = ("requests_per_minute", "requests_per_day", "daily_token_limit", "monthly_token_limit")


def _live_keys_query(now: datetime) -> sa.Select[tuple[object, ...]]:
    k, o, u, m, tm = t.api_keys, t.organizations, t.users, t.org_memberships, t.teams
    return (
        sa.select(
            k.c.id,
            k.c.key_hash,
            k.c.key_type,
            k.c.name,
            k.c.org_id,
            k.c.team_id,
            k.c.user_id,
            k.c.service_account_id,
            k.c.expires_at,
            *(k.c[c] for c in _LIMIT_COLUMNS),
            *(o.c[c].label(f"org_{c}") for c in _LIMIT_COLUMNS),
            *(tm.c[c].label(f"team_{c}") for c in _LIMIT_COLUMNS),
            u.c.is_system_admin,
            m.c.role.label("org_role"),
        )
        .select_from(
            k.join(o, o.c.id == k.c.org_id)
            .outerjoin(u, u.c.id == k.c.user_id)
            .outerjoin(m, sa.and_(m.c.org_id == k.c.org_id, m.c.user_id == k.c.user_id))
            .outerjoin(tm, tm.c.id == k.c.team_id)
        )
        .where(
            k.c.deleted_at.is_(None),
            o.c.deleted_at.is_(None),
            o.c.is_active.is_(True),
            sa.or_(k.c.expires_at.is_(None), k.c.expires_at > now),
            sa.or_(k.c.user_id.is_(None), u.c.deleted_at.is_(None)),
            sa.or_(k.c.team_id.is_(None), tm.c.deleted_at.is_(None)),
        )
    )


def load_live_keys(conn: sa.Connection, *, now: datetime) -> dict[str, KeyIdentity]:
    """Every key that can authenticate at ``now``, by key hash.

    Excluded: deleted or expired keys, keys of deleted or deactivated organisations, keys of deleted users
    and keys of deleted teams.
    """
    policies = read_scope_policies(conn, ("org", "team", "key"))
    return {
        row["key_hash"]: _with_policies(_identity(row), policies)
        for row in conn.execute(_live_keys_query(now)).mappings()
    }


def load_live_key(conn: sa.Connection, key_id: str, *, now: datetime) -> tuple[str, KeyIdentity] | None:
    """One key's hash and identity as the cache holds it, or ``None`` when it cannot authenticate at ``now``.

    Admin mutations use it to put a new or changed key into the cache at once.
    """
    return _one_live_key(conn, t.api_keys.c.id == key_id, now=now)


def load_live_key_by_hash(conn: sa.Connection, key_hash: str, *, now: datetime) -> KeyIdentity | None:
    """The identity of the key with hash ``key_hash`` as the cache holds it, or ``None`` when no such key
    can authenticate at ``now``.

    A process whose cache misses a well-formed key asks the store with it before refusing
    (:meth:`voidllm.auth.cache.KeyCache.resolve`): a key created through another process works at once.
    """
    found = _one_live_key(conn, t.api_keys.c.key_hash == key_hash, now=now)
    return None if found is None else found[1]


def _one_live_key(
    conn: sa.Connection, where: sa.ColumnElement[bool], *, now: datetime
) -> tuple[str, KeyIdentity] | None:
    row = conn.execute(_live_keys_query(now).where(where)).mappings().first()
    if row is None:
        return None
    identity = _identity(row)
    scopes = [("org", identity.org_id), ("key", identity.key_id)]
    if identity.team_id is not None:
        scopes.append(("team", identity.team_id))
    found: dict[tuple[str, str], ScopePolicy] = {}
    for scope_type, scope_id in scopes:
        found.update(read_scope_policies(conn, scope_type, [scope_id]))
    return row["key_hash"], _with_policies(identity, found)


def _with_policies(identity: KeyIdentity, policies: dict[tuple[str, str], ScopePolicy]) -> KeyIdentity:
    """``identity`` with the merged policies of its organisation, team and key (unchanged without any)."""
    if not policies:
        return identity
    scopes = [
        policies.get(("org", identity.org_id), _NONE),
        policies.get(("team", identity.team_id), _NONE) if identity.team_id else _NONE,
        policies.get(("key", identity.key_id), _NONE),
    ]
    request = request_policy.merge(*(scope.request for scope in scopes))
    guards = [scope.guard for scope in scopes if scope.guard is not None]
    merged_guard = guard.merge(*guards) if guards else None
    if request is None and merged_guard is None:
        return identity
    return attrs.evolve(identity, policy=request, guard=merged_guard)


def _identity(row: sa.RowMapping) -> KeyIdentity:
    return KeyIdentity(
        key_id=row["id"],
        key_type=row["key_type"],
        name=row["name"],
        role=effective_role(
            row["key_type"],
            is_system_admin=bool(row["is_system_admin"]),
            org_role=row["org_role"],
            has_team=row["team_id"] is not None,
        ),
        org_id=row["org_id"],
        team_id=row["team_id"],
        user_id=row["user_id"],
        service_account_id=row["service_account_id"],
        expires_at=row["expires_at"],
        key_limits=Limits.from_row(row),
        team_limits=Limits.from_row(row, "team_") if row["team_id"] else Limits(),
        org_limits=Limits.from_row(row, "org_"),
    )
