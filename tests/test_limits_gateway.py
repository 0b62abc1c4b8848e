"""Limits through a real gateway: the SDKs see 429s in their own dialect, budgets settle with real usage,
counters survive a restart, a Redis outage follows ``redis.on_error``, and change notices cross processes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import anthropic
import attrs
import openai
import pytest
import sqlalchemy as sa
import trio

from tests import process
from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway
from tests.polling import poll_until
from tests.process import delete_prefix, free_port
from voidllm.auth.cache import reload_key_cache
from voidllm.crypto import KeyKind, Keyring, generate_key, key_hint
from voidllm.identity import Limits
from voidllm.redis.client import RedisClient, open_redis
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream


@attrs.frozen
class LimitedKey:
    plaintext: str = attrs.field(repr=False)
    key_id: str
    key_hash: str
    org_id: str
    team_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.plaintext}"}


NO_LIMITS = Limits()


def insert_key(
    conn: sa.Connection,
    *,
    keyring: Keyring,
    key: Limits = NO_LIMITS,
    team: Limits = NO_LIMITS,
    org: Limits = NO_LIMITS,
    org_id: str | None = None,
) -> LimitedKey:
    """A team key in a team of its own, in a new organisation unless ``org_id`` is given; limits as given."""
    now = utcnow()
    if org_id is None:
        org_id = new_id()
        conn.execute(
            t.organizations.insert().values(
                id=org_id,
                name=f"org {org_id}",
                slug=f"org-{org_id}",
                created_at=now,
                updated_at=now,
                **attrs.asdict(org),
            )
        )
    team_id, key_id = new_id(), new_id()
    conn.execute(
        t.teams.insert().values(
            id=team_id,
            org_id=org_id,
            name=f"team {team_id}",
            slug=f"team-{team_id}",
            created_at=now,
            updated_at=now,
            **attrs.asdict(team),
        )
    )
    plaintext = generate_key(KeyKind.TEAM)
    key_hash = keyring.hash_key(plaintext)
    conn.execute(
        t.api_keys.insert().values(
            id=key_id,
            key_hash=key_hash,
            key_hint=key_hint(plaintext),
            key_type="team_key",
            name="limited",
            org_id=org_id,
            team_id=team_id,
            created_at=now,
            updated_at=now,
            **attrs.asdict(key),
        )
    )
    return LimitedKey(plaintext, key_id, key_hash, org_id, team_id)


async def add_key(gw: RunningGateway, **limits: Any) -> LimitedKey:
    """Insert a key with limits straight into the store, then reload the gateway's key cache."""
    created = await gw.state.store.run(partial(insert_key, keyring=gw.state.services.keyring, **limits))
    await reload_key_cache(gw.state.keys, gw.state.store)
    return created


def redis_yaml(url: str, prefix: str, on_error: str = "allow") -> str:
    return process.redis_yaml(url, prefix, on_error=on_error, timeout="1s")


