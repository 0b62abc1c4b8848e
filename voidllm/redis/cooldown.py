"""Cooldowns: "at most once per period" for an action named by a key (the MCP tool refresh of one server), in
this process's memory or, with ``redis.enabled``, in Redis so every worker process and instance shares them.

:meth:`Cooldowns.claim` either starts the key's period (the action may run now) or returns the seconds left
of the running one (the caller refuses the action with 429 and ``Retry-After``).

- :class:`MemoryCooldowns`: a dict of period ends on trio's clock; exact for one process, per process with
  several workers and no Redis.
- :class:`RedisCooldowns`: ``SET <prefix>cooldown:<key> 1 NX PX <period>`` claims (Redis runs it atomically,
  so of any number of processes asking at once exactly one gets the period); when the key exists, its
  ``PTTL`` is the time left. The key's expiry ends the period, so nothing needs cleaning up. When Redis cannot
  be reached the claim is made in this process's :class:`MemoryCooldowns` instead (logged), so the action
  stays limited, per process, until Redis answers again.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

import attrs
import trio

from voidllm.redis.client import RedisClient, RedisError

__all__ = ["Cooldowns", "MemoryCooldowns", "RedisCooldowns"]

log = logging.getLogger(__name__)


class Cooldowns(Protocol):
    async def claim(self, key: str, period: float) -> float | None:
        """Start ``key``'s period of ``period`` seconds and return ``None``, or return the seconds left of
        the period already running (more than 0)."""


@attrs.define(eq=False)
class MemoryCooldowns:
    """The in-process :class:`Cooldowns`."""

    _ends: dict[str, float] = attrs.field(factory=dict, init=False)

    async def claim(self, key: str, period: float) -> float | None:
        await trio.lowlevel.checkpoint()
        return self.claim_nowait(key, period)

    def claim_nowait(self, key: str, period: float) -> float | None:
        now = trio.current_time()
        for done in [k for k, end in self._ends.items() if end <= now]:
            del self._ends[done]
        end = self._ends.get(key)
        if end is not None:
            return end - now
        self._ends[key] = now + period
        return None


@attrs.define(eq=False)
class RedisCooldowns:
    """The Redis-backed :class:`Cooldowns`; see the module docstring."""

    client: RedisClient
    prefix: str
    fallback: MemoryCooldowns = attrs.field(factory=MemoryCooldowns, init=False)

    def key(self, key: str) -> str:
        return f"{self.prefix}cooldown:{key}"

    async def claim(self, key: str, period: float) -> float | None:
        name = self.key(key)
        period_ms = max(1, math.ceil(period * 1000))
        try:
            if await self.client.execute("SET", name, "1", "NX", "PX", period_ms) is not None:
                return None
            left = int(await self.client.execute("PTTL", name))
        except RedisError as exc:
            log.warning(
                "cooldown: redis unavailable, counting in this process",
                extra={"error_type": type(exc).__name__},
            )
            return await self.fallback.claim(key, period)
        if left == -1:  # a key without expiry was not set here: refuse for a whole period
            return period
        if left <= 0:  # it expired between the two commands: claim again
            return await self.claim(key, period)
        return left / 1000
