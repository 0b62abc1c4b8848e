"""The login throttle: in memory on trio's MockClock (per-IP window, reservations counted before the password
check, release on success, lockout expiry, eviction), and the Redis-backed one shared by two instances."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
import trio

from tests.gateway import RunningGateway, make_config, run_gateway
from tests.process import delete_prefix
from tests.test_browser_sessions import credentials
from voidllm.auth.throttle import LoginThrottle, Throttle, ThrottleStatistics
from voidllm.auth.throttle_redis import RedisLoginThrottle
from voidllm.errors import TooManyRequestsError
from voidllm.redis.client import RedisClient, open_redis
from voidllm.store.store import open_store
from voidllm.store.tables import audit_logs


def _retry_after(exc: pytest.ExceptionInfo[TooManyRequestsError]) -> int:
    assert exc.value.status == 429
    assert exc.value.code == "too_many_requests"
    assert exc.value.message == "too many login attempts, try again later"
    return int(dict(exc.value.headers)["retry-after"])


async def _refused(throttle: Throttle, ip: str, email: str) -> int:
    with pytest.raises(TooManyRequestsError) as refused:
        await throttle.admit(ip, email)
    return _retry_after(refused)


async def _burst(throttles: list[Throttle], email: str, attempts: int) -> tuple[int, int]:
    """``attempts`` concurrent attempts for ``email`` from distinct IPs, spread over ``throttles``; each
    admitted one holds its reservation (a slow password check) until all have been decided.

    Returns:
        (admitted, refused)
    """
    admitted, refused = 0, 0
    decided = trio.Event()

    async def one(n: int) -> None:
        nonlocal admitted, refused
        try:
            await throttles[n % len(throttles)].admit(f"10.1.{n // 256}.{n % 256}", email)
        except TooManyRequestsError:
            refused += 1
        else:
            admitted += 1
        if admitted + refused == attempts:
            decided.set()
        await decided.wait()

    async with trio.open_nursery() as nursery:
        for n in range(attempts):
            nursery.start_soon(one, n)
    return admitted, refused


async def test_ten_attempts_per_ip_per_minute_in_a_sliding_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    throttle = LoginThrottle()
    for n in range(10):
        await throttle.admit("10.0.0.1", f"user{n}@example.com")
        await trio.sleep(1)
    assert await _refused(throttle, "10.0.0.1", "another@example.com") == 50  # first leaves at t=60; now 10
    await throttle.admit("10.0.0.2", "user0@example.com")  # other IPs are unaffected

    await trio.sleep(49.5)  # t=59.5: still ten attempts in the last minute
    await _refused(throttle, "10.0.0.1", "x@example.com")
    await trio.sleep(0.5)  # t=60: the first attempt has left the window, one slot is free
    await throttle.admit("10.0.0.1", "x@example.com")
    assert await _refused(throttle, "10.0.0.1", "x@example.com") == 1


async def test_each_admitted_attempt_reserves_a_failure_before_the_password_is_checked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Five attempts admitted, none finished: the sixth is refused, from any IP, even before any outcome."""
    throttle = LoginThrottle()
    for n in range(5):
        await throttle.admit(f"10.0.0.{n}", "Victim@Example.com ")  # case and spaces do not matter
    assert await _refused(throttle, "10.9.9.9", "victim@example.com") == 15 * 60
    await throttle.admit("10.9.9.9", "bystander@example.com")
    assert throttle.statistics() == ThrottleStatistics(ips=6, emails=2)


async def test_a_parallel_burst_gets_five_attempts_evaluated(autojump_clock: trio.testing.MockClock) -> None:
    throttle = LoginThrottle()
    assert await _burst([throttle], "victim@example.com", 150) == (5, 145)
    assert await _refused(throttle, "10.2.0.1", "victim@example.com") == 15 * 60  # the right password too


async def test_success_releases_the_reservation_and_clears_the_count(
    autojump_clock: trio.testing.MockClock,
) -> None:
    throttle = LoginThrottle(max_per_ip=1000)
    for _ in range(4):
        await throttle.admit("ip", "a@example.com")  # four failures
    await throttle.admit("ip", "a@example.com")  # the fifth reservation locks ...
    await throttle.record_success("a@example.com")  # ... unless it proves the right password
    for _ in range(5):
        await throttle.admit("ip", "a@example.com")  # 4 + 5 with a success between: never five in a row
    await _refused(throttle, "ip", "a@example.com")
    await throttle.record_success("other@example.com")  # another email's success changes nothing
    await _refused(throttle, "ip", "a@example.com")


