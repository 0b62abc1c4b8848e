"""Error rates per upstream over the last 5, 60 and 1,440 minutes, counted by this process.

**Definition.** An upstream's error rate over a window is *failed attempts / attempts* of the attempts whose
outcome was decided in that window: an attempt that failed (a connection error, an attempt deadline, a 5xx,
a 429, a 401 or 403, an answer that broke: every attempt the incident log records as a ``failure``,
:mod:`voidllm.usage.incidents`) or one whose answer was relayed without fault. Attempts cancelled
undecided (a hedge that lost, a client that left) and candidates skipped by an open breaker are not
attempts. ``None`` when the window holds no attempt.

**How.** Each upstream has a ring of :data:`BUCKETS` per-minute buckets (attempts, failures, and the minute
the bucket holds), made on its first attempt; :meth:`ErrorRates.record` adds to the current minute's
bucket, resetting a bucket left from an older pass of the ring: two integer additions, no allocation, no
I/O. A read sums the buckets of the last 5, 60 and 1,440 minutes (the current minute included), 1,440
steps per upstream, on the admin path only. Minutes come from trio's clock (monotonic), so tests run the
windows on the autojump clock.

**Scope: this process.** The counters live in memory, per process: with ``server.workers`` > 1 or several
instances, the models API shows the rates of the process that answered, and a restart starts from zero.
The attempt outcomes are not stored anywhere shared (the incident log stores failures, not successes), so
an exact shared rate would need the buckets in Redis; left out for now. The incident log
(``GET /api/v1/incidents/summary``) is the cross-process view of failures.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import trio

__all__ = ["BUCKETS", "WINDOWS", "ErrorRates"]

BUCKETS = 1440
"""Minutes kept per upstream (one day)."""
WINDOWS = (5, 60, 1440)
"""The windows the models API shows, in minutes."""


@attrs.define(eq=False)
class _Ring:
    minutes: list[int] = attrs.Factory(lambda: [-1] * BUCKETS)
    attempts: list[int] = attrs.Factory(lambda: [0] * BUCKETS)
    failures: list[int] = attrs.Factory(lambda: [0] * BUCKETS)

    def add(self, minute: int, failed: bool) -> None:
        slot = minute % BUCKETS
        if self.minutes[slot] != minute:
            self.minutes[slot], self.attempts[slot], self.failures[slot] = minute, 0, 0
        self.attempts[slot] += 1
        if failed:
            self.failures[slot] += 1

    def sums(self, minute: int, windows: tuple[int, ...]) -> list[tuple[int, int]]:
        """(attempts, failures) of each window ending with ``minute`` (windows ascending)."""
        out: list[tuple[int, int]] = []
        attempts = failures = 0
        step = 0
        for window in windows:
            while step < min(window, BUCKETS):
                held = minute - step
                slot = held % BUCKETS
                if self.minutes[slot] == held:
                    attempts += self.attempts[slot]
                    failures += self.failures[slot]
                step += 1
            out.append((attempts, failures))
        return out


@attrs.define(eq=False)
class ErrorRates:
    """Per-minute attempt and failure counts by upstream key, in this process; see the module docstring."""

    clock: Callable[[], float] = trio.current_time
    _rings: dict[str, _Ring] = attrs.field(factory=dict, init=False)

    def record(self, upstream: str, *, failed: bool) -> None:
        """Count one decided attempt of ``upstream`` (``failed``: it counts as an error)."""
        ring = self._rings.get(upstream)
        if ring is None:
            ring = self._rings[upstream] = _Ring()
        ring.add(self._minute(), failed)

    def rates(self, *upstreams: str) -> dict[str, float | None]:
        """``{"5m": rate, "60m": rate, "1440m": rate}`` of the attempts of ``upstreams`` together: failed /
        attempts per window, ``None`` for a window without attempts."""
        minute = self._minute()
        totals = [(0, 0)] * len(WINDOWS)
        for upstream in upstreams:
            ring = self._rings.get(upstream)
            if ring is not None:
                sums = ring.sums(minute, WINDOWS)
                totals = [(a + b, f + g) for (a, f), (b, g) in zip(totals, sums, strict=True)]
        return {
            f"{window}m": (failures / attempts if attempts else None)
            for window, (attempts, failures) in zip(WINDOWS, totals, strict=True)
        }

    def _minute(self) -> int:
        return int(self.clock() // 60)
