"""Scenarios about the billing record (issue 14 point 1): no usage event lost while the process lives.

- ``saturation``: closed-loop load at 64 connections (the gateway's top rate on this machine) for 30 s
  (8 s quick) on PostgreSQL; once the writer has drained, the usage rows must equal the requests the
  gateway answered with 200 (its own ``voidllm_upstream_requests_total``), nothing dropped. The writer's
  rows per second come from ``voidllm_usage_events_written_total`` sampled every second.
- ``store_cut``: the same load, PostgreSQL reached through a TCP forwarder of the runner, cut for 60 s
  (10 s quick); after reconnection (spill replay) rows == answered, nothing dropped.
- ``sigkill_spill``: PostgreSQL cut, requests until events are in the spill, the gateway killed with
  SIGKILL, the store back, the gateway restarted: every spilled event (read from the spill files before the
  restart) is written exactly once.
- ``sigterm_drain``: ~100 requests in flight (90 answering after 2 s, 10 never before the drain deadline)
  and SIGTERM: the 90 answered 200, the 10 answered 503 at the 5 s drain deadline, exit code 0, and one
  usage row per answered request.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections import Counter
from typing import TYPE_CHECKING

import trio
from bench_lib.client import Connection

from faults_lib import load as loadgen
from faults_lib.harness import (
    Database,
    Gateway,
    Result,
    Scenario,
    ScenarioError,
    chat_body,
    kill_and_reap,
    log,
    wait_exit,
)
from tests.tcpforward import forward

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

CONNECTIONS = 64


def model(name: str, base_url: str, extra: str = "") -> str:
    lines = f"\n  - name: {name}\n    provider: openai\n    base_url: {base_url}\n    api_key: sk-faults"
    return lines + "".join(f"\n    {line}" for line in extra.splitlines() if line.strip())


async def answered_200(gw: Gateway) -> int:
    return int(await gw.metric("voidllm_upstream_requests_total", status="200"))


async def wait_rows(db: Database, expected: int, *, within: float, settle: float = 5) -> int:
    """Poll the row count until it reaches ``expected``, stops moving for ``settle`` s, or ``within`` s."""
    deadline = time.monotonic() + within
    last, last_change = -1, time.monotonic()
    while True:
        rows = await db.scalar("SELECT count(*) FROM usage_events")
        if rows != last:
            last, last_change = rows, time.monotonic()
        if rows >= expected or time.monotonic() > deadline or time.monotonic() - last_change > settle:
            return rows
        await trio.sleep(0.5)


async def sample_written(gw: Gateway, into: list[tuple[float, float]], stop: trio.Event) -> None:
    while not stop.is_set():
        into.append((time.monotonic(), await gw.metric("voidllm_usage_events_written_total")))
        await trio.sleep(1)


def peak_rate(samples: list[tuple[float, float]]) -> float:
    rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(samples) if b[0] > a[0]]
    return max(rates, default=0.0)


async def saturation(sc: Scenario) -> Result:
    seconds = sc.pick(30, 8)
    db = await sc.database()
    mock = await sc.mock()
    gw = await sc.gateway(sc.config("gateway", store=db.dsn, models=model("mock", mock.base_url)))
    load, stop, samples = loadgen.Load(), trio.Event(), []
    log(f"saturation: {CONNECTIONS} connections for {seconds:.0f} s")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample_written, gw, samples, stop)
        started = time.monotonic()
        await loadgen.for_seconds(
            gw.port, gw.key, chat_body("mock"), seconds, connections=CONNECTIONS, load=load
        )
        elapsed = time.monotonic() - started
        under_load = list(samples)
        answered = await answered_200(gw)
        rows = await wait_rows(db, answered, within=60)
        stop.set()
    dropped = int(await gw.metric("voidllm_usage_events_dropped_total"))
    written_rate = (
        (under_load[-1][1] - under_load[0][1]) / (under_load[-1][0] - under_load[0][0])
        if len(under_load) > 1
        else 0.0
    )
    figure = (
        f"{answered} answered 200 ({answered / elapsed:.0f} req/s; client saw {load.ok()}), {rows} rows, "
        f"lost {answered - rows}, dropped {dropped}; writer {written_rate:.0f} rows/s under load "
        f"(peak {peak_rate(under_load):.0f}/s)"
    )
    return Result("saturation", figure, "rows == answered 200, 0 dropped", rows == answered and dropped == 0)


async def store_cut(sc: Scenario) -> Result:
    before, cut, after = sc.pick(10, 3), sc.pick(60, 10), sc.pick(10, 3)
    db = await sc.database()
    await db.psql("SELECT 1", database="postgres")
    mock = await sc.mock()
    async with forward("127.0.0.1", 5432) as fwd:
        gw = await sc.gateway(
            sc.config("gateway", store=db.dsn_via(fwd.port), models=model("mock", mock.base_url))
        )
        load, stop, sampled, samples = loadgen.Load(), trio.Event(), trio.Event(), []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample_written, gw, samples, sampled)
            async with trio.open_nursery() as loading:
                loading.start_soon(
                    lambda: loadgen.run(
                        gw.port, gw.key, chat_body("mock"), connections=CONNECTIONS, stop=stop, load=load
                    )
                )
                await trio.sleep(before)
                log(f"store_cut: PostgreSQL cut for {cut:.0f} s")
                fwd.down()
                cut_at = load.now()
                await trio.sleep(cut)
                fwd.up()
                up_at = load.now()
                replay_from = len(samples)
                log("store_cut: PostgreSQL back")
                await trio.sleep(after)
                stop.set()
            answered = await answered_200(gw)
            rows = await wait_rows(
                db, answered, within=sc.pick(180, 90), settle=35
            )  # retries back off to 30 s
            caught_up = load.now() - up_at
            sampled.set()
        replay = peak_rate(samples[replay_from:])  # the backlog drained (partly while the load went on)
        dropped = int(await gw.metric("voidllm_usage_events_dropped_total"))
        failures = int(await gw.metric("voidllm_usage_write_failures_total"))
    during = [r for r in load.between(cut_at, up_at) if r.status == 200]
    errors = Counter(r.status for r in load.between(cut_at, up_at) if r.status != 200)
    figure = (
        f"cut {cut:.0f} s at {len(during) / cut:.0f} req/s: {answered} answered 200 in all, {rows} rows "
        f"after reconnection, lost {answered - rows}, dropped {dropped} ({failures} failed batch writes "
        f"retried); backlog written {caught_up:.0f} s after reconnection, at up to {replay:.0f} rows/s"
    )
    result = Result("store_cut", figure, "0 usage events lost", rows == answered and dropped == 0)
    if errors:
        result.notes.append(f"answers other than 200 during the cut: {dict(errors)}")
    return result


def spilled_request_ids(spill: Path) -> list[str]:
    ids = []
    for path in sorted(spill.glob("usage_events.*.jsonl")):
        for line in path.read_bytes().split(b"\n"):
            if line.strip():
                ids.append(json.loads(line)["request_id"])
    return ids


async def sigkill_spill(sc: Scenario) -> Result:
    target = int(sc.pick(3000, 1500))
    db = await sc.database()
    mock = await sc.mock()
    async with forward("127.0.0.1", 5432) as fwd:
        config = sc.config(
            "gateway",
            store=db.dsn_via(fwd.port),
            models=model("mock", mock.base_url),
            usage="buffer_size: 50\nflush_interval: 1s",
        )
        gw = await sc.gateway(config)
        fwd.down()
        log(f"sigkill_spill: PostgreSQL cut; {target} requests")
        load, stop = loadgen.Load(), trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: loadgen.run(gw.port, gw.key, chat_body("mock"), connections=16, stop=stop, load=load)
            )
            with trio.move_on_after(sc.pick(120, 60)):
                while load.ok() < target:  # noqa: ASYNC110 - waits for the load task
                    await trio.sleep(0.1)
            stop.set()
        answered = await answered_200(gw)
        spilled = await _settled(lambda: spilled_request_ids(sc.spill_dir))
        if not spilled:
            raise ScenarioError(f"nothing was spilled after {answered} requests with the store cut")
        log(f"sigkill_spill: {len(spilled)} events spilled; SIGKILL")
        await kill_and_reap(gw.child)
        fwd.up()
        again = await sc.gateway(config, "gateway-2", key=gw.key)
        rows = await wait_rows(db, len(spilled), within=60)
        in_db = Counter((await db.psql("SELECT request_id FROM usage_events")).split())
        left = spilled_request_ids(sc.spill_dir)
        del again
    once = sum(1 for rid in spilled if in_db[rid] == 1)
    twice = sum(1 for n in in_db.values() if n > 1)
    figure = (
        f"{answered} answered 200 with the store cut, {len(spilled)} spilled, {answered - len(spilled)} "
        f"held in memory (lost with the process); after restart {once}/{len(spilled)} spilled events "
        f"written exactly once, {twice} duplicated, {rows} rows, {len(left)} still in the spill"
    )
    passed = once == len(spilled) == len(set(spilled)) and twice == 0
    return Result("sigkill_spill", figure, "each spilled event written exactly once", passed)


async def _settled(read: Callable[[], list[str]], *, quiet: float = 2.0, within: float = 30.0) -> list[str]:
    """Call ``read`` until its result stops growing for ``quiet`` s (the writer spills asynchronously)."""
    deadline = time.monotonic() + within
    last = read()
    changed = time.monotonic()
    while time.monotonic() - changed < quiet and time.monotonic() < deadline:
        await trio.sleep(0.25)
        now = read()
        if len(now) != len(last):
            last, changed = now, time.monotonic()
    return last


async def sigterm_drain(sc: Scenario) -> Result:
    fast_n, stuck_n = 90, 10
    db = await sc.database()
    fast = await sc.mock("mock-fast", latency="2s")
    stuck = await sc.mock("mock-stuck", latency="120s")
    models = model("fast", fast.base_url) + model("stuck", stuck.base_url)
    gw = await sc.gateway(sc.config("gateway", store=db.dsn, models=models, proxy="drain_timeout: 5s"))
    load = loadgen.Load()

    async def one(name: str) -> None:
        conn = Connection(gw.port)
        try:
            await loadgen.one(conn, load, gw.key, chat_body(name), give_up=60)
        finally:
            await conn.close()

    async with trio.open_nursery() as nursery:
        for i in range(fast_n + stuck_n):
            nursery.start_soon(one, "stuck" if i % 10 == 0 else "fast")
        with trio.move_on_after(10):
            while await gw.metric("voidllm_inflight_requests") < fast_n + stuck_n:  # noqa: ASYNC110 - polls
                await trio.sleep(0.05)
        inflight = int(await gw.metric("voidllm_inflight_requests"))
        log(f"sigterm_drain: {inflight} in flight; SIGTERM")
        sent_at = time.monotonic()
        os.kill(gw.pid, signal.SIGTERM)
        code = await wait_exit(gw.child, 40)
        exit_after = time.monotonic() - sent_at
    rows = await db.scalar("SELECT count(*) FROM usage_events")
    statuses = load.statuses()
    answered = sum(n for status, n in statuses.items() if status > 0)
    figure = (
        f"{inflight} in flight at SIGTERM: answers {dict(sorted(statuses.items()))}; exit code {code} after "
        f"{exit_after:.1f} s; {rows} usage rows for {answered} answered"
    )
    passed = (
        statuses[200] + statuses[503] == fast_n + stuck_n
        and statuses[200] >= fast_n
        and code == 0
        and rows == answered
        and inflight >= fast_n + stuck_n - 5
    )
    return Result(
        "sigterm_drain",
        figure,
        "every in-flight request answered (200, or 503 past the 5 s drain deadline), exit 0, "
        "a usage row per answer",
        passed,
    )
