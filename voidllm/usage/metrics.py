"""Prometheus metrics of usage tracking, registered on the process registry :data:`voidllm.metrics.REGISTRY`.

No labels: the writer is one per process, and event contents never become label values.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from voidllm.metrics import REGISTRY

__all__ = [
    "BATCH_WRITE_SECONDS",
    "BUFFER_DEPTH",
    "EVENTS_DROPPED",
    "EVENTS_WRITTEN",
    "WRITE_FAILURES",
]

BUFFER_DEPTH = Gauge(
    "voidllm_usage_buffer_depth",
    "Usage events waiting to be written: queued in the channel plus held in the writer's batch.",
    registry=REGISTRY,
)
EVENTS_DROPPED = Counter(
    "voidllm_usage_events_dropped_total",
    "Usage events lost: the channel was full or closed, the database rejected their batch, "
    "or the shutdown flush ran out of time.",
    registry=REGISTRY,
)
EVENTS_WRITTEN = Counter(
    "voidllm_usage_events_written_total",
    "Usage events written to the database.",
    registry=REGISTRY,
)
WRITE_FAILURES = Counter(
    "voidllm_usage_write_failures_total",
    "Batch writes that failed with a store error (each retry that fails counts again).",
    registry=REGISTRY,
)
BATCH_WRITE_SECONDS = Histogram(
    "voidllm_usage_batch_write_seconds",
    "Wall time of one batch write (one transaction), successful or not.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
