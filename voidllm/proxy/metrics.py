"""Prometheus metrics of the data plane (docs/reference/behaviour.md 10 names). Labels: model names and enums
only."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from voidllm.metrics import REGISTRY

UPSTREAM_REQUESTS = Counter(
    "voidllm_upstream_requests_total",
    "Proxied requests by served model, provider and final HTTP status.",
    ["model", "provider", "status"],
    registry=REGISTRY,
)
UPSTREAM_ERRORS = Counter(
    "voidllm_upstream_errors_total",
    "Upstream attempts that failed without a usable response (connect error, timeout, broken stream).",
    ["model", "provider"],
    registry=REGISTRY,
)
PROXY_DURATION = Histogram(
    "voidllm_proxy_duration_seconds",
    "Duration of proxied requests, from arrival to the last byte sent.",
    ["model", "stream"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
PROXY_TTFT = Histogram(
    "voidllm_proxy_ttft_seconds",
    "Time to the first streamed data event (non-streaming: the whole duration).",
    ["model"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
PROXY_OVERHEAD = Histogram(
    "voidllm_proxy_overhead_seconds",
    "Time the gateway itself spent on a non-streaming request (total minus waiting for the upstream).",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
    registry=REGISTRY,
)
TOKENS = Counter(
    "voidllm_tokens_total",
    "Tokens by served model and direction.",
    ["model", "direction"],
    registry=REGISTRY,
)
ACTIVE_STREAMS = Gauge(
    "voidllm_active_streams",
    "Streams being relayed right now.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
GUARD_FINDINGS = Counter(
    "voidllm_guard_findings_total",
    "Prompt guard findings by kind, action taken (flag, redact, block) and direction (request, response).",
    ["kind", "action", "direction"],
    registry=REGISTRY,
)
GUARD_BLOCKED = Counter(
    "voidllm_guard_blocked_total",
    "Requests the prompt guard refused (403 content_blocked), by route.",
    ["route"],
    registry=REGISTRY,
)
POLICY_REFUSALS = Counter(
    "voidllm_request_policy_refusals_total",
    "Requests a request policy refused, by reason (parameter_not_allowed, parameter_out_of_bounds, "
    "required_header, origin_not_allowed).",
    ["reason"],
    registry=REGISTRY,
)
