"""``server.workers: 2``: one port, two processes, one bootstrap, a dead worker replaced, a clean drain."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
import trio

from tests.process import spawn_gateway, write_config
from voidllm.testing.mock_openai import open_mock_upstream

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def worker_pids(pid: int) -> list[int]:
    """The worker processes (multiprocessing's resource tracker is a child too, but runs no gateway)."""
    return [p for p in children(pid) if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]


async def test_two_workers_share_the_port_and_survive_a_crash(tmp_path: Path) -> None:
    async with open_mock_upstream() as mock:
        config = write_config(
            tmp_path,
            f"""
models:
  - name: m
    provider: openai
    base_url: {mock.base_url}
""",
            server="workers: 2",
        )
        async with spawn_gateway(config) as gw, httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            headers = {"Authorization": f"Bearer {gw.api_key}"}
            assert sum("BOOTSTRAP COMPLETE" in line for line in gw.lines) == 1
            workers = worker_pids(gw.process.pid)
            assert len(workers) == 2

            async def burst(n: int) -> list[int]:
                statuses: list[int] = []

                async def one() -> None:
                    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as own:  # a connection each
                        r = await own.post("/v1/chat/completions", headers=headers, json={"model": "m"})
                        statuses.append(r.status_code)

                async with trio.open_nursery() as nursery:
                    for _ in range(n):
                        nursery.start_soon(one)
                return statuses

            assert await burst(20) == [200] * 20
            os.kill(workers[0], signal.SIGKILL)
            with trio.fail_after(15):  # the replacement is up once it has logged that it listens
                await gw.wait_for_line(
                    lambda: len(gw.log("listening")) >= 4
                )  # 2 workers, parent, replacement
            assert workers[0] not in worker_pids(gw.process.pid)
            assert len(worker_pids(gw.process.pid)) == 2
            assert await burst(20) == [200] * 20
            assert (await client.get("/readyz")).status_code == 200
            gw.signal(signal.SIGTERM)
            assert await gw.wait_exit() == 0
        assert gw.log("worker exited; restarting")
