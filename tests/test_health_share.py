"""Health boards shared through Redis (:mod:`voidllm.redis.boards`): with two processes (here two sets of
services in one test, sharing a real Redis), only the lease holder probes, the other's board gets the
results, and when the holder stops the other takes over within one interval. Trio's clock jumps ahead once
every task has been idle for a moment (:func:`clock`), so Redis round trips finish before it moves."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from functools import partial

import pytest
import trio
import trio.testing

from voidllm.mcp.health import McpHealthBoard
from voidllm.mcp.registry import McpServerEntry
from voidllm.redis.boards import RedisBoardShare, serve_shared_board
from voidllm.redis.client import RedisClient, open_redis
from voidllm.redis.lease import RedisLease
from voidllm.routing.health import HealthBoard, _Outcome
from voidllm.store.lease import LeaseState, serve_lease

pytestmark = pytest.mark.redis

EVERY = 30.0


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0.05)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[tuple[RedisClient, str]]:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    async with open_redis(redis_url, command_timeout=3600) as client:
        try:
            yield client, prefix
        finally:
            keys = await client.execute("KEYS", prefix + "*")
            if keys:
                await client.execute("DEL", *keys)


async def _model_prober(
    board: HealthBoard, calls: list[float], task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Stands in for ``serve_health_probes``: one upstream, down, probed every ``EVERY`` seconds."""
    while True:
        calls.append(trio.current_time())
        board._record("m/a", "health", _Outcome(ok=False, error="connection refused"))
        task_status.started()
        task_status = trio.TASK_STATUS_IGNORED
        await trio.sleep(EVERY)


async def _start(
    nursery: trio.Nursery, client: RedisClient, prefix: str, name: str, board: HealthBoard, calls: list[float]
) -> trio.CancelScope:
    """One process's lease and shared board, in a cancel scope of their own (cancelled: the process died)."""
    scope = trio.CancelScope()

    async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            async with trio.open_nursery() as inner:
                state = LeaseState()
                lease = RedisLease(name, client, prefix, ttl=EVERY / 2)
                await inner.start(partial(serve_lease, lease=lease, state=state, renew_every=EVERY / 6))
                share = RedisBoardShare(name, client, prefix, expiry=3 * EVERY)
                await inner.start(
                    partial(
                        serve_shared_board,
                        lease=state,
                        probe=partial(_model_prober, board, calls),
                        share=share,
                        dump=board.entries,
                        load=board.load,
                        every=EVERY,
                    )
                )
                task_status.started()

    await nursery.start(run)
    return scope


async def test_only_the_holder_probes_the_other_reads_and_takes_over(
    clock: trio.testing.MockClock, redis: tuple[RedisClient, str]
) -> None:
    client, prefix = redis
    first, second = HealthBoard(), HealthBoard()
    first_calls: list[float] = []
    second_calls: list[float] = []
    async with trio.open_nursery() as nursery:
        holder = await _start(nursery, client, prefix, "model-health", first, first_calls)
        await _start(nursery, client, prefix, "model-health", second, second_calls)
        assert first.status("m/a") == "unhealthy"
        await trio.sleep(EVERY + 1)
        assert second_calls == []  # only the holder probes
        assert second.status("m/a") == "unhealthy"  # ... and the other routes by its results
        report = second.report("m/a")
        assert (report.health_ok, report.last_error) == (False, "connection refused")
        assert len(first_calls) == 2

        holder.cancel()  # the holder dies
        died = trio.current_time()
        await trio.sleep(EVERY)
        assert second_calls  # taken over within one interval
        assert second_calls[0] - died <= EVERY
        await trio.sleep(3 * EVERY)
        assert len(second_calls) >= 3  # and probing on schedule
        nursery.cancel_scope.cancel()


async def test_without_the_holder_results_expire_to_unknown(
    clock: trio.testing.MockClock, redis: tuple[RedisClient, str]
) -> None:
    client, prefix = redis
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    share = RedisBoardShare("model-health", client, prefix, expiry=90, clock=lambda: now)
    source = HealthBoard(clock=lambda: now - dt.timedelta(seconds=60))
    source._record("m/a", "health", _Outcome(ok=False, error="request timeout"))
    source._record("m/b", "health", _Outcome(ok=True, latency=0.25))
    await share.publish(source.entries())
    board = HealthBoard()
    board.load(await share.read())
    assert (board.status("m/a"), board.status("m/b")) == ("unhealthy", "healthy")
    assert board.report("m/b").latency_ms == 250

    now += dt.timedelta(seconds=31)  # checked 91 s ago: older than the expiry
    board.load(await share.read())
    assert board.reports() == ()
    assert board.status("m/a") == "unknown"

    await client.execute("SET", share.key, "not json")
    assert await share.read() == {}
    await client.execute("DEL", share.key)
    assert await share.read() == {}


async def test_a_reader_is_ready_after_its_first_read_when_nothing_is_shared(
    clock: trio.testing.MockClock, redis: tuple[RedisClient, str]
) -> None:
    client, prefix = redis
    board = HealthBoard()
    share = RedisBoardShare("model-health", client, prefix, expiry=90)
    probe_calls: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(
                serve_shared_board,
                lease=LeaseState(held=False),
                probe=partial(_model_prober, board, probe_calls),
                share=share,
                dump=board.entries,
                load=board.load,
                every=EVERY,
            )
        )
        assert (probe_calls, board.reports()) == ([], ())
        nursery.cancel_scope.cancel()


async def test_mcp_board_entries_round_trip(redis: tuple[RedisClient, str]) -> None:
    client, prefix = redis
    server = McpServerEntry(id="s1", name="Search", alias="search", url="http://127.0.0.1:1/mcp")
    gone = McpServerEntry(id="s2", name="Old", alias="old", url="http://127.0.0.1:1/mcp")
    source = McpHealthBoard()
    source.record(server, ok=True, latency=0.125, tool_count=4, error=None)
    share = RedisBoardShare("mcp-health", client, prefix, expiry=180)
    await share.publish(source.entries())
    board = McpHealthBoard()
    board.record(gone, ok=False, latency=None, tool_count=None, error="request timeout")
    board.load(await share.read())
    assert board.reports() == source.reports()
    assert board.report(gone).status == "unknown"
    assert board.report(server).tool_count == 4
