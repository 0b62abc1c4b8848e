"""``scripts/bench --codemode``: the MCP proxy's ``tools/call`` and Code Mode's ``execute_code`` end to end
over HTTP (issue 17's targets; issue 23's added latency of both paths).

Layout as in :mod:`bench_lib.run`: ``voidllm serve`` (fresh SQLite, one worker, ``settings.mcp.code_mode`` on
with ``--pool-size`` slots) pinned to core 0; an upstream MCP server (:mod:`bench_lib.mcp_upstream`, the
``mcp`` SDK's server whose ``echo`` answers at once) and this process, the load, pinned to core 1. The
upstream is registered as the global server ``tools``. Every request is one HTTP POST in the stateless
2026-07-28 era (no session, no handshake, and accepting only ``application/json``, so no event stream: the
cheapest client path), and every answer is checked (a JSON-RPC answer carries a failed script in a 200).

Phases, in order:

1. warm-up: 500 executions (``--quick``: 40), half of them a tool call, at ``pool_size`` connections;
2. latency at one connection, ``--duration`` s each: ``echo`` directly at the upstream (the tool's own time,
   as the gateway sees it), ``echo`` through the gateway's MCP proxy (``/api/v1/mcp/tools``), the trivial
   script (``return 1``) and the one-tool-call script through ``/api/v1/mcp``;
3. concurrency: ``echo`` directly and through the MCP proxy, then both scripts, at ``pool_size`` connections,
   ``--duration`` s each (every execution has a slot; the error count must be 0);
4. soak: ``--executions`` of the tool-call script at ``pool_size`` connections in ten chunks; the gateway's
   RSS (VmRSS summed over its process tree) before the first chunk and after each one.

"Tool call added" is the one-tool-call script minus ``echo`` at the upstream, of the same percentile: what the
sandbox, the bridge and the proxy path add to the tool's own time. "MCP call added" is ``echo`` through the
gateway's MCP proxy minus ``echo`` at the upstream, at one connection and at ``pool_size`` connections: what
the proxied ``tools/call`` path (auth, access, the upstream client) adds.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import trio

from bench_lib import client, procs, report

if TYPE_CHECKING:
    from collections.abc import Callable

REPO = Path(__file__).resolve().parents[2]
ALIAS = "tools"
TRIVIAL = "return 1"
TOOL_CALL = f'return (await tools.{ALIAS}.echo({{text: "x"}})).text'
CODE_MODE_PATH = b"/api/v1/mcp"
PROXY_PATH = f"/api/v1/mcp/{ALIAS}".encode()
SOAK_CHUNKS = 10
_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "voidllm-bench", "version": "1"},
}

TARGETS: tuple[report.Target, ...] = (
    report.Target("trivial_p50_ms", "<=", 2.0, "ms"),
    report.Target("tool_added_p50_ms", "<=", 2.5, "ms"),
    report.Target("errors_concurrent", "<=", 0, ""),
    report.Target("rss_growth_mb", "<=", 5.0, "MB"),
)


@attrs.define
class Options:
    pool_size: int
    duration: float
    executions: int
    warmup: int
    gateway_cpus: str | None
    load_cpus: str | None
    quick: bool
    keep: bool
    cores_usable: int
    notes: list[str] = attrs.field(factory=list)


# Requests and the checks of their answers ------------------------------------------------------------------


def call_body(tool: str, arguments: dict[str, Any]) -> bytes:
    params = {"name": tool, "arguments": arguments, "_meta": _META}
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})


def call_headers(tool: str, key: str | None) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", b"application/json"),
        (b"accept", b"application/json"),  # an answer in one JSON body, never an event stream
        (b"mcp-protocol-version", b"2026-07-28"),
        (b"mcp-method", b"tools/call"),
        (b"mcp-name", tool.encode()),
    ]
    if key is not None:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    return headers


def _result(body: bytes) -> dict[str, Any] | None:
    """The ``result`` of a JSON-RPC answer that is not a tool error, else None."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    result = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(result, dict) or result.get("isError"):
        return None
    return result


def script_returned(expected: Any) -> Callable[[bytes], bool]:
    """A check: the ``execute_code`` answer succeeded and its ``result`` is ``expected``."""

    def check(body: bytes) -> bool:
        result = _result(body)
        if result is None:
            return False
        try:
            return bool(orjson.loads(result["content"][0]["text"])["result"] == expected)
        except (KeyError, IndexError, TypeError, orjson.JSONDecodeError):
            return False

    return check


def echoed(body: bytes) -> bool:
    """A check: ``echo`` answered ``{"text": "x"}``."""
    result = _result(body)
    return result is not None and result.get("structuredContent") == {"text": "x"}


