"""``scripts/bench``: direct (client -> mock) vs proxied (client -> gateway -> mock), as in ARCHITECTURE.md
section 3.

Layout: the gateway pinned to core 0 (``taskset``), the mock upstream and the load (wrk, or this process with
the built-in trio/h11 client) pinned to core 1. Phases, in order, each direct then proxied:

1. warm-up at 32 connections (and a few streams);
2. throughput: RPS at 32 connections (non-streaming chat completions), with error counts;
3. latency: p50/p99 at 1 connection, and the gateway's ``X-VoidLLM-Overhead-Ms`` as a cross-check;
4. streaming (always the built-in client; wrk cannot time SSE events): ``--streams`` streams, one at a time by
   default, each timed to its first ``data:`` event (TTFT) and between consecutive data events (``[DONE]`` is
   not counted: the gateway strips the usage chunk it injects, which delays ``[DONE]`` by one interval);
5. soak: ``--requests`` proxied requests at 32 connections.

"Added" figures are proxied minus direct, of the same percentile. The gateway's RSS (VmRSS of its process
tree) is sampled every 100 ms from the moment it listens; VmHWM is reset then (bootstrap hashes the admin
password with 64 MiB of argon2), so the peak is that of the benchmark. RSS growth: mean over the second half
of the soak minus the mean over the first half. The usage writer's counters are read from ``/metrics`` after
each proxied phase, and the usage rows are counted in the SQLite file after the gateway stopped.

With ``--workers N`` (N > 1) a second gateway with one worker is measured afterwards for the speedup figure.
Each ``--peer CMD`` is another gateway measured afterwards against the same mock (:mod:`bench_lib.peer`),
with a side-by-side table.
``--codemode`` runs the Code Mode scenario of :mod:`bench_lib.codemode` instead, ``--otel`` the tracing one of
:mod:`bench_lib.otel`, ``--guard`` the prompt guard's scan of :mod:`bench_lib.guard` (in process).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import secrets
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from bench_lib import client, codemode, guard, otel, peer, procs, report
from bench_lib import wrk as wrk_mod

if TYPE_CHECKING:
    from collections.abc import Awaitable

REPO = Path(__file__).resolve().parents[2]
CHAT_PATH = "/v1/chat/completions"
BODY = b'{"model":"mock","messages":[{"role":"user","content":"hello"}]}'
STREAM_BODY = b'{"model":"mock","stream":true,"messages":[{"role":"user","content":"hello"}]}'


@attrs.define
class Options:
    workers: int
    duration: float
    requests: int
    latency_ms: float
    stream_chunks: int
    chunk_interval_ms: float
    streams: int
    stream_concurrency: int
    warmup: float
    load_generator: str  # "wrk" or "python"
    wrk_path: str | None
    gateway_cpus: str | None
    load_cpus: str | None
    quick: bool
    keep: bool
    cores_usable: int
    notes: list[str] = attrs.field(factory=list)
    peers: list[peer.Peer] = attrs.field(factory=list)
    peer_timeout: float = 120.0


def _cpu_list(text: str) -> set[int]:
    cpus: set[int] = set()
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            cpus.update(range(int(low), int(high) + 1))
        elif part.strip():
            cpus.add(int(part))
    return cpus


def _cpu_text(cpus: list[int]) -> str:
    return ",".join(str(c) for c in cpus)


def cpu_layout(
    workers: int, gateway: str | None, load: str | None, notes: list[str]
) -> tuple[str | None, str | None]:
    """ARCHITECTURE.md section 3: gateway on core 0, mock and load on core 1 (more cores for more workers)."""
    if not shutil.which("taskset"):
        notes.append("taskset not found: nothing is pinned")
        return None, None
    usable = sorted(os.sched_getaffinity(0))
    if gateway is None or load is None:
        if len(usable) < 2:
            notes.append(
                f"only one usable core ({usable[0]}): gateway, mock and load share it, nothing pinned"
            )
            return None, None
        if len(usable) > workers:
            default_gateway, default_load = usable[:workers], [usable[workers]]
        else:
            default_gateway, default_load = usable, [usable[-1]]
            notes.append(
                f"{workers} workers on {len(usable)} cores: the gateway gets every core and shares core "
                f"{usable[-1]} with the mock and the load"
            )
        gateway = gateway or _cpu_text(default_gateway)
        load = load or _cpu_text(default_load)
    return gateway, load


# Phases ----------------------------------------------------------------------------------------------


@attrs.define
class Target:
    name: str  # "direct" or "proxied"
    port: int
    key: str

    def headers(self) -> list[tuple[str, str]]:
        return [("Content-Type", "application/json"), ("Authorization", f"Bearer {self.key}")]

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        return [(k.lower().encode(), v.encode()) for k, v in self.headers()]


def _ms(seconds: float) -> float:
    return seconds * 1000


async def load_phase(
    opts: Options,
    workdir: Path,
    target: Target,
    *,
    connections: int,
    duration: float | None = None,
    requests: int | None = None,
    overhead_header: bool = False,
    generator: str | None = None,
) -> dict[str, Any]:
    """One closed-loop load run against ``target``; a dict of raw figures (latencies in ms)."""
    generator = generator or opts.load_generator
    if generator == "wrk":
        assert opts.wrk_path is not None
        url = f"http://127.0.0.1:{target.port}{CHAT_PATH}"
        result = await wrk_mod.run(
            opts.wrk_path,
            workdir,
            url,
            BODY,
            target.headers(),
            connections=connections,
            cpus=opts.load_cpus,
            duration=duration,
            requests=requests,
            overhead_header=overhead_header,
        )
        latency = {k: v / 1000 for k, v in result.latency_us.items()}
        out = {
            "generator": "wrk",
            "connections": connections,
            "requests": result.requests,
            "errors": result.error_count,
            "error_detail": result.errors,
            "elapsed_s": result.elapsed,
            "rps": result.rps,
            "latency_ms": latency,
            "wrk_latency_distribution": result.distribution,
        }
        if overhead_header:
            out["overhead_ms"] = result.overhead_ms
            out["overhead_count"] = result.overhead_count
        return out
    res = await client.run_load(
        target.port,
        CHAT_PATH.encode(),
        target.raw_headers(),
        BODY,
        connections=connections,
        duration=duration,
        requests=requests,
        overhead_header=overhead_header,
    )
    out = {
        "generator": "python",
        "connections": connections,
        "requests": res.requests,
        "errors": res.errors,
        "error_detail": {"status": res.status_errors, "io": res.errors - res.status_errors},
        "elapsed_s": res.elapsed,
        "rps": res.rps,
        "latency_ms": report.latency_ms(res.latencies),
    }
    if overhead_header:
        out["overhead_ms"] = {f"p{p:g}": report.percentile(res.overheads_ms, p) for p in (50, 90, 99, 99.9)}
        out["overhead_count"] = len(res.overheads_ms)
    return out


async def stream_phase(opts: Options, target: Target) -> dict[str, Any]:
    res = await client.run_streams(
        target.port,
        CHAT_PATH.encode(),
        target.raw_headers(),
        STREAM_BODY,
        streams=opts.streams,
        concurrency=opts.stream_concurrency,
    )
    return {
        "generator": "python",
        "streams": res.streams,
        "errors": res.errors,
        "concurrency": opts.stream_concurrency,
        "data_events_per_stream": report.mean([float(n) for n in res.chunks_per_stream]),
        "ttft_ms": {f"p{p:g}": _ms(report.percentile(res.ttfts, p)) for p in (50, 90, 99)},
        "gap_ms": {f"p{p:g}": _ms(report.percentile(res.gaps, p)) for p in (50, 90, 99)}
        | {"mean": _ms(report.mean(res.gaps))},
    }


_USAGE_SAMPLES = re.compile(r"(voidllm_usage_events_(?:written|dropped)_total) (\S+)")
"""The usage writer's counters (one process's view when there are workers)."""


def _usage_rows(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM usage_events").fetchone()[0])
    except sqlite3.Error:
        return -1


@attrs.define
class GatewayRun:
    phases: dict[str, Any]
    processes: int
    rss_peak_mb: float
    rss_peak_total_mb: float
    rss_hwm_by_process_mb: dict[str, float]
    rss_hwm_at_start_mb: dict[str, float]
    rss_first_half_mb: float
    rss_second_half_mb: float
    rss_samples: int
    metrics: dict[str, float]
    usage_rows: int
    exit_code: int | None
    stop_seconds: float
    start_to_ready_s: float
    """From spawning ``voidllm serve`` to its output holding the listening line and the bootstrap API key (the
    first start on a fresh SQLite file: migrations, bootstrap with its argon2 hash, services, listening)."""
    first_200_s: float  # from spawning it to its first 200 answer to a chat completion (as for a --peer)
    rss_peak_before_soak_mb: float  # VmHWM summed over its processes after the phases a --peer runs too


async def run_gateway(
    opts: Options, workdir: Path, mock_port: int, workers: int, *, full: bool
) -> GatewayRun:
    """Start a gateway with ``workers``, run the phases against it and the mock, stop it, collect figures."""
    gwdir = workdir / f"gateway-{workers}w"
    gwdir.mkdir()
    config = procs.gateway_config(
        gwdir, secrets.token_hex(24), workers=workers, models=procs.mock_model(mock_port)
    )
    voidllm = str(REPO / ".venv" / "bin" / "voidllm")
    procs.log(f"starting the gateway (server.workers: {workers}, cpus {opts.gateway_cpus or 'any'})")
    spawned = time.monotonic()
    try:
        gateway, port, key = await procs.start_gateway(voidllm, gwdir, config, opts.gateway_cpus)
        start_to_ready_s = time.monotonic() - spawned
        await peer.wait_ready(gateway, port, Target("proxied", port, key).raw_headers(), BODY, within=60)
        first_200_s = time.monotonic() - spawned
    except RuntimeError as exc:
        if workers > 1:
            raise RuntimeError(
                f"the gateway did not start with server.workers: {workers} (rejected or unsupported?):\n{exc}"
            ) from None
        raise
    direct = Target("direct", mock_port, key)
    proxied = Target("proxied", port, key)
    sampler = procs.RssSampler(gateway.pid)
    phases: dict[str, Any] = {}
    processes = 1
    soak_window = (0.0, 0.0)
    startup_hwm: dict[int, float] = {}
    peak_before_soak = math.nan
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sampler.run)
            if workers > 1:  # give the workers time to appear
                deadline = trio.current_time() + 10
                while sampler.processes() < workers and trio.current_time() < deadline:  # noqa: ASYNC110
                    await trio.sleep(0.1)
            processes = sampler.processes()
            startup_hwm = sampler.reset_peaks()
            if sampler.reset_failed:
                opts.notes.append("could not reset VmHWM (/proc/PID/clear_refs): peak RSS includes the start")
            if workers > 1 and processes < 2:
                opts.notes.append(
                    f"server.workers: {workers} was accepted, but the gateway runs as a single process: "
                    "the setting is ignored (multi-worker serving not available in this build)"
                )
                procs.log("WARNING: " + opts.notes[-1])

            procs.log(f"warm-up, {opts.warmup:g} s each way")
            for target in (direct, proxied):
                await load_phase(opts, gwdir, target, connections=32, duration=opts.warmup)
                if full:
                    await client.run_streams(
                        target.port,
                        CHAT_PATH.encode(),
                        target.raw_headers(),
                        STREAM_BODY,
                        streams=max(4, 2 * opts.stream_concurrency),
                        concurrency=opts.stream_concurrency,
                    )

            async def measure(name: str, phase: Awaitable[dict[str, Any]]) -> None:
                """Run a phase; for proxied ones also record the gateway's CPU time per process and the
                usage writer's counters afterwards."""
                cpu_before = procs.cpu_seconds(gateway.pid)
                phases[name] = result = await phase
                if name.endswith("proxied") or "_proxied_" in name:
                    cpu_after = procs.cpu_seconds(gateway.pid)
                    result["gateway_cpu_s"] = sum(cpu_after.values()) - sum(cpu_before.values())
                    result["gateway_cpu_s_by_process"] = {
                        str(pid): round(cpu_after[pid] - cpu_before.get(pid, 0.0), 2) for pid in cpu_after
                    }
                    result["usage_metrics_after"] = await client.metrics(port, _USAGE_SAMPLES)

            if not full:
                procs.log(f"RPS at 32 connections, proxied only, {opts.duration:g} s")
                await measure(
                    "rps_proxied_c32",
                    load_phase(opts, gwdir, proxied, connections=32, duration=opts.duration),
                )
            else:
                for target in (direct, proxied):
                    procs.log(f"RPS at 32 connections, {target.name}, {opts.duration:g} s")
                    await measure(
                        f"rps_{target.name}_c32",
                        load_phase(opts, gwdir, target, connections=32, duration=opts.duration),
                    )
                for target in (direct, proxied):
                    procs.log(f"latency at 1 connection, {target.name}, {opts.duration:g} s")
                    await measure(
                        f"latency_{target.name}_c1",
                        load_phase(
                            opts,
                            gwdir,
                            target,
                            connections=1,
                            duration=opts.duration,
                            overhead_header=target is proxied,
                        ),
                    )
                for target in (direct, proxied):
                    procs.log(
                        f"streaming, {target.name}, {opts.streams} streams "
                        f"over {opts.stream_concurrency} connection(s)"
                    )
                    await measure(f"stream_{target.name}", stream_phase(opts, target))
                sampler.sample()
                peak_before_soak = sum(sampler.hwm_mb.values())
                procs.log(f"soak, proxied, {opts.requests:,} requests at 32 connections")
                started = time.monotonic()
                await measure(
                    "soak_proxied", load_phase(opts, gwdir, proxied, connections=32, requests=opts.requests)
                )
                soak_window = (started, time.monotonic())
            processes = max(processes, sampler.processes())
            sampler.sample()
            metrics = await client.metrics(port, _USAGE_SAMPLES)
            nursery.cancel_scope.cancel()
    finally:
        stop_started = time.monotonic()
        exit_code = await gateway.stop(grace=30)
        stop_seconds = time.monotonic() - stop_started
    start, end = soak_window
    middle = (start + end) / 2
    first, second = sampler.between(start, middle), sampler.between(middle, end)
    return GatewayRun(
        phases=phases,
        processes=max(processes, sampler.max_processes),
        rss_peak_mb=max(sampler.hwm_mb.values(), default=math.nan),
        rss_peak_total_mb=sampler.peak_total_mb(),
        rss_hwm_by_process_mb={str(pid): mb for pid, mb in sampler.hwm_mb.items()},
        rss_hwm_at_start_mb={str(pid): mb for pid, mb in startup_hwm.items()},
        rss_first_half_mb=report.mean(first),
        rss_second_half_mb=report.mean(second),
        rss_samples=len(first) + len(second),
        metrics=metrics,
        usage_rows=_usage_rows(gwdir / "data" / "voidllm.db"),
        exit_code=exit_code,
        stop_seconds=stop_seconds,
        start_to_ready_s=start_to_ready_s,
        first_200_s=first_200_s,
        rss_peak_before_soak_mb=peak_before_soak,
    )


