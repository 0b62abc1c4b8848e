"""Scenarios about hostile or broken clients: slowloris, and clients that never read their answer.

- ``slowloris``: 300 connections send the start of a request head, then one more header byte every 0.5 s,
  forever, and 20 more send a whole head and then trickle the body the same way; ``read_timeout: 5s``,
  ``idle_timeout: 10s``. Meanwhile 4 connections of normal load. Goal: normal requests all 200 (p99 below a
  second); every trickled head closed by the gateway within idle_timeout + 3 s (hypercorn's keep-alive
  timer runs from the connection's start until a whole head arrived: that is the head's bound, see
  ``voidllm.server.hypercorn_config``; ``read_timeout`` bounds bodies only); every trickled body answered
  408 within read_timeout + 3 s.
- ``slow_readers``: answers of 8 MB; 6 streaming and 3 non-streamed requests from clients with a 4 KiB
  receive buffer that read nothing. ``max_stream_duration: 10s``, ``write_timeout: 3s``. Goal: the
  non-streamed ones end by write_timeout + 4 s, the streams by max_stream_duration + 4 s (in-flight and
  active-stream gauges back to 0, each connection closed by the gateway); then 10 healthy requests to the
  same deployment all 200 with its breaker closed; the gateway's RSS peak at most 3 answers + 48 MB above
  its baseline.
"""

from __future__ import annotations

import socket
import time
from collections import Counter

import trio
from bench_lib.client import Connection

from faults_lib import load as loadgen
from faults_lib.harness import Gateway, Result, Scenario, chat_body, log, tree_rss_mb
from faults_lib.upstream import _p
from faults_lib.usage import model

SLOW_CONNECTIONS = 300
SLOW_BODIES = 20


async def slowloris(sc: Scenario) -> Result:
    read_timeout, idle_timeout, slack = 5.0, 10.0, 3.0
    watch = idle_timeout + slack + 10
    mock = await sc.mock()
    proxy = f"read_timeout: {read_timeout:g}s\nidle_timeout: {idle_timeout:g}s"
    gw = await sc.gateway(
        sc.config("gateway", store=sc.sqlite(), models=model("m", mock.base_url), proxy=proxy)
    )
    heads: list[float] = []  # seconds until the gateway closed a connection trickling its head
    bodies: list[tuple[float, bytes]] = []  # (seconds, status line) of connections trickling a body
    opened = [0]
    load, stop = loadgen.Load(), trio.Event()

    async def trickle(body: bool) -> None:
        started = time.monotonic()
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
        except OSError:  # refused: counted as not cut (the goal needs every one cut)
            return
        opened[0] += 1
        first = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gw.key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            if body
            else "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: "
        ).encode()
        received = b""
        async with stream:
            with trio.move_on_after(watch):
                async with trio.open_nursery() as nursery:

                    async def send() -> None:
                        try:
                            await stream.send_all(first)
                            while True:
                                await trio.sleep(0.5)
                                await stream.send_all(b" ")
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            await trio.sleep_forever()  # the reader sees the close

                    nursery.start_soon(send)
                    try:
                        while chunk := await stream.receive_some(4096):
                            received += chunk
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
                    seconds = time.monotonic() - started
                    if body:
                        bodies.append((seconds, received.split(b"\r\n", 1)[0]))
                    else:
                        heads.append(seconds)
                    nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        async with trio.open_nursery() as slow:
            for i in range(SLOW_CONNECTIONS + SLOW_BODIES):
                slow.start_soon(trickle, i < SLOW_BODIES)
            await trio.sleep(1)
            log(f"slowloris: {opened[0]} slow connections open; normal load")
            nursery.start_soon(
                lambda: loadgen.run(gw.port, gw.key, chat_body("m"), connections=4, stop=stop, load=load)
            )
        stop.set()
    latencies = [r.seconds for r in load.records if r.status == 200]
    heads.sort()
    body_times = sorted(seconds for seconds, _ in bodies)
    body_status = Counter(line.decode(errors="replace") or "closed, no answer" for _, line in bodies)
    figure = (
        f"{SLOW_CONNECTIONS} trickling their head: {len(heads)} closed by the gateway after "
        f"{_range(heads)}; {SLOW_BODIES} trickling their body: {dict(body_status)} after "
        f"{_range(body_times)}; "
        f"normal requests {load.ok()} ok, {len(load.errors())} errors, p99 "
        f"{_p(latencies, 0.99) * 1000:.0f} ms"
    )
    passed = (
        len(heads) == SLOW_CONNECTIONS
        and heads[-1] <= idle_timeout + slack
        and len(bodies) == SLOW_BODIES
        and body_times[-1] <= read_timeout + slack
        and all(line.startswith(b"HTTP/1.1 408") for _, line in bodies)
        and not load.errors()
        and load.ok() > 0
        and _p(latencies, 0.99) < 1.0
    )
    goal = (
        f"normal all 200 (p99 < 1 s); heads cut by idle_timeout ({idle_timeout:g} s, the head's bound) "
        f"+ {slack:g} s; bodies 408 by read_timeout ({read_timeout:g} s) + {slack:g} s"
    )
    return Result("slowloris", figure, goal, passed)


