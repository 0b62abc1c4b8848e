"""Figures, targets, the printed table and machine information for the JSON report."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from collections.abc import Sequence

# The targets (one worker process). RSS growth: "no growth" between the first and second half of the
# soak, with a tolerance for allocator noise.
RSS_GROWTH_TOLERANCE_MB = 2.0


@attrs.frozen
class Target:
    key: str
    op: str  # ">=" or "<="
    limit: float
    unit: str

    def check(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value >= self.limit if self.op == ">=" else value <= self.limit

    def text(self) -> str:
        return f"{self.op} {self.limit:g}{(' ' + self.unit) if self.unit else ''}"


TARGETS: tuple[Target, ...] = (
    Target("rps_proxied_c32", ">=", 600, "req/s"),
    Target("errors_total", "<=", 0, ""),
    Target("added_latency_p50_ms", "<=", 1.5, "ms"),
    Target("added_latency_p99_ms", "<=", 3.0, "ms"),
    Target("added_ttft_p50_ms", "<=", 2.0, "ms"),
    Target("added_chunk_gap_p50_ms", "<=", 0.5, "ms"),
    Target("rss_peak_mb", "<=", 150, "MB"),
    Target("rss_growth_mb", "<=", RSS_GROWTH_TOLERANCE_MB, "MB"),
    Target("start_to_ready_s", "<=", 1.0, "s"),  # issue 23
)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[index]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def latency_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9, min, max and mean of latencies given in seconds, in milliseconds."""
    out = {f"p{p:g}": percentile(seconds, p) * 1000 for p in (50, 90, 99, 99.9)}
    out |= {
        "min": min(seconds, default=math.nan) * 1000,
        "max": max(seconds, default=math.nan) * 1000,
        "mean": mean(seconds) * 1000,
    }
    return out


