"""How the workers' metrics combine in prometheus-client's multiprocess mode (``server.workers`` > 1): every
gauge states its ``multiprocess_mode`` (the table of README.md, "Metrics", says the same); values written by
two real processes combine as stated; a dead worker's live gauges leave, its counters stay."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import Gauge
from prometheus_client.parser import text_string_to_metric_families

import voidllm.server  # noqa: F401  # registers every metric of the gateway
from voidllm.metrics import REGISTRY

MODES = {
    "voidllm_service_up": "livemin",
    "voidllm_cache_size": "livemax",
    "voidllm_inflight_requests": "livesum",
    "voidllm_draining": "livemax",
    "voidllm_redis_up": "livemin",
    "voidllm_active_streams": "livesum",
    "voidllm_circuit_breaker_state": "livemax",
    "voidllm_cooldowns_active": "livemax",
    "voidllm_model_health_status": "mostrecent",
    "voidllm_model_health_latency_seconds": "mostrecent",
    "voidllm_mcp_server_health_status": "mostrecent",
    "voidllm_mcp_server_health_latency_seconds": "mostrecent",
    "voidllm_usage_buffer_depth": "livesum",
    "voidllm_audit_buffer_depth": "livesum",
    "voidllm_mcp_tool_calls_buffer_depth": "livesum",
    "voidllm_incidents_buffer_depth": "livesum",
    "voidllm_rollup_lag_seconds": "mostrecent",
    "voidllm_code_mode_pool_available": "livesum",
}
"""Gauges and how several workers' values combine (plus ``voidllm_db_*_connections``, livesum, which are
gauges only with several workers)."""


def test_every_gauge_states_how_workers_combine() -> None:
    gauges = {c._name: c._multiprocess_mode for c in REGISTRY._collector_to_names if isinstance(c, Gauge)}
    assert gauges == MODES


def test_the_modes_are_the_documented_ones() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name, mode in MODES.items():
        assert f"`{name}` | gauge" in readme
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` | gauge"))
        assert f"`{mode}`" in row, row


WORKER = """
import os, sys
from voidllm import metrics
from voidllm.routing.health import HEALTH_STATUS
from voidllm.store.metrics import track
from voidllm.usage.metrics import BUFFER_DEPTH, EVENTS_WRITTEN

assert metrics.MULTIPROCESS_DIR == os.environ["PROMETHEUS_MULTIPROC_DIR"]
metrics.announce_worker()
inflight, up, health, depth = (float(v) for v in sys.argv[1:])
metrics.INFLIGHT_REQUESTS.set(inflight)
metrics.CACHE_SIZE.labels(cache="keys").set(7)
metrics.SERVICE_UP.labels(service="s").set(up)
HEALTH_STATUS.labels(model="m/d").set(health)
metrics.sampled(BUFFER_DEPTH, lambda: depth)
EVENTS_WRITTEN.inc(3)
sys.stdout.write(metrics.render()[0].decode())
"""


def run_worker(directory: Path, *values: float) -> tuple[int, dict[str, list[tuple[dict[str, str], float]]]]:
    """One worker process writes ``values``, renders a scrape and exits; its pid and the scrape's samples."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(Path.cwd())}
    script = WORKER + "sys.stderr.write(str(os.getpid()))\n"
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, values)], env=env, capture_output=True, text=True, check=True
    )
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(done.stdout):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return int(done.stderr.strip().splitlines()[-1]), samples


def values(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> list[float]:
    return [value for _labels, value in samples.get(name, [])]


@pytest.mark.slow
def test_two_workers_combine_as_each_gauge_states(tmp_path: Path) -> None:
    first, _ = run_worker(tmp_path, 2, 1, 1, 4)
    # the first worker has exited but was not marked dead yet: its live gauges still count
    second, samples = run_worker(tmp_path, 3, 0, 0.5, 5)
    assert values(samples, "voidllm_inflight_requests") == [5.0]  # livesum
    assert values(samples, "voidllm_cache_size") == [7.0]  # livemax
    assert values(samples, "voidllm_service_up") == [0.0]  # livemin
    assert values(samples, "voidllm_model_health_status") == [0.5]  # mostrecent: the second wrote last
    assert values(samples, "voidllm_usage_buffer_depth") == [9.0]  # sampled, livesum
    assert values(samples, "voidllm_usage_events_written_total") == [6.0]  # counters sum
    # process_* of the live worker only (the first is gone from /proc), labelled with its pid
    assert {labels["pid"] for labels, _ in samples["process_resident_memory_bytes"]} == {str(second)}
    gc_pids = {labels["pid"] for labels, _ in samples["python_gc_collections_total"]}
    assert gc_pids == {str(first), str(second)}  # sampled by each worker, kept like every counter

    from voidllm.metrics import worker_gone

    worker_gone(first, str(tmp_path))
    worker_gone(second, str(tmp_path))
    assert not list(tmp_path.glob("worker_*"))
    _, samples = run_worker(tmp_path, 1, 1, 1, 0)
    assert values(samples, "voidllm_inflight_requests") == [1.0]  # the dead workers' live gauges left
    assert values(samples, "voidllm_service_up") == [1.0]
    assert values(samples, "voidllm_usage_events_written_total") == [9.0]  # their counters stayed
