"""The store: a synchronous SQLAlchemy engine driven from trio through worker threads.

psycopg's async connection does not run under plain trio, and a primary-key select through a thread costs
~0.25 ms (SQLite) / ~0.55 ms (PostgreSQL), five times less than going through trio-asyncio (ARCHITECTURE.md
section 4). So every database call is a plain function ``fn(connection, *args)`` that :meth:`Store.run`
executes in a worker thread, inside one transaction, with errors translated at this one boundary. Repository
functions therefore stay synchronous, testable without trio, and unaware of threads.

The store's own :class:`trio.CapacityLimiter` is as large as the connection pool, so a thread never waits
for a connection while holding a worker slot, and a burst of callers queues in trio (cheap, cancellable)
instead of in the pool (a blocked thread). It is separate from trio's default limiter so database calls
and other thread work (Code Mode, file I/O) cannot starve each other. Every call is timed, and queueing
for a connection counted, in :mod:`voidllm.store.metrics`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple, Unpack

import attrs
import sqlalchemy as sa
import trio

from voidllm.errors import StoreError, StoreUnavailableError
from voidllm.store import metrics
from voidllm.store.engine import build_engine, pool_capacity
from voidllm.store.errors import translate_errors

if TYPE_CHECKING:
    from voidllm.store.engine import PoolOptions

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

CLOSE_TIMEOUT_S = 5.0


@attrs.define(eq=False)
class Store:
    """The database, reachable from trio code.

    Create it with :func:`open_store` (or :meth:`from_engine` in tests). All async methods are checkpoints.

    Cancellation: a database call in a worker thread cannot be interrupted, and :meth:`run` does *not*
    abandon it (trio's ``abandon_on_cancel=False``, chosen deliberately). A cancelled caller waits until
    ``fn`` returns; its transaction commits or rolls back exactly as it would have without the
    cancellation, :meth:`run` still returns ``fn``'s result (or raises its error), and the cancellation
    is delivered at the caller's next checkpoint. Abandoning would
    return sooner but leave a thread holding a pooled connection and an open transaction beyond the
    caller's lifetime (and beyond :meth:`aclose`), with no one to learn whether it committed, and the limiter
    would no longer bound the threads inside the database. The wait is bounded by the busy timeout on
    SQLite; on PostgreSQL only by keeping ``fn`` small: one short transaction, no network calls, no
    sleeping, no waiting on locks that other long transactions hold.
    """

    engine: sa.Engine
    dialect: str
    _limiter: trio.CapacityLimiter
    _closed: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        metrics.track(self)

    @classmethod
    def from_engine(cls, engine: sa.Engine) -> Store:
        """Wrap ``engine`` with a limiter as large as its pool; the store owns the engine from now on."""
        return cls(engine, engine.dialect.name, trio.CapacityLimiter(pool_capacity(engine)))

    @property
    def capacity(self) -> int:
        """How many database calls may run at once (the limiter's size)."""
        return int(self._limiter.total_tokens)

    def statistics(self) -> trio.CapacityLimiterStatistics:
        """A snapshot of the limiter: calls inside the database (``borrowed_tokens``) and queued ones
        (``tasks_waiting``), e.g. for a metric."""
        return self._limiter.statistics()

    async def run(self, fn: Callable[[sa.Connection, *Ts], T], /, *args: *Ts) -> T:
        """Run ``fn(connection, *args)`` in a worker thread inside one transaction and return its result.

        The transaction commits when ``fn`` returns and rolls back when it raises.

        Raises:
            StoreUnavailableError: the database is unreachable, locked or timed out.
            StoreIntegrityError: a constraint rejected a write.
            StoreError: any other SQLAlchemy error.
            trio.ClosedResourceError: the store was closed.
            Exceptions raised by ``fn`` that are not SQLAlchemy errors propagate unchanged.
        """
        return await self._in_thread("transaction", partial(_in_transaction, self.engine, fn, *args))

    async def run_engine(self, fn: Callable[[sa.Engine, *Ts], T], /, *args: *Ts) -> T:
        """Run ``fn(engine, *args)`` in a worker thread, for work that manages its own connections and
        transactions (migrations, bulk loads). ``fn`` must use at most one connection at a time.

        Same errors and cancellation behaviour as :meth:`run`.
        """
        return await self._in_thread("engine", partial(_translated, fn, self.engine, *args))

    async def ping(self) -> None:
        """Check that the database answers ``SELECT 1``.

        Raises:
            StoreUnavailableError: on any failure.
        """
        try:
            await self.run(_select_one)
        except StoreUnavailableError:
            raise
        except StoreError as exc:
            cause = exc.__cause__ or exc
            raise StoreUnavailableError(f"database unavailable: {type(cause).__name__}") from exc

    async def aclose(self) -> None:
        """Close every pooled connection; later calls raise :class:`trio.ClosedResourceError`.

        Idempotent. Runs shielded for at most a few seconds so it also completes during cancellation.
        """
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        metrics.untrack(self)
        with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
            await trio.to_thread.run_sync(self.engine.dispose, abandon_on_cancel=True)

    async def _in_thread(self, operation: str, job: Callable[[], T]) -> T:
        """Run ``job`` under the limiter, timed in ``voidllm_store_operation_seconds`` (see
        :mod:`voidllm.store.metrics`; a caller cancelled before it got a connection is not observed)."""
        if self._closed:
            raise trio.ClosedResourceError("the store is closed")
        if self._limiter.available_tokens == 0:
            metrics.WAITS.inc()
        began = time.perf_counter()
        try:
            result = await trio.to_thread.run_sync(job, limiter=self._limiter)
        except StoreError:
            metrics.observe(operation, "error", began)
            raise
        except Exception:
            metrics.observe(operation, "ok", began)
            raise
        metrics.observe(operation, "ok", began)
        return result


@asynccontextmanager
async def open_store(driver: str, dsn: str, **pool_opts: Unpack[PoolOptions]) -> AsyncIterator[Store]:
    """Open a :class:`Store` for ``driver``/``dsn`` (see :func:`~voidllm.store.engine.build_engine`) and
    close it on exit. Does not connect: call :meth:`Store.ping` or run migrations to find out.

    Raises:
        ValueError: unknown driver or malformed DSN.
    """
    engine = await trio.to_thread.run_sync(partial(build_engine, driver, dsn, **pool_opts))
    store = Store.from_engine(engine)
    try:
        yield store
    finally:
        await store.aclose()


def _in_transaction(engine: sa.Engine, fn: Callable[..., T], *args: object) -> T:
    with translate_errors(), engine.begin() as connection:
        return fn(connection, *args)


def _translated(fn: Callable[..., T], *args: object) -> T:
    with translate_errors():
        return fn(*args)


def _select_one(connection: sa.Connection) -> None:
    connection.execute(sa.text("SELECT 1")).scalar_one()
