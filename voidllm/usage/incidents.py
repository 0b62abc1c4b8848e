"""The incident log: every upstream failure, failover and fallback of a proxied request, as metadata.

The attempt chain (:mod:`voidllm.proxy.attempts`) is the one place where attempt outcomes are known; it notes
each incident on the request's exchange as an :class:`Incident` (a list made on the first one, so a request
whose first attempt succeeds allocates nothing). When the request ends, the handler knows what the client
got and hands every noted incident to :func:`record_incidents` with that ``client_outcome``; the rows go to
a bounded channel with ``send_nowait`` and :func:`serve_incident_writer` (the batch service of
:mod:`voidllm.usage.batches`, supervised, flushed at shutdown, spilled to disk beyond memory) writes them
to ``incidents``. A full channel drops the row and counts it in ``voidllm_incidents_dropped_total``.

What is recorded (:class:`IncidentRecord`): the time, who asked (organisation, team, key, request id), the
model as requested and the model whose attempt failed, the deployment and its provider, the ``kind``, the
``error_class``, the upstream's status code (when it answered), the attempt number and the
``client_outcome``. Never content: no prompt, no completion, no upstream error body or message, not even
their length.

Kinds (:data:`KINDS`):

- ``failure``: one attempt failed. Error classes (:data:`ERROR_CLASSES`): ``connect_error`` (refused,
  reset, closed before an answer), ``timeout`` (the attempt deadline, or a body not read by the model's
  deadline), ``http_5xx`` and ``http_429`` (the upstream's answer, failed over or relayed), ``http_4xx``
  (only 401 and 403: the upstream refused the gateway's credentials; any other 4xx is about the client's
  request, relayed and not an incident), ``protocol_error`` (the answer broke: a body closed part-way, a
  stream that ended without its terminal event); ``breaker_open`` when no candidate of a model could be
  tried because every breaker was open (one row per skipped deployment, attempt 0: nothing was sent).
- ``failover``: the request left that deployment for another candidate of the same model (beside the
  failure that caused it, with the same class).
- ``fallback``: the model gave no answer and the request moved on to its fallback model; the row names the
  model left, its last deployment tried and the class of its last failure.

Client outcomes (:data:`CLIENT_OUTCOMES`): ``served`` (a later attempt or a fallback model answered the
client successfully), ``error`` (the client got an error: the gateway's, or an upstream error relayed),
``cancelled`` (the client went away first).

Attempts are numbered from 1 over the whole request, every hop included, in the order they started.

The metric ``voidllm_upstream_incidents_total{model,deployment,kind,error_class}`` counts every incident
recorded, whether its row is queued or dropped. It sits beside the routing metrics it refines:
``voidllm_routing_failovers_total`` (failovers by reason) and ``voidllm_upstream_errors_total`` (failures
without a usable answer, by provider).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from prometheus_client import Counter

from voidllm.metrics import REGISTRY
from voidllm.store.ids import new_id
from voidllm.store.tables import incidents
from voidllm.usage.batches import (
    BatchInbox,
    BatchMetrics,
    BatchStore,
    Recorder,
    insert_rows,
    open_batch_channel,
    serve_batch_writer,
)

if TYPE_CHECKING:
    from voidllm.identity import KeyIdentity

__all__ = [
    "CLIENT_OUTCOMES",
    "ERROR_CLASSES",
    "INCIDENTS",
    "INCIDENT_METRICS",
    "KINDS",
    "Incident",
    "IncidentRecord",
    "insert_incidents",
    "open_incident_channel",
    "record_incidents",
    "serve_incident_writer",
]

KINDS = ("failure", "failover", "fallback")
ERROR_CLASSES = (
    "timeout",
    "connect_error",
    "http_5xx",
    "http_429",
    "http_4xx",
    "protocol_error",
    "breaker_open",
)
CLIENT_OUTCOMES = ("served", "error", "cancelled")

_MAX_TEXT = 256  # model and deployment names (the registry's bound)

INCIDENTS = Counter(
    "voidllm_upstream_incidents_total",
    "Upstream incidents recorded: failed attempts, failovers and fallbacks, by model, deployment, kind "
    "(failure, failover, fallback) and error class.",
    ["model", "deployment", "kind", "error_class"],
    registry=REGISTRY,
)
INCIDENT_METRICS = BatchMetrics.declare("incident rows", prefix="voidllm_incidents", batch="incident")


@attrs.frozen
class Incident:
    """One incident as the attempt chain notes it, before the request's outcome is known."""

    kind: str
    model: str
    deployment: str
    provider: str
    error_class: str
    status_code: int | None
    attempt: int
    at: datetime


