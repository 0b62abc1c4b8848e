"""The one Prometheus registry of the process, and the metrics that belong to no single layer.

Every metric VoidLLM exports is registered on :data:`REGISTRY` (never on prometheus-client's global default
registry, so tests can build several apps in one process without duplicate-registration errors coming from
elsewhere). Labels carry identifiers and enumerations only (model names, service names, status codes), never
request or response content. The full list, with types and labels, is the "Metrics" table of README.md
(``tests/test_metrics_complete.py`` keeps the two in step).

prometheus-client's ``*_created`` series (one timestamp per counter and histogram child) are switched off for
the whole process: the Go original has none, and they would add a series per child for nothing.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated

REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

SERVICE_RESTARTS = Counter(
    "voidllm_service_restarts_total",
    "Supervised services restarted after a crash.",
    ["service"],
    registry=REGISTRY,
)
SERVICE_UP = Gauge(
    "voidllm_service_up",
    "1 while a supervised service is running, 0 while it waits to be restarted.",
    ["service"],
    registry=REGISTRY,
)
CACHE_SIZE = Gauge(
    "voidllm_cache_size",
    "Entries held by an in-memory cache.",
    ["cache"],
    registry=REGISTRY,
)
CACHE_REFRESH_FAILURES = Counter(
    "voidllm_cache_refresh_failures_total",
    "Periodic cache reloads that failed; the previous contents stay in use.",
    ["cache"],
    registry=REGISTRY,
)
INFLIGHT_REQUESTS = Gauge(
    "voidllm_inflight_requests",
    "Proxy requests currently being served.",
    registry=REGISTRY,
)
DRAINING = Gauge(
    "voidllm_draining",
    "1 once graceful shutdown has begun.",
    registry=REGISTRY,
)
AUTH_FAILURES = Counter(
    "voidllm_auth_failures_total",
    "Requests rejected by authentication, by reason.",
    ["reason"],
    registry=REGISTRY,
)


def render() -> tuple[bytes, str]:
    """Return the exposition text of :data:`REGISTRY` and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
