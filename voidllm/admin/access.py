"""Model-access allowlists at org, team and key level (docs/reference/behaviour.md 1.6 "Access control",
section 4).

An allowlist is a set of canonical model names. An empty list allows every model; every non-empty level a
key falls under (its org, its team, the key itself) must list the model, so the most restrictive wins.
``PUT`` replaces a list whole; names that are not live models are refused with 400.

Who may read which list: org and key lists an org admin of that org (or a system admin); a team list also a
team admin of that team (a team key, or a user who is team admin there). Who may replace it follows the
limits (a restriction set by a higher role is a ceiling a lower role cannot lift): an organisation's list
only a system admin, a team's or a key's list an org admin of the organisation (or a system admin).
Outside their scope, callers get 404 for teams and keys, as if they did not exist. After a write the running
catalog reloads at once and ``access`` is published for the other processes.
"""

from __future__ import annotations

from functools import partial

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.services import Services
from voidllm.admin.tenancy import is_team_admin, is_team_member
from voidllm.bus import TOPIC_ACCESS
from voidllm.errors import BadRequestError, NotFoundError, PermissionDeniedError
from voidllm.identity import Role
from voidllm.store import tables as t


@attrs.frozen
class ModelAccess:
    """Body and response of the model-access routes."""

    models: list[str] = attrs.Factory(list)


@attrs.frozen
class AccessScope:
    """Whose list: an org's, a team's (``team_id``) or a key's (``key_id``)."""

    org_id: str
    team_id: str | None = None
    key_id: str | None = None

    @property
    def table(self) -> sa.Table:
        if self.team_id is not None:
            return t.team_model_access
        return t.key_model_access if self.key_id is not None else t.org_model_access

    @property
    def column(self) -> sa.Column[str]:
        table = self.table
        return table.c.team_id if self.team_id else table.c.key_id if self.key_id else table.c.org_id

    @property
    def scope_id(self) -> str:
        return self.team_id or self.key_id or self.org_id


async def read_model_access(services: Services, actor: Actor, scope: AccessScope) -> ModelAccess:
    """The allowlist of ``scope`` (empty: every model allowed)."""
    _gate(actor, scope)
    return await services.store.run(partial(_read_tx, scope=scope, actor=actor))


async def replace_model_access(
    services: Services, actor: Actor, scope: AccessScope, req: ModelAccess
) -> ModelAccess:
    """Replace the allowlist of ``scope``; it holds for new requests at once.

    Raises:
        PermissionDeniedError: an org's list below system admin, a team's or key's list below org admin.
    """
    _gate(actor, scope)
    _gate_replace(actor, scope)
    out = await services.store.run(partial(_replace_tx, scope=scope, actor=actor, names=req.models))
    await services.catalog_changed(TOPIC_ACCESS)
    return out


def _gate(actor: Actor, scope: AccessScope) -> None:
    """Org and key lists need an org admin; a team's list its team admins too (checked in :func:`check_team`:
    a user key's role is its org role, so a user who is a team's admin passes here as a member)."""
    if scope.team_id is None:
        actor.require(Role.ORG_ADMIN)
    actor.require_org(scope.org_id)


def _gate_replace(actor: Actor, scope: AccessScope) -> None:
    """An org's list is replaced by system admins only; a team's or a key's by org admins and above."""
    if scope.team_id is None and scope.key_id is None:
        if not actor.is_system_admin:
            raise PermissionDeniedError("an organization's model allowlist is set by a system admin")
    elif actor.role < Role.ORG_ADMIN:
        raise PermissionDeniedError("this model allowlist is set by an org admin")


def _read_tx(conn: sa.Connection, *, scope: AccessScope, actor: Actor) -> ModelAccess:
    check_scope(conn, scope, actor)
    names = conn.execute(sa.select(scope.table.c.model_name).where(scope.column == scope.scope_id)).scalars()
    return ModelAccess(models=sorted(names))


def _replace_tx(conn: sa.Connection, *, scope: AccessScope, actor: Actor, names: list[str]) -> ModelAccess:
    check_scope(conn, scope, actor)
    wanted = sorted(set(names))
    m = t.models
    query = sa.select(m.c.name).where(m.c.deleted_at.is_(None), m.c.name.in_(wanted))
    known = set(conn.execute(query).scalars())
    unknown = [index for index, name in enumerate(names) if name not in known]
    if unknown:
        raise BadRequestError(f"models[{unknown[0]}] is not the name of a known model")
    table = scope.table
    conn.execute(sa.delete(table).where(scope.column == scope.scope_id))
    if wanted:
        rows = [{scope.column.key: scope.scope_id, "model_name": name} for name in wanted]
        conn.execute(sa.insert(table), rows)
    return ModelAccess(models=wanted)


def check_scope(conn: sa.Connection, scope: AccessScope, actor: Actor) -> None:
    """404 unless the org (and the team or key in it) is live and, for a team below org admin, the actor's."""
    org = t.organizations
    live_org = sa.select(org.c.id).where(org.c.id == scope.org_id, org.c.deleted_at.is_(None))
    if conn.execute(live_org).first() is None:
        raise NotFoundError("organization not found")
    if scope.team_id is not None:
        check_team(conn, scope.org_id, scope.team_id, actor)
    if scope.key_id is not None:
        k = t.api_keys
        live_key = sa.select(k.c.id).where(k.c.id == scope.key_id, k.c.org_id == scope.org_id)
        if conn.execute(live_key.where(k.c.deleted_at.is_(None))).first() is None:
            raise NotFoundError("API key not found")


def check_team(conn: sa.Connection, org_id: str, team_id: str, actor: Actor) -> None:
    """404 ``team not found`` unless the team is live in the org and within the actor's reach."""
    team = t.teams
    found = conn.execute(
        sa.select(team.c.id).where(team.c.id == team_id, team.c.org_id == org_id, team.c.deleted_at.is_(None))
    ).first()
    if found is None or not is_team_member(conn, actor, team_id):
        raise NotFoundError("team not found")
    if not is_team_admin(conn, actor, team_id):
        raise PermissionDeniedError("insufficient permissions")