@attrs.frozen
class IncidentRecord:
    """One ``incidents`` row (column names)."""

    id: str
    request_id: str | None
    org_id: str
    team_id: str | None
    key_id: str
    requested_model: str
    model: str
    deployment: str
    provider: str
    kind: str
    error_class: str
    status_code: int | None
    attempt: int
    client_outcome: str
    created_at: datetime

    @classmethod
    def of(
        cls,
        incident: Incident,
        *,
        identity: KeyIdentity,
        request_id: str | None,
        requested_model: str,
        client_outcome: str,
    ) -> IncidentRecord:
        return cls(
            id=new_id(),
            request_id=request_id[:64] if request_id else None,
            org_id=identity.org_id,
            team_id=identity.team_id,
            key_id=identity.key_id,
            requested_model=requested_model[:_MAX_TEXT],
            model=incident.model[:_MAX_TEXT],
            deployment=incident.deployment[:_MAX_TEXT],
            provider=incident.provider[:32],
            kind=incident.kind,
            error_class=incident.error_class,
            status_code=incident.status_code,
            attempt=incident.attempt,
            client_outcome=client_outcome,
            created_at=incident.at,
        )


def record_incidents(
    recorder: Recorder[IncidentRecord] | None,
    noted: Sequence[Incident],
    *,
    identity: KeyIdentity,
    request_id: str | None,
    requested_model: str,
    client_outcome: str,
) -> None:
    """Count each incident in the metric and queue its row on ``recorder`` without waiting (a full channel
    drops it and counts the drop; no recorder: no row).

    Raises:
        ValueError: a kind, error class or client outcome outside its vocabulary (a bug in the caller).
    """
    if client_outcome not in CLIENT_OUTCOMES:
        raise ValueError(f"{client_outcome!r} is not a client outcome")
    for incident in noted:
        if incident.kind not in KINDS or incident.error_class not in ERROR_CLASSES:
            raise ValueError(f"{incident.kind!r}/{incident.error_class!r} is not an incident kind/class")
        INCIDENTS.labels(incident.model, incident.deployment, incident.kind, incident.error_class).inc()
        if recorder is not None:
            recorder.record(
                IncidentRecord.of(
                    incident,
                    identity=identity,
                    request_id=request_id,
                    requested_model=requested_model,
                    client_outcome=client_outcome,
                )
            )


def insert_incidents(connection: sa.Connection, records: Sequence[IncidentRecord]) -> int:
    """Insert ``records`` as ``incidents`` rows (in the caller's transaction), skipping ids already there
    (a retried or replayed batch); returns the row count."""
    return insert_rows(connection, [attrs.asdict(record) for record in records], table=incidents)


def open_incident_channel(
    buffer_size: int,
) -> tuple[Recorder[IncidentRecord], BatchInbox[IncidentRecord]]:
    """The bounded channel: the recorder for the proxy and the writer's side."""
    return open_batch_channel(buffer_size, INCIDENT_METRICS)


async def serve_incident_writer(
    *, store: BatchStore, receive: BatchInbox[IncidentRecord], **options: Any
) -> None:
    """Write incident rows from ``receive`` in batches until cancelled, flushing on the way out:
    :func:`~voidllm.usage.batches.serve_batch_writer` (``options`` are its other arguments)."""
    await serve_batch_writer(
        store=store, receive=receive, insert=insert_incidents, metrics=INCIDENT_METRICS, **options
    )
