"""Copy every row of one VoidLLM database into another: SQLite ⇄ PostgreSQL (``voidllm migrate``).

The algorithm, in the order :func:`transfer` runs it:

1. **Survey.** The source must be at this build's head revision, because it is read through this build's
   tables; the target is at no revision (empty) or an older or the same one. Rows are counted per table on
   both sides (on the target only in tables that already exist). Source and target must not be the same
   database, however differently they are spelled (compared by file identity on SQLite, by server start
   time, port and database name on PostgreSQL).
2. **Refuse a non-empty target** (any row in any table) unless ``replace=True``.
3. **Prepare the target**: migrate it to head; with ``replace``, delete every row in reverse dependency
   order, in one transaction.
4. **Copy** the tables of :data:`~voidllm.store.tables.metadata` in dependency order (``sorted_tables``:
   parents before children). Each table is read in pages of ``batch_size`` rows by primary key (keyset
   pagination, so a page costs the same at the end of a large table as at its start), and each page is
   inserted at once (``COPY`` on PostgreSQL, ``executemany`` on SQLite). Columns that reference their own
   table (``models.fallback_model_id``) are inserted as NULL and set in a second pass once the whole table
   is there, which copes with chains and cycles alike; that pass also writes the columns with an
   ``onupdate`` (``updated_at``) so the update does not touch them.
5. **Verify**: count the rows of every table on both sides again; any difference is an error.

Values are read and written through the same :class:`~sqlalchemy.Table` objects, so each column type
converts them on the way out and back in: timestamps stay aware UTC datetimes with their microseconds,
booleans stay booleans (integers on SQLite), doubles, NULLs and text arrive unchanged.

Transactions: every page is its own transaction on the target (and a short read on the source). That keeps
each :meth:`Store.run <voidllm.store.Store.run>` call small, as the store asks, bounds memory, and lets a
cancellation (Ctrl-C) stop between pages. One transaction per table or for the whole copy would not
spare the user anything: after a failure the target holds part of the data either way, and the way back is
the same, to fix the cause and run again with ``replace`` (the non-empty check refuses to run without it).
:class:`TransferError` says which table failed after how many rows.

The source is not read in one snapshot: stop the gateways that write to it first. Rows added during the
copy are copied (tables not reached yet) or reported by the final count check (tables already copied);
changes to rows already copied would be lost silently.

``COPY`` moves about three times the rows per second of ``executemany`` into PostgreSQL. Left out: tables
outside ``metadata`` (``alembic_version`` is written by the migration itself).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from contextlib import aclosing, contextmanager
from pathlib import Path
from typing import Any

import attrs
import psycopg
import sqlalchemy as sa
from alembic.util import CommandError

from voidllm.errors import GatewayError, StoreError
from voidllm.store.migrate import current_revision, head_revision, migrate
from voidllm.store.store import Store
from voidllm.store.tables import metadata

__all__ = ["BATCH_SIZE", "Endpoint", "OnProgress", "Survey", "TransferError", "survey", "transfer"]

BATCH_SIZE = 5000

OnProgress = Callable[[str, int, int], None]
"""Called as ``on_progress(table, copied, total)`` when a table starts (``copied == 0``) and after each
page."""

_PG_PREFIXES = ("postgres://", "postgresql://", "postgresql+psycopg://")
_SQLITE_URL = "sqlite:///"

Row = dict[str, Any]


class TransferError(GatewayError):
    """The transfer was refused (non-empty target, wrong schema, same database) or failed part-way;
    the message says which, and what the target holds now."""


@attrs.frozen
class Endpoint:
    """One side of a transfer: a driver and DSN as :func:`~voidllm.store.open_store` takes them."""

    driver: str  # "sqlite" | "postgres"
    dsn: str
    display: str  # the DSN with any password hidden, for messages

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """Read a DSN: ``postgres://``, ``postgresql://`` or ``postgresql+psycopg://`` URLs are PostgreSQL;
        ``sqlite:///relative.db``, ``sqlite:////absolute.db`` and plain file paths are SQLite.

        Raises:
            ValueError: an in-memory SQLite database, another URL scheme, or a malformed URL.
        """
        if text.startswith(_PG_PREFIXES):
            try:
                display = sa.make_url(text).render_as_string(hide_password=True)
            except sa.exc.ArgumentError as exc:
                raise ValueError("malformed PostgreSQL DSN") from exc
            return cls("postgres", text, display)
        path = text.removeprefix(_SQLITE_URL) if text.startswith(_SQLITE_URL) else text
        if path in ("", ":memory:"):
            raise ValueError("an in-memory SQLite database cannot be migrated from or to")
        if "://" in path or path.startswith(("sqlite:", "file:")):
            raise ValueError(
                "unsupported DSN: expected postgres://…, postgresql://…, sqlite:///PATH or a file path"
            )
        path = str(Path(path).expanduser())
        return cls("sqlite", path, path)

    @property
    def missing(self) -> bool:
        """An SQLite file that does not exist (opening it would create an empty one)."""
        return self.driver == "sqlite" and not Path(self.dsn).exists()

    def same_as(self, other: Endpoint) -> bool:
        """Whether both DSNs plainly name the same database (same file, or same URL up to the scheme)."""
        if self.driver != other.driver:
            return False
        if self.driver == "sqlite":
            return Path(self.dsn).resolve() == Path(other.dsn).resolve()
        return _without_scheme(self.dsn) == _without_scheme(other.dsn)


@attrs.frozen
class Survey:
    """What a transfer would copy: rows per table on each side, in dependency order."""

    source_rows: Mapping[str, int]
    target_rows: Mapping[str, int]  # only the tables that exist on the target
    target_revision: str | None  # None: no schema yet
    head: str

    @property
    def target_empty(self) -> bool:
        return not any(self.target_rows.values())


async def survey(source: Store, target: Store | None) -> Survey:
    """Check the source's schema and count the rows on both sides; changes nothing.

    ``target`` may be ``None`` for a target that does not exist yet (it then counts as empty).

    Raises:
        TransferError: the source has no schema or is not at this build's head revision, or the
            source and target are the same database.
            Also a database that failed or is unreachable (the message says which side).
    """
    head = head_revision()
    with _side("source"):
        revision = await source.run_engine(current_revision)
        if revision is None:
            raise TransferError("the source database has no VoidLLM schema")
        if revision != head:
            raise TransferError(
                f"the source schema is at revision {revision}, this build reads {head}: "
                "run `voidllm migrate-schema` on the source first, or use the matching voidllm version"
            )
        source_print = await source.run(_fingerprint)
        source_rows = await source.run(_count_rows)
    if target is None:
        return Survey(source_rows, {}, None, head)
    with _side("target"):
        if await target.run(_fingerprint) == source_print:
            raise TransferError("the source and the target are the same database")
        target_revision = await target.run_engine(current_revision)
        return Survey(source_rows, await target.run(_count_rows), target_revision, head)


async def transfer(
    source: Store,
    target: Store,
    *,
    replace: bool = False,
    batch_size: int = BATCH_SIZE,
    on_progress: OnProgress | None = None,
) -> Mapping[str, int]:
    """Copy every row of every table from ``source`` to ``target`` and return the verified row counts.

    Args:
        replace: delete the target's rows first instead of refusing a non-empty target.
        batch_size: rows per page (one read, one insert transaction).
        on_progress: see :data:`OnProgress`; called from the trio thread.

    Raises:
        TransferError: refused (see :func:`survey`; non-empty target without ``replace``), failed
            part-way (the target then holds part of the data: run again with ``replace``), or the
            final counts differ.

    Cancellation: takes effect between pages; the target then holds part of the data.
    """
    found = await survey(source, target)
    if not found.target_empty and not replace:
        rows = sum(found.target_rows.values())
        raise TransferError(
            f"the target is not empty ({rows} rows); run again with --replace to delete them first"
        )
    with _side("target"):
        try:
            await migrate(target)
        except CommandError as exc:
            raise TransferError(f"cannot migrate the target schema: {exc}") from exc
        if not found.target_empty:
            await target.run(_delete_all)
    for table in metadata.sorted_tables:
        total = found.source_rows[table.name]
        await _copy_table(source, target, table, total, batch_size, on_progress or _no_progress)
    return await _verify(source, target)


async def _copy_table(
    source: Store, target: Store, table: sa.Table, total: int, batch_size: int, on_progress: OnProgress
) -> None:
    on_progress(table.name, 0, total)
    copied = 0
    try:
        own = _self_references(table)
        async with aclosing(_pages(source, sa.select(table), table, batch_size)) as pages:
            async for rows in pages:
                await target.run(_insert, table, [{**row, **dict.fromkeys(own)} for row in rows])
                copied += len(rows)
                on_progress(table.name, copied, total)
        if own:
            await _copy_self_references(source, target, table, own, batch_size)
    except GatewayError as exc:
        raise TransferError(
            f"copying {table.name} failed after {copied} of {total} rows ({exc}); the target now holds "
            "part of the data: fix the cause and run again with --replace"
        ) from exc


async def _copy_self_references(
    source: Store, target: Store, table: sa.Table, own: list[str], batch_size: int
) -> None:
    keys = [c.key for c in table.primary_key.columns]
    kept = [c.key for c in table.columns if c.onupdate is not None]
    values = [*own, *kept]
    columns = [table.c[name] for name in dict.fromkeys([*keys, *values])]
    query = sa.select(*columns).where(sa.or_(*(table.c[name].is_not(None) for name in own)))
    statement = (
        sa.update(table)
        .where(*(table.c[k] == sa.bindparam(f"k_{k}", type_=table.c[k].type) for k in keys))
        .values({name: sa.bindparam(f"v_{name}", type_=table.c[name].type) for name in values})
    )
    async with aclosing(_pages(source, query, table, batch_size)) as pages:
        async for rows in pages:
            params = [{f"k_{k}": row[k] for k in keys} | {f"v_{n}": row[n] for n in values} for row in rows]
            await target.run(_execute_many, statement, params)


async def _pages(
    source: Store, query: sa.Select[Any], table: sa.Table, batch_size: int
) -> AsyncGenerator[list[Row], None]:
    """Yield the rows of ``query`` in pages of ``batch_size``, by primary key."""
    key = list(table.primary_key.columns)
    after: tuple[Any, ...] | None = None
    while True:
        rows = await source.run(_read_page, query, key, after, batch_size)
        if rows:
            yield rows
        if len(rows) < batch_size:
            return
        after = tuple(rows[-1][column.key] for column in key)


async def _verify(source: Store, target: Store) -> Mapping[str, int]:
    expected = await source.run(_count_rows)
    found = await target.run(_count_rows)
    wrong = [
        f"{name}: source {n}, target {found.get(name)}"
        for name, n in expected.items()
        if found.get(name) != n
    ]
    if wrong:
        raise TransferError(
            "row counts differ after the copy (was the source written to meanwhile?): " + "; ".join(wrong)
        )
    return expected


@contextmanager
def _side(name: str) -> Iterator[None]:
    """Say which database a store error came from."""
    try:
        yield
    except StoreError as exc:
        raise TransferError(f"{name} database: {exc}") from exc


def _self_references(table: sa.Table) -> list[str]:
    return [c.key for c in table.columns if any(fk.column.table is table for fk in c.foreign_keys)]


def _no_progress(_table: str, _copied: int, _total: int) -> None:
    pass


def _without_scheme(dsn: str) -> str:
    return dsn.partition("://")[2]


# -- functions run inside Store.run (one transaction each) ---------------------------------------------


def _read_page(
    conn: sa.Connection,
    query: sa.Select[Any],
    key: list[sa.Column[Any]],
    after: tuple[Any, ...] | None,
    limit: int,
) -> list[Row]:
    if after is not None:
        bounds = [sa.bindparam(None, v, type_=column.type) for column, v in zip(key, after, strict=True)]
        query = query.where(key[0] > bounds[0] if len(key) == 1 else sa.tuple_(*key) > sa.tuple_(*bounds))
    return [dict(row._mapping) for row in conn.execute(query.order_by(*key).limit(limit))]


def _insert(conn: sa.Connection, table: sa.Table, rows: list[Row]) -> None:
    if conn.dialect.name == "postgresql":
        _copy_in(conn, table, rows)
    else:
        conn.execute(table.insert(), rows)


def _copy_in(conn: sa.Connection, table: sa.Table, rows: list[Row]) -> None:
    """PostgreSQL's ``COPY FROM STDIN``, about three times as fast as ``executemany``; each value goes
    through its column type's bind processing first, exactly as for an INSERT."""
    columns = list(table.columns)
    bind = [column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for column in columns]
    quote = conn.dialect.identifier_preparer.quote
    sql = f"COPY {quote(table.name)} ({', '.join(quote(column.name) for column in columns)}) FROM STDIN"
    driver: Any = conn.connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                values = (row[column.key] for column in columns)
                copy.write_row([f(value) if f else value for f, value in zip(bind, values, strict=True)])
    except psycopg.Error as exc:  # the driver's own error: wrap it as SQLAlchemy would for translate_errors
        raise sa.exc.DBAPIError.instance(sql, None, exc, psycopg.Error, hide_parameters=True) from exc


def _execute_many(conn: sa.Connection, statement: sa.Update, params: list[Row]) -> None:
    conn.execute(statement, params)


def _count_rows(conn: sa.Connection) -> dict[str, int]:
    """Rows per table of ``metadata``, in dependency order, for the tables that exist."""
    present = set(sa.inspect(conn).get_table_names())
    return {
        table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        for table in metadata.sorted_tables
        if table.name in present
    }


def _delete_all(conn: sa.Connection) -> None:
    for table in reversed(metadata.sorted_tables):
        conn.execute(table.delete())


def _fingerprint(conn: sa.Connection) -> tuple[Any, ...]:
    """What identifies the database behind a connection, whatever DSN reached it."""
    if conn.dialect.name == "sqlite":
        path = next(row[2] for row in conn.exec_driver_sql("PRAGMA database_list") if row[1] == "main")
        stat = os.stat(path)
        return ("sqlite", stat.st_dev, stat.st_ino)
    query = "SELECT current_database(), current_setting('port'), pg_postmaster_start_time()"
    return ("postgres", *conn.exec_driver_sql(query).one())
