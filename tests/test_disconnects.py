"""A request's disconnect notice (voidllm.asgi.DisconnectNotice) and the hypercorn task group that gives it
(voidllm.web.disconnects): fired as the server queues ``http.disconnect``, which the app still receives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import hypercorn.config
import pytest
import trio
import trio.testing

from voidllm.asgi import DISCONNECT_NOTICE, DisconnectNotice
from voidllm.web.disconnects import NoticeTaskGroup


def test_a_callback_runs_when_the_notice_fires_or_at_once_if_it_has() -> None:
    notice = DisconnectNotice()
    calls: list[str] = []
    notice.watch(lambda: calls.append("first"))
    assert calls == []
    notice.fire()
    assert calls == ["first"]

    notice.watch(lambda: calls.append("late"))  # the client had already left
    assert calls == ["first", "late"]

    notice.watch(None)
    notice.fire()
    assert calls == ["first", "late"]


@pytest.mark.trio
async def test_the_task_group_gives_each_app_a_notice_and_still_queues_the_message() -> None:
    received: list[dict[str, Any]] = []
    notices: list[DisconnectNotice] = []
    done = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any, *_: Any) -> None:
        notice = scope[DISCONNECT_NOTICE]
        notices.append(notice)
        while True:
            message = await receive()
            received.append({**message, "fired": notice.fired})
            if message["type"] == "http.disconnect":
                done.set()
                return

    async def send(message: Any) -> None:
        pass

    with trio.fail_after(5):
        async with NoticeTaskGroup() as group:
            put = await group.spawn_app(app, hypercorn.config.Config(), {"type": "http"}, send)
            await put({"type": "http.request", "body": b"", "more_body": False})
            await trio.testing.wait_all_tasks_blocked()
            assert not notices[0].fired
            await put({"type": "http.disconnect"})
            assert notices[0].fired  # at once, before the app has read the message
            await done.wait()

    assert received == [
        {"type": "http.request", "body": b"", "more_body": False, "fired": False},
        {"type": "http.disconnect", "fired": True},
    ]


# Hand-overs between the server and the app: no scheduler round for a message already queued or a channel with
# room; a cancelled caller still gets trio.Cancelled; an empty or full channel still waits.


async def _spawn(
    group: NoticeTaskGroup, app: Any, queue_size: int = 10
) -> Callable[[dict[str, Any]], Awaitable[None]]:
    config = hypercorn.config.Config()
    config.max_app_queue_size = queue_size

    async def send(message: Any) -> None:
        pass

    return await group.spawn_app(app, config, {"type": "http"}, send)


@attrs.define
class Ticker:
    """A task that is always ready to run: any yield of another task lets it tick at least once."""

    ticks: int = 0

    async def run(self) -> None:
        while True:
            await trio.lowlevel.checkpoint()
            self.ticks += 1


@pytest.mark.trio
async def test_queued_messages_and_a_channel_with_room_cost_no_scheduler_round() -> None:
    got: list[dict[str, Any]] = []
    ticker = Ticker()
    may_read = trio.Event()
    ticks_while_reading: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any, *_: Any) -> None:
        await may_read.wait()
        before = ticker.ticks
        got.append(await receive())
        got.append(await receive())
        ticks_while_reading.append(ticker.ticks - before)

    with trio.fail_after(5):
        async with NoticeTaskGroup() as group:
            group._nursery.start_soon(ticker.run)  # type: ignore[union-attr]
            put = await _spawn(group, app)
            for _ in range(3):  # the app starts and waits for may_read
                await trio.lowlevel.checkpoint()
            before = ticker.ticks
            await put({"type": "http.request", "body": b"ab", "more_body": True})
            await put({"type": "http.request", "body": b"", "more_body": False})
            assert ticker.ticks == before  # the server's two puts did not yield
            may_read.set()
            while not ticks_while_reading:
                await trio.lowlevel.checkpoint()
            group._nursery.cancel_scope.cancel()  # type: ignore[union-attr]
    assert ticks_while_reading == [0]
    assert [m["body"] for m in got] == [b"ab", b""]


@pytest.mark.trio
async def test_a_cancelled_reader_or_putter_is_refused_even_with_a_message_queued() -> None:
    outcomes: list[str] = []
    queued = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any, *_: Any) -> None:
        await queued.wait()
        with trio.CancelScope() as cancelled:
            cancelled.cancel()
            await receive()
        outcomes.append("reader cancelled" if cancelled.cancelled_caught else "read")
        outcomes.append((await receive())["type"])  # the message is still there for the next read

    with trio.fail_after(5):
        async with NoticeTaskGroup() as group:
            put = await _spawn(group, app)
            await put({"type": "http.request", "body": b"", "more_body": False})
            with trio.CancelScope() as cancelled:
                cancelled.cancel()
                await put({"type": "http.request", "body": b"late", "more_body": False})
            outcomes.append("putter cancelled" if cancelled.cancelled_caught else "put")
            queued.set()
    assert outcomes == ["putter cancelled", "reader cancelled", "http.request"]


@pytest.mark.trio
async def test_an_empty_channel_makes_the_reader_wait_and_a_full_one_the_server() -> None:
    got: list[bytes] = []
    may_read = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any, *_: Any) -> None:
        got.append((await receive())["body"])  # waits: nothing is queued yet
        await may_read.wait()
        while len(got) < 4:
            got.append((await receive())["body"])

    with trio.fail_after(5):
        async with NoticeTaskGroup() as group:
            put = await _spawn(group, app, queue_size=1)
            await trio.testing.wait_all_tasks_blocked()
            await put({"type": "http.request", "body": b"1", "more_body": True})
            await trio.testing.wait_all_tasks_blocked()
            assert got == [b"1"]
            await put({"type": "http.request", "body": b"2", "more_body": True})  # room for one
            putting = trio.Event()

            async def third() -> None:
                await put({"type": "http.request", "body": b"3", "more_body": True})
                putting.set()

            group._nursery.start_soon(third)  # type: ignore[union-attr]
            await trio.testing.wait_all_tasks_blocked()
            assert not putting.is_set()  # the channel is full: the server waits
            may_read.set()
            await putting.wait()
            await put({"type": "http.request", "body": b"4", "more_body": False})
    assert got == [b"1", b"2", b"3", b"4"]
