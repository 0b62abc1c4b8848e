"""Helpers to run a real gateway in-process for tests: a config on a fresh SQLite file, an ephemeral port."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import trio

from voidllm.config import Config, parse_config
from voidllm.server import Running, serve

ENCRYPTION_KEY = "test-encryption-passphrase-0001"
ADMIN_KEY = "a" * 40


def make_config(dsn: str, yaml_text: str = "", *, driver: str = "sqlite", environ: Mapping[str, str] | None = None) -> Config:
    """A config from ``yaml_text`` with the test database, keys and an ephemeral port filled in."""
    base = f"""
database:
  driver: {driver}
  dsn: "{dsn}"
settings:
  encryption_key: {ENCRYPTION_KEY}
  admin_key: {ADMIN_KEY}
logging:
  level: debug
"""
    config = parse_config(base + yaml_text, environ=dict(environ or {}))
    proxy = attrs.evolve(config.server.proxy, host="127.0.0.1", port=0)
    return attrs.evolve(config, server=attrs.evolve(config.server, proxy=proxy))


@attrs.define
class RunningGateway:
    running: Running
    url: str
    client: httpx.AsyncClient
    stop: trio.Event
    banner: io.StringIO

    @property
    def state(self) -> Any:
        return self.running.state

    def api_key(self) -> str:
        for line in self.banner.getvalue().splitlines():
            if "API Key:" in line:
                return line.split("API Key:")[1].strip()
        raise AssertionError("no bootstrap banner was printed")


@asynccontextmanager
async def run_gateway(config: Config) -> AsyncIterator[RunningGateway]:
    """Start ``serve`` in a nursery, yield a client bound to it, then stop it and wait for a clean exit."""
    stop = trio.Event()
    banner = io.StringIO()
    async with trio.open_nursery() as nursery:
        running: Running = await nursery.start(lambda task_status: serve(config, stop, banner_out=banner, task_status=task_status))
        url = running.binds[0]
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            try:
                yield RunningGateway(running, url, client, stop, banner)
            finally:
                stop.set()