# The processes ----------------------------------------------------------------------------------------------

_UPSTREAM_LISTENING = re.compile(r"listening http://127\.0\.0\.1:(\d+)/mcp")


async def start_upstream(python: str, workdir: Path, cpus: str | None) -> tuple[procs.Child, int]:
    argv = [python, str(Path(__file__).with_name("mcp_upstream.py"))]
    child = procs.start("mcp-upstream", argv, workdir, cpus)
    match = await child.wait_for(_UPSTREAM_LISTENING, within=30)
    return child, int(match.group(1))


def gateway_config(workdir: Path, pool_size: int, secret: str) -> Path:
    """Loopback on an ephemeral port, fresh SQLite, no model, Code Mode on with ``pool_size`` slots."""
    settings = f"""\
mcp:
  allow_private_urls: true
  health:
    enabled: false
  code_mode:
    enabled: true
    pool_size: {pool_size}
"""
    return procs.gateway_config(workdir, secret, settings=settings)


async def register_upstream(port: int, key: str, upstream_port: int) -> None:
    """Register the upstream as the global MCP server ``tools`` through the admin API."""
    body = {"name": "Bench tools", "alias": ALIAS, "url": f"http://127.0.0.1:{upstream_port}/mcp"}
    headers = [(b"content-type", b"application/json"), (b"authorization", f"Bearer {key}".encode())]
    conn = client.Connection(port)
    try:
        status, _, answer, _ = await conn.fetch(b"/api/v1/mcp-servers", headers, orjson.dumps(body))
    finally:
        await conn.close()
    if status != 201:
        raise RuntimeError(f"registering the upstream MCP server answered {status}: {answer[:500]!r}")


def rss_mb(root: int) -> float:
    """VmRSS of ``root`` and every process below it, in MB."""
    return sum((procs.memory_kb(pid) or (0, 0))[0] for pid in procs.descendants(root)) / 1024


_CODE_MODE_SAMPLES = re.compile(r"(voidllm_code_mode_(?:executions_total|pool_available)\S*) (\S+)")


# Phases -----------------------------------------------------------------------------------------------------


@attrs.frozen
class Call:
    """What a phase sends (port, path, headers, body) and how it checks each answer."""

    port: int
    path: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    check: Callable[[bytes], bool]


async def phase(
    call: Call,
    *,
    connections: int,
    gateway: int | None,
    duration: float | None = None,
    requests: int | None = None,
) -> dict[str, Any]:
    """One closed-loop run of ``call``; with ``gateway`` (its pid), also its CPU time per request, in all and
    split into its main thread (HTTP, MCP, the trio side of tool calls) and its other threads (the sandbox's
    workers running QuickJS, the epoch ticker)."""
    cpu_before = procs.cpu_seconds(gateway) if gateway is not None else {}
    main_before = procs.main_thread_cpu_seconds(gateway) if gateway is not None else 0.0
    res = await client.run_load(
        call.port,
        call.path,
        call.headers,
        call.body,
        connections=connections,
        duration=duration,
        requests=requests,
        check=call.check,
    )
    out: dict[str, Any] = {
        "connections": connections,
        "requests": res.requests,
        "errors": res.errors,
        "error_detail": {
            "status": res.status_errors,
            "answer": res.answer_errors,
            "io": res.errors - res.status_errors - res.answer_errors,
        },
        "elapsed_s": res.elapsed,
        "rps": res.rps,
        "latency_ms": report.latency_ms(res.latencies),
    }
    if gateway is not None:
        cpu = sum(procs.cpu_seconds(gateway).values()) - sum(cpu_before.values())
        main = procs.main_thread_cpu_seconds(gateway) - main_before
        per = 1000 / res.requests if res.requests else math.nan
        out["gateway_cpu_ms_per_request"] = cpu * per
        out["gateway_cpu_ms_per_request_main_thread"] = main * per
        out["gateway_cpu_ms_per_request_other_threads"] = (cpu - main) * per
    return out


@attrs.define
class GatewayRun:
    phases: dict[str, Any]
    rss_mb: list[float]  # before the soak, then after each chunk
    processes: int
    metrics: dict[str, float]
    exit_code: int | None


