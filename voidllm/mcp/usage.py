"""Usage of proxied MCP tool calls: one ``mcp_tool_calls`` row and the ``voidllm_mcp_*`` metrics per call.

The proxy (:mod:`voidllm.mcp.gateway.proxy`) calls :func:`record_tool_call` once per forwarded ``tools/call``,
and Code Mode (:mod:`voidllm.mcp.gateway.codemode`) once per tool call of a script, with ``code_mode`` set and
the execution's id. The row (:class:`ToolCallRecord`) carries who called (key, org, team, user, service
account), the server alias, the tool name, the duration, the status and the gateway's request id; **never
arguments or results**. Rows are queued without waiting on a bounded channel (``settings.usage.buffer_size``;
a full channel drops the row and counts it; beyond memory rows spill to disk like usage events, see
:mod:`voidllm.usage.spill`) and written in batches by :func:`serve_tool_call_writer`, the batch service of
:mod:`voidllm.usage.batches`, started by the server as a supervised service.

Statuses: ``success`` (a result), ``error`` (a JSON-RPC error answered by the upstream, or a tool result with
``isError``), ``timeout`` (no answer within ``settings.mcp.call_timeout``), ``transport_error`` (unreachable,
refused, unusable answer). The reference counts JSON-RPC errors as success; we tell them apart.

Metric cardinality: ``server`` is the alias of a resolved server (bounded by the registered servers); ``tool``
is the tool name clipped to :data:`MAX_TOOL_NAME` characters, and only for calls the upstream recognised (a
result, or a timeout); calls answered with a JSON-RPC error or failing in transport count as ``unknown``, so
clients cannot mint label values by calling made-up tool names.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from prometheus_client import Counter, Histogram

from voidllm.identity import KeyIdentity
from voidllm.metrics import REGISTRY
from voidllm.store.ids import new_id, utcnow
from voidllm.store.tables import mcp_tool_calls
from voidllm.usage.batches import (
    BatchInbox,
    BatchMetrics,
    BatchStore,
    Recorder,
    insert_rows,
    open_batch_channel,
    serve_batch_writer,
)

__all__ = [
    "MAX_TOOL_NAME",
    "TOOL_CALL_METRICS",
    "ToolCallOutcome",
    "ToolCallRecord",
    "count_transport_error",
    "insert_tool_calls",
    "open_tool_call_channel",
    "record_tool_call",
    "serve_tool_call_writer",
]

MAX_TOOL_NAME = 64

TOOL_CALLS = Counter(
    "voidllm_mcp_tool_calls_total",
    "Proxied MCP tool calls by server, tool and status.",
    ["server", "tool", "status"],
    registry=REGISTRY,
)
TOOL_CALL_SECONDS = Histogram(
    "voidllm_mcp_tool_call_duration_seconds",
    "Duration of proxied MCP tool calls.",
    ["server", "tool"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
TRANSPORT_ERRORS = Counter(
    "voidllm_mcp_transport_errors_total",
    "Failed exchanges with upstream MCP servers (call or timeout).",
    ["server", "error_type"],
    registry=REGISTRY,
)
TOOL_CALL_METRICS = BatchMetrics.declare(
    "MCP tool call rows", prefix="voidllm_mcp_tool_calls", batch="MCP tool call"
)


@attrs.frozen
class ToolCallOutcome:
    """One finished proxied ``tools/call`` as the proxy reports it."""

    identity: KeyIdentity
    request_id: str | None
    server_alias: str
    tool_name: str
    status: str  # success | error | timeout | transport_error
    seconds: float
    recognised: bool = False
    """The upstream answered with a result (or timed out running it): the name may be a metric label."""
    execution_id: str | None = None
    """The Code Mode execution that made the call (``None``: a call proxied for an MCP client)."""


@attrs.frozen
class ToolCallRecord:
    """One ``mcp_tool_calls`` row (column names)."""

    id: str
    request_id: str | None
    key_id: str
    org_id: str
    team_id: str | None
    user_id: str | None
    service_account_id: str | None
    server_alias: str
    tool_name: str
    duration_ms: int
    status: str
    code_mode: bool
    created_at: datetime
    code_mode_execution_id: str | None = None

    @classmethod
    def from_outcome(cls, outcome: ToolCallOutcome) -> ToolCallRecord:
        who = outcome.identity
        return cls(
            id=new_id(),
            request_id=outcome.request_id[:64] if outcome.request_id else None,
            key_id=who.key_id,
            org_id=who.org_id,
            team_id=who.team_id,
            user_id=who.user_id,
            service_account_id=who.service_account_id,
            server_alias=outcome.server_alias,
            tool_name=outcome.tool_name[:MAX_TOOL_NAME],
            duration_ms=max(0, round(outcome.seconds * 1000)),
            status=outcome.status,
            code_mode=outcome.execution_id is not None,
            created_at=utcnow(),
            code_mode_execution_id=outcome.execution_id,
        )


def record_tool_call(recorder: Recorder[ToolCallRecord] | None, outcome: ToolCallOutcome) -> None:
    """Count ``outcome`` in the metrics and queue its row on ``recorder`` (without waiting; a full channel
    drops it; no recorder: the row is not written)."""
    tool = outcome.tool_name[:MAX_TOOL_NAME] if outcome.recognised else "unknown"
    TOOL_CALLS.labels(server=outcome.server_alias, tool=tool, status=outcome.status).inc()
    TOOL_CALL_SECONDS.labels(server=outcome.server_alias, tool=tool).observe(outcome.seconds)
    if recorder is not None:
        recorder.record(ToolCallRecord.from_outcome(outcome))


def count_transport_error(server_alias: str, error_type: str) -> None:
    TRANSPORT_ERRORS.labels(server=server_alias, error_type=error_type).inc()


def insert_tool_calls(connection: sa.Connection, records: Sequence[ToolCallRecord]) -> int:
    """Insert ``records`` as ``mcp_tool_calls`` rows (in the caller's transaction), skipping ids already there
    (a retried or replayed batch); returns the row count."""
    return insert_rows(connection, [attrs.asdict(record) for record in records], table=mcp_tool_calls)


def open_tool_call_channel(
    buffer_size: int,
) -> tuple[Recorder[ToolCallRecord], BatchInbox[ToolCallRecord]]:
    """The bounded channel: the recorder for ``services.mcp.tool_calls`` and the writer's side."""
    return open_batch_channel(buffer_size, TOOL_CALL_METRICS)


async def serve_tool_call_writer(
    *, store: BatchStore, receive: BatchInbox[ToolCallRecord], **options: Any
) -> None:
    """Write tool call rows from ``receive`` in batches until cancelled, flushing on the way out:
    :func:`~voidllm.usage.batches.serve_batch_writer` (``options`` are its other arguments)."""
    await serve_batch_writer(
        store=store, receive=receive, insert=insert_tool_calls, metrics=TOOL_CALL_METRICS, **options
    )
