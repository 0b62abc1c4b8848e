"""Circuit breakers per upstream: stop sending to a deployment that keeps failing, probe it again later.

Algorithm (docs/reference/behaviour.md 6.3, with the attempt-time reservation of 6.2):

- **Closed**: every attempt is allowed. Failures are counted while consecutive; a success resets the count;
  the ``threshold``-th consecutive failure opens the breaker.
- **Open**: attempts are refused until ``timeout`` has passed since the failure that opened it. After that,
  the next :meth:`CircuitBreaker.try_acquire` moves to half-open and takes the first probe slot.
- **Half-open**: at most ``half_open_max`` probes are in flight. A probe's success closes the breaker and
  resets it; its failure reopens it at once, with a new timeout; a neutral outcome frees its slot only.

Every allowed attempt holds a :class:`Permit` and reports exactly one outcome on it: ``success``,
``failure`` or ``neutral`` (a 429, a client that went away, a stream the client abandoned). A stream is a
success only when ``[DONE]`` arrived; truncation is a failure. Leaving a ``with permit:`` block without an
outcome counts as neutral, so a cancelled attempt can never hold a half-open slot for ever.

Two calls, because filtering and attempting are different moments: :meth:`~CircuitBreaker.peek` answers
"would an attempt be allowed now?" without reserving anything, and is what candidate ordering uses;
:meth:`~CircuitBreaker.try_acquire` reserves, and is called only right before an attempt is actually sent.
A candidate that is ordered but never tried (an earlier one succeeded) therefore never takes a probe slot.

Outcomes of permits taken before the breaker last changed state are ignored (the "generation" idea of
sony/gobreaker): they describe the upstream as it was, and letting stragglers that were in flight when the
breaker opened shift its timeout, or close it early, would make the schedule depend on request timing.

Time comes from the injected ``now`` callable (``trio.current_time`` by default; tests run on the autojump
clock). There is no I/O here. Left out on purpose: failure-rate windows (only consecutive failures count),
growing open timeouts, and sharing state between worker processes (each process learns on its own, which
at worst costs ``threshold`` failed attempts per process).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import attrs
import trio

from voidllm.routing.metrics import BREAKER_REJECTIONS, BREAKER_STATE

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from voidllm.config.settings import CircuitBreakerConfig

__all__ = ["BreakerRegistry", "BreakerSettings", "BreakerState", "CircuitBreaker", "Permit"]

_AT_LEAST_ONE = attrs.validators.ge(1)


class BreakerState(enum.IntEnum):
    """A breaker's state; the value is what ``voidllm_circuit_breaker_state`` reports."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@attrs.frozen
class BreakerSettings:
    """How every upstream's breaker behaves (``settings.circuit_breaker``)."""

    enabled: bool = True
    threshold: int = attrs.field(default=5, validator=_AT_LEAST_ONE)
    timeout: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    half_open_max: int = attrs.field(default=1, validator=_AT_LEAST_ONE)

    @classmethod
    def from_config(cls, cfg: CircuitBreakerConfig) -> BreakerSettings:
        return cls(cfg.enabled, cfg.threshold, cfg.timeout, cfg.half_open_max)


@attrs.define(eq=False)
class Permit:
    """The right to make one attempt; report exactly one outcome on it.

    Used as a context manager, leaving the block without an outcome reports :meth:`neutral`.
    """

    _breaker: CircuitBreaker | None
    _generation: int
    probe: bool = False
    """True when this permit holds one of the half-open probe slots."""
    _outcome: str | None = attrs.field(default=None, init=False)

    @property
    def outcome(self) -> str | None:
        """``"success"``, ``"failure"``, ``"neutral"``, or ``None`` while the attempt is still running."""
        return self._outcome

    def success(self) -> None:
        """The upstream answered usefully: 2xx, a 4xx caused by the client, a stream that reached [DONE]."""
        self._settle("success")

    def failure(self) -> None:
        """The upstream failed (connect error, timeout, 500/502/503/504, truncated stream)."""
        self._settle("failure")

    def neutral(self) -> None:
        """Says nothing about the upstream's health (429, client disconnect); frees a half-open slot only."""
        self._settle("neutral")

    def __enter__(self) -> Permit:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._outcome is None:
            self.neutral()

    def _settle(self, outcome: str) -> None:
        if self._outcome is not None:
            raise RuntimeError(f"permit already settled as {self._outcome}")
        self._outcome = outcome
        if self._breaker is not None:
            self._breaker._record(self._generation, self.probe, outcome)


