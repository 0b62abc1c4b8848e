"""What every scenario of the fault runner stands on: its work directory, the processes it starts (mock
upstreams, ``voidllm serve``, a private ``redis-server``), its own PostgreSQL database, the gateway's
``/metrics``, and the measured outcome (:class:`Result`).

Processes are started through ``bench_lib.procs``: each in its own session (its process group holds it and
whatever it forks), registered, and killed by group when the scenario ends (``Scenario.close``, called from
``finally``) or when the runner exits. The shared PostgreSQL server gets one database per scenario
(``voidllm_faults_<pid>_<scenario>``), dropped at the end; the shared Redis server is never touched: the
Redis scenario starts its own on an ephemeral port.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from bench_lib import procs
from prometheus_client.parser import text_string_to_metric_families

PYTHON = sys.executable  # the venv's python (scripts/faults runs this file with it)
MOCKSERVE = str(Path(__file__).resolve().parent / "mockserve.py")
PG_ADMIN = ("127.0.0.1", 5432, "postgres")
ENCRYPTION_KEY = "faults-encryption-passphrase-0001"
ADMIN_KEY = "faults-admin-" + "f" * 32
CHAT = "/v1/chat/completions"


def chat_body(model: str, *, stream: bool = False) -> bytes:
    return json.dumps(
        {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello"}]}
    ).encode()


@attrs.define
class Result:
    """One scenario's outcome: its figure against its goal."""

    name: str
    figure: str
    goal: str
    passed: bool
    seconds: float = 0.0
    notes: list[str] = attrs.field(factory=list)

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"


