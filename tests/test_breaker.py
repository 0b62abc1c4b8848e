"""Circuit breakers (docs/reference/behaviour.md 6.3): exact threshold, exact open window, half-open probe
slots, outcomes.

Timed tests run on the autojump clock (the breakers read ``trio.current_time``) and assert exact times.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from voidllm.config.settings import CircuitBreakerConfig
from voidllm.metrics import REGISTRY
from voidllm.routing.breaker import BreakerRegistry, BreakerSettings, BreakerState, CircuitBreaker, Permit


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        permit = breaker.try_acquire()
        assert permit is not None
        permit.failure()


def acquired(breaker: CircuitBreaker) -> Permit:
    permit = breaker.try_acquire()
    assert permit is not None
    return permit


async def opened_at_10(name: str = "", **kw: object) -> CircuitBreaker:
    """A breaker (threshold 5, timeout 30 s) that opened at t=10."""
    breaker = CircuitBreaker(name, **kw)  # type: ignore[arg-type]
    await trio.sleep_until(10)
    fail(breaker, 5)
    assert breaker.state is BreakerState.OPEN
    return breaker


def sample(metric: str, upstream: str) -> float | None:
    return REGISTRY.get_sample_value(metric, {"upstream": upstream})


async def test_trips_at_exactly_the_threshold() -> None:
    breaker = CircuitBreaker(threshold=5)
    fail(breaker, 4)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 4
    assert breaker.peek()
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.peek()
    assert breaker.try_acquire() is None


async def test_threshold_of_one_opens_on_the_first_failure() -> None:
    breaker = CircuitBreaker(threshold=1)
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN


async def test_success_in_closed_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker(threshold=5)
    fail(breaker, 4)
    acquired(breaker).success()
    assert breaker.consecutive_failures == 0
    fail(breaker, 4)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN


async def test_neutral_in_closed_neither_counts_nor_resets() -> None:
    breaker = CircuitBreaker(threshold=5)
    fail(breaker, 4)
    acquired(breaker).neutral()
    assert breaker.consecutive_failures == 4
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN


async def test_stays_open_for_exactly_the_timeout(autojump_clock: trio.testing.MockClock) -> None:
    breaker = await opened_at_10(timeout=30.0)
    assert breaker.retry_at == 40.0
    await trio.sleep_until(39.999)
    assert not breaker.peek()
    assert breaker.try_acquire() is None
    assert breaker.state is BreakerState.OPEN
    await trio.sleep_until(40)
    assert trio.current_time() == 40
    assert breaker.peek()
    assert breaker.state is BreakerState.OPEN  # peek moves nothing; the acquire does
    probe = acquired(breaker)
    assert probe.probe
    assert breaker.state is BreakerState.HALF_OPEN


async def test_half_open_allows_at_most_half_open_max_probes(autojump_clock: trio.testing.MockClock) -> None:
    breaker = await opened_at_10(half_open_max=2)
    await trio.sleep(30)
    first, second = acquired(breaker), acquired(breaker)
    assert first.probe
    assert second.probe
    assert not breaker.peek()
    assert breaker.try_acquire() is None
    assert breaker.state is BreakerState.HALF_OPEN


async def test_neutral_releases_the_probe_slot_only(autojump_clock: trio.testing.MockClock) -> None:
    breaker = await opened_at_10()
    await trio.sleep(30)
    acquired(breaker).neutral()
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.peek()
    assert acquired(breaker).probe


async def test_probe_success_closes_and_resets(autojump_clock: trio.testing.MockClock) -> None:
    breaker = await opened_at_10()
    await trio.sleep(30)
    acquired(breaker).success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0
    assert breaker.retry_at is None
    permit = acquired(breaker)
    assert not permit.probe
    permit.failure()
    fail(breaker, 3)
    assert breaker.state is BreakerState.CLOSED  # a full threshold is needed again


async def test_probe_failure_reopens_at_once_with_a_new_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    breaker = await opened_at_10()
    await trio.sleep_until(45)
    acquired(breaker).failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_at == 75.0
    await trio.sleep_until(74.999)
    assert breaker.try_acquire() is None
    await trio.sleep_until(75)
    assert acquired(breaker).probe


async def test_peek_never_reserves(autojump_clock: trio.testing.MockClock) -> None:
    breaker = await opened_at_10()
    await trio.sleep(30)
    assert all(breaker.peek() for _ in range(100))  # open, timeout passed
    first = acquired(breaker)
    first.neutral()
    assert all(breaker.peek() for _ in range(100))  # half-open, slot free
    assert acquired(breaker).probe


async def test_late_outcomes_from_before_a_state_change_are_ignored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    breaker = CircuitBreaker(threshold=2, timeout=30.0)
    stragglers = [acquired(breaker) for _ in range(3)]
    fail(breaker, 2)
    assert breaker.retry_at == 0 + 30.0
    await trio.sleep(5)
    stragglers[0].failure()  # does not push the open window out
    stragglers[1].success()  # does not close an open breaker
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_at == 30.0
    await trio.sleep_until(30)
    probe = acquired(breaker)
    stragglers[2].neutral()  # does not free the new probe slot
    assert breaker.try_acquire() is None
    probe.success()
    assert breaker.state is BreakerState.CLOSED


async def test_failures_in_flight_still_count_after_a_success() -> None:
    breaker = CircuitBreaker(threshold=3)
    in_flight = [acquired(breaker) for _ in range(4)]
    in_flight[0].success()
    for permit in in_flight[1:]:
        permit.failure()
    assert breaker.state is BreakerState.OPEN


async def test_a_permit_takes_exactly_one_outcome() -> None:
    breaker = CircuitBreaker()
    permit = acquired(breaker)
    assert permit.outcome is None
    permit.success()
    assert permit.outcome == "success"
    for settle in (permit.success, permit.failure, permit.neutral):
        with pytest.raises(RuntimeError, match="already settled as success"):
            settle()


async def test_leaving_a_permit_block_without_an_outcome_is_neutral(
    autojump_clock: trio.testing.MockClock,
) -> None:
    breaker = await opened_at_10()
    await trio.sleep(30)
    with trio.move_on_after(1):
        with acquired(breaker) as probe:
            await trio.sleep_forever()  # the client went away mid-attempt
    assert probe.outcome == "neutral"
    assert breaker.state is BreakerState.HALF_OPEN
    with acquired(breaker) as probe:
        probe.success()  # an outcome given inside the block is kept
    assert probe.outcome == "success"
    assert breaker.state is BreakerState.CLOSED


async def test_disabled_breaker_allows_everything_and_ignores_outcomes() -> None:
    breaker = CircuitBreaker(threshold=1, enabled=False)
    for _ in range(100):
        assert breaker.peek()
        permit = acquired(breaker)
        assert not permit.probe
        permit.failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.retry_at is None
    with pytest.raises(RuntimeError):
        permit.neutral()


@pytest.mark.parametrize("field", ["threshold", "half_open_max"])
def test_limits_below_one_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        CircuitBreaker(**{field: 0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=field):
        BreakerSettings(**{field: 0})  # type: ignore[arg-type]


async def test_state_gauge_and_rejection_counter(autojump_clock: trio.testing.MockClock) -> None:
    name = "test-breaker-metrics/a"
    breaker = CircuitBreaker(name)
    assert sample("voidllm_circuit_breaker_state", name) == 0
    fail(breaker, 5)
    assert sample("voidllm_circuit_breaker_state", name) == 2
    assert not breaker.peek()
    assert sample("voidllm_circuitbreaker_rejections_total", name) is None  # peeking is not a rejection
    assert breaker.try_acquire() is None
    assert breaker.try_acquire() is None
    assert sample("voidllm_circuitbreaker_rejections_total", name) == 2
    await trio.sleep(30)
    probe = acquired(breaker)
    assert sample("voidllm_circuit_breaker_state", name) == 1
    assert breaker.try_acquire() is None  # half-open, slot taken
    assert sample("voidllm_circuitbreaker_rejections_total", name) == 3
    probe.success()
    assert sample("voidllm_circuit_breaker_state", name) == 0


async def test_registry_creates_one_breaker_per_upstream_from_the_settings(
    autojump_clock: trio.testing.MockClock,
) -> None:
    breakers = BreakerRegistry(BreakerSettings(threshold=2, timeout=10.0, half_open_max=1))
    assert breakers.state("m/never-used") is BreakerState.CLOSED
    assert breakers.states() == {}
    for _ in range(2):
        permit = breakers.try_acquire("m/a")
        assert permit is not None
        permit.failure()
    assert breakers.state("m/a") is BreakerState.OPEN
    assert not breakers.peek("m/a")
    assert breakers.peek("m/b")
    assert breakers.get("m/a") is breakers.get("m/a")
    assert breakers.states() == {"m/a": BreakerState.OPEN, "m/b": BreakerState.CLOSED}
    await trio.sleep(10)
    assert trio.current_time() == 10
    assert breakers.try_acquire("m/a") is not None
    assert breakers.state("m/a") is BreakerState.HALF_OPEN


async def test_registry_with_breakers_disabled() -> None:
    breakers = BreakerRegistry(BreakerSettings(enabled=False, threshold=1))
    for _ in range(10):
        permit = breakers.try_acquire("m")
        assert permit is not None
        permit.failure()
    assert breakers.peek("m")
    assert breakers.state("m") is BreakerState.CLOSED


def test_settings_from_config_defaults_match_the_issue() -> None:
    settings = BreakerSettings.from_config(CircuitBreakerConfig())
    assert settings == BreakerSettings(enabled=True, threshold=5, timeout=30.0, half_open_max=1)
    custom = CircuitBreakerConfig(enabled=False, threshold=3, timeout=12.5, half_open_max=2)
    assert BreakerSettings.from_config(custom) == BreakerSettings(False, 3, 12.5, 2)