async def peer_phases(opts: Options, workdir: Path, port: int, key: str, pid: int) -> dict[str, Any]:
    """What a ``--peer`` gateway (``pid`` its process) runs: the gateway's phases but the soak, the same way
    (warm-up, RPS at 32 connections with its CPU time, latency at 1 connection, streams)."""
    target = Target("peer", port, key)
    await load_phase(opts, workdir, target, connections=32, duration=opts.warmup)
    await client.run_streams(
        port,
        CHAT_PATH.encode(),
        target.raw_headers(),
        STREAM_BODY,
        streams=max(4, 2 * opts.stream_concurrency),
        concurrency=opts.stream_concurrency,
    )
    phases: dict[str, Any] = {}
    procs.log(f"peer: RPS at 32 connections, {opts.duration:g} s")
    cpu_before = sum(procs.cpu_seconds(pid).values())
    phases["rps_c32"] = await load_phase(opts, workdir, target, connections=32, duration=opts.duration)
    phases["rps_c32"]["cpu_s"] = sum(procs.cpu_seconds(pid).values()) - cpu_before
    procs.log(f"peer: latency at 1 connection, {opts.duration:g} s")
    phases["latency_c1"] = await load_phase(opts, workdir, target, connections=1, duration=opts.duration)
    procs.log(f"peer: streaming, {opts.streams} streams over {opts.stream_concurrency} connection(s)")
    phases["stream"] = await stream_phase(opts, target)
    return phases


