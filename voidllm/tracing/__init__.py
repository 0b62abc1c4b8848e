"""OpenTelemetry traces of requests, upstream attempts and MCP tool calls (``settings.otel``), never content.

When tracing is off (the default) nothing here does any work: :data:`state` holds no tracer, every helper
returns at its first line, no span object is made, no context is touched, no header is added. When it is on
(:func:`voidllm.tracing.export.open_tracing`, around the supervisor in ``server.py``), the tracer of
:mod:`voidllm.tracing.spans` makes the spans (the API's spans, sampled and identified as the SDK does it,
without the SDK's per-span cost) and a span processor hands each finished one to a bounded queue that a
supervised service exports (:mod:`voidllm.tracing.export`): the request path never waits for a collector.

Spans (names and attributes in :mod:`voidllm.tracing.conventions`, semantic conventions 1.44.0):

- ``SERVER`` per HTTP request (``web/edge.py``), continuing an incoming W3C ``traceparent``/``tracestate``;
  on the proxied ``/v1`` routes renamed ``"{gen_ai.operation.name} {gen_ai.request.model}"`` and given the
  GenAI request, response and usage attributes and the key, team and organisation ids (``proxy/handler.py``);
- ``CLIENT`` per upstream attempt (``proxy/attempts.py``), a child of the request's span although it runs in
  its own task (trio copies the spawning task's context into the new task): attempt number, deployment,
  provider, outcome, failover/fallback/hedge flags, the upstream's address; the upstream request carries its
  ``traceparent``; a stream's first data is its ``gen_ai.first_token`` event;
- ``execute_tool {tool}`` per MCP tool call through the gateway, and ``execute_code`` per Code Mode run with
  its tool calls as children (started and ended on the trio side, never in the sandbox's worker thread).

Log lines written while a span is current carry its ``trace_id`` and ``span_id`` (:func:`current_ids`, read by
:mod:`voidllm.logs`). Exceptions are never recorded on spans (their messages may echo content): an error is
``error.type``, the class name, and the span's status.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from voidllm.tracing import conventions as c

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from voidllm.tracing.spans import LightTracer

__all__ = [
    "RequestTrace",
    "TracingState",
    "active",
    "current_ids",
    "current_traceparent",
    "end_span",
    "first_token",
    "request_span",
    "start_child",
    "start_request",
    "state",
    "traceparent_header",
]

PATH_MAX = 256
"""At most this many characters of a request's path go into ``url.path``."""

_PROPAGATOR = TraceContextTextMapPropagator()
_REQUEST_SPAN: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "voidllm_request_span", default=None
)


@attrs.define(eq=False)
class TracingState:
    """The process's tracer, ``None`` while tracing is off (the one check the hot path makes)."""

    tracer: LightTracer | None = None


state = TracingState()


def active() -> bool:
    """Whether tracing is on in this process."""
    return state.tracer is not None


@attrs.define(eq=False)
class RequestTrace:
    """The server span of one request and the context tokens that made it current."""

    span: Span
    _token: object
    _request_token: contextvars.Token[Span | None]
    status: int = 0

    def finish(self, *, error_type: str | None = None) -> None:
        """Set the response status (an error for 5xx or ``error_type``), end the span, restore the context."""
        span = self.span
        if self.status:
            span.set_attributes({c.HTTP_RESPONSE_STATUS_CODE: self.status})
        if error_type is not None:
            span.set_attributes({c.ERROR_TYPE: error_type})
            span.set_status(Status(StatusCode.ERROR))
        elif self.status >= 500:
            span.set_attributes({c.ERROR_TYPE: str(self.status)})
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        _REQUEST_SPAN.reset(self._request_token)
        otel_context.detach(self._token)  # type: ignore[arg-type]


