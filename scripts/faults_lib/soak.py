"""The mixed soak: 30 minutes (``--soak``; 60 s with ``--quick``) of mixed traffic on PostgreSQL.

Load: 8 connections to a healthy model, every 4th request of a connection streamed (5 events 10 ms apart),
and 1 connection to a model whose upstream answers 500 (its breaker opens and closes again all along).
The gateway's RSS (its process tree) and open descriptors are sampled every 5 s (2 s when quick).

Warm-up is the first 10 % of the run (at least 10 s). Goals: RSS growth below 5 %, the mean of the last
10 % of the samples against the mean of the first 10 % after warm-up; descriptors flat: the last sample at
most 5 above the first one after warm-up. Also reported: usage rows written against requests answered
(every answer, errors included, is a usage event; the breaker's ``circuit_open`` refusals are not).
"""

from __future__ import annotations

import time

import trio

from faults_lib import load as loadgen
from faults_lib.harness import Result, Scenario, chat_body, log, tree_fds, tree_rss_mb
from faults_lib.usage import model, wait_rows

OVERRIDE: list[float | None] = [None]


def duration(sc: Scenario) -> float:
    return OVERRIDE[0] or (60.0 if sc.quick else 1800.0)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


async def soak(sc: Scenario) -> Result:
    seconds = duration(sc)
    every = 2.0 if seconds <= 120 else 5.0
    db = await sc.database()
    healthy = await sc.mock("mock", latency="5ms", chunks=5, interval="10ms")
    broken = await sc.mock("mock-500", status=500)
    models = model("m", healthy.base_url) + model("broken", broken.base_url)
    gw = await sc.gateway(sc.config("gateway", store=db.dsn, models=models))
    samples: list[tuple[float, float, int]] = []  # (seconds, RSS MB, descriptors)
    good, bad, stop = loadgen.Load(), loadgen.Load(), trio.Event()
    log(f"soak: {seconds:.0f} s, sampling every {every:g} s")
    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: loadgen.run(
                gw.port,
                gw.key,
                chat_body("m"),
                connections=8,
                stop=stop,
                load=good,
                stream_every=4,
                stream_body=chat_body("m", stream=True),
            )
        )
        nursery.start_soon(
            lambda: loadgen.run(gw.port, gw.key, chat_body("broken"), connections=1, stop=stop, load=bad)
        )
        while (now := time.monotonic() - started) < seconds:
            samples.append((now, tree_rss_mb(gw.pid), tree_fds(gw.pid)))
            if len(samples) % max(1, int(60 / every)) == 0:
                _, rss, fds = samples[-1]
                log(f"soak: {now:.0f} s, RSS {rss:.1f} MB, {fds} descriptors, {good.ok()} ok")
            await trio.sleep(every)
        stop.set()
    # every answer is a usage event, except the breaker's refusals (no upstream was asked)
    answered = len([r for r in good.records + bad.records if r.status > 0 and r.code != "circuit_open"])
    rows = await wait_rows(db, answered, within=60)
    warm = max(10.0, seconds * 0.1)
    after = [s for s in samples if s[0] >= warm]
    window = max(1, len(after) // 10)
    first, last = _mean([s[1] for s in after[:window]]), _mean([s[1] for s in after[-window:]])
    growth = (last - first) / first * 100 if first else 0.0
    fd_first, fd_last = after[0][2], after[-1][2]
    fd_low, fd_high = min(s[2] for s in after), max(s[2] for s in after)
    figure = (
        f"{good.ok()} ok + {len(bad.records)} to the failing model in {seconds:.0f} s; RSS {first:.1f} -> "
        f"{last:.1f} MB after warm-up ({growth:+.1f} %); descriptors {fd_first} -> {fd_last} "
        f"(range {fd_low}-{fd_high}); {rows} usage rows for {answered} answers (breaker refusals aside)"
    )
    passed = growth < 5.0 and fd_last - fd_first <= 5 and len(good.errors()) == 0 and rows == answered
    result = Result(
        "soak",
        figure,
        "RSS growth < 5 % after warm-up, descriptors flat (+5 at most), "
        "healthy model all 200, a usage row per answer",
        passed,
    )
    if good.errors():
        result.notes.append(f"healthy-model errors: {dict(loadgen.Load(records=good.errors()).statuses())}")
    if rows != answered:
        result.notes.append(f"{rows} usage rows for {answered} answered requests (breaker refusals aside)")
    return result
