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

**Background writes** (:meth:`Store.run_background`: the batched usage, audit and tool-call rows nobody
waits on) run on one more thread of the store's own, which Linux schedules only when the core has nothing
else to run (``SCHED_IDLE``), and the gateway's GIL switch interval is 0.5 ms
(:data:`voidllm.server.SWITCH_INTERVAL_S`). A batch of 250 usage rows is 6-16 ms of CPU on a benchmark
core; at normal priority the requests that arrived meanwhile waited for it (the scheduler shares the core,
and a thread holding the GIL keeps it for up to 5 ms), and that was the one-connection p99 (issue 23:
3.6-4.1 ms measured with wrk, 2.0-2.4 ms with the idle-priority thread). A write that is behind (more
than a batch waiting, a spill being replayed, shutdown) runs at normal priority as before, so a core busy
with requests cannot starve the writer: idle priority never costs a usage row. The thread is a
one-worker :class:`concurrent.futures.ThreadPoolExecutor` whose initializer lowers its priority (a thread
may lower its own priority but, without ``CAP_SYS_NICE``, never raise it again: so one dedicated thread,
not trio's cached ones); where the policy does not exist or is refused it runs at normal priority.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
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
    _background: ThreadPoolExecutor | None = attrs.field(default=None, init=False)

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

    async def run_background(self, fn: Callable[[sa.Connection, *Ts], T], /, *args: *Ts, behind: bool) -> T:
        """:meth:`run` for a write nobody waits on: on the store's idle-priority thread (see the module
        docstring), or as :meth:`run` does when the writer is ``behind``. Same transaction, errors and
        cancellation behaviour as :meth:`run`."""
        job = partial(_in_transaction, self.engine, fn, *args)
        if behind:
            return await self._in_thread("transaction", job)
        if self._background is None:
            self._background = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="voidllm-store-background", initializer=lowest_priority
            )
        background = self._background
        return await self._in_thread("transaction", lambda: background.submit(job).result())

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
        if self._background is not None:
            self._background.shutdown(wait=False)  # idle: every job ran under the limiter, now released
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


def lowest_priority() -> None:
    """Make the calling thread Linux's ``SCHED_IDLE`` (run only when nothing else wants the core); a no-op
    where the policy does not exist or is not permitted."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:  # pragma: no cover (refused by a seccomp profile, say)
            pass


def _in_transaction(engine: sa.Engine, fn: Callable[..., T], *args: object) -> T:
    with translate_errors(), engine.begin() as connection:
        return fn(connection, *args)


def _translated(fn: Callable[..., T], *args: object) -> T:
    with translate_errors():
        return fn(*args)


def _select_one(connection: sa.Connection) -> None:
    connection.execute(sa.text("SELECT 1")).scalar_one()
