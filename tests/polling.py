"""Waiting in tests for state that nothing announces.

Prefer an event: a ``trio.Event``, a channel, or a method that waits on one (``MockUpstream.wait_requests``,
``GatewayProcess.wait_for_line``); it wakes the test at once. Some state lives where no event reaches the
test: another process (a spawned gateway, the database, Redis), an HTTP endpoint, a worker thread, a service
that reports only through metrics. :func:`poll_until` checks such state every ``interval`` seconds. It takes
no time limit: the caller bounds the wait with ``trio.fail_after`` (or ``move_on_after``), as everywhere.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import trio


async def poll_until(check: Callable[[], bool | Awaitable[bool]], *, interval: float = 0.02) -> None:
    """Return once ``check()`` (a plain or an async function) is true; check it every ``interval`` seconds."""
    while True:
        result = check()
        if await result if inspect.isawaitable(result) else result:
            return
        await trio.sleep(interval)