class ScenarioError(Exception):
    """The scenario could not run to its measurement (a process did not start, a precondition failed)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- processes -------------------------------------------------------------------------------------------

_LISTENING = re.compile(r"listening http://127\.0\.0\.1:(\d+)")


@attrs.define
class Mock:
    child: procs.Child
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@attrs.define
class Gateway:
    child: procs.Child
    port: int
    key: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.child.pid

    async def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Every sample of ``/metrics``: name -> [(labels, value)]."""
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(f"{self.url}/metrics")).text
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return out

    async def metric(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels`` (0 when there are none)."""
        samples = (await self.metrics()).get(name, [])
        return sum(value for have, value in samples if all(have.get(k) == want for k, want in labels.items()))


@attrs.define
class Database:
    """A PostgreSQL database of this run on the shared server (trust auth as ``postgres``)."""

    name: str

    @property
    def dsn(self) -> str:
        host, port, user = PG_ADMIN
        return f"postgresql://{user}@{host}:{port}/{self.name}"

    def dsn_via(self, port: int) -> str:
        return f"postgresql://{PG_ADMIN[2]}@127.0.0.1:{port}/{self.name}"

    async def psql(self, sql: str, database: str | None = None) -> str:
        host, port, user = PG_ADMIN
        argv = [
            "psql",
            "-h",
            host,
            "-p",
            str(port),
            "-U",
            user,
            "-d",
            database or self.name,
            "-tAX",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ]
        done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
        if done.returncode != 0:
            raise ScenarioError(f"psql failed: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode().strip()

    async def scalar(self, sql: str) -> int:
        return int(await self.psql(sql) or 0)


@attrs.define
class Scenario:
    """One scenario's resources; :meth:`close` releases all of them."""

    name: str
    quick: bool
    workdir: Path
    keep: bool = False
    databases: list[Database] = attrs.field(factory=list)

    @classmethod
    def open(cls, name: str, *, quick: bool, keep: bool) -> Scenario:
        workdir = Path(tempfile.mkdtemp(prefix=f"voidllm-faults-{name}-"))
        return cls(name, quick, workdir, keep)

    def pick(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    async def database(self) -> Database:
        db = Database(f"voidllm_faults_{os.getpid()}_{self.name}_{len(self.databases)}")
        await db.psql(f'CREATE DATABASE "{db.name}"', database="postgres")
        self.databases.append(db)
        return db

    def start(self, name: str, argv: list[str]) -> procs.Child:
        return procs.start(name, argv, self.workdir, None)

    async def mock(
        self,
        name: str = "mock",
        *,
        port: int = 0,
        latency: str = "0ms",
        fail: str | None = None,
        chunks: int = 5,
        interval: str = "0ms",
        completion_bytes: int = 0,
        status: int = 200,
    ) -> Mock:
        argv = [
            PYTHON,
            MOCKSERVE,
            "--port",
            str(port),
            "--latency",
            latency,
            "--stream-chunks",
            str(chunks),
            "--chunk-interval",
            interval,
            "--completion-bytes",
            str(completion_bytes),
            "--status",
            str(status),
        ]
        if fail:
            argv += ["--fail", fail]
        child = self.start(name, argv)
        match = await child.wait_for(_LISTENING, within=30)
        return Mock(child, int(match.group(1)))

    async def redis(self, port: int | None = None) -> tuple[procs.Child, int]:
        """A private ``redis-server`` (no persistence) on an ephemeral port."""
        port = port or free_port()
        child = self.start(
            f"redis-{port}",
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        )
        await child.wait_for(re.compile(r"Ready to accept connections"), within=20)
        return child, port

    def config(
        self,
        name: str,
        *,
        store: str,
        models: str,
        proxy: str = "",
        redis: str = "",
        settings: str = "",
        usage: str = "",
    ) -> Path:
        """A voidllm.yaml: loopback on an ephemeral port, ``store`` a SQLite path or a PostgreSQL DSN,
        the spill in the work directory; ``proxy`` / ``settings`` / ``usage`` lines are indented under
        ``server.proxy`` / ``settings`` / ``settings.usage``."""
        driver = "postgres" if store.startswith("postgresql://") else "sqlite"
        spill = self.workdir / "spill"
        spill.mkdir(exist_ok=True)
        proxy_lines = "".join(f"\n    {line}" for line in proxy.splitlines() if line.strip())
        settings_lines = "".join(f"\n  {line}" for line in settings.splitlines() if line.strip())
        usage_lines = f"\n  usage:\n    spill_dir: {json.dumps(str(spill))}" + "".join(
            f"\n    {line}" for line in usage.splitlines() if line.strip()
        )
        path = self.workdir / f"{name}.yaml"
        path.write_text(
            f"""\
server:
  proxy:
    host: 127.0.0.1
    port: 0{proxy_lines}
database:
  driver: {driver}
  dsn: {json.dumps(store)}
settings:
  encryption_key: {ENCRYPTION_KEY}
  admin_key: {ADMIN_KEY}{usage_lines}{settings_lines}
models:{models}
{redis}
logging:
  level: info
  format: json
"""
        )
        return path

    def dump(self, name: str, value: Any) -> None:
        """Raw data into the work directory (kept with ``--keep``), for looking into a FAIL."""
        (self.workdir / f"{name}.json").write_text(json.dumps(value, default=_plain, indent=0))

    @property
    def spill_dir(self) -> Path:
        return self.workdir / "spill"

    def sqlite(self) -> str:
        (self.workdir / "data").mkdir(exist_ok=True)
        return str(self.workdir / "data" / "voidllm.db")

    async def gateway(
        self, config: Path, name: str = "gateway", *, within: float = 60, key: str = ""
    ) -> Gateway:
        """Start ``voidllm serve`` and wait for its listening line (and its bootstrap banner unless ``key``
        is given: a restarted gateway prints none)."""
        child = self.start(name, [PYTHON, "-m", "voidllm", "serve", "--config", str(config)])
        deadline = time.monotonic() + within
        while True:
            text = child.output()
            ports = procs._listening_ports(text)
            found = key or _banner_key(text)
            if ports and found:
                return Gateway(child, ports[0], found)
            if child.popen.poll() is not None:
                raise ScenarioError(
                    f"{name} exited with {child.popen.returncode} during start:\n{child.tail()}"
                )
            if time.monotonic() > deadline:
                raise ScenarioError(f"{name} was not ready after {within:.0f} s:\n{child.tail()}")
            await trio.sleep(0.05)

    async def close(self) -> None:
        procs.kill_all(grace=3)
        for db in self.databases:
            with contextlib.suppress(ScenarioError):
                await db.psql(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)', database="postgres")
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _plain(value: object) -> object:
    return attrs.asdict(value) if attrs.has(type(value)) else str(value)  # type: ignore[arg-type]


_API_KEY = re.compile(r"API Key:\s+(vl_\w+)")


def _banner_key(text: str) -> str:
    match = _API_KEY.search(text)
    return match.group(1) if match else ""


def signal_group(child: procs.Child, sig: int) -> None:
    procs.kill_group(child.pid, sig)


async def wait_exit(child: procs.Child, within: float) -> int | None:
    """The exit code once ``child`` has exited, or None after ``within`` seconds."""
    deadline = time.monotonic() + within
    while child.popen.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a process
        await trio.sleep(0.05)
    return child.popen.poll()


async def kill_and_reap(child: procs.Child) -> None:
    procs.kill_group(child.pid, signal.SIGKILL)
    await wait_exit(child, 10)
    procs.unregister(child.pid)


# -- process figures -------------------------------------------------------------------------------------


def tree_rss_mb(root: int) -> float:
    total = 0
    for pid in procs.descendants(root):
        memory = procs.memory_kb(pid)
        if memory:
            total += memory[0]
    return total / 1024


def tree_fds(root: int) -> int:
    count = 0
    for pid in procs.descendants(root):
        with contextlib.suppress(OSError):
            count += len(os.listdir(f"/proc/{pid}/fd"))
    return count


def machine() -> dict[str, Any]:
    """Cores, RAM and load average of this machine, for the table."""
    with open("/proc/meminfo") as f:
        total_kb = int(next(line for line in f if line.startswith("MemTotal:")).split()[1])
    load = os.getloadavg()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cores": os.cpu_count() or 0,
        "ram_gb": round(total_kb / 1024 / 1024, 1),
        "load": f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}",
        "uptime": uptime,
    }