def start_request(
    method: str, path: str, headers: Iterable[tuple[bytes, bytes]], request_id: str
) -> RequestTrace | None:
    """Start the ``SERVER`` span of a request and make it current (``None`` while tracing is off).

    Named by the method alone, as the HTTP conventions want when there is no route template (the proxy
    renames its requests' spans); ``path`` is the path without the query, of which the first
    :data:`PATH_MAX` characters are kept. An incoming ``traceparent`` (with its ``tracestate``) makes it a
    child of the caller's span.
    """
    tracer = state.tracer
    if tracer is None:
        return None
    parent = _incoming_context(headers)
    span = tracer.start_span(method, context=parent, kind=SpanKind.SERVER)
    span.set_attributes(
        {c.HTTP_REQUEST_METHOD: method, c.URL_PATH: path[:PATH_MAX], c.REQUEST_ID: request_id}
    )
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    return RequestTrace(span, token, _REQUEST_SPAN.set(span))


def _incoming_context(headers: Iterable[tuple[bytes, bytes]]) -> otel_context.Context | None:
    carrier: dict[str, str] | None = None
    for name, value in headers:
        if name == b"traceparent" or name == b"tracestate":
            carrier = carrier or {}
            carrier[name.decode()] = value.decode("latin-1")
    if carrier is None or "traceparent" not in carrier:
        return None
    return _PROPAGATOR.extract(carrier, context=otel_context.Context())


def request_span() -> Span | None:
    """The current request's ``SERVER`` span (``None`` while tracing is off or outside a request)."""
    return _REQUEST_SPAN.get()


def start_child(name: str, attributes: Mapping[str, Any], *, kind: SpanKind = SpanKind.CLIENT) -> Span | None:
    """Start a span under the current one (not made current: see :func:`use`); ``None`` while off."""
    tracer = state.tracer
    if tracer is None:
        return None
    span = tracer.start_span(name, kind=kind, attributes=attributes)
    span.set_attributes(attributes)  # after the sampler, which would copy them
    return span


def use(span: Span) -> object:
    """Make ``span`` current in this task; give the result to :func:`end_span`."""
    return otel_context.attach(trace.set_span_in_context(span))


def end_span(span: Span, *, error_type: str | None = None, token: object = None) -> None:
    """End ``span`` (an error when ``error_type``: a class name or an outcome, never a message)."""
    if error_type is not None:
        span.set_attributes({c.ERROR_TYPE: error_type})
        span.set_status(Status(StatusCode.ERROR))
    span.end()
    if token is not None:
        otel_context.detach(token)  # type: ignore[arg-type]


def traceparent_header(span: Span) -> list[tuple[bytes, bytes]]:
    """The W3C ``traceparent`` (and ``tracestate``) of ``span`` as ASGI headers, for its upstream request."""
    ctx = span.get_span_context()
    value = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}".encode()
    headers = [(b"traceparent", value)]
    if ctx.trace_state:
        headers.append((b"tracestate", ctx.trace_state.to_header().encode("latin-1")))
    return headers


def current_traceparent() -> dict[str, str]:
    """The current span's ``traceparent`` (and ``tracestate``) as HTTP headers for an outgoing request; empty
    while tracing is off or outside a span."""
    if state.tracer is None:
        return {}
    span = trace.get_current_span()
    if not span.get_span_context().is_valid:
        return {}
    return {name.decode(): value.decode("latin-1") for name, value in traceparent_header(span)}


def first_token(span: Span | None, seconds: float) -> None:
    """Note on an attempt's span that its stream's first data arrived, ``seconds`` after the request came."""
    if span is not None:
        span.set_attributes({c.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: seconds})
        span.add_event(c.FIRST_TOKEN_EVENT, {c.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: seconds})


def current_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` in hex of the current span, for log lines; ``None`` when off or outside."""
    if state.tracer is None:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def is_recording(span: Span | None) -> bool:
    """Whether ``span`` records (sampled in); a non-recording span still propagates its context."""
    return span is not None and not isinstance(span, NonRecordingSpan) and span.is_recording()
