"""A request's disconnect notice (voidllm.asgi.DisconnectNotice) and the hypercorn task group that gives it
(voidllm.web.disconnects): fired as the server queues ``http.disconnect``, which the app still receives."""

from __future__ import annotations

from typing import Any

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
