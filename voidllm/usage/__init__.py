"""Usage tracking: metadata-only usage events, cost estimates and the batched writer service.

- :mod:`~voidllm.usage.events`: :class:`UsageEvent`, :class:`TokenUsage` (OpenAI usage parsing),
  :class:`UsageStatus`
- :mod:`~voidllm.usage.cost`: :func:`cost_estimate`
- :mod:`~voidllm.usage.writer`: :class:`UsageRecorder` (request side), :func:`open_usage_channel`,
  :func:`serve_usage_writer` (the service), :func:`insert_usage_events`
- :mod:`~voidllm.usage.metrics`: the ``voidllm_usage_*`` Prometheus metrics
- :mod:`~voidllm.usage.batches`: the generic batched writer behind the usage writer (and the audit log's)
- :mod:`~voidllm.usage.rollups`: ``usage_hourly`` by request time, hours replaced (never added to)
- :mod:`~voidllm.usage.retention`: per-table batched deletes of old rows
- :mod:`~voidllm.usage.incidents`: the incident log's vocabulary, rows, metric and batched writer
"""

from voidllm.usage.cost import cost_estimate as cost_estimate
from voidllm.usage.events import TokenUsage as TokenUsage
from voidllm.usage.events import UsageEvent as UsageEvent
from voidllm.usage.events import UsageStatus as UsageStatus
from voidllm.usage.writer import UsageRecorder as UsageRecorder
from voidllm.usage.writer import insert_usage_events as insert_usage_events
from voidllm.usage.writer import open_usage_channel as open_usage_channel
from voidllm.usage.writer import serve_usage_writer as serve_usage_writer

__all__ = [
    "TokenUsage",
    "UsageEvent",
    "UsageRecorder",
    "UsageStatus",
    "cost_estimate",
    "insert_usage_events",
    "open_usage_channel",
    "serve_usage_writer",
]
