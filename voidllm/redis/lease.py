"""The Redis lease (``redis.enabled``) of :mod:`voidllm.store.lease`: one key per job,
``<prefix>lease:<name>``, whose value is the holder's random token.

:meth:`RedisLease.hold` runs one script: the holder renews its key's expiry (``ttl``), a free key is taken
(``SET ... PX``), a key held by another process is left alone. :meth:`RedisLease.release` deletes the key
only if it still holds this process's token (compare and delete), so a holder that lost the key to expiry
never deletes its successor's. A dead holder stops renewing; its key expires after ``ttl`` and another
process takes it at its next try. While Redis cannot be reached no process holds the lease (the job skips
its periods, logged) rather than every process running it.
"""

from __future__ import annotations

import logging
import math
import secrets

import attrs

from voidllm.redis.client import RedisClient, RedisError, Script

__all__ = ["RedisLease"]

log = logging.getLogger(__name__)

HOLD = Script("""
-- KEYS: the lease; ARGV: this holder's token, ttl (ms)
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
""")

RELEASE = Script("""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
""")


@attrs.define(eq=False)
class RedisLease:
    """A :class:`~voidllm.store.lease.Lease` in Redis; see the module docstring."""

    name: str
    client: RedisClient
    prefix: str
    ttl: float
    token: str = attrs.field(factory=lambda: secrets.token_hex(16))

    @property
    def key(self) -> str:
        return f"{self.prefix}lease:{self.name}"

    async def hold(self) -> bool:
        try:
            held = await self.client.evalsha(
                HOLD, (self.key,), (self.token, max(1, math.ceil(self.ttl * 1000)))
            )
        except RedisError as exc:
            log.warning(
                "lease: redis unavailable", extra={"lease": self.name, "error_type": type(exc).__name__}
            )
            return False
        return bool(held)

    async def release(self) -> None:
        try:
            await self.client.evalsha(RELEASE, (self.key,), (self.token,))
        except RedisError as exc:  # the key expires by itself
            log.warning(
                "lease: redis unavailable", extra={"lease": self.name, "error_type": type(exc).__name__}
            )
