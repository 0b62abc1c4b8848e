"""The dashboard numbers: ``GET /api/v1/dashboard/stats`` (docs/reference/behaviour.md 1.6), scoped by who
asks.

Scope, from the caller's role:

=========  ======================================================================================
system     a system administrator (or the command line): every organisation
org        an organisation administrator (or an org-scoped service-account key): the key's organisation
team       a team key, a team service-account key, or a user who administers teams of the key's
           organisation by membership: those teams
user       any other user key: the user's own keys in the key's organisation
=========  ======================================================================================

Numbers, all within the scope: requests, tokens and estimated cost of the last 24 hours (read from
``usage_events`` by ``created_at``, exact, not from the hourly rollups); live keys (not deleted, not expired,
login sessions not counted); teams and members (system: live teams and users; org: its teams and members;
team: the teams and their distinct members; user: left out).

Budget warnings: every token budget (``daily_token_limit``, ``monthly_token_limit``) of an organisation, team
or key in scope that has used at least :data:`WARN_PERCENT` % in its current window. Windows are those the
limiter enforces (:func:`voidllm.limits.base.window_bounds`: the UTC day and the UTC month). Which budgets
are in scope: system: every organisation's; org: the organisation's, its teams' and its keys'; team: the
organisation's, the teams' and their keys'; user: the organisation's and the user's keys'.

Model health: the models the caller may use (every model for a system administrator), each with one status
folded from its upstreams' latest probe reports (:class:`voidllm.routing.health.HealthBoard`): healthy when
every probed upstream is healthy, unhealthy when every probed upstream is unhealthy, degraded otherwise.
Models with no probed upstream (probes off or not yet run) are in none of the three counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.services import Services
from voidllm.admin.tenancy import administered_teams
from voidllm.identity import Role
from voidllm.limits.base import DAY, MONTH, window_bounds
from voidllm.store import tables as t
from voidllm.store.ids import utcnow
from voidllm.usage.cost import money

__all__ = ["WARN_PERCENT", "BudgetWarning", "DashboardStats", "stats"]

WARN_PERCENT = 80
_WINDOWS = (("daily", DAY, "daily_token_limit"), ("monthly", MONTH, "monthly_token_limit"))


@attrs.frozen
class BudgetWarning:
    """A token budget at or above :data:`WARN_PERCENT` % of its limit in the current window."""

    window: str  # daily | monthly
    scope: str  # org | team | key
    scope_id: str
    name: str
    limit: int
    usage: int
    percent_used: float


@attrs.frozen
class DashboardStats:
    scope: str  # system | org | team | user
    active_keys: int
    total_teams: int | None
    total_members: int | None
    requests_24h: int
    tokens_24h: int
    cost_estimate_24h: float
    budget_warnings: list[BudgetWarning]
    models_healthy: int
    models_unhealthy: int
    models_degraded: int


@attrs.frozen
class _Scope:
    """Which rows of ``usage_events`` and ``api_keys`` (both have org, team and user columns) count."""

    name: str
    org_id: str | None = None
    team_ids: tuple[str, ...] = ()
    user_id: str | None = None

    def where(self, table: sa.Table) -> list[sa.ColumnElement[bool]]:
        c = table.c
        conditions = [] if self.org_id is None else [c.org_id == self.org_id]
        if self.name == "team":
            conditions.append(c.team_id.in_(self.team_ids))
        elif self.name == "user":
            conditions.append(c.user_id == self.user_id)
        return conditions


async def stats(services: Services, actor: Actor) -> DashboardStats:
    """The dashboard numbers within the caller's scope (any authenticated caller)."""
    numbers = await services.store.run(partial(_stats_tx, actor, utcnow()))
    healthy, unhealthy, degraded = _model_health(services, actor)
    return attrs.evolve(numbers, models_healthy=healthy, models_unhealthy=unhealthy, models_degraded=degraded)


def _scope(conn: sa.Connection, actor: Actor) -> _Scope:
    if actor.is_system_admin:
        return _Scope("system")
    if actor.role >= Role.ORG_ADMIN:
        return _Scope("org", actor.org_id)
    teams = t.teams.c
    administered = (
        conn.execute(
            sa.select(teams.id)
            .where(
                teams.id.in_(administered_teams(actor)),
                teams.org_id == actor.org_id,
                teams.deleted_at.is_(None),
            )
            .order_by(teams.id)
        )
        .scalars()
        .all()
    )
    if administered:
        return _Scope("team", actor.org_id, tuple(administered))
    return _Scope("user", actor.org_id, user_id=actor.user_id)


