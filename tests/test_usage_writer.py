"""The usage writer: the recorder's drops, batching by size and time, outage retries, shutdown flush.

Timing behaviour runs on the autojump clock against an in-memory fake store (STYLE P17: autojump and real
I/O in threads do not mix); "rows land correctly" runs on the real store (SQLite and PostgreSQL) with the
real clock, ending the service by closing the channel or cancelling it rather than by waiting.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import psycopg
import pytest
import sqlalchemy as sa
import trio
import trio.testing

from voidllm.errors import StoreError, StoreUnavailableError
from voidllm.metrics import REGISTRY
from voidllm.store.errors import StoreIntegrityError
from voidllm.store.migrate import migrate
from voidllm.store.store import open_store
from voidllm.store.tables import usage_events
from voidllm.usage import UsageEvent, insert_usage_events, open_usage_channel, serve_usage_writer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from voidllm.store.store import Store
    from voidllm.usage import UsageRecorder

STARTED = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def event(n: int, **changes: Any) -> UsageEvent:
    base = UsageEvent(
        request_id=f"req-{n}",
        key_id=f"key-{n % 3}",
        key_type="user",
        org_id="org-1",
        model_name="gpt-4o",
        prompt_tokens=n,
        completion_tokens=2 * n,
        total_tokens=3 * n,
        duration_ms=100 + n,
        created_at=STARTED + timedelta(seconds=n),
    )
    return attrs.evolve(base, **changes)


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def ids(*numbers: int) -> list[str]:
    return [f"req-{n}" for n in numbers]


@attrs.define(eq=False)
class FakeStore:
    """An in-memory store: records each batch with the (mock) time it was written.

    ``errors`` are raised by the first attempts, one per attempt; later attempts succeed.
    """

    errors: list[BaseException] = attrs.Factory(list)
    always_fail: bool = False
    attempts: list[float] = attrs.Factory(list)
    batches: list[tuple[float, list[str | None]]] = attrs.Factory(list)

    async def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        assert getattr(fn, "func", fn) is insert_usage_events  # bound to its late_after
        await trio.lowlevel.checkpoint()
        self.attempts.append(trio.current_time())
        if self.always_fail:
            raise StoreUnavailableError("database unavailable: OperationalError")
        if len(self.attempts) <= len(self.errors):
            raise self.errors[len(self.attempts) - 1]
        (events,) = args
        self.batches.append((trio.current_time(), [e.request_id for e in events]))
        return len(events)


@attrs.define(eq=False)
class CountingStore:
    """The real store, counting ``run`` calls (each one is one transaction) and their batch sizes."""

    inner: Store
    sizes: list[int] = attrs.Factory(list)

    async def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        self.sizes.append(len(args[0]))
        return await self.inner.run(fn, *args)


@asynccontextmanager
async def running_writer(
    store: Any, *, buffer_size: int = 100, **options: Any
) -> AsyncIterator[UsageRecorder]:
    """Start the writer in a nursery; leaving the block cancels it (a shutdown) and waits for its flush."""
    recorder, receive = open_usage_channel(buffer_size)
    options = {"batch_size": 3, "flush_interval": 5.0, **options}
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_usage_writer, store=store, receive=receive, **options))
        try:
            yield recorder
        finally:
            nursery.cancel_scope.cancel()


# -- recorder -----------------------------------------------------------------------------------------


async def test_record_drops_and_counts_when_full_or_closed() -> None:
    recorder, receive = open_usage_channel(2)
    before = metric("voidllm_usage_events_dropped_total")
    assert recorder.record(event(0)) is True
    assert recorder.record(event(1)) is True
    assert recorder.depth() == 2
    assert recorder.record(event(2)) is False  # full
    receive.close()
    assert recorder.record(event(3)) is False  # the writer's side is gone
    recorder.close()
    assert recorder.record(event(4)) is False  # closed at shutdown
    assert metric("voidllm_usage_events_dropped_total") - before == 3


def test_channel_must_have_a_buffer() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        open_usage_channel(0)


# -- batching (fake store, autojump clock) -------------------------------------------------------------


async def test_full_batches_are_written_at_once(autojump_clock: trio.testing.MockClock) -> None:
    store = FakeStore()
    written = metric("voidllm_usage_events_written_total")
    async with running_writer(store, batch_size=3, flush_interval=5.0) as recorder:
        assert trio.current_time() == 0  # ready at once
        for n in range(7):
            assert recorder.record(event(n))
        await trio.sleep(10)
    assert store.batches == [(0, ids(0, 1, 2)), (0, ids(3, 4, 5)), (5, ids(6))]
    assert metric("voidllm_usage_events_written_total") - written == 7


async def test_a_batch_is_written_flush_interval_after_its_first_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FakeStore()
    async with running_writer(store, batch_size=100, flush_interval=5.0) as recorder:
        await trio.sleep(1)
        recorder.record(event(0))
        await trio.sleep(2)
        recorder.record(event(1))
        await trio.sleep(7)
        recorder.record(event(2))
        await trio.sleep(20)
    assert store.batches == [(6, ids(0, 1)), (15, ids(2))]


async def test_service_returns_once_the_channel_is_closed_and_written(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FakeStore()
    recorder, receive = open_usage_channel(10)
    for n in range(5):
        recorder.record(event(n))
    recorder.close()
    await serve_usage_writer(store=store, receive=receive, batch_size=2, flush_interval=60.0)
    assert store.batches == [(0, ids(0, 1)), (0, ids(2, 3)), (0, ids(4))]


# -- store outage ---------------------------------------------------------------------------------------


async def test_outage_retries_with_exponential_backoff_capped_at_30s(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outage: list[BaseException] = [StoreUnavailableError("down") for _ in range(7)]
    outage.append(StoreError("database error: X"))
    store = FakeStore(errors=outage)
    failures = metric("voidllm_usage_write_failures_total")
    async with running_writer(store, batch_size=100, flush_interval=1.0) as recorder:
        recorder.record(event(0))
        await trio.sleep(2)
        recorder.record(event(1))  # arrives during the outage: joins the pending events
        await trio.sleep(48)
        recorder.record(event(2))
        await trio.sleep(50)
    # delays 0.5, 1, 2, 4, 8, 16, then capped at 30
    assert store.attempts == [1, 1.5, 2.5, 4.5, 8.5, 16.5, 32.5, 62.5, 92.5]
    assert store.batches == [(92.5, ids(0, 1, 2))]
    assert metric("voidllm_usage_write_failures_total") - failures == 8


async def test_outage_holds_max_pending_then_the_recorder_drops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FakeStore(errors=[StoreUnavailableError("down")])
    dropped = metric("voidllm_usage_events_dropped_total")
    options = {"batch_size": 2, "max_pending": 4, "flush_interval": 5.0}
    async with running_writer(store, buffer_size=3, **options) as recorder:
        recorder.record(event(0))
        recorder.record(event(1))  # a full batch: written at once, and the write fails
        await trio.sleep(0.125)
        recorder.record(event(2))
        recorder.record(event(3))  # the writer takes these: 4 pending, its cap
        await trio.sleep(0.125)
        assert all(recorder.record(event(n)) for n in (4, 5, 6))  # queued in the channel
        assert recorder.record(event(7)) is False  # channel full
        assert recorder.depth() == 3
        assert metric("voidllm_usage_buffer_depth") == 7
        await trio.sleep(10)
        assert metric("voidllm_usage_buffer_depth") == 0
    # the retry at 0.5 writes the pending events in batch-sized transactions, then catches up
    assert store.attempts == [0, 0.5, 0.5, 0.5, 5.5]
    assert store.batches == [(0.5, ids(0, 1)), (0.5, ids(2, 3)), (0.5, ids(4, 5)), (5.5, ids(6))]
    assert metric("voidllm_usage_events_dropped_total") - dropped == 1


async def test_a_batch_the_database_rejects_is_dropped(autojump_clock: trio.testing.MockClock) -> None:
    store = FakeStore(errors=[StoreIntegrityError("not_null", None)])
    dropped = metric("voidllm_usage_events_dropped_total")
    async with running_writer(store, batch_size=2, flush_interval=5.0) as recorder:
        recorder.record(event(0))
        recorder.record(event(1))
        await trio.sleep(1)
        recorder.record(event(2))
        await trio.sleep(10)
    assert store.attempts == [0, 6]
    assert store.batches == [(6, ids(2))]
    assert metric("voidllm_usage_events_dropped_total") - dropped == 2


# -- shutdown -------------------------------------------------------------------------------------------


async def test_shutdown_writes_pending_and_queued_events(autojump_clock: trio.testing.MockClock) -> None:
    store = FakeStore()
    async with running_writer(store, batch_size=100, flush_interval=60.0) as recorder:
        recorder.record(event(0))
        recorder.record(event(1))
        await trio.sleep(1)  # the writer holds 0 and 1, waiting for the interval
        for n in (2, 3, 4):
            recorder.record(event(n))  # 3 and 4 are still in the channel when the cancel comes
    assert trio.current_time() == 1
    assert store.batches == [(1, ids(0, 1, 2, 3, 4))]


async def test_shutdown_retries_a_failing_store_within_the_flush_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FakeStore(errors=[StoreUnavailableError("down") for _ in range(2)])
    async with running_writer(store, batch_size=10, flush_interval=1.0, flush_timeout=5.0) as recorder:
        recorder.record(event(0))
        await trio.sleep(1.25)  # the write at 1 failed; the next is due at 1.5
    # the final flush tries at once (fails: third failure in a row, so 1 s), then succeeds
    assert store.attempts == [1, 1.25, 2.25]
    assert store.batches == [(2.25, ids(0))]


async def test_shutdown_flush_is_bounded_and_counts_what_is_lost(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FakeStore(always_fail=True)
    dropped = metric("voidllm_usage_events_dropped_total")
    async with running_writer(store, batch_size=10, flush_interval=1.0, flush_timeout=3.0) as recorder:
        for n in range(4):
            recorder.record(event(n))
        await trio.sleep(2)
    assert trio.current_time() == 5  # cancelled at 2, flush bounded by 3 s
    assert store.attempts == [1, 1.5, 2, 4]
    assert metric("voidllm_usage_events_dropped_total") - dropped == 4


async def test_a_crash_still_flushes_before_it_propagates(autojump_clock: trio.testing.MockClock) -> None:
    store = FakeStore(errors=[RuntimeError("bug")])
    recorder, receive = open_usage_channel(10)
    recorder.record(event(0))
    recorder.record(event(1))
    with pytest.raises(RuntimeError, match="bug"):
        await serve_usage_writer(store=store, receive=receive, batch_size=2, flush_interval=5.0)
    assert store.batches == [(0, ids(0, 1))]


async def test_cancellation_is_not_swallowed(autojump_clock: trio.testing.MockClock) -> None:
    store = FakeStore()
    _recorder, receive = open_usage_channel(10)
    with trio.move_on_after(3) as scope:
        await serve_usage_writer(store=store, receive=receive, batch_size=2, flush_interval=5.0)
    assert scope.cancelled_caught
    assert trio.current_time() == 3


# -- real store (SQLite and PostgreSQL, real clock) -------------------------------------------------------


def _select_rows(connection: sa.Connection) -> list[dict[str, Any]]:
    query = sa.select(usage_events).order_by(usage_events.c.request_id)
    return [dict(row) for row in connection.execute(query).mappings()]


def _count_rows(connection: sa.Connection) -> int:
    return connection.execute(sa.select(sa.func.count()).select_from(usage_events)).scalar_one()


async def _write_all(store: Any, events: list[UsageEvent], *, batch_size: int) -> None:
    """Record ``events``, close the channel and run the writer until it has written everything."""
    recorder, receive = open_usage_channel(len(events))
    for item in events:
        assert recorder.record(item)
    recorder.close()
    await serve_usage_writer(store=store, receive=receive, batch_size=batch_size, flush_interval=60.0)


async def test_rows_land_once_with_every_column(store: Store) -> None:
    events = [
        event(
            0,
            team_id="team-1",
            user_id="user-1",
            service_account_id="sa-1",
            requested_model_name="fast",
            provider="openai",
            deployment_name="east",
            cost_estimate=0.0123,
            ttft_ms=42,
            tokens_per_second=17.5,
            status_code=200,
            status="ok",
            stream=True,
            source="ci",
            project="alpha",
        ),
        event(1, status="upstream_error", status_code=502, model_name="m" * 300),
        event(2, status="client_disconnect", stream=True, ttft_ms=5),
    ]
    await _write_all(store, events, batch_size=2)
    rows = await store.run(_select_rows)
    assert len(rows) == 3
    assert len({row["id"] for row in rows}) == 3
    for row, item in zip(rows, events, strict=True):
        assert row == item.to_row()
    assert rows[1]["model_name"] == "m" * 256
    assert rows[0]["created_at"] == STARTED


async def test_a_batch_written_twice_lands_once(store: Store) -> None:
    events = [event(n) for n in range(5)]
    assert await store.run(insert_usage_events, events[:3]) == 3
    assert await store.run(insert_usage_events, events) == 5  # a retry after a lost acknowledgement
    assert sorted(row["request_id"] for row in await store.run(_select_rows)) == ids(0, 1, 2, 3, 4)


async def test_batches_are_one_transaction_each(store: Store) -> None:
    counting = CountingStore(store)
    await _write_all(counting, [event(n) for n in range(120)], batch_size=50)
    assert counting.sizes == [50, 50, 20]
    assert await store.run(_count_rows) == 120


async def test_shutdown_flushes_into_the_database(store: Store) -> None:
    async with running_writer(store, batch_size=100, flush_interval=3600.0) as recorder:
        for n in range(5):
            recorder.record(event(n))
        await trio.testing.wait_all_tasks_blocked()
    assert [row["request_id"] for row in await store.run(_select_rows)] == ids(0, 1, 2, 3, 4)


async def test_ten_thousand_events(store: Store) -> None:
    events = [event(n) for n in range(10_000)]
    counting = CountingStore(store)
    began = time.perf_counter()
    await _write_all(counting, events, batch_size=10_000)
    elapsed_ms = (time.perf_counter() - began) * 1000
    assert counting.sizes == [10_000]
    assert await store.run(_count_rows) == 10_000
    print(f"\n10k usage events through the writer on {store.dialect}: {elapsed_ms:.0f} ms")


async def test_a_rejected_row_raises_an_integrity_error(store: Store) -> None:
    bad = event(0)
    object.__setattr__(bad, "key_id", None)  # bypass the validators to reach the database's NOT NULL
    with pytest.raises(StoreIntegrityError) as caught:
        await store.run(insert_usage_events, [event(1), bad])
    assert caught.value.kind == "not_null"
    assert await store.run(_count_rows) == 0


async def test_insert_on_a_dead_postgres_connection_is_store_unavailable(pg_dsn: str) -> None:
    """A connection that dies mid-transaction: the psycopg error reaches the writer as a store error
    it retries, and the next write gets a fresh connection."""

    def kill_then_insert(connection: sa.Connection, events: list[UsageEvent]) -> int:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with psycopg.connect(pg_dsn, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return insert_usage_events(connection, events)

    async with open_store("postgres", pg_dsn) as store:
        await migrate(store)
        with pytest.raises(StoreUnavailableError):
            await store.run(kill_then_insert, [event(0)])
        assert await store.run(insert_usage_events, [event(1)]) == 1
        assert [row["request_id"] for row in await store.run(_select_rows)] == ids(1)


async def test_record_waiting_waits_for_room_then_gives_up(autojump_clock: trio.testing.MockClock) -> None:
    from voidllm.usage.writer import open_usage_channel

    recorder, receive = open_usage_channel(1)
    first, second, third = (_waiting_event(i) for i in range(3))
    assert recorder.record(first)
    async with trio.open_nursery() as nursery:

        async def take_later() -> None:
            await trio.sleep(2)
            assert (await receive.receive()) is first

        nursery.start_soon(take_later)
        assert await recorder.record_waiting(second, limit=10) is True  # room after 2 s
        assert trio.current_time() == 2.0
    assert await recorder.record_waiting(third, limit=5) is False  # nobody takes it: dropped after 5 s
    assert trio.current_time() == 7.0


def _waiting_event(index: int) -> Any:
    from datetime import UTC, datetime

    from voidllm.usage.events import UsageEvent

    return UsageEvent(
        request_id=f"r{index}",
        key_id="k",
        key_type="user_key",
        org_id="o",
        team_id=None,
        user_id=None,
        service_account_id=None,
        model_name="m",
        requested_model_name="m",
        provider="openai",
        deployment_name="m",
        prompt_tokens=0,
        completion_tokens=0,
        total_tokens=0,
        cost_estimate=None,
        duration_ms=1,
        ttft_ms=None,
        tokens_per_second=None,
        status_code=200,
        status="ok",
        stream=False,
        source=None,
        project=None,
        created_at=datetime.now(UTC),
    )


@attrs.define(eq=False)
class SlowStore(FakeStore):
    """A FakeStore whose every write takes ``delay`` seconds (a busy database or a starved worker thread)."""

    delay: float = 1.0

    async def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        await trio.sleep(self.delay)
        return await super().run(fn, *args)


async def test_events_keep_flowing_while_a_slow_write_runs(autojump_clock: trio.testing.MockClock) -> None:
    store = SlowStore(delay=1.0)
    dropped = metric("voidllm_usage_events_dropped_total")
    async with running_writer(store, buffer_size=4, batch_size=20, flush_interval=5.0) as recorder:
        for n in range(40):  # 10 events/s against a channel of only 4 while each write takes 1 s
            assert recorder.record(event(n)), f"event {n} was dropped"
            await trio.sleep(0.1)
    assert metric("voidllm_usage_events_dropped_total") == dropped
    assert sorted(i for _, batch in store.batches for i in batch) == sorted(ids(*range(40)))


# -- the receiver's wakeups -------------------------------------------------------------------------------


@attrs.define(eq=False)
class ReceiverSteps(trio.abc.Instrument):
    """Counts the steps of the writer's receiver task: each is one wakeup."""

    steps: int = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("_receive_loop"):
            self.steps += 1


