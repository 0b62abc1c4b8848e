"""Login throttling (docs/reference/behaviour.md 1.5, ``internal/auth/login_throttle.go``, tightened by issue
12): per-IP attempt limits and per-email lockouts that count the attempts still in flight.

The rules:

- **Per email, across all source addresses**: every admitted attempt *reserves* one failure on the email
  before the password is checked. The reservation stands as a failure unless the attempt proves the right
  password, which clears the count (:meth:`~Throttle.record_success`). The attempt that takes the count to
  ``max_failures`` (5) is still evaluated, and it locks the email for ``lockout`` (15 min): from then on
  every attempt is refused before the password is checked, a correct password too, until the lock ends (the
  count starts again from zero then). So at most five guesses for one email are ever evaluated per lockout,
  however many are sent at once and from however many addresses: a parallel burst of 150 sees 5 evaluated
  and 145 refused. An attempt that fails for any other reason (cancelled, database down) keeps its
  reservation, which errs on the side of refusing. Unknown emails are counted the same way, so a lockout
  reveals nothing about which accounts exist.
- **Per IP**: at most ``max_per_ip`` (10) attempts in any ``ip_window`` (60 s), counted in a sliding window
  of attempt times. Every admitted attempt counts, successful ones too; refused attempts count on neither
  limit, so a client that keeps hammering is let in again once its oldest counted attempt leaves the window.
  The IP is the client's address as the edge tells it (behind ``settings.trusted_proxies``, the one they
  forwarded: :meth:`voidllm.web.browser.BrowserPolicy.client_address`).
- **Eviction**: an email's count is dropped when it has seen no attempt for ``idle_evict`` (30 min, longer
  than a lockout) or its lock is over; IPs whose window is empty are dropped. In memory a sweep runs at most
  once a minute, from the calls themselves (no background task); in Redis keys expire.

Two implementations of :class:`Throttle`: :class:`LoginThrottle` here keeps the counts in this process's
memory (``redis.enabled: false``): exact for one process, but with several ``workers`` and no Redis each
process counts on its own, so the limits multiply by their number.
:class:`~voidllm.auth.throttle_redis.RedisLoginThrottle` keeps them in Redis, checked and reserved by one
atomic script, so every worker process and instance shares them (``redis.enabled``).

Refusals raise :class:`~voidllm.errors.TooManyRequestsError` (429 ``too_many_requests``) with a
``Retry-After`` header in whole seconds. The message is the same for both limits. The caller keeps the answer
time of an attempt independent of whether the account exists (the password check does the same argon2
work either way); the throttle itself never looks at accounts.

The clock is injectable (``trio.current_time`` by default), so tests run on trio's ``MockClock``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from voidllm.errors import TooManyRequestsError

__all__ = ["LoginThrottle", "Throttle", "ThrottleStatistics", "normal_email", "refused"]

MESSAGE = "too many login attempts, try again later"
_SWEEP_INTERVAL = 60.0


class Throttle(Protocol):
    async def admit(self, ip: str | None, email: str) -> None:
        """Count one attempt from ``ip`` and reserve one failure on ``email``, or refuse the attempt.

        Raises:
            TooManyRequestsError: the IP made too many attempts in the window, or the email is locked.
        """

    async def record_success(self, email: str) -> None:
        """The attempt proved the right password: the email's count starts again from zero."""


@attrs.frozen
class ThrottleStatistics:
    """How many IPs and emails the throttle currently tracks."""

    ips: int
    emails: int


@attrs.define
class _EmailState:
    expires: float  # the end of the lock once locked, else the idle horizon
    count: int = 0  # failures and reservations since the last success or the end of the last lock


@attrs.define(eq=False)
class LoginThrottle:
    """The in-memory :class:`Throttle`; see the module docstring."""

    clock: Callable[[], float] = trio.current_time
    max_per_ip: int = 10
    ip_window: float = 60.0
    max_failures: int = 5
    lockout: float = 15 * 60.0
    idle_evict: float = 30 * 60.0
    _ips: dict[str, deque[float]] = attrs.field(factory=dict, init=False)
    _emails: dict[str, _EmailState] = attrs.field(factory=dict, init=False)
    _next_sweep: float = attrs.field(default=-math.inf, init=False)

    async def admit(self, ip: str | None, email: str) -> None:
        await trio.lowlevel.checkpoint()  # a cancellation lands before the reservation, never after it
        self.admit_nowait(ip, email)

    def admit_nowait(self, ip: str | None, email: str) -> None:
        """:meth:`admit` without the checkpoint: check and reserve in one step."""
        now = self.clock()
        self._sweep(now)
        key = normal_email(email)
        state = self._emails.get(key)
        if state is not None and now >= state.expires:
            del self._emails[key]
            state = None
        if state is not None and state.count >= self.max_failures:
            raise refused(state.expires - now)
        attempts = self._ips.setdefault(ip or "", deque())
        while attempts and attempts[0] <= now - self.ip_window:
            attempts.popleft()
        if len(attempts) >= self.max_per_ip:
            raise refused(attempts[0] + self.ip_window - now)
        attempts.append(now)
        state = self._emails.setdefault(key, _EmailState(expires=now))
        state.count += 1
        state.expires = now + (self.lockout if state.count >= self.max_failures else self.idle_evict)

    async def record_success(self, email: str) -> None:
        await trio.lowlevel.checkpoint()
        self._emails.pop(normal_email(email), None)

    def statistics(self) -> ThrottleStatistics:
        return ThrottleStatistics(ips=len(self._ips), emails=len(self._emails))

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        horizon = now - self.ip_window
        for ip in [ip for ip, attempts in self._ips.items() if not attempts or attempts[-1] <= horizon]:
            del self._ips[ip]
        for email in [e for e, s in self._emails.items() if s.expires <= now]:
            del self._emails[email]


def normal_email(email: str) -> str:
    """The form an email is counted under: case and surrounding spaces do not matter."""
    return email.strip().lower()


def refused(wait: float) -> TooManyRequestsError:
    """The 429 of either limit, ``Retry-After`` rounded up to whole seconds (at least 1)."""
    seconds = max(1, math.ceil(wait))
    return TooManyRequestsError(MESSAGE, headers=(("retry-after", str(seconds)),))