def side_by_side_figures(run: GatewayRun, figures: dict[str, float]) -> dict[str, float]:
    """VoidLLM's figures for the ``--peer`` table, from the same phases a peer runs."""
    p = run.phases
    phases = {
        "rps_c32": p["rps_proxied_c32"],
        "latency_c1": p["latency_proxied_c1"],
        "stream": p["stream_proxied"],
    }
    return peer.figures(
        phases,
        figures,
        cpu_ms_per_request=figures["cpu_ms_per_request_c32"],
        rss_peak_mb=run.rss_peak_before_soak_mb,
        ready_s=run.first_200_s,
    )


async def run_peers(opts: Options, workdir: Path, mock_port: int) -> list[peer.PeerRun]:
    runs = []
    for spec in opts.peers:
        runs.append(
            await peer.run(
                spec,
                workdir,
                upstream=f"http://127.0.0.1:{mock_port}/v1",
                cpus=opts.gateway_cpus,
                within=opts.peer_timeout,
                body=BODY,
                phases=lambda port, key, pid: peer_phases(opts, workdir, port, key, pid),
            )
        )
    return runs


def peers_report(
    opts: Options, run: GatewayRun, figures: dict[str, float], runs: list[peer.PeerRun]
) -> dict[str, Any]:
    """Print the side-by-side table; its JSON (every figure of each, the ratios, each peer's phases)."""
    voidllm = side_by_side_figures(run, figures)
    measured = {
        r.peer.name: peer.figures(
            r.phases,
            figures,
            cpu_ms_per_request=r.cpu_ms_per_request,
            rss_peak_mb=r.rss_peak_mb,
            ready_s=r.ready_s,
        )
        for r in runs
    }
    versions = {r.peer.name: peer.version_of(r.peer.command) for r in runs}
    labels = {name: f"{name} {version}" if version else name for name, version in versions.items()}
    rows = peer.side_by_side(voidllm, {labels[name]: values for name, values in measured.items()})
    print()
    print(
        f"Side by side: the same mock, load and phases (no soak), each gateway pinned to cpus "
        f"{opts.gateway_cpus or 'any'}; ratio = peer / VoidLLM"
    )
    print()
    print(peer.table(rows))
    for r in runs:
        if r.error is not None:
            print(f"note: peer {r.peer.name} failed: {r.error.splitlines()[0]}")
    return {
        "voidllm": voidllm,
        "peers": [
            {
                "name": r.peer.name,
                "command": r.peer.command,
                "version": versions[r.peer.name],
                "figures": measured[r.peer.name],
                "ratios": {
                    f.key: peer.ratio(measured[r.peer.name][f.key], voidllm[f.key]) for f in peer.FIGURES
                },
                "processes": r.processes,
                "rss_hwm_at_start_mb": r.rss_hwm_at_start_mb,
                "exit_code": r.exit_code,
                "error": r.error,
                "phases": r.phases,
            }
            for r in runs
        ],
        "table": rows,
        "markdown": peer.markdown(rows),
    }


