"""The audit log's write side: admin mutations become ``audit_logs`` rows, written in batches.

The management API hands every successful audited mutation to :attr:`Services.audit
<voidllm.admin.services.Services.audit>` as an :class:`~voidllm.admin.services.AuditEntry`.
:class:`AuditRecorder` is that sink when ``settings.audit.enabled``: it turns the entry into an
:class:`AuditRecord` at once (id, timestamp, and the request body with its secrets redacted, so no secret
waits in memory for the writer) and queues it with ``send_nowait`` on a bounded channel of
``settings.audit.buffer_size``. :func:`serve_audit_writer` is the batch service of
:mod:`voidllm.usage.batches` with :func:`insert_audit_records` and the ``voidllm_audit_*`` metrics: it writes
every ``settings.audit.flush_interval`` (or as soon as a quarter of the buffer is pending), and flushes all it
accepted when the server stops. A full channel drops the entry and counts it in
``voidllm_audit_events_dropped_total``: the admin request itself never waits for or fails on its audit row.

Redaction (:func:`redact`), at any depth of the JSON body: the value of every key that names a secret
(``password``, ``new_password``, ``api_key``, ``key``, ``token``, ``auth_token``, ``client_secret``,
``authorization``, ...: the last ``_``/``-`` separated word of the key, case-insensitive, is a secret word)
becomes ``"[REDACTED]"``, and so does every string that looks like a key or credential (``vl_``, ``sk-``,
``Bearer ``). Long strings are clipped, and a description still over :data:`MAX_DESCRIPTION` bytes keeps only
the names of its top-level fields.

Ids are UUIDv7 taken when the entry is recorded, so ``ORDER BY id`` is the order of the mutations; a batch
retried after a lost commit acknowledgement, or replayed from the spill (:mod:`voidllm.usage.spill`, beyond
the memory buffer, under ``settings.usage.spill_dir``), skips the rows already there: each is written once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import orjson
import sqlalchemy as sa

from voidllm.admin.audit import AuditLogOut
from voidllm.admin.services import AuditEntry
from voidllm.store.ids import new_id, utcnow
from voidllm.store.tables import audit_logs
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
    "AUDIT_METRICS",
    "MAX_DESCRIPTION",
    "REDACTED",
    "AuditRecord",
    "AuditRecorder",
    "describe",
    "insert_audit_records",
    "is_secret_key",
    "open_audit_channel",
    "record_of",
    "redact",
    "serve_audit_writer",
]

REDACTED = "[REDACTED]"
MAX_DESCRIPTION = 4096
"""Bytes of JSON kept per description."""
MAX_STRING = 256
"""Characters kept of one string value inside a description."""

SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "key",
        "apikey",
        "authorization",
        "credential",
        "credentials",
        "cookie",
        "dsn",
    }
)
"""A key whose last word is one of these holds a secret (``api_key``, ``auth_token``, ``client_secret``)."""
SECRET_VALUE = re.compile(r"^(vl_|sk-|sk_|bearer\s)", re.IGNORECASE)
"""Strings that look like a VoidLLM key, a provider key or an Authorization header value."""
_WORD_SPLIT = re.compile(r"[_\-.\s]+")

AUDIT_METRICS = BatchMetrics.declare("audit events", prefix="voidllm_audit", items="events", batch="audit")


# -- redaction -------------------------------------------------------------------------------------------


def is_secret_key(name: str) -> bool:
    """Whether a JSON key names a secret: its last word (split on ``_ - .``) is a secret word."""
    words = [word for word in _WORD_SPLIT.split(name.lower()) if word]
    return bool(words) and words[-1] in SECRET_WORDS


def redact(value: Any) -> Any:
    """``value`` (parsed JSON) with every secret replaced by :data:`REDACTED` and long strings clipped."""
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if is_secret_key(str(key)) else redact(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        if SECRET_VALUE.match(value.lstrip()):
            return REDACTED
        return value if len(value) <= MAX_STRING else value[:MAX_STRING] + "…"
    return value


def describe(payload: Mapping[str, Any] | None) -> str:
    """The ``description`` column: the redacted body as JSON text, at most :data:`MAX_DESCRIPTION` bytes."""
    if not payload:
        return ""
    text = orjson.dumps(redact(payload))
    if len(text) > MAX_DESCRIPTION:
        text = orjson.dumps({"truncated": True, "fields": sorted(str(key)[:64] for key in payload)[:32]})
    if len(text) > MAX_DESCRIPTION:  # unreachable with the caps above; kept as the hard bound
        text = b'{"truncated":true}'
    return text.decode()


# -- records ---------------------------------------------------------------------------------------------


def _clip(value: str | None, length: int) -> str | None:
    return None if value is None else value[:length]


AuditRecord = AuditLogOut
"""An ``audit_logs`` row, ready to insert (secrets already redacted): the same shape the API returns."""


def record_of(entry: AuditEntry, *, now: datetime | None = None) -> AuditRecord:
    """The row for ``entry``: a fresh UUIDv7 id, the time (``now``), the actor, and the redacted body."""
    actor = entry.actor
    return AuditRecord(
        id=new_id(),
        timestamp=now or utcnow(),
        request_id=_clip(actor.request_id, 64),
        org_id=entry.org_id,
        actor_id=actor.actor_id,
        actor_type=actor.actor_type,
        actor_key_id=actor.key_id,
        action=entry.action[:64],
        resource_type=entry.resource_type[:64],
        resource_id=entry.resource_id,
        description=describe(entry.description),
        ip_address=_clip(actor.ip, 64),
        status_code=entry.status_code,
    )


def insert_audit_records(connection: sa.Connection, records: Sequence[AuditRecord]) -> int:
    """Insert ``records`` as ``audit_logs`` rows (in the caller's transaction), skipping ids already there
    (a retried or replayed batch); returns the row count."""
    return insert_rows(connection, [attrs.asdict(record) for record in records], table=audit_logs)


# -- request side and service ----------------------------------------------------------------------------


@attrs.define(eq=False)
class AuditRecorder:
    """The :class:`~voidllm.admin.services.AuditSink` of an enabled audit log."""

    _recorder: Recorder[AuditRecord]

    def record(self, entry: AuditEntry) -> None:
        """Redact and queue ``entry`` without blocking; a full channel drops it (and counts the drop)."""
        self._recorder.record(record_of(entry))

    def close(self) -> None:
        self._recorder.close()


def open_audit_channel(buffer_size: int) -> tuple[AuditRecorder, BatchInbox[AuditRecord]]:
    """The bounded audit channel: the sink for :attr:`Services.audit` and the receive side for the writer."""
    recorder: Recorder[AuditRecord]
    receive: BatchInbox[AuditRecord]
    recorder, receive = open_batch_channel(buffer_size, AUDIT_METRICS)
    return AuditRecorder(recorder), receive


async def serve_audit_writer(*, store: BatchStore, receive: BatchInbox[AuditRecord], **options: Any) -> None:
    """Write audit records from ``receive`` in batches until cancelled, flushing on the way out:
    :func:`~voidllm.usage.batches.serve_batch_writer` (``options`` are its other arguments)."""
    await serve_batch_writer(
        store=store, receive=receive, insert=insert_audit_records, metrics=AUDIT_METRICS, **options
    )
