"""Retention: delete rows of the log tables older than their configured age, in small batches.

Each table with a retention period (``settings.retention``; 0 keeps rows forever) loses the rows whose
timestamp is strictly before ``now - age``: ``usage_events.created_at``, ``audit_logs.timestamp``,
``mcp_tool_calls.created_at``, ``usage_hourly.bucket_hour``, ``incidents.created_at``. The Go original
cleans only the first two. The incident log has its own key (``settings.retention.incidents``) rather than
sharing ``usage_events``': failures are worth keeping longer than the bulk of usage rows, or shorter
during an outage that writes many, and its rows have no rollup to wait for.

Deletes never hold a long lock. One statement removes at most ``batch_size`` rows, oldest first, in its
own transaction, and the service pauses (``pause``) between batches so the usage writer and requests get
the database (on SQLite there is one connection and one writer, so a batch is all that waits). The
statement picks rows by their physical address, which both dialects have without an index of their own:

- PostgreSQL: ``DELETE FROM t WHERE ctid = ANY(ARRAY(SELECT ctid FROM t WHERE ts < :cutoff ORDER BY ts
  LIMIT :n))`` (the ``ARRAY`` form is planned as a TID scan; ``ctid IN (SELECT ...)`` may scan the table);
- SQLite: ``DELETE FROM t WHERE rowid IN (SELECT rowid FROM t WHERE ts < :cutoff ORDER BY ts LIMIT :n)``
  (SQLite is usually built without ``DELETE ... LIMIT``).

A run stops after ``budget`` seconds even if rows remain (the next run goes on), so a first run over years
of data cannot occupy the database for hours.

Usage events are deleted in whole hours, and only hours the rollups have finished
(:func:`voidllm.usage.rollups.pending_from`), so ``usage_hourly`` keeps their totals: the cutoff is the
earlier of ``now - age`` rounded down to the hour and the first hour still pending. Before deleting, the
cutoff is recorded as the rollups' horizon (:func:`~voidllm.usage.rollups.write_horizon`), so an hour is
never rebuilt from what is left of its events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import attrs
import sqlalchemy as sa
import trio

from voidllm.config.settings import RetentionConfig
from voidllm.errors import StoreError
from voidllm.store.ids import utcnow
from voidllm.store.lease import LeaseState
from voidllm.store.store import Store
from voidllm.store.types import UTCDateTime
from voidllm.usage.metrics import RETENTION_ROWS_DELETED, RETENTION_RUNS
from voidllm.usage.rollups import floor_hour, lock_usage, pending_from, write_horizon

__all__ = ["BATCH_PAUSE", "RUN_BUDGET", "TABLES", "RetentionRun", "purge", "serve_retention"]

log = logging.getLogger(__name__)

BATCH_PAUSE = 0.1
"""Seconds between two delete batches (the Go original's 100 ms)."""
RUN_BUDGET = 600.0
"""Seconds one run may spend deleting (the Go original's 10 minutes)."""
TABLES: dict[str, str] = {
    "audit_logs": "timestamp",
    "mcp_tool_calls": "created_at",
    "usage_events": "created_at",
    "usage_hourly": "bucket_hour",
    "incidents": "created_at",
}
"""The tables retention cleans (the ``settings.retention`` keys) and the timestamp column of each."""


@attrs.frozen
class RetentionRun:
    """What one :func:`purge` deleted per table, and whether it got through everything due."""

    deleted: dict[str, int]
    complete: bool


def _delete_batch(connection: sa.Connection, table: str, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` of ``table``'s oldest rows before ``cutoff``; return how many went."""
    quote = connection.dialect.identifier_preparer.quote_identifier
    name, column = quote(table), quote(TABLES[table])
    if connection.dialect.name == "postgresql":
        if table == "usage_events":
            lock_usage(connection)
        sql = (
            f"DELETE FROM {name} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {name} WHERE {column} < :cutoff "
            f"ORDER BY {column} LIMIT :limit))"
        )
    else:
        sql = (
            f"DELETE FROM {name} WHERE rowid IN (SELECT rowid FROM {name} WHERE {column} < :cutoff "
            f"ORDER BY {column} LIMIT :limit)"
        )
    statement = sa.text(sql).bindparams(sa.bindparam("cutoff", type_=UTCDateTime()), sa.bindparam("limit"))
    return connection.execute(statement, {"cutoff": cutoff, "limit": limit}).rowcount


def _events_cutoff(connection: sa.Connection, wanted: datetime) -> datetime:
    """The cutoff for ``usage_events``: ``wanted`` rounded down to the hour, but not past the first hour
    the rollups have not finished; recorded as their horizon before anything is deleted."""
    lock_usage(connection)
    cutoff = floor_hour(wanted)
    pending = pending_from(connection)
    if pending is not None and pending < cutoff:
        cutoff = pending
    write_horizon(connection, cutoff)
    return cutoff


async def _purge_table(
    store: Store, table: str, cutoff: datetime, *, batch_size: int, pause: float, deadline: float
) -> tuple[int, bool]:
    """Delete ``table``'s rows before ``cutoff`` batch by batch; returns (rows deleted, finished)."""
    total = 0
    while True:
        deleted = await store.run(_delete_batch, table, cutoff, batch_size)
        total += deleted
        RETENTION_ROWS_DELETED.labels(table=table).inc(deleted)
        if deleted < batch_size:
            return total, True
        if trio.current_time() >= deadline:
            return total, False
        await trio.sleep(pause)


async def purge(
    store: Store,
    config: RetentionConfig,
    *,
    now: datetime,
    pause: float = BATCH_PAUSE,
    budget: float = RUN_BUDGET,
) -> RetentionRun:
    """Delete every row older than its table's retention period at ``now`` (see the module docstring).

    Tables without a period are left alone. The run stops early once ``budget`` seconds (trio time) have
    passed; ``complete`` is then false.

    Raises:
        StoreError: from the store; batches already deleted stay deleted.
    """
    deadline = trio.current_time() + budget
    deleted: dict[str, int] = {}
    for table in TABLES:
        age = getattr(config, table)
        if not age:
            continue
        cutoff = now - timedelta(seconds=age)
        if table == "usage_events":
            cutoff = await store.run(_events_cutoff, cutoff)
        deleted[table], finished = await _purge_table(
            store, table, cutoff, batch_size=config.batch_size, pause=pause, deadline=deadline
        )
        if not finished:
            return RetentionRun(deleted, complete=False)
    return RetentionRun(deleted, complete=True)


async def serve_retention(
    *,
    store: Store,
    config: RetentionConfig,
    pause: float = BATCH_PAUSE,
    budget: float = RUN_BUDGET,
    now: Callable[[], datetime] = utcnow,
    lease: LeaseState | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Ready at once; then run :func:`purge` now and every ``config.interval`` seconds until cancelled.
    With a ``lease`` (:mod:`voidllm.store.lease`) only while this process holds it (a process that takes it
    over runs at once).

    Outcomes are counted in ``voidllm_retention_runs_total``; a store error is logged by class and the
    next interval tries again.
    """
    task_status.started()
    while True:
        if lease is not None:
            await lease.wait_held()
        try:
            run = await purge(store, config, now=now(), pause=pause, budget=budget)
        except StoreError as exc:
            RETENTION_RUNS.labels(outcome="error").inc()
            log.warning("retention run failed", extra={"error_type": type(exc).__name__})
        else:
            RETENTION_RUNS.labels(outcome="ok" if run.complete else "incomplete").inc()
            log.info(
                "retention run", extra={"rows_deleted": sum(run.deleted.values()), "complete": run.complete}
            )
        await trio.sleep(config.interval)
