"""Column types that behave the same on SQLite and PostgreSQL.

:class:`UTCDateTime` stores instants. PostgreSQL keeps them as ``TIMESTAMP WITH TIME ZONE``; SQLite has no
date type, and SQLAlchemy stores ``DATETIME`` there as fixed-width text (``YYYY-MM-DD HH:MM:SS.ffffff``)
with no offset. Converting every value to UTC before it is bound makes that text sort and compare
chronologically (so range queries and indexes work), and tagging results as UTC gives callers the same
aware datetimes from both dialects. Naive datetimes are rejected instead of guessed at: a naive value is
always a bug (use :func:`voidllm.store.ids.utcnow`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.types import DateTime, TypeDecorator

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """An aware-UTC datetime column: ``TIMESTAMPTZ`` on PostgreSQL, UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime bound to a UTC column; use an aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value  # the driver's value of a timestamp column
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
