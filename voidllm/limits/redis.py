"""The shared limiter: counters in Redis, exact across worker processes and instances (``redis.enabled``).

One Lua script per admission and one per settlement, so each is atomic on the server (Redis runs a script
without interleaving other commands) and costs one round trip whatever the number of levels and windows.

Keys (``<prefix>`` is ``redis.key_prefix``), each expiring after its window ends (plus a margin):

- ``<prefix>rl:<level>:<id>:request:<minute|day>:<start>``: the request count of a window;
- ``<prefix>rl:<level>:<id>:token:<day|month>:<start>``: tokens used in a window;
- ``...:token:<window>:<start>:res``: a hash of reservation id -> reserved tokens, plus the field ``sum``;
- ``...:token:<window>:<start>:resx``: a sorted set of reservation ids scored by their expiry.

Reservations cannot leak forever. A process that dies mid-request never settles, so every reservation has an
expiry (``settings.limits.reservation_ttl``, longer than any request may run); the admit script first
purges the expired reservations of each window it checks (subtracting them from ``sum``), so a dead process
holds budget back for at most that long. Usage that a dead process never settled is not counted in Redis.

Token counters are seeded from ``usage_events`` with ``SET NX`` when the gateway connects (a fresh or
flushed Redis does not reset the budgets; a counter that exists is left alone, so processes starting
together do not double count).

When Redis cannot be reached, ``redis.on_error`` decides: ``allow`` (the default, as the Go original fails
open) lets the request through uncounted, ``deny`` answers 503 ``service_unavailable`` "rate limiter
unavailable". Either way ``voidllm_ratelimit_backend_errors_total{policy}`` counts it and
``voidllm_redis_up`` is 0. The clock is the gateway's (Unix seconds): instances must keep their clocks in
sync (NTP) for their windows to agree.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING

import attrs

from voidllm.errors import ServiceUnavailableError, StoreError
from voidllm.identity import KeyIdentity
from voidllm.limits.base import MINUTE, Admission, Hold, limited, plan, rejection, window_bounds
from voidllm.limits.metrics import BACKEND_ERRORS
from voidllm.limits.seed import Slot, load_token_usage
from voidllm.redis.client import RedisClient, RedisError, Script

if TYPE_CHECKING:
    from voidllm.store.store import Store

log = logging.getLogger(__name__)

_MARGIN = {MINUTE: 60}
_DEFAULT_MARGIN = 3600

ADMIT = Script("""
-- KEYS: n_req request counters, then (used, res, resx) per token window
-- ARGV: now, reservation id, tokens wanted, reservation expiry, n_req,
--       then (limit, expire_at) per request counter, then (limit, expire_at) per token window
local now, rid, want = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local res_exp, n_req = ARGV[4], tonumber(ARGV[5])
local n_tok = (#KEYS - n_req) / 3
for i = 1, n_req do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[4 + 2 * i]) then return {1, i} end
end
local amounts = {}
for j = 1, n_tok do
  local k = n_req + 3 * (j - 1)
  local res, resx = KEYS[k + 2], KEYS[k + 3]
  local expired = redis.call('ZRANGEBYSCORE', resx, '-inf', now)
  for _, old in ipairs(expired) do
    redis.call('HINCRBY', res, 'sum', -tonumber(redis.call('HGET', res, old) or '0'))
    redis.call('HDEL', res, old)
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', resx, '-inf', now) end
  local a = 4 + 2 * n_req + 2 * j
  local used = tonumber(redis.call('GET', KEYS[k + 1]) or '0')
  local remaining = tonumber(ARGV[a]) - used - tonumber(redis.call('HGET', res, 'sum') or '0')
  if remaining <= 0 then return {2, j} end
  amounts[j] = math.min(want, remaining)
end
for i = 1, n_req do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIREAT', KEYS[i], ARGV[5 + 2 * i])
end
local reply = {0}
for j = 1, n_tok do
  local k = n_req + 3 * (j - 1)
  local expire_at = ARGV[5 + 2 * n_req + 2 * j]
  if amounts[j] > 0 then
    redis.call('HSET', KEYS[k + 2], rid, amounts[j])
    redis.call('HINCRBY', KEYS[k + 2], 'sum', amounts[j])
    redis.call('ZADD', KEYS[k + 3], res_exp, rid)
    redis.call('EXPIREAT', KEYS[k + 2], expire_at)
    redis.call('EXPIREAT', KEYS[k + 3], expire_at)
  end
  reply[j + 1] = amounts[j]
