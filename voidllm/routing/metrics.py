"""Prometheus metrics of routing (breakers, cooldowns, attempts, failovers, retries, hedges), on the process
registry.

Label values are configured names (model, deployment, upstream key) and the closed enumerations below, never
request content. The ``record_*`` helpers refuse a label value outside its enumeration, so a typo in the
attempt chain fails a test instead of silently creating a new series (except :func:`record_retry`, which
counts an unknown strategy as the round-robin the router falls back to, so a stored model never fails a
request over a metric).

The breaker and cooldown metrics are kept current by :mod:`voidllm.routing.breaker` and
:mod:`voidllm.routing.cooldown` themselves; attempts, failovers, retries and hedges are counted by the attempt
chain. All are registered on :data:`voidllm.metrics.REGISTRY`. Names follow docs/reference/behaviour.md 10
where the original has the metric (``voidllm_circuitbreaker_rejections_total``,
``voidllm_rate_limit_failovers_total``); the original labels breaker rejections ``model`` (holding the
deployment key), this one calls the same value ``upstream``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from voidllm.config.upstreams import STRATEGIES
from voidllm.metrics import REGISTRY

__all__ = [
    "ATTEMPTS",
    "ATTEMPT_OUTCOMES",
    "BREAKER_REJECTIONS",
    "BREAKER_STATE",
    "COOLDOWNS_ACTIVE",
    "FAILOVERS",
    "FAILOVER_REASONS",
    "HEDGES",
    "HEDGE_RESULTS",
    "RATE_LIMIT_FAILOVERS",
    "RETRIES",
    "deployment_label",
    "record_attempt",
    "record_failover",
    "record_hedge",
    "record_retry",
]

ATTEMPT_OUTCOMES = frozenset({"success", "failure", "neutral", "rate_limited", "breaker_open"})
FAILOVER_REASONS = frozenset({"connect_error", "timeout", "status_5xx", "rate_limited", "broken_body"})
HEDGE_RESULTS = frozenset({"started", "won"})

BREAKER_STATE = Gauge(
    "voidllm_circuit_breaker_state",
    "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
    ["upstream"],
    registry=REGISTRY,
    multiprocess_mode="livemax",  # the worst state any live worker's breaker is in
)
BREAKER_REJECTIONS = Counter(
    "voidllm_circuitbreaker_rejections_total",
    "Attempts refused by an upstream's circuit breaker (open, or half-open with every probe slot taken).",
    ["upstream"],
    registry=REGISTRY,
)
COOLDOWNS_ACTIVE = Gauge(
    "voidllm_cooldowns_active",
    "Upstreams parked in rate-limit cooldown, as of the last cooldown lookup or park.",
    registry=REGISTRY,
    multiprocess_mode="livemax",  # each worker parks upstreams on its own
)
RATE_LIMIT_FAILOVERS = Counter(
    "voidllm_rate_limit_failovers_total",
    "Failovers to the next deployment because an upstream answered 429.",
    ["model", "deployment"],
    registry=REGISTRY,
)
ATTEMPTS = Counter(
    "voidllm_routing_attempts_total",
    "Upstream attempts by model, deployment and outcome "
    "(success, failure, neutral, rate_limited, breaker_open).",
    ["model", "deployment", "outcome"],
    registry=REGISTRY,
)
FAILOVERS = Counter(
    "voidllm_routing_failovers_total",
    "Moves from a deployment to the next candidate, by the reason the deployment was left "
    "(connect_error, timeout, status_5xx, rate_limited).",
    ["model", "deployment", "reason"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "voidllm_routing_retries_total",
    "Further candidates tried after an attempt of the same request failed (hedges not included), "
    "by model and routing strategy.",
    ["model", "strategy"],
    registry=REGISTRY,
)
HEDGES = Counter(
    "voidllm_hedges_total",
    "Hedged attempts started, and those whose response was the one used (won).",
    ["model", "result"],
    registry=REGISTRY,
)


def deployment_label(model: str, upstream: str) -> str:
    """The deployment part of an upstream key: ``b`` for ``m/b``; the model name for a single-upstream model.

    Model names may contain ``/`` themselves (``meta-llama/Llama-3``), so the key is cut by the known model
    name rather than split.
    """
    prefix = f"{model}/"
    return upstream[len(prefix) :] if upstream.startswith(prefix) else upstream


def record_attempt(model: str, deployment: str, outcome: str) -> None:
    """Count one attempt. Raises ValueError for an outcome outside :data:`ATTEMPT_OUTCOMES`."""
    _check(outcome, ATTEMPT_OUTCOMES)
    ATTEMPTS.labels(model, deployment, outcome).inc()


def record_failover(model: str, deployment: str, reason: str) -> None:
    """Count one failover away from ``deployment``; a 429 also counts in the reference's rate-limit metric.

    Raises:
        ValueError: ``reason`` is outside :data:`FAILOVER_REASONS`.
    """
    _check(reason, FAILOVER_REASONS)
    FAILOVERS.labels(model, deployment, reason).inc()
    if reason == "rate_limited":
        RATE_LIMIT_FAILOVERS.labels(model, deployment).inc()


def record_retry(model: str, strategy: str) -> None:
    """Count one retry on the next candidate; a strategy outside ``STRATEGIES`` is counted as the
    round-robin it falls back to."""
    RETRIES.labels(model, strategy if strategy in STRATEGIES else "round-robin").inc()


def record_hedge(model: str, result: str) -> None:
    """Count a hedge started or won. Raises ValueError for a result outside :data:`HEDGE_RESULTS`."""
    _check(result, HEDGE_RESULTS)
    HEDGES.labels(model, result).inc()


def _check(value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {sorted(allowed)}")