async def test_the_lockout_ends_after_fifteen_minutes_and_the_count_starts_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    throttle = LoginThrottle(max_per_ip=1000)
    for _ in range(5):
        await throttle.admit("ip", "victim@example.com")
    await trio.sleep(15 * 60 - 1)
    assert await _refused(throttle, "ip", "victim@example.com") == 1
    await trio.sleep(1)
    for _ in range(5):
        await throttle.admit("ip", "victim@example.com")  # the lock is over: five more are evaluated
    assert await _refused(throttle, "ip", "victim@example.com") == 15 * 60


async def test_refused_attempts_count_on_neither_limit(autojump_clock: trio.testing.MockClock) -> None:
    throttle = LoginThrottle(max_per_ip=2)
    await throttle.admit("ip", "a@example.com")
    await throttle.admit("ip", "b@example.com")
    for _ in range(10):
        await _refused(throttle, "ip", "c@example.com")  # IP-limited: c's count is not touched
    for n in range(5):
        await throttle.admit(f"other-{n}", "c@example.com")
    await _refused(throttle, "other-9", "c@example.com")


async def test_a_cancelled_attempt_reserves_nothing(autojump_clock: trio.testing.MockClock) -> None:
    throttle = LoginThrottle()
    with trio.CancelScope() as scope:
        scope.cancel()
        await throttle.admit("ip", "a@example.com")
    assert throttle.statistics() == ThrottleStatistics(ips=0, emails=0)


async def test_idle_entries_are_evicted(autojump_clock: trio.testing.MockClock) -> None:
    throttle = LoginThrottle()
    await throttle.admit("1.1.1.1", "a@example.com")
    await trio.sleep(10 * 60)
    await throttle.admit("2.2.2.2", "b@example.com")
    assert throttle.statistics() == ThrottleStatistics(ips=1, emails=2)  # 1.1.1.1's window is empty

    await trio.sleep(20 * 60)  # t=30 min: a's count has been idle for 30 minutes
    await throttle.admit("3.3.3.3", "c@example.com")
    assert throttle.statistics() == ThrottleStatistics(ips=1, emails=2)
    await trio.sleep(30 * 60)
    await throttle.admit("3.3.3.3", "c@example.com")
    assert throttle.statistics() == ThrottleStatistics(ips=1, emails=1)


async def test_a_lock_outlives_every_eviction_sweep(autojump_clock: trio.testing.MockClock) -> None:
    throttle = LoginThrottle(max_per_ip=1000)
    for _ in range(5):
        await throttle.admit("ip", "a@example.com")
    for minute in range(1, 15):
        await trio.sleep(60)
        assert await _refused(throttle, "ip", "a@example.com") == 15 * 60 - minute * 60
    assert throttle.statistics().emails == 1


