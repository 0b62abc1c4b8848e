"""Writes to a client (voidllm.web.writes): cut by the caller's deadline, and never an error into the app."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import Any

import attrs
import hypercorn.config
import hypercorn.trio
import hypercorn.trio.run
import pytest
import trio
import trio.testing
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio.worker_context import WorkerContext

from voidllm.web import writes
from voidllm.web.writes import CancellableWritesServer, KeepAliveTimer


@attrs.define
class FakeStream:
    fails_with: type[BaseException] | None = None
    closed: bool = False

    async def send_all(self, data: bytes) -> None:
        if self.fails_with is not None:
            raise self.fails_with("conflict" if self.fails_with is trio.BusyResourceError else "")
        await trio.sleep_forever()  # a client that reads nothing

    async def aclose(self) -> None:
        self.closed = True


@attrs.define
class FakeProtocol:
    events: list[Event] = attrs.Factory(list)

    async def handle(self, event: Event) -> None:
        self.events.append(event)


def server(stream: FakeStream) -> tuple[CancellableWritesServer, FakeProtocol]:
    made = CancellableWritesServer.__new__(CancellableWritesServer)
    protocol = FakeProtocol()
    made.send_lock, made.stream, made.protocol = trio.Lock(), stream, protocol
    return made, protocol


async def test_a_write_to_a_client_that_reads_nothing_is_cut_and_closes_the_connection() -> None:
    stream = FakeStream()
    made, _ = server(stream)
    with trio.move_on_after(0.05) as timer:
        await made.protocol_send(RawData(data=b"x"))
    assert timer.cancelled_caught
    assert stream.closed


CLOSING = [trio.BusyResourceError, trio.BrokenResourceError, trio.ClosedResourceError]


@pytest.mark.parametrize("error", CLOSING)
async def test_a_write_that_meets_a_closing_connection_ends_it_quietly(error: type[Exception]) -> None:
    made, protocol = server(FakeStream(fails_with=error))
    await made.protocol_send(RawData(data=b"x"))
    assert protocol.events == [Closed()]


@attrs.define
class RecordingStream:
    """A stream whose writes are recorded; each waits for ``gate`` when one is set."""

    writes: list[bytes] = attrs.Factory(list)
    gate: trio.Event | None = None
    closed: bool = False

    async def send_all(self, data: bytes) -> None:
        self.writes.append(data)
        if self.gate is not None:
            await self.gate.wait()
        else:
            await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        self.closed = True


async def test_a_cancelled_caller_is_refused_before_its_write() -> None:
    stream = RecordingStream()
    made, _ = server(stream)  # type: ignore[arg-type]
    with trio.CancelScope() as scope:
        scope.cancel()
        await made.protocol_send(RawData(data=b"x"))
    assert scope.cancelled_caught
    assert stream.writes == []
    assert not stream.closed  # nothing went out: the connection is still whole
    assert not made.send_lock.locked()


async def test_writes_still_take_turns() -> None:
    """The lock is taken without a yield when free, and still excludes: a second write waits for the first."""
    stream = RecordingStream(gate=trio.Event())
    made, _ = server(stream)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(made.protocol_send, RawData(data=b"first"))
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(made.protocol_send, RawData(data=b"second"))
        await trio.testing.wait_all_tasks_blocked()
        assert stream.writes == [b"first"]
        assert made.send_lock.statistics().tasks_waiting == 1
        stream.gate.set()
    assert stream.writes == [b"first", b"second"]
    assert not made.send_lock.locked()


@attrs.define
class FakeTaskGroup:
    _nursery: trio.Nursery


async def test_restart_and_stop_do_not_yield() -> None:
    fake = SimpleNamespace(config=hypercorn.config.Config(), context=WorkerContext(None))
    idle = KeepAliveTimer(fake)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        group = FakeTaskGroup(nursery)
        with trio.CancelScope() as scope:  # a checkpoint inside would raise Cancelled here
            scope.cancel()
            await idle.restart(group, trio.sleep_forever)
            await idle.stop()
            await idle.restart(group, trio.sleep_forever)
        assert not scope.cancelled_caught
        idle.end()


# The timer as hypercorn runs it: a real server on a loopback port (hypercorn's serve, with the gateway's
# connection class installed) and a tiny app whose answers take as long as the request's path says.

KEEP_ALIVE = 5.0


async def slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].split(".")[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    await receive()
    await trio.sleep(float(scope["path"].strip("/") or 0))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@attrs.define
class Served:
    port: int
    stop: trio.Event
    ended: list[float]  # when each connection's server task returned
    one_ended: trio.Event


@pytest.fixture
async def served(nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch) -> Served:
    writes.install()
    ended: list[float] = []
    one_ended = trio.Event()

    class Recorded(CancellableWritesServer):
        async def run(self) -> None:
            try:
                await super().run()
            finally:
                ended.append(trio.current_time())
                one_ended.set()

    monkeypatch.setattr(hypercorn.trio.run, "TCPServer", Recorded)
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.keep_alive_timeout = KEEP_ALIVE
    config.accesslog = config.errorlog = None
    stop = trio.Event()
    binds = await nursery.start(partial(hypercorn.trio.serve, slow_app, config, shutdown_trigger=stop.wait))
    return Served(int(binds[0].rsplit(":", 1)[1]), stop, ended, one_ended)


async def ask(stream: trio.SocketStream, seconds: float = 0) -> None:
    await stream.send_all(f"GET /{seconds:g} HTTP/1.1\r\nhost: t\r\n\r\n".encode())
    got = b""
    while not got.endswith(b"\r\n\r\nok"):
        data = await stream.receive_some()
        assert data, f"closed before the answer ended: {got!r}"
        got += data
    assert got.startswith(b"HTTP/1.1 200")


async def answered_once(served: Served) -> trio.SocketStream:
    """A connection to the server that has had one request answered (it is idle now)."""
    stream = await trio.open_tcp_stream("127.0.0.1", served.port)
    await ask(stream)
    return stream


async def closed_at(stream: trio.SocketStream) -> float:
    assert await stream.receive_some() == b""
    return trio.current_time()


async def test_an_idle_connection_is_closed_when_the_keep_alive_timeout_has_passed_since_its_last_answer(
    served: Served, autojump_clock: trio.testing.MockClock
) -> None:
    stream = await answered_once(served)
    await trio.sleep(3)
    await ask(stream)  # the timer starts over
    answered = trio.current_time()
    assert await closed_at(stream) == pytest.approx(answered + KEEP_ALIVE, abs=0.01)


async def test_a_request_answered_for_longer_than_the_timeout_is_not_cut(
    served: Served, autojump_clock: trio.testing.MockClock
) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", served.port)
    await ask(stream, seconds=3 * KEEP_ALIVE)
    answered = trio.current_time()
    await ask(stream, seconds=2 * KEEP_ALIVE)  # twice on the same connection
    answered_again = trio.current_time()
    assert answered_again == pytest.approx(answered + 2 * KEEP_ALIVE, abs=0.01)
    assert await closed_at(stream) == pytest.approx(answered_again + KEEP_ALIVE, abs=0.01)


async def test_a_stopping_server_closes_idle_connections_at_once_and_busy_ones_after_their_answer(
    served: Served, autojump_clock: trio.testing.MockClock
) -> None:
    idle = await answered_once(served)
    busy = await trio.open_tcp_stream("127.0.0.1", served.port)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, busy, 2.0)
        await trio.sleep(1)
        served.stop.set()
        stopped = trio.current_time()
        assert await closed_at(idle) == pytest.approx(stopped, abs=0.01)
    assert trio.current_time() == pytest.approx(stopped + 1, abs=0.01)  # the busy one's answer came whole
    assert await closed_at(busy) == pytest.approx(stopped + 1, abs=0.01)


async def test_a_client_that_closes_an_idle_connection_leaves_no_task_behind(
    served: Served, autojump_clock: trio.testing.MockClock
) -> None:
    stream = await answered_once(served)
    await trio.sleep(1)
    await stream.aclose()
    left = trio.current_time()
    await served.one_ended.wait()
    assert served.ended == [pytest.approx(left, abs=0.01)]  # not at the keep-alive timeout
