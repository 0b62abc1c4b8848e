"""Export of finished spans off the request path: a bounded queue, a supervised service, the OTLP exporter.

:class:`QueueingProcessor` is the SDK span processor: ``on_end`` only appends the finished span to a bounded
queue (full: the span is dropped and counted in ``voidllm_otel_spans_dropped_total{reason="queue_full"}``), so
ending a span costs a request an append. :func:`serve_span_export` (the ``span-export`` service, started first
by ``server.py`` so it stops last and exports what the other services' shutdown traced) takes the queue in
batches of ``batch_size``, every ``export_interval`` or as soon as a batch is full (then only full batches:
a steady flow goes out in whole batches), and hands each batch to the official OTLP exporter (HTTP/protobuf,
with the faster encoding of :mod:`voidllm.tracing.otlp`, or gRPC) in a worker thread. The exporter retries
transient failures with backoff within its own ``timeout`` (``export_timeout``); the thread is also abandoned
a second after that, so a hung collector never holds the service. A failed batch is dropped and counted
(``reason="export_failed"``, ``voidllm_otel_export_failures_total``); one warning is logged when exports start
failing and one line when they recover (the exporter's own log lines, one per failed batch, are held back by
:mod:`voidllm.logs`). On shutdown what is queued is exported once more, shielded and bounded by
``export_timeout``.

:func:`open_tracing` builds the tracer (``ParentBased(TraceIdRatioBased(sample_rate))``, resource
``service.name``/``service.version``, the schema URL of :mod:`voidllm.tracing.conventions`) and makes it the
process's (:data:`voidllm.tracing.state`) for the block; the SDK's global tracer provider is not touched.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import trio
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from voidllm import __version__, tracing
from voidllm.tracing import conventions as c
from voidllm.tracing.metrics import EXPORT_FAILURES, SPANS_DROPPED, SPANS_EXPORTED
from voidllm.tracing.otlp import HttpSpanExporter
from voidllm.tracing.spans import FinishedSpan, LightTracer, readable

if TYPE_CHECKING:
    from voidllm.config.settings import OtelConfig

__all__ = ["QueueingProcessor", "build_exporter", "open_tracing", "serve_span_export"]

log = logging.getLogger(__name__)

HTTP_DEFAULT = "http://localhost:4318"
GRPC_DEFAULT = "localhost:4317"
TRACES_PATH = "/v1/traces"
ABANDON_AFTER = 1.0
"""Seconds past ``export_timeout`` after which a still-running export thread is abandoned."""


class QueueingProcessor(SpanProcessor):
    """Appends each finished span to a bounded queue; see the module docstring."""

    def __init__(self, queue_size: int, batch_size: int) -> None:
        self.queue: collections.deque[FinishedSpan] = collections.deque()
        self.queue_size = queue_size
        self.batch_size = batch_size
        self._wake: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None

    def on_end(self, span: FinishedSpan) -> None:
        queue = self.queue
        if len(queue) >= self.queue_size:
            SPANS_DROPPED.labels("queue_full").inc()
            return
        queue.append(span)
        if len(queue) == self.batch_size and self._wake is not None and self._token is not None:
            self._token.run_sync_soon(self._wake.set)  # thread-safe; a span may end in a worker thread

    def watch(self) -> trio.Event:
        """A fresh event set when a full batch is waiting (called by the export service, in trio)."""
        self._token = trio.lowlevel.current_trio_token()
        self._wake = trio.Event()
        if len(self.queue) >= self.batch_size:
            self._wake.set()
        return self._wake

    def take(self, limit: int | None = None) -> list[FinishedSpan]:
        """Up to ``batch_size`` spans (and up to ``limit``) from the front of the queue."""
        queue = self.queue
        count = min(self.batch_size, len(queue), self.batch_size if limit is None else limit)
        return [queue.popleft() for _ in range(count)]

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def build_exporter(settings: OtelConfig) -> SpanExporter:
    """The OTLP span exporter of ``settings.protocol`` (gRPC imported only then: it is heavy), bounded by
    ``export_timeout``."""
    headers = dict(settings.headers) or None
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        class LightGrpcExporter(GrpcExporter):  # the SDK's ReadableSpans made in the export thread
            def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
                return super().export(readable(spans))

        return LightGrpcExporter(
            endpoint=settings.endpoint or GRPC_DEFAULT,
            insecure=settings.insecure,
            headers=headers,
            timeout=settings.export_timeout,
        )
    return HttpSpanExporter(
        endpoint=traces_url(settings.endpoint), headers=headers, timeout=settings.export_timeout
    )


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL: ``/v1/traces`` appended to an endpoint without a path."""
    endpoint = endpoint or HTTP_DEFAULT
    if urlsplit(endpoint).path in ("", "/"):
        return endpoint.rstrip("/") + TRACES_PATH
    return endpoint


