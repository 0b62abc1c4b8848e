"""Build the synchronous SQLAlchemy engine for SQLite or PostgreSQL.

The engine is used only from worker threads (:class:`voidllm.store.Store` runs every call through
``trio.to_thread.run_sync`` with a :class:`trio.CapacityLimiter` sized by :func:`pool_capacity`), so a
connection is never shared by two threads at once, but it is used by *different* threads over its life.

SQLite
    One connection per process, as the Go original pins it: SQLite allows one writer at a time, and with
    a single connection we never fight ourselves for the write lock (no ``database is locked`` between our
    own threads); reads are fast enough that serialising them is cheaper than the lock juggling a larger
    pool would need. A file database uses a ``QueuePool`` of exactly one connection; ``:memory:`` uses a
    ``StaticPool`` because every new connection would be a new, empty database. Both need
    ``check_same_thread=False``, which is safe because the limiter (size 1) serialises use. Every
    connection gets ``foreign_keys=ON``, ``journal_mode=WAL`` (files only: readers in other processes do not
    block the writer), ``synchronous=NORMAL`` (durable at checkpoints; safe with WAL) and
    ``busy_timeout=5000``.

    pysqlite's own transaction handling is switched off and every transaction starts with
    ``BEGIN IMMEDIATE`` (the SQLAlchemy "pysqlite serializable" recipe): transactions really begin where
    SQLAlchemy says they do (pysqlite would otherwise run SELECTs outside any transaction and break
    SAVEPOINT), and taking the write lock up front means a transaction that reads and then writes can never
    fail with ``SQLITE_BUSY_SNAPSHOT`` when another process wrote in between; it waits up to the busy
    timeout instead. The cost is that transactions of several processes on one file run one at a time.

PostgreSQL
    ``postgres://``, ``postgresql://`` and ``postgresql+psycopg://`` DSNs all use psycopg 3. A ``QueuePool``
    keeps ``max_idle_conns`` connections and opens up to ``max_open_conns`` in total (the Go
    ``database/sql`` knobs), recycles them after ``conn_max_lifetime`` seconds (0 = never) and pings on
    checkout so a restarted server costs one failed ping, not one failed request. Connections use
    ``TimeZone=UTC`` so SQL-side date functions agree with the UTC values we store, and
    ``connect_timeout=10`` unless the DSN sets one.

Both engines use ``hide_parameters=True``: SQLAlchemy's own error messages never include bound values.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import QueuePool, StaticPool

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.pool import Pool


class PoolOptions(TypedDict, total=False):
    """The pool knobs of :func:`build_engine`, as keyword arguments (``database.*`` in the config)."""

    max_open_conns: int
    max_idle_conns: int
    conn_max_lifetime: float


SQLITE_DRIVERS = frozenset({"sqlite", "sqlite3"})
POSTGRES_DRIVERS = frozenset({"postgres", "postgresql"})
_PG_SCHEMES = ("postgres://", "postgresql://", "postgresql+psycopg://")
SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_CACHE_KIB = 256
"""SQLite's page cache per connection (its default is 2 MiB). What the gateway reads often is held in its
own memory (the catalog, keys, limits); its SQLite work is appending usage rows and the occasional admin read,
which the operating system's page cache serves as well. The default's cache filled during a benchmark soak
and was resident for nothing: 256 KiB keeps about 1.5 MB off the peak RSS (issue 23), and 10,000 usage events
went through the writer in the same time (``tests/test_usage_writer.py::test_ten_thousand_events``: 259-284
against 277-369 ms with 1 MiB)."""
PG_CONNECT_TIMEOUT_S = 10


def build_engine(
    driver: str,
    dsn: str,
    *,
    max_open_conns: int = 25,
    max_idle_conns: int = 5,
    conn_max_lifetime: float = 300.0,
) -> sa.Engine:
    """Create (but do not connect) the engine for ``driver`` (``sqlite`` or ``postgres``).

    Args:
        driver: ``sqlite``/``sqlite3`` or ``postgres``/``postgresql``.
        dsn: SQLite: a file path (parent directories are created) or ``:memory:``.
            PostgreSQL: a ``postgres://``, ``postgresql://`` or ``postgresql+psycopg://`` URL.
        max_open_conns, max_idle_conns, conn_max_lifetime: PostgreSQL pool sizing; ignored for SQLite.

    Raises:
        ValueError: unknown driver, or a DSN that does not fit it.
    """
    kind = driver.strip().lower()
    if kind in SQLITE_DRIVERS:
        return _sqlite_engine(dsn)
    if kind in POSTGRES_DRIVERS:
        return _postgres_engine(dsn, max_open_conns, max_idle_conns, conn_max_lifetime)
    raise ValueError(f"unknown database driver {driver!r}; expected 'sqlite' or 'postgres'")


def pool_capacity(engine: sa.Engine) -> int:
    """How many connections the engine's pool can hand out at once (the size of the store's limiter)."""
    pool: Pool = engine.pool
    if isinstance(pool, QueuePool):
        overflow = pool._max_overflow  # no public accessor; negative means unbounded
        return pool.size() + max(overflow, 0)
    return 1


# -- SQLite -------------------------------------------------------------------------------------------


def _sqlite_engine(dsn: str) -> sa.Engine:
    if dsn.startswith(("sqlite:", "file:")):
        raise ValueError("the SQLite DSN is a file path or ':memory:', not a URL")
    memory = dsn in ("", ":memory:")
    connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    if memory:
        engine = sa.create_engine(
            "sqlite+pysqlite://", poolclass=StaticPool, connect_args=connect_args, hide_parameters=True
        )
    else:
        path = Path(dsn).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            sa.URL.create("sqlite+pysqlite", database=str(path)),
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=0,
            connect_args=connect_args,
            hide_parameters=True,
        )
    event.listen(engine, "connect", _sqlite_pragmas_wal if not memory else _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, wal: bool = False) -> None:
    dbapi_connection.isolation_level = None  # no implicit BEGIN/COMMIT from pysqlite; see _sqlite_begin
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")  # negative: KiB, not pages
    finally:
        cursor.close()


def _sqlite_pragmas_wal(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record, wal=True)


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


# -- PostgreSQL --------------------------------------------------------------------------------------


def _postgres_engine(dsn: str, max_open: int, max_idle: int, lifetime: float) -> sa.Engine:
    url = sa.make_url(_psycopg_dsn(dsn))
    max_open = max(1, max_open)
    pool_size = max(1, min(max_idle, max_open))  # SQLAlchemy reads pool_size=0 as "unbounded"
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    engine = sa.create_engine(
        url,
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=max_open - pool_size,
        pool_recycle=lifetime if lifetime > 0 else -1,
        pool_pre_ping=True,
        connect_args=connect_args,
        hide_parameters=True,
    )
    event.listen(engine, "connect", _pg_session_setup)
    return engine


def _psycopg_dsn(dsn: str) -> str:
    for scheme in _PG_SCHEMES:
        if dsn.startswith(scheme):
            return "postgresql+psycopg://" + dsn.removeprefix(scheme)
    raise ValueError("the PostgreSQL DSN must start with postgres://, postgresql:// or postgresql+psycopg://")


def _pg_session_setup(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.commit()
