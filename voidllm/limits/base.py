"""Request rate limits and token budgets: the shared policy of both backends (docs/reference/behaviour.md 5).

Scopes and windows. Every request is checked at three levels: its key, its team (skipped when the key has
none) and its organisation, each with its own :class:`~voidllm.identity.Limits` (0 = unlimited).
Org and team counters are shared by every key in them, so the most restrictive limit wins. Windows are fixed
calendar windows in UTC: the minute, the day (from UTC midnight) and the month (from the 1st, 00:00 UTC).

Admission is all or nothing, across every level and window, in one atomic step of the backend:

1. request counters (``requests_per_minute``, ``requests_per_day``): each must be below its limit;
2. token budgets (``daily_token_limit``, ``monthly_token_limit``): for each, ``used + reserved < limit``;
3. only when everything passes: every request counter is incremented, and every token window reserves
   ``min(reserve_tokens, limit - used - reserved)`` for this request.

A rejected request therefore consumes nothing anywhere (the Go original increments the key before it finds
the org full, and never rolls back). The reservation is what makes concurrent first requests safe: a budget
can only be overspent by the difference between a request's real usage and what it reserved, never by the
number of requests that raced through a check. :meth:`Limiter.settle` releases the reservation and adds the
real usage (``total_tokens``; 0 for a failed request) to the windows reserved in.

Deliberately left out: a token window is only counted while it has a limit (fully unlimited identities take
the fast path: :func:`limited` is false, no backend call at all). A limit set during the day therefore counts
that day's earlier usage only as far as the startup seed from ``usage_events`` did.

Rejections are ``429`` with code ``rate_limit_exceeded`` or ``token_limit_exceeded`` and the headers
``Retry-After`` (whole seconds until the failing window resets, at least 1), ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` (0) and ``X-RateLimit-Reset`` (the reset as Unix seconds).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Protocol

import attrs

from voidllm.errors import TooManyRequestsError
from voidllm.identity import UNLIMITED, KeyIdentity, Limits
from voidllm.limits.metrics import REJECTIONS

__all__ = [
    "Admission",
    "Check",
    "Hold",
    "Limiter",
    "NoLimiter",
    "limited",
    "plan",
    "rejection",
    "window_bounds",
]

MINUTE, DAY, MONTH = "minute", "day", "month"
REQUEST, TOKEN = "request", "token"


def window_bounds(window: str, now: float) -> tuple[int, int]:
    """``(start, end)`` in Unix seconds of the UTC calendar window containing ``now``."""
    if window == MINUTE:
        start = int(now // 60 * 60)
        return start, start + 60
    if window == DAY:
        start = int(now // 86400 * 86400)
        return start, start + 86400
    moment = datetime.fromtimestamp(now, UTC)
    first = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    following = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return int(first.timestamp()), int(following.timestamp())


@attrs.frozen
class Check:
    """One counter a request is checked against: a level's limit in one window."""

    kind: str  # request | token
    level: str  # key | team | org
    scope_id: str
    window: str  # minute | day | month
    limit: int
    start: int
    end: int

    @property
    def slot(self) -> tuple[str, str, str, str, int]:
        """The counter's identity (what the backends key their state on)."""
        return (self.kind, self.level, self.scope_id, self.window, self.start)


@attrs.frozen
class Hold:
    """Tokens reserved for one request in one token window."""

    check: Check
    reserved: int


@attrs.frozen
class Admission:
    """A request that passed: what it reserved, to be settled exactly once when it ends."""

    holds: tuple[Hold, ...]
    reservation_id: str = ""


def limited(identity: KeyIdentity) -> bool:
    """Whether any level of ``identity`` has a limit (false: the fast path, nothing to count)."""
    return not (
        identity.key_limits == UNLIMITED
        and identity.org_limits == UNLIMITED
        and identity.team_limits == UNLIMITED
    )


def _levels(identity: KeyIdentity) -> Iterator[tuple[str, str, Limits]]:
    yield "key", identity.key_id, identity.key_limits
    if identity.team_id is not None:
        yield "team", identity.team_id, identity.team_limits
    yield "org", identity.org_id, identity.org_limits


def plan(identity: KeyIdentity, now: float) -> tuple[list[Check], list[Check]]:
    """The request checks and token checks of ``identity`` at ``now``, key first, then team, then org."""
    requests: list[Check] = []
    tokens: list[Check] = []
    for level, scope_id, limits in _levels(identity):
        for kind, window, limit, into in (
            (REQUEST, MINUTE, limits.requests_per_minute, requests),
            (REQUEST, DAY, limits.requests_per_day, requests),
            (TOKEN, DAY, limits.daily_token_limit, tokens),
            (TOKEN, MONTH, limits.monthly_token_limit, tokens),
        ):
            if limit > 0:
                into.append(Check(kind, level, scope_id, window, limit, *window_bounds(window, now)))
    return requests, tokens


def rejection(check: Check, now: float) -> TooManyRequestsError:
    """The 429 for a failed ``check`` (counted in ``voidllm_ratelimit_rejections_total``)."""
    REJECTIONS.labels(scope=check.kind, level=check.level).inc()
    headers = (
        ("retry-after", str(max(1, math.ceil(check.end - now)))),
        ("x-ratelimit-limit", str(check.limit)),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", str(check.end)),
    )
    if check.kind == REQUEST:
        return TooManyRequestsError("rate limit exceeded", code="rate_limit_exceeded", headers=headers)
    return TooManyRequestsError("token budget exceeded", code="token_limit_exceeded", headers=headers)


class Limiter(Protocol):
    async def admit(self, identity: KeyIdentity, *, reserve_tokens: int) -> Admission | None:
        """Count the request and reserve tokens, or refuse it; ``None`` when nothing limits ``identity``.

        Raises:
            TooManyRequestsError: a request limit or token budget is exhausted (nothing was counted).
            ServiceUnavailableError: the backend is unreachable and its policy is to deny.
        """

    async def settle(self, admission: Admission, *, used_tokens: int) -> None:
        """Release the reservation and count ``used_tokens``; never raises."""


class NoLimiter:
    """Limits switched off: every request passes and nothing is counted."""

    async def admit(self, identity: KeyIdentity, *, reserve_tokens: int) -> Admission | None:
        return None

    async def settle(self, admission: Admission, *, used_tokens: int) -> None:
        return None