def finite(value: Any) -> Any:
    """NaN and infinities become null in the JSON (a missing figure must not look like a number)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def machine_info(repo: Path, gateway_python: str, load_generator: str, cores_usable: int) -> dict[str, Any]:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count() or 0,
        "cores_usable": cores_usable,
        "python_version": gateway_python,
        "platform": platform.platform(),
        "kernel": platform.release(),
        "git_commit": git("rev-parse", "HEAD") or "unknown",
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "load_generator": load_generator,
    }


def _fmt(value: float, digits: int = 2) -> str:
    """A float for the table: thousands separated above 1,000, else ``digits`` decimals; n/a for NaN."""
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _int(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f}"


def rows(figures: dict[str, float], checks: dict[str, bool], workers: int) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, result) rows of the printed table."""
    targets = {t.key: t for t in TARGETS}
    f = figures

    def row(label: str, value: str, key: str | None = None) -> tuple[str, str, str, str]:
        if key is None or key not in targets:
            return (label, value, "", "")
        return (label, value, targets[key].text(), "PASS" if checks.get(key) else "FAIL")

    out = [
        row("RPS direct, 32 connections", f"{_fmt(f['rps_direct_c32'], 1)} req/s"),
        row("RPS proxied, 32 connections", f"{_fmt(f['rps_proxied_c32'], 1)} req/s", "rps_proxied_c32"),
        row(
            "errors (all phases: direct / proxied)",
            f"{_int(f['errors_direct'])} / {_int(f['errors_proxied'])}",
            "errors_total",
        ),
        row(
            "latency direct p50 / p99, 1 connection",
            f"{_fmt(f['latency_direct_p50_ms'])} / {_fmt(f['latency_direct_p99_ms'])} ms",
        ),
        row(
            "latency proxied p50 / p99, 1 connection",
            f"{_fmt(f['latency_proxied_p50_ms'])} / {_fmt(f['latency_proxied_p99_ms'])} ms",
        ),
        row(
            "added latency p50, 1 connection", f"{_fmt(f['added_latency_p50_ms'])} ms", "added_latency_p50_ms"
        ),
        row(
            "added latency p99, 1 connection", f"{_fmt(f['added_latency_p99_ms'])} ms", "added_latency_p99_ms"
        ),
        row(
            "X-VoidLLM-Overhead-Ms p50 / p99 (cross-check)",
            f"{_fmt(f['overhead_header_p50_ms'], 3)} / {_fmt(f['overhead_header_p99_ms'], 3)} ms",
        ),
        row(
            "stream TTFT direct / proxied p50",
            f"{_fmt(f['ttft_direct_p50_ms'])} / {_fmt(f['ttft_proxied_p50_ms'])} ms",
        ),
        row("added streaming TTFT p50", f"{_fmt(f['added_ttft_p50_ms'])} ms", "added_ttft_p50_ms"),
        row(
            "inter-chunk gap direct / proxied p50",
            f"{_fmt(f['chunk_gap_direct_p50_ms'], 3)} / {_fmt(f['chunk_gap_proxied_p50_ms'], 3)} ms",
        ),
        row(
            "added inter-chunk delay p50",
            f"{_fmt(f['added_chunk_gap_p50_ms'], 3)} ms",
            "added_chunk_gap_p50_ms",
        ),
        row("peak RSS (VmHWM, largest gateway process)", f"{_fmt(f['rss_peak_mb'], 1)} MB", "rss_peak_mb"),
        row(
            "start to ready (spawn to listening, fresh SQLite)",
            f"{_fmt(f['start_to_ready_s'])} s",
            "start_to_ready_s",
        ),
    ]
    if workers > 1 or f["gateway_processes"] > 1:
        out.append(
            row(
                f"peak RSS, sum of {f['gateway_processes']:.0f} gateway processes",
                f"{_fmt(f['rss_peak_total_mb'], 1)} MB",
            )
        )
    out += [
        row("soak: proxied requests / RPS", f"{_int(f['soak_requests'])} / {_fmt(f['soak_rps'], 1)} req/s"),
        row(
            "RSS mean, 1st / 2nd half of soak",
            f"{_fmt(f['rss_first_half_mb'], 1)} / {_fmt(f['rss_second_half_mb'], 1)} MB",
        ),
        row("RSS growth (2nd half - 1st half)", f"{f['rss_growth_mb']:+.2f} MB", "rss_growth_mb"),
        row(
            "usage events written / dropped",
            f"{_int(f['usage_events_written'])} / {_int(f['usage_events_dropped'])}",
        ),
    ]
    if workers > 1:
        label = f"speedup, {workers} workers vs 1 (32 connections)"
        value = f"{_fmt(f['workers_speedup'])}x ({_fmt(f['rps_proxied_c32_one_worker'], 1)} req/s with 1)"
        target = f">= {0.85 * workers:g}x"
        out.append((label, value, target, "PASS" if checks.get("workers_speedup") else "FAIL"))
    return out


def table(rows_: list[tuple[str, str, str, str]]) -> str:
    header = ("figure", "value", "target", "result")
    widths = [max(len(r[i]) for r in [header, *rows_]) for i in range(4)]
    lines = []
    for r in [header, tuple("-" * w for w in widths), *rows_]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def print_table(title: str, rows_: list[tuple[str, str, str, str]], notes: list[str]) -> None:
    """The run's title, its table and its notes on stdout."""
    print()
    print(title)
    print()
    print(table(rows_))
    for note in notes:
        print(f"note: {note}")


def targets_json(targets: Sequence[Target], checks: dict[str, bool]) -> dict[str, dict[str, Any]]:
    return {t.key: {"op": t.op, "limit": t.limit, "unit": t.unit, "pass": checks[t.key]} for t in targets}


def table_json(rows_: list[tuple[str, str, str, str]]) -> list[dict[str, str]]:
    return [dict(zip(("figure", "value", "target", "result"), r, strict=True)) for r in rows_]


def write_json(path: Path, result: dict[str, Any]) -> None:
    """The result as JSON (NaN as null), and a line on stdout that says where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(finite(result), indent=2, allow_nan=False) + "\n")
    print(f"\nJSON: {path}")
