"""Measure the usage writer's insert rate (rows per second) on SQLite and PostgreSQL, idle and busy loop.

Not a test. Run: ``.venv/bin/python scripts/usage_writer_rates.py [rows] [batch]`` (PostgreSQL at
``VOIDLLM_TEST_PG_DSN`` or ``postgresql://postgres@127.0.0.1:5432/test``; a scratch database is created and
dropped). Each method writes ``rows`` events through :meth:`Store.run`, one transaction per ``batch`` rows:

- ``today``: :func:`voidllm.usage.writer.insert_usage_events` as it was (COPY on PostgreSQL, executemany
  ``INSERT`` on SQLite), kept here as the baseline;
- ``executemany`` (what :func:`voidllm.usage.batches.insert_rows` does): ``INSERT ... ON CONFLICT (id)
  DO NOTHING`` with a list of parameter sets (SQLAlchemy's
  insertmanyvalues on PostgreSQL, the driver's executemany on SQLite);
- ``multirow``: one ``INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING`` statement per batch, the
  statement built once per batch size (SQLAlchemy still computes its cache key on every execution).

"busy" runs the same while another trio task keeps the event loop saturated (a tight loop of CPU work and
checkpoints), the condition under which the worker thread has to fight for the GIL.
"""

from __future__ import annotations

import functools
import operator
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from urllib.parse import urlsplit, urlunsplit

import psycopg
import sqlalchemy as sa
import sqlalchemy.dialects.postgresql
import sqlalchemy.dialects.sqlite
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voidllm.store.migrate import migrate
from voidllm.store.store import open_store
from voidllm.store.tables import usage_events
from voidllm.usage.events import UsageEvent

PG_DSN = os.environ.get("VOIDLLM_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
STARTED = datetime(2025, 3, 4, tzinfo=UTC)
_COLUMNS = tuple(column.name for column in usage_events.columns)
_COPY_SQL = f"COPY usage_events ({', '.join(_COLUMNS)}) FROM STDIN"
_copy_values = operator.itemgetter(*_COLUMNS)


def events(count: int) -> list[UsageEvent]:
    return [
        UsageEvent(
            request_id=f"req-{n}",
            key_id=f"key-{n % 7}",
            key_type="user",
            org_id="org-1",
            model_name="m",
            prompt_tokens=n,
            completion_tokens=n,
            total_tokens=2 * n,
            duration_ms=100,
            created_at=STARTED + timedelta(milliseconds=n),
        )
        for n in range(count)
    ]


def today(connection: sa.Connection, batch: list[UsageEvent]) -> int:
    rows = [event.to_row() for event in batch]
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
            for row in rows:
                copy.write_row(_copy_values(row))
    else:
        connection.execute(sa.insert(usage_events), rows)
    return len(rows)


def executemany(connection: sa.Connection, batch: list[UsageEvent]) -> int:
    rows = [event.to_row() for event in batch]
    dialect = sa.dialects.postgresql if connection.dialect.name == "postgresql" else sa.dialects.sqlite
    connection.execute(dialect.insert(usage_events).on_conflict_do_nothing(index_elements=["id"]), rows)
    return len(rows)


def multirow(connection: sa.Connection, batch: list[UsageEvent]) -> int:
    rows = [event.to_row() for event in batch]
    statement = _multirow_insert(connection.dialect.name, len(rows))
    connection.execute(statement, {f"{name}_{n}": row[name] for n, row in enumerate(rows) for name in row})
    return len(rows)


@functools.lru_cache(maxsize=16)
def _multirow_insert(dialect: str, count: int) -> sa.Insert:
    insert = sa.dialects.postgresql.insert if dialect == "postgresql" else sa.dialects.sqlite.insert
    values = [
        {column.name: sa.bindparam(f"{column.name}_{n}", type_=column.type) for column in usage_events.c}
        for n in range(count)
    ]
    return insert(usage_events).values(values).on_conflict_do_nothing()


async def busy_loop() -> None:
    while True:
        sum(range(2000))  # ~20 µs of CPU, then let others run
        await trio.lowlevel.checkpoint()


async def measure(driver: str, dsn: str, rows: int, batch: int) -> None:
    data = events(rows)
    for busy in (False, True):
        for name, fn in (("today", today), ("executemany", executemany), ("multirow", multirow)):
            async with open_store(driver, dsn) as store:
                await migrate(store)
                await store.run(lambda c: c.execute(sa.delete(usage_events)))
                async with trio.open_nursery() as nursery:
                    if busy:
                        nursery.start_soon(busy_loop)
                    began = time.perf_counter()
                    for start in range(0, rows, batch):
                        await store.run(fn, data[start : start + batch])
                    seconds = time.perf_counter() - began
                    nursery.cancel_scope.cancel()
            label = "busy" if busy else "idle"
            print(f"{driver:9} {label:5} {name:12} {rows / seconds:9.0f} rows/s ({seconds * 1000:.0f} ms)")


async def main(rows: int, batch: int) -> None:
    with TemporaryDirectory() as directory:
        await measure("sqlite", str(Path(directory) / "rates.db"), rows, batch)
    name = f"voidllm_rates_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        await measure("postgres", urlunsplit(urlsplit(PG_DSN)._replace(path=f"/{name}")), rows, batch)
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    arguments = [int(value) for value in sys.argv[1:3]]
    trio.run(main, *(arguments + [20_000, 250][len(arguments) :]))
