"""Hourly rollups: ``usage_hourly`` rebuilt from ``usage_events`` by request time, incrementally and
idempotently.

A ``usage_hourly`` row sums the events of one UTC hour of *request time* (``usage_events.created_at``
truncated to the hour) for one (org, team or '', user or '', key, model): request count, tokens, cost,
durations, time-to-first-token sum and count, and ``error_count`` = events whose ``status`` is not ``ok``
(every such event also has a status code >= 400, except an upstream 3xx answer, which is counted too).
The Go original adds each flushed batch to the bucket of the *flush* time, which puts late events in the
wrong hour and counts a batch twice when it is retried (docs/reference/behaviour.md 9, 15); this module does
neither.

Algorithm. An hour is never added to; it is *replaced*: one transaction deletes the hour's rows and inserts
``INSERT ... SELECT ... GROUP BY`` over that hour's events. Running it again gives the same rows, so a
retried, repeated or concurrent run never double-counts. What remains is knowing which hours to rebuild.
Event ids are UUIDv7 made when the event is recorded (:attr:`UsageEvent.id`), seconds before its batch is
written, so ids order events by about *write* time, however late an event arrives for its request hour
(events written much later are marked, see ``lateness`` below). The state (one row of the
``settings`` table, :class:`RollupState`) keeps an id bound below which every event has been rolled up. A
run (:func:`roll_up`):

1. notes the current time (before anything else, so later writes are caught by the next run);
2. finds the distinct request hours of events with an id at or above the bound (an indexed range of the
   primary key: roughly the events written since the last run, so usually the current hour) and rebuilds
   each of them, one short transaction per hour;
3. with a ``resume_hour`` in the state (a first run, or one cut short), sweeps from there: rebuilds every
   later hour that holds events or rollup rows, at most ``max_hours`` of them, and keeps the next hour as
   the new ``resume_hour`` if it stopped early; the service then runs again at once, so a first run over
   a long history (an upgrade) neither holds up startup nor keeps the database busy in one go;
4. stores the new bound: the smallest id of the time of step 1 minus ``lateness``.

``lateness`` covers an event whose id was made before step 1 but was not visible yet: a batch transaction
still committing, or a gateway whose clock is behind this one's. Ids are made when the event is recorded
(so a retried or replayed batch lands once), and an event can wait far longer than ``lateness`` (a store
outage, the spill of :mod:`voidllm.usage.spill`): the writer marks the request hour of any event written
more than a second after its id was made (:func:`mark_late`, in the batch's transaction), and step 1 moves
that mark into the state's ``resume_hour`` (in one transaction), so the sweep of step 3 rebuilds it.
``lateness`` is not about late *request* times: an event written a
day after its request is found by its id and lands in its own hour. The price is that the hours of events
written within ``lateness`` before a run are rebuilt again by the next run.

Retention (:mod:`voidllm.usage.retention`) deletes old events in whole hours, and only hours before
:func:`pending_from` (everything there is rolled up). Before it deletes, it records the hour it deletes
up to as the *horizon*; rollups never rebuild an hour before the horizon, because rebuilding a partly or
wholly deleted hour would throw its counts away. An event that arrives for such an hour (later than the
retention period) stays out of the rollups. On PostgreSQL an hour's rebuild and every retention batch of
``usage_events`` take one transaction-level advisory lock, so neither sees the other half done; on SQLite
every transaction holds the write lock (``BEGIN IMMEDIATE``).

Rows must carry the writer's UUIDv7 ids for step 2 to find them. Rows loaded by other means (an import
with old ids) are rolled up by a full rebuild: delete the ``usage.rollups`` row of the ``settings`` table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import orjson
import sqlalchemy as sa
import trio
from sqlalchemy.dialects import postgresql as sa_postgresql
from sqlalchemy.dialects import sqlite as sa_sqlite

from voidllm.errors import StoreError
from voidllm.store.ids import utcnow
from voidllm.store.lease import LeaseState
from voidllm.store.store import Store
from voidllm.store.tables import settings, usage_events, usage_hourly
from voidllm.store.types import UTCDateTime
from voidllm.usage.metrics import ROLLUP_HOURS, ROLLUP_LAG, ROLLUP_RUNS, ROLLUP_SECONDS

__all__ = [
    "HORIZON_KEY",
    "LATE_KEY",
    "MAX_HOURS_PER_RUN",
    "STATE_KEY",
    "RollupRun",
    "RollupState",
    "floor_hour",
    "lock_usage",
    "mark_late",
    "mark_late_events",
    "pending_from",
    "read_horizon",
    "roll_up",
    "serve_rollups",
    "write_horizon",
]

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
STATE_KEY = "usage.rollups"
"""``settings`` row holding :class:`RollupState` as JSON."""
LATE_KEY = "usage.rollups.late_from"
"""``settings`` row: the earliest request hour of events written long after their ids were made (a retried
batch, a spill replayed after an outage), which the next run sweeps from (:func:`mark_late`)."""
LATE_AFTER_S = 1.0
"""Events written more than this long after their ids were made are marked late (no smaller than the least
``rollup_lateness``, so none slips between the two)."""
HORIZON_KEY = "usage.events_deleted_before"
"""``settings`` row: retention may have deleted events before this hour; rollups leave those hours alone."""
MAX_HOURS_PER_RUN = 24
_NO_LIMIT = 2**62  # a LIMIT that limits nothing (see pending_from)
_LOCK_KEY = 0x766C6C6D5F726F6C  # "vllm_rol": PostgreSQL advisory lock of rollups and event retention


def floor_hour(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC hour."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    start = floor_hour(moment)
    return start if start == moment else start + HOUR


def _id_floor(millis: int) -> str:
    """The smallest UUIDv7 text of millisecond ``millis``: ids at or after that instant compare >= it."""
    digits = f"{max(millis, 0):012x}"
    return f"{digits[:8]}-{digits[8:]}-0000-0000-000000000000"


# -- state in the settings table ----------------------------------------------------------------------


def _read_setting(connection: sa.Connection, key: str) -> str | None:
    return connection.execute(sa.select(settings.c.value).where(settings.c.key == key)).scalar_one_or_none()


def _write_setting(connection: sa.Connection, key: str, value: str) -> None:
    updated = connection.execute(sa.update(settings).where(settings.c.key == key).values(value=value))
    if updated.rowcount == 0:
        connection.execute(sa.insert(settings).values(key=key, value=value))


@attrs.frozen
class RollupState:
    """How far the rollups are: every event with an id below ``rolled_before_id`` is included, and the
    hours from ``resume_hour`` on still await a rebuild. Both ``None`` before the first run."""

    rolled_before_id: str | None = None
    resume_hour: datetime | None = None

    @classmethod
    def load(cls, connection: sa.Connection) -> RollupState:
        """The stored state (the empty state when there is none)."""
        raw = _read_setting(connection, STATE_KEY)
        if raw is None:
            return cls()
        doc = orjson.loads(raw)
        resume = doc.get("resume_hour")
        return cls(doc.get("rolled_before_id"), datetime.fromisoformat(resume) if resume else None)

    def save(self, connection: sa.Connection) -> None:
        """Store this state."""
        resume = self.resume_hour.isoformat() if self.resume_hour else None
        _write_setting(
            connection,
            STATE_KEY,
            orjson.dumps({"rolled_before_id": self.rolled_before_id, "resume_hour": resume}).decode(),
        )


def mark_late(connection: sa.Connection, moment: datetime) -> None:
    """Ask the next run to sweep from ``moment``'s hour (keeps the earliest mark; an atomic upsert, so
    writers in several processes never collide on the row)."""
    value = floor_hour(moment).isoformat()
    insert = (sa_postgresql.insert if connection.dialect.name == "postgresql" else sa_sqlite.insert)(settings)
    statement = insert.values(key=LATE_KEY, value=value).on_conflict_do_update(
        index_elements=[settings.c.key],
        set_={
            "value": sa.case(
                (insert.excluded.value < settings.c.value, insert.excluded.value), else_=settings.c.value
            ),
            "updated_at": utcnow(),
        },
    )
    connection.execute(statement)


def mark_late_events(
    connection: sa.Connection, rows: Sequence[Mapping[str, Any]], *, late_after: float = LATE_AFTER_S
) -> None:
    """Call :func:`mark_late` with the earliest request hour of the ``usage_events`` rows whose ids were
    made more than ``late_after`` seconds ago (none: nothing to do). ``late_after`` must stay below the
    rollups' ``rollup_lateness``, so no event slips between the two."""
    cutoff = _id_floor(int((time.time() - late_after) * 1000))
    late = [row["created_at"] for row in rows if row["id"] < cutoff]
    if late:
        mark_late(connection, min(late))


