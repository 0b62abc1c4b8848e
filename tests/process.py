"""Run the real ``voidllm`` command in a subprocess for tests: start it, learn its port and key, signal it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import orjson
import trio

from tests.gateway import ADMIN_KEY, ENCRYPTION_KEY

EXIT_LIMIT = 30.0
"""Seconds :meth:`GatewayProcess.wait_exit` waits at most (a test may bound it tighter)."""
START_LIMIT = 30.0
"""Seconds :func:`spawn_gateway` waits for the gateway to listen."""


def _indented(text: str, spaces: int) -> str:
    return "".join(f"\n{' ' * spaces}{line}" for line in textwrap.dedent(text).splitlines() if line.strip())


def write_config(
    directory: Path,
    yaml_tail: str = "",
    *,
    port: int = 0,
    level: str = "info",
    proxy: str = "",
    server: str = "",
    settings: str = "",
    postgres_dsn: str | None = None,
) -> Path:
    """A voidllm.yaml with a SQLite store inside ``directory`` (or PostgreSQL at ``postgres_dsn``) and the
    test keys; ``proxy`` adds ``server.proxy`` lines (e.g. ``"drain_timeout: 5s"``), ``server`` adds
    ``server`` lines (e.g. ``"workers: 2"``), ``settings`` adds
    ``settings`` lines (YAML at the level of ``encryption_key``, e.g. ``"usage:\n  rollup_interval: 4s"``)."""
    path = directory / "voidllm.yaml"
    database = (
        f"driver: postgres\n  dsn: {postgres_dsn}"
        if postgres_dsn is not None
        else f"driver: sqlite\n  dsn: {directory / 'data' / 'voidllm.db'}"
    )
    path.write_text(
        f"""
server:
  proxy:
    host: 127.0.0.1
    port: {port}{_indented(proxy, 4)}{_indented(server, 2)}
database:
  {database}
settings:
  encryption_key: {ENCRYPTION_KEY}
  admin_key: {ADMIN_KEY}{_indented(settings, 2)}
logging:
  level: {level}
{yaml_tail}"""
    )
    return path


@attrs.define
class GatewayProcess:
    process: trio.Process
    lines: list[str] = attrs.field(factory=list)
    url: str = ""
    api_key: str = ""
    _new_lines: trio.Event = attrs.field(factory=trio.Event)
    _stderr_closed: bool = False

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    async def wait_exit(self) -> int:
        """The exit code once the process ended, within :data:`EXIT_LIMIT` seconds."""
        with trio.fail_after(EXIT_LIMIT):
            return await self.process.wait()

    async def wait_for_line(self, found: Callable[[], bool]) -> None:
        """Return once ``found()`` holds, checking it again whenever the gateway wrote lines; the caller
        bounds the wait (``trio.fail_after``).

        Raises:
            AssertionError: the gateway closed its stderr (it exited) first.
        """
        while not found():
            if self._stderr_closed:
                raise AssertionError("voidllm exited early:\n" + "\n".join(self.lines))
            await self._new_lines.wait()

    def log(self, message: str) -> list[dict[str, object]]:
        """The JSON log records on stderr whose ``msg`` is ``message``."""
        found = []
        for line in self.lines:
            if line.startswith("{"):
                record = orjson.loads(line)
                if record.get("msg") == message:
                    found.append(record)
        return found

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        buffer = b""
        async for chunk in self.process.stderr:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                line = raw.decode("utf-8", "replace")
                self.lines.append(line)
                if line.startswith("  API Key:"):
                    self.api_key = line.split("API Key:")[1].strip()
                if '"msg":"listening"' in line:
                    self.url = orjson.loads(line)["binds"][0]
            self._new_lines.set()
            self._new_lines = trio.Event()
        self._stderr_closed = True
        self._new_lines.set()


@asynccontextmanager
async def spawn_gateway(
    config: Path,
    *,
    expect_banner: bool = True,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    command: Sequence[str] = (sys.executable, "-m", "voidllm"),
) -> AsyncIterator[GatewayProcess]:
    """Start ``voidllm serve --config config [args]`` and wait until it listens (and printed its banner);
    ``env`` adds variables to an environment cleared of every ``VOIDLLM_*``; ``command`` is the ``voidllm``
    to run (by default this interpreter's, e.g. an installed console script instead)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VOIDLLM_")}, **(env or {})}
    async with trio.open_nursery() as nursery:
        process = await trio.lowlevel.open_process(
            [*command, "serve", "--config", str(config), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        gateway = GatewayProcess(process)
        nursery.start_soon(gateway._read_stderr)
        try:
            with trio.fail_after(START_LIMIT):
                await gateway.wait_for_line(
                    lambda: bool(gateway.url and (gateway.api_key or not expect_banner))
                )
            yield gateway
        finally:
            if process.returncode is None:
                process.kill()
            with trio.move_on_after(10, shield=True):
                await process.wait()
            nursery.cancel_scope.cancel()


def free_port() -> int:
    """A local TCP port no socket is bound to right now (bound to port 0, then closed): where nothing answers,
    or a number to give a server that must be told its port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_yaml(url: str, prefix: str, **settings: str) -> str:
    """The ``redis:`` section for ``url`` under the key prefix ``prefix``, with more of its settings."""
    extra = "".join(f"\n  {name}: {value}" for name, value in settings.items())
    return f"\nredis:\n  enabled: true\n  url: {url}\n  key_prefix: '{prefix}'{extra}\n"


async def delete_prefix(client: Any, prefix: str) -> None:
    """Delete a test's Redis keys (everything under its key prefix) with ``client`` (a RedisClient)."""
    keys = await client.execute("KEYS", prefix + "*")
    if keys:
        await client.execute("DEL", *keys)
