"""The change-notice poll (:func:`voidllm.bus.serve_store_notices`): at idle priority while it keeps up, at
normal priority after a poll that took longer than an interval (issue 23)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import attrs
import trio

from voidllm.bus import serve_store_notices

INTERVAL = 0.25


@attrs.define
class SlowOnceStore:
    """Answers the newest id, then polls; the second poll takes two intervals (a saturated core)."""

    behind: list[bool] = attrs.Factory(list)
    rows: list[list[dict[str, Any]]] = attrs.Factory(list)

    async def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return 0  # the newest id at start

    async def run_background(self, fn: Callable[..., Any], /, *args: Any, behind: bool) -> Any:
        self.behind.append(behind)
        if len(self.behind) == 2:
            await trio.sleep(2 * INTERVAL)
        n = len(self.behind)
        return [{"id": n, "topic": "keys", "message": f"k{n}", "sender": "other"}]


async def test_a_slow_poll_makes_the_next_one_run_at_normal_priority(autojump_clock: trio.abc.Clock) -> None:
    store = SlowOnceStore()
    seen: list[tuple[str, str]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(serve_store_notices, store=store, sender="me", notice=lambda t, m: seen.append((t, m)))  # type: ignore[arg-type]
        )
        await trio.sleep(8 * INTERVAL)
        nursery.cancel_scope.cancel()
    assert store.behind[:4] == [False, False, True, False]
    assert seen[:4] == [("keys", "k1"), ("keys", "k2"), ("keys", "k3"), ("keys", "k4")]