def figures_from(run: GatewayRun, baseline: GatewayRun | None) -> dict[str, float]:
    p = run.phases

    def lat(phase: str, key: str) -> float:
        return float(p[phase]["latency_ms"].get(key, math.nan))

    f: dict[str, float] = {
        "rps_direct_c32": p["rps_direct_c32"]["rps"],
        "rps_proxied_c32": p["rps_proxied_c32"]["rps"],
        "errors_direct_c32": p["rps_direct_c32"]["errors"],
        "errors_proxied_c32": p["rps_proxied_c32"]["errors"],
        "latency_direct_p50_ms": lat("latency_direct_c1", "p50"),
        "latency_direct_p99_ms": lat("latency_direct_c1", "p99"),
        "latency_proxied_p50_ms": lat("latency_proxied_c1", "p50"),
        "latency_proxied_p99_ms": lat("latency_proxied_c1", "p99"),
        "overhead_header_p50_ms": float(p["latency_proxied_c1"]["overhead_ms"].get("p50", math.nan)),
        "overhead_header_p99_ms": float(p["latency_proxied_c1"]["overhead_ms"].get("p99", math.nan)),
        "ttft_direct_p50_ms": p["stream_direct"]["ttft_ms"]["p50"],
        "ttft_proxied_p50_ms": p["stream_proxied"]["ttft_ms"]["p50"],
        "ttft_direct_p99_ms": p["stream_direct"]["ttft_ms"]["p99"],
        "ttft_proxied_p99_ms": p["stream_proxied"]["ttft_ms"]["p99"],
        "chunk_gap_direct_p50_ms": p["stream_direct"]["gap_ms"]["p50"],
        "chunk_gap_proxied_p50_ms": p["stream_proxied"]["gap_ms"]["p50"],
        "chunk_gap_direct_p99_ms": p["stream_direct"]["gap_ms"]["p99"],
        "chunk_gap_proxied_p99_ms": p["stream_proxied"]["gap_ms"]["p99"],
        "streams_direct": p["stream_direct"]["streams"],
        "streams_proxied": p["stream_proxied"]["streams"],
        "rss_peak_mb": run.rss_peak_mb,
        "rss_peak_total_mb": run.rss_peak_total_mb,
        "rss_first_half_mb": run.rss_first_half_mb,
        "rss_second_half_mb": run.rss_second_half_mb,
        "soak_requests": p["soak_proxied"]["requests"],
        "soak_errors": p["soak_proxied"]["errors"],
        "soak_rps": p["soak_proxied"]["rps"],
        "usage_events_written": run.usage_rows,
        "usage_events_dropped": run.metrics.get("voidllm_usage_events_dropped_total", math.nan),
        "gateway_processes": run.processes,
        "start_to_ready_s": run.start_to_ready_s,
        "start_to_first_200_s": run.first_200_s,
    }
    rps = p["rps_proxied_c32"]
    f["cpu_ms_per_request_c32"] = (
        1000 * rps["gateway_cpu_s"] / rps["requests"] if rps["requests"] else math.nan
    )
    f["added_latency_p50_ms"] = f["latency_proxied_p50_ms"] - f["latency_direct_p50_ms"]
    f["added_latency_p99_ms"] = f["latency_proxied_p99_ms"] - f["latency_direct_p99_ms"]
    f["added_ttft_p50_ms"] = f["ttft_proxied_p50_ms"] - f["ttft_direct_p50_ms"]
    f["added_chunk_gap_p50_ms"] = f["chunk_gap_proxied_p50_ms"] - f["chunk_gap_direct_p50_ms"]
    f["rss_growth_mb"] = f["rss_second_half_mb"] - f["rss_first_half_mb"]
    f["errors_direct"] = sum(
        float(p[k]["errors"]) for k in ("rps_direct_c32", "latency_direct_c1", "stream_direct")
    )
    f["errors_proxied"] = sum(
        float(p[k]["errors"])
        for k in ("rps_proxied_c32", "latency_proxied_c1", "stream_proxied", "soak_proxied")
    )
    f["errors_total"] = f["errors_direct"] + f["errors_proxied"]
    if baseline is not None:
        one = baseline.phases["rps_proxied_c32"]["rps"]
        f["rps_proxied_c32_one_worker"] = one
        f["workers_speedup"] = f["rps_proxied_c32"] / one if one else math.nan
    return {k: float(v) for k, v in f.items()}


