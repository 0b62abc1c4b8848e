"""The built-in load generator: keep-alive HTTP/1.1 connections on trio + h11, one task per connection.

Used for the streaming phase always (wrk cannot time individual SSE events), and for every other phase when
Debian's ``wrk`` is not installed (or ``--load-generator python``). Deliberately independent of
``voidllm.transport.h11pool``: the benchmark should not measure the gateway with the gateway's own code.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import TYPE_CHECKING

import attrs
import h11
import trio

if TYPE_CHECKING:
    import re
    from collections.abc import Callable, Sequence

HOST = "127.0.0.1"  # the benchmark only ever talks to this machine
_RECEIVE = 65536


@attrs.define
class LoadResult:
    """What one load phase saw; latencies in seconds, one per successful request."""

    requests: int = 0
    errors: int = 0
    status_errors: int = 0
    answer_errors: int = 0  # a 200 whose body the phase's ``check`` refused
    elapsed: float = 0.0
    latencies: list[float] = attrs.field(factory=list)
    overheads_ms: list[float] = attrs.field(factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0


@attrs.define
class StreamResult:
    """Per stream: time to the first ``data:`` event, and the gaps between consecutive data events."""

    streams: int = 0
    errors: int = 0
    ttfts: list[float] = attrs.field(factory=list)
    gaps: list[float] = attrs.field(factory=list)
    chunks_per_stream: list[int] = attrs.field(factory=list)


class Connection:
    """One keep-alive client connection; reconnects lazily after any failure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stream: trio.SocketStream | None = None
        self.h11 = h11.Connection(h11.CLIENT)

    async def _ensure(self) -> trio.SocketStream:
        if self.stream is None or self.h11.our_state is not h11.IDLE:
            await self.close()
            self.stream = await trio.open_tcp_stream(HOST, self.port)
            self.h11 = h11.Connection(h11.CLIENT)
        return self.stream

    async def close(self) -> None:
        if self.stream is not None:
            stream, self.stream = self.stream, None
            with trio.CancelScope(shield=True):
                await stream.aclose()

    def _request_bytes(
        self, path: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes, method: bytes = b"POST"
    ) -> bytes:
        conn = self.h11
        head = h11.Request(
            method=method,
            target=path,
            headers=[
                (b"host", b"%s:%d" % (HOST.encode(), self.port)),
                (b"content-length", b"%d" % len(body)),
                *headers,
            ],
        )
        return (
            (conn.send(head) or b"")
            + (conn.send(h11.Data(data=body)) or b"")
            + (conn.send(h11.EndOfMessage()) or b"")
        )

    async def post(
        self, path: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes, method: bytes = b"POST"
    ) -> tuple[int, list[tuple[bytes, bytes]], float]:
        """Send one request and read the whole answer; returns (status, headers, seconds)."""
        status, response_headers, _, elapsed = await self.fetch(path, headers, body, method, keep_body=False)
        return status, response_headers, elapsed

    async def fetch(
        self,
        path: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        method: bytes = b"POST",
        *,
        keep_body: bool = True,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, float]:
        """Send one request; returns (status, headers, body (when kept), seconds)."""
        stream = await self._ensure()
        conn = self.h11
        started = time.perf_counter()
        await stream.send_all(self._request_bytes(path, headers, body, method))
        status = 0
        response_headers: list[tuple[bytes, bytes]] = []
        content: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(_RECEIVE)
                conn.receive_data(data)
                if not data and conn.their_state is not h11.DONE:
                    raise ConnectionError("server closed the connection")
            elif type(event) is h11.Response:
                status = event.status_code
                response_headers = list(event.headers)
            elif type(event) is h11.Data:
                if keep_body:
                    content.append(bytes(event.data))
            elif type(event) is h11.EndOfMessage:
                break
            elif type(event) is h11.ConnectionClosed:
                raise ConnectionError("server closed the connection")
        elapsed = time.perf_counter() - started
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            await self.close()
        return status, response_headers, b"".join(content), elapsed

    async def post_stream(
        self, path: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, list[float]]:
        """Send a streaming request; returns (status, arrival offsets of each JSON ``data:`` event)."""
        stream = await self._ensure()
        conn = self.h11
        started = time.perf_counter()
        await stream.send_all(self._request_bytes(path, headers, body))
        status = 0
        arrivals: list[float] = []
        pending = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(_RECEIVE)
                now = time.perf_counter() - started
                conn.receive_data(data)
                if not data and conn.their_state is not h11.DONE:
                    raise ConnectionError("server closed the connection")
                continue
            if type(event) is h11.Response:
                status = event.status_code
            elif type(event) is h11.Data:
                pending += event.data
                while True:
                    end = pending.find(b"\n\n")
                    if end < 0:
                        break
                    sse, pending = pending[:end], pending[end + 2 :]
                    if sse.startswith(b"data: {") or sse.startswith(b"data:{"):
                        arrivals.append(now)
            elif type(event) is h11.EndOfMessage:
                break
            elif type(event) is h11.ConnectionClosed:
                raise ConnectionError("server closed the connection")
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            await self.close()
        return status, arrivals


