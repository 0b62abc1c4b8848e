"""The one Prometheus registry of the process, and the metrics that belong to no single layer.

Every metric VoidLLM exports is registered on :data:`REGISTRY` (never on prometheus-client's global default
registry, so tests can build several apps in one process without duplicate-registration errors coming from
elsewhere). Labels carry identifiers and enumerations only (model names, service names, status codes), never
request or response content. The full list, with types and labels, is the "Metrics" table of README.md
(``tests/test_metrics_complete.py`` keeps the two in step).

prometheus-client's ``*_created`` series (one timestamp per counter and histogram child) are switched off for
the whole process: the Go original has none, and they would add a series per child for nothing.

**Several workers** (``server.workers`` > 1, :mod:`voidllm.workers`): the parent sets
``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory before it starts a worker, so prometheus-client keeps every
counter, histogram and gauge of a worker in memory-mapped files there (:data:`MULTIPROCESS_DIR`), and one
scrape answered by any worker reads them all (:func:`render`): counters and histograms are summed, and each
gauge is combined as its ``multiprocess_mode`` says (every gauge states one; README.md, "Metrics", lists the
choice). Values a single process computes at scrape time are :func:`sampled` instead: each worker writes them
into its files at every scrape it answers and every :data:`SAMPLE_INTERVAL` (:func:`publish_samples`).
``process_*`` is read from ``/proc`` for every live worker, labelled ``pid`` (the workers announce themselves
with :func:`announce_worker`; the parent calls :func:`worker_gone` when one exits); ``python_gc_*`` is sampled
by each worker into counters labelled ``pid`` (kept, like every counter, after the worker exits);
``python_info`` is the same in every worker and exported once. With one process (``server.workers: 1``) none
of this applies.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import trio
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Metric,
    disable_created_metrics,
    gc_collector,
    generate_latest,
    multiprocess,
    platform_collector,
    process_collector,
)
from prometheus_client.registry import Collector

disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated

MULTIPROCESS_DIR: str | None = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
"""The directory of the workers' metric files when this process is one of several workers, else ``None``
(read once: prometheus-client chooses its value storage when it is first imported)."""
SAMPLE_INTERVAL = 1.0
"""Seconds between two writes of a worker's :func:`sampled` values (how stale another worker's can be)."""
_WORKER_FILE = "worker_{pid}.live"

REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
if MULTIPROCESS_DIR is None:
    gc_collector.GCCollector(registry=REGISTRY)
    _GC: dict[str, Counter] = {}
else:  # each worker's own, sampled (:func:`sample`); the names and help of prometheus-client's GCCollector
    _GC = {
        key: Counter(f"python_gc_{name}", help_, ["generation", "pid"], registry=REGISTRY)
        for key, name, help_ in (
            ("collected", "objects_collected", "Objects collected during gc"),
            ("uncollectable", "objects_uncollectable", "Uncollectable objects found during GC"),
            ("collections", "collections", "Number of times this generation was collected"),
        )
    }
_GC_SEEN: dict[tuple[str, int], int] = {}

SERVICE_RESTARTS = Counter(
    "voidllm_service_restarts_total",
    "Supervised services restarted after a crash.",
    ["service"],
    registry=REGISTRY,
)
SERVICE_UP = Gauge(
    "voidllm_service_up",
    "1 while a supervised service is running, 0 while it waits to be restarted.",
    ["service"],
    registry=REGISTRY,
    multiprocess_mode="livemin",  # 1 only while the service runs in every live worker
)
CACHE_SIZE = Gauge(
    "voidllm_cache_size",
    "Entries held by an in-memory cache.",
    ["cache"],
    registry=REGISTRY,
    multiprocess_mode="livemax",  # every worker holds its own copy of the same data
)
CACHE_REFRESH_FAILURES = Counter(
    "voidllm_cache_refresh_failures_total",
    "Periodic cache reloads that failed; the previous contents stay in use.",
    ["cache"],
    registry=REGISTRY,
)
INFLIGHT_REQUESTS = Gauge(
    "voidllm_inflight_requests",
    "Proxy requests currently being served.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
DRAINING = Gauge(
    "voidllm_draining",
    "1 once graceful shutdown has begun.",
    registry=REGISTRY,
    multiprocess_mode="livemax",  # 1 once any live worker drains
)
AUTH_FAILURES = Counter(
    "voidllm_auth_failures_total",
    "Requests rejected by authentication, by reason.",
    ["reason"],
    registry=REGISTRY,
)
KEY_LOOKUPS = Counter(
    "voidllm_key_lookups_total",
    "Keys the key cache missed, looked up in the store (found, absent, error) or refused without (skipped).",
    ["outcome"],
    registry=REGISTRY,
)

_SAMPLED: dict[Gauge, Callable[[], float]] = {}


def sampled(gauge: Gauge, read: Callable[[], float]) -> None:
    """Make ``gauge`` report ``read()``: computed at each scrape in one process; with several workers,
    written by :func:`sample` (a later call for the same gauge replaces the earlier ``read``)."""
    if MULTIPROCESS_DIR is None:
        gauge.set_function(read)
    else:
        _SAMPLED[gauge] = read


def sample() -> None:
    """Write this worker's :func:`sampled` values and GC statistics into its metric files (several workers
    only)."""
    for gauge, read in list(_SAMPLED.items()):
        gauge.set(read())
    pid = str(os.getpid())
    for generation, stats in enumerate(gc.get_stats() if _GC else ()):
        for key, counter in _GC.items():
            seen = _GC_SEEN.get((key, generation), 0)
            if stats[key] > seen:
                counter.labels(generation=str(generation), pid=pid).inc(stats[key] - seen)
                _GC_SEEN[key, generation] = stats[key]


async def publish_samples() -> None:
    """Run :func:`sample` every :data:`SAMPLE_INTERVAL` seconds, until cancelled (each worker runs it)."""
    while True:
        sample()
        await trio.sleep(SAMPLE_INTERVAL)


def announce_worker() -> None:
    """Mark this worker live in :data:`MULTIPROCESS_DIR`, so scrapes report its ``process_*`` metrics."""
    if MULTIPROCESS_DIR is not None:
        (Path(MULTIPROCESS_DIR) / _WORKER_FILE.format(pid=os.getpid())).touch()


def worker_gone(pid: int, directory: str) -> None:
    """The parent's bookkeeping once worker ``pid`` exited: its live gauges leave the combined values (its
    counters and histograms stay counted) and its process metrics leave the scrape."""
    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
    (Path(directory) / _WORKER_FILE.format(pid=pid)).unlink(missing_ok=True)


class _WorkerProcesses(Collector):
    """``process_*`` of every live worker, read from ``/proc``, labelled ``pid``."""

    def __init__(self, directory: str) -> None:
        self._directory = Path(directory)

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for path in sorted(self._directory.glob(_WORKER_FILE.format(pid="*"))):
            pid = path.name.removeprefix("worker_").removesuffix(".live")
            reader = process_collector.ProcessCollector(pid=partial(str, pid), registry=None)
            for family in reader.collect():
                combined = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for s in family.samples:
                    combined.add_sample(s.name, {**s.labels, "pid": pid}, s.value)
        return families.values()


def _scrape_registry(directory: str) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    registry.register(_WorkerProcesses(directory))
    platform_collector.PlatformCollector(registry=registry)
    return registry


_SCRAPE_REGISTRY = REGISTRY if MULTIPROCESS_DIR is None else _scrape_registry(MULTIPROCESS_DIR)


def render() -> tuple[bytes, str]:
    """Return the exposition text of :data:`REGISTRY` (with several workers: of all of them) and its
    content type."""
    if MULTIPROCESS_DIR is not None:
        sample()  # this worker's values as of now; the others' as of their last sample
    return generate_latest(_SCRAPE_REGISTRY), CONTENT_TYPE_LATEST
