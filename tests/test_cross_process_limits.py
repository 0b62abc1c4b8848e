"""Exactness across processes: two real ``voidllm serve`` processes on one SQLite store and the real Redis.

Request limits: a key allowed 10 requests, 40 concurrent requests spread 20/20 over both processes, exactly
10 succeed. The per-day limit is checked once; the per-minute limit is checked on a burst that did not
straddle a minute boundary (a burst that did is retried with a fresh key: its two halves would be counted in
two windows, so 10 + up to 10 could rightly succeed).

Token budgets: 100 tokens a day, every answer uses 18, every request reserves 40 (its body size and
``max_tokens`` make the estimate exact). The mock holds its answers for a while, so all 20 concurrent
requests are admitted or refused before any settles: exactly 3 fit (40 + 40 + the remaining 20). Requests
after them are admitted until the used count reaches the limit; the total overshoots by less than one
answer (what the last request's reservation of the remainder missed), and no reservation is left behind.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import attrs
import httpx
import pytest
import trio

from tests.gateway import ENCRYPTION_KEY, usage_rows
from tests.polling import poll_until
from tests.process import GatewayProcess, delete_prefix, spawn_gateway, write_config
from tests.test_limits_gateway import LimitedKey, insert_key
from voidllm.crypto import Keyring
from voidllm.identity import Limits
from voidllm.limits.base import window_bounds
from voidllm.redis.bus import RedisBus
from voidllm.redis.client import RedisClient, open_redis
from voidllm.store.store import open_store
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream

pytestmark = [pytest.mark.slow, pytest.mark.redis]


@attrs.define
class Pair:
    a: GatewayProcess
    b: GatewayProcess
    dsn: str
    redis: RedisClient
    prefix: str

    async def add_key(self, **limits: Limits) -> LimitedKey:
        """A key made in the store, announced to both processes with a ``keys`` notice, usable in both."""
        async with open_store("sqlite", self.dsn) as store:
            key = await store.run(partial(insert_key, keyring=Keyring.from_setting(ENCRYPTION_KEY), **limits))
        await RedisBus(self.redis, self.prefix, "the-test").publish("keys", "*")
        for gw in (self.a, self.b):
            async with httpx.AsyncClient(base_url=gw.url) as client:

                async def accepted(client: httpx.AsyncClient = client) -> bool:
                    return (await client.get("/v1/models", headers=key.auth)).status_code == 200

                with trio.fail_after(2):
                    await poll_until(accepted, interval=0.01)
        return key

    async def burst(self, key: LimitedKey, per_process: int, body: bytes) -> list[int]:
        """``per_process`` concurrent requests to each process, one connection each; their statuses."""
        statuses: list[int] = []

        async def one(url: str) -> None:
            async with httpx.AsyncClient(base_url=url, timeout=20) as client:
                r = await client.post(
                    "/v1/chat/completions",
                    headers={**key.auth, "content-type": "application/json"},
                    content=body,
                )
                statuses.append(r.status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(per_process):
                nursery.start_soon(one, self.a.url)
                nursery.start_soon(one, self.b.url)
        return statuses


@asynccontextmanager
async def two_gateways(tmp_path: Path, redis_url: str, mock: MockUpstream) -> AsyncIterator[Pair]:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    config = write_config(
        tmp_path,
        f"""
models:
  - name: m
    provider: openai
    base_url: {mock.base_url}
redis:
  enabled: true
  url: {redis_url}
  key_prefix: "{prefix}"
""",
    )
    async with open_redis(redis_url) as redis:
        try:
            async with spawn_gateway(config) as a, spawn_gateway(config, expect_banner=False) as b:
                yield Pair(a, b, str(tmp_path / "data" / "voidllm.db"), redis, prefix)
                for gw in (a, b):  # a clean stop flushes the usage writers
                    gw.signal(signal.SIGTERM)
                    assert await gw.wait_exit() == 0
        finally:
            await delete_prefix(redis, prefix)


BODY = b'{"model":"m","messages":[]}'


async def test_request_limits_are_exact_across_two_processes(tmp_path: Path, redis_url: str) -> None:
    async with open_mock_upstream() as mock, two_gateways(tmp_path, redis_url, mock) as pair:
        per_day = await pair.add_key(key=Limits(requests_per_day=10))
        statuses = await pair.burst(per_day, 20, BODY)
        assert (statuses.count(200), statuses.count(429)) == (10, 30)
        assert len(mock.requests) == 10

        for _ in range(3):
            per_minute = await pair.add_key(org=Limits(requests_per_minute=10))
            before = len(mock.requests)
            began = time.time()
            statuses = await pair.burst(per_minute, 20, BODY)
            if window_bounds("minute", began) == window_bounds("minute", time.time()):
                assert (statuses.count(200), statuses.count(429)) == (10, 30)
                assert len(mock.requests) - before == 10  # (a burst that straddled a minute is not counted)
                break
        else:
            pytest.fail("three bursts in a row straddled a minute boundary")


async def test_token_budget_is_not_overspent_by_concurrent_requests(tmp_path: Path, redis_url: str) -> None:
    body = b'{"model":"m","max_tokens":20,"messages":[{"role":"user","content":"hello!"}]}'
    assert -(-len(body) // 4) + 20 == 40  # the reservation of each request
    behaviour = Behaviour(latency=1.5, prompt_tokens=10, completion_tokens=8)
    async with open_mock_upstream(behaviour) as mock, two_gateways(tmp_path, redis_url, mock) as pair:
        key = await pair.add_key(key=Limits(daily_token_limit=100))
        statuses = await pair.burst(key, 10, body)
        assert (statuses.count(200), statuses.count(429)) == (
            3,
            17,
        )  # 40 + 40 + 20 reserved, then nothing left

        behaviour.latency = 0.0
        later: list[int] = []
        async with httpx.AsyncClient(base_url=pair.a.url) as client:
            while not later or later[-1] == 200:
                r = await client.post("/v1/chat/completions", headers=key.auth, content=body)
                later.append(r.status_code)
            assert r.json()["error"]["code"] == "token_limit_exceeded"
        assert later == [200, 200, 200, 429]  # used 54 -> 72 -> 90 -> 108: admitted while below 100

        used_key = f"{pair.prefix}rl:key:{key.key_id}:token:day:{window_bounds('day', time.time())[0]}"
        assert await pair.redis.execute("GET", used_key) == b"108"
        assert (
            await pair.redis.execute("HGET", used_key + ":res", "sum") == b"0"
        )  # every reservation released
    rows = [row for row in await usage_rows("sqlite", pair.dsn) if row["key_id"] == key.key_id]
    total = sum(row["total_tokens"] for row in rows)
    assert (len(rows), total) == (6, 108)
    assert total <= 100 + 18  # over by less than one answer
