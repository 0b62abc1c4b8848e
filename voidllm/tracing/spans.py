"""The tracer and spans of the request path: OpenTelemetry API spans without the SDK's per-span machinery.

Why hand-written: the SDK's ``Tracer.start_span`` and ``_Span`` cost about 45 µs of CPU per span on this
gateway's request path (measured: a request's server span and attempt span took 97 µs, a fifth of the whole
request's CPU), spent in the sampler's general interface, a lock and a ``BoundedAttributes`` per span, the
cleaning of every attribute value, and a span limits lookup per span. A span here is a slotted object that
implements the API's :class:`opentelemetry.trace.Span` (so every API helper, ``trace.set_span_in_context``
and the propagators take it), with a plain dict for attributes: VoidLLM only sets values the SDK keeps as
they are (strings, integers, floats, booleans, tuples of strings; at most about 20 per span, under the SDK's
default limit of 128, which is kept: attributes past it are counted as dropped). The rest is the SDK's own:

- ids from :class:`opentelemetry.sdk.trace.id_generator.RandomIdGenerator`;
- sampling by ``ParentBased(TraceIdRatioBased(rate))``, decided exactly as the SDK's samplers decide it (a
  parent's sampled flag is followed, remote or local; a root is sampled when the low 64 bits of its trace
  id are under ``rate`` times 2**64); a span sampled out is the API's ``NonRecordingSpan``, which still
  propagates;
- the resource (``Resource.create``, with the SDK's default attributes) and the instrumentation scope.

A finished span goes to the span processor's ``on_end`` as it is; :mod:`voidllm.tracing.otlp` encodes it
directly, and :meth:`LightSpan.to_readable` makes the SDK's ``ReadableSpan`` of it for exporters that want one
(gRPC), in the export thread. Exceptions are never recorded (their messages may echo content):
:meth:`LightSpan.record_exception` notes only the class name as ``error.type``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from voidllm.tracing import conventions as c

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.util.types import AnyValue, Attributes

__all__ = ["ATTRIBUTES_MAX", "EVENTS_MAX", "FinishedSpan", "LightSpan", "LightTracer", "readable"]

ATTRIBUTES_MAX = 128
"""The SDK's default limit of attributes per span (and per event or link)."""
EVENTS_MAX = 128
"""The SDK's default limit of events (and of links) per span."""
_TRACE_ID_LIMIT = (1 << 64) - 1
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_UNSET = Status(StatusCode.UNSET)


class LightTracer:
    """Starts spans sampled by ``ParentBased(TraceIdRatioBased(sample_rate))``: a :class:`LightSpan` when
    sampled in; each ended one goes to ``processor.on_end``."""

    def __init__(
        self,
        *,
        resource: Resource,
        scope: InstrumentationScope,
        processor: SpanProcessor,
        sample_rate: float,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError("sample_rate must be within 0.0 and 1.0")
        self.resource = resource
        self.scope = scope
        self.processor = processor
        self.sample_rate = sample_rate
        self.bound = round(sample_rate * (_TRACE_ID_LIMIT + 1))  # as TraceIdRatioBased.get_bound_for_rate
        ids = RandomIdGenerator()
        self._span_id = ids.generate_span_id
        self._trace_id = ids.generate_trace_id

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
    ) -> trace.Span:
        """A span under the current span of ``context`` (the current context when ``None``), started now."""
        current = trace.get_current_span(context).get_span_context()
        parent = current if current.is_valid else None
        if parent is not None:
            trace_id = parent.trace_id
            sampled = parent.trace_flags.sampled
            span_context = SpanContext(
                trace_id,
                self._span_id(),
                False,
                _SAMPLED if sampled else _NOT_SAMPLED,
                parent.trace_state,
            )
        else:
            trace_id = self._trace_id()
            sampled = trace_id & _TRACE_ID_LIMIT < self.bound
            flags = _SAMPLED if sampled else _NOT_SAMPLED
            span_context = SpanContext(trace_id, self._span_id(), False, flags)
        if not sampled:
            return NonRecordingSpan(span_context)
        span = LightSpan(self, name, span_context, parent, kind)
        if attributes:
            span.set_attributes(attributes)
        return span


