"""Error rates per upstream over the last 5, 60 and 1,440 minutes: per process, or shared through Redis.

**Definition.** An upstream's error rate over a window is *failed attempts / attempts* of the attempts whose
outcome was decided in that window: an attempt that failed (a connection error, an attempt deadline, a 5xx,
a 429, a 401 or 403, an answer that broke: every attempt the incident log records as a ``failure``,
:mod:`voidllm.usage.incidents`) or one whose answer was relayed without fault. Attempts cancelled
undecided (a hedge that lost, a client that left) and candidates skipped by an open breaker are not
attempts. ``None`` when the window holds no attempt.

**In the process.** Each upstream has a ring of :data:`BUCKETS` per-minute buckets (attempts, failures, and
the minute the bucket holds), made on its first attempt; :meth:`ErrorRates.record` adds to the current
minute's bucket, resetting a bucket left from an older pass of the ring: two integer additions, no I/O. A
read sums the buckets of the last 5, 60 and 1,440 minutes (the current minute included), 1,440 steps per
upstream, on the admin path only. Minutes come from trio's clock (monotonic), so tests run the windows on the
autojump clock. Without Redis the rates are **this process's**: with ``server.workers`` > 1 or several
instances each process shows its own traffic, and a restart starts from zero.

**Shared (``redis.enabled``).** :meth:`ErrorRates.share` switches the minutes to wall-clock minutes (the same
in every process) and makes :meth:`~ErrorRates.record` also count into a small table of counts not yet sent
(minute, upstream). :func:`serve_error_rate_share` sends them every :data:`SHARE_EVERY` seconds in one
pipeline: ``HINCRBY <prefix>errors:<minute> a:<upstream> n`` (and ``f:`` for failures), each minute's key
expiring after :data:`KEEP_S` (a day and an hour), and once more, shielded and bounded, when it stops. A
read (:meth:`ErrorRates.read`) pipelines one ``HMGET`` per minute of the last 1,440 and adds what this process
has not sent yet, so every process answers with every process's attempts, up to the last
:data:`SHARE_EVERY` seconds of the others'. While Redis fails, counts stay pending (kept, resent later) and
reads fall back to this process's rings (logged by class).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import attrs
import trio

from voidllm.redis.client import RedisError

if TYPE_CHECKING:
    from voidllm.redis.client import RedisClient

__all__ = ["BUCKETS", "KEEP_S", "SHARE_EVERY", "WINDOWS", "ErrorRates", "combine", "serve_error_rate_share"]

log = logging.getLogger(__name__)

BUCKETS = 1440
"""Minutes kept per upstream (one day)."""
WINDOWS = (5, 60, 1440)
"""The windows the models API shows, in minutes."""
SHARE_EVERY = 5.0
"""Seconds between two sends of this process's counts to Redis."""
KEEP_S = 25 * 3600
"""Expiry of a minute's key in Redis: a day of windows and an hour's margin."""
FLUSH_TIMEOUT_S = 2.0
"""Bound of the last, shielded send when the share service stops."""

