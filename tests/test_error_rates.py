"""Issue 22 point 3: a deployment's error rate over the last 5, 60 and 1,440 minutes: the per-minute rings
on the autojump clock, the counts shared through Redis by two processes' worth of counters, and the models
API showing them after real failovers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from tests.admin_tenancy import API, admin
from tests.gateway import make_config, run_gateway
from tests.process import delete_prefix, redis_yaml
from voidllm.redis.client import RedisClient, open_redis
from voidllm.routing.error_rates import ErrorRates, combine, serve_error_rate_share
from voidllm.testing.mock_openai import Behaviour, open_mock_upstream

MINUTE = 60.0


async def test_each_window_counts_the_attempts_of_its_last_minutes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rates = ErrorRates()
    assert rates.rates("m/a") == {"5m": None, "60m": None, "1440m": None}
    rates.record("m/a", failed=True)  # minute 0
    await trio.sleep(30 * MINUTE)
    rates.record("m/a", failed=False)
    rates.record("m/a", failed=False)
    rates.record("m/a", failed=True)  # minute 30
    await trio.sleep(30 * MINUTE)
    rates.record("m/a", failed=False)  # minute 60
    assert trio.current_time() == 60 * MINUTE
    # the last 5 minutes hold minute 60; 60 minutes hold minutes 1..60; the day holds them all
    assert rates.rates("m/a") == {"5m": 0.0, "60m": 0.25, "1440m": 0.4}
    await trio.sleep(4 * MINUTE)
    assert rates.rates("m/a")["5m"] == 0.0  # minutes 60..64
    await trio.sleep(MINUTE)
    assert rates.rates("m/a")["5m"] is None  # minute 60 has left the window
    await trio.sleep(1440 * MINUTE - 5 * MINUTE - 30 * MINUTE)  # minute 1470: only minute 60 is older
    assert rates.rates("m/a") == {"5m": None, "60m": None, "1440m": 0.0}


async def test_a_bucket_is_reset_when_the_ring_comes_round(autojump_clock: trio.testing.MockClock) -> None:
    rates = ErrorRates()
    rates.record("m/a", failed=True)
    await trio.sleep(1440 * MINUTE)  # the same slot of the ring, one day later
    rates.record("m/a", failed=False)
    assert rates.rates("m/a") == {"5m": 0.0, "60m": 0.0, "1440m": 0.0}


async def test_several_upstreams_are_summed_and_kept_apart(autojump_clock: trio.testing.MockClock) -> None:
    rates = ErrorRates()
    rates.record("m/a", failed=True)
    rates.record("m/b", failed=False)
    rates.record("m/b", failed=False)
    rates.record("m/b", failed=False)
    assert rates.rates("m/a")["5m"] == 1.0
    assert rates.rates("m/b")["5m"] == 0.0
    assert rates.rates("m/a", "m/b")["5m"] == 0.25
    assert rates.rates("m/a", "unknown")["60m"] == 1.0


async def test_the_models_api_shows_each_deployments_error_rate(sqlite_dsn: str) -> None:
    async with open_mock_upstream(Behaviour(status=500)) as broken, open_mock_upstream() as ok:
        models = f"""models:
  - name: m
    strategy: priority
    deployments:
      - {{name: d0, provider: openai, base_url: "{broken.base_url}", priority: 0}}
      - {{name: d1, provider: openai, base_url: "{ok.base_url}", priority: 1}}