def _take_late(connection: sa.Connection) -> datetime | None:
    """The late mark, removed (in the caller's transaction: it moves into the state's ``resume_hour``)."""
    raw = _read_setting(connection, LATE_KEY)
    if raw is not None:
        connection.execute(sa.delete(settings).where(settings.c.key == LATE_KEY))
    return datetime.fromisoformat(raw) if raw else None


def read_horizon(connection: sa.Connection) -> datetime | None:
    """The hour before which retention may have deleted events (``None``: never)."""
    raw = _read_setting(connection, HORIZON_KEY)
    return datetime.fromisoformat(raw) if raw else None


def write_horizon(connection: sa.Connection, hour: datetime) -> None:
    """Move the horizon forward to ``hour`` (never backwards)."""
    current = read_horizon(connection)
    if current is None or hour > current:
        _write_setting(connection, HORIZON_KEY, hour.isoformat())


def lock_usage(connection: sa.Connection) -> None:
    """Serialise with other rollup and event-retention transactions (PostgreSQL; SQLite's write lock is
    taken by ``BEGIN IMMEDIATE`` already). Released when the transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_KEY)))


def pending_from(connection: sa.Connection, state: RollupState | None = None) -> datetime | None:
    """The first hour that may differ from its rollup (``None``: every event is rolled up): the hour of the
    earliest request among events at or above the state's id bound, or its resume hour if earlier."""
    state = state if state is not None else RollupState.load(connection)
    earliest = sa.select(sa.func.min(usage_events.c.created_at))
    if state.rolled_before_id is not None:
        # Not ``min(created_at) WHERE id >= bound``: both SQLite and PostgreSQL would walk the created_at
        # index from its start looking for a row above the bound (2.5 s over a million rolled-up events).
        # The LIMIT keeps the subquery a range of the primary key (a subquery with LIMIT is not flattened).
        recent = (
            sa.select(usage_events.c.created_at)
            .where(usage_events.c.id >= state.rolled_before_id)
            .order_by(usage_events.c.id)
            .limit(_NO_LIMIT)
            .subquery()
        )
        earliest = sa.select(sa.func.min(recent.c.created_at))
    changed = connection.execute(earliest).scalar_one_or_none()
    hours = [floor_hour(moment) for moment in (changed, state.resume_hour) if moment is not None]
    return min(hours, default=None)