class LightSpan(trace.Span):
    """A recording span of :class:`LightTracer`; the fields the OTLP encoder reads are named as on the SDK's
    ``ReadableSpan``."""

    __slots__ = (
        "_attributes",
        "_tracer",
        "context",
        "dropped_attributes",
        "dropped_events",
        "dropped_links",
        "end_time",
        "events",
        "kind",
        "links",
        "name",
        "parent",
        "start_time",
        "status",
    )

    def __init__(
        self,
        tracer: LightTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
    ) -> None:
        self._tracer = tracer
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.start_time = time.time_ns()
        self.end_time: int | None = None
        self._attributes: dict[str, Any] = {}
        self.events: list[Event] = []
        self.links: list[Link] = []
        self.status = _UNSET
        self.dropped_attributes = 0
        self.dropped_events = 0
        self.dropped_links = 0

    def __repr__(self) -> str:
        return f"<LightSpan {self.name!r} {self.context.span_id:016x}>"

    @property
    def resource(self) -> Resource:
        return self._tracer.resource

    @property
    def instrumentation_scope(self) -> InstrumentationScope:
        return self._tracer.scope

    @property
    def attributes(self) -> Mapping[str, Any]:
        return self._attributes

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attributes(self, attributes: Mapping[str, AnyValue]) -> None:
        if self.end_time is not None:
            return
        own = self._attributes
        if len(own) + len(attributes) <= ATTRIBUTES_MAX:
            own.update(attributes)
            return
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def set_attribute(self, key: str, value: AnyValue) -> None:
        if self.end_time is not None:
            return
        own = self._attributes
        if key in own or len(own) < ATTRIBUTES_MAX:
            own[key] = value
        else:
            self.dropped_attributes += 1

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        if self.end_time is not None:
            return
        if len(self.events) >= EVENTS_MAX:
            self.dropped_events += 1
            return
        self.events.append(Event(name, _bounded(attributes), timestamp or time.time_ns()))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        if self.end_time is not None or not context.is_valid:
            return
        if len(self.links) >= EVENTS_MAX:
            self.dropped_links += 1
            return
        self.links.append(Link(context, _bounded(attributes)))

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """As the SDK: ``OK`` is final, ``UNSET`` changes nothing, a description only goes with ``ERROR``."""
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self.status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Notes ``error.type`` (the class name) only: an exception's message and stack may echo content."""
        self.set_attribute(c.ERROR_TYPE, type(exception).__name__)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time or time.time_ns()
        self._tracer.processor.on_end(self)  # type: ignore[arg-type]

    def to_readable(self) -> ReadableSpan:
        """The SDK's ``ReadableSpan`` of this span (for exporters that take only those: gRPC); what was
        dropped is counted as the SDK counts it (in its bounded collections)."""
        attributes: Mapping[str, Any] = self._attributes
        if self.dropped_attributes:
            attributes = BoundedAttributes(ATTRIBUTES_MAX, attributes, immutable=False)
            attributes.dropped = self.dropped_attributes
        return ReadableSpan(
            name=self.name,
            context=self.context,
            parent=self.parent,
            resource=self._tracer.resource,
            attributes=attributes,
            events=_bounded_list(self.events, self.dropped_events),
            links=_bounded_list(self.links, self.dropped_links),
            kind=self.kind,
            status=self.status,
            start_time=self.start_time,
            end_time=self.end_time,
            instrumentation_scope=self._tracer.scope,
        )


def _bounded_list(items: list[Any], dropped: int) -> Sequence[Any]:
    if not dropped:
        return items
    bounded = BoundedList.from_seq(EVENTS_MAX, items)
    bounded.dropped = dropped
    return bounded


def _bounded(attributes: Attributes) -> dict[str, Any]:
    if not attributes:
        return {}
    return dict(list(attributes.items())[:ATTRIBUTES_MAX])


FinishedSpan = ReadableSpan | LightSpan
"""What a span processor's ``on_end`` is given: a :class:`LightSpan`, or the SDK's span in tests."""


def readable(spans: Sequence[Any]) -> list[ReadableSpan]:
    """``spans`` as the SDK's ``ReadableSpan``\\ s (light spans converted, the SDK's own kept)."""
    return [span.to_readable() if isinstance(span, LightSpan) else span for span in spans]
