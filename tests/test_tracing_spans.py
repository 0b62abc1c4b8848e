"""The request path's tracer and spans (:mod:`voidllm.tracing.spans`): sampled as the SDK samples, the span
API's rules kept, and exported over gRPC as the SDK's spans to a real gRPC collector."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from voidllm import tracing
from voidllm.config.settings import OtelConfig
from voidllm.tracing import conventions as c
from voidllm.tracing.export import QueueingProcessor, build_exporter, open_tracing
from voidllm.tracing.otlp import encode_request
from voidllm.tracing.spans import ATTRIBUTES_MAX, LightSpan, LightTracer

PARENT_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def light_tracer(rate: float, processor: QueueingProcessor | None = None) -> LightTracer:
    from opentelemetry.sdk.resources import Resource

    return LightTracer(
        resource=Resource.create({"service.name": "t"}),
        scope=InstrumentationScope("voidllm", "1"),
        processor=processor or QueueingProcessor(100, 100),
        sample_rate=rate,
    )


def parent_context(*, sampled: bool, remote: bool) -> Any:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    span = NonRecordingSpan(SpanContext(PARENT_TRACE, 0x00F067AA0BA902B7, remote, flags))
    return trace.set_span_in_context(span, otel_context.Context())


@pytest.mark.parametrize("rate", [0.0, 0.001, 0.25, 0.5, 0.999, 1.0])
def test_roots_are_sampled_exactly_as_the_sdks_ratio_sampler(rate: float) -> None:
    tracer, sdk = light_tracer(rate), ParentBased(TraceIdRatioBased(rate))
    ids = random.Random(rate)
    picks = [ids.getrandbits(128) or 1 for _ in range(2000)]
    picks += [(1 << 64) * 5 + round(rate * (1 << 64)) + delta for delta in (-1, 0, 1)]  # at the bound
    chosen = iter(picks)
    tracer._trace_id = lambda: next(chosen)
    sampled = 0
    for trace_id in picks:
        span = tracer.start_span("root", context=otel_context.Context())
        expected = sdk.should_sample(None, trace_id, "root").decision is Decision.RECORD_AND_SAMPLE
        assert isinstance(span, LightSpan) is expected, hex(trace_id)
        assert span.get_span_context().trace_flags.sampled is expected
        assert span.get_span_context().trace_id == trace_id
        sampled += expected
    if 0.0 < rate < 1.0:
        assert 0 < sampled < len(picks)  # the cases above are not all alike


@pytest.mark.parametrize("remote", [True, False])
@pytest.mark.parametrize("sampled", [True, False])
@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_a_parents_decision_is_followed_remote_or_local(remote: bool, sampled: bool, rate: float) -> None:
    ctx = parent_context(sampled=sampled, remote=remote)
    span = light_tracer(rate).start_span("child", context=ctx, kind=SpanKind.CLIENT)
    sdk = ParentBased(TraceIdRatioBased(rate)).should_sample(ctx, PARENT_TRACE, "child")
    assert (sdk.decision is Decision.RECORD_AND_SAMPLE) is sampled
    assert isinstance(span, LightSpan) is sampled
    own = span.get_span_context()
    assert own.trace_id == PARENT_TRACE
    assert own.span_id not in (0, 0x00F067AA0BA902B7)
    assert own.trace_flags.sampled is sampled
    assert not own.is_remote
    if isinstance(span, LightSpan):
        assert span.parent is not None
        assert span.parent.span_id == 0x00F067AA0BA902B7
        assert span.parent.is_remote is remote


def test_the_parents_trace_state_is_kept() -> None:
    headers = [
        (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        (b"tracestate", b"vendor=abc"),
    ]
    with open_tracing(OtelConfig(enabled=True), QueueingProcessor(10, 10)):
        request = tracing.start_request("GET", "/", headers, "r")
        assert request is not None
        child = tracing.start_child("c", {})
        assert child is not None
        assert child.get_span_context().trace_state.to_header() == "vendor=abc"
        assert dict(tracing.traceparent_header(child))[b"tracestate"] == b"vendor=abc"
        tracing.end_span(child)
        request.finish()


def test_a_span_keeps_the_apis_rules() -> None:
    processor = QueueingProcessor(10, 10)
    span = light_tracer(1.0, processor).start_span("s", attributes={"a": 1})
    assert isinstance(span, LightSpan)
    assert span.is_recording()
    span.set_status(StatusCode.UNSET)  # changes nothing
    assert span.status.status_code is StatusCode.UNSET
    span.set_status(Status(StatusCode.ERROR, "boom"))
    assert (span.status.status_code, span.status.description) == (StatusCode.ERROR, "boom")
    span.set_status(StatusCode.OK)
    span.set_status(StatusCode.ERROR)  # OK is final
    assert span.status.status_code is StatusCode.OK
    span.record_exception(ValueError("a message that may hold content"))
    assert span.attributes[c.ERROR_TYPE] == "ValueError"
    assert not span.events  # no exception event: its message and stack stay out
    span.update_name("renamed")
    span.end()
    span.end()  # once only
    assert list(processor.queue) == [span]
    assert not span.is_recording()
    span.set_attribute("late", 1)
    span.set_attributes({"later": 2})
    span.add_event("late")
    span.update_name("too late")
    assert "late" not in span.attributes
    assert "later" not in span.attributes
    assert not span.events
    assert span.name == "renamed"
    assert span.attributes["a"] == 1


def test_attributes_past_the_limit_are_dropped_and_counted() -> None:
    span = light_tracer(1.0).start_span("s")
    assert isinstance(span, LightSpan)
    span.set_attributes({f"k{i}": i for i in range(ATTRIBUTES_MAX - 1)})
    span.set_attributes({"k0": "replaced", "new": 1, "over": 2})  # a known key still changes
    assert len(span.attributes) == ATTRIBUTES_MAX
    assert span.attributes["k0"] == "replaced"
    assert "over" not in span.attributes
    assert span.dropped_attributes == 1
    readable = span.to_readable()
    assert readable.dropped_attributes == 1
    assert dict(readable.attributes or {}) == dict(span.attributes)


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.got = threading.Event()

    def Export(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        self.got.set()
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def grpc_collector() -> Iterator[tuple[Collector, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    collector = Collector()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield collector, port
    finally:
        server.stop(grace=None)


def test_grpc_export_sends_the_light_spans_as_the_official_encoder_would(
    grpc_collector: tuple[Collector, int],
) -> None:
    collector, port = grpc_collector
    processor = QueueingProcessor(10, 10)
    with open_tracing(OtelConfig(enabled=True, service_name="grpc-svc"), processor):
        request = tracing.start_request("POST", "/v1/chat/completions", [], "req-g")
        assert request is not None
        attempt = tracing.start_child("chat m", {c.OUTCOME: "success", "n": 3})
        assert attempt is not None
        tracing.first_token(attempt, 0.5)
        tracing.end_span(attempt)
        request.status = 200
        request.finish()
    spans = processor.take()
    assert [type(span) for span in spans] == [LightSpan, LightSpan]
    settings = OtelConfig(
        enabled=True, protocol="grpc", endpoint=f"127.0.0.1:{port}", insecure=True, export_timeout=5
    )
    exporter = build_exporter(settings)
    try:
        assert exporter.export(spans).name == "SUCCESS"  # type: ignore[arg-type]
    finally:
        exporter.shutdown()
    assert collector.got.wait(5)
    (received,) = collector.requests
    assert received == trace_service_pb2.ExportTraceServiceRequest.FromString(encode_request(spans))
    names = [span.name for rs in received.resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert names == ["chat m", "POST"]