async def bench(opts: Options, json_path: Path) -> int:
    started = dt.datetime.now(dt.UTC)
    return await procs.in_workdir(opts.keep, lambda workdir: _bench(opts, workdir, json_path, started))


async def _bench(opts: Options, workdir: Path, json_path: Path, started: dt.datetime) -> int:
    python = str(REPO / ".venv" / "bin" / "python")
    load_before = procs.load_average_before(opts.notes)
    procs.log(f"starting the mock upstream (latency {opts.latency_ms:g} ms, cpus {opts.load_cpus or 'any'})")
    mock, mock_port = await procs.start_mock(
        python,
        workdir,
        opts.load_cpus,
        latency_ms=opts.latency_ms,
        chunks=opts.stream_chunks,
        interval_ms=opts.chunk_interval_ms,
    )
    try:
        run = await run_gateway(opts, workdir, mock_port, opts.workers, full=True)
        baseline = None
        if opts.workers > 1:
            baseline = await run_gateway(opts, workdir, mock_port, 1, full=False)
        peer_runs = await run_peers(opts, workdir, mock_port)
    finally:
        await mock.stop(grace=5)
    if run.exit_code not in (0, None):
        opts.notes.append(f"the gateway exited with {run.exit_code} after SIGTERM")
    figures = figures_from(run, baseline)
    checks = {t.key: t.check(figures[t.key]) for t in report.TARGETS}
    if baseline is not None:
        checks["workers_speedup"] = figures["workers_speedup"] >= 0.85 * opts.workers
    if figures["usage_events_dropped"] > 0:
        opts.notes.append(f"the gateway dropped {figures['usage_events_dropped']:.0f} usage events")

    rows = report.rows(figures, checks, opts.workers)
    title = (
        f"VoidLLM benchmark: {opts.workers} worker(s), mock latency {opts.latency_ms:g} ms, "
        f"load generator {opts.load_generator}, gateway cpus {opts.gateway_cpus or 'any'}, "
        f"mock+load cpus {opts.load_cpus or 'any'}{' (quick)' if opts.quick else ''}"
    )
    report.print_table(title, rows, opts.notes)
    peers = peers_report(opts, run, figures, peer_runs) if peer_runs else None

    result = {
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "figures": figures,
        "targets": report.targets_json(report.TARGETS, checks)
        | (
            {
                "workers_speedup": {
                    "op": ">=",
                    "limit": 0.85 * opts.workers,
                    "unit": "x",
                    "pass": checks["workers_speedup"],
                }
            }
            if baseline
            else {}
        ),
        "all_targets_met": all(checks.values()),
        "table": report.table_json(rows),
        "phases": run.phases,
        "baseline_one_worker": baseline.phases if baseline else None,
        "side_by_side": peers,
        "gateway": {
            "processes": run.processes,
            "rss_hwm_by_process_mb": run.rss_hwm_by_process_mb,
            "rss_hwm_at_start_mb": run.rss_hwm_at_start_mb,
            "rss_samples_in_soak": run.rss_samples,
            "metrics": run.metrics,
            "usage_rows": run.usage_rows,
            "exit_code": run.exit_code,
            "stop_seconds": run.stop_seconds,
        },
        "settings": {
            "workers": opts.workers,
            "duration_s": opts.duration,
            "soak_requests": opts.requests,
            "mock_latency_ms": opts.latency_ms,
            "stream_chunks": opts.stream_chunks,
            "chunk_interval_ms": opts.chunk_interval_ms,
            "streams": opts.streams,
            "stream_concurrency": opts.stream_concurrency,
            "warmup_s": opts.warmup,
            "gateway_cpus": opts.gateway_cpus,
            "load_cpus": opts.load_cpus,
            "quick": opts.quick,
            "load_generator": opts.load_generator,
            "peers": [{"name": p.name, "command": p.command} for p in opts.peers],
        },
        "machine": report.machine_info(REPO, sys.version.split()[0], opts.load_generator, opts.cores_usable)
        | ({"wrk": wrk_mod.version(opts.wrk_path)} if opts.wrk_path else {})
        | {"loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg())},
        "notes": opts.notes,
    }
    report.write_json(json_path, result)
    return 1 if any(r.error is not None for r in peer_runs) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=(
            "Benchmark the gateway against the mock upstream: direct vs proxied (ARCHITECTURE.md section 3); "
            "with --codemode, Code Mode's execute_code against an upstream MCP server."
        ),
    )
    parser.add_argument(
        "--codemode",
        action="store_true",
        help="the Code Mode scenario instead (execute_code through /api/v1/mcp: issue 17's targets)",
    )
    parser.add_argument(
        "--otel",
        action="store_true",
        help="proxied RPS with tracing off and on (sample 1.0, a local OTLP collector): issue 21's target",
    )
    parser.add_argument(
        "--guard",
        action="store_true",
        help="the prompt guard's scan of 10 KB texts, every detector on, in process: issue 22's budget",
    )
    parser.add_argument("--iterations", type=int, help="--guard: scans per phase (default 5000; --quick 200)")
    parser.add_argument("--rounds", type=int, default=3, help="--otel: rounds of off/on runs, medians (3)")
    parser.add_argument(
        "--otel-baseline",
        type=Path,
        help="--otel: also run tracing off from this checkout (e.g. a worktree of the commit before tracing)",
    )
    parser.add_argument(
        "--pool-size", type=int, default=8, help="--codemode: settings.mcp.code_mode.pool_size (default 8)"
    )
    parser.add_argument(
        "--executions",
        type=int,
        help="--codemode: tool-call executions in the RSS soak (default 10000; --quick 200)",
    )
    parser.add_argument("--workers", type=int, default=1, help="server.workers of the gateway (default 1)")
    parser.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="CMD",
        help=(
            "also run this OpenAI-compatible gateway (a bash command; repeatable) under the same load, "
            "pinned like the gateway, and print a side-by-side table with ratios. Placeholders: {port} "
            "(listen there), {upstream} (the mock's base URL), {model}, {key} (the bearer key sent), "
            "{config} (a generated LiteLLM config), {workdir}; also as BENCH_PEER_PORT, BENCH_UPSTREAM, "
            "BENCH_MODEL, "
            "BENCH_PEER_KEY, BENCH_LITELLM_CONFIG, BENCH_PEER_DIR. E.g. --peer "
            "'LITELLM_LOCAL_MODEL_COST_MAP=True ~/litellm-venv/bin/litellm --config {config} "
            "--host 127.0.0.1 --port {port}'"
        ),
    )
    parser.add_argument(
        "--peer-timeout",
        type=float,
        default=120.0,
        help="seconds a --peer may take to answer its first chat completion (120)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        help="seconds per measured phase (default 10; --quick 1, --codemode --quick 0.5)",
    )
    parser.add_argument(
        "--requests", type=int, help="proxied requests in the soak (default 100000; --quick 2000)"
    )
    parser.add_argument(
        "--json", type=Path, help="where to write the results (default bench-results/<time>.json)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--latency", default="10ms", help="the mock's latency before response headers (10ms)")
    parser.add_argument("--stream-chunks", type=int, default=20, help="content chunks per stream (20)")
    parser.add_argument(
        "--chunk-interval", default="5ms", help="the mock's delay between stream events (5ms)"
    )
    parser.add_argument("--streams", type=int, help="streams per side (default 200; --quick 10)")
    parser.add_argument(
        "--stream-concurrency",
        type=int,
        default=1,
        help="concurrent streams (default 1: TTFT like the latency, without queueing)",
    )
    parser.add_argument(
        "--load-generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk when installed (auto), or the built-in trio/h11 client",
    )
    parser.add_argument("--gateway-cpus", help="taskset list for the gateway (default 0)")
    parser.add_argument("--load-cpus", help="taskset list for the mock and the load (default 1)")
    parser.add_argument("--check", action="store_true", help="exit with status 3 when a target is missed")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary work directory (configs, logs)"
    )
    return parser


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(us|ms|s)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 10ms)")
    value, unit = float(match.group(1)), match.group(2) or "ms"
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _interrupted(exc: BaseException) -> bool:
    if isinstance(exc, KeyboardInterrupt | procs.Interrupted):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_interrupted(e) for e in exc.exceptions)
    return False


