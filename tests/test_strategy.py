"""Candidate order (docs/reference/behaviour.md 6.1): filtering, each strategy, cooldowns last, truncation;
routing metrics.

The weighted strategy is checked statistically: 10,000 draws with ``random.Random(1234)``, each share within
2 percentage points of its weight's share. The standard deviation of a share p over n draws is
sqrt(p(1-p)/n), at most 0.5 pp here, so 2 pp is four standard deviations: the test does not depend on the
seed being lucky, yet still catches a wrong weighting (uniform draws, or zero weights left at zero, are off
by 20 pp or more).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

from voidllm.config import parse_config
from voidllm.metrics import REGISTRY
from voidllm.routing.breaker import BreakerRegistry, BreakerSettings, BreakerState
from voidllm.routing.cooldown import CooldownRegistry
from voidllm.routing.latency import ALPHA, LatencyTracker
from voidllm.routing.metrics import deployment_label, record_attempt, record_failover, record_hedge
from voidllm.routing.registry import Registry, Upstream
from voidllm.routing.strategy import RoundRobin, Router, order

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

MODEL = "m"


def ups(*names: str, **per_name: dict[str, int]) -> list[Upstream]:
    """Upstreams ``m/<name>``; ``per_name={"a": {"weight": 3}}``-style overrides."""
    return [Upstream(f"{MODEL}/{n}", "openai", f"http://{n}/v1", **per_name.get(n, {})) for n in names]


def names(upstreams: Sequence[Upstream]) -> list[str]:
    return [u.name.removeprefix(f"{MODEL}/") for u in upstreams]


def router(**kw: object) -> Router:
    kw.setdefault("breakers", BreakerRegistry(BreakerSettings(threshold=1, timeout=30.0)))
    kw.setdefault("cooldowns", CooldownRegistry())
    kw.setdefault("latency", LatencyTracker())
    kw.setdefault("rng", random.Random(1234))
    return Router(**kw)  # type: ignore[arg-type]


def pick(r: Router, upstreams: Sequence[Upstream], strategy: str, max_retries: int = 0) -> list[str]:
    return names(r.order(upstreams, strategy=strategy, model=MODEL, max_retries=max_retries))


def trip(r: Router, name: str) -> None:
    permit = r.breakers.try_acquire(f"{MODEL}/{name}")
    assert permit is not None
    permit.failure()


def health_of(statuses: dict[str, str]) -> Callable[[str], str]:
    return lambda upstream: statuses.get(upstream.removeprefix(f"{MODEL}/"), "unknown")


# --- the edges


async def test_single_upstream_is_returned_even_when_its_breaker_is_open() -> None:
    r = router()
    (only,) = ups("a")
    trip(r, "a")
    r.cooldowns.park(only.name, 10)
    assert r.order([only], strategy="weighted", model=MODEL, max_retries=0) == [only]
    assert r.breakers.try_acquire(only.name) is None  # the attempt chain still sees the breaker


async def test_no_upstreams_no_candidates() -> None:
    assert router().order([], strategy="round-robin", model=MODEL, max_retries=0) == []


# --- round-robin


async def test_round_robin_rotates_the_start_on_every_call() -> None:
    r, upstreams = router(), ups("a", "b", "c")
    assert [pick(r, upstreams, "round-robin") for _ in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]


@pytest.mark.parametrize("strategy", ["", "fastest", "ROUND-ROBIN"])
async def test_unknown_or_empty_strategy_is_round_robin(strategy: str) -> None:
    r, upstreams = router(), ups("a", "b")
    assert [pick(r, upstreams, strategy) for _ in range(3)] == [["a", "b"], ["b", "a"], ["a", "b"]]


async def test_round_robin_counters_are_per_model() -> None:
    rotation = RoundRobin()
    assert [rotation.take("x"), rotation.take("x"), rotation.take("y"), rotation.take("x")] == [0, 1, 0, 2]
    r, upstreams = router(), ups("a", "b")
    pick(r, upstreams, "round-robin")
    other = r.order(upstreams, strategy="round-robin", model="other", max_retries=0)
    assert names(other) == ["a", "b"]
    assert pick(r, upstreams, "round-robin") == ["b", "a"]


async def test_round_robin_rotates_over_the_usable_upstreams() -> None:
    r, upstreams = router(), ups("a", "b", "c")
    trip(r, "b")
    assert [pick(r, upstreams, "round-robin") for _ in range(3)] == [["a", "c"], ["c", "a"], ["a", "c"]]


# --- priority


async def test_priority_is_ascending_with_ties_in_listed_order() -> None:
    upstreams = ups(
        "a", "b", "c", "d", "e", a={"priority": 2}, b={"priority": 1}, c={"priority": 2}, d={"priority": 0}
    )
    r = router()
    assert pick(r, upstreams, "priority") == ["d", "e", "b", "a", "c"]
    assert pick(r, upstreams, "priority") == ["d", "e", "b", "a", "c"]  # no rotation between calls


# --- weighted


def first_shares(upstreams: Sequence[Upstream], draws: int = 10_000) -> dict[str, float]:
    r = router(rng=random.Random(1234))
    counts = Counter(pick(r, upstreams, "weighted")[0] for _ in range(draws))
    return {name: counts[name] / draws for name in names(upstreams)}


async def test_weighted_first_pick_is_proportional_to_weight() -> None:
    shares = first_shares(ups("a", "b", a={"weight": 1}, b={"weight": 3}))
    assert shares["a"] == pytest.approx(0.25, abs=0.02)
    assert shares["b"] == pytest.approx(0.75, abs=0.02)
    shares = first_shares(ups("a", "b", "c", a={"weight": 1}, b={"weight": 2}, c={"weight": 7}))
    assert shares == pytest.approx({"a": 0.1, "b": 0.2, "c": 0.7}, abs=0.02)


async def test_weighted_zero_or_negative_weight_counts_as_one() -> None:
    shares = first_shares(ups("a", "b", "c", a={"weight": 0}, b={"weight": -4}, c={"weight": 2}))
    assert shares == pytest.approx({"a": 0.25, "b": 0.25, "c": 0.5}, abs=0.02)


async def test_weighted_rest_is_shuffled_and_complete() -> None:
    upstreams = ups("a", "b", "c", a={"weight": 1_000_000})
    r = router(rng=random.Random(1234))
    orders = Counter(tuple(pick(r, upstreams, "weighted")) for _ in range(10_000))
    assert all(sorted(o) == ["a", "b", "c"] for o in orders)
    led_by_a = orders[("a", "b", "c")] + orders[("a", "c", "b")]
    assert orders[("a", "b", "c")] / led_by_a == pytest.approx(0.5, abs=0.02)


async def test_weighted_is_reproducible_with_a_seed() -> None:
    upstreams = ups("a", "b", "c", "d")
    first, again = router(rng=random.Random(7)), router(rng=random.Random(7))
    assert [pick(first, upstreams, "weighted") for _ in range(20)] == [
        pick(again, upstreams, "weighted") for _ in range(20)
    ]


# --- least-latency


async def test_least_latency_orders_by_real_request_average() -> None:
    r, upstreams = router(), ups("a", "b", "c")
    for name, seconds in [("a", 0.9), ("b", 0.2), ("c", 0.5)]:
        r.latency.observe(f"{MODEL}/{name}", seconds)
    assert pick(r, upstreams, "least-latency") == ["b", "c", "a"]
    assert pick(r, upstreams, "least-latency") == ["b", "c", "a"]


async def test_least_latency_real_data_first_then_probe_then_none() -> None:
    r, upstreams = router(), ups("none1", "probe_slow", "real_slow", "probe_fast", "real_fast", "none2")
    r.latency.observe(f"{MODEL}/real_slow", 2.0)
    r.latency.observe(f"{MODEL}/real_fast", 1.0)
    r.latency.observe_probe(f"{MODEL}/probe_slow", 0.2)
    r.latency.observe_probe(f"{MODEL}/probe_fast", 0.01)
    r.latency.observe_probe(f"{MODEL}/real_slow", 0.001)  # real data wins over its own probe
    assert pick(r, upstreams, "least-latency") == [
        "real_fast",
        "real_slow",
        "probe_fast",
        "probe_slow",
        "none1",
        "none2",
    ]


async def test_least_latency_with_probe_data_only() -> None:
    r, upstreams = router(), ups("a", "b", "c")
    r.latency.observe_probe(f"{MODEL}/a", 0.3)
    r.latency.observe_probe(f"{MODEL}/c", 0.1)
    assert pick(r, upstreams, "least-latency") == ["c", "a", "b"]


async def test_least_latency_without_any_data_is_round_robin() -> None:
    r, upstreams = router(), ups("a", "b", "c")
    assert [pick(r, upstreams, "least-latency") for _ in range(2)] == [["a", "b", "c"], ["b", "c", "a"]]
    r.latency.observe(f"{MODEL}/unrelated", 0.1)
    assert pick(r, upstreams, "least-latency") == ["c", "a", "b"]
    no_tracker = router(latency=None)
    assert [pick(no_tracker, upstreams, "least-latency") for _ in range(2)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
    ]


async def test_least_latency_follows_the_moving_average() -> None:
    r, upstreams = router(), ups("a", "b")
    r.latency.observe(f"{MODEL}/a", 1.0)
    r.latency.observe(f"{MODEL}/b", 2.0)
    assert pick(r, upstreams, "least-latency") == ["a", "b"]
    r.latency.observe(f"{MODEL}/a", 5.0)  # 1.0 + 0.3 * 4.0 = 2.2: now slower than b
    assert r.latency.average(f"{MODEL}/a") == pytest.approx(2.2)
    assert pick(r, upstreams, "least-latency") == ["b", "a"]


def test_latency_average_is_an_ewma_starting_at_the_first_sample() -> None:
    latency = LatencyTracker()
    assert latency.average("x") is None
    assert latency.probe("x") is None
    latency.observe("x", 1.0)
    assert latency.average("x") == 1.0
    latency.observe("x", 2.0)
    assert latency.average("x") == pytest.approx(1.0 + ALPHA * 1.0)
    latency.observe_probe("x", 0.5)
    latency.observe_probe("x", 0.25)
    assert latency.probe("x") == 0.25  # the latest probe, not an average
    assert latency.average("x") == pytest.approx(1.3)
    with pytest.raises(ValueError, match="alpha"):
        LatencyTracker(alpha=0)


# --- filtering


async def test_open_breakers_and_unhealthy_upstreams_are_filtered_degraded_kept() -> None:
    statuses = {"b": "unhealthy", "c": "degraded", "d": "healthy"}
    r, upstreams = router(health=health_of(statuses)), ups("a", "b", "c", "d", "e")
    trip(r, "d")
    assert pick(r, upstreams, "priority") == ["a", "c", "e"]


async def test_when_everything_is_filtered_everything_is_a_last_resort() -> None:
    r, upstreams = router(health=health_of({"a": "unhealthy"})), ups("a", "b", "c", c={"priority": -1})
    trip(r, "b")
    trip(r, "c")
    assert pick(r, upstreams, "priority") == ["c", "a", "b"]


async def test_ordering_never_takes_a_half_open_slot(autojump_clock: trio.testing.MockClock) -> None:
    r, upstreams = router(), ups("a", "b")
    trip(r, "a")
    assert pick(r, upstreams, "priority") == ["b"]
    await trio.sleep(30)
    for _ in range(100):
        assert pick(r, upstreams, "priority") == ["a", "b"]
    assert r.breakers.state(f"{MODEL}/a") is BreakerState.OPEN
    probe = r.breakers.try_acquire(f"{MODEL}/a")  # only the attempt itself reserves
    assert probe is not None
    assert probe.probe
    assert pick(r, upstreams, "priority") == ["b"]  # slot taken: filtered until released
    probe.neutral()
    assert pick(r, upstreams, "priority") == ["a", "b"]


# --- cooldowns and truncation


async def test_cooling_upstreams_move_to_the_end_in_order(autojump_clock: trio.testing.MockClock) -> None:
    r, upstreams = router(), ups("a", "b", "c", "d")
    r.cooldowns.park(f"{MODEL}/b", 3.0)
    r.cooldowns.park(f"{MODEL}/a", 5.0)
    assert pick(r, upstreams, "priority") == ["c", "d", "a", "b"]
    await trio.sleep(3)
    assert pick(r, upstreams, "priority") == ["b", "c", "d", "a"]
    await trio.sleep(2)
    assert pick(r, upstreams, "priority") == ["a", "b", "c", "d"]


async def test_all_cooling_keeps_strategy_order() -> None:
    r, upstreams = router(), ups("a", "b", "c")
    for u in upstreams:
        r.cooldowns.park(u.name, 10.0)
    assert [pick(r, upstreams, "round-robin") for _ in range(2)] == [["a", "b", "c"], ["b", "c", "a"]]


@pytest.mark.parametrize(
    ("max_retries", "expected"),
    [
        (0, ["b", "c", "d", "a"]),
        (1, ["b", "c"]),
        (2, ["b", "c", "d"]),
        (3, ["b", "c", "d", "a"]),
        (9, ["b", "c", "d", "a"]),
    ],
)
async def test_max_retries_truncates_after_cooldowns_move_last(max_retries: int, expected: list[str]) -> None:
    r, upstreams = router(), ups("a", "b", "c", "d")
    r.cooldowns.park(f"{MODEL}/a", 10.0)
    assert pick(r, upstreams, "priority", max_retries=max_retries) == expected


async def test_order_function_takes_its_state_explicitly() -> None:
    upstreams = ups("a", "b", "c")
    kwargs = dict(
        strategy="round-robin",
        model=MODEL,
        breakers=BreakerRegistry(),
        cooldowns=CooldownRegistry(),
        health=None,
        latency=None,
        rng=random.Random(0),
        max_retries=1,
        rotation=RoundRobin(),
    )
    assert names(order(upstreams, **kwargs)) == ["a", "b"]  # type: ignore[arg-type]
    assert names(order(upstreams, **kwargs)) == ["b", "c"]  # type: ignore[arg-type]


# --- registry fields used by the strategies


def test_deployments_carry_weight_and_priority() -> None:
    config = parse_config(
        "settings:\n  encryption_key: sixteen-chars-or-more\nmodels:\n"
        "  - name: m\n    strategy: priority\n    deployments:\n"
        '      - {name: a, provider: openai, base_url: "http://a/v1", weight: 3, priority: 2}\n'
        '      - {name: b, provider: openai, base_url: "http://b/v1"}\n'
        "  - name: single\n    provider: openai\n    base_url: http://s/v1\n",
        environ={},
    )
    registry = Registry.from_config(config.models)
    model, single = registry.resolve("m"), registry.resolve("single")
    assert model is not None
    assert single is not None
    assert [(u.name, u.weight, u.priority) for u in model.upstreams] == [("m/b", 1, 0), ("m/a", 3, 2)]
    assert [(u.weight, u.priority) for u in single.upstreams] == [(1, 0)]


# --- routing metrics


def test_routing_metrics_are_registered() -> None:
    record_attempt("metrics-test", "a", "success")
    record_failover("metrics-test", "a", "timeout")
    record_failover("metrics-test", "b", "rate_limited")
    record_hedge("metrics-test", "started")
    m = {"model": "metrics-test"}
    expected = [
        ("voidllm_routing_attempts_total", {**m, "deployment": "a", "outcome": "success"}),
        ("voidllm_routing_failovers_total", {**m, "deployment": "a", "reason": "timeout"}),
        ("voidllm_routing_failovers_total", {**m, "deployment": "b", "reason": "rate_limited"}),
        ("voidllm_rate_limit_failovers_total", {**m, "deployment": "b"}),
        ("voidllm_hedges_total", {**m, "result": "started"}),
    ]
    for metric, labels in expected:
        assert REGISTRY.get_sample_value(metric, labels) == 1, metric
    assert REGISTRY.get_sample_value("voidllm_rate_limit_failovers_total", {**m, "deployment": "a"}) is None
    families = {family.name for family in REGISTRY.collect()}
    assert {
        "voidllm_circuit_breaker_state",
        "voidllm_circuitbreaker_rejections",
        "voidllm_cooldowns_active",
    } <= families


@pytest.mark.parametrize(
    ("call", "value"),
    [(record_attempt, "retried"), (record_failover, "status_4xx"), (record_hedge, "lost")],
)
def test_routing_metrics_refuse_labels_outside_their_enumeration(
    call: Callable[..., None], value: str
) -> None:
    args = ("m", value) if call is record_hedge else ("m", "a", value)
    with pytest.raises(ValueError, match=value):
        call(*args)


@pytest.mark.parametrize(
    ("model", "upstream", "label"),
    [
        ("m", "m/a", "a"),
        ("m", "m", "m"),
        ("meta-llama/Llama-3", "meta-llama/Llama-3/eu", "eu"),
        ("org/x", "org/x", "org/x"),
    ],
)
def test_deployment_label(model: str, upstream: str, label: str) -> None:
    assert deployment_label(model, upstream) == label
