"""Both limiter backends against one table of cases: the in-process one and the real Redis one."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
import trio

from tests.process import delete_prefix, free_port
from voidllm.errors import ServiceUnavailableError, TooManyRequestsError
from voidllm.identity import KeyIdentity, Limits, Role
from voidllm.limits.base import Admission, limited, window_bounds
from voidllm.limits.estimate import estimate_tokens
from voidllm.limits.memory import MemoryLimiter
from voidllm.limits.metrics import BACKEND_ERRORS, REJECTIONS
from voidllm.limits.redis import RedisLimiter
from voidllm.redis.client import open_redis

# A Wednesday, 10:20:30 UTC, in a month of 31 days; near enough to now that Redis expiries lie ahead.
START = datetime(2031, 1, 15, 10, 20, 30, tzinfo=UTC).timestamp()


@attrs.define
class Clock:
    now: float = START

    def __call__(self) -> float:
        return self.now


NO_LIMITS = Limits()


def ident(
    key: str = "k1",
    *,
    org: str = "o1",
    team: str | None = None,
    key_limits: Limits = NO_LIMITS,
    team_limits: Limits = NO_LIMITS,
    org_limits: Limits = NO_LIMITS,
) -> KeyIdentity:
    return KeyIdentity(
        key_id=key,
        key_type="user_key",
        name=key,
        role=Role.MEMBER,
        org_id=org,
        team_id=team,
        key_limits=key_limits,
        team_limits=team_limits,
        org_limits=org_limits,
    )


@attrs.define
class Harness:
    limiter: Any
    clock: Clock
    read: Any  # async (slot) -> int

    async def admit(self, identity: KeyIdentity, reserve: int = 0) -> Admission | None:
        return await self.limiter.admit(identity, reserve_tokens=reserve)

    async def admitted(self, identity: KeyIdentity, tries: int) -> int:
        passed = 0
        for _ in range(tries):
            try:
                await self.admit(identity)
                passed += 1
            except TooManyRequestsError:
                pass
        return passed

    async def used(self, level: str, scope_id: str, window: str = "day") -> int:
        return int(
            await self.read(("token", level, scope_id, window, window_bounds(window, self.clock.now)[0]))
        )


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    clock = Clock()
    if request.param == "memory":
        limiter = MemoryLimiter(clock=clock)

        async def read(slot: Any) -> int:
            return limiter.used(slot)

        yield Harness(limiter, clock, read)
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    async with open_redis(url) as client:
        redis_limiter = RedisLimiter(client, prefix, clock=clock, reservation_ttl=600)

        async def read_redis(slot: Any) -> int:
            return int(await client.execute("GET", redis_limiter.key(slot)) or 0)

        try:
            yield Harness(redis_limiter, clock, read_redis)
        finally:
            await delete_prefix(client, prefix)


def headers_of(exc: TooManyRequestsError) -> dict[str, str]:
    return dict(exc.headers)


async def test_requests_per_minute_within_and_over(harness: Harness) -> None:
    key = ident(key_limits=Limits(requests_per_minute=3))
    for _ in range(3):
        assert isinstance(await harness.admit(key), Admission)
    before = REJECTIONS.labels(scope="request", level="key")._value.get()
    with pytest.raises(TooManyRequestsError) as caught:
        await harness.admit(key)
    exc = caught.value
    assert (exc.status, exc.code, exc.message) == (429, "rate_limit_exceeded", "rate limit exceeded")
    minute_end = int(START // 60 * 60 + 60)
    assert headers_of(exc) == {
        "retry-after": "30",
        "x-ratelimit-limit": "3",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(minute_end),
    }
    assert REJECTIONS.labels(scope="request", level="key")._value.get() == before + 1


async def test_requests_per_day_and_window_reset(harness: Harness) -> None:
    key = ident(key_limits=Limits(requests_per_minute=2, requests_per_day=3))
    assert await harness.admitted(key, 5) == 2
    harness.clock.now += 60  # the next minute: one more before the day is full
    assert await harness.admitted(key, 5) == 1
    harness.clock.now += 60
    with pytest.raises(TooManyRequestsError) as caught:
        await harness.admit(key)
    day_end = int(START // 86400 * 86400 + 86400)
    assert headers_of(caught.value)["x-ratelimit-reset"] == str(day_end)
    assert headers_of(caught.value)["retry-after"] == str(int(day_end - harness.clock.now))
    harness.clock.now = day_end  # midnight UTC: a new day
    assert await harness.admitted(key, 5) == 2


async def test_org_limit_is_shared_by_its_keys_and_most_restrictive_wins(harness: Harness) -> None:
    org = Limits(requests_per_minute=3)
    k1 = ident("k1", key_limits=Limits(requests_per_minute=10), org_limits=org)
    k2 = ident("k2", org_limits=org)
    other_org = ident("k3", org="o2", org_limits=org)
    assert await harness.admitted(k1, 2) == 2
    assert await harness.admitted(k2, 5) == 1
    assert await harness.admitted(k1, 5) == 0
    assert await harness.admitted(other_org, 5) == 3
    with pytest.raises(TooManyRequestsError) as caught:
        await harness.admit(k1)
    assert headers_of(caught.value)["x-ratelimit-limit"] == "3"


async def test_team_is_checked_alongside_key_and_org(harness: Harness) -> None:
    team = Limits(requests_per_minute=2)
    a = ident("a", team="t1", key_limits=Limits(requests_per_minute=5), team_limits=team)
    b = ident("b", team="t1", team_limits=team)
    no_team = ident("c", team_limits=team)  # the team scope is skipped without a team
    before = REJECTIONS.labels(scope="request", level="team")._value.get()
    assert await harness.admitted(a, 1) + await harness.admitted(b, 3) == 2
    assert REJECTIONS.labels(scope="request", level="team")._value.get() == before + 2
    assert await harness.admitted(no_team, 5) == 5


async def test_zero_means_unlimited_and_takes_the_fast_path(harness: Harness) -> None:
    key = ident()
    assert not limited(key)
    assert limited(ident(team="t", team_limits=Limits(monthly_token_limit=1)))
    for _ in range(100):
        assert await harness.admit(key, reserve=10**6) is None


async def test_a_rejected_request_consumes_no_other_scope(harness: Harness) -> None:
    key = ident(key_limits=Limits(requests_per_day=3), org_limits=Limits(requests_per_minute=2))
    assert await harness.admitted(key, 5) == 2  # three refused by the org: the key's day count stays 2
    harness.clock.now += 60
    assert await harness.admitted(key, 5) == 1
    harness.clock.now += 60
    with pytest.raises(TooManyRequestsError) as caught:
        await harness.admit(key)
    assert headers_of(caught.value)["x-ratelimit-limit"] == "3"


async def test_token_reservation_and_settle(harness: Harness) -> None:
    key = ident(key_limits=Limits(daily_token_limit=100))
    holds = [await harness.admit(key, reserve=30) for _ in range(4)]
    assert [h.holds[0].reserved for h in holds if h] == [30, 30, 30, 10]  # the last one gets what is left
    with pytest.raises(TooManyRequestsError) as caught:
        await harness.admit(key, reserve=30)
    exc = caught.value
    assert (exc.code, exc.message) == ("token_limit_exceeded", "token budget exceeded")
    assert headers_of(exc)["x-ratelimit-limit"] == "100"
    assert holds[0] is not None
    assert holds[1] is not None
    await harness.limiter.settle(holds[0], used_tokens=12)
    await harness.limiter.settle(holds[1], used_tokens=0)  # a failed request
    assert await harness.used("key", "k1") == 12
    again = await harness.admit(key, reserve=80)  # 100 - 12 used - 40 still reserved
    assert again is not None
    assert again.holds[0].reserved == 48


async def test_daily_and_monthly_budgets_at_every_level(harness: Harness) -> None:
    key = ident(
        team="t1",
        key_limits=Limits(daily_token_limit=1000),
        team_limits=Limits(monthly_token_limit=50),
        org_limits=Limits(daily_token_limit=500),
    )
    admission = await harness.admit(key, reserve=20)
    assert admission is not None
    assert [(h.check.level, h.check.window, h.reserved) for h in admission.holds] == [
        ("key", "day", 20),
        ("team", "month", 20),
        ("org", "day", 20),
    ]
    await harness.limiter.settle(admission, used_tokens=60)  # more than the team's whole month
    assert (await harness.used("key", "k1"), await harness.used("team", "t1", "month")) == (60, 60)
    with pytest.raises(TooManyRequestsError) as caught:
        await harness.admit(key, reserve=1)
    headers = headers_of(caught.value)
    next_month = int(datetime(2031, 2, 1, tzinfo=UTC).timestamp())
    assert headers["x-ratelimit-reset"] == str(next_month)
    assert headers["retry-after"] == str(int(next_month - START))
    harness.clock.now = next_month
    assert await harness.admit(key, reserve=1) is not None


async def test_concurrent_first_requests_cannot_overspend(harness: Harness) -> None:
    key = ident(key_limits=Limits(daily_token_limit=100), org_limits=Limits(requests_per_minute=1000))
    admissions: list[Admission] = []
    refused = 0

    async def one() -> None:
        nonlocal refused
        try:
            admission = await harness.admit(key, reserve=40)
        except TooManyRequestsError:
            refused += 1
            return
        assert admission is not None
        admissions.append(admission)

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(one)
    assert (len(admissions), refused) == (3, 17)
    assert sorted(a.holds[0].reserved for a in admissions) == [20, 40, 40]
    for admission in admissions:
        await harness.limiter.settle(admission, used_tokens=40)
    overshoot = sum(40 - a.holds[0].reserved for a in admissions)  # what the estimate missed
    assert await harness.used("key", "k1") == 120 <= 100 + overshoot


async def test_reserving_nothing_still_needs_budget_left(harness: Harness) -> None:
    key = ident(key_limits=Limits(daily_token_limit=10))
    first = await harness.admit(key, reserve=0)
    assert first is not None
    assert first.holds[0].reserved == 0
    await harness.limiter.settle(first, used_tokens=10)
    with pytest.raises(TooManyRequestsError):
        await harness.admit(key, reserve=0)


def test_window_bounds_are_utc_calendar_windows() -> None:
    assert window_bounds("minute", START) == (int(START) - 30, int(START) + 30)
    assert window_bounds("day", START)[0] == int(datetime(2031, 1, 15, tzinfo=UTC).timestamp())
    december = datetime(2031, 12, 31, 23, 59, tzinfo=UTC).timestamp()
    assert window_bounds("month", december) == (
        int(datetime(2031, 12, 1, tzinfo=UTC).timestamp()),
        int(datetime(2032, 1, 1, tzinfo=UTC).timestamp()),
    )


def test_the_estimate() -> None:
    assert estimate_tokens(401, {"max_tokens": 50}, 1024) == 101 + 50
    assert estimate_tokens(8, {"max_completion_tokens": 7}, 1024) == 2 + 7
    assert estimate_tokens(8, {"max_output_tokens": 0}, 1024) == 2
    assert estimate_tokens(8, {"max_tokens": True}, 1024) == 2 + 1024  # not a count
    assert estimate_tokens(8, {}, 512) == 2 + 512
    assert estimate_tokens(10_000, None, 256) == 256  # multipart: the default only


async def test_memory_seed_and_sweep() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock)
    day = window_bounds("day", START)[0]
    limiter.seed({("token", "key", "k1", "day", day): 95})
    key = ident(key_limits=Limits(daily_token_limit=100, requests_per_minute=5))
    admission = await limiter.admit(key, reserve_tokens=50)
    assert admission is not None
    assert admission.holds[0].reserved == 5
    await limiter.settle(admission, used_tokens=5)
    clock.now += 86400
    assert limiter.sweep() == 2  # yesterday's tokens and last minute's requests
    assert limiter.used(("token", "key", "k1", "day", day)) == 0


@pytest.mark.redis
async def test_redis_reservations_of_a_dead_process_expire(redis_url: str) -> None:
    clock = Clock()
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    async with open_redis(redis_url) as client:
        limiter = RedisLimiter(client, prefix, clock=clock, reservation_ttl=300)
        key = ident(key_limits=Limits(daily_token_limit=100))
        try:
            assert (
                await limiter.admit(key, reserve_tokens=500)
            ) is not None  # never settled: the process died
            with pytest.raises(TooManyRequestsError):
                await limiter.admit(key, reserve_tokens=1)
            clock.now += 301
            revived = await limiter.admit(key, reserve_tokens=1)
            assert revived is not None
            assert revived.holds[0].reserved == 1
            slot = revived.holds[0].check.slot
            assert await client.execute("HGET", limiter.key(slot) + ":res", "sum") == b"1"
            assert await client.execute("ZCARD", limiter.key(slot) + ":resx") == 1
            ttl = await client.execute("TTL", limiter.key(slot) + ":res")
            assert ttl > 0  # every key expires
        finally:
            await delete_prefix(client, prefix)


@pytest.mark.redis
async def test_redis_seed_sets_only_missing_counters(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    now = time.time()
    day = window_bounds("day", now)[0]
    async with open_redis(redis_url) as client:
        limiter = RedisLimiter(client, prefix)
        a, b = ("token", "key", "a", "day", day), ("token", "org", "o", "day", day)
        try:
            await client.execute("SET", limiter.key(a), 7)
            await limiter.seed({a: 100, b: 40})
            assert await client.execute("MGET", limiter.key(a), limiter.key(b)) == [b"7", b"40"]
            assert 0 < await client.execute("TTL", limiter.key(b)) <= 86400 + 3600
        finally:
            await client.execute("DEL", limiter.key(a), limiter.key(b))


@pytest.mark.parametrize("policy", ["allow", "deny"])
async def test_unreachable_redis_applies_the_policy(policy: str) -> None:
    async with open_redis(f"redis://127.0.0.1:{free_port()}", command_timeout=1) as client:
        limiter = RedisLimiter(client, "x:", on_error=policy)
        key = ident(key_limits=Limits(requests_per_minute=1))
        before = BACKEND_ERRORS.labels(policy=policy)._value.get()
        if policy == "allow":
            assert await limiter.admit(key, reserve_tokens=1) is None
            assert await limiter.admit(key, reserve_tokens=1) is None  # uncounted: the limit is not applied
        else:
            with pytest.raises(ServiceUnavailableError) as caught:
                await limiter.admit(key, reserve_tokens=1)
            assert (caught.value.status, caught.value.message) == (503, "rate limiter unavailable")
            assert caught.value.code == "service_unavailable"
        assert BACKEND_ERRORS.labels(policy=policy)._value.get() > before