# --- the Redis-backed throttle (real Redis; its keys expire on the server's clock, so no MockClock) ---


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[tuple[RedisClient, str]]:
    """The real Redis and a key prefix of this test alone, whose keys are deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    async with open_redis(redis_url) as client:
        try:
            yield client, prefix
        finally:
            await delete_prefix(client, prefix)


@pytest.mark.redis
async def test_two_instances_sharing_redis_evaluate_five_of_a_burst(
    redis: tuple[RedisClient, str], redis_url: str
) -> None:
    """Two throttles with their own connection pools, as two worker processes have."""
    client, prefix = redis
    async with open_redis(redis_url) as other:
        a, b = RedisLoginThrottle(client, prefix), RedisLoginThrottle(other, prefix)
        assert await _burst([a, b], "Victim@Example.com", 150) == (5, 145)
        for throttle in (a, b):
            assert 899 <= await _refused(throttle, "10.3.0.1", "victim@example.com") <= 900
        ttl = await client.execute("PTTL", a.email_key("victim@example.com"))
        assert 899_000 < ttl <= 900_000  # the lock is the key's life: it ends by itself
        assert "victim" not in str(await client.execute("KEYS", prefix + "*"))  # emails are hashed

        await b.admit("10.3.0.1", "bystander@example.com")


@pytest.mark.redis
async def test_redis_success_clears_the_count_for_every_instance(redis: tuple[RedisClient, str]) -> None:
    client, prefix = redis
    a, b = (RedisLoginThrottle(client, prefix, max_per_ip=1000) for _ in range(2))
    for _ in range(4):
        await a.admit("ip", "a@example.com")
    await b.admit("ip", "a@example.com")
    await b.record_success("a@example.com")
    for _ in range(5):
        await a.admit("ip", "a@example.com")
    await _refused(b, "ip", "a@example.com")
    assert await client.execute("PTTL", a.email_key("a@example.com")) > 899_000


@pytest.mark.redis
async def test_redis_per_ip_window_is_shared(redis: tuple[RedisClient, str]) -> None:
    client, prefix = redis
    a, b = RedisLoginThrottle(client, prefix), RedisLoginThrottle(client, prefix)
    for n in range(10):
        await (a, b)[n % 2].admit("10.4.0.1", f"user{n}@example.com")
    assert 59 <= await _refused(a, "10.4.0.1", "x@example.com") <= 60
    assert 59 <= await _refused(b, "10.4.0.1", "x@example.com") <= 60
    for n in range(5):  # the IP-refused attempts reserved nothing on x
        await a.admit(f"10.4.1.{n}", "x@example.com")
    await _refused(a, "10.4.2.1", "x@example.com")


async def test_without_redis_the_attempts_are_counted_in_this_process() -> None:
    """Redis unreachable (nothing listens on port 9): the throttle falls back to its in-memory counts."""
    async with open_redis("redis://127.0.0.1:9/0", command_timeout=0.5) as dead:
        throttle = RedisLoginThrottle(dead, "test:")
        for _ in range(5):
            await throttle.admit("ip", "a@example.com")
        await _refused(throttle, "ip", "a@example.com")
        await throttle.record_success("a@example.com")
        await throttle.admit("ip", "a@example.com")


# -- The client's address behind proxies (the gateway in process) -------------------------------------------


async def _attempt(gw: RunningGateway, forwarded_for: str, n: int = 0) -> int:
    """One wrong-password sign-in (a new email each time, so only the per-IP limit can refuse it)."""
    body = {"email": f"nobody{n}@example.com", "password": "wrong"}
    response = await gw.client.post(
        "/api/v1/auth/login", json=body, headers={"X-Forwarded-For": forwarded_for}
    )
    return response.status_code


async def test_behind_a_trusted_proxy_each_forwarded_client_is_throttled_on_its_own(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn, settings="trusted_proxies: [127.0.0.1]")) as gw:
        assert [await _attempt(gw, "203.0.113.1", n) for n in range(10)] == [401] * 10
        assert await _attempt(gw, "203.0.113.1", 10) == 429
        assert await _attempt(gw, "203.0.113.2", 11) == 401, "another client behind the same proxy"
        # several proxies: the right-most address that is not a trusted proxy is the client's
        assert await _attempt(gw, "203.0.113.1, 127.0.0.1", 12) == 429
        assert await _attempt(gw, "203.0.113.99, 203.0.113.1", 13) == 429, (
            "a spoofed left entry changes nothing"
        )
        assert await _attempt(gw, "203.0.113.1, 203.0.113.3, 127.0.0.1", 14) == 401


async def test_from_an_untrusted_peer_x_forwarded_for_is_ignored(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn, settings="trusted_proxies: [10.0.0.0/8]")) as gw:
        assert [await _attempt(gw, f"203.0.113.{n}", n) for n in range(10)] == [401] * 10
        assert await _attempt(gw, "198.51.100.1", 10) == 429, "a spoofed header does not escape the limit"


async def test_the_audit_log_records_the_forwarded_client_address(sqlite_dsn: str) -> None:
    async with run_gateway(
        make_config(sqlite_dsn, settings="trusted_proxies: [127.0.0.1, 10.0.0.0/8]")
    ) as gw:
        headers = {"X-Forwarded-For": "203.0.113.99, 198.51.100.7, 10.0.0.5"}
        signed_in = await gw.client.post("/api/v1/auth/login", json=credentials(gw), headers=headers)
        assert signed_in.status_code == 200, signed_in.text
    async with open_store("sqlite", sqlite_dsn) as store:
        addresses = await store.run(
            lambda conn: list(conn.execute(sa.select(audit_logs.c.ip_address)).scalars())
        )
    assert addresses == ["198.51.100.7"]
