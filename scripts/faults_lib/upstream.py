"""Scenarios about upstreams that fail: one killed and restarted under load, one that hangs.

- ``deployment_killed``: 16 connections of load; the mock upstream is killed with SIGKILL, then restarted on
  the same port. Goal: no error before the kill; while it is down, errors in the endpoint's envelope (502
  or 503 once the breaker opened); after the restart, every request 200 again once the breaker's timeout
  (2 s here) has let a trial through.
- ``hung_upstream``: a model whose upstream accepts and never answers (mock ``--fail hang``), ``timeout: 3s``.
  Twenty requests to it (half streamed) end near 3 s with 504/502 in the envelope, while load on another
  model keeps being served (all 200, p99 below a second).
"""

from __future__ import annotations

from collections import Counter

import trio
from bench_lib.client import Connection

from faults_lib import load as loadgen
from faults_lib.harness import Result, Scenario, chat_body, free_port, kill_and_reap, log
from faults_lib.usage import model

BREAKER_TIMEOUT = 2.0


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


async def deployment_killed(sc: Scenario) -> Result:
    before, down, after = sc.pick(10, 4), sc.pick(10, 4), sc.pick(15, 8)
    port = free_port()
    mock = await sc.mock(port=port)
    config = sc.config(
        "gateway",
        store=sc.sqlite(),
        models=model("m", mock.base_url),
        settings=f"circuit_breaker:\n  timeout: {BREAKER_TIMEOUT:g}s",
    )
    gw = await sc.gateway(config)
    load, stop = loadgen.Load(), trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: loadgen.run(
                gw.port, gw.key, chat_body("m"), connections=16, stop=stop, load=load, give_up=30
            )
        )
        await trio.sleep(before)
        log("deployment_killed: SIGKILL the upstream")
        killed_at = load.now()
        await kill_and_reap(mock.child)
        await trio.sleep(down)
        await sc.mock("mock-2", port=port)
        back_at = load.now()
        log("deployment_killed: upstream restarted")
        await trio.sleep(after)
        stop.set()
    healthy_from = back_at + BREAKER_TIMEOUT + 1.0  # a trial request after the breaker's timeout
    early = [r for r in load.records if r.started + r.seconds < killed_at and r.status != 200]
    late = [r for r in load.records if r.started >= healthy_from and r.status != 200]
    during = Counter(
        (r.status, r.code) for r in load.records if r.status != 200 and r not in early and r not in late
    )
    recovered = min(
        (r.started + r.seconds for r in load.records if r.status == 200 and r.started >= back_at),
        default=None,
    )
    recovery = f"{recovered - back_at:.1f} s" if recovered is not None else "never"
    shapes = ", ".join(f"{n}x {s} {c or '-'}" for (s, c), n in during.most_common())
    figure = (
        f"{load.ok()} ok of {len(load.records)}; errors before the kill {len(early)}, after recovery "
        f"{len(late)}; first 200 after restart {recovery}; while down: {shapes or 'none'}"
    )
    enveloped = all(status in (502, 503, 504) and code for (status, code) in during)
    passed = not early and not late and recovered is not None and enveloped
    return Result(
        "deployment_killed",
        figure,
        f"errors only while down (502/503 enveloped); all 200 from restart + breaker timeout "
        f"({BREAKER_TIMEOUT:g} s)",
        passed,
    )


async def hung_upstream(sc: Scenario) -> Result:
    timeout = 3.0
    hung = await sc.mock("mock-hung", fail="hang")
    ok = await sc.mock("mock-ok")
    models = model("hung", hung.base_url, f"timeout: {timeout:g}s") + model("ok", ok.base_url)
    gw = await sc.gateway(sc.config("gateway", store=sc.sqlite(), models=models))
    hung_load, ok_load, stop = loadgen.Load(), loadgen.Load(), trio.Event()

    async def one_hung(stream: bool) -> None:
        conn = Connection(gw.port)
        try:
            await loadgen.one(conn, hung_load, gw.key, chat_body("hung", stream=stream), give_up=30)
        finally:
            await conn.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: loadgen.run(gw.port, gw.key, chat_body("ok"), connections=8, stop=stop, load=ok_load)
        )
        await trio.sleep(1)
        async with trio.open_nursery() as hung_nursery:
            for i in range(20):
                hung_nursery.start_soon(one_hung, i % 2 == 1)
        await trio.sleep(1)
        stop.set()
    shapes = Counter((r.status, r.code) for r in hung_load.records)
    durations = [r.seconds for r in hung_load.records]
    ok_latency = [r.seconds for r in ok_load.records if r.status == 200]
    ok_errors = len(ok_load.errors())
    figure = (
        f"hung requests: {', '.join(f'{n}x {s} {c}' for (s, c), n in shapes.most_common())}, ended after "
        f"{min(durations):.2f}-{max(durations):.2f} s; other model: {len(ok_latency)} ok, {ok_errors} "
        f"errors, p99 {_p(ok_latency, 0.99) * 1000:.0f} ms"
    )
    passed = (
        all(s in (502, 504) and c for (s, c) in shapes)
        and len(durations) == 20
        and min(durations) >= timeout - 0.1
        and max(durations) <= timeout + 2.5
        and ok_errors == 0
        and _p(ok_latency, 0.99) < 1.0
    )
    return Result(
        "hung_upstream",
        figure,
        f"504/502 enveloped at the model's timeout ({timeout:g} s, +2.5 s slack); other model all 200, "
        "p99 < 1 s",
        passed,
    )
