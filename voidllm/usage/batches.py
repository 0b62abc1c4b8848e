"""Batched writing of append-only rows: request handlers hand items over without waiting; one service per
kind of row writes them in batches. The usage writer (:mod:`voidllm.usage.writer`) and the audit log
(:mod:`voidllm.admin.audit_writer`) are both built from it; each brings its own insert function, metrics and
name for log messages.

Request side
    :func:`open_batch_channel` creates a bounded ``trio`` memory channel (never unbounded, STYLE P6) and
    wraps its send side in a :class:`Recorder`. :meth:`Recorder.record` is ``send_nowait``: it never blocks
    and never raises; when the channel is full (or already closed at shutdown) the item is dropped, counted
    in the ``dropped`` counter and ``record`` returns ``False``.

Service side (:func:`serve_batch_writer`, owned by the supervisor)
    1. Wait for an item; it opens a batch whose deadline is ``flush_interval`` after its arrival.
    2. Keep receiving until the batch holds ``batch_size`` items or the deadline passes (a cancel scope with
       that deadline, not a timeout argument), then write the batch: ``insert(conn, items)`` in one
       transaction through :meth:`Store.run <voidllm.store.Store.run>`. While a write runs in its worker
       thread, a second task keeps taking items off the channel into the pending list (up to
       ``max_pending``), and the writer goes straight on with the next chunk, so a slow write never lets the
       channel fill.
    3. Store outage: when a write raises :class:`~voidllm.errors.StoreError` the items stay pending and the
       write is retried after 0.5 s, 1 s, 2 s, ... at most 30 s; each failure counts in ``failures``.
       Meanwhile the service keeps receiving, but only up to ``max_pending`` items (default ten batches) so
       memory stays bounded; after that the channel fills and the recorder counts drops. Pending items are
       written in chunks of ``batch_size``, one transaction each, and the backoff starts over after any
       successful chunk. So no item is lost in an outage as long as the items arriving during it fit in
       ``max_pending`` plus the channel.
    4. Shutdown (the service's scope is cancelled): the pending items and everything already queued in the
       channel are written inside ``trio.move_on_after(flush_timeout, shield=True)``, retrying store errors
       with the same backoff until that deadline. Pending items still unwritten then are counted as
       dropped. The same final flush runs if the service crashes, before the supervisor restarts it.

Deliberate choices:

- A batch the database *rejects* (:class:`~voidllm.store.errors.StoreIntegrityError`) is dropped and
  counted instead of retried: retrying it unchanged would fail forever and block every later item.
- The service never closes the channel, so a restarted service picks up where a crashed one stopped.
  Items recorded after the final flush stay in the channel, uncounted; there are none when the writer is
  started before the HTTP server, since the supervisor stops services in reverse start order.

Exceptions are logged by class name only (``extra={"error_type": ...}``), never with item contents.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, TypeVarTuple, Unpack

import attrs
import sqlalchemy as sa
import trio
from sqlalchemy.dialects import postgresql as sa_postgresql
from sqlalchemy.dialects import sqlite as sa_sqlite

from voidllm.errors import StoreError
from voidllm.nursery.supervisor import Backoff
from voidllm.store.errors import StoreIntegrityError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "FLUSH_TIMEOUT_S",
    "WRITE_BACKOFF",
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

PENDING_BATCHES = 10
"""During an outage the writer holds at most this many batches (``max_pending`` default)."""


class BatchStore(Protocol):
    """What the writer needs of :class:`voidllm.store.Store` (tests pass in-memory fakes)."""

    async def run(self, fn: Callable[[sa.Connection, Unpack[Ts]], T], /, *args: Unpack[Ts]) -> T: ...


@attrs.frozen
class BatchMetrics:
    """The Prometheus metrics of one kind of batched row, plus its name in log messages."""

    what: str  # e.g. "usage events"
    buffer_depth: Gauge
    dropped: Counter
    written: Counter
    failures: Counter
    write_seconds: Histogram


# -- request side ----------------------------------------------------------------------------------------


@attrs.define(eq=False)
class Recorder(Generic[E]):
    """The request path's handle on a batch channel. Create it with :func:`open_batch_channel`."""

    _send: trio.MemorySendChannel[E]
    _metrics: BatchMetrics
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


def open_batch_channel(
    buffer_size: int, metrics: BatchMetrics
) -> tuple[Recorder[E], trio.MemoryReceiveChannel[E]]:
    """Create a bounded batch channel: the recorder for requests and the receive side for the writer.

    Raises:
        ValueError: ``buffer_size`` is less than 1.
    """
    if buffer_size < 1:
        raise ValueError(f"the {metrics.what} buffer size must be at least 1")
    send, receive = trio.open_memory_channel[E](buffer_size)
    return Recorder(send, metrics), receive


# -- the service -----------------------------------------------------------------------------------------


