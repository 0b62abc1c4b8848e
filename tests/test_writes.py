"""Writes to a client (voidllm.web.writes): cut by the caller's deadline, and never an error into the app."""

from __future__ import annotations

import attrs
import pytest
import trio
from hypercorn.events import Closed, Event, RawData

from voidllm.web.writes import CancellableWritesServer


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
