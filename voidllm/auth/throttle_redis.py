"""The shared login throttle: the counts of :mod:`voidllm.auth.throttle` in Redis (``redis.enabled``), so
every worker process and instance sees every attempt.

One Lua script per attempt checks the email's lock and the IP's window and, when both allow it, reserves the
failure and counts the attempt; Redis runs a script without interleaving other commands, so a burst spread
over any number of processes cannot outrun the count (at most ``max_failures`` attempts evaluated per lock).
A success deletes the email's key.

Keys (``<prefix>`` is ``redis.key_prefix``):

- ``<prefix>login:email:<sha256 of the normalised email>``: the count; it expires ``idle_evict`` after the
  last attempt, or ``lockout`` after the attempt that reached ``max_failures`` (the lock is the key's life).
  The email is hashed so Redis never holds it.
- ``<prefix>login:ip:<ip>``: a sorted set of attempt ids scored by their time in milliseconds (the sliding
  window), expiring ``ip_window`` after the last attempt.

The window's clock is the gateway's (Unix time): instances must keep their clocks in sync (NTP), as for the
rate limits. When Redis cannot be reached the attempt is counted by this process's
:class:`~voidllm.auth.throttle.LoginThrottle` instead (logged), so logging in keeps working and stays
throttled, per process, until Redis answers again.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable

import attrs

from voidllm.auth.throttle import LoginThrottle, normal_email, refused
from voidllm.redis.client import RedisClient, RedisError, Script

__all__ = ["RedisLoginThrottle"]

log = logging.getLogger(__name__)

ADMIT = Script("""
-- KEYS: the email's count, the IP's window
-- ARGV: now (ms), attempt id, max failures, lockout (ms), idle evict (ms), max per IP, IP window (ms)
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[3]) then
  return {1, redis.call('PTTL', KEYS[1])}
end
local now, window = tonumber(ARGV[1]), tonumber(ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[6]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {2, tonumber(oldest[2]) + window - now}
end
redis.call('ZADD', KEYS[2], now, ARGV[2])
redis.call('PEXPIRE', KEYS[2], window)
count = redis.call('INCR', KEYS[1])
if count >= tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return {0, count}
""")


@attrs.define(eq=False)
class RedisLoginThrottle:
    """The Redis-backed :class:`~voidllm.auth.throttle.Throttle`; see the module docstring."""

    client: RedisClient
    prefix: str
    max_per_ip: int = 10
    ip_window: float = 60.0
    max_failures: int = 5
    lockout: float = 15 * 60.0
    idle_evict: float = 30 * 60.0
    clock: Callable[[], float] = time.time
    fallback: LoginThrottle = attrs.field(init=False)

    @fallback.default
    def _fallback(self) -> LoginThrottle:
        return LoginThrottle(
            max_per_ip=self.max_per_ip,
            ip_window=self.ip_window,
            max_failures=self.max_failures,
            lockout=self.lockout,
            idle_evict=self.idle_evict,
        )

    def email_key(self, email: str) -> str:
        digest = hashlib.sha256(normal_email(email).encode()).hexdigest()
        return f"{self.prefix}login:email:{digest}"

    def ip_key(self, ip: str | None) -> str:
        return f"{self.prefix}login:ip:{ip or ''}"

    async def admit(self, ip: str | None, email: str) -> None:
        now = int(self.clock() * 1000)
        args = (
            now,
            f"{now}:{secrets.token_hex(6)}",
            self.max_failures,
            _ms(self.lockout),
            _ms(self.idle_evict),
            self.max_per_ip,
            _ms(self.ip_window),
        )
        try:
            status, value = await self.client.evalsha(ADMIT, (self.email_key(email), self.ip_key(ip)), args)
        except RedisError as exc:
            _unavailable("admit", exc)
            await self.fallback.admit(ip, email)
            return
        if status != 0:
            raise refused(max(int(value), 1) / 1000)

    async def record_success(self, email: str) -> None:
        await self.fallback.record_success(email)
        try:
            await self.client.execute("DEL", self.email_key(email))
        except RedisError as exc:  # the count expires by itself; until then it may lock early
            _unavailable("success", exc)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _unavailable(step: str, exc: RedisError) -> None:
    log.warning(
        "login throttle: redis unavailable, counting in this process",
        extra={"step": step, "error_type": type(exc).__name__},
    )