def _stats_tx(actor: Actor, now: datetime, conn: sa.Connection) -> DashboardStats:
    scope = _scope(conn, actor)
    u, k = t.usage_events, t.api_keys
    day = conn.execute(
        sa.select(sa.func.count(), sa.func.sum(u.c.total_tokens), sa.func.sum(u.c.cost_estimate)).where(
            *scope.where(u), u.c.created_at >= now - timedelta(hours=24)
        )
    ).one()
    live = (
        k.c.deleted_at.is_(None),
        k.c.key_type != "session_key",
        sa.or_(k.c.expires_at.is_(None), k.c.expires_at > now),
    )
    active_keys = conn.execute(sa.select(sa.func.count()).where(*scope.where(k), *live)).scalar_one()
    teams, members = _headcount(conn, scope)
    return DashboardStats(
        scope=scope.name,
        active_keys=int(active_keys),
        total_teams=teams,
        total_members=members,
        requests_24h=int(day[0]),
        tokens_24h=int(day[1] or 0),
        cost_estimate_24h=money(day[2]),
        budget_warnings=_budget_warnings(conn, scope, now),
        models_healthy=0,
        models_unhealthy=0,
        models_degraded=0,
    )


def _count(conn: sa.Connection, select: sa.Select[Any]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(select.subquery())).scalar_one())


def _headcount(conn: sa.Connection, scope: _Scope) -> tuple[int | None, int | None]:
    """``(teams, members)`` in scope; ``(None, None)`` for a user's own view."""
    teams, users = t.teams.c, t.users.c
    live_users = sa.select(users.id).where(users.deleted_at.is_(None))
    if scope.name == "system":
        return _count(conn, sa.select(teams.id).where(teams.deleted_at.is_(None))), _count(conn, live_users)
    if scope.name == "org":
        m = t.org_memberships.c
        members = sa.select(m.user_id).where(m.org_id == scope.org_id, m.user_id.in_(live_users))
        org_teams = sa.select(teams.id).where(teams.org_id == scope.org_id, teams.deleted_at.is_(None))
        return _count(conn, org_teams), _count(conn, members)
    if scope.name == "team":
        tm = t.team_memberships.c
        members = (
            sa.select(tm.user_id).where(tm.team_id.in_(scope.team_ids), tm.user_id.in_(live_users)).distinct()
        )
        return len(scope.team_ids), _count(conn, members)
    return None, None


_Owners = tuple[str, sa.Table, str, Sequence[sa.ColumnElement[bool]]]


def _budget_owners(scope: _Scope) -> list[_Owners]:
    """``(level, owner table, usage_events column, which owners)`` of the budgets in scope."""
    orgs, teams, keys = t.organizations, t.teams, t.api_keys
    if scope.name == "system":
        return [("org", orgs, "org_id", ())]
    owners: list[_Owners] = [("org", orgs, "org_id", (orgs.c.id == scope.org_id,))]
    if scope.name == "org":
        owners.append(("team", teams, "team_id", (teams.c.org_id == scope.org_id,)))
    elif scope.name == "team":
        owners.append(("team", teams, "team_id", (teams.c.id.in_(scope.team_ids),)))
    owners.append(("key", keys, "key_id", tuple(scope.where(keys))))
    return owners


def _budget_warnings(conn: sa.Connection, scope: _Scope, now: datetime) -> list[BudgetWarning]:
    u = t.usage_events
    found: list[BudgetWarning] = []
    for window, span, limit_column in _WINDOWS:
        since = datetime.fromtimestamp(window_bounds(span, now.timestamp())[0], UTC)
        for level, owner, column, which in _budget_owners(scope):
            limit, used = owner.c[limit_column], sa.func.sum(u.c.total_tokens)
            select = (
                sa.select(owner.c.id, owner.c.name, limit, used)
                .select_from(u.join(owner, owner.c.id == u.c[column]))
                .where(u.c.created_at >= since, limit > 0, owner.c.deleted_at.is_(None), *which)
                .group_by(owner.c.id, owner.c.name, limit)
                .having(used * 100 >= limit * WARN_PERCENT)
            )
            for owner_id, name, limit_value, usage in conn.execute(select):
                found.append(
                    BudgetWarning(
                        window=window,
                        scope=level,
                        scope_id=owner_id,
                        name=name,
                        limit=int(limit_value),
                        usage=int(usage),
                        percent_used=round(int(usage) * 100 / int(limit_value), 1),
                    )
                )
    found.sort(key=lambda w: (-w.percent_used, w.window, w.scope, w.scope_id))
    return found


def _model_health(services: Services, actor: Actor) -> tuple[int, int, int]:
    """``(healthy, unhealthy, degraded)`` models the caller may use; see the module docstring."""
    catalog, board = services.catalog, services.health.board if services.health is not None else None
    if catalog is None or board is None:
        return 0, 0, 0
    if actor.identity is None or actor.is_system_admin:
        models = list(catalog.registry.models)
    else:
        models = catalog.visible(actor.identity)
    counts = {"healthy": 0, "unhealthy": 0, "degraded": 0}
    for model in models:
        known = {board.status(upstream.name) for upstream in model.upstreams} - {"unknown"}
        if not known:
            continue
        status = known.pop() if len(known) == 1 else "degraded"
        counts[status if status in counts else "degraded"] += 1
    return counts["healthy"], counts["unhealthy"], counts["degraded"]