def _range(values: list[float]) -> str:
    return f"{values[0]:.1f}-{values[-1]:.1f} s" if values else "-"


BIG = 8_000_000


async def non_reader(gw: Gateway, *, stream: bool) -> trio.SocketStream:
    """A connection with a tiny receive buffer that has sent one chat request and reads nothing."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", gw.port))
    body = chat_body("m", stream=stream)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gw.key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    connection = trio.SocketStream(sock)
    await connection.send_all(head + body)
    return connection


async def closed_by_gateway(connection: trio.SocketStream, within: float) -> bool:
    """Read what is left; whether the gateway closed the connection within ``within`` seconds."""
    with trio.move_on_after(within):
        try:
            while await connection.receive_some(1 << 20):
                pass
        except trio.BrokenResourceError:
            pass
        await connection.aclose()
        return True
    await connection.aclose()
    return False


async def slow_readers(sc: Scenario) -> Result:
    stream_limit, write_timeout, slack = 10.0, 3.0, 4.0
    mock = await sc.mock(completion_bytes=BIG, chunks=64)
    models = (
        f"\n  - name: m\n    strategy: priority\n    deployments:\n"
        f'      - {{name: d0, provider: openai, base_url: "{mock.base_url}", api_key: sk-faults}}'
    )
    proxy = (
        f"max_stream_duration: {stream_limit:g}s\nwrite_timeout: {write_timeout:g}s\nmax_response_body: 64MiB"
    )
    gw = await sc.gateway(sc.config("gateway", store=sc.sqlite(), models=models, proxy=proxy))
    warm = Connection(gw.port)
    await loadgen.one(
        warm, loadgen.Load(), gw.key, chat_body("m")
    )  # the first answer's buffers count as baseline
    await warm.close()
    await trio.sleep(0.5)
    baseline = tree_rss_mb(gw.pid)
    started = time.monotonic()
    streams = [await non_reader(gw, stream=True) for _ in range(6)]
    wholes = [await non_reader(gw, stream=False) for _ in range(3)]
    peak, whole_done, streams_done = baseline, None, None
    while time.monotonic() - started < stream_limit + slack + 10:
        peak = max(peak, tree_rss_mb(gw.pid))
        inflight = await gw.metric("voidllm_inflight_requests")
        active = await gw.metric("voidllm_active_streams")
        now = time.monotonic() - started
        if whole_done is None and inflight - active <= 0:
            whole_done = now
        if streams_done is None and active <= 0 and now > 1:
            streams_done = now
        if whole_done is not None and streams_done is not None:
            break
        await trio.sleep(0.25)
    log(f"slow_readers: whole answers ended after {whole_done}, streams after {streams_done}")
    closed = [await closed_by_gateway(c, 3) for c in streams + wholes]
    healthy = loadgen.Load()
    conn = Connection(gw.port)
    for _ in range(10):
        await loadgen.one(conn, healthy, gw.key, chat_body("m"), give_up=30)
    await conn.close()
    breaker = await gw.metric("voidllm_circuit_breaker_state", upstream="m/d0")
    after = tree_rss_mb(gw.pid)
    budget = 3 * BIG / 1e6 + 48
    figure = (
        f"non-streamed cut after {_s(whole_done)}, streams after {_s(streams_done)}; "
        f"{sum(closed)}/9 closed by the gateway; then {healthy.ok()}/10 healthy 200, breaker state "
        f"{breaker:g}; RSS {baseline:.0f} MB -> peak {peak:.0f} MB -> {after:.0f} MB"
    )
    passed = (
        whole_done is not None
        and whole_done <= write_timeout + slack
        and streams_done is not None
        and streams_done <= stream_limit + slack
        and all(closed)
        and healthy.ok() == 10
        and breaker == 0
        and peak - baseline <= budget
    )
    goal = (
        f"whole answers cut by write_timeout ({write_timeout:g} s) + {slack:g} s, streams by "
        f"max_stream_duration ({stream_limit:g} s) + {slack:g} s; 10/10 healthy, breaker closed (0); "
        f"RSS peak <= baseline + {budget:.0f} MB"
    )
    return Result("slow_readers", figure, goal, passed)


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"
