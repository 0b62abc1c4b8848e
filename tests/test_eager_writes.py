"""Socket writes without a scheduler round (voidllm.transport.eager): at once when the kernel takes all the
bytes, waiting as trio does for the rest, with trio's errors and cancellation."""

from __future__ import annotations

import socket
from functools import partial
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from voidllm.transport.eager import send_eagerly

pytestmark = pytest.mark.trio


def stream_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return trio.SocketStream(a), trio.SocketStream(b)


@attrs.define(eq=False)
class Yields(trio.abc.Instrument):
    """Counts the scheduler's steps of one task: a task that yields is stepped again."""

    task: trio.lowlevel.Task
    steps: int = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1


async def yields_of(call: Any) -> int:
    counter = Yields(trio.lowlevel.current_task())
    trio.lowlevel.add_instrument(counter)
    try:
        await call()
    finally:
        trio.lowlevel.remove_instrument(counter)
    return counter.steps


async def read_exactly(stream: trio.SocketStream, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        data = await stream.receive_some()
        assert data, "closed early"
        got += data
    return bytes(got)


async def test_a_write_the_kernel_takes_whole_goes_out_without_a_yield() -> None:
    ours, theirs = stream_pair()
    assert await yields_of(partial(send_eagerly, ours, b"GET / HTTP/1.1\r\n\r\n")) == 0
    assert await yields_of(partial(send_eagerly, ours, memoryview(b"more"))) == 0
    assert await yields_of(partial(ours.send_all, b"!")) == 1  # trio's own: one round even so
    assert await read_exactly(theirs, 23) == b"GET / HTTP/1.1\r\n\r\nmore!"


async def test_it_yields_as_trio_does_when_another_task_is_ready_to_run() -> None:
    ours, theirs = stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.lowlevel.checkpoint)  # ready to run, waiting for its turn
        assert await yields_of(partial(send_eagerly, ours, b"fair")) == 1
    assert await read_exactly(theirs, 4) == b"fair"


async def test_what_the_kernel_does_not_take_is_sent_as_room_comes_in_order() -> None:
    ours, theirs = stream_pair()
    ours.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    data = bytes(range(256)) * 4096  # 1 MiB: far beyond the socket buffers
    got = b""

    async def reader() -> None:
        nonlocal got
        got = await read_exactly(theirs, len(data))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()  # the reader waits for bytes, no task is ready:
            await send_eagerly(ours, data)  # so the first part is written at once, the rest as room comes
    assert got == data


async def test_a_cancelled_caller_writes_nothing() -> None:
    ours, theirs = stream_pair()
    with trio.CancelScope() as scope:
        scope.cancel()
        await send_eagerly(ours, b"never")
    assert scope.cancelled_caught
    await send_eagerly(ours, b"first")
    assert await read_exactly(theirs, 5) == b"first"


async def test_a_closed_stream_and_a_broken_connection_raise_trios_errors() -> None:
    ours, theirs = stream_pair()
    await ours.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await send_eagerly(ours, b"x")

    ours, theirs = stream_pair()
    await theirs.aclose()
    with pytest.raises(trio.BrokenResourceError):
        await send_eagerly(ours, b"x")


async def test_other_streams_are_written_with_send_all() -> None:
    ours, theirs = trio.testing.memory_stream_pair()
    await send_eagerly(ours, b"over memory")
    assert await theirs.receive_some() == b"over memory"
    await send_eagerly(ours, b"")  # nothing to send: still fine
