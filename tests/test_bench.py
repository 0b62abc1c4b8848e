"""``scripts/bench --quick``: a real smoke run (mock, gateway, load) that reports every figure as a number."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
FIGURES = (
    "rps_direct_c32",
    "rps_proxied_c32",
    "errors_direct_c32",
    "errors_proxied_c32",
    "latency_direct_p50_ms",
    "latency_direct_p99_ms",
    "latency_proxied_p50_ms",
    "latency_proxied_p99_ms",
    "added_latency_p50_ms",
    "added_latency_p99_ms",
    "overhead_header_p50_ms",
    "overhead_header_p99_ms",
    "ttft_direct_p50_ms",
    "ttft_proxied_p50_ms",
    "added_ttft_p50_ms",
    "chunk_gap_direct_p50_ms",
    "chunk_gap_proxied_p50_ms",
    "added_chunk_gap_p50_ms",
    "rss_peak_mb",
    "rss_peak_total_mb",
    "rss_first_half_mb",
    "rss_second_half_mb",
    "rss_growth_mb",
    "soak_requests",
    "soak_errors",
    "soak_rps",
    "usage_events_written",
    "usage_events_dropped",
    "gateway_processes",
    "errors_direct",
    "errors_proxied",
    "errors_total",
)


def _bench_processes() -> set[int]:
    """Pids of processes running in a benchmark work directory (the gateway and the mock run there)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if "/voidllm-bench-" in cwd:
                pids.add(int(entry))
    return pids


@pytest.mark.parametrize("generator", ["auto", "python"])
def test_quick_bench_reports_every_figure(tmp_path: Path, generator: str) -> None:
    if generator == "auto" and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed; the python variant covers the built-in load generator")
    before = _bench_processes()
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [str(REPO / "scripts" / "bench"), "--quick", "--load-generator", generator, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    figures = result["figures"]
    for key in FIGURES:
        value = figures.get(key)
        assert isinstance(value, int | float), f"{key}: {value!r}"
        assert math.isfinite(value), f"{key}: {value!r}"
    assert figures["rps_proxied_c32"] > 0
    assert figures["rps_direct_c32"] > 0
    assert figures["soak_requests"] > 0
    assert figures["usage_events_written"] > 0
    assert result["settings"]["load_generator"] == ("python" if generator == "python" else "wrk")
    for key in ("cpu_model", "cores", "python_version", "git_commit"):
        assert key in result["machine"]
    assert "RPS proxied, 32 connections" in proc.stdout
    assert _bench_processes() <= before, "the benchmark left processes behind"
