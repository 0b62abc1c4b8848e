"""Login throttling (reference 1.5, ``internal/auth/login_throttle.go``): per-IP attempt limits and per-email
lockouts, in this process's memory.

The rules, as in the Go original:

- **Per IP**: at most ``max_per_ip`` (10) attempts in any ``ip_window`` (60 s), counted in a sliding window
  of attempt times. Every admitted attempt counts, successful ones too; refused attempts do not, so a client
  that keeps hammering is let in again once its oldest counted attempt leaves the window.
- **Per email**: ``max_failures`` (5) consecutive failed logins lock the email for ``lockout`` (15 min).
  While locked every attempt is refused before the password is checked, so a correct password is refused
  too. A success resets the count; so does the end of a lockout. Unknown emails are tracked the same way,
  so a lockout reveals nothing about which accounts exist.
- **Eviction**: entries idle for ``idle_evict`` (30 min, longer than a lockout) are dropped by a sweep that
  runs at most once a minute, from the calls themselves (no background task).

Refusals raise :class:`~voidllm.errors.TooManyRequestsError` (429 ``too_many_requests``) with a
``Retry-After`` header in whole seconds. The message is the same for both limits.

Left out deliberately: sharing the counters between processes (each worker process throttles on its own,
as each Go replica did; the limits therefore multiply by the number of processes), and counting attempts
still in flight against the email (a burst of parallel guesses for one email can exceed 5 by the attempts
started before the fifth failure finished, which the per-IP limit bounds).

The clock is injectable (``trio.current_time`` by default), so tests run on trio's ``MockClock``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import attrs
import trio

from voidllm.errors import TooManyRequestsError

__all__ = ["LoginThrottle", "ThrottleStatistics"]

_MESSAGE = "too many login attempts, try again later"
_SWEEP_INTERVAL = 60.0


@attrs.frozen
class ThrottleStatistics:
    """How many IPs and emails the throttle currently tracks."""

    ips: int
    emails: int


@attrs.define
class _EmailState:
    last_seen: float
    failures: int = 0
    locked_until: float | None = None


@attrs.define(eq=False)
class LoginThrottle:
    """Per-IP attempt limits and per-email lockouts; see the module docstring."""

    clock: Callable[[], float] = trio.current_time
    max_per_ip: int = 10
    ip_window: float = 60.0
    max_failures: int = 5
    lockout: float = 15 * 60.0
    idle_evict: float = 30 * 60.0
    _ips: dict[str, deque[float]] = attrs.field(factory=dict, init=False)
    _emails: dict[str, _EmailState] = attrs.field(factory=dict, init=False)
    _next_sweep: float = attrs.field(default=-math.inf, init=False)

    def admit(self, ip: str | None, email: str) -> None:
        """Count one login attempt from ``ip`` for ``email``, or refuse it.

        Raises:
            TooManyRequestsError: the IP made too many attempts in the window, or the email is locked.
        """
        now = self.clock()
        self._sweep(now)
        state = self._emails.get(_normal(email))
        if state is not None and state.locked_until is not None:
            if now < state.locked_until:
                raise _refused(state.locked_until - now)
            state.failures, state.locked_until = 0, None
        attempts = self._ips.setdefault(ip or "", deque())
        while attempts and attempts[0] <= now - self.ip_window:
            attempts.popleft()
        if len(attempts) >= self.max_per_ip:
            raise _refused(attempts[0] + self.ip_window - now)
        attempts.append(now)

    def record_failure(self, email: str) -> None:
        """A wrong password (or unknown email): one more consecutive failure, locking at the limit."""
        now = self.clock()
        state = self._emails.setdefault(_normal(email), _EmailState(last_seen=now))
        state.last_seen = now
        state.failures += 1
        if state.failures >= self.max_failures:
            state.locked_until = now + self.lockout

    def record_success(self, email: str) -> None:
        """A successful login: the email's failure count starts again from zero."""
        self._emails.pop(_normal(email), None)

    def statistics(self) -> ThrottleStatistics:
        return ThrottleStatistics(ips=len(self._ips), emails=len(self._emails))

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        horizon = now - self.idle_evict
        for ip in [ip for ip, attempts in self._ips.items() if not attempts or attempts[-1] <= horizon]:
            del self._ips[ip]
        for email in [e for e, s in self._emails.items() if s.last_seen <= horizon]:
            del self._emails[email]


def _normal(email: str) -> str:
    return email.strip().lower()


def _refused(wait: float) -> TooManyRequestsError:
    seconds = max(1, math.ceil(wait))
    return TooManyRequestsError(_MESSAGE, headers=(("retry-after", str(seconds)),))
