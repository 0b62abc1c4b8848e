"""A request's disconnect notice (:class:`voidllm.asgi.DisconnectNotice`), given by hypercorn's trio server.

Hypercorn tells an app that its client went away by queueing ``http.disconnect`` for ``receive()``, so an app
that must stop work when that happens (the proxy: an upstream exchange, a token reservation) needs a task that
waits on ``receive()`` beside its work: one task per request, three scheduler steps and one more run-loop pass
before the request ends (docs/performance.md, "Scheduler rounds per request"). :func:`install` makes the
server's task group put a notice in every request's scope and fire it as it queues the message, so the app
can register a callback instead. The message is still queued: an app that reads ``receive()`` sees it as
before.

The same task group hands messages between the connection and the app without a scheduler round when they
need none: ``receive()`` returns a message already queued at once, and the server queues one into a channel
with room at once (hypercorn's memory channel yields on both, even then). A request whose body came with its
head thus reaches its end without three yields: its body read, the read of the empty last message before the
answer's end, and the queueing of ``http.disconnect`` after it. Both still raise ``trio.Cancelled`` in a
cancelled caller, as a checkpoint would, and wait as before when the channel is empty or full.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import hypercorn.trio.tcp_server
import trio
from hypercorn.trio.task_group import TaskGroup, _handle

from voidllm.asgi import DISCONNECT_NOTICE, DisconnectNotice

__all__ = ["NoticeTaskGroup", "install"]


class NoticeTaskGroup(TaskGroup):
    """Hypercorn's per-connection task group whose apps get a :class:`DisconnectNotice` in their scope."""

    async def spawn_app(
        self, app: Any, config: Any, scope: Any, send: Callable[[Any], Awaitable[None]]
    ) -> Callable[[Any], Awaitable[None]]:
        notice = DisconnectNotice()
        scope[DISCONNECT_NOTICE] = notice
        to_app, from_server = trio.open_memory_channel[Any](config.max_app_queue_size)

        async def receive() -> Any:
            await trio.lowlevel.checkpoint_if_cancelled()  # raises in a cancelled caller, never yields else
            try:
                return from_server.receive_nowait()
            except trio.WouldBlock:
                return await from_server.receive()

        async def put(message: Any) -> None:
            if message["type"] == "http.disconnect":
                notice.fire()
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                to_app.send_nowait(message)
            except trio.WouldBlock:
                await to_app.send(message)

        # as hypercorn's own spawn_app, but with the receive above
        assert self._nursery is not None, "spawn_app is called inside the task group"
        self._nursery.start_soon(
            _handle, app, config, scope, receive, send, trio.to_thread.run_sync, trio.from_thread.run
        )
        return put


def install() -> None:
    """Make hypercorn's trio connections use :class:`NoticeTaskGroup` (idempotent)."""
    # TCPServer.run looks the class up in its own module, which imports it from hypercorn.trio.task_group.
    hypercorn.trio.tcp_server.TaskGroup = NoticeTaskGroup  # type: ignore[attr-defined]
