"""Batched writing of append-only rows: request handlers hand items over without waiting; one service per
kind of row writes them in batches. The usage writer (:mod:`voidllm.usage.writer`) and the audit log
(:mod:`voidllm.admin.audit_writer`) are both built from it; each brings its own insert function, metrics and
name for log messages.

Request side
    :func:`open_batch_channel` creates a bounded ``trio`` memory channel (never unbounded, STYLE P6) and
    wraps its send side in a :class:`Recorder`, its receive side in a :class:`BatchInbox` for the writer.
    :meth:`Recorder.record` is ``send_nowait``: it never blocks and never raises; when the channel is full
    (or already closed at shutdown) the item is dropped, counted in the ``dropped`` counter and ``record``
    returns ``False``.

Service side (:func:`serve_batch_writer`, owned by the supervisor)
    1. Wait for an item; it opens a batch whose deadline is ``flush_interval`` after its arrival.
    2. A receiver task moves items from the channel into a pending list and never waits on anything but
       the channel, so neither a slow write nor a spill lets the channel fill. It takes a batch's first item
       as it comes (it sets the batch's deadline); after that the recorder wakes it only when the items
       queued since it last took them would fill the batch or half the channel (the inbox's
       :class:`_Nudge`), so a request's item costs no task switch. The writer writes the pending items
       once they hold ``batch_size`` items or the batch's deadline passes (a cancel scope with that
       deadline, not a timeout argument), taking what is queued first: ``insert(conn, items)`` in one
       transaction through :meth:`Store.run <voidllm.store.Store.run>`, ``batch_size`` items per
       transaction.
    3. Store outage: when a write raises :class:`~voidllm.errors.StoreError` the items stay pending and the
       write is retried after 0.5 s, 1 s, 2 s, ... at most 30 s; each failure counts in ``failures``.
       Meanwhile the service keeps receiving. Pending items are written in chunks of ``batch_size``, one
       transaction each, and the backoff starts over after any successful chunk.
    4. Beyond memory: ``max_pending`` items (default ten batches) wait in memory beside the chunk being
       written. Past that (an outage, or a store slower than the arrivals) a spiller task moves all the
       excess, oldest first, to the spill (:mod:`voidllm.usage.spill`: an append-only file of this process,
       ``fsync``'d per append, bounded by ``settings.usage.spill_max_mb``) in one append, so one ``fsync``
       covers every item that arrived meanwhile. The receiver keeps taking items up to twice
       ``max_pending`` while an append runs. Before any pending batch, the spilled rows are written back in
       order (files of dead processes, adopted at start, first). Only a batch the spill refuses (budget
       exhausted, disk error) is dropped: counted in ``dropped`` and logged as an error. Without a spill
       (tests) the receiver stops at ``max_pending``, the channel fills and the recorder drops.
    5. Shutdown (the service's scope is cancelled): the pending items and everything already queued in the
       channel are written inside ``trio.move_on_after(flush_timeout, shield=True)``, retrying store errors
       with the same backoff until that deadline; what is left then is spilled (replayed at the next
       start), and only what the spill refuses is counted as dropped. The same final flush runs if the
       service crashes, before the supervisor restarts it.

Rows are written with :func:`insert_rows` (``INSERT ... ON CONFLICT DO NOTHING``) and carry ids made when
the item was recorded, so a batch written twice (a lost commit acknowledgement, a replay cut short by a
crash) lands once.

Deliberate choices:

- A batch the database *rejects* (:class:`~voidllm.store.errors.StoreIntegrityError`), and a spilled line
  that cannot be decoded, is dropped and counted instead of retried: retrying it unchanged would fail
  forever and block every later item.
- The service never closes the channel, so a restarted service picks up where a crashed one stopped.
  Items recorded after the final flush stay in the channel, uncounted; there are none when the writer is
  started before the HTTP server, since the supervisor stops services in reverse start order.

Exceptions are logged by class name only (``extra={"error_type": ...}``), never with item contents.
"""

from __future__ import annotations

import logging
import math
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, TypeVarTuple

import attrs
import sqlalchemy as sa
import trio
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.dialects import postgresql as sa_postgresql
from sqlalchemy.dialects import sqlite as sa_sqlite

