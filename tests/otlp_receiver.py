"""The OTLP/HTTP receiver the tracing tests export to (:mod:`voidllm.testing.otlp_sink`), and helpers to read
the traces it received."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from voidllm.testing.otlp_sink import OtlpSink, ReceivedSpan, open_otlp_sink

__all__ = ["OtlpSink", "ReceivedSpan", "by_name", "children", "otel_settings", "receiver", "trace_of"]


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpSink]:
    async with open_otlp_sink() as sink:
        yield sink


def otel_settings(endpoint: str, *, extra: str = "", export_timeout: str = "2s") -> str:
    """``settings.otel`` lines for :func:`tests.gateway.make_config`: on, exporting every 10 ms."""
    lines = (
        f"otel:\n  enabled: true\n  endpoint: {endpoint}\n  export_interval: 10ms\n"
        f"  export_timeout: {export_timeout}\n"
    )
    return lines + "".join(f"  {line}\n" for line in extra.splitlines() if line)


def by_name(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.name == name]


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [span for span in spans if span.parent_id == parent.span_id and span.trace_id == parent.trace_id]


def trace_of(spans: list[ReceivedSpan], request_id: str) -> list[ReceivedSpan]:
    """Every span of the trace whose server span has this ``voidllm.request_id``."""
    server = next(s for s in spans if s.attributes.get("voidllm.request_id") == request_id)
    return [span for span in spans if span.trace_id == server.trace_id]
