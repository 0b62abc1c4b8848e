"""A small OTLP/HTTP trace collector: a real HTTP/1.1 server (trio + h11) that accepts
``POST /v1/traces`` and decodes each ``ExportTraceServiceRequest`` with ``opentelemetry-proto``.

The tracing tests export to it and read what arrived: :attr:`OtlpSink.spans` (decoded into
:class:`ReceivedSpan`, attributes as plain Python values) and :attr:`OtlpSink.bodies` (the raw request bodies,
which the zero-knowledge tests search for their marker). ``status`` lets a test make the collector refuse
(503); :meth:`OtlpSink.wait_spans` waits until enough spans arrived. ``scripts/bench --otel`` runs it as a
process (``python -m voidllm.testing.otlp_sink --port 0``, printing ``listening http://127.0.0.1:PORT``),
keeping only counts (``--count-only``) so that it costs the collector, not the gateway, little.

Only protobuf bodies (``application/x-protobuf``, uncompressed, as the SDK's exporter sends by default);
no JSON, no gzip, no logs or metrics signals.
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from voidllm.testing.h11server import H11Connection, Request, converse, open_listener

__all__ = ["OtlpSink", "ReceivedSpan", "main", "open_otlp_sink"]

KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUSES = {0: "UNSET", 1: "OK", 2: "ERROR"}


@attrs.frozen
class ReceivedSpan:
    """One exported span: ids in hex (``parent_id`` empty for a root), attributes as Python values."""

    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    events: tuple[tuple[str, dict[str, Any]], ...]
    status: str
    resource: dict[str, Any]
    schema_url: str


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def decode(body: bytes) -> list[ReceivedSpan]:
    """The spans of one ``ExportTraceServiceRequest``."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        kind=KINDS.get(span.kind, str(span.kind)),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        attributes=_attributes(span.attributes),
                        events=tuple((event.name, _attributes(event.attributes)) for event in span.events),
                        status=STATUSES.get(span.status.code, str(span.status.code)),
                        resource=resource,
                        schema_url=scope_spans.schema_url,
                    )
                )
    return spans


@attrs.define(eq=False)
class OtlpSink:
    """The collector; see the module docstring."""

    count_only: bool = False
    status: int = 200
    port: int = 0
    url: str = ""
    spans: list[ReceivedSpan] = attrs.Factory(list)
    bodies: list[bytes] = attrs.Factory(list)
    received: int = 0  # spans, also when count_only
    requests: int = 0
    _arrived: trio.Event = attrs.Factory(trio.Event)

    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen and answer until cancelled."""
        listener, self.port = await open_listener(host, port)
        self.url = f"http://{host}:{self.port}"
        task_status.started(self.port)
        await trio.serve_listeners(self._handle, [listener])

    async def _handle(self, stream: trio.SocketStream) -> None:
        http = H11Connection(stream)
        await converse(http, functools.partial(self._answer, http))

    async def _answer(self, http: H11Connection, request: Request) -> bool:
        self.requests += 1
        self._arrived.set()  # also for a request answered with an error (wait_requests)
        self._arrived = trio.Event()
        if request.method != "POST" or request.target != "/v1/traces":
            await http.stream.send_all(http.whole(404, [(b"content-length", b"0")], b""))
            return True
        if self.status != 200:
            await http.stream.send_all(http.whole(self.status, [(b"content-length", b"0")], b""))
            return True
        self._take(request.body)
        body = ExportTraceServiceResponse().SerializeToString()
        headers = [(b"content-type", b"application/x-protobuf"), (b"content-length", str(len(body)).encode())]
        await http.stream.send_all(http.whole(200, headers, body))
        return True

    def _take(self, body: bytes) -> None:
        if self.count_only:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            self.received += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
            return
        self.bodies.append(body)
        spans = decode(body)
        self.spans.extend(spans)
        self.received += len(spans)
        self._arrived.set()
        self._arrived = trio.Event()

    async def wait_requests(self, count: int) -> None:
        """Wait until ``count`` requests have arrived, whatever they were answered."""
        while self.requests < count:
            await self._arrived.wait()

    async def wait_spans(self, done: Callable[[list[ReceivedSpan]], bool]) -> list[ReceivedSpan]:
        """Wait until ``done(spans)`` holds for the spans received so far; return them."""
        while not done(self.spans):
            await self._arrived.wait()
        return self.spans


@asynccontextmanager
async def open_otlp_sink(*, count_only: bool = False) -> AsyncIterator[OtlpSink]:
    """Run an :class:`OtlpSink` on an ephemeral port of 127.0.0.1 for the block."""
    sink = OtlpSink(count_only=count_only)
    async with trio.open_nursery() as nursery:
        await nursery.start(sink.serve)
        yield sink
        nursery.cancel_scope.cancel()


async def _run(port: int, count_only: bool) -> None:
    sink = OtlpSink(count_only=count_only)
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(sink.serve, port=port))
        print(f"listening {sink.url}", flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        print(f"received {sink.received} spans in {sink.requests} requests", file=sys.stderr, flush=True)
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> None:
    """``python -m voidllm.testing.otlp_sink [--port N] [--count-only]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count-only", action="store_true")
    args = parser.parse_args(argv)
    trio.run(_run, args.port, args.count_only)


if __name__ == "__main__":
    main()
