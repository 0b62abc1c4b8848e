"""Rate-limit cooldowns: a deployment that answered 429 goes to the back of the queue for a while.

docs/reference/behaviour.md 6.2 and 6.1: on a 429 the attempt is neutral for the breaker (a rate limit says
nothing about the upstream's health), the deployment is parked for as long as the response asks, and candidate
ordering moves parked deployments to the end (they stay candidates: when every deployment is rate limited, one
of them is still tried).

How long (:func:`parse_retry_after`):

1. ``retry-after-ms``: milliseconds, decimals allowed (OpenAI and Azure send it);
2. else ``Retry-After`` (RFC 9110 section 10.2.3): delta-seconds (decimals tolerated), or an HTTP-date
   measured from the caller's wall clock;
3. else, or when neither value parses, 3 seconds.

The result is clamped to [0, 60] s: a date in the past or a negative number means 0, and no upstream can
bench a deployment for longer than a minute. Header names match case-insensitively. Numbers must be plain
decimals (``1e3``, ``inf``, ``nan`` and ``1_000`` are garbage, not numbers).

:class:`CooldownRegistry` keeps one deadline per upstream key on the injected ``now`` clock
(``trio.current_time`` by default). Parking an already parked upstream keeps the later deadline, so two
429s racing each other cannot shorten a cooldown. Expired entries are dropped at every park and lookup;
``voidllm_cooldowns_active`` is refreshed at the same moments. Left out: sharing cooldowns between worker
processes (each learns about a 429 on its own), and the ``x-ratelimit-reset-*`` headers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import attrs
import trio

from voidllm.routing.metrics import COOLDOWNS_ACTIVE

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFAULT_COOLDOWN", "MAX_COOLDOWN", "CooldownRegistry", "parse_retry_after"]

DEFAULT_COOLDOWN = 3.0
MAX_COOLDOWN = 60.0

Headers = Mapping[str, str] | Sequence[tuple[bytes, bytes]]

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def parse_retry_after(headers: Headers, now_wall: datetime) -> float:
    """Seconds to park a deployment that answered 429, from its response headers.

    Args:
        headers: a mapping of str names to values (e.g. ``httpx.Headers``), or raw ``(name, value)`` byte
            pairs as ASGI and h11 carry them.
        now_wall: the current wall-clock time, for an HTTP-date ``Retry-After`` (naive means UTC).

    Returns:
        Seconds in [0, 60]; 3 when no header gives a usable value.
    """
    ms = _number(_header(headers, "retry-after-ms"))
    if ms is not None:
        return _clamp(ms / 1000)
    value = _header(headers, "retry-after")
    seconds = _number(value)
    if seconds is None and value is not None:
        seconds = _until(value, now_wall)
    return DEFAULT_COOLDOWN if seconds is None else _clamp(seconds)


def _header(headers: Headers, name: str) -> str | None:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in pairs:
        key_text = key.decode("latin-1") if isinstance(key, bytes) else key
        if key_text.lower() == name:
            return value.decode("latin-1") if isinstance(value, bytes) else value
    return None


def _number(value: str | None) -> float | None:
    if value is None or not _DECIMAL.fullmatch(value.strip()):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _until(value: str, now_wall: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return (_aware(when) - _aware(now_wall)).total_seconds()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _clamp(seconds: float) -> float:
    return min(max(seconds, 0.0), MAX_COOLDOWN)


@attrs.define(eq=False)
class CooldownRegistry:
    """Which upstreams are parked after a 429, and until when (on the ``now`` clock)."""

    now: Callable[[], float] = trio.current_time
    _until: dict[str, float] = attrs.field(factory=dict, init=False)

    def park(self, name: str, seconds: float) -> None:
        """Park ``name`` for ``seconds`` from now, unless it is already parked for longer."""
        self._prune()
        until = self.now() + seconds
        if until > self._until.get(name, -math.inf) and seconds > 0:
            self._until[name] = until
        COOLDOWNS_ACTIVE.set(len(self._until))

    def cooling(self, name: str) -> bool:
        """Is ``name`` parked right now? (False from the exact moment its cooldown ends.)"""
        self._prune()
        return name in self._until

    def remaining(self, name: str) -> float:
        """Seconds until ``name`` is no longer parked; 0 when it is not parked."""
        self._prune()
        until = self._until.get(name)
        return 0.0 if until is None else until - self.now()

    def active(self) -> dict[str, float]:
        """Every parked upstream and the seconds it has left."""
        self._prune()
        now = self.now()
        return {name: until - now for name, until in self._until.items()}

    def _prune(self) -> None:
        now = self.now()
        expired = [name for name, until in self._until.items() if until <= now]
        for name in expired:
            del self._until[name]
        if expired:
            COOLDOWNS_ACTIVE.set(len(self._until))
