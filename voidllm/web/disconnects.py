"""A request's disconnect notice (:class:`voidllm.asgi.DisconnectNotice`), given by hypercorn's trio server.

Hypercorn tells an app that its client went away by queueing ``http.disconnect`` for ``receive()``, so an app
that must stop work when that happens (the proxy: an upstream exchange, a token reservation) needs a task that
waits on ``receive()`` beside its work: one task per request, three scheduler steps and one more run-loop pass
before the request ends (docs/performance.md, "Scheduler rounds per request"). :func:`install` makes the
server's task group put a notice in every request's scope and fire it as it queues the message, so the app
can register a callback instead. The message is still queued: an app that reads ``receive()`` sees it as
before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import hypercorn.trio.tcp_server
from hypercorn.trio.task_group import TaskGroup

from voidllm.asgi import DISCONNECT_NOTICE, DisconnectNotice

__all__ = ["NoticeTaskGroup", "install"]


class NoticeTaskGroup(TaskGroup):
    """Hypercorn's per-connection task group whose apps get a :class:`DisconnectNotice` in their scope."""

    async def spawn_app(
        self, app: Any, config: Any, scope: Any, send: Callable[[Any], Awaitable[None]]
    ) -> Callable[[Any], Awaitable[None]]:
        notice = DisconnectNotice()
        scope[DISCONNECT_NOTICE] = notice
        put = await super().spawn_app(app, config, scope, send)

        async def put_and_notify(message: Any) -> None:
            if message["type"] == "http.disconnect":
                notice.fire()
            await put(message)

        return put_and_notify


def install() -> None:
    """Make hypercorn's trio connections use :class:`NoticeTaskGroup` (idempotent)."""
    # TCPServer.run looks the class up in its own module, which imports it from hypercorn.trio.task_group.
    hypercorn.trio.tcp_server.TaskGroup = NoticeTaskGroup  # type: ignore[attr-defined]
