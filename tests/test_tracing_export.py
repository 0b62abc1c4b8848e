"""The span queue (:mod:`voidllm.tracing.export`) and the hand-written OTLP encoding (:mod:`.otlp`).

The encoding is held to the official one: the official protobuf classes decode ours to a message equal to
what the official encoder builds from the same spans, for every kind of field a span can have."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import cast

import trio
import trio.lowlevel
import trio.testing
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from voidllm import tracing
from voidllm.config.settings import OtelConfig
from voidllm.metrics import REGISTRY
from voidllm.tracing.export import QueueingProcessor, build_exporter, open_tracing, serve_span_export
from voidllm.tracing.otlp import HttpSpanExporter, encode_request
from voidllm.tracing.spans import ATTRIBUTES_MAX, EVENTS_MAX, FinishedSpan, readable

REMOTE = [
    (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    (b"tracestate", b"vendor=abc,other=x y"),
]


def spans_of_every_shape() -> list[FinishedSpan]:
    processor = QueueingProcessor(1000, 1000)
    with open_tracing(OtelConfig(enabled=True, service_name="svc"), processor):
        for headers in ([], REMOTE):
            request = tracing.start_request("POST", "/v1/chat/completions", headers, "req-1")
            assert request is not None
            attempt = tracing.start_child("chat m", {"a.str": "x", "a.int": 1, "a.bool": True, "a.neg": -7})
            assert attempt is not None
            attempt.set_attributes(
                {"a.float": 0.25, "a.big": 2**62, "a.empty": "", "a.zero": 0, "a.false": False}
            )
            attempt.set_attribute("a.strs", ("stop", "length"))
            attempt.set_attribute("a.ints", (1, 2, 3))
            attempt.set_attribute("a.unicode", "größe ✓")
            tracing.first_token(attempt, 0.0125)
            attempt.add_link(request.span.get_span_context(), {"why": "test"})
            tracing.end_span(attempt, error_type="UpstreamConnectError")
            internal = tracing.start_child("inner", {}, kind=SpanKind.INTERNAL)
            assert internal is not None
            internal.set_attributes({f"many.{i}": i for i in range(ATTRIBUTES_MAX + 3)})  # 3 dropped
            for i in range(EVENTS_MAX + 2):  # 2 dropped
                internal.add_event(f"e{i}", {"i": i}, timestamp=1_700_000_000_000_000_000 + i)
            tracing.end_span(internal)
            request.status = 503
            request.finish()
    return list(processor.queue)


def test_the_encoding_decodes_equal_to_the_official_one() -> None:
    spans = spans_of_every_shape()
    assert len(spans) == 6
    assert any(span.events for span in spans)
    assert any(span.links for span in spans)
    assert any(span.parent is not None and span.parent.is_remote for span in spans)
    assert any(span.dropped_attributes == 3 and span.dropped_events == 2 for span in spans)
    official = encode_spans(readable(spans))  # the SDK's ReadableSpans the gRPC exporter is given
    assert all(isinstance(span, ReadableSpan) for span in readable(spans))
    ours = ExportTraceServiceRequest.FromString(encode_request(spans))
    assert ours == official
    assert encode_request(spans) == official.SerializeToString()  # the same bytes, even
    assert encode_request(readable(spans)) == official.SerializeToString()  # and of the SDK's spans


def test_repeated_values_are_encoded_alike_and_types_kept_apart() -> None:
    spans = spans_of_every_shape()
    first, again = encode_request(spans), encode_request(spans)  # the second from the kept encodings
    assert first == again
    decoded = ExportTraceServiceRequest.FromString(again)
    values = {
        kv.key: kv.value
        for resource in decoded.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
        for kv in span.attributes
    }
    assert values["a.bool"].WhichOneof("value") == "bool_value"  # True and 1 are equal keys of a dict
    assert values["a.int"].WhichOneof("value") == "int_value"
    assert values["a.neg"].int_value == -7


def test_an_empty_batch_is_an_empty_request() -> None:
    assert encode_request([]) == b""
    assert ExportTraceServiceRequest.FromString(b"") == encode_spans([])


def test_http_protocol_uses_the_faster_encoding() -> None:
    exporter = build_exporter(OtelConfig(enabled=True, endpoint="http://127.0.0.1:9/"))
    try:
        assert isinstance(exporter, HttpSpanExporter)
    finally:
        exporter.shutdown()


def test_a_full_queue_drops_and_counts() -> None:
    before = REGISTRY.get_sample_value("voidllm_otel_spans_dropped_total", {"reason": "queue_full"}) or 0.0
    processor = QueueingProcessor(queue_size=3, batch_size=2)
    with open_tracing(OtelConfig(enabled=True), processor):
        for _ in range(5):
            span = tracing.start_child("x", {})
            assert span is not None
            span.end()
    assert len(processor.queue) == 3
    after = REGISTRY.get_sample_value("voidllm_otel_spans_dropped_total", {"reason": "queue_full"})
    assert after == before + 2
    assert len(processor.take()) == 2
    assert len(processor.take()) == 1
    assert processor.take() == []


def test_tracing_off_makes_nothing() -> None:
    assert not tracing.active()
    assert tracing.start_request("GET", "/", REMOTE, "r") is None
    assert tracing.start_child("x", {}) is None
    assert tracing.current_traceparent() == {}
    assert tracing.current_ids() is None
    assert tracing.request_span() is None


async def _settle(condition: Callable[[], bool] = lambda: False) -> None:
    """Checkpoints until ``condition`` holds (an export runs in a worker thread), at most 2,000 of them; the
    mock clock does not move meanwhile."""
    for _ in range(2000):
        if condition():
            return
        await trio.lowlevel.checkpoint()


async def test_a_steady_flow_goes_out_in_whole_batches(mock_clock: trio.testing.MockClock) -> None:
    """Woken by a full batch, the service exports whole batches only: spans that end while a batch is being
    exported wait for the next full batch or the interval, instead of going out a few at a time (each export
    is a whole HTTP request)."""
    processor = QueueingProcessor(queue_size=100, batch_size=4)
    sizes: list[int] = []

    class Exporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            sizes.append(len(spans))
            processor.on_end(cast("FinishedSpan", object()))  # a request ended meanwhile
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    service = partial(
        serve_span_export, processor=processor, exporter=Exporter(), interval=10, export_timeout=1
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(service)
        for _ in range(4):
            processor.on_end(cast("FinishedSpan", object()))
        await _settle(lambda: sizes == [4])
        await _settle()  # time for more exports, had any been due
        assert sizes == [4]  # not [4, 1, 1, ...]: each span that ended during an export waits
        for _ in range(3):
            processor.on_end(cast("FinishedSpan", object()))
        await _settle(lambda: len(sizes) == 2)
        await _settle()
        assert sizes == [4, 4]
        mock_clock.jump(10)  # the interval: what is queued goes, however few
        await _settle(lambda: len(sizes) == 3)
        await _settle()
        assert sizes == [4, 4, 1]
        nursery.cancel_scope.cancel()
    assert sizes == [4, 4, 1, 1]  # shutdown exports the rest