async def run_gateway(opts: Options, workdir: Path, upstream_port: int) -> GatewayRun:
    """Start the gateway, register the upstream, run the phases, stop the gateway."""
    gwdir = workdir / "gateway"
    gwdir.mkdir()
    config = gateway_config(gwdir, opts.pool_size, secrets.token_hex(24))
    voidllm = str(REPO / ".venv" / "bin" / "voidllm")
    procs.log(
        f"starting the gateway (Code Mode, pool_size {opts.pool_size}, cpus {opts.gateway_cpus or 'any'})"
    )
    gateway, port, key = await procs.start_gateway(voidllm, gwdir, config, opts.gateway_cpus)
    phases: dict[str, Any] = {}
    rss: list[float] = []
    try:
        await register_upstream(port, key, upstream_port)
        execute = call_headers("execute_code", key)
        trivial = Call(
            port, CODE_MODE_PATH, execute, call_body("execute_code", {"code": TRIVIAL}), script_returned(1)
        )
        tool = Call(
            port,
            CODE_MODE_PATH,
            execute,
            call_body("execute_code", {"code": TOOL_CALL}),
            script_returned("x"),
        )
        echo = call_body("echo", {"text": "x"})
        direct = Call(upstream_port, b"/mcp", call_headers("echo", None), echo, echoed)
        proxied = Call(port, PROXY_PATH, call_headers("echo", key), echo, echoed)
        pool, pid = opts.pool_size, gateway.pid

        procs.log(f"warm-up, {opts.warmup} executions at {pool} connections")
        for call in (trivial, tool):
            phases[f"warmup_{'trivial' if call is trivial else 'tool'}"] = await phase(
                call, connections=pool, gateway=pid, requests=max(1, opts.warmup // 2)
            )
        for call in (direct, proxied):
            await phase(call, connections=1, gateway=None, requests=max(1, opts.warmup // 10))

        for name, call in (
            ("echo_direct", direct),
            ("echo_proxy", proxied),
            ("trivial", trivial),
            ("tool", tool),
        ):
            procs.log(f"latency at 1 connection, {name}, {opts.duration:g} s")
            gateway_pid = None if call is direct else pid
            phases[f"{name}_c1"] = await phase(
                call, connections=1, gateway=gateway_pid, duration=opts.duration
            )
        for name, call in (
            ("echo_direct", direct),
            ("echo_proxy", proxied),
            ("trivial", trivial),
            ("tool", tool),
        ):
            procs.log(f"concurrency, {name} at {pool} connections, {opts.duration:g} s")
            phases[f"{name}_concurrent"] = await phase(
                call, connections=pool, gateway=None if call is direct else pid, duration=opts.duration
            )

        procs.log(f"soak, {opts.executions:,} tool-call executions at {pool} connections")
        await trio.sleep(0.5)  # let the warm-up's usage rows be written
        rss.append(rss_mb(pid))
        chunks = []
        for chunk in range(SOAK_CHUNKS):
            size = opts.executions // SOAK_CHUNKS + (chunk < opts.executions % SOAK_CHUNKS)
            chunks.append(await phase(tool, connections=pool, gateway=pid, requests=size))
            rss.append(rss_mb(pid))
        await trio.sleep(0.5)
        rss[-1] = rss_mb(pid)  # after the last usage rows were written too
        phases["soak"] = _merged(chunks)
        processes = len(procs.descendants(pid))
        metrics = await client.metrics(port, _CODE_MODE_SAMPLES)
    finally:
        exit_code = await gateway.stop(grace=30)
    return GatewayRun(phases=phases, rss_mb=rss, processes=processes, metrics=metrics, exit_code=exit_code)


def _merged(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The soak's chunks as one phase (latency percentiles of the chunks are not merged: the mean is)."""
    requests = sum(c["requests"] for c in chunks)
    elapsed = sum(c["elapsed_s"] for c in chunks)
    return {
        "requests": requests,
        "errors": sum(c["errors"] for c in chunks),
        "elapsed_s": elapsed,
        "rps": requests / elapsed if elapsed else math.nan,
        "latency_mean_ms": sum(c["latency_ms"]["mean"] * c["requests"] for c in chunks) / requests
        if requests
        else math.nan,
        "chunks": chunks,
    }


# Figures, the table, the JSON -------------------------------------------------------------------------------


def figures_from(run: GatewayRun) -> dict[str, float]:
    p = run.phases

    def lat(name: str, key: str) -> float:
        return float(p[name]["latency_ms"][key])

    f: dict[str, float] = {}
    for name in ("echo_direct", "echo_proxy", "trivial", "tool"):
        for key in ("p50", "p90", "p99", "mean"):
            f[f"{name}_{key}_ms"] = lat(f"{name}_c1", key)
        f[f"{name}_rps_c1"] = p[f"{name}_c1"]["rps"]
    for key in ("p50", "p90", "p99", "mean"):
        f[f"tool_added_{key}_ms"] = f[f"tool_{key}_ms"] - f[f"echo_direct_{key}_ms"]
        f[f"mcp_call_added_{key}_ms"] = f[f"echo_proxy_{key}_ms"] - f[f"echo_direct_{key}_ms"]
    f["mcp_call_gateway_cpu_ms"] = p["echo_proxy_c1"]["gateway_cpu_ms_per_request"]
    for name in ("echo_direct", "echo_proxy"):
        f[f"{name}_rps_concurrent"] = p[f"{name}_concurrent"]["rps"]
        f[f"{name}_concurrent_p50_ms"] = lat(f"{name}_concurrent", "p50")
        f[f"{name}_concurrent_p99_ms"] = lat(f"{name}_concurrent", "p99")
    for key in ("p50", "p99"):
        f[f"mcp_call_added_concurrent_{key}_ms"] = (
            f[f"echo_proxy_concurrent_{key}_ms"] - f[f"echo_direct_concurrent_{key}_ms"]
        )
    for name in ("trivial", "tool"):
        f[f"{name}_gateway_cpu_ms"] = p[f"{name}_c1"]["gateway_cpu_ms_per_request"]
        f[f"{name}_gateway_cpu_main_ms"] = p[f"{name}_c1"]["gateway_cpu_ms_per_request_main_thread"]
        f[f"{name}_gateway_cpu_threads_ms"] = p[f"{name}_c1"]["gateway_cpu_ms_per_request_other_threads"]
        f[f"{name}_rps_concurrent"] = p[f"{name}_concurrent"]["rps"]
        f[f"{name}_concurrent_p50_ms"] = lat(f"{name}_concurrent", "p50")
        f[f"{name}_concurrent_p99_ms"] = lat(f"{name}_concurrent", "p99")
        f[f"{name}_concurrent_errors"] = p[f"{name}_concurrent"]["errors"]
    f["errors_concurrent"] = sum(
        float(p[f"{name}_concurrent"]["errors"]) for name in ("echo_direct", "echo_proxy", "trivial", "tool")
    )
    f["soak_executions"] = p["soak"]["requests"]
    f["soak_errors"] = p["soak"]["errors"]
    f["soak_rps"] = p["soak"]["rps"]
    f["rss_before_mb"] = run.rss_mb[0] if run.rss_mb else math.nan
    f["rss_after_mb"] = run.rss_mb[-1] if run.rss_mb else math.nan
    f["rss_growth_mb"] = f["rss_after_mb"] - f["rss_before_mb"]
    f["errors_total"] = sum(float(v["errors"]) for k, v in p.items())
    f["gateway_processes"] = run.processes
    return {k: float(v) for k, v in f.items()}


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def rows(f: dict[str, float], checks: dict[str, bool], pool_size: int) -> list[tuple[str, str, str, str]]:
    targets = {t.key: t for t in TARGETS}

    def row(label: str, value: str, key: str | None = None) -> tuple[str, str, str, str]:
        if key is None:
            return (label, value, "", "")
        return (label, value, targets[key].text(), "PASS" if checks[key] else "FAIL")

    def latency(name: str) -> str:
        return " / ".join(_ms(f[f"{name}_{k}_ms"]) for k in ("p50", "p90", "p99", "mean")) + " ms"

    return [
        row("echo at the upstream, p50/p90/p99/mean", latency("echo_direct")),
        row("echo via /api/v1/mcp/tools, p50/p90/p99/mean", latency("echo_proxy")),
        row(
            "MCP tools/call added (proxied minus at the upstream), p50 / p99",
            f"{_ms(f['mcp_call_added_p50_ms'])} / {_ms(f['mcp_call_added_p99_ms'])} ms",
        ),
        row(
            f"MCP tools/call at {pool_size} connections: proxied calls/s, added p50 / p99",
            f"{f['echo_proxy_rps_concurrent']:.0f}/s, {_ms(f['mcp_call_added_concurrent_p50_ms'])} / "
            f"{_ms(f['mcp_call_added_concurrent_p99_ms'])} ms",
        ),
        row("gateway CPU per proxied MCP tools/call", f"{_ms(f['mcp_call_gateway_cpu_ms'])} ms"),
        row("trivial script, p50/p90/p99/mean", latency("trivial")),
        row("trivial script p50", f"{_ms(f['trivial_p50_ms'])} ms", "trivial_p50_ms"),
        row("one tool call, p50/p90/p99/mean", latency("tool")),
        row(
            "execute_code with one tool call, added (minus echo at the upstream), p50",
            f"{_ms(f['tool_added_p50_ms'])} ms",
            "tool_added_p50_ms",
        ),
        row(
            "execute_code with one tool call, added p99 / mean",
            f"{_ms(f['tool_added_p99_ms'])} / {_ms(f['tool_added_mean_ms'])} ms",
        ),
        row(
            "gateway CPU per execution, trivial / tool",
            f"{_ms(f['trivial_gateway_cpu_ms'])} / {_ms(f['tool_gateway_cpu_ms'])} ms",
        ),
        row(
            "  of it main thread (HTTP, MCP, tool calls)",
            f"{_ms(f['trivial_gateway_cpu_main_ms'])} / {_ms(f['tool_gateway_cpu_main_ms'])} ms",
        ),
        row(
            "  of it other threads (QuickJS workers)",
            f"{_ms(f['trivial_gateway_cpu_threads_ms'])} / {_ms(f['tool_gateway_cpu_threads_ms'])} ms",
        ),
        row(
            "executions/s at 1 connection, trivial / tool",
            f"{f['trivial_rps_c1']:.0f} / {f['tool_rps_c1']:.0f}",
        ),
        row(
            f"executions/s at {pool_size} connections, trivial / tool",
            f"{f['trivial_rps_concurrent']:.0f} / {f['tool_rps_concurrent']:.0f}",
        ),
        row(
            f"p50 / p99 at {pool_size} connections, trivial",
            f"{_ms(f['trivial_concurrent_p50_ms'])} / {_ms(f['trivial_concurrent_p99_ms'])} ms",
        ),
        row(
            f"p50 / p99 at {pool_size} connections, tool",
            f"{_ms(f['tool_concurrent_p50_ms'])} / {_ms(f['tool_concurrent_p99_ms'])} ms",
        ),
        row(f"errors at {pool_size} connections", f"{f['errors_concurrent']:.0f}", "errors_concurrent"),
        row(
            "soak: tool-call executions / errors / per s",
            f"{f['soak_executions']:,.0f} / {f['soak_errors']:.0f} / {f['soak_rps']:.0f}",
        ),
        row("gateway RSS before / after the soak", f"{f['rss_before_mb']:.1f} / {f['rss_after_mb']:.1f} MB"),
        row("RSS growth over the soak", f"{f['rss_growth_mb']:+.2f} MB", "rss_growth_mb"),
        row("errors, every phase", f"{f['errors_total']:.0f}"),
    ]


async def bench(opts: Options, json_path: Path) -> int:
    started = dt.datetime.now(dt.UTC)
    return await procs.in_workdir(opts.keep, lambda workdir: _bench(opts, workdir, json_path, started))


async def _bench(opts: Options, workdir: Path, json_path: Path, started: dt.datetime) -> int:
    python = str(REPO / ".venv" / "bin" / "python")
    load_before = procs.load_average_before(opts.notes)
    procs.log(f"starting the upstream MCP server (cpus {opts.load_cpus or 'any'})")
    upstream, upstream_port = await start_upstream(python, workdir, opts.load_cpus)
    try:
        run = await run_gateway(opts, workdir, upstream_port)
    finally:
        await upstream.stop(grace=5)
    if run.exit_code not in (0, None):
        opts.notes.append(f"the gateway exited with {run.exit_code} after SIGTERM")
    figures = figures_from(run)
    checks = {t.key: t.check(figures[t.key]) for t in TARGETS}
    table = rows(figures, checks, opts.pool_size)
    title = (
        f"VoidLLM MCP and Code Mode benchmark: pool_size {opts.pool_size}, "
        f"gateway cpus {opts.gateway_cpus or 'any'}, upstream+load cpus {opts.load_cpus or 'any'}"
        f"{' (quick)' if opts.quick else ''}"
    )
    report.print_table(title, table, opts.notes)
    result = {
        "scenario": "codemode",
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "figures": figures,
        "targets": report.targets_json(TARGETS, checks),
        "all_targets_met": all(checks.values()),
        "table": report.table_json(table),
        "phases": run.phases,
        "gateway": {"rss_mb_by_soak_chunk": run.rss_mb, "metrics": run.metrics, "exit_code": run.exit_code},
        "settings": {
            "pool_size": opts.pool_size,
            "duration_s": opts.duration,
            "soak_executions": opts.executions,
            "warmup_executions": opts.warmup,
            "trivial_script": TRIVIAL,
            "tool_call_script": TOOL_CALL,
            "gateway_cpus": opts.gateway_cpus,
            "load_cpus": opts.load_cpus,
            "quick": opts.quick,
        },
        "machine": report.machine_info(REPO, sys.version.split()[0], "python", opts.cores_usable)
        | {"loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg())},
        "notes": opts.notes,
    }
    report.write_json(json_path, result)
    return 0