async def metrics(port: int, sample: re.Pattern[str]) -> dict[str, float]:
    """The samples of the gateway's /metrics whose whole line ``sample`` matches (group 1 the sample, group 2
    its value), keyed by the sample's text; empty when /metrics cannot be read."""
    conn = Connection(port)
    try:
        status, _, body, _ = await conn.fetch(b"/metrics", [], b"", b"GET")
    except (OSError, trio.BrokenResourceError, ConnectionError):
        return {}
    finally:
        await conn.close()
    if status != 200:
        return {}
    values: dict[str, float] = {}
    for line in body.decode(errors="replace").splitlines():
        match = sample.fullmatch(line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


async def run_load(
    port: int,
    path: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    body: bytes,
    *,
    connections: int,
    duration: float | None = None,
    requests: int | None = None,
    overhead_header: bool = False,
    check: Callable[[bytes], bool] | None = None,
) -> LoadResult:
    """Closed-loop load: ``connections`` tasks each send a request as soon as the previous one finished.

    Stops after ``duration`` seconds or after ``requests`` requests were started, whichever is given. With
    ``check``, each answer's body is kept and a 200 whose body ``check`` refuses counts as an error (a
    JSON-RPC answer carries its failure in a 200); the latency does not include the check.
    """
    result = LoadResult()
    remaining = [requests if requests is not None else math.inf]
    deadline = trio.current_time() + duration if duration is not None else math.inf

    async def worker() -> None:
        conn = Connection(port)
        try:
            while remaining[0] > 0 and trio.current_time() < deadline:
                remaining[0] -= 1
                try:
                    status, response_headers, answer, elapsed = await conn.fetch(
                        path, headers, body, keep_body=check is not None
                    )
                except (
                    OSError,
                    trio.BrokenResourceError,
                    trio.ClosedResourceError,
                    h11.ProtocolError,
                    ConnectionError,
                ):
                    result.errors += 1
                    await conn.close()
                    await trio.sleep(0.01)
                    continue
                if status != 200:
                    result.status_errors += 1
                    result.errors += 1
                    continue
                if check is not None and not check(answer):
                    result.answer_errors += 1
                    result.errors += 1
                    continue
                result.requests += 1
                result.latencies.append(elapsed)
                if overhead_header:
                    value = _header(response_headers, b"x-voidllm-overhead-ms")
                    if value is not None:
                        result.overheads_ms.append(float(value))
        finally:
            await conn.close()

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(worker)
    result.elapsed = time.perf_counter() - started
    return result


async def run_streams(
    port: int,
    path: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    body: bytes,
    *,
    streams: int,
    concurrency: int,
) -> StreamResult:
    """``streams`` streaming requests over ``concurrency`` keep-alive connections; per-event arrival times."""
    result = StreamResult()
    remaining = [streams]

    async def worker() -> None:
        conn = Connection(port)
        try:
            while remaining[0] > 0:
                remaining[0] -= 1
                try:
                    status, arrivals = await conn.post_stream(path, headers, body)
                except (
                    OSError,
                    trio.BrokenResourceError,
                    trio.ClosedResourceError,
                    h11.ProtocolError,
                    ConnectionError,
                ):
                    result.errors += 1
                    await conn.close()
                    continue
                if status != 200 or not arrivals:
                    result.errors += 1
                    continue
                result.streams += 1
                result.ttfts.append(arrivals[0])
                result.gaps.extend(b - a for a, b in itertools.pairwise(arrivals))
                result.chunks_per_stream.append(len(arrivals))
        finally:
            await conn.close()

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return result