# -- one run -------------------------------------------------------------------------------------------


@attrs.frozen
class RollupRun:
    """What one :func:`roll_up` did: hours rebuilt, and whether hours remain for the next run."""

    hours: int
    complete: bool


@attrs.frozen
class _Plan:
    changed: list[datetime]  # request hours of events written since the bound, ascending
    sweep_from: datetime | None
    next_bound: str | None


def _plan(connection: sa.Connection, lateness: float) -> _Plan:
    # the writer's ids carry this process's system clock (uuid_utils), as does time.time()
    next_bound = _id_floor(int((time.time() - lateness) * 1000))
    state = RollupState.load(connection)
    late = _take_late(connection)
    if late is not None and state.rolled_before_id is not None:
        resume = late if state.resume_hour is None else min(state.resume_hour, late)
        state = RollupState(state.rolled_before_id, resume)
        state.save(connection)  # in this transaction: a failed run keeps the sweep for the next one
    if state.rolled_before_id is None:  # first run (or a reset): sweep from the first event
        first = connection.execute(sa.select(sa.func.min(usage_events.c.created_at))).scalar_one_or_none()
        return _Plan([], floor_hour(first) if first is not None else None, next_bound)
    return _Plan(_changed_hours(connection, state.rolled_before_id), state.resume_hour, next_bound)