async def test_a_batch_being_filled_wakes_the_receiver_once_not_per_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FakeStore()
    steps = ReceiverSteps()
    async with running_writer(store, buffer_size=100, batch_size=40, flush_interval=5.0) as recorder:
        await trio.sleep(1)
        trio.lowlevel.add_instrument(steps)
        for n in range(39):  # one short of a batch, one every 10 ms
            assert recorder.record(event(n))
            await trio.sleep(0.01)
        trio.lowlevel.remove_instrument(steps)
        assert steps.steps <= 2  # the batch's first event; not one step per event
        assert store.batches == []
        recorder.record(event(39))  # the batch is full: written at once
        await trio.sleep(0.001)
        assert store.batches == [(pytest.approx(1.39, abs=0.01), ids(*range(40)))]


async def test_events_beyond_half_the_channel_wake_the_receiver_before_it_fills(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A batch far from full and a small channel: the receiver takes the queued events at half the channel,
    so none is dropped while the batch waits for its deadline."""
    store = FakeStore()
    dropped = metric("voidllm_usage_events_dropped_total")
    async with running_writer(store, buffer_size=10, batch_size=1000, flush_interval=60.0) as recorder:
        for n in range(100):
            assert recorder.record(event(n)), f"event {n} was dropped"
            await trio.sleep(0.01)
        assert store.batches == []  # all waiting for the deadline
    assert metric("voidllm_usage_events_dropped_total") == dropped
    assert [i for _, batch in store.batches for i in batch] == ids(*range(100))


async def test_closing_the_recorder_ends_a_writer_whose_receiver_waits_for_a_batch_to_fill(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FakeStore()
    recorder, receive = open_usage_channel(10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(serve_usage_writer, store=store, receive=receive, batch_size=100, flush_interval=60.0)
        )
        recorder.record(event(0))
        await trio.sleep(1)
        recorder.record(event(1))  # queued: the receiver waits for the batch to fill
        await trio.sleep(1)
        recorder.close()
    assert trio.current_time() == pytest.approx(2, abs=0.01)  # the service returned at once
    assert store.batches == [(pytest.approx(2, abs=0.01), ids(0, 1))]