from voidllm.errors import StoreError
from voidllm.metrics import REGISTRY, sampled
from voidllm.nursery.supervisor import Backoff
from voidllm.store.errors import StoreIntegrityError
from voidllm.usage.spill import SpillFile

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "FLUSH_TIMEOUT_S",
    "WRITE_BACKOFF",
    "BatchInbox",
    "BatchMetrics",
    "BatchStore",
    "Recorder",
    "insert_rows",
    "open_batch_channel",
    "serve_batch_writer",
]

log = logging.getLogger(__name__)

E = TypeVar("E")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

WRITE_BACKOFF = Backoff(initial=0.5, factor=2.0, maximum=30.0)
"""Delays between attempts to write a batch while the store fails."""

FLUSH_TIMEOUT_S = 10.0
"""Default bound of the shielded final flush at shutdown."""

DROP_WARNING_INTERVAL_S = 60.0
"""The recorder logs dropped items at most this often (the counter counts every one)."""

SPILL_TIMEOUT_S = 60.0
"""Bound of one shielded spill append (a local write and ``fsync``); past it the batch counts as dropped."""

PENDING_BATCHES = 10
"""During an outage the writer holds at most this many batches (``max_pending`` default)."""


class BatchStore(Protocol):
    """What the writer needs of :class:`voidllm.store.Store` (tests pass in-memory fakes)."""

    async def run(self, fn: Callable[[sa.Connection, *Ts], T], /, *args: *Ts) -> T: ...


@attrs.frozen
class BatchMetrics:
    """The Prometheus metrics of one kind of batched row, plus its name in log messages."""

    what: str  # e.g. "usage events"
    buffer_depth: Gauge
    dropped: Counter
    written: Counter
    failures: Counter
    write_seconds: Histogram

    @classmethod
    def declare(cls, what: str, *, prefix: str, batch: str, items: str = "") -> BatchMetrics:
        """Register the five metrics of one kind of row: ``{prefix}_buffer_depth``,
        ``{prefix}[_{items}]_dropped_total`` and ``..._written_total``, ``{prefix}_write_failures_total`` and
        ``{prefix}_batch_write_seconds``. ``what`` names the rows in log messages and, capitalised, in the
        help texts; ``batch`` names their batches (``"audit"`` for "Audit batch writes ...")."""
        counted = f"{prefix}_{items}" if items else prefix
        rows = what[0].upper() + what[1:]
        return cls(
            what=what,
            buffer_depth=Gauge(
                f"{prefix}_buffer_depth",
                f"{rows} waiting to be written.",
                registry=REGISTRY,
                multiprocess_mode="livesum",
            ),
            dropped=Counter(
                f"{counted}_dropped_total",
                f"{rows} lost: channel full or closed, batch rejected, or refused by the spill "
                "(budget exhausted, disk error).",
                registry=REGISTRY,
            ),
            written=Counter(f"{counted}_written_total", f"{rows} written.", registry=REGISTRY),
            failures=Counter(
                f"{prefix}_write_failures_total",
                f"{batch[0].upper() + batch[1:]} batch writes that failed with a store error.",
                registry=REGISTRY,
            ),
            write_seconds=Histogram(
                f"{prefix}_batch_write_seconds",
                f"Wall time of one {batch} batch write.",
                buckets=(0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0),
                registry=REGISTRY,
            ),
        )


# -- request side ----------------------------------------------------------------------------------------


@attrs.define(eq=False)
class _Nudge:
    """When the writer's receiver wants to be woken: the recorder counts the items it queued since the
    receiver last emptied the channel and sets ``event`` once they reach ``after`` (or the channel closes)."""

    after: int = 1
    queued: int = 0
    event: trio.Event = attrs.Factory(trio.Event)

    def count(self) -> None:
        self.queued += 1
        if self.queued >= self.after:
            self.event.set()