@attrs.define(eq=False)
class CircuitBreaker:
    """One upstream's breaker. ``name`` labels its metrics; an empty name reports none."""

    name: str = ""
    threshold: int = attrs.field(default=5, validator=_AT_LEAST_ONE)
    timeout: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    half_open_max: int = attrs.field(default=1, validator=_AT_LEAST_ONE)
    enabled: bool = True
    now: Callable[[], float] = trio.current_time
    _state: BreakerState = attrs.field(default=BreakerState.CLOSED, init=False)
    _failures: int = attrs.field(default=0, init=False)
    _probes: int = attrs.field(default=0, init=False)
    _retry_at: float = attrs.field(default=0.0, init=False)
    _generation: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        self._report()

    @property
    def state(self) -> BreakerState:
        """The current state; a disabled breaker is always closed. Open stays open until the next acquire."""
        return self._state if self.enabled else BreakerState.CLOSED

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def retry_at(self) -> float | None:
        """While open: the clock time from which the next acquire becomes a half-open probe."""
        return self._retry_at if self.enabled and self._state is BreakerState.OPEN else None

    def peek(self) -> bool:
        """Would :meth:`try_acquire` succeed now? Reserves nothing and changes no state."""
        if not self.enabled or self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            return self.now() >= self._retry_at
        return self._probes < self.half_open_max

    def try_acquire(self) -> Permit | None:
        """Reserve an attempt, right before sending it; ``None`` (and a rejection counted) when refused.

        In half-open (including the move there from open once the timeout has passed) the permit holds a
        probe slot until its outcome is reported.
        """
        if not self.enabled:
            return Permit(None, 0)
        if self._state is BreakerState.OPEN and self.now() >= self._retry_at:
            self._enter(BreakerState.HALF_OPEN)
        if self._state is BreakerState.CLOSED:
            return Permit(self, self._generation)
        if self._state is BreakerState.HALF_OPEN and self._probes < self.half_open_max:
            self._probes += 1
            return Permit(self, self._generation, probe=True)
        if self.name:
            BREAKER_REJECTIONS.labels(self.name).inc()
        return None

    def _record(self, generation: int, probe: bool, outcome: str) -> None:
        if generation != self._generation:
            return  # taken before the last state change: stale news
        if outcome == "success":
            self._on_success()
        elif outcome == "failure":
            self._on_failure()
        elif probe:
            self._probes -= 1

    def _on_success(self) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._enter(BreakerState.CLOSED)
        else:
            self._failures = 0  # not a state change: permits in flight keep counting

    def _on_failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.threshold:
            self._enter(BreakerState.OPEN)
            self._retry_at = self.now() + self.timeout

    def _enter(self, state: BreakerState) -> None:
        self._generation += 1
        self._state = state
        self._failures = 0
        self._probes = 0
        self._report()

    def _report(self) -> None:
        if self.name:
            BREAKER_STATE.labels(self.name).set(self.state)


@attrs.define(eq=False)
class BreakerRegistry:
    """The breakers of every upstream, by upstream key (``Upstream.name``), created on first use."""

    settings: BreakerSettings = BreakerSettings()
    now: Callable[[], float] = trio.current_time
    _breakers: dict[str, CircuitBreaker] = attrs.field(factory=dict, init=False)

    def get(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            s = self.settings
            breaker = CircuitBreaker(name, s.threshold, s.timeout, s.half_open_max, s.enabled, self.now)
            self._breakers[name] = breaker
        return breaker

    def peek(self, name: str) -> bool:
        """Non-reserving: would an attempt on ``name`` be allowed now? For filtering candidates."""
        return self.get(name).peek()

    def try_acquire(self, name: str) -> Permit | None:
        """Reserving: call right before attempting ``name``. See :meth:`CircuitBreaker.try_acquire`."""
        return self.get(name).try_acquire()

    def state(self, name: str) -> BreakerState:
        """For health endpoints and metrics; an upstream never used is closed."""
        breaker = self._breakers.get(name)
        return breaker.state if breaker is not None else BreakerState.CLOSED

    def states(self) -> dict[str, BreakerState]:
        """Every breaker created so far, by upstream key."""
        return {name: breaker.state for name, breaker in self._breakers.items()}