def _changed_hours(connection: sa.Connection, bound: str) -> list[datetime]:
    """The distinct UTC request hours of events with an id at or above ``bound``."""
    created = usage_events.c.created_at
    if connection.dialect.name == "postgresql":
        hour: sa.ColumnElement[object] = sa.func.date_trunc("hour", sa.func.timezone("UTC", created))
    else:  # UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' (voidllm.store.types)
        hour = sa.func.substr(created, 1, 13)
    found = connection.execute(sa.select(hour).distinct().where(usage_events.c.id >= bound)).scalars()
    return sorted(_as_hour(value) for value in found)


def _as_hour(value: object) -> datetime:
    if isinstance(value, datetime):  # PostgreSQL: a naive UTC timestamp
        return value.replace(tzinfo=UTC)
    return datetime.strptime(str(value), "%Y-%m-%d %H").replace(tzinfo=UTC)


# A literal, not a bound parameter: SELECT and GROUP BY must match on PostgreSQL.
_NO_ID: sa.ColumnClause[str] = sa.literal_column("''")


def _hour_select(hour: datetime) -> sa.Select[tuple[object, ...]]:
    ev = usage_events.c
    team, user = sa.func.coalesce(ev.team_id, _NO_ID), sa.func.coalesce(ev.user_id, _NO_ID)
    failed = sa.case((ev.status != sa.literal_column("'ok'"), 1), else_=0)
    return (
        sa.select(
            sa.literal(hour, UTCDateTime()),
            ev.org_id,
            team,
            user,
            ev.key_id,
            ev.model_name,
            sa.func.count(),
            sa.func.sum(ev.prompt_tokens),
            sa.func.sum(ev.completion_tokens),
            sa.func.sum(ev.total_tokens),
            sa.func.coalesce(sa.func.sum(ev.cost_estimate), 0.0),
            sa.func.sum(ev.request_duration_ms),
            sa.func.coalesce(sa.func.sum(ev.ttft_ms), 0),
            sa.func.count(ev.ttft_ms),
            sa.func.sum(failed),
        )
        .where(ev.created_at >= hour, ev.created_at < hour + HOUR)
        .group_by(ev.org_id, team, user, ev.key_id, ev.model_name)
    )


_HOURLY_COLUMNS = [
    "bucket_hour",
    "org_id",
    "team_id",
    "user_id",
    "key_id",
    "model_name",
    "request_count",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_sum",
    "duration_sum_ms",
    "ttft_sum_ms",
    "ttft_count",
    "error_count",
]


def _replace_hour(connection: sa.Connection, hour: datetime) -> None:
    bucket = usage_hourly.c.bucket_hour
    connection.execute(sa.delete(usage_hourly).where(bucket >= hour, bucket < hour + HOUR))
    connection.execute(sa.insert(usage_hourly).from_select(_HOURLY_COLUMNS, _hour_select(hour)))


def _frozen_before(connection: sa.Connection) -> datetime | None:
    """Lock, then read the horizon as an hour boundary: hours before it are never rebuilt."""
    lock_usage(connection)
    horizon = read_horizon(connection)
    return _ceil_hour(horizon) if horizon is not None else None


