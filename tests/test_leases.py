"""Issue 20 point 3: rollups and retention run in one process of all those sharing the store, the holder of
a lease (:mod:`voidllm.store.lease`), and another takes over within one period when the holder dies.

The backends on their real services (two holders in this process: Redis, a PostgreSQL advisory lock, a lock
file), the jobs following a lease on trio's autojump clock, and two real gateway processes sharing Redis:
only the holder rolls up; SIGKILL it and the other takes the lease over within one rollup interval.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import cast

import attrs
import httpx
import pytest
import sqlalchemy as sa
import trio

from tests.polling import poll_until
from tests.process import GatewayProcess, delete_prefix, redis_yaml, spawn_gateway, write_config
from voidllm.config.settings import RetentionConfig
from voidllm.redis.client import RedisClient, open_redis
from voidllm.redis.lease import RedisLease
from voidllm.store.lease import AdvisoryLease, FileLease, LeaseState, serve_lease
from voidllm.store.store import Store, open_store
from voidllm.usage import retention, rollups
from voidllm.usage.retention import RetentionRun
from voidllm.usage.rollups import RollupRun


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[tuple[RedisClient, str]]:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    async with open_redis(redis_url) as client:
        try:
            yield client, prefix
        finally:
            await delete_prefix(client, prefix)


@pytest.mark.redis
async def test_redis_lease_one_holder_renewed_then_taken_over_after_expiry(
    redis: tuple[RedisClient, str],
) -> None:
    client, prefix = redis
    a, b = (RedisLease("job", client, prefix, ttl=30) for _ in range(2))
    assert await a.hold()
    assert not await b.hold()
    await client.execute("PEXPIRE", a.key, 5000)
    assert await a.hold()  # renewed: the whole ttl again
    assert 25_000 < int(await client.execute("PTTL", a.key)) <= 30_000
    assert not await b.hold()
    await client.execute("DEL", a.key)  # a died: its key expired
    assert await b.hold()
    assert not await a.hold()  # a came back: b keeps it
    await a.release()  # compare and delete: a never deletes b's key
    assert await client.execute("GET", a.key) == b.token.encode()
    await b.release()
    assert await client.execute("EXISTS", a.key) == 0


@pytest.mark.postgres
async def test_advisory_lease_is_freed_when_the_holders_session_ends(pg_dsn: str) -> None:
    async with open_store("postgres", pg_dsn) as store:
        a, b = AdvisoryLease("job", store), AdvisoryLease("job", store)
        assert await a.hold()
        assert not await b.hold()
        assert await a.hold()  # kept on its own connection
        other = AdvisoryLease("another job", store)
        assert await other.hold()  # other names are independent
        await other.release()

        def kill_a(conn: sa.Connection) -> None:  # the holder's process dies: its session ends
            conn.execute(
                sa.text(
                    # with a timeout, it returns once the backend has exited (and its locks are gone)
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND objid = :low"
                ),
                {"low": a.key & 0xFFFFFFFF},
            )

        await store.run(kill_a)
        assert await b.hold()
        assert not await a.hold()  # a notices its connection is gone; b holds the lock
        await b.release()
        assert await a.hold()
        await a.release()


async def test_file_lease_one_holder_until_it_closes(tmp_path: Path) -> None:
    a, b = FileLease("job", tmp_path / "job.lease"), FileLease("job", tmp_path / "job.lease")
    assert await a.hold()
    assert not await b.hold()
    assert await a.hold()
    await a.release()
    assert await b.hold()
    await b.release()


@attrs.define
class Switch:
    """A lease held exactly while ``held`` says so."""

    name: str = "job"
    held: bool = False

    async def hold(self) -> bool:
        await trio.lowlevel.checkpoint()
        return self.held

    async def release(self) -> None:
        await trio.lowlevel.checkpoint()


async def test_jobs_run_only_while_the_lease_is_held(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[tuple[str, float]] = []

    async def roll_up(store: object, **kwargs: object) -> RollupRun:
        runs.append(("rollup", trio.current_time()))
        return RollupRun(hours=0, complete=True)

    async def purge(store: object, config: object, **kwargs: object) -> RetentionRun:
        runs.append(("retention", trio.current_time()))
        return RetentionRun(deleted={}, complete=True)

    monkeypatch.setattr(rollups, "roll_up", roll_up)
    monkeypatch.setattr(retention, "purge", purge)
    switch, state = Switch(), LeaseState()
    store = cast("Store", None)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_lease, lease=switch, state=state, renew_every=10))
        began = trio.current_time()
        await nursery.start(
            partial(rollups.serve_rollups, store=store, interval=60, lateness=60, lease=state)
        )
        config = RetentionConfig(usage_events=3600.0, interval=120.0)
        await nursery.start(partial(retention.serve_retention, store=store, config=config, lease=state))
        await trio.sleep(305)
        assert runs == []  # not the holder: ready, but nothing ran
        switch.held = True  # the renewal at 310 finds the lease held: both jobs run at once
        await trio.sleep(95)
        assert sorted((job, at - began) for job, at in runs) == [
            ("retention", 310),
            ("rollup", 310),
            ("rollup", 370),
        ]
        switch.held = False  # lost at the renewal at 410: nothing runs from then on
        await trio.sleep(600)
        assert len(runs) == 3
        nursery.cancel_scope.cancel()


def rollup_lease(gateway: GatewayProcess) -> list[str]:
    """What ``gateway`` logged about the rollups' lease, in order."""
    return [
        m
        for m in ("lease acquired", "lease lost")
        for r in gateway.log(m)
        if r.get("lease") == "usage-rollups"
    ]


