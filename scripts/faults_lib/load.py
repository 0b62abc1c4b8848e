"""Closed-loop load with a record per request: when it started, its status, how long it took, its error code.

Built on the benchmark's keep-alive trio/h11 connection (``bench_lib.client.Connection``), so the gateway is
never measured with its own client code. Status 0 means the connection failed (refused, reset, closed before
an answer); -1 means the runner gave up on the request after ``give_up`` seconds.
"""

from __future__ import annotations

import time
from collections import Counter

import attrs
import h11
import orjson
import trio
from bench_lib.client import Connection

from faults_lib.harness import CHAT

IO_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError, ConnectionError)


@attrs.frozen
class Record:
    started: float  # seconds since the load's start
    status: int
    seconds: float
    code: str = ""  # error.code (or error.type) of an error answer


@attrs.define
class Load:
    origin: float = attrs.field(factory=time.monotonic)
    records: list[Record] = attrs.field(factory=list)

    def statuses(self) -> Counter[int]:
        return Counter(r.status for r in self.records)

    def ok(self) -> int:
        return sum(1 for r in self.records if r.status == 200)

    def errors(self) -> list[Record]:
        return [r for r in self.records if r.status != 200]

    def between(self, start: float, end: float) -> list[Record]:
        return [r for r in self.records if start <= r.started < end]

    def now(self) -> float:
        return time.monotonic() - self.origin


def error_code(body: bytes) -> str:
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return "not-json"
    if not isinstance(error, dict):
        return "no-envelope"
    return str(error.get("code") or error.get("type") or "")


def _headers(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"authorization", b"Bearer " + key.encode())]


async def one(
    conn: Connection,
    load: Load,
    key: str,
    body: bytes,
    *,
    stream: bool = False,
    give_up: float = 60,
    path: str = CHAT,
) -> Record:
    """One request on ``conn``, recorded in ``load``."""
    started = load.now()
    t0 = time.monotonic()
    status, code = -1, ""
    with trio.move_on_after(give_up):
        try:
            if stream:
                status, _ = await conn.post_stream(path.encode(), _headers(key), body)
            else:
                status, _, content, _ = await conn.fetch(path.encode(), _headers(key), body)
                if status != 200:
                    code = error_code(content)
        except IO_ERRORS:
            status = 0
    if status in (0, -1):
        await conn.close()
    record = Record(started, status, time.monotonic() - t0, code)
    load.records.append(record)
    return record


async def run(
    port: int,
    key: str,
    body: bytes,
    *,
    connections: int,
    stop: trio.Event,
    load: Load,
    stream_every: int = 0,
    stream_body: bytes = b"",
    give_up: float = 60,
    pause_after_error: float = 0.05,
) -> None:
    """``connections`` tasks each sending a request as soon as the last one ended, until ``stop`` is set;
    with ``stream_every`` n > 0 every n-th request of a connection is a stream of ``stream_body``."""

    async def worker() -> None:
        conn = Connection(port)
        n = 0
        try:
            while not stop.is_set():
                n += 1
                streaming = stream_every > 0 and n % stream_every == 0
                record = await one(
                    conn, load, key, stream_body if streaming else body, stream=streaming, give_up=give_up
                )
                if record.status != 200:
                    await trio.sleep(pause_after_error)  # no busy loop against a refusing gateway
        finally:
            await conn.close()

    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(worker)


async def for_seconds(
    port: int, key: str, body: bytes, seconds: float, *, connections: int, load: Load
) -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run(port, key, body, connections=connections, stop=stop, load=load))
        await trio.sleep(seconds)
        stop.set()
