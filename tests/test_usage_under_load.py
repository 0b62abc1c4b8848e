"""Issue 14 point 1 through the gateway: every request answered with 200 has exactly one usage row.

The writer-level cases (a slow store, a cut store, a crashed process's spill, the spill budget) are in
``tests/test_usage_spill.py``; here a real gateway answers real HTTP load while its usage store is slowed
down or cut, and a real ``voidllm serve`` process is killed with SIGKILL while spilled events wait. The
answered requests are matched to the rows by request id (``x-request-id``). Real time throughout (the store
and the spill work in threads; STYLE P17); every wait is bounded. The long versions (top rate for a minute,
a 60 s cut) are scenarios of ``scripts/faults``.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import sqlalchemy as sa
import trio

import voidllm.usage.writer as usage_writer
from tests.gateway import ADMIN_KEY, ENCRYPTION_KEY, make_config, run_gateway
from tests.polling import poll_until
from tests.process import spawn_gateway
from tests.tcpforward import forward
from voidllm.metrics import REGISTRY
from voidllm.store import tables
from voidllm.store.migrate import migrate
from voidllm.store.store import open_store

if TYPE_CHECKING:
    from collections.abc import Callable

DEMO = "models:\n  - name: demo\n    provider: mock\n"
CHAT = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
DROPPED = "voidllm_usage_events_dropped_total"


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def usage_settings(spill_dir: Path, *, buffer_size: int) -> str:
    return f"usage:\n  buffer_size: {buffer_size}\n  flush_interval: 50ms\n  spill_dir: {spill_dir}"


def spilled_lines(directory: Path) -> int:
    return sum(len(path.read_bytes().splitlines()) for path in directory.glob("usage_events.*.jsonl"))


async def request_ids(driver: str, dsn: str) -> list[str]:
    async with open_store(driver, dsn) as store:
        return await store.run(
            lambda c: list(c.execute(sa.select(tables.usage_events.c.request_id)).scalars())
        )


async def load(
    client: httpx.AsyncClient,
    key: str,
    *,
    workers: int,
    requests: int,
    answered: list[str],
    between: Callable[[int], Any] | None = None,
) -> None:
    """``workers`` concurrent clients sending ``requests`` chat requests in all; the request ids of the 200s
    go into ``answered``. ``between(n)`` runs (awaited) after the ``n``-th request completed, e.g. to cut a
    store half-way."""
    auth = {"Authorization": f"Bearer {key}"}
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while sent < requests:
            sent += 1
            response = await client.post("/v1/chat/completions", json=CHAT, headers=auth)
            assert response.status_code == 200, response.text
            answered.append(response.headers["x-request-id"])
            if between is not None:
                await between(len(answered))

    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            nursery.start_soon(worker)


async def wait_for_rows(driver: str, dsn: str, expected: int) -> list[str]:
    """Poll the store until ``expected`` usage rows are there (for at most 30 s), then return their request
    ids."""

    async def written() -> bool:
        return len(await request_ids(driver, dsn)) >= expected

    with trio.move_on_after(30):
        await poll_until(written, interval=0.1)
    return await request_ids(driver, dsn)


async def test_saturation_with_a_slow_usage_store_writes_a_row_per_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's inserts take 50 ms per batch of five (at most 100 rows a second) while the gateway
    answers several times that: memory fills, the overflow spills to disk and is replayed, every answer
    gets its row and nothing is dropped."""
    slowed = usage_writer.insert_usage_events

    def slow_insert(connection: sa.Connection, rows: Any, **options: Any) -> int:
        time.sleep(0.05)  # in the writer's worker thread, as a slow database would
        return slowed(connection, rows, **options)

    monkeypatch.setattr(usage_writer, "insert_usage_events", slow_insert)
    dsn = str(tmp_path / "voidllm.db")
    spill = tmp_path / "spill"
    dropped = metric(DROPPED)
    config = make_config(dsn, DEMO, settings=usage_settings(spill, buffer_size=20))
    answered: list[str] = []
    most_spilled = 0

    async def watch_spill(_: int) -> None:
        nonlocal most_spilled
        most_spilled = max(most_spilled, spilled_lines(spill))

    async with run_gateway(config) as gw:
        await load(gw.client, gw.api_key(), workers=32, requests=600, answered=answered, between=watch_spill)
        written = await wait_for_rows("sqlite", dsn, len(answered))
    assert most_spilled > 0  # the case under test: the store could not keep up
    assert sorted(written) == sorted(answered)
    assert metric(DROPPED) == dropped


async def test_a_store_cut_under_load_loses_no_usage_row(pg_dsn: str, tmp_path: Path) -> None:
    """PostgreSQL is cut (through the tests' TCP forwarder) a third of the way through steady load and
    comes back two thirds through: requests keep being answered from the key cache, their events wait in
    memory and in the spill, and every answer has its row once the store is back."""
    parts = urlsplit(pg_dsn)
    spill = tmp_path / "spill"
    dropped = metric(DROPPED)
    total = 900
    answered: list[str] = []
    async with forward(parts.hostname or "127.0.0.1", parts.port or 5432) as db:
        dsn = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{db.port}"))
        config = make_config(dsn, DEMO, driver="postgres", settings=usage_settings(spill, buffer_size=40))
        most_spilled = 0

        async def cut(n: int) -> None:
            nonlocal most_spilled
            if n == total // 3:
                db.down()
            elif n == 2 * total // 3:
                most_spilled = spilled_lines(spill)
                db.up()

        async with run_gateway(config) as gw:
            await load(gw.client, gw.api_key(), workers=16, requests=total, answered=answered, between=cut)
            written = await wait_for_rows("postgres", pg_dsn, len(answered))
    assert len(answered) == total
    assert most_spilled > 0  # the cut outlasted the memory buffer
    assert sorted(written) == sorted(answered)
    assert metric(DROPPED) == dropped


