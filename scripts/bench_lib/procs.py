"""The processes the benchmark starts (mock upstream, gateway, wrk), and how they are always cleaned up.

Every child starts in its own session, so its process group holds it and anything it forks (gateway workers).
Their pids are kept in a module-level registry; :func:`kill_all` (called from ``finally`` and ``atexit``, and
after Ctrl-C or SIGTERM) sends SIGTERM to each group, waits briefly, then SIGKILL. So no run leaves orphans.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

_children: set[int] = set()


class Interrupted(Exception):
    """SIGTERM or SIGHUP arrived."""


async def watch_signals() -> None:
    """Raise :class:`Interrupted` on SIGTERM or SIGHUP (so that ``finally`` blocks stop every child)."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
        async for _ in signals:
            raise Interrupted


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def register(pid: int) -> None:
    _children.add(pid)


def unregister(pid: int) -> None:
    _children.discard(pid)


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_all(grace: float = 3.0) -> None:
    """SIGTERM every registered process group, then SIGKILL what is left after ``grace`` seconds."""
    pids = list(_children)
    for pid in pids:
        kill_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        for pid in pids:  # reap our direct children so that they do not linger as zombies
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    for pid in pids:
        kill_group(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)
        unregister(pid)


atexit.register(kill_all)


async def in_workdir(keep: bool, scenario: Callable[[Path], Awaitable[int]]) -> int:
    """Run ``scenario`` in a fresh temporary work directory while SIGTERM and SIGHUP are watched; then stop
    every child and remove the directory (``keep``: leave it, and say where it is)."""
    workdir = Path(tempfile.mkdtemp(prefix="voidllm-bench-"))
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_signals)
            code = await scenario(workdir)
            nursery.cancel_scope.cancel()
        return code
    finally:
        kill_all()
        if keep:
            log(f"kept the work directory {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def load_average_before(notes: list[str]) -> tuple[float, float, float]:
    """The load average as a run starts, and a note of the machine's speed (:func:`speed_probe_ms`); a note
    (logged as a warning too) when the machine is already busy."""
    load = os.getloadavg()
    notes.append(
        f"speed probe: {SPEED_PROBE_ITERATIONS:,} iterations of a Python loop took {speed_probe_ms():.0f} ms "
        "(a virtual machine's speed can move within minutes: compare runs with similar probes)"
    )
    if load[0] > 0.5:
        notes.append(
            f"the machine was busy before the run (load average {load[0]:.2f}): figures may be noisy"
        )
        log("WARNING: " + notes[-1])
    return load


SPEED_PROBE_ITERATIONS = 2_000_000


def speed_probe_ms() -> float:
    """Wall time of a fixed pure-Python loop, best of three: how fast this machine runs Python right now.
    On a virtual machine it moved by 1.7x within minutes (docs/performance.md), which moves every figure."""
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(SPEED_PROBE_ITERATIONS):
            total += i
        best = min(best, time.perf_counter() - started)
    return best * 1000


def child_env() -> dict[str, str]:
    """This environment minus anything that could change what the children do (VoidLLM settings, proxies)."""
    env = {}
    for name, value in os.environ.items():
        upper = name.upper()
        if upper.startswith("VOIDLLM_") or upper.endswith("_PROXY") or upper == "PYTHONPATH":
            continue
        env[name] = value
    return env


def pinned(argv: Sequence[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *argv] if cpus is not None else list(argv)


@attrs.define
class Child:
    """A long-lived child whose stdout and stderr go to files (nothing can block on a full pipe)."""

    name: str
    popen: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    async def wait_for(self, pattern: re.Pattern[str], within: float) -> re.Match[str]:
        """Poll the output files until ``pattern`` matches; fail if the child exits or ``within`` s pass."""
        deadline = time.monotonic() + within
        while True:
            match = pattern.search(self.output())
            if match:
                return match
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.popen.returncode} before it was ready:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} was not ready after {within:.0f} s:\n{self.tail()}")
            await trio.sleep(0.05)

    async def stop(self, grace: float) -> int | None:
        """SIGTERM the group (a graceful drain for the gateway), SIGKILL after ``grace`` s; the exit code."""
        kill_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        with trio.CancelScope(shield=True):
            while self.popen.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a process
                await trio.sleep(0.05)
        code = self.popen.poll()
        kill_group(self.pid, signal.SIGKILL)  # workers that outlived their parent
        if code is None:
            self.popen.wait()
        unregister(self.pid)
        return code


def start(
    name: str, argv: Sequence[str], workdir: Path, cpus: str | None, env: dict[str, str] | None = None
) -> Child:
    """Start ``argv`` pinned to ``cpus`` in ``workdir`` with :func:`child_env` plus ``env``."""
    stdout = workdir / f"{name}.stdout"
    stderr = workdir / f"{name}.stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        popen = subprocess.Popen(
            pinned(argv, cpus),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env=child_env() | (env or {}),
            start_new_session=True,
        )
    register(popen.pid)
    return Child(name, popen, stdout, stderr)


_MOCK_LISTENING = re.compile(r"listening http://127\.0\.0\.1:(\d+)")


async def start_mock(
    python: str, workdir: Path, cpus: str | None, *, latency_ms: float, chunks: int, interval_ms: float
) -> tuple[Child, int]:
    argv = [
        python,
        "-m",
        "voidllm.testing.mock_openai",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--latency",
        f"{latency_ms:g}ms",
        "--stream-chunks",
        str(chunks),
        "--chunk-interval",
        f"{interval_ms:g}ms",
    ]
    child = start("mock", argv, workdir, cpus)
    match = await child.wait_for(_MOCK_LISTENING, within=20)
    return child, int(match.group(1))


_API_KEY = re.compile(r"API Key:\s+(vl_\w+)")