end
return reply
""")

SETTLE = Script("""
-- KEYS: (used, res, resx) per token window; ARGV: reservation id, used tokens, expire_at per window
local rid, used = ARGV[1], tonumber(ARGV[2])
for j = 1, #KEYS / 3 do
  local k = 3 * (j - 1)
  local amount = redis.call('HGET', KEYS[k + 2], rid)
  if amount then
    redis.call('HINCRBY', KEYS[k + 2], 'sum', -tonumber(amount))
    redis.call('HDEL', KEYS[k + 2], rid)
    redis.call('ZREM', KEYS[k + 3], rid)
  end
  if used > 0 then
    redis.call('INCRBY', KEYS[k + 1], used)
    redis.call('EXPIREAT', KEYS[k + 1], ARGV[2 + j])
  end
end
return 0
""")


def _expire_at(window: str, end: int) -> int:
    return end + _MARGIN.get(window, _DEFAULT_MARGIN)


@attrs.define(eq=False)
class RedisLimiter:
    """The limiter of :mod:`voidllm.limits.redis` (see its docstring)."""

    client: RedisClient
    prefix: str
    on_error: str = "allow"  # allow | deny
    reservation_ttl: float = 600.0
    clock: Callable[[], float] = time.time

    def key(self, slot: Slot) -> str:
        kind, level, scope_id, window, start = slot
        return f"{self.prefix}rl:{level}:{scope_id}:{kind}:{window}:{start}"

    async def admit(self, identity: KeyIdentity, *, reserve_tokens: int) -> Admission | None:
        if not limited(identity):
            return None
        now = self.clock()
        requests, tokens = plan(identity, now)
        rid = secrets.token_hex(8)
        keys: list[str] = [self.key(c.slot) for c in requests]
        expires = now + self.reservation_ttl
        args: list[str | int | float] = [now, rid, max(reserve_tokens, 0), expires, len(requests)]
        for check in requests:
            args += [check.limit, _expire_at(check.window, check.end)]
        for check in tokens:
            base = self.key(check.slot)
            keys += [base, base + ":res", base + ":resx"]
            args += [check.limit, _expire_at(check.window, max(check.end, int(expires)))]
        try:
            reply = await self.client.evalsha(ADMIT, keys, args)
        except RedisError as exc:
            self._unavailable(exc)
            return None
        status, *rest = reply
        if status == 1:
            raise rejection(requests[rest[0] - 1], now)
        if status == 2:
            raise rejection(tokens[rest[0] - 1], now)
        holds = tuple(Hold(check, int(amount)) for check, amount in zip(tokens, rest, strict=True))
        return Admission(holds, rid)

    async def settle(self, admission: Admission, *, used_tokens: int) -> None:
        if not admission.holds:
            return
        keys: list[str] = []
        args: list[str | int] = [admission.reservation_id, max(used_tokens, 0)]
        for hold in admission.holds:
            base = self.key(hold.check.slot)
            keys += [base, base + ":res", base + ":resx"]
            args.append(_expire_at(hold.check.window, hold.check.end))
        try:
            await self.client.evalsha(SETTLE, keys, args)
        except RedisError as exc:  # the reservation expires by itself; the usage is not counted
            BACKEND_ERRORS.labels(policy=self.on_error).inc()
            log.warning("rate limiter could not settle a request", extra={"error_type": type(exc).__name__})

    async def seed(self, used: Mapping[Slot, int]) -> None:
        """Start token counters from recorded usage where Redis has none yet (``SET NX``).

        Raises:
            RedisError: Redis could not be reached.
        """
        commands = []
        for slot, tokens in used.items():
            end = window_bounds(slot[3], slot[4])[1]
            commands.append(("SET", self.key(slot), tokens, "NX", "EXAT", _expire_at(slot[3], end)))
        await self.client.pipeline(commands)

    async def seed_from(self, store: Store) -> None:
        """Seed from ``usage_events`` (see :meth:`seed`); a store or Redis failure is logged, not raised."""
        try:
            await self.seed(await store.run(partial(load_token_usage, now=self.clock())))
        except (RedisError, StoreError) as exc:
            log.warning("token counters not seeded", extra={"error_type": type(exc).__name__})

    def _unavailable(self, exc: RedisError) -> None:
        BACKEND_ERRORS.labels(policy=self.on_error).inc()
        log.warning(
            "rate limiter backend unavailable",
            extra={"error_type": type(exc).__name__, "policy": self.on_error},
        )
        if self.on_error == "deny":
            raise ServiceUnavailableError("rate limiter unavailable") from exc
