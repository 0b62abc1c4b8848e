"""Usage analytics (docs/reference/behaviour.md 1.6): what was used in a time range, in total or grouped by
one dimension.

Three views of ``usage_events``, differing only in scope and gate:

- ``GET /usage``: every organisation (system administrators); may group by ``org``;
- ``GET /orgs/{org_id}/usage``: one organisation (its administrators and system administrators);
- ``GET /usage/me``: the caller's own usage: a user's requests in the key's organisation (through any of
  their keys), or, for a team or service-account key, that key's requests.

And two of ``mcp_tool_calls`` (docs/reference/behaviour.md 8.4): ``GET /mcp-usage`` and
``GET /orgs/{org_id}/mcp-usage``.

Numbers are computed from the raw rows on every call (exact; the hourly rollups are not used), over the
half-open range ``from <= created_at < to``: ``from`` must be before ``to`` and the range at most
:data:`MAX_RANGE` long. Groups of ids carry a label resolved in the same query (key name, user display name
or else email, team name, organisation name; a soft-deleted row's tombstone suffix is dropped); model names,
client tags, MCP servers, tools and statuses label themselves. ``day`` and ``hour`` buckets are UTC, keyed
``YYYY-MM-DD`` and ``YYYY-MM-DDTHH:00:00Z``, built with ``strftime`` on SQLite and ``to_char`` on PostgreSQL.
Rows whose dimension is empty (no team, no user, no tag) form one group with a ``null`` key.

Ordering: time buckets chronologically; other groups by volume (tokens or calls), then requests, then key.
Without ``group_by`` the answer has exactly one data point, zero when nothing was used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.services import Services
from voidllm.errors import BadRequestError, NotFoundError
from voidllm.identity import Role
from voidllm.store import tables as t
from voidllm.usage.cost import money
from voidllm.usage.rollups import HOUR, floor_hour, pending_from

__all__ = [
    "MAX_RANGE",
    "McpGroupBy",
    "McpUsagePoint",
    "McpUsageQuery",
    "McpUsageReport",
    "UsageGroupBy",
    "UsagePoint",
    "UsageQuery",
    "UsageReport",
    "mcp_org_usage",
    "mcp_system_usage",
    "my_usage",
    "org_usage",
    "system_usage",
    "time_bucket",
]

MAX_RANGE = timedelta(days=90)

UsageGroupBy = Literal["model", "team", "key", "user", "org", "day", "hour", "source", "project"]
McpGroupBy = Literal["server", "tool", "team", "key", "user", "org", "day", "hour", "status"]
TIME_BUCKETS = ("day", "hour")


def _check_range(from_: datetime, to: datetime) -> None:
    if from_ >= to:
        raise BadRequestError("from must be before to")
    if to - from_ > MAX_RANGE:
        raise BadRequestError(f"the range from..to must not exceed {MAX_RANGE.days} days")


@attrs.frozen
class UsageQuery:
    """``from`` (inclusive) and ``to`` (exclusive), RFC 3339, and an optional ``group_by``."""

    from_: datetime
    to: datetime
    group_by: UsageGroupBy | None = None

    def __attrs_post_init__(self) -> None:
        _check_range(self.from_, self.to)


@attrs.frozen
class McpUsageQuery:
    """Like :class:`UsageQuery`, grouped by an MCP dimension."""

    from_: datetime
    to: datetime
    group_by: McpGroupBy | None = None

    def __attrs_post_init__(self) -> None:
        _check_range(self.from_, self.to)


@attrs.frozen
class UsagePoint:
    """Totals of one group; ``cost_estimate`` sums the requests that had one (priced models);
    ``error_count``: requests whose outcome was not ``ok`` (an error answer, a timeout, a broken stream)."""

    group_key: str | None
    group_label: str | None
    total_requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_estimate: float
    avg_duration_ms: float
    error_count: int = 0

    @classmethod
    def from_sums(cls, key: str | None, label: str | None, sums: Mapping[str, Any]) -> UsagePoint:
        requests = int(sums["total_requests"])
        return cls(
            group_key=key,
            group_label=label,
            total_requests=requests,
            prompt_tokens=int(sums["prompt_tokens"]),
            completion_tokens=int(sums["completion_tokens"]),
            total_tokens=int(sums["total_tokens"]),
            cost_estimate=money(sums["cost_estimate"]),
            avg_duration_ms=float(sums["duration_sum_ms"]) / requests if requests else 0.0,
            error_count=int(sums["error_count"]),
        )


@attrs.frozen
class UsageReport:
    org_id: str | None
    from_: datetime
    to: datetime
    group_by: str | None
    data: list[UsagePoint]


@attrs.frozen
class McpUsagePoint:
    """Totals of one group of MCP tool calls; ``error_count``: every call neither successful nor timed out."""

    group_key: str | None
    group_label: str | None
    total_calls: int
    success_count: int
    error_count: int
    timeout_count: int
    avg_duration_ms: float
    code_mode_calls: int

    @classmethod
    def from_row(cls, row: sa.RowMapping, label: str | None) -> McpUsagePoint:
        total, success = int(row["total_calls"]), int(row["success_count"] or 0)
        timeout = int(row["timeout_count"] or 0)
        return cls(
            group_key=row.get("group_key"),
            group_label=label,
            total_calls=total,
            success_count=success,
            error_count=total - success - timeout,
            timeout_count=timeout,
            avg_duration_ms=float(row["avg_duration_ms"] or 0),
            code_mode_calls=int(row["code_mode_calls"] or 0),
        )


@attrs.frozen
class McpUsageReport:
    org_id: str | None
    from_: datetime
    to: datetime
    group_by: str | None
    data: list[McpUsagePoint]


# -- use cases ------------------------------------------------------------------------------------------


async def system_usage(services: Services, actor: Actor, query: UsageQuery) -> UsageReport:
    """Usage of every organisation. Raises PermissionDeniedError below system admin."""
    actor.require(Role.SYSTEM_ADMIN)
    return await services.store.run(partial(_usage_tx, query, None, {}))


async def org_usage(services: Services, actor: Actor, org_id: str, query: UsageQuery) -> UsageReport:
    """Usage of one organisation.

    Raises:
        PermissionDeniedError: below org admin, or another organisation's admin.
        NotFoundError: no such organisation.
        BadRequestError: ``group_by=org`` (only the system-wide view groups by organisation).
    """
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)
    _no_org_grouping(query.group_by)
    return await services.store.run(partial(_org_usage_tx, query, org_id))


async def my_usage(services: Services, actor: Actor, query: UsageQuery) -> UsageReport:
    """The caller's own usage: a user's in the key's organisation, else the calling key's.

    Raises:
        BadRequestError: ``group_by=org``, or no key (the command line has no usage of its own).
    """
    _no_org_grouping(query.group_by)
    if actor.identity is None:
        raise BadRequestError("this endpoint needs an API key")
    if actor.user_id is not None:
        scope = {"org_id": actor.org_id, "user_id": actor.user_id}
    else:
        scope = {"key_id": actor.key_id}
    return await services.store.run(partial(_usage_tx, query, actor.org_id, scope))


async def mcp_system_usage(services: Services, actor: Actor, query: McpUsageQuery) -> McpUsageReport:
    """MCP tool calls of every organisation. Raises PermissionDeniedError below system admin."""
    actor.require(Role.SYSTEM_ADMIN)
    return await services.store.run(partial(_mcp_tx, query, None, ()))


async def mcp_org_usage(
    services: Services, actor: Actor, org_id: str, query: McpUsageQuery
) -> McpUsageReport:
    """MCP tool calls of one organisation; errors as :func:`org_usage`."""
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)
    _no_org_grouping(query.group_by)
    return await services.store.run(partial(_mcp_org_tx, query, org_id))


def _no_org_grouping(group_by: str | None) -> None:
    if group_by == "org":
        raise BadRequestError("group_by org is only available system-wide")


# -- queries --------------------------------------------------------------------------------------------


def _org_usage_tx(query: UsageQuery, org_id: str, conn: sa.Connection) -> UsageReport:
    _require_org_exists(conn, org_id)
    return _usage_tx(query, org_id, {"org_id": org_id}, conn)


def _mcp_org_tx(query: McpUsageQuery, org_id: str, conn: sa.Connection) -> McpUsageReport:
    _require_org_exists(conn, org_id)
    return _mcp_tx(query, org_id, (t.mcp_tool_calls.c.org_id == org_id,), conn)


def _require_org_exists(conn: sa.Connection, org_id: str) -> None:
    if conn.execute(sa.select(t.organizations.c.id).where(t.organizations.c.id == org_id)).first() is None:
        raise NotFoundError("organization not found")


_USAGE_SUMS = (
    "total_requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_estimate",
    "duration_sum_ms",
    "error_count",
)
_NOT_ROLLED_UP = frozenset({"source", "project"})  # dimensions usage_hourly does not keep


def _usage_tx(
    query: UsageQuery, org_id: str | None, scope: Mapping[str, str | None], conn: sa.Connection
) -> UsageReport:
    """The report from the hourly rollups for every whole hour of the range that is rolled up, and from
    ``usage_events`` for the rest (the partial hours at both ends, and the hours since
    :func:`~voidllm.usage.rollups.pending_from`), so it stays fast with millions of events. ``source`` and
    ``project`` are not in the rollups: grouped by them, the report reads the events."""
    u, h = t.usage_events.c, t.usage_hourly.c
    raw_totals = (
        sa.func.count().label("total_requests"),
        sa.func.coalesce(sa.func.sum(u.prompt_tokens), 0).label("prompt_tokens"),
        sa.func.coalesce(sa.func.sum(u.completion_tokens), 0).label("completion_tokens"),
        sa.func.coalesce(sa.func.sum(u.total_tokens), 0).label("total_tokens"),
        sa.func.coalesce(sa.func.sum(u.cost_estimate), 0.0).label("cost_estimate"),
        sa.func.coalesce(sa.func.sum(u.request_duration_ms), 0).label("duration_sum_ms"),
        sa.func.coalesce(sa.func.sum(sa.case((u.status != "ok", 1), else_=0)), 0).label("error_count"),
    )
    raw_scope = [u[name] == value for name, value in scope.items()]
    start, end = _rolled_hours(conn, query)
    if query.group_by in _NOT_ROLLED_UP or start >= end:
        parts = _grouped(conn, t.usage_events, query.group_by, raw_totals, raw_scope, query.from_, query.to)
    else:
        hourly_totals = (
            sa.func.coalesce(sa.func.sum(h.request_count), 0).label("total_requests"),
            sa.func.coalesce(sa.func.sum(h.prompt_tokens), 0).label("prompt_tokens"),
            sa.func.coalesce(sa.func.sum(h.completion_tokens), 0).label("completion_tokens"),
            sa.func.coalesce(sa.func.sum(h.total_tokens), 0).label("total_tokens"),
            sa.func.coalesce(sa.func.sum(h.cost_sum), 0.0).label("cost_estimate"),
            sa.func.coalesce(sa.func.sum(h.duration_sum_ms), 0).label("duration_sum_ms"),
            sa.func.coalesce(sa.func.sum(h.error_count), 0).label("error_count"),
        )
        hourly_scope = [h[name] == (value or "") for name, value in scope.items()]
        rolled = _grouped(
            conn,
            t.usage_hourly,
            query.group_by,
            hourly_totals,
            hourly_scope,
            start,
            end,
            created=h.bucket_hour,
        )
        parts = rolled
        for begin, until in ((query.from_, start), (end, query.to)):  # two plain ranges: each uses the index
            if begin < until:
                parts += _grouped(conn, t.usage_events, query.group_by, raw_totals, raw_scope, begin, until)
    points = _merged_points(parts)
    points.sort(key=_order(query.group_by, lambda p: (-p.total_tokens, -p.total_requests)))
    return UsageReport(org_id=org_id, from_=query.from_, to=query.to, group_by=query.group_by, data=points)


def _rolled_hours(conn: sa.Connection, query: UsageQuery) -> tuple[datetime, datetime]:
    """The whole hours ``[start, end)`` inside the query's range whose rollups are complete (empty when
    ``start >= end``)."""
    start = floor_hour(query.from_)
    if start < query.from_:
        start += HOUR
    end = floor_hour(query.to)
    pending = pending_from(conn)
    if pending is not None:
        end = min(end, pending)
    return start, end


def _merged_points(parts: Sequence[tuple[sa.RowMapping, str | None]]) -> list[UsagePoint]:
    """One point per group key, summing the rows of the rollups and of the events (a rollup's ``''`` team
    or user is the events' ``NULL``)."""
    sums: dict[str | None, dict[str, Any]] = {}
    labels: dict[str | None, str | None] = {}
    for row, label in parts:
        key = row.get("group_key") or None
        total = sums.setdefault(key, dict.fromkeys(_USAGE_SUMS, 0))
        for name in _USAGE_SUMS:
            total[name] += row[name] or 0
        labels[key] = labels.get(key) or (label if key is not None else None)
    return [UsagePoint.from_sums(key, labels[key], total) for key, total in sums.items()]


def _mcp_tx(
    query: McpUsageQuery, org_id: str | None, scope: Sequence[sa.ColumnElement[bool]], conn: sa.Connection
) -> McpUsageReport:
    m = t.mcp_tool_calls.c

    def count_where(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    totals = (
        sa.func.count().label("total_calls"),
        count_where(m.status == "success").label("success_count"),
        count_where(m.status == "timeout").label("timeout_count"),
        sa.func.avg(m.duration_ms).label("avg_duration_ms"),
        count_where(m.code_mode == sa.true()).label("code_mode_calls"),
    )
    rows = _grouped(conn, t.mcp_tool_calls, query.group_by, totals, scope, query.from_, query.to)
    points = [McpUsagePoint.from_row(row, label) for row, label in rows]
    points.sort(key=_order(query.group_by, lambda p: (-p.total_calls,)))
    return McpUsageReport(org_id=org_id, from_=query.from_, to=query.to, group_by=query.group_by, data=points)


def _order(
    group_by: str | None, volume: Callable[[Any], tuple[int, ...]]
) -> Callable[[Any], tuple[Any, ...]]:
    if group_by in TIME_BUCKETS:
        return lambda point: (point.group_key or "",)
    return lambda point: (*volume(point), point.group_key is None, point.group_key or "")


@attrs.frozen
class _Names:
    """How an id dimension is labelled: the table it points into and the label of a joined row."""

    table: sa.Table
    columns: tuple[str, ...]
    label: Callable[[sa.RowMapping], str | None]


def _tombstoned(value: str | None) -> str | None:
    """A name or email without the ``:deleted:<id>`` suffix of a soft-deleted row."""
    return None if value is None else value.split(":deleted:", 1)[0]


_NAMES = {
    "team": _Names(t.teams, ("name",), lambda row: _tombstoned(row["name"])),
    "key": _Names(t.api_keys, ("name",), lambda row: _tombstoned(row["name"])),
    "org": _Names(t.organizations, ("name",), lambda row: _tombstoned(row["name"])),
    "user": _Names(
        t.users, ("display_name", "email"), lambda row: _tombstoned(row["display_name"] or row["email"])
    ),
}
_ID_COLUMNS = {"team": "team_id", "key": "key_id", "org": "org_id", "user": "user_id"}
_OWN_COLUMNS = {
    "model": "model_name",
    "source": "source",
    "project": "project",  # usage_events
    "server": "server_alias",
    "tool": "tool_name",
    "status": "status",  # mcp_tool_calls
}


def _grouped(
    conn: sa.Connection,
    table: sa.Table,
    group_by: str | None,
    totals: Sequence[sa.ColumnElement[Any]],
    scope: Sequence[sa.ColumnElement[bool]],
    from_: datetime,
    to: datetime,
    *,
    created: sa.ColumnElement[Any] | None = None,
) -> list[tuple[sa.RowMapping, str | None]]:
    """``(row, label)`` per group of ``table``'s rows in ``[from_, to)`` within ``scope``; ``created`` is the
    time column (default ``created_at``)."""
    created = table.c.created_at if created is None else created
    where = (*scope, created >= from_, created < to)
    if group_by is None:
        return [(conn.execute(sa.select(*totals).where(*where)).mappings().one(), None)]
    names = _NAMES.get(group_by)
    if group_by in TIME_BUCKETS:
        key = time_bucket(conn.dialect.name, created, group_by)
    else:
        key = table.c[_ID_COLUMNS.get(group_by) or _OWN_COLUMNS[group_by]]
    if names is None:
        select = sa.select(key.label("group_key"), *totals).where(*where).group_by(key)
        return [(row, row["group_key"]) for row in conn.execute(select).mappings()]
    joined = [names.table.c[column] for column in names.columns]
    select = (
        sa.select(key.label("group_key"), *joined, *totals)
        .select_from(table.outerjoin(names.table, names.table.c.id == key))
        .where(*where)
        .group_by(key, *joined)
    )
    rows = conn.execute(select).mappings()
    return [(row, None if row["group_key"] is None else names.label(row)) for row in rows]


_SQLITE_FORMATS = {"day": "'%Y-%m-%d'", "hour": "'%Y-%m-%dT%H:00:00Z'"}
_POSTGRES_FORMATS = {"day": "'YYYY-MM-DD'", "hour": '\'YYYY-MM-DD"T"HH24":00:00Z"\''}


def time_bucket(dialect: str, column: sa.ColumnElement[Any], unit: str) -> sa.ColumnElement[str]:
    """The UTC ``day`` (``YYYY-MM-DD``) or ``hour`` (``YYYY-MM-DDTHH:00:00Z``) of a timestamp column, as text.

    The formats are inlined constants (not bound parameters) so the same expression can appear in ``SELECT``
    and ``GROUP BY`` on PostgreSQL, which compares the two textually.
    """
    if dialect == "postgresql":
        utc = sa.func.timezone(sa.literal_column("'UTC'"), column)
        return sa.func.to_char(utc, sa.literal_column(_POSTGRES_FORMATS[unit]), type_=sa.String)
    return sa.func.strftime(sa.literal_column(_SQLITE_FORMATS[unit]), column, type_=sa.String)