def gateway_config(
    workdir: Path, secret: str, *, workers: int = 1, models: str = "", settings: str = ""
) -> Path:
    """A config: loopback on an ephemeral port, fresh SQLite, ``workers`` workers; ``models`` is the YAML of a
    ``models:`` section (none without it) and ``settings`` more keys under ``settings:``, unindented."""
    path = workdir / "voidllm.yaml"
    dsn = json.dumps(str(workdir / "data" / "voidllm.db"))
    (workdir / "data").mkdir(exist_ok=True)
    path.write_text(
        f"""\
server:
  proxy:
    host: 127.0.0.1
    port: 0
    drain_timeout: 5s
  workers: {workers}
database:
  driver: sqlite
  dsn: {dsn}
{models}settings:
  encryption_key: bench-{secret[:24]}
  admin_key: bench-admin-{secret}
{textwrap.indent(settings, "  ")}logging:
  level: info
  format: json
"""
    )
    return path


def mock_model(mock_port: int) -> str:
    """The ``models:`` section of a gateway config: one model ``mock`` on the mock upstream."""
    return f"""\
models:
  - name: mock
    provider: openai
    base_url: http://127.0.0.1:{mock_port}/v1
    api_key: sk-bench-upstream
"""


def _listening_ports(text: str) -> list[int]:
    ports = []
    for line in text.splitlines():
        if '"listening"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        for bind in record.get("binds", []):
            match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)", bind)
            if not match:
                raise RuntimeError(f"gateway listens on {bind!r}, not on 127.0.0.1: refusing to send traffic")
            ports.append(int(match.group(1)))
    return ports


async def start_gateway(
    voidllm: str,
    workdir: Path,
    config: Path,
    cpus: str | None,
    within: float = 60,
    *,
    prefix: Sequence[str] = (),
) -> tuple[Child, int, str]:
    """Start ``voidllm serve`` (``voidllm`` the command, or an interpreter given the ``prefix`` arguments) and
    return (child, port, the bootstrap API key)."""
    child = start("gateway", [voidllm, *prefix, "serve", "--config", str(config)], workdir, cpus)
    deadline = time.monotonic() + within
    while True:
        text = child.output()
        ports = _listening_ports(text)
        key = _API_KEY.search(text)
        if ports and key:
            return child, ports[0], key.group(1)
        if child.popen.poll() is not None:
            raise RuntimeError(
                f"the gateway exited with {child.popen.returncode} during start:\n{child.tail()}"
            )
        if time.monotonic() > deadline:
            what = "no listening line" if not ports else "no bootstrap API key"
            raise RuntimeError(f"the gateway was not ready after {within:.0f} s ({what}):\n{child.tail()}")
        await trio.sleep(0.01)  # start to ready is timed by this loop, to within 10 ms


def main_thread_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid``'s main thread (/proc/PID/task/PID/stat); the process's own figure
    (:func:`cpu_seconds`) counts every thread, also those that ended."""
    try:
        with open(f"/proc/{pid}/task/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / _TICKS


# Memory ------------------------------------------------------------------------------------------------


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (from /proc/*/stat parent links)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(root: int) -> dict[int, float]:
    """User + system CPU seconds of ``root`` and each process below it."""
    out: dict[int, float] = {}
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15 of stat)
    return out


def memory_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in kB, or None when the process is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        return None
    return rss, hwm


@attrs.define
class RssSampler:
    """Samples the gateway's process tree: total VmRSS over time, and each process's VmHWM."""

    root: int
    interval: float = 0.1
    samples: list[tuple[float, float]] = attrs.field(factory=list)  # (monotonic time, total MB)
    hwm_mb: dict[int, float] = attrs.field(factory=dict)
    max_processes: int = 0
    reset_failed: bool = False
    _tree: list[int] = attrs.field(factory=list)
    _tree_at: float = 0.0

    def sample(self) -> None:
        now = time.monotonic()
        if not self._tree or now - self._tree_at > 1.0:
            self._tree = descendants(self.root)
            self._tree_at = now
        total = 0
        alive = 0
        for pid in self._tree:
            memory = memory_kb(pid)
            if memory is None or memory[0] == 0:  # gone, or a zombie
                continue
            alive += 1
            total += memory[0]
            self.hwm_mb[pid] = max(self.hwm_mb.get(pid, 0.0), memory[1] / 1024)
        self.max_processes = max(self.max_processes, alive)
        if alive:
            self.samples.append((now, total / 1024))

    async def run(self) -> None:
        while True:
            self.sample()
            await trio.sleep(self.interval)

    def reset_peaks(self) -> dict[int, float]:
        """Record each process's VmHWM so far (startup: bootstrap hashes a password with 64 MiB of argon2),
        then reset it (``clear_refs`` 5), so that later VmHWM values are peaks of the benchmark itself."""
        before: dict[int, float] = {}
        for pid in descendants(self.root):
            memory = memory_kb(pid)
            if memory is None or memory[0] == 0:
                continue
            before[pid] = memory[1] / 1024
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                self.reset_failed = True
        self.hwm_mb.clear()
        self._tree = []
        return before

    def processes(self) -> int:
        return len([pid for pid in descendants(self.root) if (memory_kb(pid) or (0, 0))[0] > 0])

    def peak_total_mb(self) -> float:
        return max((mb for _, mb in self.samples), default=0.0)

    def between(self, start: float, end: float) -> list[float]:
        return [mb for t, mb in self.samples if start <= t <= end]


def package_version(python: str, package: str) -> str | None:
    """The installed version of ``package`` for the interpreter ``python`` (None when it is not there)."""
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def python_version(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True
    )
    return out.stdout.strip() or sys.version.split()[0]
