"""Per-scope policies: the request policy and the prompt guard policy of an organisation, team, key or model.

One document per scope, ``{"request": {...} | null, "guard": {...} | null}``, stored as sent once it parsed
(:func:`voidllm.request_policy.parse_policy`, :func:`voidllm.guard.parse_policy`: a 400 naming the path of the
first invalid part, ``request.params.bounds.max_tokens.max``). ``PUT`` replaces it, ``DELETE`` removes it,
``GET`` shows it (``null`` parts when none is set) and, for a team or a key, the ``effective`` policies: the
merge, most restrictive first, of the organisation's, the team's and the key's (a model's policy applies on
top, per request).

Who may change a scope's policy is who may change its limits, since both are ceilings set from above:
an organisation's by system admins (its org admins read it); a team's by org admins (its team admins read
it); a key's by the admins above the key (a system admin; an org admin; for a key bound to a team, that
team's admin), never its holder below org admin and never through the key itself unless a system admin
(its holder reads it); a model's by system admins.

Propagation: a change to an organisation's, team's or key's policy reloads the key cache at once (every cached
identity carries its merged policies) and tells the other processes (``keys`` topic); a model's reloads the
catalog (``models`` topic). Deleting an organisation, team, key or model deletes its policies (and those of
the teams and keys deleted with it) in the same transaction (:func:`voidllm.store.policies.delete_policies`;
every revocation of keys does it for them: users, memberships, service accounts, teams, organisations);
a rotated key's successor gets a copy of its policies
(:func:`voidllm.store.policies.copy_key_policies`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
import orjson
import sqlalchemy as sa

from voidllm import guard, request_policy
from voidllm.admin.context import Actor
from voidllm.admin.keys import find_key, require_admin_above
from voidllm.admin.services import Services
from voidllm.admin.tenancy import is_team_admin, is_team_member, live_org, live_team, reload_keys
from voidllm.bus import TOPIC_MODELS
from voidllm.errors import NotFoundError, PermissionDeniedError
from voidllm.identity import Role
from voidllm.request_policy import ScopePolicy
from voidllm.store import tables as t
from voidllm.store.ids import utcnow
from voidllm.store.policies import read_scope_policies

_NONE = ScopePolicy()


@attrs.frozen(kw_only=True)
class PolicyIn:
    """A scope's policies: ``request`` (parameters, required headers, allowed origins) and ``guard`` (the
    prompt guard's detectors and responses); ``null`` or absent: none."""

    request: dict[str, Any] | None = None
    guard: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class EffectivePolicy:
    """The policies that apply, merged from the organisation, team and key (most restrictive wins)."""

    request: dict[str, Any] | None = None
    guard: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class PolicyOut:
    scope_type: str
    scope_id: str
    request: dict[str, Any] | None = None
    guard: dict[str, Any] | None = None
    effective: EffectivePolicy | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None


@attrs.frozen
class Scope:
    """One scope: its type, id, and the ids of the scopes above it whose policies merge with its own."""

    type: str
    id: str
    org_id: str | None = None
    team_id: str | None = None


def _validate(body: PolicyIn) -> tuple[str | None, str | None]:
    """The documents to store (JSON text), after the strict parsers accepted them (400 naming the path)."""
    if body.request is not None:
        request_policy.parse_policy(body.request, "request")
    if body.guard is not None:
        validate_guard(body.guard)
    return _encode(body.request), _encode(body.guard)


