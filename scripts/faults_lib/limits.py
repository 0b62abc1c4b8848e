"""Redis stopped, then frozen, under load on keys with a request limit (issue 14: "Redis stopped or frozen").

A private ``redis-server`` (ephemeral port, no persistence: the shared one is never touched) and two
gateways on it, one with ``redis.on_error: allow`` and one with ``deny``, ``redis.timeout: 500ms``. Each
has a team key with a request limit far above the load (so every request asks Redis). Four connections of
load per gateway through five phases: baseline; Redis stopped (SIGTERM, the process exits); Redis started
again on the same port; Redis frozen (SIGSTOP: the port accepts, nothing answers); Redis thawed (SIGCONT).

Goals: while Redis is away, ``allow`` answers 200 and ``deny`` answers 503 ``service_unavailable`` once its
in-flight requests are past, and no request waits longer than the Redis timeout plus 1 s of slack (the
machine is shared); after Redis comes back, both answer 200 again within a few seconds.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import attrs
import httpx
import trio

from faults_lib import load as loadgen
from faults_lib.harness import (
    Gateway,
    Result,
    Scenario,
    ScenarioError,
    chat_body,
    kill_and_reap,
    log,
    wait_exit,
)
from faults_lib.usage import model

TIMEOUT = 0.5
SLACK = 1.0
RECOVERY = 5.0  # seconds after Redis is back within which requests may still fail or wait
PHASES = ("baseline", "stopped", "restarted", "frozen", "thawed")


async def limited_key(gw: Gateway) -> str:
    """A team key of the default organisation limited to 10^9 requests a minute (the admin API makes it)."""
    headers = {"Authorization": f"Bearer {gw.key}"}
    async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=10) as client:
        orgs = (await client.get("/api/v1/orgs")).json()["data"]
        org = next(o["id"] for o in orgs if o["slug"] == "default")
        team = await client.post(f"/api/v1/orgs/{org}/teams", json={"name": "Faults", "slug": "faults"})
        if team.status_code != 201:
            raise ScenarioError(f"team not created: {team.status_code} {team.text[:200]}")
        key = await client.post(
            f"/api/v1/orgs/{org}/keys",
            json={
                "name": "limited",
                "key_type": "team_key",
                "team_id": team.json()["id"],
                "requests_per_minute": 10**9,
            },
        )
        if key.status_code != 201:
            raise ScenarioError(f"key not created: {key.status_code} {key.text[:200]}")
        return str(key.json()["key"])


@attrs.define
class Side:
    policy: str
    gw: Gateway
    key: str
    load: loadgen.Load = attrs.field(factory=loadgen.Load)


async def redis_faults(sc: Scenario) -> Result:
    phase = sc.pick(10, 7)
    redis, port = await sc.redis()
    mock = await sc.mock()
    sides = []
    for policy in ("allow", "deny"):
        redis_yaml = (
            f"redis:\n  enabled: true\n  url: redis://127.0.0.1:{port}/0\n  key_prefix: 'faults-{policy}:'"
            f"\n  on_error: {policy}\n  timeout: {int(TIMEOUT * 1000)}ms"
        )
        store = str(sc.workdir / f"{policy}.db")
        gw = await sc.gateway(
            sc.config(policy, store=store, models=model("m", mock.base_url), redis=redis_yaml),
            f"gateway-{policy}",
        )
        sides.append(Side(policy, gw, await limited_key(gw)))
    marks: dict[str, float] = {}
    up: dict[str, list[float]] = {}
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for side in sides:
            nursery.start_soon(
                lambda s=side: loadgen.run(
                    s.gw.port, s.key, chat_body("m"), connections=4, stop=stop, load=s.load, give_up=30
                )
            )
        origin = time.monotonic()
        for side in sides:
            side.load.origin = origin
        for name in PHASES:
            marks[name] = time.monotonic() - origin
            if name == "stopped":
                os.kill(redis.pid, signal.SIGTERM)
                if await wait_exit(redis, 10) is None:
                    await kill_and_reap(redis)
            elif name == "restarted":
                redis, _ = await sc.redis(port)
            elif name == "frozen":
                os.kill(redis.pid, signal.SIGSTOP)
            elif name == "thawed":
                os.kill(redis.pid, signal.SIGCONT)
            log(f"redis_faults: {name}")
            await trio.sleep(phase)
            up[name] = [await s.gw.metric("voidllm_redis_up") for s in sides]
        stop.set()
    marks["end"] = time.monotonic() - origin
    sc.dump("redis-phases", {"marks": marks, **{side.policy: side.load.records for side in sides}})
    return _judge(sides, marks, up)


def _judge(sides: list[Side], marks: dict[str, float], up: dict[str, list[float]]) -> Result:
    parts, passed = [], True
    for side in sides:
        cells = []
        for i, name in enumerate(PHASES):
            start, end = marks[name], marks[PHASES[i + 1]] if i + 1 < len(PHASES) else marks["end"]
            records = [r for r in side.load.records if start <= r.started < end]
            statuses = dict(sorted(Counter(r.status for r in records).items()))
            worst = max((r.seconds for r in records), default=0.0)
            if name in ("stopped", "frozen"):
                want = 503 if side.policy == "deny" else 200
                # neither in flight when the fault began nor still waiting when it ended
                settled = [
                    r for r in records if r.started >= start + TIMEOUT + SLACK and r.started + r.seconds < end
                ]
                ok = bool(settled) and all(r.status == want for r in settled) and worst <= TIMEOUT + SLACK
                cells.append(f"{name} {statuses} max {worst:.2f} s")
            elif name == "baseline":
                ok = bool(records) and all(r.status == 200 for r in records)
                cells.append(f"{name} {statuses}")
            else:  # back to normal: how long until every answer is a 200 that did not wait on a dead Redis
                slow = TIMEOUT + SLACK
                late = [r.started + r.seconds - start for r in records if r.status != 200 or r.seconds > slow]
                recovered = max(late, default=0.0)
                ok = recovered <= RECOVERY and any(r.started - start > recovered for r in records)
                cells.append(f"{name} {statuses}, normal after {recovered:.1f} s")
            passed &= ok
            if not ok:
                cells[-1] += " (!)"
        parts.append(f"{side.policy}: " + "; ".join(cells))
    figure = " / ".join(parts) + f"; redis_up after each phase {[int(up[n][0]) for n in PHASES]}"
    notes = []
    allow = next(side for side in sides if side.policy == "allow")
    served = {name: len(_phase(allow, marks, name)) for name in ("baseline", "frozen")}
    if served["frozen"] < served["baseline"] / 2:
        notes.append(
            f"with Redis frozen, `allow` served {served['frozen']} requests against {served['baseline']} in "
            f"the baseline phase: each request waits the whole Redis timeout ({TIMEOUT:g} s), then passes "
            "uncounted (no fast failure while Redis stays unresponsive)"
        )
    goal = (
        f"allow 200 / deny 503 while Redis is away, no request over the {TIMEOUT:g} s timeout + {SLACK:g} s; "
        f"quick 200s again within {RECOVERY:g} s of its return"
    )
    return Result("redis_faults", figure, goal, passed, notes=notes)


def _phase(side: Side, marks: dict[str, float], name: str) -> list[loadgen.Record]:
    i = PHASES.index(name)
    end = marks[PHASES[i + 1]] if i + 1 < len(PHASES) else marks["end"]
    return [r for r in side.load.records if marks[name] <= r.started < end]
