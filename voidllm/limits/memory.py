"""The in-process limiter: counters in dicts, exact within one process (``redis.enabled: false``).

Atomicity comes from trio itself: :meth:`MemoryLimiter.admit` checks every counter and then updates them
without an ``await`` in between, so no other task can run in the middle. Counters live under their slot
(kind, level, id, window, window start); windows that have ended are dropped by :meth:`sweep`, which
:func:`serve_memory_limiter` runs every minute. Token counters start from ``usage_events`` (see
:mod:`voidllm.limits.seed`). With several processes each counts alone: use Redis for exact shared limits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING

import attrs
import trio

from voidllm.identity import KeyIdentity
from voidllm.limits.base import Admission, Hold, limited, plan, rejection, window_bounds
from voidllm.limits.seed import Slot, load_token_usage

if TYPE_CHECKING:
    from voidllm.store.store import Store

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 60.0


@attrs.define(eq=False)
class MemoryLimiter:
    """Request counters and token budgets of this process; ``clock`` gives Unix seconds (tests move it)."""

    clock: Callable[[], float] = time.time
    _counts: dict[Slot, int] = attrs.field(factory=dict, init=False)
    _reserved: dict[Slot, int] = attrs.field(factory=dict, init=False)

    async def admit(self, identity: KeyIdentity, *, reserve_tokens: int) -> Admission | None:
        return self.admit_nowait(identity, reserve_tokens=reserve_tokens)

    def admit_nowait(self, identity: KeyIdentity, *, reserve_tokens: int) -> Admission | None:
        """:meth:`admit` without a checkpoint (it never needs to wait)."""
        if not limited(identity):
            return None
        now = self.clock()
        requests, tokens = plan(identity, now)
        counts, reserved = self._counts, self._reserved
        for check in requests:
            if counts.get(check.slot, 0) >= check.limit:
                raise rejection(check, now)
        holds = []
        for check in tokens:
            remaining = check.limit - counts.get(check.slot, 0) - reserved.get(check.slot, 0)
            if remaining <= 0:
                raise rejection(check, now)
            holds.append(Hold(check, min(max(reserve_tokens, 0), remaining)))
        for check in requests:
            counts[check.slot] = counts.get(check.slot, 0) + 1
        for hold in holds:
            reserved[hold.check.slot] = reserved.get(hold.check.slot, 0) + hold.reserved
        return Admission(tuple(holds))

    async def settle(self, admission: Admission, *, used_tokens: int) -> None:
        for hold in admission.holds:
            slot = hold.check.slot
            left = self._reserved.get(slot, 0) - hold.reserved
            if left > 0:
                self._reserved[slot] = left
            else:
                self._reserved.pop(slot, None)
            if used_tokens > 0:
                self._counts[slot] = self._counts.get(slot, 0) + used_tokens

    def seed(self, used: Mapping[Slot, int]) -> None:
        """Start token counters from usage already recorded (added to what is counted)."""
        for slot, tokens in used.items():
            self._counts[slot] = self._counts.get(slot, 0) + tokens

    def sweep(self) -> int:
        """Drop the counters of windows that have ended; returns how many."""
        now = self.clock()
        current = {window: window_bounds(window, now)[0] for window in ("minute", "day", "month")}
        stale = [slot for slot in self._counts if slot[4] < current[slot[3]]]
        for slot in stale:
            del self._counts[slot]
        return len(stale)

    def used(self, slot: Slot) -> int:
        """The count of one slot (requests, or tokens used); for tests and diagnostics."""
        return self._counts.get(slot, 0)


async def serve_memory_limiter(
    *,
    limiter: MemoryLimiter,
    store: Store,
    task_status: trio.TaskStatus[MemoryLimiter] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Seed the token counters from the store, report ready, then sweep ended windows every minute."""
    limiter.seed(await store.run(partial(load_token_usage, now=limiter.clock())))
    task_status.started(limiter)
    while True:
        await trio.sleep(SWEEP_INTERVAL)
        dropped = limiter.sweep()
        if dropped:
            log.debug("rate-limit windows swept", extra={"dropped": dropped})