def _encode(value: dict[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _decode(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(orjson.loads(text))


def validate_guard(document: Any) -> None:
    """400 naming the path unless ``document`` is a valid prompt guard policy (``voidllm.guard``)."""
    guard.parse_policy(document, "guard")


# -- scope lookups and permissions (inside a transaction) -----------------------------------------------


def _org_scope(conn: sa.Connection, actor: Actor, org_id: str, *, write: bool) -> Scope:
    actor.require(Role.SYSTEM_ADMIN if write else Role.ORG_ADMIN)
    actor.require_org(org_id)
    live_org(conn, org_id)
    return Scope("org", org_id)


def _team_scope(conn: sa.Connection, actor: Actor, org_id: str, team_id: str, *, write: bool) -> Scope:
    actor.require_org(org_id)
    live_team(conn, org_id, team_id)
    if not is_team_member(conn, actor, team_id):
        raise NotFoundError("team not found")
    if not is_team_admin(conn, actor, team_id):
        raise PermissionDeniedError("insufficient permissions")
    if write and actor.role < Role.ORG_ADMIN:
        raise PermissionDeniedError("a team's policy is set by an org admin")
    return Scope("team", team_id, org_id=org_id)


def _key_scope(conn: sa.Connection, actor: Actor, org_id: str, key_id: str, *, write: bool) -> Scope:
    actor.require_org(org_id)
    row = find_key(conn, actor, org_id, key_id)
    if write:
        require_admin_above(conn, actor, row, "a key's policy is set by an administrator above it")
    return Scope("key", key_id, org_id=org_id, team_id=row["team_id"])


def _model_scope(conn: sa.Connection, actor: Actor, model_id: str, *, write: bool) -> Scope:
    actor.require(Role.SYSTEM_ADMIN)
    m = t.models
    found = conn.execute(sa.select(m.c.id).where(m.c.id == model_id, m.c.deleted_at.is_(None))).first()
    if found is None:
        raise NotFoundError("model not found")
    return Scope("model", model_id)


# -- reading and writing ----------------------------------------------------------------------------------


def _read(conn: sa.Connection, scope: Scope) -> PolicyOut:
    p = t.policies
    row = (
        conn.execute(sa.select(p).where(p.c.scope_type == scope.type, p.c.scope_id == scope.id))
        .mappings()
        .first()
    )
    out = PolicyOut(scope_type=scope.type, scope_id=scope.id)
    if row is not None:
        out = attrs.evolve(
            out,
            request=_decode(row["request"]),
            guard=_decode(row["guard"]),
            updated_at=row["updated_at"],
            updated_by=row["updated_by"],
        )
    if scope.type in ("team", "key"):
        out = attrs.evolve(out, effective=_effective(conn, scope))
    return out


def _effective(conn: sa.Connection, scope: Scope) -> EffectivePolicy:
    wanted = [("org", scope.org_id), ("team", scope.team_id), (scope.type, scope.id)]
    found: dict[tuple[str, str], ScopePolicy] = {}
    for scope_type, scope_id in dict.fromkeys(wanted):
        if scope_id is not None:
            found.update(read_scope_policies(conn, scope_type, [scope_id]))
    parts = list(found.values()) or [_NONE]
    merged = request_policy.merge(*(part.request for part in parts))
    guards = [part.guard for part in parts if part.guard is not None]
    return EffectivePolicy(
        request=None if merged is None else request_policy.dump_policy(merged),
        guard=guard.dump_policy(guard.merge(*guards)) if guards else None,
    )


def _put(conn: sa.Connection, scope: Scope, documents: tuple[str | None, str | None], by: str | None) -> None:
    p = t.policies
    request, guard_doc = documents
    conn.execute(p.delete().where(p.c.scope_type == scope.type, p.c.scope_id == scope.id))
    if request is not None or guard_doc is not None:
        conn.execute(
            p.insert().values(
                scope_type=scope.type,
                scope_id=scope.id,
                request=request,
                guard=guard_doc,
                updated_at=utcnow(),
                updated_by=by,
            )
        )


async def _propagate(services: Services, scope: Scope) -> None:
    if scope.type == "model":
        await services.catalog_changed(TOPIC_MODELS)
    else:
        await reload_keys(services)


# -- use cases ----------------------------------------------------------------------------------------------

_SCOPES: dict[str, Callable[..., Scope]] = {
    "org": _org_scope,
    "team": _team_scope,
    "key": _key_scope,
    "model": _model_scope,
}


async def get(services: Services, actor: Actor, scope_type: str, *ids: str) -> PolicyOut:
    """A scope's policies (and, for a team or key, the effective ones); ``ids`` are the path's ids."""

    def read(conn: sa.Connection) -> PolicyOut:
        return _read(conn, _SCOPES[scope_type](conn, actor, *ids, write=False))

    return await services.store.run(read)


async def put(services: Services, actor: Actor, scope_type: str, *ids: str, body: PolicyIn) -> PolicyOut:
    """Replace a scope's policies (both ``null``: remove them); the change reaches the caches at once.

    Raises:
        BadRequestError: a document does not parse (``param``/``field``: its path).
        PermissionDeniedError, NotFoundError: see the module docstring.
    """
    documents = _validate(body)

    def write(conn: sa.Connection) -> tuple[Scope, PolicyOut]:
        scope = _SCOPES[scope_type](conn, actor, *ids, write=True)
        _put(conn, scope, documents, actor.actor_id)
        return scope, _read(conn, scope)

    scope, out = await services.store.run(write)
    await _propagate(services, scope)
    return out


async def delete(services: Services, actor: Actor, scope_type: str, *ids: str) -> None:
    """Remove a scope's policies (nothing to remove is not an error)."""

    def write(conn: sa.Connection) -> Scope:
        scope = _SCOPES[scope_type](conn, actor, *ids, write=True)
        _put(conn, scope, (None, None), None)
        return scope

    scope = await services.store.run(write)
    await _propagate(services, scope)