def _messages(exc: BaseException) -> list[str]:
    if isinstance(exc, BaseExceptionGroup):
        return [m for e in exc.exceptions for m in _messages(e)]
    return [f"{type(exc).__name__}: {exc}"]


def _proxy_options(parser: argparse.ArgumentParser, args: argparse.Namespace, notes: list[str]) -> Options:
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    wrk_path = wrk_mod.available() if args.load_generator in ("auto", "wrk") else None
    if args.load_generator == "wrk" and wrk_path is None:
        parser.error("--load-generator wrk: wrk is not installed (apt-get install wrk)")
    if args.load_generator == "auto" and wrk_path is None:
        notes.append("wrk is not installed: using the built-in Python load generator (apt-get install wrk)")
    gateway_cpus, load_cpus = cpu_layout(args.workers, args.gateway_cpus, args.load_cpus, notes)
    try:
        latency_ms, interval_ms = _milliseconds(args.latency), _milliseconds(args.chunk_interval)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    return Options(
        workers=args.workers,
        duration=args.duration if args.duration is not None else (1.0 if args.quick else 10.0),
        requests=args.requests if args.requests is not None else (2000 if args.quick else 100_000),
        latency_ms=latency_ms,
        stream_chunks=args.stream_chunks,
        chunk_interval_ms=interval_ms,
        streams=args.streams if args.streams is not None else (10 if args.quick else 200),
        stream_concurrency=args.stream_concurrency,
        warmup=1.0 if args.quick else 2.0,
        load_generator="wrk" if wrk_path else "python",
        wrk_path=wrk_path,
        gateway_cpus=gateway_cpus,
        load_cpus=load_cpus,
        quick=args.quick,
        keep=args.keep,
        cores_usable=len(os.sched_getaffinity(0)),
        notes=notes,
        peers=peer.peers_from(args.peer),
        peer_timeout=args.peer_timeout,
    )


