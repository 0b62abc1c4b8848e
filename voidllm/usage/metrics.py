"""Prometheus metrics of usage tracking, registered on the process registry :data:`voidllm.metrics.REGISTRY`.

The writer's metrics have no labels (the writer is one per process); rollups and retention label only by
outcome or table name. Event contents never become label values.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from voidllm.metrics import REGISTRY

__all__ = [
    "BATCH_WRITE_SECONDS",
    "BUFFER_DEPTH",
    "EVENTS_DROPPED",
    "EVENTS_WRITTEN",
    "RETENTION_ROWS_DELETED",
    "RETENTION_RUNS",
    "ROLLUP_HOURS",
    "ROLLUP_LAG",
    "ROLLUP_RUNS",
    "ROLLUP_SECONDS",
    "WRITE_FAILURES",
]

BUFFER_DEPTH = Gauge(
    "voidllm_usage_buffer_depth",
    "Usage events waiting to be written: queued in the channel plus held in the writer's batch.",
    registry=REGISTRY,
    multiprocess_mode="livesum",  # each worker has its own writer
)
EVENTS_DROPPED = Counter(
    "voidllm_usage_events_dropped_total",
    "Usage events lost: the channel was full or closed, the database rejected their batch, "
    "or the spill refused them (disk budget exhausted, disk error).",
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

# -- hourly rollups (voidllm.usage.rollups) and retention (voidllm.usage.retention) ------------------------

ROLLUP_RUNS = Counter(
    "voidllm_rollup_runs_total",
    "Runs of the hourly rollup service by outcome: ok, or error (a store error; retried next interval).",
    ["outcome"],
    registry=REGISTRY,
)
ROLLUP_HOURS = Counter(
    "voidllm_rollup_hours_total",
    "Hours of usage_hourly rebuilt from usage_events (each rebuild of the same hour counts again).",
    registry=REGISTRY,
)
ROLLUP_LAG = Gauge(
    "voidllm_rollup_lag_seconds",
    "Seconds since the start of the last rollup run that left nothing pending: set after every run; "
    "about the run's duration when healthy, growing while runs fail or catch up.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # the latest run's, whichever process ran it
)
ROLLUP_SECONDS = Histogram(
    "voidllm_rollup_duration_seconds",
    "Wall time of one rollup run, successful or not.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
RETENTION_ROWS_DELETED = Counter(
    "voidllm_retention_rows_deleted_total",
    "Rows deleted by the retention service, by table.",
    ["table"],
    registry=REGISTRY,
)
RETENTION_RUNS = Counter(
    "voidllm_retention_runs_total",
    "Runs of the retention service by outcome: ok, incomplete (the run's time budget ran out; the rest "
    "goes next run) or error (a store error).",
    ["outcome"],
    registry=REGISTRY,
)
for _outcome in ("ok", "error"):
    ROLLUP_RUNS.labels(outcome=_outcome)
for _outcome in ("ok", "incomplete", "error"):
    RETENTION_RUNS.labels(outcome=_outcome)
for _table in ("usage_events", "audit_logs", "mcp_tool_calls", "usage_hourly", "incidents"):
    RETENTION_ROWS_DELETED.labels(table=_table)