@attrs.define(eq=False)
class Recorder(Generic[E]):
    """The request path's handle on a batch channel. Create it with :func:`open_batch_channel`."""

    _send: trio.MemorySendChannel[E]
    _metrics: BatchMetrics
    _nudge: _Nudge = attrs.Factory(_Nudge)
    _next_warning_at: float = attrs.field(default=-math.inf, init=False)

    def record(self, item: E) -> bool:
        """Queue ``item`` for writing without blocking.

        Returns:
            ``True`` if queued; ``False`` if dropped because the channel is full or closed (counted in the
            ``dropped`` metric; a warning is logged at most every ``DROP_WARNING_INTERVAL_S`` seconds).
        """
        try:
            self._send.send_nowait(item)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            self._metrics.dropped.inc()
            self._warn_dropping(exc)
            return False
        self._nudge.count()
        return True

    async def record_waiting(self, item: E, *, limit: float) -> bool:
        """Queue ``item``, waiting up to ``limit`` seconds for room (``settings.usage.drop_on_full: false``).

        The wait is shielded (the request may already be cancelled: its item still counts) and bounded, so a
        store outage longer than the buffer slows requests down by at most ``limit`` before items drop.
        """
        with trio.move_on_after(limit, shield=True):
            try:
                await self._send.send(item)
            except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
                self._metrics.dropped.inc()
                self._warn_dropping(exc)
                return False
            self._nudge.count()
            return True
        self._metrics.dropped.inc()
        self._warn_dropping(trio.TooSlowError())
        return False

    def _warn_dropping(self, exc: Exception) -> None:
        now = time.monotonic()
        if now >= self._next_warning_at:
            self._next_warning_at = now + DROP_WARNING_INTERVAL_S
            log.warning(
                "%s dropped: channel full or closed", self._metrics.what, extra={"reason": type(exc).__name__}
            )

    def depth(self) -> int:
        """Items queued in the channel, not yet taken by the writer."""
        return self._send.statistics().current_buffer_used

    def close(self) -> None:
        """Close the send side: later :meth:`record` calls drop, and the writer ends once it has drained."""
        self._send.close()
        self._nudge.event.set()


@attrs.define(eq=False)
class BatchInbox(Generic[E]):
    """The writer's side of a batch channel: its receive side and the nudge its recorder gives. Create it
    with :func:`open_batch_channel`; the channel's methods are here too."""

    channel: trio.MemoryReceiveChannel[E]
    nudge: _Nudge

    async def receive(self) -> E:
        return await self.channel.receive()

    def receive_nowait(self) -> E:
        return self.channel.receive_nowait()

    def statistics(self) -> Any:
        return self.channel.statistics()

    def queued(self) -> int:
        """Items in the channel, not yet taken by the writer."""
        count: int = self.channel.statistics().current_buffer_used
        return count

    def close(self) -> None:
        self.channel.close()


def open_batch_channel(buffer_size: int, metrics: BatchMetrics) -> tuple[Recorder[E], BatchInbox[E]]:
    """Create a bounded batch channel: the recorder for requests and the inbox for the writer.

    Raises:
        ValueError: ``buffer_size`` is less than 1.
    """
    if buffer_size < 1:
        raise ValueError(f"the {metrics.what} buffer size must be at least 1")
    send, receive = trio.open_memory_channel[E](buffer_size)
    nudge = _Nudge()
    return Recorder(send, metrics, nudge), BatchInbox(receive, nudge)


# -- the service -----------------------------------------------------------------------------------------


