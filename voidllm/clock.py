"""The wall clock of timestamps: :func:`utcnow`, an aware UTC datetime.

Below every package, so the data plane can stamp a usage event without importing the store (which
re-exports it from :mod:`voidllm.store.ids` for its rows). Durations and deadlines use trio's clock instead.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime (microsecond precision)."""
    return datetime.now(UTC)
