"""Prometheus metrics of span export (README, "Metrics"): spans exported, spans dropped and why, failed
exports. Counters only, so several worker processes sum them."""

from __future__ import annotations

from prometheus_client import Counter

from voidllm.metrics import REGISTRY

SPANS_EXPORTED = Counter(
    "voidllm_otel_spans_exported_total",
    "Spans the collector accepted.",
    registry=REGISTRY,
)
SPANS_DROPPED = Counter(
    "voidllm_otel_spans_dropped_total",
    "Spans not exported: the queue was full (queue_full) or their export failed (export_failed).",
    ["reason"],
    registry=REGISTRY,
)
EXPORT_FAILURES = Counter(
    "voidllm_otel_export_failures_total",
    "Batch exports that failed (collector unreachable or refusing, timeout), retries included.",
    registry=REGISTRY,
)
