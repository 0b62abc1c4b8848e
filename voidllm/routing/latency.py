"""Latency per upstream, for the ``least-latency`` strategy.

The original orders by the health checker's probe latency only (docs/reference/behaviour.md 6.1). A probe is a
GET of the upstream's root, which says little about how fast it serves completions, so this version prefers
what real requests measured and keeps probe latency as the fallback (issue: "moving average of real request
latency per deployment, falling back to probe latency and then to round-robin").

Real requests: the caller measures time to response headers (for a stream, roughly time to first token;
for a buffered response, the whole generation) and calls :meth:`LatencyTracker.observe`. The average is an
exponentially weighted moving average over samples,

    avg <- avg + ALPHA * (sample - avg),   ALPHA = 0.3,   the first sample taken as is,

so a sample's weight halves about every two newer samples (0.7 ** 2 ~ 0.49). Why this one:

- it reacts within a handful of requests when a deployment slows down, which is when ordering matters,
  while one outlier moves the average by only 30 % of its excess;
- it keeps the last average of an idle deployment instead of decaying it toward "unknown". With
  least-latency only the first candidate gets steady traffic, so the others are idle by construction; if
  their averages faded to "no data" they would sort behind every measured deployment and never be tried
  again. A kept average lets a degrading leader fall behind an idle deployment, which is then re-measured.
  The price: a deployment that had one bad spell stays behind until the leader gets slower than it.

Probes: :meth:`LatencyTracker.observe_probe` keeps the latest probe latency, as the original does.

No clock, no I/O; one tracker per process. Left out: percentiles, per-token normalisation (long prompts
make slow headers on any deployment), and separate averages for streaming and buffered requests.
"""

from __future__ import annotations

import attrs

__all__ = ["ALPHA", "LatencyTracker"]

ALPHA = 0.3


@attrs.define(eq=False)
class LatencyTracker:
    """Real-request EWMA and latest probe latency, by upstream key, in seconds."""

    alpha: float = attrs.field(default=ALPHA, validator=[attrs.validators.gt(0), attrs.validators.le(1)])
    _average: dict[str, float] = attrs.field(factory=dict, init=False)
    _probe: dict[str, float] = attrs.field(factory=dict, init=False)

    def observe(self, name: str, seconds: float) -> None:
        """Fold one real request's time to response headers into ``name``'s average."""
        previous = self._average.get(name)
        self._average[name] = seconds if previous is None else previous + self.alpha * (seconds - previous)

    def average(self, name: str) -> float | None:
        """The real-request average, or ``None`` before the first observation."""
        return self._average.get(name)

    def observe_probe(self, name: str, seconds: float) -> None:
        """Record the latest health-probe latency of ``name``."""
        self._probe[name] = seconds

    def probe(self, name: str) -> float | None:
        """The latest probe latency, or ``None`` when no probe has measured ``name``."""
        return self._probe.get(name)
