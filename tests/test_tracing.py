"""OpenTelemetry traces end to end: a real gateway exports to a real OTLP/HTTP receiver
(:mod:`tests.otlp_receiver`) and the spans that arrive are checked: parents across the request's tasks,
GenAI attributes, propagation to and from the outside, sampling, a dead collector, tracing off."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import httpx
import orjson
import pytest
import trio

from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway
from tests.otlp_receiver import OtlpSink, ReceivedSpan, children, otel_settings, receiver, trace_of
from voidllm import logs, tracing
from voidllm.config.settings import OtelConfig
from voidllm.metrics import REGISTRY
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream
from voidllm.tracing.export import QueueingProcessor, open_tracing

__all__ = ["receiver"]  # the fixture, used by name

CHAT = "/v1/chat/completions"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def base(mock: MockUpstream) -> str:
    assert mock.base_url is not None
    return mock.base_url


def two_deployments(first: MockUpstream | str, second: MockUpstream, extra: str = "") -> str:
    url = first if isinstance(first, str) else base(first)
    return f"""models:
  - name: m
    strategy: priority
{extra}    deployments:
      - {{name: d0, provider: openai, base_url: "{url}", priority: 0}}
      - {{name: d1, provider: openai, base_url: "{base(second)}", priority: 1}}