async def rollup_runs(gateway: GatewayProcess) -> float:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        text = (await client.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("voidllm_rollup_runs_total{")
    )


INTERVAL = 4.0
"""The rollup interval of the process test: lease ttl 2 s, renewed every 0.67 s."""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["redis", "postgres"])
async def test_a_killed_holder_is_replaced_within_one_period(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Two gateway processes: with Redis (SQLite store), then on PostgreSQL without Redis (advisory lock)."""
    settings = f"usage:\n  rollup_interval: {INTERVAL}s"
    if backend == "redis":
        url, prefix = request.getfixturevalue("redis_url"), f"test:{uuid.uuid4().hex[:12]}:"
        config = write_config(tmp_path, redis_yaml(url, prefix), settings=settings)
    else:
        dsn = request.getfixturevalue("pg_dsn")
        config = write_config(tmp_path, settings=settings, postgres_dsn=dsn)
    try:
        await two_gateways_one_holder(config)
    finally:
        if backend == "redis":
            async with open_redis(url) as client:
                await delete_prefix(client, prefix)


async def two_gateways_one_holder(config: Path) -> None:
    """Only one of two gateways rolls up; SIGKILL it and the other takes over within one interval."""
    async with spawn_gateway(config) as a, spawn_gateway(config, expect_banner=False) as b:
        holders = [g for g in (a, b) if rollup_lease(g) == ["lease acquired"]]
        assert len(holders) == 1, (rollup_lease(a), rollup_lease(b))
        holder, other = holders[0], (b if holders[0] is a else a)

        async def holder_ran_twice() -> bool:  # a whole period: the holder keeps the lease and runs again
            return await rollup_runs(holder) >= 2

        with trio.fail_after(2 * INTERVAL):
            await poll_until(holder_ran_twice, interval=0.2)
        assert rollup_lease(holder) == ["lease acquired"]
        assert rollup_lease(other) == []
        assert await rollup_runs(other) == 0
        holder.signal(signal.SIGKILL)
        await holder.wait_exit()
        with trio.fail_after(INTERVAL):  # the dead holder's key expires (2 s) or its session ends: taken over
            await other.wait_for_line(lambda: rollup_lease(other) == ["lease acquired"])

        async def ran() -> bool:
            return await rollup_runs(other) >= 1

        with trio.fail_after(INTERVAL):  # and runs the rollups
            await poll_until(ran, interval=0.2)