async def serve_batch_writer(
    *,
    store: BatchStore,
    receive: BatchInbox[E],
    insert: Callable[[sa.Connection, Sequence[E]], int],
    metrics: BatchMetrics,
    batch_size: int,
    flush_interval: float,
    flush_timeout: float = FLUSH_TIMEOUT_S,
    max_pending: int | None = None,
    backoff: Backoff = WRITE_BACKOFF,
    spill: SpillFile[E] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Write items from ``receive`` in batches until cancelled (see the module docstring).

    Args:
        store: where to write (a :class:`voidllm.store.Store`).
        receive: the inbox from :func:`open_batch_channel`; not closed by this service.
        insert: writes a batch on a connection (in the caller's transaction); runs in a worker thread.
        metrics: the metrics to count in.
        batch_size: write as soon as this many items are pending (also the rows per transaction).
        flush_interval: write at most this many seconds after the first item of a batch arrived.
        flush_timeout: bound of the shielded final flush on cancellation.
        max_pending: items held while the store fails; default ``10 * batch_size``.
        backoff: delays between write attempts while the store fails.
        spill: where batches go beyond ``max_pending`` (and at shutdown); ``None``: no spill, the channel
            fills and the recorder drops. Its files of dead processes are adopted before ``started``.

    Cancellation: pending and queued items are written first, shielded for at most ``flush_timeout``
    seconds, then what is left is spilled (as long again); then ``trio.Cancelled`` propagates. Returns
    normally once the channel's send side is closed and
    everything is written.
    """
    if batch_size < 1 or flush_interval <= 0:
        raise ValueError("batch_size must be at least 1 and flush_interval positive")
    writer = _BatchWriter(
        store=store,
        receive=receive,
        insert=insert,
        metrics=metrics,
        batch_size=batch_size,
        flush_interval=flush_interval,
        max_pending=max(max_pending or PENDING_BATCHES * batch_size, batch_size),
        backoff=backoff,
        spill=spill,
    )
    sampled(metrics.buffer_depth, writer.depth)
    if spill is not None and await writer.spill_io(spill.adopt_orphans) > 0:
        writer.due_at = trio.current_time()  # replay the adopted batches at once
    task_status.started()
    try:
        await writer.run()
    finally:
        with trio.move_on_after(flush_timeout, shield=True):
            await writer.drain()
        with trio.move_on_after(flush_timeout, shield=True):
            await writer.spill_rest()
        writer.give_up()


@attrs.define(eq=False)
class _BatchWriter(Generic[E]):
    store: BatchStore
    receive: BatchInbox[E]
    insert: Callable[[sa.Connection, Sequence[E]], int]
    metrics: BatchMetrics
    batch_size: int
    flush_interval: float
    max_pending: int
    backoff: Backoff
    spill: SpillFile[E] | None = None
    pending: list[E] = attrs.Factory(list)
    in_flight: int = 0  # the first ``in_flight`` pending items are being written
    due_at: float = math.inf  # when to write the pending items (batch deadline or retry time)
    failures: int = 0  # consecutive failed writes; > 0 means "in an outage"
    ended: bool = False  # the send side was closed and the channel is empty
    _spill_lock: trio.Lock = attrs.Factory(trio.Lock)
    _changed: trio.Event = attrs.Factory(trio.Event)  # replaced on every change of ``pending``

    def depth(self) -> int:
        """Items waiting: queued in the channel plus pending here (the buffer-depth gauge)."""
        return self.receive.queued() + len(self.pending)

    @property
    def memory_cap(self) -> int:
        """Items the receiver holds before it stops taking more: ``max_pending``, or twice that with a spill
        (the room the receiver keeps while the spiller's append runs)."""
        return self.max_pending if self.spill is None else 2 * self.max_pending

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def run(self) -> None:
        """The receiver and the spiller run beside the store writer until everything is written."""
        error: Exception | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._receive_loop)
            if self.spill is not None:
                nursery.start_soon(self._spill_loop)
            try:
                while not (self.ended and not self.pending and not self._spilled()):
                    await self._wait_due()
                    await self._flush()
            except Exception as exc:  # re-raised outside the nursery, unwrapped, for the supervisor's log
                error = exc
            nursery.cancel_scope.cancel()
        if error is not None:
            raise error

    async def _receive_loop(self) -> None:
        """Move items from the channel into ``pending``, never waiting on the store or the spill. A batch's
        first item is taken as it comes (it sets the batch's deadline); then the receiver sleeps until the
        recorder's nudge: the items queued since would fill the batch (beside the chunk being written) or
        half the channel, or the channel was closed. Each wakeup takes all that is queued. At
        :attr:`memory_cap` it waits for room, so the channel fills."""
        nudge = self.receive.nudge
        half = max(1, int(self.receive.statistics().max_buffer_size) // 2)
        while True:
            while len(self.pending) >= self.memory_cap:
                await self._changed.wait()
            due = self.due_at
            if self.pending:
                batch_room = self.batch_size - (len(self.pending) - self.in_flight)
                nudge.after = max(1, min(batch_room, half))
                nudge.queued = self.receive.queued()
                if nudge.queued < nudge.after:
                    nudge.event = trio.Event()
                    await nudge.event.wait()  # also set when the writer has emptied ``pending``
            else:
                try:
                    self._add(await self.receive.receive())
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    self.ended = True
            self._take_queued(self.memory_cap)
            if self.ended:
                self._notify()
                return
            if self._wakes(due):
                self._notify()

    def _wakes(self, due_before: float) -> bool:
        """Whether the items just taken may end a wait: the writer's (a batch is full, or the first item
        set the batch's deadline) or the spiller's (more than ``max_pending`` beside the batch being
        written: a full batch too, as ``max_pending`` is at least ``batch_size``). Other items wake nobody:
        two task switches per usage event fewer."""
        return len(self.pending) >= self.batch_size or self.due_at != due_before

    def _add(self, item: E) -> None:
        if not self.pending and not self.failures:
            self.due_at = trio.current_time() + self.flush_interval
        self.pending.append(item)

    async def _wait_due(self) -> None:
        """Wait until the pending items are due: batch full, its interval over, or retry time reached."""
        with trio.move_on_at(self.due_at) as scope:
            while not self.ended and (self.failures or len(self.pending) < self.batch_size):
                await self._changed.wait()
                scope.deadline = self.due_at
            if self.failures:
                await trio.sleep_forever()  # ended: wait out the backoff

    async def _flush(self, *, final: bool = False) -> None:
        """Replay the spill, then write pending items in chunks of ``batch_size``; on a store error
        schedule the retry.

        Items that arrived during the writes and do not fill a batch wait for their own interval, unless
        ``final`` (shutdown), when everything is written.
        """
        try:
            await self._replay()
            self._take_queued(self.memory_cap)  # what the receiver was not woken for
            while self.pending:
                chunk = self.pending[: self.batch_size]
                self.in_flight = len(chunk)
                try:
                    await self._write(self.insert, chunk)
                except StoreIntegrityError as exc:
                    self._reject(len(chunk), exc)
                finally:
                    self.in_flight = 0
                del self.pending[: len(chunk)]
                self._notify()
                if not self.pending:  # the receiver waits for a new batch's first item again
                    self.receive.nudge.event.set()
                self.failures = 0
                if not final and len(self.pending) < self.batch_size:
                    break
        except StoreError as exc:
            self._schedule_retry(exc)
            return
        due = self.pending or self._spilled()
        self.due_at = trio.current_time() + self.flush_interval if due else math.inf

    async def _write(self, fn: Callable[[sa.Connection, Any], int], rows: Sequence[Any]) -> None:
        """Write one chunk in one transaction (the receiver keeps taking items off the channel meanwhile)."""
        with self.metrics.write_seconds.time():
            await self.store.run(fn, rows)
        self.metrics.written.inc(len(rows))

    # -- the spill

    def _spilled(self) -> bool:
        return self.spill is not None and self.spill.pending()

    async def spill_io(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a spill file operation in a worker thread, one at a time."""
        async with self._spill_lock:
            return await trio.to_thread.run_sync(fn, *args)

    async def _spill_loop(self) -> None:
        """Whenever more than ``max_pending`` items wait beside the one being written, move the oldest of
        them to the spill in one append (one ``fsync`` for all of them, so the spill keeps up with any
        arrival rate the disk allows). They leave ``pending`` before the append: it is shielded, so they
        end on disk or counted as dropped."""
        while True:
            while len(self.pending) - self.in_flight <= self.max_pending:
                await self._changed.wait()
            start = self.in_flight
            excess = len(self.pending) - start - self.max_pending
            chunk = self.pending[start : start + excess]
            del self.pending[start : start + excess]
            self._notify()
            await self._spill(chunk)

    async def _spill(self, chunk: list[E]) -> None:
        """Append ``chunk`` to the spill; if it refuses, count the items as dropped and log an error.

        Cancellation: the append is shielded (bounded by :data:`SPILL_TIMEOUT_S`), so a batch is either on
        disk or counted when this returns; a cancelled caller still sees ``trio.Cancelled`` afterwards.
        """
        assert self.spill is not None
        reason = "spill timed out"
        with trio.move_on_after(SPILL_TIMEOUT_S, shield=True):
            try:
                if await self.spill_io(self.spill.append, chunk):
                    return
                reason = "spill budget exhausted"
            except OSError as exc:
                reason = f"spill file failed: {type(exc).__name__}"
        self.metrics.dropped.inc(len(chunk))
        log.error(
            "%s dropped: memory buffer full and %s",
            self.metrics.what,
            reason,
            extra={"items": len(chunk), "max_bytes": self.spill.max_bytes},
        )

    async def _replay(self) -> None:
        """Write the spilled rows in order, ``batch_size`` at a time (raises the store's errors)."""
        while self.spill is not None and self.spill.pending():
            batch = await self.spill_io(self.spill.read, self.batch_size)
            if batch.broken:
                self._reject(batch.broken, ValueError("undecodable spill line"))
            if batch.rows:
                try:
                    await self._write(partial(insert_rows, table=self.spill.table), batch.rows)
                except StoreIntegrityError as exc:
                    self._reject(len(batch.rows), exc)
            await self.spill_io(self.spill.advance, batch)
            self.failures = 0

    async def spill_rest(self) -> None:
        """At shutdown: spill what the final flush could not write (they are replayed at the next start)."""
        if self.spill is not None:
            while self.pending:
                chunk = self.pending[: self.batch_size]
                await self._spill(chunk)
                del self.pending[: len(chunk)]
            await self.spill_io(self.spill.close)

    def _schedule_retry(self, exc: StoreError) -> None:
        self.failures += 1
        self.metrics.failures.inc()
        delay = self.backoff.delay(min(self.failures, 64))  # a long outage must not overflow the float
        self.due_at = trio.current_time() + delay
        log.warning(
            "%s write failed; will retry",
            self.metrics.what,
            extra={"error_type": type(exc).__name__, "pending": len(self.pending), "retry_in_s": delay},
        )

    def _reject(self, count: int, exc: Exception) -> None:
        self.metrics.dropped.inc(count)
        log.error(
            "%s batch rejected by the database; dropped",
            self.metrics.what,
            extra={
                "error_type": type(exc).__name__,
                "constraint": getattr(exc, "constraint", None),
                "items": count,
            },
        )

    async def drain(self) -> None:
        """Write everything pending and queued, retrying store errors until the caller's deadline."""
        try:
            while self._take_queued():
                await self._flush(final=True)
                if self.pending:
                    await trio.sleep_until(self.due_at)
        except Exception as exc:  # best effort: the caller is already unwinding (Cancelled is not caught)
            log.error("%s final flush failed", self.metrics.what, extra={"error_type": type(exc).__name__})

    def _take_queued(self, cap: float = math.inf) -> bool:
        """Move queued items into ``pending`` while it holds fewer than ``cap``; return whether anything is
        pending. Notes the end of the channel (its send side closed and nothing left in it) in ``ended``."""
        try:
            while len(self.pending) < cap:
                self._add(self.receive.receive_nowait())
        except trio.WouldBlock:
            pass
        except (trio.EndOfChannel, trio.ClosedResourceError):
            self.ended = True
        self.receive.nudge.queued = 0
        return bool(self.pending)

    def give_up(self) -> None:
        """Count what the final flush could not write as dropped."""
        if self.pending:
            self.metrics.dropped.inc(len(self.pending))
            log.error("%s lost at shutdown", self.metrics.what, extra={"items": len(self.pending)})
            self.pending.clear()


# -- inserting rows --------------------------------------------------------------------------------------


def insert_rows(connection: sa.Connection, rows: Sequence[Mapping[str, Any]], *, table: sa.Table) -> int:
    """Insert ``rows`` into ``table`` (in the caller's transaction), skipping rows whose primary key exists.

    ``INSERT ... ON CONFLICT DO NOTHING`` with the rows as one executemany: SQLAlchemy sends it as batched
    multi-row ``VALUES`` on PostgreSQL (insertmanyvalues), the driver's executemany on SQLite. Returns the
    number of rows given (a replayed row that is already there counts too). Measured in
    ``scripts/usage_writer_rates.py`` against a hand-built multi-row statement (far slower: SQLAlchemy
    computes the cache key of its thousands of bind parameters on every execution) and PostgreSQL ``COPY``
    (faster on an idle loop, slower on a busy one, and unable to skip duplicates).
    """
    if rows:
        insert = sa_postgresql.insert if connection.dialect.name == "postgresql" else sa_sqlite.insert
        connection.execute(insert(table).on_conflict_do_nothing(), list(rows))
    return len(rows)