"""


async def chat(gw: RunningGateway, model: str = "m", **extra: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {gw.api_key()}"}
    headers.update({k: str(v) for k, v in extra.pop("headers", {}).items()})  # type: ignore[attr-defined]
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    return await gw.client.post(CHAT, headers=headers, json=body)


def server_span(spans: list[ReceivedSpan], request_id: str) -> ReceivedSpan:
    return next(
        s for s in spans if s.kind == "SERVER" and s.attributes.get("voidllm.request_id") == request_id
    )


async def wait_trace(receiver: OtlpSink, request_id: str, count: int) -> list[ReceivedSpan]:
    def done(spans: list[ReceivedSpan]) -> bool:
        server = [s for s in spans if s.attributes.get("voidllm.request_id") == request_id]
        return bool(server) and len([s for s in spans if s.trace_id == server[0].trace_id]) >= count

    with trio.fail_after(10):
        await receiver.wait_spans(done)
    return trace_of(receiver.spans, request_id)


async def test_a_failover_is_one_trace_with_a_client_span_per_attempt(
    sqlite_dsn: str, receiver: OtlpSink
) -> None:
    async with open_mock_upstream(Behaviour(status=503)) as down, open_mock_upstream() as up:
        config = make_config(sqlite_dsn, two_deployments(down, up), settings=otel_settings(receiver.url))
        async with run_gateway(config) as gw:
            response = await chat(gw)
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            spans = await wait_trace(receiver, request_id, 3)
    server = server_span(spans, request_id)
    assert server.name == "chat m"
    assert server.parent_id == ""
    assert server.schema_url == "https://opentelemetry.io/schemas/1.44.0"
    assert server.resource["service.name"] == "voidllm"
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["url.path"] == CHAT
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["gen_ai.operation.name"] == "chat"
    assert server.attributes["gen_ai.request.model"] == "m"
    assert server.attributes["gen_ai.response.model"] == "m"
    assert server.attributes["gen_ai.provider.name"] == "openai"
    assert server.attributes["gen_ai.usage.input_tokens"] == 10
    assert server.attributes["gen_ai.usage.output_tokens"] == 8
    assert server.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert server.attributes["voidllm.key_id"]
    assert server.attributes["voidllm.org_id"]
    attempts = sorted(children(spans, server), key=lambda s: s.attributes["voidllm.attempt"])
    assert [(a.kind, a.name) for a in attempts] == [("CLIENT", "chat m"), ("CLIENT", "chat m")]
    first, second = (a.attributes for a in attempts)
    assert first["voidllm.deployment"] == "m/d0"
    assert first["voidllm.attempt"] == 1
    assert first["voidllm.outcome"] == "status_5xx"
    assert first["http.response.status_code"] == 503
    assert "voidllm.failover" not in first  # flags are set only when true
    assert attempts[0].status == "ERROR"
    assert second["voidllm.deployment"] == "m/d1"
    assert second["voidllm.attempt"] == 2
    assert second["voidllm.outcome"] == "ok"
    assert second["voidllm.failover"] is True
    assert "voidllm.fallback" not in second
    assert "voidllm.hedge" not in second
    assert second["gen_ai.provider.name"] == "openai"
    assert second["server.address"] == "127.0.0.1"
    assert second["server.port"] == up.port
    assert attempts[1].status == "UNSET"
    # each upstream request carried its own attempt's span as parent
    for mock, attempt in ((down, attempts[0]), (up, attempts[1])):
        parent = mock.requests[-1].header("traceparent")
        assert parent is not None
        match = TRACEPARENT.fullmatch(parent)
        assert match is not None
        assert match.groups()[:2] == (attempt.trace_id, attempt.span_id)
        assert int(match.group(3), 16) & 1  # sampled


async def test_a_hedge_that_lost_is_cancelled_not_an_error(sqlite_dsn: str, receiver: OtlpSink) -> None:
    async with open_mock_upstream(Behaviour(latency=5.0)) as slow, open_mock_upstream() as fast:
        models = two_deployments(slow, fast, extra="    hedge_after: 100ms\n")
        config = make_config(sqlite_dsn, models, settings=otel_settings(receiver.url))
        async with run_gateway(config) as gw:
            response = await chat(gw)
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            spans = await wait_trace(receiver, request_id, 3)
    attempts = {s.attributes["voidllm.attempt"]: s for s in children(spans, server_span(spans, request_id))}
    assert attempts[1].attributes["voidllm.outcome"] == "cancelled"
    assert attempts[1].status == "UNSET"
    assert "voidllm.hedge" not in attempts[1].attributes
    assert attempts[2].attributes["voidllm.outcome"] == "ok"
    assert attempts[2].attributes["voidllm.hedge"] is True
    assert "voidllm.failover" not in attempts[2].attributes


async def test_a_connection_failure_is_an_attempt_with_its_error_type(
    sqlite_dsn: str, receiver: OtlpSink
) -> None:
    async with open_mock_upstream() as up:
        dead = f"http://127.0.0.1:{await _closed_port()}/v1"
        config = make_config(sqlite_dsn, two_deployments(dead, up), settings=otel_settings(receiver.url))
        async with run_gateway(config) as gw:
            response = await chat(gw)
            request_id = response.headers["x-request-id"]
            spans = await wait_trace(receiver, request_id, 3)
    attempts = {s.attributes["voidllm.attempt"]: s for s in children(spans, server_span(spans, request_id))}
    assert attempts[1].attributes["voidllm.outcome"] == "UpstreamConnectError"
    assert attempts[1].attributes["error.type"] == "UpstreamConnectError"
    assert "http.response.status_code" not in attempts[1].attributes
    assert attempts[2].attributes["voidllm.outcome"] == "ok"


async def _closed_port() -> int:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port: int = listeners[0].socket.getsockname()[1]
    for listener in listeners:
        await listener.aclose()
    return port


async def test_a_stream_has_its_first_token_event_on_the_attempt(sqlite_dsn: str, receiver: OtlpSink) -> None:
    async with open_mock_upstream(Behaviour(stream_chunks=3)) as up:
        config = make_config(
            sqlite_dsn, "models:" + model_yaml("m", base(up)), settings=otel_settings(receiver.url)
        )
        async with run_gateway(config) as gw:
            response = await chat(gw, stream=True)
            assert response.status_code == 200
            assert response.text.endswith("data: [DONE]\n\n")
            request_id = response.headers["x-request-id"]
            spans = await wait_trace(receiver, request_id, 2)
    server = server_span(spans, request_id)
    assert server.attributes["gen_ai.request.stream"] is True
    assert server.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert server.attributes["gen_ai.usage.output_tokens"] > 0
    (attempt,) = children(spans, server)
    (event,) = attempt.events
    assert event[0] == "gen_ai.first_token"
    ttft = event[1]["gen_ai.response.time_to_first_chunk"]
    assert 0 < ttft == attempt.attributes["gen_ai.response.time_to_first_chunk"]
    assert server.attributes["gen_ai.response.time_to_first_chunk"] == ttft


async def test_an_incoming_traceparent_is_continued(sqlite_dsn: str, receiver: OtlpSink) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with open_mock_upstream() as up:
        config = make_config(
            sqlite_dsn, "models:" + model_yaml("m", base(up)), settings=otel_settings(receiver.url)
        )
        async with run_gateway(config) as gw:
            response = await chat(
                gw, headers={"traceparent": f"00-{trace_id}-{parent_id}-01", "tracestate": "vendor=abc"}
            )
            request_id = response.headers["x-request-id"]
            spans = await wait_trace(receiver, request_id, 2)
            sent = up.requests[-1]
    server = server_span(spans, request_id)
    assert (server.trace_id, server.parent_id) == (trace_id, parent_id)
    (attempt,) = children(spans, server)
    assert sent.header("traceparent") == f"00-{trace_id}-{attempt.span_id}-01"
    assert sent.header("tracestate") == "vendor=abc"


async def test_an_unsampled_incoming_trace_exports_nothing_but_still_propagates(
    sqlite_dsn: str, receiver: OtlpSink
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with open_mock_upstream() as up:
        config = make_config(
            sqlite_dsn, "models:" + model_yaml("m", base(up)), settings=otel_settings(receiver.url)
        )
        async with run_gateway(config) as gw:
            response = await chat(gw, headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-00"})
            assert response.status_code == 200
            sent = up.requests[-1].header("traceparent")
            # a sampled request afterwards is exported: then the unsampled one would have been too
            marker = await chat(gw)
            await wait_trace(receiver, marker.headers["x-request-id"], 2)
    match = TRACEPARENT.fullmatch(sent or "")
    assert match is not None
    assert match.group(1) == trace_id
    assert not int(match.group(3), 16) & 1
    assert all(span.trace_id != trace_id for span in receiver.spans)


async def test_sample_rate_zero_exports_nothing(sqlite_dsn: str, receiver: OtlpSink) -> None:
    async with open_mock_upstream() as up:
        settings = otel_settings(receiver.url, extra="sample_rate: 0")
        config = make_config(sqlite_dsn, "models:" + model_yaml("m", base(up)), settings=settings)
        async with run_gateway(config) as gw:
            for _ in range(5):
                assert (await chat(gw)).status_code == 200
            sent = up.requests[-1].header("traceparent")
    # the gateway has stopped: its export service flushed whatever was queued
    assert receiver.spans == []
    assert receiver.requests == 0
    match = TRACEPARENT.fullmatch(sent or "")
    assert match is not None
    assert not int(match.group(3), 16) & 1  # not sampled: the upstream need not record either


async def test_tracing_off_makes_no_spans_and_adds_no_header(sqlite_dsn: str, receiver: OtlpSink) -> None:
    async with open_mock_upstream() as up:
        config = make_config(sqlite_dsn, "models:" + model_yaml("m", base(up)))
        async with run_gateway(config) as gw:
            assert (
                await chat(
                    gw, headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
                )
            ).status_code == 200
            sent = up.requests[-1]
    assert sent.header("traceparent") is None
    assert receiver.requests == 0


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_a_dead_collector_costs_requests_nothing_and_is_counted(sqlite_dsn: str) -> None:
    dead = f"http://127.0.0.1:{await _closed_port()}"
    failures = _sample("voidllm_otel_export_failures_total")
    dropped = _sample("voidllm_otel_spans_dropped_total", {"reason": "export_failed"})
    async with open_mock_upstream() as up:
        settings = otel_settings(dead, export_timeout="200ms")
        config = make_config(sqlite_dsn, "models:" + model_yaml("m", base(up)), settings=settings)
        async with run_gateway(config) as gw:
            for _ in range(20):
                assert (await chat(gw)).status_code == 200
    # stopping flushed the queue once more, to the dead collector: every span was counted as dropped
    assert _sample("voidllm_otel_export_failures_total") > failures
    assert _sample("voidllm_otel_spans_dropped_total", {"reason": "export_failed"}) - dropped == 40


async def test_a_refusing_collector_is_counted_too(sqlite_dsn: str, receiver: OtlpSink) -> None:
    receiver.status = 503
    failures = _sample("voidllm_otel_export_failures_total")
    exported = _sample("voidllm_otel_spans_exported_total")
    async with open_mock_upstream() as up:
        settings = otel_settings(receiver.url, export_timeout="200ms")
        config = make_config(sqlite_dsn, "models:" + model_yaml("m", base(up)), settings=settings)
        async with run_gateway(config) as gw:
            assert (await chat(gw)).status_code == 200
            with trio.fail_after(10):  # the first export, refused; not left to the shutdown's last flush
                await receiver.wait_requests(1)
    assert _sample("voidllm_otel_export_failures_total") > failures
    assert _sample("voidllm_otel_spans_exported_total") == exported


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """Logging as ``voidllm serve`` sets it up (json, debug) into a buffer; restored afterwards."""
    touched = ["", "voidllm", *logs._QUIET]
    levels = {name: logging.getLogger(name).level for name in touched}
    handlers = list(logging.getLogger().handlers)
    buffer = io.StringIO()
    logs.configure_logging("debug", "json", stream=buffer)
    yield buffer
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


async def test_log_lines_of_a_request_carry_its_trace_and_span_ids(
    sqlite_dsn: str, receiver: OtlpSink, log_buffer: io.StringIO
) -> None:
    async with open_mock_upstream(Behaviour(status=503)) as down, open_mock_upstream() as up:
        models = (
            "models:" + model_yaml("a", base(down), extra="    fallback: b\n") + model_yaml("b", base(up))
        )
        config = make_config(sqlite_dsn, models, settings=otel_settings(receiver.url))
        async with run_gateway(config) as gw:
            response = await chat(gw, model="a")
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            spans = await wait_trace(receiver, request_id, 3)
    server = server_span(spans, request_id)
    attempts = {s.attributes["gen_ai.request.model"]: s for s in children(spans, server)}
    assert "voidllm.fallback" not in attempts["a"].attributes
    assert attempts["b"].attributes["voidllm.fallback"] is True
    assert server.attributes["gen_ai.request.model"] == "a"
    assert server.attributes["gen_ai.response.model"] == "b"
    lines = [orjson.loads(line) for line in log_buffer.getvalue().splitlines()]
    (fallback,) = [line for line in lines if line["msg"] == "falling back"]
    assert (fallback["trace_id"], fallback["span_id"]) == (server.trace_id, server.span_id)
    assert all("trace_id" not in line for line in lines if line["msg"] == "listening")


async def test_text_log_lines_carry_the_ids_too(receiver: OtlpSink) -> None:
    buffer = io.StringIO()
    logs.configure_logging("info", "text", stream=buffer)
    try:
        processor = QueueingProcessor(16, 16)
        with open_tracing(OtelConfig(enabled=True), processor):
            traced = tracing.start_request("GET", "/x", [], "req-1")
            assert traced is not None
            logging.getLogger("voidllm.test").info("inside")
            traced.finish()
            logging.getLogger("voidllm.test").info("outside")
        (span,) = processor.queue
    finally:
        logs.configure_logging("info", "json")
    inside, outside = buffer.getvalue().splitlines()
    context = span.get_span_context()
    assert context is not None
    assert inside.endswith(f"inside trace_id={context.trace_id:032x} span_id={context.span_id:016x}")
    assert outside.endswith("outside")
