"""Load phases with Debian's ``wrk`` (C + LuaJIT): far cheaper per request than any Python client.

One generated Lua script per phase sets the POST body and headers; its ``done()`` prints the exact figures
(request count, error counts, latency percentiles in microseconds) as ``BENCH ...`` lines, so nothing depends
on wrk's human-readable units. ``--latency`` is passed too and its distribution is kept as raw text.

- ``--requests`` (the soak): wrk has no request-count limit, so ``request()`` counts and, at the limit, prints
  ``BENCH limit`` and stops its thread; we then send SIGINT, on which wrk ends early and still reports.
- ``overhead_header``: ``response()`` collects ``X-VoidLLM-Overhead-Ms`` and ``done()`` prints its
  percentiles (only for the 1-connection phase: defining ``response()`` makes wrk slower).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from typing import TYPE_CHECKING

import attrs
import trio

from bench_lib import procs

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

_PERCENTILES = (50, 90, 99, 99.9)


@attrs.define
class WrkResult:
    requests: int
    errors: dict[str, int]
    elapsed: float
    latency_us: dict[str, float]
    overhead_ms: dict[str, float]
    overhead_count: int
    distribution: str

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def available() -> str | None:
    return shutil.which("wrk")


def version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (
        (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr).strip() else "unknown"
    )


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def lua_script(
    body: bytes, headers: Sequence[tuple[str, str]], *, limit: int | None, overhead_header: bool
) -> str:
    lines = [
        "local threads = {}",
        "function setup(thread) table.insert(threads, thread) end",
        'wrk.method = "POST"',
        f"wrk.body = {_lua_string(body.decode())}",
    ]
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers]
    if limit is not None:
        lines += [
            "local req = nil",
            "local sent = 0",
            "function init(args) req = wrk.format() end",
            "function request()",
            "  sent = sent + 1",
            f"  if sent == {limit} then",
            '    io.write("BENCH limit\\n"); io.stdout:flush(); wrk.thread:stop()',
            "  end",
            "  return req",
            "end",
        ]
    if overhead_header:
        lines += [
            "overheads = {}",
            "function response(status, headers, body)",
            '  local v = headers["x-voidllm-overhead-ms"] or headers["X-VoidLLM-Overhead-Ms"]',
            "  if v then overheads[#overheads + 1] = tonumber(v) end",
            "end",
        ]
    lines += [
        "function done(summary, latency, requests)",
        "  local e = summary.errors",
        '  io.write(string.format("BENCH summary requests=%d duration_us=%d connect=%d read=%d write=%d '
        'status=%d timeout=%d\\n", summary.requests, summary.duration, e.connect, e.read, e.write, e.status, '
        "e.timeout))",
        f"  for _, p in ipairs({{{', '.join(str(p) for p in _PERCENTILES)}}}) do",
        '    io.write(string.format("BENCH latency p%g=%d\\n", p, latency:percentile(p)))',
        "  end",
        '  io.write(string.format("BENCH latency min=%d\\n", latency.min))',
        '  io.write(string.format("BENCH latency max=%d\\n", latency.max))',
        '  io.write(string.format("BENCH latency mean=%f\\n", latency.mean))',
    ]
    if overhead_header:
        lines += [
            "  local all = {}",
            "  for _, t in ipairs(threads) do",
            '    local o = t:get("overheads") or {}',
            "    for _, v in ipairs(o) do all[#all + 1] = v end",
            "  end",
            "  table.sort(all)",
            '  io.write(string.format("BENCH overhead count=%d\\n", #all))',
            "  if #all > 0 then",
            f"    for _, p in ipairs({{{', '.join(str(p) for p in _PERCENTILES)}}}) do",
            "      local i = math.max(1, math.ceil(p / 100 * #all))",
            '      io.write(string.format("BENCH overhead p%g=%f\\n", p, all[i]))',
            "    end",
            "  end",
        ]
    lines.append("end")
    return "\n".join(lines) + "\n"


_LINE = re.compile(r"^BENCH (\w+) (.*)$")


def parse(output: str) -> WrkResult:
    summary: dict[str, int] = {}
    latency: dict[str, float] = {}
    overhead: dict[str, float] = {}
    overhead_count = 0
    for line in output.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        kind, rest = match.groups()
        pairs = dict(item.split("=", 1) for item in rest.split() if "=" in item)
        if kind == "summary":
            summary = {k: int(v) for k, v in pairs.items()}
        elif kind == "latency":
            latency.update({k: float(v) for k, v in pairs.items()})
        elif kind == "overhead":
            for k, v in pairs.items():
                if k == "count":
                    overhead_count = int(v)
                else:
                    overhead[k] = float(v)
    if not summary:
        raise RuntimeError("wrk printed no summary:\n" + output[-2000:])
    distribution = ""
    if "Latency Distribution" in output:
        block = output.split("Latency Distribution", 1)[1].splitlines()[1:5]
        distribution = "; ".join(" ".join(part.split()) for part in block)
    errors = {k: summary.get(k, 0) for k in ("connect", "read", "write", "status", "timeout")}
    return WrkResult(
        requests=summary["requests"],
        errors=errors,
        elapsed=summary["duration_us"] / 1e6,
        latency_us=latency,
        overhead_ms=overhead,
        overhead_count=overhead_count,
        distribution=distribution,
    )


async def run(
    wrk_path: str,
    workdir: Path,
    url: str,
    body: bytes,
    headers: Sequence[tuple[str, str]],
    *,
    connections: int,
    cpus: str | None,
    duration: float | None = None,
    requests: int | None = None,
    overhead_header: bool = False,
) -> WrkResult:
    """One wrk run (one thread: the load has one core). With ``requests``, ``duration`` is only a cap."""
    # the thread stops at the limit with up to ``connections`` requests in flight, uncounted
    limit = requests + connections + 1 if requests is not None else None
    script = (
        workdir
        / f"wrk-{os.getpid()}-{connections}-{'n' if limit else 'd'}{'-oh' if overhead_header else ''}.lua"
    )
    script.write_text(lua_script(body, headers, limit=limit, overhead_header=overhead_header))
    seconds = max(1, round(duration)) if duration is not None else 3600
    argv = [wrk_path, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]
    process = await trio.lowlevel.open_process(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    procs.register(process.pid)
    chunks: list[bytes] = []
    interrupted = False
    try:
        assert process.stdout is not None
        buffered = b""
        while True:
            data = await process.stdout.receive_some(65536)
            if not data:
                break
            chunks.append(bytes(data))
            buffered = buffered[-32:] + data  # the marker may straddle two reads
            if not interrupted and b"BENCH limit" in buffered:
                interrupted = True
                process.send_signal(signal.SIGINT)
        code = await process.wait()
    finally:
        if process.returncode is None:
            procs.kill_group(process.pid)
            with trio.CancelScope(shield=True):
                await process.wait()
        procs.unregister(process.pid)
    output = b"".join(chunks).decode(errors="replace")
    if code != 0 and not (interrupted and code in (0, -signal.SIGINT, 130)):
        raise RuntimeError(f"wrk exited with {code}:\n{output[-2000:]}")
    return parse(output)
