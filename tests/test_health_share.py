"""Health boards shared through Redis (:mod:`voidllm.redis.boards`): with two processes (here two sets of
services in one test, sharing a real Redis), only the lease holder probes, the other's board gets the
results, and when the holder stops the other takes over within one interval. Trio's clock jumps ahead once
every task has been idle for a moment (:func:`clock`), so Redis round trips finish before it moves."""

from __future__ import annotations

import datetime as dt
import signal
import uuid
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from tests.polling import poll_until
from tests.process import GatewayProcess, delete_prefix, redis_yaml, spawn_gateway, write_config
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
            await delete_prefix(client, prefix)


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


async def _upstream(hits: list[float], task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """A stand-in upstream that answers every request 200 and counts them."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    task_status.started(listener.socket.getsockname()[1])

    async def answer(stream: trio.SocketStream) -> None:
        async with stream:
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = await stream.receive_some()
                if not chunk:
                    return
                received += chunk
            hits.append(trio.current_time())
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    await trio.serve_listeners(answer, [listener])


def _lease_log(gateway: GatewayProcess) -> list[str]:
    """What ``gateway`` logged about the model-health lease, in order."""
    return [
        m
        for m in ("lease acquired", "lease lost")
        for r in gateway.log(m)
        if r.get("lease") == "model-health"
    ]


async def _status_gauge(gateway: GatewayProcess) -> list[str]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        text = (await client.get("/metrics")).text
    return [line for line in text.splitlines() if line.startswith("voidllm_model_health_status{")]


@pytest.mark.slow
async def test_two_gateways_one_prober_and_a_takeover(tmp_path: Path, redis_url: str) -> None:
    """Two gateway processes sharing Redis probe one upstream every 10 s: only the lease holder's probes reach
    it, the other reports the holder's result; SIGKILL the holder and the other probes within one interval."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    hits: list[float] = []
    try:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(_upstream, hits)
            models = f"""
models:
  - name: probed
    provider: openai
    base_url: http://127.0.0.1:{port}/v1
    api_key: sk-test
"""
            config = write_config(
                tmp_path,
                redis_yaml(redis_url, prefix) + models,
                settings="health_check:\n  health:\n    enabled: true\n    interval: 10s",
            )
            async with spawn_gateway(config) as a, spawn_gateway(config, expect_banner=False) as b:
                holders = [g for g in (a, b) if _lease_log(g) == ["lease acquired"]]
                assert len(holders) == 1, (_lease_log(a), _lease_log(b))
                holder, other = holders[0], (b if holders[0] is a else a)

                with trio.fail_after(15):
                    await poll_until(lambda: len(hits) >= 2, interval=0.2)
                assert hits[1] - hits[0] >= 9, hits  # one interval apart: one process probes, not both
                assert _lease_log(other) == []
                assert await _status_gauge(other) == ['voidllm_model_health_status{model="probed"} 1.0']

                holder.signal(signal.SIGKILL)
                await holder.wait_exit()
                with trio.fail_after(10):  # the lease's key expires (5 s): taken over within one interval
                    await other.wait_for_line(lambda: _lease_log(other) == ["lease acquired"])
                probes_before = len(hits)
                with trio.fail_after(10):  # and probes
                    await poll_until(lambda: len(hits) > probes_before, interval=0.2)
            nursery.cancel_scope.cancel()
    finally:
        async with open_redis(redis_url) as client:
            await delete_prefix(client, prefix)
