"""Candidate order: which of a model's deployments to try, and in which order (docs/reference/behaviour.md
6.1).

:func:`order` runs once per request, before the attempt chain:

1. **Filter.** Drop deployments whose breaker would refuse an attempt now (a non-reserving
   :meth:`~voidllm.routing.breaker.BreakerRegistry.peek`) or whose health status is ``unhealthy``
   (``degraded`` and ``unknown`` stay). If that drops every deployment, keep them all: a last resort beats
   a certain error.
2. **Order by strategy.**
   - ``round-robin`` (also for an empty or unknown name): a counter per model, taken once per request; the
     list is rotated to start at ``counter mod n``.
   - ``least-latency``: deployments with a real-request average first, fastest first; then those with only
     a probe latency, fastest probe first; then those with neither, in listed order
     (:mod:`voidllm.routing.latency` explains the average). The two measures are never compared with each
     other. With no data at all it is round-robin.
   - ``weighted``: the first deployment is drawn with probability proportional to its weight (a weight of 0
     or less counts as 1); the rest follow in random order.
   - ``priority``: ascending priority, ties in listed order.
3. **Cooldowns last.** Deployments parked after a 429 move to the end, keeping their relative order.
4. **Truncate** to ``max_retries + 1`` candidates when ``max_retries > 0`` (0 means try them all).

A model with a single upstream gets ``[that upstream]`` unfiltered: its breaker and cooldown still apply
when the attempt chain acquires a permit for it. Nothing here reserves anything: the attempt chain calls
``breakers.try_acquire(upstream.name)`` right before each attempt, so candidates that are never tried take
no half-open slot.

Differences from the original: least-latency prefers real-request latency over probe latency (the issue
asks for it); everything else follows 6.1. Left out: sticky sessions and cost-based ordering.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from voidllm.routing.error_rates import ErrorRates

if TYPE_CHECKING:
    from collections.abc import Sequence

    from voidllm.routing.breaker import BreakerRegistry
    from voidllm.routing.cooldown import CooldownRegistry
    from voidllm.routing.latency import LatencyTracker
    from voidllm.routing.registry import Upstream

__all__ = ["STRATEGIES", "RoundRobin", "Router", "order"]

STRATEGIES = ("round-robin", "least-latency", "weighted", "priority")

HealthLookup = Callable[[str], str]


@attrs.define(eq=False)
class RoundRobin:
    """Per-model request counters. Plain ints: trio runs every task on one thread."""

    _counters: dict[str, int] = attrs.field(factory=dict, init=False)

    def take(self, model: str) -> int:
        """The counter's value for this request (0 for the first), then advance it."""
        value = self._counters.get(model, 0)
        self._counters[model] = value + 1
        return value


def order(
    upstreams: Sequence[Upstream],
    *,
    strategy: str,
    model: str,
    breakers: BreakerRegistry,
    cooldowns: CooldownRegistry,
    health: HealthLookup | None,
    latency: LatencyTracker | None,
    rng: random.Random,
    max_retries: int,
    rotation: RoundRobin,
) -> list[Upstream]:
    """The candidates for one request of ``model``, best first.

    Args:
        upstreams: the model's upstreams, in configured order.
        strategy: one of :data:`STRATEGIES`; anything else means round-robin.
        model: the canonical model name, which keys the round-robin counter.
        breakers: peeked, never acquired.
        cooldowns: deployments parked after a 429 go last.
        health: upstream key -> ``healthy``/``degraded``/``unhealthy``/``unknown``; ``None`` without probes.
        latency: averages for ``least-latency``; ``None`` behaves as "no data".
        rng: randomness for ``weighted`` (seeded in tests).
        max_retries: keep at most ``max_retries + 1`` candidates; 0 keeps all.
        rotation: the round-robin counters.

    Returns:
        A new list, never empty unless ``upstreams`` is.
    """
    if len(upstreams) <= 1:
        return list(upstreams)
    candidates = _usable(upstreams, breakers, health) or list(upstreams)
    ranked = _rank(candidates, strategy, model, latency, rng, rotation)
    ranked = _cooling_last(ranked, cooldowns)
    return ranked[: max_retries + 1] if max_retries > 0 else ranked


def _usable(
    upstreams: Sequence[Upstream], breakers: BreakerRegistry, health: HealthLookup | None
) -> list[Upstream]:
    return [
        u for u in upstreams if breakers.peek(u.name) and (health is None or health(u.name) != "unhealthy")
    ]


def _rank(
    candidates: list[Upstream],
    strategy: str,
    model: str,
    latency: LatencyTracker | None,
    rng: random.Random,
    rotation: RoundRobin,
) -> list[Upstream]:
    if strategy == "priority":
        return sorted(candidates, key=lambda u: u.priority)
    if strategy == "weighted":
        return _weighted(candidates, rng)
    if strategy == "least-latency" and latency is not None:
        ranked = _fastest_first(candidates, latency)
        if ranked is not None:
            return ranked
    return _rotated(candidates, rotation.take(model))


def _rotated(candidates: list[Upstream], counter: int) -> list[Upstream]:
    start = counter % len(candidates)
    return candidates[start:] + candidates[:start]


def _fastest_first(candidates: list[Upstream], latency: LatencyTracker) -> list[Upstream] | None:
    keys = {u.name: _latency_key(u, latency) for u in candidates}
    if all(tier == _NO_DATA for tier, _ in keys.values()):
        return None
    return sorted(candidates, key=lambda u: keys[u.name])


_REAL, _PROBE, _NO_DATA = 0, 1, 2


def _latency_key(upstream: Upstream, latency: LatencyTracker) -> tuple[int, float]:
    average = latency.average(upstream.name)
    if average is not None:
        return (_REAL, average)
    probe = latency.probe(upstream.name)
    if probe is not None:
        return (_PROBE, probe)
    return (_NO_DATA, 0.0)


def _weighted(candidates: list[Upstream], rng: random.Random) -> list[Upstream]:
    weights = [u.weight if u.weight > 0 else 1 for u in candidates]
    first = rng.choices(range(len(candidates)), weights=weights)[0]
    rest = candidates[:first] + candidates[first + 1 :]
    rng.shuffle(rest)
    return [candidates[first], *rest]


def _cooling_last(ranked: list[Upstream], cooldowns: CooldownRegistry) -> list[Upstream]:
    cooling = {u.name for u in ranked if cooldowns.cooling(u.name)}
    return [u for u in ranked if u.name not in cooling] + [u for u in ranked if u.name in cooling]


@attrs.define(eq=False)
class Router:
    """The routing state of one process, so the attempt chain passes one object instead of six."""

    breakers: BreakerRegistry
    cooldowns: CooldownRegistry
    latency: LatencyTracker
    health: HealthLookup | None = None
    rng: random.Random = attrs.Factory(random.Random)
    rotation: RoundRobin = attrs.Factory(RoundRobin)
    error_rates: ErrorRates = attrs.Factory(ErrorRates)  # decided attempts per minute, for the models API

    def order(
        self, upstreams: Sequence[Upstream], *, strategy: str, model: str, max_retries: int
    ) -> list[Upstream]:
        """:func:`order` with this router's state."""
        return order(
            upstreams,
            strategy=strategy,
            model=model,
            breakers=self.breakers,
            cooldowns=self.cooldowns,
            health=self.health,
            latency=self.latency,
            rng=self.rng,
            max_retries=max_retries,
            rotation=self.rotation,
        )
