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
from voidllm.metrics import REGISTRY
from voidllm.server import Running, serve

ENCRYPTION_KEY = "test-encryption-passphrase-0001"
ADMIN_KEY = "a" * 40
CLIENT_TLS = httpx.create_ssl_context()
"""httpx's default TLS context, made once for the clients of every gateway started here: each client would
otherwise load the CA bundle again (about 25 ms of CPU), though it speaks plain HTTP to the gateway."""


def make_config(
    dsn: str,
    yaml_text: str = "",
    *,
    driver: str = "sqlite",
    environ: Mapping[str, str] | None = None,
    settings: str = "",
) -> Config:
    """A config from ``yaml_text`` with the test database, keys and an ephemeral port filled in;
    ``settings`` adds lines under ``settings:`` (e.g. ``"circuit_breaker:\n  threshold: 2"``)."""
    extra = "".join(f"\n  {line}" for line in settings.splitlines() if line)
    base = f"""
database:
  driver: {driver}
  dsn: "{dsn}"
settings:
  encryption_key: {ENCRYPTION_KEY}
  admin_key: {ADMIN_KEY}{extra}
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
        running: Running = await nursery.start(
            lambda task_status: serve(config, stop, banner_out=banner, task_status=task_status)
        )
        url = running.binds[0]
        async with httpx.AsyncClient(base_url=url, timeout=10, verify=CLIENT_TLS) as client:
            try:
                yield RunningGateway(running, url, client, stop, banner)
            finally:
                stop.set()


def model_yaml(name: str, base_url: str, *, extra: str = "", aliases: str = "[]") -> str:
    """One passthrough model entry for the ``models:`` list."""
    return f"""
  - name: {name}
    provider: openai
    base_url: {base_url}
    api_key: sk-upstream-secret
    aliases: {aliases}
    pricing: {{input_per_1m: 1.0, output_per_1m: 2.0}}
{extra}"""


async def usage_rows(driver: str, dsn: str) -> list[dict[str, Any]]:
    """Every usage_events row, oldest first (open the store after the gateway stopped and flushed)."""
    import sqlalchemy as sa

    from voidllm.store import tables
    from voidllm.store.store import open_store

    async with open_store(driver, dsn) as store:
        rows = await store.run(
            lambda conn: [
                dict(r)
                for r in conn.execute(
                    sa.select(tables.usage_events).order_by(tables.usage_events.c.created_at)
                ).mappings()
            ]
        )
    return rows


def metric_sample(name: str, **labels: str) -> float:
    """The value of one sample of this process's metrics (an in-process gateway's), 0 when it has none yet."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
