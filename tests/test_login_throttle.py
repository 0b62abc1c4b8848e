"""The login throttle on trio's MockClock: per-IP window, per-email lockout, reset on success, eviction."""

from __future__ import annotations

import pytest
import trio

from voidllm.auth.throttle import LoginThrottle, ThrottleStatistics
from voidllm.errors import TooManyRequestsError


def _retry_after(exc: pytest.ExceptionInfo[TooManyRequestsError]) -> int:
    assert exc.value.status == 429 and exc.value.code == "too_many_requests"
    return int(dict(exc.value.headers)["retry-after"])


async def test_ten_attempts_per_ip_per_minute_in_a_sliding_window(autojump_clock: trio.testing.MockClock) -> None:
    throttle = LoginThrottle()
    for n in range(10):
        throttle.admit("10.0.0.1", f"user{n}@example.com")
        await trio.sleep(1)
    with pytest.raises(TooManyRequestsError) as refused:
        throttle.admit("10.0.0.1", "another@example.com")
    assert _retry_after(refused) == 50  # the first attempt (t=0) leaves the window at t=60; now t=10
    throttle.admit("10.0.0.2", "user0@example.com")  # other IPs are unaffected

    await trio.sleep(49.5)  # t=59.5: still ten attempts in the last minute
    with pytest.raises(TooManyRequestsError):
        throttle.admit("10.0.0.1", "x@example.com")
    await trio.sleep(0.5)  # t=60: the first attempt has left the window, one slot is free
    throttle.admit("10.0.0.1", "x@example.com")
    with pytest.raises(TooManyRequestsError) as again:
        throttle.admit("10.0.0.1", "x@example.com")
    assert _retry_after(again) == 1


async def test_five_failures_lock_the_email_for_fifteen_minutes_even_for_a_correct_password(
    autojump_clock: trio.testing.MockClock,
) -> None:
    throttle = LoginThrottle(max_per_ip=1000)
    for _ in range(4):
        throttle.admit("ip", "Victim@Example.com")
        throttle.record_failure("victim@example.com")
    throttle.admit("other-ip", "victim@example.com")  # four failures: not locked yet
    throttle.record_failure("VICTIM@example.com ")  # the fifth (case and spaces do not matter)
    with pytest.raises(TooManyRequestsError) as locked:
        throttle.admit("third-ip", "victim@example.com")  # every IP, whatever the password would be
    assert _retry_after(locked) == 15 * 60
    throttle.admit("ip", "bystander@example.com")

    await trio.sleep(15 * 60 - 1)
    with pytest.raises(TooManyRequestsError) as still:
        throttle.admit("ip", "victim@example.com")
    assert _retry_after(still) == 1
    await trio.sleep(1)
    throttle.admit("ip", "victim@example.com")  # the lock is over and the count starts again
    for _ in range(4):
        throttle.record_failure("victim@example.com")
    throttle.admit("ip", "victim@example.com")


async def test_success_resets_the_failure_count(autojump_clock: trio.testing.MockClock) -> None:
    throttle = LoginThrottle(max_per_ip=1000)
    for _ in range(4):
        throttle.record_failure("a@example.com")
    throttle.record_success("a@example.com")
    for _ in range(4):
        throttle.record_failure("a@example.com")
    throttle.admit("ip", "a@example.com")  # 4 + 4 failures with a success between: never five in a row
    throttle.record_failure("a@example.com")
    with pytest.raises(TooManyRequestsError):
        throttle.admit("ip", "a@example.com")


async def test_idle_entries_are_evicted_after_thirty_minutes(autojump_clock: trio.testing.MockClock) -> None:
    throttle = LoginThrottle()
    throttle.admit("1.1.1.1", "a@example.com")
    throttle.record_failure("a@example.com")
    await trio.sleep(10 * 60)
    throttle.admit("2.2.2.2", "b@example.com")
    throttle.record_failure("b@example.com")
    assert throttle.statistics() == ThrottleStatistics(ips=2, emails=2)

    await trio.sleep(20 * 60)  # t=30 min: the first pair has been idle for 30 minutes
    throttle.admit("3.3.3.3", "c@example.com")
    assert throttle.statistics() == ThrottleStatistics(ips=2, emails=1)
    await trio.sleep(30 * 60)
    throttle.admit("3.3.3.3", "c@example.com")
    assert throttle.statistics() == ThrottleStatistics(ips=1, emails=0)


async def test_a_lock_outlives_no_eviction_sweep(autojump_clock: trio.testing.MockClock) -> None:
    """A locked email is kept until its lock is over, however many sweeps run meanwhile."""
    throttle = LoginThrottle(max_per_ip=1000)
    for _ in range(5):
        throttle.record_failure("a@example.com")
    for _ in range(14):
        await trio.sleep(60)
        with pytest.raises(TooManyRequestsError):
            throttle.admit("ip", "a@example.com")
    assert throttle.statistics().emails == 1
