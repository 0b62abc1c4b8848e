"""``server.workers: 2``: one scrape of ``/metrics`` counts every request of every worker, also of a worker
that was killed; ``process_*`` per live worker, labelled ``pid``; the metric files go with the gateway."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest
import trio
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.polling import poll_until
from tests.process import GatewayProcess, spawn_gateway, write_config
from tests.test_workers import worker_pids
from voidllm.testing.mock_openai import open_mock_upstream

pytestmark = pytest.mark.slow

REQUESTS = "voidllm_upstream_requests_total"


def served_by_pid(directory: Path, counter: str = REQUESTS) -> Counter[int]:
    """Requests (or what ``counter`` counts) each worker counted, read from its own counter file (the
    per-worker signal)."""
    served: Counter[int] = Counter()
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            if orjson.loads(key)[1] == counter:
                served[pid] += int(value)
    return served


async def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """One scrape over a fresh connection: sample name -> [(labels, value)]."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as own:
        response = await own.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(value for _labels, value in samples.get(name, []))


async def counted(directory: Path, expected: int) -> None:
    """Wait until the workers have counted ``expected`` requests (a request is counted just after its last
    byte went out, so shortly after the client has its answer)."""
    with trio.fail_after(10):
        await poll_until(lambda: sum(served_by_pid(directory).values()) == expected)


async def burst(gw: GatewayProcess, n: int) -> None:
    headers = {"Authorization": f"Bearer {gw.api_key}"}

    async def one() -> None:
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as own:  # a connection each
            r = await own.post("/v1/chat/completions", headers=headers, json={"model": "m"})
            assert r.status_code == 200

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(one)


async def test_one_scrape_counts_every_worker(tmp_path: Path) -> None:
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
        async with spawn_gateway(config) as gw:
            (record,) = [r for r in gw.log("listening") if "metrics_dir" in r]
            directory = Path(str(record["metrics_dir"]))
            workers = worker_pids(gw.process.pid)
            assert len(workers) == 2
            sent = 0
            while len(served_by_pid(directory)) < 2:  # until both workers served some
                assert sent < 400, served_by_pid(directory)
                await burst(gw, 20)
                sent += 20
                await counted(directory, sent)
            for _ in range(4):  # any worker may answer a scrape: each sees every worker
                samples = await scrape(gw.url)
                assert total(samples, REQUESTS) == sent
                assert total(samples, "voidllm_proxy_duration_seconds_count") == sent
                assert total(samples, "voidllm_inflight_requests") == 0
                pids = {int(labels["pid"]) for labels, _ in samples["process_resident_memory_bytes"]}
                assert pids == set(workers)
                assert len(samples["python_info"]) == 1

            os.kill(workers[0], signal.SIGKILL)
            with trio.fail_after(15):  # 2 workers, parent, replacement
                await gw.wait_for_line(lambda: len(gw.log("listening")) >= 4)
            replacement = set(worker_pids(gw.process.pid)) - set(workers)
            assert len(replacement) == 1
            await burst(gw, 10)
            await counted(directory, sent + 10)
            for _ in range(4):
                samples = await scrape(gw.url)
                assert total(samples, REQUESTS) == sent + 10  # the killed worker's count is kept
                assert total(samples, "voidllm_proxy_duration_seconds_count") == sent + 10
                pids = {int(labels["pid"]) for labels, _ in samples["process_resident_memory_bytes"]}
                assert pids == {workers[1], *replacement}
            gw.signal(signal.SIGTERM)
            assert await gw.wait_exit() == 0
        assert not await trio.Path(directory).exists()
