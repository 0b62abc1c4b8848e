"""The OTLP protobuf encoding of finished spans, written by hand for speed (an ``ExportTraceServiceRequest``).

Why: the official encoder (``opentelemetry-exporter-otlp-proto-common``) builds a protobuf message object per
span, attribute and value from Python, about ten times what writing the wire format directly costs, and the
export thread holds the GIL meanwhile, so that time is taken from the requests (measured: more than the
spans' creation). :func:`encode_request` writes the same message from the same ``ReadableSpan``\\ s:
``tests/test_tracing_export.py`` checks that the official decoder reads it as equal to the official
encoder's message, field for field. :class:`HttpSpanExporter` is the official OTLP/HTTP exporter with this
encoding in front of its own HTTP client (its retries, backoff, timeout, headers and TLS unchanged). The gRPC
exporter is used as it is, on the SDK's ``ReadableSpan`` objects made from the light spans
(:mod:`voidllm.tracing.spans`) in the export thread. Both kinds of span are encoded here: their fields have
the same names.

Grouping as in the official encoder: one ``ResourceSpans`` per resource, one ``ScopeSpans`` per
instrumentation scope; span flags carry the "has is-remote" bit and the "is remote" bit of a remote parent.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from voidllm.tracing.spans import FinishedSpan, readable

__all__ = ["HttpSpanExporter", "encode_request"]

_KINDS = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
_UINT64 = (1 << 64) - 1
_KEYS: dict[str, bytes] = {}
_KEYS_MAX = 4096


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte(s), the payload's length, the payload."""
    return tag + _varint(len(payload)) + payload


def _string(tag: bytes, text: str) -> bytes:
    return _field(tag, text.encode()) if text else b""


def _any(value: Any) -> bytes:
    """An ``AnyValue``."""
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _varint(value & _UINT64)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any(item)) for item in value))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()))
    return b""  # None: an empty AnyValue


def _key(key: str) -> bytes:
    encoded = _KEYS.get(key)
    if encoded is None:
        encoded = _field(b"\x0a", key.encode())
        if len(_KEYS) < _KEYS_MAX:
            _KEYS[key] = encoded
    return encoded


def _key_value(key: str, value: Any) -> bytes:
    return _key(key) + _field(b"\x12", _any(value))


_PAIRS: dict[tuple[str, type, Any], bytes] = {}
_PAIRS_MAX = 16384
_CACHED_TYPES = frozenset({str, int, bool})


def _attribute(tag: bytes, key: str, value: Any) -> bytes:
    """One attribute field; most repeat exactly (operation, provider, model, key ids, status), so the
    encodings of string, integer and boolean values are kept (bounded: emptied when full)."""
    kind = value.__class__
    if kind not in _CACHED_TYPES:
        return _field(tag, _key_value(key, value))
    cached = _PAIRS.get((key, kind, value))
    if cached is None:
        if len(_PAIRS) >= _PAIRS_MAX:
            _PAIRS.clear()
        cached = _PAIRS[key, kind, value] = _field(tag, _key_value(key, value))
    return cached


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    if not attributes:
        return b""
    plain = getattr(attributes, "_dict", attributes)  # BoundedAttributes: its dict, without a lock per key
    if tag == b"\x4a":
        return b"".join([_attribute(tag, key, value) for key, value in plain.items()])
    return b"".join([_field(tag, _key_value(key, value)) for key, value in plain.items()])


