"""Writes to a client (voidllm.web.writes): cut by the caller's deadline, and never an error into the app."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypercorn.events import Closed, Event, RawData

from voidllm.web.writes import CancellableWritesServer, IdleTimer


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


async def test_the_idle_timer_starts_over_at_each_restart_and_a_stop_cancels_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fired: list[tuple[str, float]] = []

    def timer(name: str) -> Any:
        async def action() -> None:
            await trio.sleep(10)  # hypercorn's keep-alive timeout
            fired.append((name, trio.current_time()))

        return action

    idle = IdleTimer()
    async with trio.open_nursery() as nursery:
        group = FakeTaskGroup(nursery)
        await idle.restart(group, timer("first"))
        await trio.sleep(5)
        await idle.restart(group, timer("second"))  # an answer ended again: the timer starts over
        await trio.sleep(20)
        await idle.restart(group, timer("third"))
        await idle.stop()  # a request began before the new timer even ran
        await idle.stop()  # (twice is harmless)
    assert fired == [("second", 15.0)]


async def test_restart_and_stop_do_not_yield() -> None:
    idle = IdleTimer()
    async with trio.open_nursery() as nursery:
        group = FakeTaskGroup(nursery)
        with trio.CancelScope() as scope:  # a checkpoint inside would raise Cancelled here
            scope.cancel()
            await idle.restart(group, trio.sleep_forever)
            await idle.stop()
        assert not scope.cancelled_caught