def _rebuild_hour(connection: sa.Connection, hour: datetime) -> bool:
    """Rebuild ``hour`` unless it is before the horizon; return whether it was rebuilt."""
    frozen = _frozen_before(connection)
    if frozen is not None and hour < frozen:
        return False
    _replace_hour(connection, hour)
    return True


def _rebuild_next_hour(connection: sa.Connection, cursor: datetime) -> datetime | None:
    """Rebuild the first hour at or after ``cursor`` (and not before the horizon) that holds events or
    rollup rows; return it, or ``None`` when there is none."""
    frozen = _frozen_before(connection)
    if frozen is not None and cursor < frozen:
        cursor = frozen
    next_event = connection.execute(
        sa.select(sa.func.min(usage_events.c.created_at)).where(usage_events.c.created_at >= cursor)
    ).scalar_one_or_none()
    next_row = connection.execute(
        sa.select(sa.func.min(usage_hourly.c.bucket_hour)).where(usage_hourly.c.bucket_hour >= cursor)
    ).scalar_one_or_none()
    found = [moment for moment in (next_event, next_row) if moment is not None]
    if not found:
        return None
    hour = floor_hour(min(found))
    _replace_hour(connection, hour)
    return hour


async def roll_up(store: Store, *, lateness: float, max_hours: int = MAX_HOURS_PER_RUN) -> RollupRun:
    """Bring ``usage_hourly`` up to date with ``usage_events`` (see the module docstring).

    Args:
        lateness: seconds an event may take from getting its id to being committed.
        max_hours: hours a sweep (first run, resumed run) rebuilds at most; the rest waits for the next run.

    Raises:
        StoreError: from the store; the state is only saved at the end, so the next run redoes this one.
    """
    plan = await store.run(_plan, lateness)
    hours = 0
    for hour in plan.changed:
        if plan.sweep_from is not None and hour >= plan.sweep_from:
            break  # the sweep covers it
        hours += await store.run(_rebuild_hour, hour)
    cursor, swept = plan.sweep_from, 0
    while cursor is not None and swept < max_hours:
        rebuilt = await store.run(_rebuild_next_hour, cursor)
        cursor = rebuilt + HOUR if rebuilt is not None else None
        swept += rebuilt is not None
    ROLLUP_HOURS.inc(hours + swept)
    await store.run(RollupState(plan.next_bound, cursor).save)
    return RollupRun(hours + swept, complete=cursor is None)


# -- the service -------------------------------------------------------------------------------------


async def serve_rollups(
    *,
    store: Store,
    interval: float,
    lateness: float,
    max_hours: int = MAX_HOURS_PER_RUN,
    now: Callable[[], datetime] = utcnow,
    lease: LeaseState | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run :func:`roll_up` every ``interval`` seconds until cancelled; ready after the first run.

    With a ``lease`` (:mod:`voidllm.store.lease`) it runs only while this process holds it: a process that
    does not is ready at once and runs as soon as it takes the lease over.

    A run that left hours pending is followed by the next at once; a store error is logged and counted
    (``voidllm_rollup_runs_total{outcome="error"}``), and the next interval tries again.
    """
    last_complete = now()
    first = True
    while True:
        if lease is not None and not lease.held:
            if first:
                first = False
                task_status.started()
            await lease.wait_held()
        began, started_at = time.perf_counter(), now()
        run: RollupRun | None = None
        try:
            run = await roll_up(store, lateness=lateness, max_hours=max_hours)
        except StoreError as exc:
            ROLLUP_RUNS.labels(outcome="error").inc()
            log.warning("usage rollup failed", extra={"error_type": type(exc).__name__})
        else:
            ROLLUP_RUNS.labels(outcome="ok").inc()
            if run.complete:
                last_complete = started_at
        ROLLUP_SECONDS.observe(time.perf_counter() - began)
        ROLLUP_LAG.set(max((now() - last_complete).total_seconds(), 0.0))
        if first:
            first = False
            task_status.started()
        if run is not None and not run.complete:
            await trio.lowlevel.checkpoint()
        else:
            await trio.sleep(interval)