def _span(span: FinishedSpan) -> bytes:
    """One ``Span``, fields in number order."""
    context = span.context
    assert context is not None
    parent = span.parent
    parts = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big") + b"\x12\x08" + context.span_id.to_bytes(8, "big")
    ]
    trace_state = context.trace_state
    if trace_state is not None and trace_state._dict:  # its own dict: len() of a TraceState is a Python call
        parts.append(_string(b"\x1a", ",".join(f"{k}={v}" for k, v in trace_state.items())))
    if parent is not None:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    parts.append(_string(b"\x2a", span.name))
    parts.append(_kind(span.kind))
    if span.start_time:
        parts.append(b"\x39" + _FIXED64(span.start_time))
    if span.end_time:
        parts.append(b"\x41" + _FIXED64(span.end_time))
    parts.append(_attributes(b"\x4a", span._attributes))  # the span's own attributes, not a copy
    if span.dropped_attributes:
        parts.append(b"\x50" + _varint(span.dropped_attributes))
    for event in span.events:
        body = b"\x09" + _FIXED64(event.timestamp) + _string(b"\x12", event.name)
        body += _attributes(b"\x1a", event.attributes)
        if event.dropped_attributes:
            body += b"\x20" + _varint(event.dropped_attributes)
        parts.append(_field(b"\x5a", body))
    if span.dropped_events:
        parts.append(b"\x60" + _varint(span.dropped_events))
    for link in span.links:
        body = b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big")
        body += b"\x12\x08" + link.context.span_id.to_bytes(8, "big")
        body += _attributes(b"\x22", link.attributes)
        if link.dropped_attributes:
            body += b"\x28" + _varint(link.dropped_attributes)
        body += b"\x35" + _FIXED32(_flags(link.context.is_remote))  # field 6, fixed32
        parts.append(_field(b"\x6a", body))
    if span.dropped_links:
        parts.append(b"\x70" + _varint(span.dropped_links))
    parts.append(_status(span.status))
    parts.append(_REMOTE_PARENT if parent is not None and parent.is_remote else _LOCAL_PARENT)
    return b"".join(parts)


_REMOTE_PARENT = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE)  # field 16, fixed32
_LOCAL_PARENT = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE)
_KIND_FIELDS = {kind: b"\x30" + _varint(number) for kind, number in _KINDS.items()}
_UNSET_STATUS = _field(b"\x7a", b"")


def _kind(kind: SpanKind) -> bytes:
    # compared by identity: hashing an Enum member is a Python-level call
    if kind is SpanKind.SERVER:
        return _KIND_FIELDS[SpanKind.SERVER]
    if kind is SpanKind.CLIENT:
        return _KIND_FIELDS[SpanKind.CLIENT]
    return _KIND_FIELDS[kind]


def _status(status: Status) -> bytes:
    code = status.status_code
    if code is StatusCode.UNSET and not status.description:
        return _UNSET_STATUS
    body = _string(b"\x12", status.description or "")
    if code is not StatusCode.UNSET:
        body += b"\x18" + _varint(code.value)
    return _field(b"\x7a", body)


def _flags(remote_parent: bool) -> int:
    return _HAS_IS_REMOTE | (_IS_REMOTE if remote_parent else 0)


def encode_request(spans: Sequence[FinishedSpan]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` of ``spans``."""
    grouped: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}  # by identity: a Resource hashes
    for span in spans:  # by JSON-dumping its attributes
        resource, scope = span.resource, span.instrumentation_scope
        scopes = grouped.setdefault(id(resource), (resource, {}))[1]
        scopes.setdefault(id(scope), (scope, []))[1].append(_field(b"\x12", _span(span)))
    out = []
    for resource, scopes in grouped.values():
        body = _field(b"\x0a", _attributes(b"\x0a", resource.attributes))
        for scope, encoded in scopes.values():
            scope_body = b""
            if scope is not None:
                scope_body = _string(b"\x0a", scope.name) + _string(b"\x12", scope.version or "")
                scope_body += _attributes(b"\x1a", scope.attributes)
            scope_spans = _field(b"\x0a", scope_body) + b"".join(encoded)
            if scope is not None and scope.schema_url:
                scope_spans += _string(b"\x1a", scope.schema_url)
            body += _field(b"\x12", scope_spans)
        body += _string(b"\x1a", resource.schema_url)
        out.append(_field(b"\x0a", body))
    return b"".join(out)


class HttpSpanExporter(OTLPSpanExporter):
    """The official OTLP/HTTP span exporter, encoding with :func:`encode_request` (see the module
    docstring); if its HTTP client is not where this version keeps it, the official ``export`` runs."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        send: Callable[[bytes], Any] | None = getattr(getattr(self, "_client", None), "export", None)
        if send is None or getattr(self, "_shutdown", True):
            return super().export(readable(spans))
        result = send(encode_request(spans))
        return SpanExportResult.SUCCESS if getattr(result, "success", False) else SpanExportResult.FAILURE