@contextmanager
def open_tracing(settings: OtelConfig, processor: SpanProcessor) -> Iterator[LightTracer]:
    """Make a tracer of ``settings`` feeding ``processor`` the process's for the block."""
    resource = Resource.create({"service.name": settings.service_name, "service.version": __version__})
    scope = InstrumentationScope("voidllm", __version__, c.SCHEMA_URL)
    tracer = LightTracer(
        resource=resource, scope=scope, processor=processor, sample_rate=settings.sample_rate
    )
    tracing.state.tracer = tracer
    try:
        yield tracer
    finally:
        tracing.state.tracer = None


async def serve_span_export(
    *,
    processor: QueueingProcessor,
    exporter: SpanExporter,
    interval: float,
    export_timeout: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Export the queue's spans in batches until cancelled, then once more (shielded, bounded)."""
    failing = _Failing()
    task_status.started()
    try:
        while True:
            wake = processor.watch()
            with trio.move_on_after(interval) as timer:
                await wake.wait()
            # woken by a full batch: only whole batches go, the rest waits for the next one or the interval
            await _export_queued(
                processor, exporter, export_timeout, failing, full_only=not timer.cancelled_caught
            )
    finally:
        with trio.move_on_after(export_timeout + ABANDON_AFTER, shield=True):
            await _export_queued(processor, exporter, export_timeout, failing)
        exporter.shutdown()


class _Failing:
    """Whether the last export failed, so a failing collector is logged once, not once per batch."""

    def __init__(self) -> None:
        self.now = False

    def note(self, ok: bool) -> None:
        if ok and self.now:
            log.info("span export recovered")
        elif not ok and not self.now:
            log.warning("span export failing; spans are dropped until the collector answers")
        self.now = not ok


async def _export_queued(
    processor: QueueingProcessor,
    exporter: SpanExporter,
    export_timeout: float,
    failing: _Failing,
    *,
    full_only: bool = False,
) -> None:
    """Export what is queued now, in batches (``full_only``: whole batches only, the rest stays queued).

    Spans that end meanwhile wait for the next round: chasing them made a steady flow go out a few spans at a
    time, each batch a whole HTTP request (five times the export's CPU at 550 requests/s)."""
    pending = len(processor.queue)
    if full_only:
        pending -= pending % processor.batch_size
    while pending > 0 and (batch := processor.take(pending)):
        pending -= len(batch)
        ok = False
        try:
            ok = await _export(exporter, batch, export_timeout)
        finally:  # also when cancelled part-way (shutdown): the batch is lost, and counted
            failing.note(ok)
            if ok:
                SPANS_EXPORTED.inc(len(batch))
            else:
                EXPORT_FAILURES.inc()
                SPANS_DROPPED.labels("export_failed").inc(len(batch))


async def _export(exporter: SpanExporter, batch: Sequence[FinishedSpan], export_timeout: float) -> bool:
    result: Any = None
    with trio.move_on_after(export_timeout + ABANDON_AFTER):
        try:
            export = cast("Callable[[Sequence[FinishedSpan]], SpanExportResult]", exporter.export)
            result = await trio.to_thread.run_sync(export, batch, abandon_on_cancel=True)
        except Exception as exc:  # an exporter bug must not stop the service; counted as a failure
            log.warning("span export raised", extra={"error_type": type(exc).__name__})
    return result is SpanExportResult.SUCCESS
