"""Metrics of the limiters (registered on the process's one registry)."""

from __future__ import annotations

from prometheus_client import Counter

from voidllm.metrics import REGISTRY

REJECTIONS = Counter(
    "voidllm_ratelimit_rejections_total",
    "Requests refused by a request rate limit (scope=request) or a token budget (scope=token), by level.",
    ["scope", "level"],
    registry=REGISTRY,
)
BACKEND_ERRORS = Counter(
    "voidllm_ratelimit_backend_errors_total",
    "Limiter calls that failed because the Redis backend was unreachable, by the policy applied.",
    ["policy"],
    registry=REGISTRY,
)
