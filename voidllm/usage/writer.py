"""The usage writer: request handlers record events without waiting; one service writes them in batches.

The channel, the recorder and the batching service are :mod:`voidllm.usage.batches` (read its docstring for
batching, outage retries and the shutdown flush); this module adds what is particular to usage events: the
``voidllm_usage_*`` metrics and how a batch is inserted (:func:`insert_usage_events`: rows are built in the
worker thread; on PostgreSQL they go in with ``COPY ... FROM STDIN``, elsewhere with an executemany
``INSERT``). Rows are validated and clipped to their columns (:mod:`voidllm.usage.events`), so the database
should never reject a batch.

Ids are generated per write attempt. A commit whose acknowledgement is lost (the connection drops after
``COMMIT`` was sent) is retried and written twice; PostgreSQL ``COPY`` cannot skip duplicates, and the case is
rare enough to accept.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import trio
from sqlalchemy import exc as sa_exc

from voidllm.store.tables import usage_events
from voidllm.usage.batches import (  # FLUSH_TIMEOUT_S and WRITE_BACKOFF are re-exported
    FLUSH_TIMEOUT_S,
    WRITE_BACKOFF,
    BatchMetrics,
    BatchStore,
    Recorder,
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

if TYPE_CHECKING:
    from collections.abc import Sequence


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

_COLUMNS = tuple(column.name for column in usage_events.columns)
_COPY_SQL = f"COPY usage_events ({', '.join(_COLUMNS)}) FROM STDIN"
_copy_values = operator.itemgetter(*_COLUMNS)


def open_usage_channel(buffer_size: int) -> tuple[UsageRecorder, trio.MemoryReceiveChannel[UsageEvent]]:
    """Create the bounded usage channel: the recorder for requests and the receive side for the writer.

    Raises:
        ValueError: ``buffer_size`` is less than 1.
    """
    return open_batch_channel(buffer_size, USAGE_METRICS)


async def serve_usage_writer(
    *, store: UsageStore, receive: trio.MemoryReceiveChannel[UsageEvent], **options: Any
) -> None:
    """Write usage events from ``receive`` in batches until cancelled: :func:`serve_batch_writer` with
    :func:`insert_usage_events` and the ``voidllm_usage_*`` metrics (``options`` are its other arguments)."""
    await serve_batch_writer(store=store, receive=receive, insert=insert_usage_events, metrics=USAGE_METRICS, **options)


def insert_usage_events(connection: sa.Connection, events: Sequence[UsageEvent]) -> int:
    """Insert ``events`` as ``usage_events`` rows on ``connection`` (in the caller's transaction).

    PostgreSQL uses ``COPY FROM STDIN`` on the psycopg connection underneath, other dialects an
    executemany ``INSERT``. Returns the number of rows written.

    Measured on the 2-core dev machine, 10,000 rows through :meth:`Store.run` into the indexed table:
    PostgreSQL ~120 ms with ``COPY`` vs ~300–390 ms with executemany (SQLAlchemy's batched multi-row
    ``INSERT``); SQLite ~215 ms. Building the rows costs ~2 µs each.
    """
    rows = [event.to_row() for event in events]
    if not rows:
        return 0
    if connection.dialect.name == "postgresql":
        _copy_rows(connection, rows)
    else:
        connection.execute(sa.insert(usage_events), rows)
    return len(rows)


def _copy_rows(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """``COPY`` the rows through psycopg; its errors become SQLAlchemy's, so the store translates them."""
    dbapi_error: type[Exception] = connection.dialect.loaded_dbapi.Error
    driver: Any = connection.connection.driver_connection  # the psycopg.Connection
    try:
        with driver.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
            for row in rows:
                copy.write_row(_copy_values(row))
    except dbapi_error as exc:
        raise sa_exc.DBAPIError.instance(
            _COPY_SQL, None, exc, dbapi_error, hide_parameters=True, dialect=connection.dialect
        ) from exc