@pytest.fixture
async def mock() -> AsyncIterator[MockUpstream]:
    async with open_mock_upstream(Behaviour(prompt_tokens=10, completion_tokens=8)) as upstream:
        yield upstream


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The ``redis:`` section of the config: none (memory limiter), or the real Redis with a fresh prefix."""
    if request.param == "memory":
        yield ""
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield redis_yaml(url, prefix)
    async with open_redis(url) as client:
        await delete_prefix(client, prefix)


def gateway_config(sqlite_dsn: str, mock: MockUpstream, extra: str = "", settings: str = "") -> Any:
    return make_config(
        sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url) + extra, settings=settings
    )


async def test_rate_limit_reaches_the_openai_sdk_as_a_rate_limit_error(
    sqlite_dsn: str, mock: MockUpstream, backend: str
) -> None:
    async with run_gateway(gateway_config(sqlite_dsn, mock, backend)) as gw:
        key = await add_key(gw, key=Limits(requests_per_minute=10), org=Limits(requests_per_minute=2))
        client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=key.plaintext, max_retries=0)
        for _ in range(2):
            await client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "hi"}]
            )
        assert (caught.value.type, caught.value.code) == ("rate_limit_error", "rate_limit_exceeded")
        response = caught.value.response
        error = response.json()["error"]
        assert (error["code"], error["message"]) == ("rate_limit_exceeded", "rate limit exceeded")
        assert error["request_id"] == response.headers["x-request-id"]
        assert response.headers["x-ratelimit-limit"] == "2"  # the org's, the most restrictive
        assert response.headers["x-ratelimit-remaining"] == "0"
        reset = int(response.headers["x-ratelimit-reset"])
        assert reset % 60 == 0
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert len(mock.requests) == 2
        other = await add_key(gw)  # another organisation: not limited, not affected
        assert (
            await gw.client.post("/v1/chat/completions", headers=other.auth, json={"model": "gpt-test"})
        ).status_code == 200
        metrics = (await gw.client.get("/metrics")).text
        assert 'voidllm_ratelimit_rejections_total{level="org",scope="request"}' in metrics


async def test_anthropic_clients_get_anthropic_shaped_429s(
    sqlite_dsn: str, mock: MockUpstream, backend: str
) -> None:
    async with run_gateway(gateway_config(sqlite_dsn, mock, backend)) as gw:
        key = await add_key(gw, team=Limits(requests_per_day=1))
        client = anthropic.AsyncAnthropic(base_url=gw.url, api_key=key.plaintext, max_retries=0)
        body = {"model": "gpt-test", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
        await client.messages.create(**body)
        with pytest.raises(anthropic.RateLimitError) as caught:
            await client.messages.create(**body)
        response = caught.value.response
        assert response.json() == {
            "type": "error",
            "error": {"type": "rate_limit_error", "message": "rate limit exceeded"},
        }
        assert response.headers["x-ratelimit-limit"] == "1"
        assert int(response.headers["x-ratelimit-reset"]) % 86400 == 0


async def test_token_budget_settles_with_real_usage(
    sqlite_dsn: str, mock: MockUpstream, backend: str
) -> None:
    async with run_gateway(gateway_config(sqlite_dsn, mock, backend)) as gw:
        key = await add_key(gw, key=Limits(daily_token_limit=40))
        statuses = []
        for _ in range(4):  # 18 tokens each: 0 -> 18 -> 36 (< 40, still admitted) -> 54, then refused
            r = await gw.client.post(
                "/v1/chat/completions", headers=key.auth, json={"model": "gpt-test", "max_tokens": 5000}
            )
            statuses.append(r.status_code)
        assert statuses == [200, 200, 200, 429]
        assert r.json()["error"]["code"] == "token_limit_exceeded"
        assert r.json()["error"]["message"] == "token budget exceeded"
        assert r.headers["x-ratelimit-limit"] == "40"


async def test_failed_requests_count_as_requests_but_not_tokens(
    sqlite_dsn: str, mock: MockUpstream, backend: str
) -> None:
    async with run_gateway(gateway_config(sqlite_dsn, mock, backend)) as gw:
        key = await add_key(gw, key=Limits(requests_per_minute=3, daily_token_limit=19))
        missing = await gw.client.post("/v1/chat/completions", headers=key.auth, json={"model": "nope"})
        assert missing.status_code == 404  # counted before the model is resolved, as in the Go original
        mock.behaviour.status = 500
        assert (
            await gw.client.post("/v1/chat/completions", headers=key.auth, json={"model": "gpt-test"})
        ).status_code == 500
        mock.behaviour.status = 200
        # neither used a token, so the whole budget is left: the 18-token answer fits
        assert (
            await gw.client.post("/v1/chat/completions", headers=key.auth, json={"model": "gpt-test"})
        ).status_code == 200
        refused = await gw.client.post("/v1/chat/completions", headers=key.auth, json={"model": "gpt-test"})
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"


async def test_token_counters_survive_a_restart(sqlite_dsn: str, mock: MockUpstream, backend: str) -> None:
    config = gateway_config(sqlite_dsn, mock, backend)
    async with run_gateway(config) as gw:
        key = await add_key(gw, org=Limits(monthly_token_limit=100))

        def spend(conn: sa.Connection) -> None:
            conn.execute(
                t.usage_events.insert().values(
                    id=new_id(),
                    key_id="some-other-key",
                    key_type="team_key",
                    org_id=key.org_id,
                    model_name="gpt-test",
                    total_tokens=95,
                    created_at=utcnow(),
                )
            )

        await gw.state.store.run(spend)
    async with run_gateway(config) as gw:  # seeded from usage_events: 95 of 100 spent this month
        assert (
            await gw.client.post("/v1/chat/completions", headers=key.auth, json={"model": "gpt-test"})
        ).status_code == 200
        refused = await gw.client.post("/v1/chat/completions", headers=key.auth, json={"model": "gpt-test"})
        assert (refused.status_code, refused.json()["error"]["code"]) == (429, "token_limit_exceeded")


@pytest.mark.parametrize("policy", ["allow", "deny"])
async def test_unreachable_redis_follows_on_error(sqlite_dsn: str, mock: MockUpstream, policy: str) -> None:
    config = gateway_config(sqlite_dsn, mock, redis_yaml(f"redis://127.0.0.1:{free_port()}/0", "x:", policy))
    async with run_gateway(config) as gw:  # starts without Redis
        key = await add_key(gw, key=Limits(requests_per_minute=1))
        unlimited = {"Authorization": f"Bearer {gw.api_key()}"}
        statuses = []
        for _ in range(3):
            r = await gw.client.post("/v1/chat/completions", headers=key.auth, json={"model": "gpt-test"})
            statuses.append(r.status_code)
        if policy == "allow":
            assert statuses == [200, 200, 200]  # uncounted while Redis is away
        else:
            assert statuses == [503, 503, 503]
            assert r.json()["error"]["code"] == "service_unavailable"
            assert r.json()["error"]["message"] == "rate limiter unavailable"
        # keys without limits never ask Redis
        assert (
            await gw.client.post("/v1/chat/completions", headers=unlimited, json={"model": "gpt-test"})
        ).status_code == 200
        metrics = (await gw.client.get("/metrics")).text
        assert "voidllm_redis_up 0.0" in metrics
        errors = [
            line
            for line in metrics.splitlines()
            if line.startswith(f'voidllm_ratelimit_backend_errors_total{{policy="{policy}"}}')
        ]
        assert errors
        assert float(errors[0].split()[-1]) >= 3


@pytest.mark.redis
async def test_change_notices_reach_the_other_process(
    sqlite_dsn: str, mock: MockUpstream, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two gateways on one store and one Redis: a revocation through one is applied by the other at once,
    catalog notices call its catalog reload, and after its subscription is killed it resubscribes and
    reloads."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    config = gateway_config(sqlite_dsn, mock, redis_yaml(redis_url, prefix), settings="")
    config = attrs.evolve(config, cache=attrs.evolve(config.cache, key_ttl=3600.0))  # no periodic help
    ours = record_redis_ports(monkeypatch)
    async with open_redis(redis_url) as redis, run_gateway(config) as a:
        before = await pubsub_clients(redis, ours)
        async with run_gateway(config) as b:
            b_subscriber = (await pubsub_clients(redis, ours)) - before
            assert len(b_subscriber) == 1
            reloads: list[str] = []

            async def recorded_reload() -> None:
                reloads.append("catalog")

            b.state.services.catalog_reload = recorded_reload
            key = await add_key(a)
            await b.state.services.bus.publish("keys", "*")  # b's own notice: b ignores it
            await a.state.services.bus.publish("keys", "*")
            with trio.fail_after(2):
                await wait_for(lambda: status_of(b, key), 200)

            def revoke(conn: sa.Connection) -> None:
                conn.execute(
                    t.api_keys.update().where(t.api_keys.c.id == key.key_id).values(deleted_at=utcnow())
                )

            await a.state.store.run(revoke)
            a.state.keys.evict(key.key_hash)
            await a.state.services.bus.publish("keys", key.key_hash)
            with trio.fail_after(2):  # only the notice can tell b: its key TTL is 1 h
                await wait_for(lambda: status_of(b, key), 401)

            await a.state.services.bus.publish("models", "")
            with trio.fail_after(2):
                await wait_for(lambda: _len(reloads), 1)

            await redis.execute("CLIENT", "KILL", "ID", next(iter(b_subscriber)))
            with trio.fail_after(5):  # resubscribed, then reloaded everything
                await wait_for(lambda: _len(reloads), 2)
            await a.state.services.bus.publish("aliases", "")
            with trio.fail_after(2):
                await wait_for(lambda: _len(reloads), 3)
        await delete_prefix(redis, prefix)


async def _len(items: list[str]) -> int:
    return len(items)


async def status_of(gw: RunningGateway, key: LimitedKey) -> int:
    return (await gw.client.get("/v1/models", headers=key.auth)).status_code


async def wait_for(probe: Any, expected: Any) -> None:
    """Poll ``probe`` until it returns ``expected``; the caller bounds the wait (``trio.fail_after``)."""

    async def answered() -> bool:
        return bool(await probe() == expected)

    await poll_until(answered, interval=0.01)


def record_redis_ports(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """The local ports of the Redis connections this process opens from now on: other test processes (pytest
    workers) may hold pub/sub connections to the same server at the same time."""
    ports: set[int] = set()
    real = RedisClient._open_stream

    async def recording(self: RedisClient) -> Any:
        stream = await real(self)
        ports.add(stream.socket.getsockname()[1])  # a plain SocketStream: the tests' Redis has no TLS
        return stream

    monkeypatch.setattr(RedisClient, "_open_stream", recording)
    return ports


async def pubsub_clients(redis: Any, ports: set[int]) -> set[str]:
    """The ids of the server's pub/sub clients connected from ``ports``."""
    listing = (await redis.execute("CLIENT", "LIST", "TYPE", "pubsub")).decode()
    clients = [dict(field.split("=", 1) for field in line.split()) for line in listing.splitlines()]
    return {c["id"] for c in clients if int(c["addr"].rsplit(":", 1)[1]) in ports}


async def test_without_redis_a_revocation_reaches_the_other_process_within_the_key_ttl(
    sqlite_dsn: str, mock: MockUpstream
) -> None:
    config = gateway_config(sqlite_dsn, mock)
    config = attrs.evolve(config, cache=attrs.evolve(config.cache, key_ttl=0.5))
    async with run_gateway(config) as a, run_gateway(config) as b:
        key = await add_key(a)
        with trio.fail_after(2):  # b's periodic reload found it
            await wait_for(lambda: status_of(b, key), 200)

        def revoke(conn: sa.Connection) -> None:
            conn.execute(t.api_keys.update().where(t.api_keys.c.id == key.key_id).values(deleted_at=utcnow()))

        await a.state.store.run(revoke)
        a.state.keys.evict(key.key_hash)
        await a.state.services.bus.publish("keys", key.key_hash)  # the LocalBus: nobody hears it
        assert await status_of(a, key) == 401
        with trio.fail_after(2):  # b's periodic reload (every 0.5 s)
            await wait_for(lambda: status_of(b, key), 401)