async def serve_batch_writer(
    *,
    store: BatchStore,
    receive: trio.MemoryReceiveChannel[E],
    insert: Callable[[sa.Connection, Sequence[E]], int],
    metrics: BatchMetrics,
    batch_size: int,
    flush_interval: float,
    flush_timeout: float = FLUSH_TIMEOUT_S,
    max_pending: int | None = None,
    backoff: Backoff = WRITE_BACKOFF,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Write items from ``receive`` in batches until cancelled (see the module docstring).

    Args:
        store: where to write (a :class:`voidllm.store.Store`).
        receive: the receive side from :func:`open_batch_channel`; not closed by this service.
        insert: writes a batch on a connection (in the caller's transaction); runs in a worker thread.
        metrics: the metrics to count in.
        batch_size: write as soon as this many items are pending (also the rows per transaction).
        flush_interval: write at most this many seconds after the first item of a batch arrived.
        flush_timeout: bound of the shielded final flush on cancellation.
        max_pending: items held while the store fails; default ``10 * batch_size``.
        backoff: delays between write attempts while the store fails.

    Cancellation: pending and queued items are written first, shielded for at most ``flush_timeout``
    seconds; then ``trio.Cancelled`` propagates. Returns normally once the channel's send side is closed and
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
    )
    metrics.buffer_depth.set_function(writer.depth)
    task_status.started()
    try:
        await writer.run()
    finally:
        with trio.move_on_after(flush_timeout, shield=True):
            await writer.drain()
        writer.give_up()


@attrs.define(eq=False)
class _BatchWriter(Generic[E]):
    store: BatchStore
    receive: trio.MemoryReceiveChannel[E]
    insert: Callable[[sa.Connection, Sequence[E]], int]
    metrics: BatchMetrics
    batch_size: int
    flush_interval: float
    max_pending: int
    backoff: Backoff
    pending: list[E] = attrs.Factory(list)
    due_at: float = math.inf  # when to write the pending items (batch deadline or retry time)
    failures: int = 0  # consecutive failed writes; > 0 means "in an outage"
    ended: bool = False  # the send side was closed and the channel is empty

    def depth(self) -> int:
        """Items waiting: queued in the channel plus pending here (the buffer-depth gauge)."""
        return self.receive.statistics().current_buffer_used + len(self.pending)

    async def run(self) -> None:
        while not (self.ended and not self.pending):
            await self._collect()
            await self._flush()

    async def _collect(self) -> None:
        """Receive until the pending items are due: batch full, its interval over, or retry time reached."""
        limit = self.max_pending if self.failures else self.batch_size
        with trio.move_on_at(self.due_at) as scope:
            while len(self.pending) < limit and not self.ended:
                try:
                    item = await self.receive.receive()
                except trio.EndOfChannel:
                    self.ended = True
                    break
                self._add(item)
                scope.deadline = self.due_at
            if self.failures:
                await trio.sleep_forever()  # at the cap (or ended): wait out the backoff

    def _add(self, item: E) -> None:
        if not self.pending and not self.failures:
            self.due_at = trio.current_time() + self.flush_interval
        self.pending.append(item)

    async def _flush(self, *, final: bool = False) -> None:
        """Write pending items in chunks of ``batch_size``; on a store error schedule the retry.

        Items that arrived during the writes and do not fill a batch wait for their own interval, unless
        ``final`` (shutdown), when everything is written.
        """
        while self.pending:
            chunk = self.pending[: self.batch_size]
            try:
                await self._write(chunk)
            except StoreIntegrityError as exc:
                self._reject(chunk, exc)
            except StoreError as exc:
                self._schedule_retry(exc)
                return
            del self.pending[: len(chunk)]
            self.failures = 0
            if not final and len(self.pending) < self.batch_size:
                break
        self.due_at = trio.current_time() + self.flush_interval if self.pending else math.inf

    async def _write(self, chunk: list[E]) -> None:
        """Write one chunk; meanwhile keep taking items off the channel so it never fills during a write."""
        error: Exception | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._absorb)
            try:
                with self.metrics.write_seconds.time():
                    await self.store.run(self.insert, chunk)
            except Exception as exc:  # re-raised outside the nursery, unwrapped
                error = exc
            nursery.cancel_scope.cancel()
        if error is not None:
            raise error
        self.metrics.written.inc(len(chunk))

    async def _absorb(self) -> None:
        """Move items from the channel into ``pending`` (up to ``max_pending``) while a write runs."""
        while len(self.pending) < self.max_pending and not self.ended:
            try:
                item = await self.receive.receive()
            except trio.EndOfChannel:
                self.ended = True
                return
            self._add(item)

    def _schedule_retry(self, exc: StoreError) -> None:
        self.failures += 1
        self.metrics.failures.inc()
        delay = self.backoff.delay(self.failures)
        self.due_at = trio.current_time() + delay
        log.warning(
            "%s write failed; will retry",
            self.metrics.what,
            extra={"error_type": type(exc).__name__, "pending": len(self.pending), "retry_in_s": delay},
        )

    def _reject(self, chunk: list[E], exc: StoreIntegrityError) -> None:
        self.metrics.dropped.inc(len(chunk))
        log.error(
            "%s batch rejected by the database; dropped",
            self.metrics.what,
            extra={"error_type": type(exc).__name__, "constraint": exc.constraint, "items": len(chunk)},
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

    def _take_queued(self) -> bool:
        """Move every queued item into ``pending``; return whether anything is pending."""
        while True:
            try:
                self.pending.append(self.receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return bool(self.pending)

    def give_up(self) -> None:
        """Count what the final flush could not write as dropped."""
        if self.pending:
            self.metrics.dropped.inc(len(self.pending))
            log.error("%s lost at shutdown", self.metrics.what, extra={"items": len(self.pending)})
            self.pending.clear()


# -- inserting rows --------------------------------------------------------------------------------------


def insert_rows(connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> int:
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
