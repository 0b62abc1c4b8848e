"""``scripts/bench --otel``: proxied throughput with tracing off and on (issue 21's target).

Layout as in :mod:`bench_lib.run`: ``voidllm serve`` (fresh SQLite, one worker) pinned to core 0; the mock
upstream, a small OTLP/HTTP collector (:mod:`voidllm.testing.otlp_sink`, counting the spans it decodes) and
the load pinned to core 1. Each round starts a fresh gateway per variant, in this order, so slow drift of a
busy machine hits them alike:

- ``off``: ``settings.otel`` as shipped (disabled);
- ``on``: ``settings.otel.enabled`` with ``sample_rate: 1.0``, exporting to the collector (every request makes
  a server span and an attempt span, both exported);
- ``baseline`` (only with ``--otel-baseline PATH``): tracing off, running the code of another checkout (for
  instance a worktree of the commit before tracing), for "off costs nothing measurable".

Per variant and round: a warm-up, then RPS at 32 connections (non-streaming chat completions) for
``--duration`` seconds, and the gateway's CPU time (user + system) per request in that time. The figures are
the medians over ``--rounds`` rounds. The target is on >= 85 % of off, taken round by round: each round's
``on`` runs right after its ``off``, so their ratio cancels what the machine does between rounds (on this
2-core VM, tracing-off RPS moved from 517 to 844 within one run), and the figure is the median of the
rounds' ratios; the ratio of the two medians is printed too. On a busy machine (other processes on
the gateway's core) RPS follows the neighbours more than the gateway; CPU per request moves much less with
them, so its ratio ("capacity": what one core can serve) is printed beside it.
After each ``on`` run the gateway's ``voidllm_otel_*`` counters are read, and the collector's span count is
checked against them, so a run whose spans were dropped instead of exported is visible.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import statistics
import sys
from pathlib import Path
from typing import Any

import attrs

from bench_lib import client, procs, report
from bench_lib import run as run_mod

REPO = Path(__file__).resolve().parents[2]
LAUNCH = "; ".join(
    (
        "import sys",
        "sys.path.insert(0, sys.argv.pop(1))",
        "from voidllm.cli import main",
        "sys.exit(main(sys.argv[1:]))",
    )
)
"""Runs ``voidllm`` from the checkout given as the first argument (the baseline variant, and this one)."""
_SINK_LISTENING = re.compile(r"listening http://127\.0\.0\.1:(\d+)")
_SINK_RECEIVED = re.compile(r"received (\d+) spans")
_OTEL_SAMPLES = re.compile(r"(voidllm_otel_\w+_total(?:\{[^}]*\})?) (\S+)")
TARGET = report.Target("rps_on_over_off_paired", ">=", 0.85, "")


@attrs.define
class Options:
    proxy: run_mod.Options
    rounds: int
    baseline: Path | None


def otel_settings(sink_port: int) -> str:
    return f"otel:\n  enabled: true\n  endpoint: http://127.0.0.1:{sink_port}\n  sample_rate: 1.0\n"


async def one_run(
    opts: Options, workdir: Path, mock_port: int, name: str, tree: Path, settings: str
) -> dict[str, Any]:
    """A fresh gateway of ``tree`` with ``settings``: warm-up, RPS at 32 connections, its otel counters."""
    gwdir = workdir / f"{name}-{secrets.token_hex(3)}"
    gwdir.mkdir()
    config = procs.gateway_config(
        gwdir, secrets.token_hex(24), models=procs.mock_model(mock_port), settings=settings
    )
    python = str(REPO / ".venv" / "bin" / "python")
    gateway, port, key = await procs.start_gateway(
        python, gwdir, config, opts.proxy.gateway_cpus, prefix=["-c", LAUNCH, str(tree)]
    )
    target = run_mod.Target(name, port, key)
    try:
        await run_mod.load_phase(opts.proxy, gwdir, target, connections=32, duration=opts.proxy.warmup)
        cpu_before = sum(procs.cpu_seconds(gateway.pid).values())
        result = await run_mod.load_phase(
            opts.proxy, gwdir, target, connections=32, duration=opts.proxy.duration
        )
        cpu = sum(procs.cpu_seconds(gateway.pid).values()) - cpu_before
        result["gateway_cpu_s"] = cpu
        result["cpu_us_per_request"] = cpu / result["requests"] * 1e6 if result["requests"] else float("nan")
        result["otel_metrics"] = await client.metrics(port, _OTEL_SAMPLES)
    finally:
        result_code = await gateway.stop(grace=30)
    result["exit_code"] = result_code
    return result


async def bench(opts: Options, json_path: Path) -> int:
    started = dt.datetime.now(dt.UTC)
    return await procs.in_workdir(opts.proxy.keep, lambda workdir: _bench(opts, workdir, json_path, started))


async def _bench(opts: Options, workdir: Path, json_path: Path, started: dt.datetime) -> int:
    proxy = opts.proxy
    python = str(REPO / ".venv" / "bin" / "python")
    load_before = procs.load_average_before(proxy.notes)
    procs.log(f"starting the mock upstream and the OTLP collector (cpus {proxy.load_cpus or 'any'})")
    mock, mock_port = await procs.start_mock(
        python,
        workdir,
        proxy.load_cpus,
        latency_ms=proxy.latency_ms,
        chunks=proxy.stream_chunks,
        interval_ms=proxy.chunk_interval_ms,
    )
    sink = procs.start(
        "otlp-sink",
        [python, "-m", "voidllm.testing.otlp_sink", "--port", "0", "--count-only"],
        workdir,
        proxy.load_cpus,
    )
    variants: list[tuple[str, Path, str]] = [("off", REPO, ""), ("on", REPO, "")]
    if opts.baseline is not None:
        variants.append(("baseline", opts.baseline, ""))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
    try:
        sink_port = int((await sink.wait_for(_SINK_LISTENING, within=20)).group(1))
        for round_ in range(1, opts.rounds + 1):
            for name, tree, _ in variants:
                settings = otel_settings(sink_port) if name == "on" else ""
                procs.log(
                    f"round {round_}/{opts.rounds}: tracing {name}, {proxy.duration:g} s at 32 connections"
                )
                runs[name].append(await one_run(opts, workdir, mock_port, name, tree, settings))
    finally:
        await mock.stop(grace=5)
        await sink.stop(grace=5)
    received = _SINK_RECEIVED.search(sink.output())
    spans_received = int(received.group(1)) if received else -1
    figures = figures_from(runs, spans_received)
    checks = {TARGET.key: TARGET.check(figures[TARGET.key])}
    rows = _rows(figures, checks, runs)
    title = (
        f"VoidLLM tracing benchmark: {opts.rounds} round(s), median RPS at 32 connections, "
        f"mock latency {proxy.latency_ms:g} ms, load generator {proxy.load_generator}, "
        f"gateway cpus {proxy.gateway_cpus or 'any'}{' (quick)' if proxy.quick else ''}"
    )
    report.print_table(title, rows, proxy.notes)
    result = {
        "scenario": "otel",
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "figures": figures,
        "targets": report.targets_json((TARGET,), checks),
        "all_targets_met": all(checks.values()),
        "table": report.table_json(rows),
        "runs": runs,
        "settings": {
            "rounds": opts.rounds,
            "duration_s": proxy.duration,
            "mock_latency_ms": proxy.latency_ms,
            "baseline": str(opts.baseline) if opts.baseline else None,
            "gateway_cpus": proxy.gateway_cpus,
            "load_cpus": proxy.load_cpus,
        },
        "machine": report.machine_info(REPO, sys.version.split()[0], proxy.load_generator, proxy.cores_usable)
        | {"loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg())},
        "notes": proxy.notes,
    }
    report.write_json(json_path, result)
    return 0


def figures_from(runs: dict[str, list[dict[str, Any]]], spans_received: int) -> dict[str, float]:
    f: dict[str, float] = {}
    for name, results in runs.items():
        f[f"rps_{name}"] = statistics.median(r["rps"] for r in results)
        f[f"errors_{name}"] = float(sum(r["errors"] for r in results))
    f["rps_on_over_off"] = f["rps_on"] / f["rps_off"] if f["rps_off"] else float("nan")
    paired = [on["rps"] / off["rps"] for off, on in zip(runs["off"], runs["on"], strict=True) if off["rps"]]
    f["rps_on_over_off_paired"] = statistics.median(paired) if paired else float("nan")
    for name, results in runs.items():
        f[f"cpu_us_per_request_{name}"] = statistics.median(r["cpu_us_per_request"] for r in results)
    f["capacity_on_over_off"] = f["cpu_us_per_request_off"] / f["cpu_us_per_request_on"]
    if "rps_baseline" in f:
        f["capacity_off_over_baseline"] = f["cpu_us_per_request_baseline"] / f["cpu_us_per_request_off"]
    if "rps_baseline" in f:
        f["rps_off_over_baseline"] = f["rps_off"] / f["rps_baseline"] if f["rps_baseline"] else float("nan")
    exported = sum(r["otel_metrics"].get("voidllm_otel_spans_exported_total", 0.0) for r in runs["on"])
    dropped = sum(
        value
        for r in runs["on"]
        for key, value in r["otel_metrics"].items()
        if key.startswith("voidllm_otel_spans_dropped")
    )
    f["spans_exported_at_scrape"] = exported
    f["spans_dropped"] = dropped
    f["spans_received"] = float(spans_received)
    f["requests_on"] = float(sum(r["requests"] for r in runs["on"]))
    return f


def _rows(
    f: dict[str, float], checks: dict[str, bool], runs: dict[str, list[dict[str, Any]]]
) -> list[tuple[str, str, str, str]]:
    def each(name: str, key: str = "rps") -> str:
        return ", ".join(f"{r[key]:.0f}" for r in runs[name])

    def paired_each() -> str:
        return ", ".join(
            f"{on['rps'] / off['rps'] * 100:.0f}" for off, on in zip(runs["off"], runs["on"], strict=True)
        )

    def cpu(name: str) -> tuple[str, str, str, str]:
        value = f"{f['cpu_us_per_request_' + name]:.0f} us  [{each(name, 'cpu_us_per_request')}]"
        return (f"gateway CPU per request, {name} (median)", value, "", "")

    out = [
        ("RPS tracing off (median)", f"{f['rps_off']:.1f} req/s  [{each('off')}]", "", ""),
        ("RPS tracing on, sample 1.0 (median)", f"{f['rps_on']:.1f} req/s  [{each('on')}]", "", ""),
        (
            "on / off, round by round (median)",
            f"{f['rps_on_over_off_paired'] * 100:.1f} %  [{paired_each()}]",
            TARGET.text(),
            "PASS" if checks[TARGET.key] else "FAIL",
        ),
        ("on / off, of the medians", f"{f['rps_on_over_off'] * 100:.1f} %", "", ""),
    ]
    out += [
        cpu("off"),
        cpu("on"),
        ("capacity on / off (CPU per request off / on)", f"{f['capacity_on_over_off'] * 100:.1f} %", "", ""),
    ]
    if "rps_baseline" in f:
        out += [
            (
                "RPS baseline checkout, off (median)",
                f"{f['rps_baseline']:.1f} req/s  [{each('baseline')}]",
                "",
                "",
            ),
            ("off / baseline", f"{f['rps_off_over_baseline'] * 100:.1f} %", "", ""),
            cpu("baseline"),
            ("capacity off / baseline", f"{f['capacity_off_over_baseline'] * 100:.1f} %", "", ""),
        ]
    out += [
        (
            "spans received by the collector",
            f"{f['spans_received']:.0f} (requests traced: {f['requests_on']:.0f}+warm-up)",
            "",
            "",
        ),
        ("spans dropped (queue full, export failed)", f"{f['spans_dropped']:.0f}", "", ""),
        ("errors off / on", f"{f['errors_off']:.0f} / {f['errors_on']:.0f}", "", ""),
    ]
    return out