"""
        async with run_gateway(make_config(sqlite_dsn, models)) as gw:
            for _ in range(3):
                response = await gw.client.post(
                    "/v1/chat/completions", headers=admin(gw), json={"model": "m", "messages": []}
                )
                assert response.status_code == 200
            listed = (await gw.client.get(f"{API}/models", headers=admin(gw))).json()["data"]
            model = next(item for item in listed if item["name"] == "m")
            every = {"5m": 1.0, "60m": 1.0, "1440m": 1.0}
            by_name = {dep["name"]: dep["error_rate"] for dep in model["deployments"]}
            assert by_name == {"d0": every, "d1": {"5m": 0.0, "60m": 0.0, "1440m": 0.0}}
            assert model["error_rate"] == {"5m": 0.5, "60m": 0.5, "1440m": 0.5}
            one = (await gw.client.get(f"{API}/models/{model['id']}/deployments", headers=admin(gw))).json()
            assert {dep["name"]: dep["error_rate"]["5m"] for dep in one["data"]} == {"d0": 1.0, "d1": 0.0}


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[tuple[RedisClient, str]]:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    async with open_redis(redis_url) as client:
        try:
            yield client, prefix
        finally:
            await delete_prefix(client, prefix)


@pytest.mark.redis
async def test_shared_counts_add_up_every_process(redis: tuple[RedisClient, str]) -> None:
    client, prefix = redis
    one, two = ErrorRates(), ErrorRates()  # two gateway processes
    one.share(client, prefix)
    two.share(client, prefix)
    one.record("m/a", failed=True)
    one.record("m/a", failed=False)
    two.record("m/a", failed=False)
    two.record("m/b", failed=True)
    assert combine(await one.read(["m/a"]), "m/a")["5m"] == 0.5  # its own counts, not sent yet
    await one.flush()
    await two.flush()
    await two.flush()  # nothing left to send: counted once
    for rates in (one, two):
        sums = await rates.read(["m/a", "m/b"])
        assert sums["m/a"] == [(3, 1)] * 3
        assert sums["m/b"] == [(1, 1)] * 3
        assert combine(sums, "m/a", "m/b") == {"5m": 0.5, "60m": 0.5, "1440m": 0.5}
    keys = await client.execute("KEYS", prefix + "errors:*")
    assert len(keys) in (1, 2)  # one key per minute (two if the test crossed a minute)
    assert 0 < int(await client.execute("TTL", keys[0])) <= 25 * 3600


@pytest.mark.redis
async def test_the_share_service_sends_on_its_way_out(redis: tuple[RedisClient, str]) -> None:
    client, prefix = redis
    rates, reader = ErrorRates(), ErrorRates()
    rates.share(client, prefix)
    reader.share(client, prefix)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve_error_rate_share(rates=rates, task_status=task_status))
        rates.record("m/a", failed=True)
        nursery.cancel_scope.cancel()  # long before its first interval: the last send is on the way out
    assert (await reader.read(["m/a"]))["m/a"][0] == (1, 1)


async def test_without_redis_counts_are_kept_and_reads_stay_local() -> None:
    async with open_redis("redis://127.0.0.1:9/0", command_timeout=0.5) as down:
        rates = ErrorRates()
        rates.share(down, "nowhere:")
        rates.record("m/a", failed=True)
        await rates.flush()  # refused: kept for the next send
        assert (await rates.read(["m/a"]))["m/a"][0] == (1, 1)  # this process's rings
        assert rates._unsent  # still waiting to be sent


@pytest.mark.redis
async def test_two_gateways_on_one_redis_show_each_others_failures(sqlite_dsn: str, redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    async with open_mock_upstream(Behaviour(status=500)) as broken, open_mock_upstream() as ok:
        models = f"""models:
  - name: m
    strategy: priority
    deployments:
      - {{name: d0, provider: openai, base_url: "{broken.base_url}", priority: 0}}
      - {{name: d1, provider: openai, base_url: "{ok.base_url}", priority: 1}}
"""
        config = make_config(sqlite_dsn, redis_yaml(redis_url, prefix) + models)
        try:
            async with run_gateway(config) as first:
                response = await first.client.post(
                    "/v1/chat/completions", headers=admin(first), json={"model": "m", "messages": []}
                )
                assert response.status_code == 200
                headers = admin(first)
            async with run_gateway(config) as second:  # the first sent its counts when it stopped
                listed = (await second.client.get(f"{API}/models", headers=headers)).json()["data"]
                model = next(item for item in listed if item["name"] == "m")
                by_name = {dep["name"]: dep["error_rate"]["5m"] for dep in model["deployments"]}
                assert by_name == {"d0": 1.0, "d1": 0.0}
        finally:
            async with open_redis(redis_url) as client:
                await delete_prefix(client, prefix)
