"""Token usage already spent in the current UTC day and month, read from ``usage_events`` at startup.

Both backends start their token counters from it, so a restart (or a fresh Redis) does not hand every key,
team and organisation a new budget. Request counters are not seeded (the Go original does not either).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from voidllm.limits.base import DAY, MONTH, TOKEN, window_bounds
from voidllm.store import tables as t

Slot = tuple[str, str, str, str, int]

_LEVEL_COLUMNS = (("key", "key_id"), ("team", "team_id"), ("org", "org_id"))


def load_token_usage(conn: sa.Connection, *, now: float) -> dict[Slot, int]:
    """``total_tokens`` since the current day and month began, by token counter slot (level, id, window)."""
    usage = t.usage_events
    found: dict[Slot, int] = {}
    for window in (DAY, MONTH):
        start, _ = window_bounds(window, now)
        since = datetime.fromtimestamp(start, UTC)
        for level, column in _LEVEL_COLUMNS:
            col = usage.c[column]
            query = (
                sa.select(col, sa.func.sum(usage.c.total_tokens))
                .where(usage.c.created_at >= since, col.is_not(None))
                .group_by(col)
            )
            for scope_id, total in conn.execute(query):
                if total:
                    found[(TOKEN, level, scope_id, window, start)] = int(total)
    return found