def _codemode_options(
    parser: argparse.ArgumentParser, args: argparse.Namespace, notes: list[str]
) -> codemode.Options:
    if args.workers != 1 or args.load_generator == "wrk":
        parser.error("--codemode runs one gateway worker and the built-in load generator")
    if not 1 <= args.pool_size <= 32:
        parser.error("--pool-size must be between 1 and 32 (settings.mcp.code_mode.pool_size)")
    gateway_cpus, load_cpus = cpu_layout(1, args.gateway_cpus, args.load_cpus, notes)
    executions = args.executions if args.executions is not None else (200 if args.quick else 10_000)
    return codemode.Options(
        pool_size=args.pool_size,
        duration=args.duration if args.duration is not None else (0.5 if args.quick else 10.0),
        executions=max(executions, codemode.SOAK_CHUNKS),
        warmup=40 if args.quick else 500,
        gateway_cpus=gateway_cpus,
        load_cpus=load_cpus,
        quick=args.quick,
        keep=args.keep,
        cores_usable=len(os.sched_getaffinity(0)),
        notes=notes,
    )


def _guard_options(
    parser: argparse.ArgumentParser, args: argparse.Namespace, notes: list[str]
) -> guard.Options:
    iterations = args.iterations if args.iterations is not None else (200 if args.quick else 5000)
    if iterations < 1:
        parser.error("--iterations must be at least 1")
    cpus = args.gateway_cpus
    if cpus is None and shutil.which("taskset"):
        cpus = str(min(os.sched_getaffinity(0)))
    return guard.Options(iterations=iterations, cpus=cpus, quick=args.quick, notes=notes)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    notes: list[str] = []
    opts: Options | codemode.Options | otel.Options | guard.Options
    if args.peer and (args.guard or args.codemode or args.otel):
        parser.error("--peer runs with the default scenario only (not --codemode, --otel or --guard)")
    if args.guard:
        opts, scenario = _guard_options(parser, args, notes), guard.bench
    elif args.codemode:
        opts, scenario = _codemode_options(parser, args, notes), codemode.bench
    elif args.otel:
        if args.workers != 1 or args.rounds < 1:
            parser.error("--otel runs one gateway worker, at least one round")
        opts = otel.Options(_proxy_options(parser, args, notes), args.rounds, args.otel_baseline)
        scenario = otel.bench
    else:
        opts, scenario = _proxy_options(parser, args, notes), bench
    if isinstance(opts, guard.Options):
        load_cpus = opts.cpus  # the guard runs in this process
    else:
        load_cpus = opts.proxy.load_cpus if isinstance(opts, otel.Options) else opts.load_cpus
    if load_cpus is not None:
        os.sched_setaffinity(0, _cpu_list(load_cpus))  # this process is the Python load generator
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path = args.json if args.json is not None else REPO / "bench-results" / f"{stamp}.json"
    try:
        code = trio.run(scenario, opts, json_path)
    except BaseException as exc:
        if _interrupted(exc):
            print("\nbench: interrupted; every started process was stopped", file=sys.stderr)
            return 130
        if isinstance(exc, SystemExit):
            raise
        for message in _messages(exc):
            print(f"bench: error: {message}", file=sys.stderr)
        return 1
    finally:
        procs.kill_all()
    if args.check and code == 0:
        result = json.loads(json_path.read_text())
        return 0 if result["all_targets_met"] else 3
    return code
