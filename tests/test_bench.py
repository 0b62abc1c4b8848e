"""``scripts/bench --quick``: a real smoke run (mock, gateway, load) that reports every figure as a number."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

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
    "start_to_ready_s",
    "errors_direct",
    "errors_proxied",
    "errors_total",
    "start_to_first_200_s",
    "cpu_ms_per_request_c32",
)
SIDE_BY_SIDE = (
    "rps_c32",
    "added_latency_p50_ms",
    "added_latency_p99_ms",
    "added_ttft_p50_ms",
    "cpu_ms_per_request",
    "rss_peak_mb",
    "ready_s",
    "errors",
)
PEER_LATENCY_MS = 30


def _bench_processes(under: str = "/") -> set[int]:
    """Pids of processes running in a benchmark work directory (the gateway and the mock run there), of the
    runs whose ``TMPDIR`` was ``under`` (benchmarks of other checkouts may run on the same machine)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if f"{under.rstrip('/')}/voidllm-bench-" in cwd:
                pids.add(int(entry))
    return pids


@pytest.mark.parametrize("generator", ["auto", "python"])
def test_quick_bench_reports_every_figure(tmp_path: Path, generator: str) -> None:
    if generator == "auto" and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed; the python variant covers the built-in load generator")
    before = _bench_processes(str(tmp_path))
    out = tmp_path / "bench.json"
    argv = ["--quick", "--load-generator", generator, "--json", str(out)]
    if generator == "python":
        # A peer that is cheap to start: the mock itself, 30 ms slower than the upstream (so its added latency
        # is about 20 ms), after writing down what its placeholders became.
        argv += [
            "--peer",
            f"echo {{upstream}} {{model}} {{key}} > {tmp_path}/seen; cp {{config}} {tmp_path}/litellm.yaml; "
            f"exec {sys.executable} -m voidllm.testing.mock_openai --port {{port}} --latency "
            f"{PEER_LATENCY_MS}ms --stream-chunks 20 --chunk-interval 5ms",
        ]
    proc = subprocess.run(
        [str(REPO / "scripts" / "bench"), *argv],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
        env=os.environ | {"TMPDIR": str(tmp_path)},
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
    assert _bench_processes(str(tmp_path)) <= before, "the benchmark left processes behind"
    if generator == "python":
        _check_side_by_side(result, proc.stdout, tmp_path)
    else:
        assert result["side_by_side"] is None


def _check_side_by_side(result: dict[str, Any], stdout: str, tmp_path: Path) -> None:
    """The peer got the mock's URL, the model, the key and a LiteLLM config for them; the table names it, and
    its ratios are its measured figures over VoidLLM's."""
    upstream, model, key = (tmp_path / "seen").read_text().split()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", upstream)
    assert model == "mock"
    config = yaml.safe_load((tmp_path / "litellm.yaml").read_text())
    assert config["model_list"] == [
        {
            "model_name": "mock",
            "litellm_params": {"model": "openai/mock", "api_base": upstream, "api_key": "sk-bench-upstream"},
        }
    ]
    assert config["general_settings"]["master_key"] == key

    side = result["side_by_side"]
    (peer,) = side["peers"]
    assert peer["name"] == "python"
    assert peer["error"] is None
    voidllm, figures = side["voidllm"], peer["figures"]
    for key_ in SIDE_BY_SIDE:
        for value in (voidllm[key_], figures[key_]):
            assert isinstance(value, int | float), f"{key_}: {value!r}"
            assert math.isfinite(value), f"{key_}: {value!r}"
    assert figures["errors"] == voidllm["errors"] == 0
    for key_ in SIDE_BY_SIDE:
        if voidllm[key_] > 0:
            assert peer["ratios"][key_] == pytest.approx(figures[key_] / voidllm[key_]), key_
        else:
            assert peer["ratios"][key_] is None, key_
    # The peer's own figures, not VoidLLM's again: its latency floor is 30 ms, VoidLLM's is the mock's 10 ms.
    assert figures["latency_p50_ms"] >= PEER_LATENCY_MS
    assert figures["ttft_p50_ms"] >= PEER_LATENCY_MS
    assert voidllm["latency_p50_ms"] < PEER_LATENCY_MS
    assert voidllm["rps_c32"] == result["figures"]["rps_proxied_c32"]
    assert (
        voidllm["ready_s"]
        == result["figures"]["start_to_first_200_s"]
        > result["figures"]["start_to_ready_s"]
    )
    assert figures["ready_s"] > 0
    assert figures["cpu_ms_per_request"] > 0
    assert 0 < figures["rss_peak_mb"] < voidllm["rss_peak_mb"]  # a mock is smaller than a gateway

    assert "Side by side" in stdout
    assert side["table"][0] == ["figure", "VoidLLM", "python", "ratio"]
    printed = stdout.split("Side by side", 1)[1]
    rps_ratio = peer["ratios"]["rps_c32"]
    assert re.search(rf"proxied RPS, 32 connections .* {rps_ratio:.2f}x", printed)


CODEMODE_FIGURES = (
    *(
        f"{name}_{key}_ms"
        for name in ("echo_direct", "echo_proxy", "trivial", "tool", "tool_added", "mcp_call_added")
        for key in ("p50", "p90", "p99", "mean")
    ),
    *(
        f"{name}_{key}"
        for name in ("echo_direct", "echo_proxy")
        for key in ("rps_concurrent", "concurrent_p50_ms", "concurrent_p99_ms")
    ),
    "mcp_call_added_concurrent_p50_ms",
    "mcp_call_added_concurrent_p99_ms",
    "mcp_call_gateway_cpu_ms",
    *(f"{name}_rps_c1" for name in ("echo_direct", "echo_proxy", "trivial", "tool")),
    *(
        f"{name}_{key}"
        for name in ("trivial", "tool")
        for key in (
            "gateway_cpu_ms",
            "gateway_cpu_main_ms",
            "gateway_cpu_threads_ms",
            "rps_concurrent",
            "concurrent_p50_ms",
            "concurrent_p99_ms",
            "concurrent_errors",
        )
    ),
    "errors_concurrent",
    "soak_executions",
    "soak_errors",
    "soak_rps",
    "rss_before_mb",
    "rss_after_mb",
    "rss_growth_mb",
    "errors_total",
    "gateway_processes",
)


def test_quick_codemode_bench_reports_every_figure(tmp_path: Path) -> None:
    before = _bench_processes()
    out = tmp_path / "codemode.json"
    argv = ["--codemode", "--quick", "--duration", "0.2", "--executions", "50", "--json", str(out)]
    proc = subprocess.run(
        [str(REPO / "scripts" / "bench"), *argv], capture_output=True, text=True, timeout=90, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    figures = result["figures"]
    for key in CODEMODE_FIGURES:
        value = figures.get(key)
        assert isinstance(value, int | float), f"{key}: {value!r}"
        assert math.isfinite(value), f"{key}: {value!r}"
    assert figures["errors_total"] == 0, result["phases"]
    assert figures["soak_executions"] == 50
    assert figures["trivial_rps_c1"] > 0
    assert figures["tool_rps_concurrent"] > 0
    assert figures["echo_proxy_rps_concurrent"] > 0
    # Both added latencies are differences of the measured paths, over echo at the upstream.
    for key in ("p50", "p99"):
        direct = result["phases"]["echo_direct_c1"]["latency_ms"][key]
        proxied = result["phases"]["echo_proxy_c1"]["latency_ms"][key]
        tool = result["phases"]["tool_c1"]["latency_ms"][key]
        assert figures[f"mcp_call_added_{key}_ms"] == pytest.approx(proxied - direct)
        assert figures[f"tool_added_{key}_ms"] == pytest.approx(tool - direct)
    assert figures["mcp_call_gateway_cpu_ms"] > 0
    assert set(result["targets"]) == {
        "trivial_p50_ms",
        "tool_added_p50_ms",
        "errors_concurrent",
        "rss_growth_mb",
    }
    assert len(result["gateway"]["rss_mb_by_soak_chunk"]) == 11
    assert result["settings"]["pool_size"] == 8
    for key in ("cpu_model", "cores", "python_version", "git_commit", "loadavg_before"):
        assert key in result["machine"]
    assert "trivial script p50" in proc.stdout
    assert "MCP tools/call added (proxied minus at the upstream), p50 / p99" in proc.stdout
    assert "execute_code with one tool call, added" in proc.stdout
    assert _bench_processes() <= before, "the benchmark left processes behind"


OTEL_FIGURES = (
    "rps_off",
    "rps_on",
    "rps_on_over_off",
    "rps_on_over_off_paired",
    "cpu_us_per_request_off",
    "cpu_us_per_request_on",
    "capacity_on_over_off",
    "errors_off",
    "errors_on",
    "spans_received",
    "spans_dropped",
    "requests_on",
)


def test_quick_otel_bench_reports_off_and_on(tmp_path: Path) -> None:
    before = _bench_processes()
    out = tmp_path / "otel.json"
    argv = ["--otel", "--quick", "--rounds", "1", "--duration", "0.5", "--json", str(out)]
    proc = subprocess.run(
        [str(REPO / "scripts" / "bench"), *argv], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    figures = result["figures"]
    for key in OTEL_FIGURES:
        value = figures.get(key)
        assert isinstance(value, int | float), f"{key}: {value!r}"
        assert math.isfinite(value), f"{key}: {value!r}"
    assert figures["rps_off"] > 0
    assert figures["rps_on"] > 0
    assert figures["errors_off"] == figures["errors_on"] == 0
    assert figures["spans_received"] >= 2 * figures["requests_on"]  # a server and an attempt span each
    assert figures["spans_dropped"] == 0
    # one round: its ratio is the figure (the median of the rounds' on / off), and so is the medians' ratio
    assert figures["rps_on_over_off_paired"] == pytest.approx(figures["rps_on"] / figures["rps_off"])
    assert "on / off, round by round (median)" in proc.stdout
    assert _bench_processes() <= before, "the benchmark left processes behind"


GUARD_FIGURES = (
    *(
        f"{phase}_{key}_ms"
        for phase in ("clean", "findings", "stream", "off")
        for key in ("p50", "p99", "mean", "cpu")
    ),
    "clean_findings",
    "findings_found",
    "findings_missed",
    "text_chars",
    "stream_cpu_per_delta_us",
)


def test_quick_guard_bench_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "guard.json"
    argv = ["--guard", "--quick", "--iterations", "30", "--json", str(out)]
    proc = subprocess.run(
        [str(REPO / "scripts" / "bench"), *argv], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    figures = result["figures"]
    for key in GUARD_FIGURES:
        value = figures.get(key)
        assert isinstance(value, int | float), f"{key}: {value!r}"
        assert math.isfinite(value), f"{key}: {value!r}"
    # What the guard found is checked, not only how fast: none in the clean text, every one put in.
    assert figures["clean_findings"] == 0
    assert figures["findings_missed"] == 0
    assert figures["findings_found"] == sum(result["inserted"].values()) == 6
    assert figures["text_chars"] == 10 * 1024
    assert set(result["targets"]) == {"clean_p50_ms", "findings_p50_ms", "clean_findings", "findings_missed"}
    for key in ("cpu_model", "cores", "python_version", "git_commit", "loadavg_before"):
        assert key in result["machine"]
    assert "prose with findings p50 / p99" in proc.stdout
