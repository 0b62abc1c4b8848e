"""The usage writer: request handlers record events without waiting; one service writes them in batches.

The channel, the recorder and the batching service are :mod:`voidllm.usage.batches` (read its docstring for
batching, outage retries and the shutdown flush); this module adds what is particular to usage events: the
``voidllm_usage_*`` metrics and how a batch is inserted (:func:`insert_usage_events`: rows are built in the
worker thread and go in with :func:`~voidllm.usage.batches.insert_rows`, an executemany ``INSERT ... ON
CONFLICT DO NOTHING``). Rows are validated and clipped to their columns (:mod:`voidllm.usage.events`), so the
database should never reject a batch.

Each batch also moves ``api_keys.last_used_at`` forward to the newest request of each of its keys
(:func:`touch_keys`, in the same transaction). Rows replayed from the spill do not: they are written by the
generic batch writer, and a key's last use is at most as stale as the outage.

Ids are made with the event (:attr:`UsageEvent.id`), not per write attempt, so a batch retried after a lost
commit acknowledgement, or replayed from the spill after a crash, writes each row once.

Writer rate (``scripts/usage_writer_rates.py``, 2 cores, AMD EPYC, batches of 250 through :meth:`Store.run`;
"busy" = another trio task keeps the event loop saturated, so the worker thread fights for the GIL; the
figures vary by about a factor of two between runs):

- SQLite: ON CONFLICT executemany 38,000 rows/s idle, 14,000-17,000 busy; the old plain executemany
  33,000 idle but 300 busy; one multi-row ``VALUES`` statement 3,000 idle, 540 busy.
- PostgreSQL: ON CONFLICT executemany (insertmanyvalues) 15,000-16,000 idle, 2,600-9,300 busy; the old
  ``COPY`` 39,000-53,000 idle, 5,800-7,700 busy (but it cannot skip duplicates); multi-row 1,900 / 750.

The gateway answered about 900 requests per second in the issue's load test, so the ON CONFLICT executemany
keeps up on both stores even with the loop saturated; the hand-built multi-row statement loses because
SQLAlchemy computes the cache key of its thousands of bind parameters on every execution. And when a write
is slower than the arrivals anyway, the writer spills instead of dropping (:mod:`voidllm.usage.batches`).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from voidllm.store.tables import api_keys, usage_events
from voidllm.usage.batches import (  # FLUSH_TIMEOUT_S and WRITE_BACKOFF are re-exported
    FLUSH_TIMEOUT_S,
    WRITE_BACKOFF,
    BatchInbox,
    BatchMetrics,
    BatchStore,
    Recorder,
    insert_rows,
    open_batch_channel,
    serve_batch_writer,
)
from voidllm.usage.events import UsageEvent
from voidllm.usage.metrics import (
    BATCH_WRITE_SECONDS,
    BUFFER_DEPTH,
    EVENTS_DROPPED,
    EVENTS_WRITTEN,
    WRITE_FAILURES,
)
from voidllm.usage.rollups import LATE_AFTER_S, mark_late_events

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime


__all__ = [
    "FLUSH_TIMEOUT_S",
    "WRITE_BACKOFF",
    "UsageRecorder",
    "UsageStore",
    "insert_usage_events",
    "open_usage_channel",
    "serve_usage_writer",
]

UsageRecorder = Recorder[UsageEvent]
"""The request path's handle on the usage channel (:func:`open_usage_channel`)."""

UsageStore = BatchStore

USAGE_METRICS = BatchMetrics(
    what="usage events",
    buffer_depth=BUFFER_DEPTH,
    dropped=EVENTS_DROPPED,
    written=EVENTS_WRITTEN,
    failures=WRITE_FAILURES,
    write_seconds=BATCH_WRITE_SECONDS,
)


def open_usage_channel(buffer_size: int) -> tuple[UsageRecorder, BatchInbox[UsageEvent]]:
    """Create the bounded usage channel: the recorder for requests and the receive side for the writer.

    Raises:
        ValueError: ``buffer_size`` is less than 1.
    """
    return open_batch_channel(buffer_size, USAGE_METRICS)


async def serve_usage_writer(
    *,
    store: UsageStore,
    receive: BatchInbox[UsageEvent],
    late_after: float = LATE_AFTER_S,
    **options: Any,
) -> None:
    """Write usage events from ``receive`` in batches until cancelled: :func:`serve_batch_writer` with
    :func:`insert_usage_events` and the ``voidllm_usage_*`` metrics (``options`` are its other arguments).

    ``late_after``: events written this long after their ids were made mark their hour for the rollups; the
    server passes half of ``settings.usage.rollup_lateness``, so an ordinary batch (``flush_interval``)
    never touches the mark's row.
    """
    insert = partial(insert_usage_events, late_after=late_after)
    await serve_batch_writer(store=store, receive=receive, insert=insert, metrics=USAGE_METRICS, **options)


def insert_usage_events(
    connection: sa.Connection, events: Sequence[UsageEvent], *, late_after: float = LATE_AFTER_S
) -> int:
    """Insert ``events`` as ``usage_events`` rows on ``connection`` (in the caller's transaction).

    Rows whose id is already there are skipped. Events written more than ``late_after`` seconds after their
    ids were made (a long outage, a spill replay) mark their request hour for the rollups
    (:func:`~voidllm.usage.rollups.mark_late`, in the same transaction). Returns the number of events given.
    """
    rows = [event.to_row() for event in events]
    insert_rows(connection, rows, table=usage_events)
    mark_late_events(connection, rows, late_after=late_after)
    touch_keys(connection, rows)
    return len(rows)


def touch_keys(connection: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Move ``api_keys.last_used_at`` forward to the newest request of each key in ``rows`` (one
    executemany per batch, keys in id order so concurrent writers lock rows in the same order; a key whose
    column is already later, or that no longer exists, is left alone)."""
    newest: dict[str, datetime] = {}
    for row in rows:
        key_id, at = row["key_id"], row["created_at"]
        if key_id and (key_id not in newest or at > newest[key_id]):
            newest[key_id] = at
    if not newest:
        return
    column = api_keys.c.last_used_at
    update = (
        sa.update(api_keys)
        .where(api_keys.c.id == sa.bindparam("key"), sa.or_(column.is_(None), column < sa.bindparam("at")))
        .values(last_used_at=sa.bindparam("at"))
    )
    connection.execute(update, [{"key": key, "at": newest[key]} for key in sorted(newest)])
