"""``scripts/bench --peer CMD``: another OpenAI-compatible gateway under the same load, in the same run.

After VoidLLM's own run (and while the same mock upstream still serves), each peer command is started in a
shell (``bash -c``), pinned to the gateway's CPUs, in a directory of its own. The command learns where to
listen and where the upstream is from placeholders, replaced in its text before it runs (and, for scripts,
from the same values in the environment):

- ``{port}`` (``BENCH_PEER_PORT``): the loopback port it must listen on (free when chosen);
- ``{upstream}`` (``BENCH_UPSTREAM``): the mock upstream's OpenAI base URL, ``http://127.0.0.1:N/v1``;
- ``{model}`` (``BENCH_MODEL``): the model name the load asks for (``mock``, as for VoidLLM);
- ``{key}`` (``BENCH_PEER_KEY``): the bearer key the load sends (``sk-bench-...``);
- ``{config}`` (``BENCH_LITELLM_CONFIG``): a generated LiteLLM proxy config, model ``{model}`` as
  ``openai/{model}`` at ``{upstream}``, with ``{key}`` as its master key;
- ``{workdir}`` (``BENCH_PEER_DIR``): the peer's own directory (its working directory too).

"Ready" is the same for VoidLLM and every peer: from the moment its process is spawned to the first 200
answer to a chat completion through it (polled every 20 ms), so it includes one upstream round trip. The
peer then gets VoidLLM's phases except the soak (a slow gateway would take minutes for 100,000 requests):
warm-up, RPS at 32 connections, latency at 1 connection, streams. Its process tree is sampled like the
gateway's (VmRSS, VmHWM reset once it is ready) and its CPU time during the RPS phase is read from /proc.
"Added" figures are the peer's minus the direct ones measured in VoidLLM's run against the same mock.

The side-by-side table gives each figure for VoidLLM and each peer, and the ratio peer / VoidLLM computed
from those values. What is deliberately not compared: usage writing (VoidLLM writes a row per request to
SQLite; a peer without a database writes nothing), and the soak's RSS growth.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import shlex
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from bench_lib import client, procs

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

MODEL = "mock"
READY_POLL = 0.02


@attrs.frozen
class Peer:
    """One ``--peer``: its command, and a name for the table (its program's name, made unique)."""

    name: str
    command: str


def peers_from(commands: list[str]) -> list[Peer]:
    """Name each command after its program: the word after its last ``exec``, else its first word that is not
    a ``NAME=value`` assignment (``/tmp/litellm-venv/bin/litellm ...`` is ``litellm``); a repeated name gets
    ``#2``, ``#3``."""
    out: list[Peer] = []
    seen: dict[str, int] = {}
    for command in commands:
        try:
            words = shlex.split(command)
        except ValueError:
            words = command.split()
        if "exec" in words:
            words = words[len(words) - words[::-1].index("exec") :]
        program = next((w for w in words if "=" not in w), "peer")
        name = os.path.basename(program) or "peer"
        seen[name] = seen.get(name, 0) + 1
        out.append(Peer(name if seen[name] == 1 else f"{name}#{seen[name]}", command))
    return out


def free_port() -> int:
    """A loopback port nothing listens on now (the peer binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def litellm_config(path: Path, upstream: str, key: str) -> Path:
    """LiteLLM's proxy config: the model ``mock`` as ``openai/mock`` at the mock upstream, ``key`` as master
    key (checked per request, without a database: no virtual keys, no spend rows)."""
    path.write_text(
        f"""\
model_list:
  - model_name: {MODEL}
    litellm_params:
      model: openai/{MODEL}
      api_base: {upstream}
      api_key: sk-bench-upstream
general_settings:
  master_key: {key}
"""
    )
    return path


def expand(command: str, values: dict[str, str]) -> str:
    """``command`` with each ``{name}`` of ``values`` replaced (shell-quoted); other braces are left alone, so
    ``${VAR}`` and ``{a,b}`` keep their shell meaning."""
    for name, value in values.items():
        command = command.replace("{" + name + "}", shlex.quote(value))
    return command


@attrs.define
class PeerRun:
    peer: Peer
    port: int
    ready_s: float
    phases: dict[str, Any]
    rss_peak_mb: float  # VmHWM summed over its process tree, from ready on
    rss_hwm_at_start_mb: dict[str, float]
    processes: int
    cpu_ms_per_request: float  # CPU time of its process tree during the RPS phase, per request
    exit_code: int | None
    error: str | None = None


async def wait_ready(
    child: procs.Child, port: int, headers: list[tuple[bytes, bytes]], body: bytes, within: float
) -> None:
    """Poll a chat completion every 20 ms until one is answered 200; fail when ``child`` exits or ``within``
    seconds pass (with the last answer or error, and the tail of its output)."""
    deadline = time.monotonic() + within
    last = "no answer"
    while True:
        conn = client.Connection(port)
        try:
            status, _, answer, _ = await conn.fetch(b"/v1/chat/completions", headers, body)
        except (OSError, trio.BrokenResourceError, ConnectionError) as exc:
            last = f"{type(exc).__name__}"
        else:
            if status == 200:
                return
            last = f"status {status}: {answer[:300]!r}"
        finally:
            await conn.close()
        if child.popen.poll() is not None:
            raise RuntimeError(
                f"{child.name} exited with {child.popen.returncode} before it answered:\n{child.tail()}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{child.name} did not answer 200 within {within:g} s ({last}):\n{child.tail()}"
            )
        await trio.sleep(READY_POLL)


async def run(
    peer: Peer,
    workdir: Path,
    *,
    upstream: str,
    cpus: str | None,
    within: float,
    body: bytes,
    phases: Callable[[int, str, int], Awaitable[dict[str, Any]]],
) -> PeerRun:
    """Start ``peer``, wait until it answers, run ``phases(port, key, pid)`` against it while its process tree
    is sampled, stop it. A peer that does not start, answer or survive is a :class:`PeerRun` with ``error``
    (the rest of the benchmark stands)."""
    peerdir = workdir / f"peer-{peer.name.replace('#', '-')}"
    peerdir.mkdir()
    port, key = free_port(), f"sk-bench-{secrets.token_hex(16)}"
    values = {
        "port": str(port),
        "upstream": upstream,
        "model": MODEL,
        "key": key,
        "config": str(litellm_config(peerdir / "litellm.yaml", upstream, key)),
        "workdir": str(peerdir),
    }
    env = {
        "BENCH_PEER_PORT": values["port"],
        "BENCH_UPSTREAM": upstream,
        "BENCH_MODEL": MODEL,
        "BENCH_PEER_KEY": key,
        "BENCH_LITELLM_CONFIG": values["config"],
        "BENCH_PEER_DIR": values["workdir"],
    }
    headers = [(b"content-type", b"application/json"), (b"authorization", f"Bearer {key}".encode())]
    procs.log(f"starting peer {peer.name} (cpus {cpus or 'any'}): {peer.command}")
    spawned = time.monotonic()
    child = procs.start(f"peer-{peer.name}", ["bash", "-c", expand(peer.command, values)], peerdir, cpus, env)
    result = PeerRun(peer, port, math.nan, {}, math.nan, {}, 0, math.nan, None)
    try:
        await wait_ready(child, port, headers, body, within)
        result.ready_s = time.monotonic() - spawned
        procs.log(f"peer {peer.name} answered {result.ready_s:.2f} s after it was started")
        sampler = procs.RssSampler(child.pid)
        result.rss_hwm_at_start_mb = {str(pid): mb for pid, mb in sampler.reset_peaks().items()}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sampler.run)
            result.phases = await phases(port, key, child.pid)
            sampler.sample()
            nursery.cancel_scope.cancel()
        result.rss_peak_mb = sum(sampler.hwm_mb.values()) if sampler.hwm_mb else math.nan
        result.processes = sampler.max_processes
        rps = result.phases["rps_c32"]
        result.cpu_ms_per_request = 1000 * rps["cpu_s"] / rps["requests"] if rps["requests"] else math.nan
    except RuntimeError as exc:
        result.error = str(exc)
        procs.log(f"WARNING: peer {peer.name} failed: {exc}")
    finally:
        result.exit_code = await child.stop(grace=10)
    return result


# Figures and the side-by-side table -------------------------------------------------------------------------


@attrs.frozen
class Figure:
    key: str
    label: str
    unit: str
    digits: int


FIGURES: tuple[Figure, ...] = (
    Figure("rps_c32", "proxied RPS, 32 connections", "req/s", 1),
    Figure("added_latency_p50_ms", "added latency p50, 1 connection", "ms", 2),
    Figure("added_latency_p99_ms", "added latency p99, 1 connection", "ms", 2),
    Figure("added_ttft_p50_ms", "added time to first stream event p50", "ms", 2),
    Figure("cpu_ms_per_request", "CPU per proxied request (32 connections)", "ms", 3),
    Figure("rss_peak_mb", "peak RSS (VmHWM, process tree)", "MB", 1),
    Figure("ready_s", "start to ready (first 200)", "s", 2),
    Figure("errors", "errors (RPS, latency, streams)", "", 0),
)


def figures(phases: dict[str, Any], direct: dict[str, float], **measured: float) -> dict[str, float]:
    """The side-by-side figures of one gateway from its phases (keys ``rps_c32``, ``latency_c1``,
    ``stream``) and the direct figures of the same run; ``measured`` adds the figures read elsewhere
    (``cpu_ms_per_request``, ``rss_peak_mb``, ``ready_s``)."""
    if not phases:
        return {f.key: math.nan for f in FIGURES}
    latency, stream = phases["latency_c1"]["latency_ms"], phases["stream"]["ttft_ms"]
    f = {
        "rps_c32": float(phases["rps_c32"]["rps"]),
        "latency_p50_ms": float(latency["p50"]),
        "latency_p99_ms": float(latency["p99"]),
        "ttft_p50_ms": float(stream["p50"]),
        "added_latency_p50_ms": float(latency["p50"]) - direct["latency_direct_p50_ms"],
        "added_latency_p99_ms": float(latency["p99"]) - direct["latency_direct_p99_ms"],
        "added_ttft_p50_ms": float(stream["p50"]) - direct["ttft_direct_p50_ms"],
        "errors": float(sum(phases[k]["errors"] for k in ("rps_c32", "latency_c1", "stream"))),
    }
    return f | {k: float(v) for k, v in measured.items()}


def ratio(peer: float, voidllm: float) -> float:
    """peer / VoidLLM; NaN when either is missing or VoidLLM's value is not positive (an added latency at or
    below zero has no meaningful ratio)."""
    if math.isnan(peer) or math.isnan(voidllm) or voidllm <= 0:
        return math.nan
    return peer / voidllm


def _value(value: float, figure: Figure) -> str:
    if math.isnan(value):
        return "n/a"
    text = f"{value:,.{figure.digits}f}" if abs(value) >= 1000 else f"{value:.{figure.digits}f}"
    return f"{text} {figure.unit}".rstrip()


def side_by_side(voidllm: dict[str, float], peers: dict[str, dict[str, float]]) -> list[list[str]]:
    """Rows: the figure, VoidLLM's value, then per peer its value and the ratio peer / VoidLLM (``ratio``)."""
    header = ["figure", "VoidLLM"]
    for name in peers:
        header += [name, "ratio"]
    out = [header]
    for figure in FIGURES:
        row = [figure.label, _value(voidllm[figure.key], figure)]
        for values in peers.values():
            r = ratio(values[figure.key], voidllm[figure.key])
            row += [_value(values[figure.key], figure), "n/a" if math.isnan(r) else f"{r:.2f}x"]
        out.append(row)
    return out


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in [rows[0], ["-" * w for w in widths], *rows[1:]]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def markdown(rows: list[list[str]]) -> str:
    """The same table in Markdown (for the README)."""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def version_of(command: str) -> str | None:
    """``litellm``'s version when the command runs a LiteLLM from a venv (its ``bin/python`` beside it)."""
    with contextlib.suppress(ValueError):
        for word in shlex.split(command):
            python = Path(word).with_name("python")
            if Path(word).name == "litellm" and python.exists():
                return procs.package_version(str(python), "litellm")
    return None