Sums = list[tuple[int, int]]
"""(attempts, failures) per window of :data:`WINDOWS`."""


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
    """Per-minute attempt and failure counts by upstream key; see the module docstring."""

    clock: Callable[[], float] = trio.current_time
    _rings: dict[str, _Ring] = attrs.field(factory=dict, init=False)
    _redis: RedisClient | None = attrs.field(default=None, init=False)
    _prefix: str = attrs.field(default="", init=False)
    _unsent: dict[int, dict[str, list[int]]] = attrs.field(factory=dict, init=False)

    def share(self, client: RedisClient, prefix: str) -> None:
        """Share the counts through Redis from now on (call before the first attempt): wall-clock minutes,
        counts queued for :func:`serve_error_rate_share`, reads from Redis."""
        self._redis, self._prefix, self.clock = client, prefix, time.time

    def record(self, upstream: str, *, failed: bool) -> None:
        """Count one decided attempt of ``upstream`` (``failed``: it counts as an error)."""
        minute = self._minute()
        ring = self._rings.get(upstream)
        if ring is None:
            ring = self._rings[upstream] = _Ring()
        ring.add(minute, failed)
        if self._redis is not None:
            by_upstream = self._unsent.get(minute)
            if by_upstream is None:
                by_upstream = self._unsent[minute] = {}
            counts = by_upstream.get(upstream)
            if counts is None:
                counts = by_upstream[upstream] = [0, 0]
            counts[0] += 1
            if failed:
                counts[1] += 1

    def rates(self, *upstreams: str) -> dict[str, float | None]:
        """This process's ``{"5m": rate, "60m": rate, "1440m": rate}`` of ``upstreams`` together."""
        return combine(self.local_sums(upstreams), *upstreams)

    def local_sums(self, upstreams: Iterable[str]) -> dict[str, Sums]:
        """This process's (attempts, failures) per window of each upstream (none: zeros)."""
        minute = self._minute()
        zeros = [(0, 0)] * len(WINDOWS)
        return {
            name: ring.sums(minute, WINDOWS) if (ring := self._rings.get(name)) is not None else zeros
            for name in upstreams
        }

    async def read(self, upstreams: Iterable[str]) -> dict[str, Sums]:
        """(attempts, failures) per window of each upstream: every process's when shared through Redis (this
        process's alone while Redis fails), else this process's."""
        names = sorted(set(upstreams))
        if self._redis is None or not names:
            return self.local_sums(names)
        minute = self._minute()
        minutes = [minute - step for step in range(WINDOWS[-1])]
        fields = [f"{kind}:{name}" for name in names for kind in ("a", "f")]
        commands = [("HMGET", f"{self._prefix}errors:{m}", *fields) for m in minutes]
        try:
            replies = await self._redis.pipeline(commands)
        except RedisError as exc:
            log.warning("error rates read from this process only", extra={"error_type": type(exc).__name__})
            return self.local_sums(names)
        out: dict[str, Sums] = {}
        for index, name in enumerate(names):
            per_minute = [(_int(reply[2 * index]), _int(reply[2 * index + 1])) for reply in replies]
            for m, counts in self._unsent.items():
                if 0 <= minute - m < WINDOWS[-1] and name in counts:
                    attempts, failures = counts[name]
                    step = minute - m
                    a, f = per_minute[step]
                    per_minute[step] = (a + attempts, f + failures)
            out[name] = _window_sums(per_minute)
        return out

    async def flush(self) -> None:
        """Send the counts not sent yet to Redis in one pipeline; on a Redis error keep them for next time.

        Raises nothing from Redis (logged by class)."""
        if self._redis is None or not self._unsent:
            return
        unsent, self._unsent = self._unsent, {}
        commands: list[tuple[str | int, ...]] = []
        for minute, by_upstream in unsent.items():
            key = f"{self._prefix}errors:{minute}"
            for name, (attempts, failures) in by_upstream.items():
                commands.append(("HINCRBY", key, f"a:{name}", attempts))
                if failures:
                    commands.append(("HINCRBY", key, f"f:{name}", failures))
            commands.append(("EXPIRE", key, KEEP_S))
        try:
            await self._redis.pipeline(commands)
        except RedisError as exc:
            self._restore(unsent)
            log.warning(
                "error rates not shared; kept for the next send", extra={"error_type": type(exc).__name__}
            )
        except BaseException:  # cancelled mid-send: keep them for the final, shielded send
            self._restore(unsent)
            raise

    def _restore(self, unsent: Mapping[int, Mapping[str, list[int]]]) -> None:
        horizon = self._minute() - WINDOWS[-1]
        for minute, by_upstream in unsent.items():
            if minute <= horizon:
                continue  # out of every window by now
            for name, (attempts, failures) in by_upstream.items():
                counts = self._unsent.setdefault(minute, {}).setdefault(name, [0, 0])
                counts[0] += attempts
                counts[1] += failures

    def _minute(self) -> int:
        return int(self.clock() // 60)


def combine(sums: Mapping[str, Sums], *upstreams: str) -> dict[str, float | None]:
    """``{"5m": rate, "60m": rate, "1440m": rate}`` of ``upstreams`` together (from :meth:`ErrorRates.read`):
    failed / attempts per window, ``None`` for a window without attempts."""
    totals = [(0, 0)] * len(WINDOWS)
    for name in upstreams:
        if name in sums:
            totals = [(a + b, f + g) for (a, f), (b, g) in zip(totals, sums[name], strict=True)]
    return {
        f"{window}m": (failures / attempts if attempts else None)
        for window, (attempts, failures) in zip(WINDOWS, totals, strict=True)
    }


def _int(value: object) -> int:
    return int(value) if isinstance(value, bytes | str | int) else 0


def _window_sums(per_minute: list[tuple[int, int]]) -> Sums:
    """Window sums from counts per minute, newest first."""
    out: Sums = []
    attempts = failures = step = 0
    for window in WINDOWS:
        while step < window:
            a, f = per_minute[step]
            attempts, failures, step = attempts + a, failures + f, step + 1
        out.append((attempts, failures))
    return out


async def serve_error_rate_share(
    *,
    rates: ErrorRates,
    every: float = SHARE_EVERY,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Send ``rates``' counts to Redis every ``every`` seconds until cancelled, then once more (shielded, at
    most :data:`FLUSH_TIMEOUT_S`)."""
    task_status.started()
    try:
        while True:
            await trio.sleep(every)
            await rates.flush()
    finally:
        with trio.move_on_after(FLUSH_TIMEOUT_S, shield=True):
            await rates.flush()