def _process_config(directory: Path, dsn: str, spill: Path) -> Path:
    path = directory / "voidllm.yaml"
    path.write_text(f"""
server:
  proxy:
    host: 127.0.0.1
    port: 0
database:
  driver: postgres
  dsn: "{dsn}"
settings:
  encryption_key: {ENCRYPTION_KEY}
  admin_key: {ADMIN_KEY}
  usage:
    buffer_size: 4
    flush_interval: 50ms
    spill_dir: {spill}
logging:
  level: info
{DEMO}""")
    return path


@pytest.mark.slow
async def test_spilled_events_of_a_killed_gateway_are_written_once_at_the_next_start(
    pg_dsn: str, tmp_path: Path
) -> None:
    """A real ``voidllm serve`` answers requests while its store is cut, so their events spill to disk; it is
    killed with SIGKILL (no shutdown, no final flush). The next start replays the spill: each spilled event
    is written exactly once, and the spill files are gone."""
    parts = urlsplit(pg_dsn)
    spill = tmp_path / "spill"
    async with open_store("postgres", pg_dsn) as direct:
        await migrate(direct)
    async with forward(parts.hostname or "127.0.0.1", parts.port or 5432) as db:
        dsn = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{db.port}"))
        config = _process_config(tmp_path, dsn, spill)
        answered: list[str] = []
        async with spawn_gateway(config) as gateway, httpx.AsyncClient(base_url=gateway.url) as client:
            await load(client, gateway.api_key, workers=1, requests=5, answered=answered)
            before = await wait_for_rows("postgres", pg_dsn, len(answered))
            assert sorted(before) == sorted(answered)
            db.down()
            await load(client, gateway.api_key, workers=4, requests=60, answered=answered)
            with trio.move_on_after(10):  # the memory cap is 10 events: the rest reach the spill
                await poll_until(lambda: spilled_lines(spill) >= 40, interval=0.05)
            gateway.signal(signal.SIGKILL)
            assert await gateway.wait_exit() == -signal.SIGKILL
        spilled = spilled_lines(spill)  # counted once the process is gone: its spiller may append until then
        assert spilled >= 40
        spilled_ids = sorted(
            line.split(b'"request_id":"')[1].split(b'"')[0].decode()
            for path in spill.glob("usage_events.*.jsonl")
            for line in path.read_bytes().splitlines()
        )
        assert len(spilled_ids) == spilled
        assert set(spilled_ids) <= set(answered)
        db.up()
        async with spawn_gateway(config, expect_banner=False):
            written = await wait_for_rows("postgres", pg_dsn, len(before) + spilled)
            with trio.move_on_after(5):
                await poll_until(lambda: not list(spill.glob("usage_events.*.jsonl")), interval=0.05)
            assert not list(spill.glob("usage_events.*.jsonl"))
    assert len(written) == len(set(written)) == len(before) + spilled  # each once
    assert set(written) == set(before) | set(spilled_ids)


async def test_a_keys_last_use_is_recorded_with_its_usage(tmp_path: Path) -> None:
    """``last_used_at`` of a key (shown on the API Keys page) follows its requests, written with the usage
    batch; an unused key keeps ``null``."""
    dsn = str(tmp_path / "voidllm.db")
    config = make_config(dsn, DEMO, settings=usage_settings(tmp_path / "spill", buffer_size=20))
    async with run_gateway(config) as gw:
        auth = {"Authorization": f"Bearer {gw.api_key()}"}
        me = (await gw.client.get("/api/v1/me", headers=auth)).json()
        org = me["org_id"]
        created = await gw.client.post(
            f"/api/v1/orgs/{org}/keys",
            headers=auth,
            json={"name": "unused", "key_type": "user_key", "user_id": me["id"]},
        )
        assert created.status_code == 201, created.text
        answered: list[str] = []
        await load(gw.client, gw.api_key(), workers=1, requests=3, answered=answered)
        await wait_for_rows("sqlite", dsn, len(answered))
        keys = (await gw.client.get(f"/api/v1/orgs/{org}/keys", headers=auth)).json()["data"]
    used = {key["name"]: key["last_used_at"] for key in keys}
    assert used["unused"] is None
    assert [name for name, at in used.items() if at is not None] != []
    async with open_store("sqlite", dsn) as store:
        newest = await store.run(lambda c: c.scalar(sa.select(sa.func.max(tables.usage_events.c.created_at))))
        last = await store.run(lambda c: c.scalar(sa.select(sa.func.max(tables.api_keys.c.last_used_at))))
    assert last == newest
