"""Cursor pagination of list endpoints (docs/reference/behaviour.md 1.6): ``?limit=`` (default 20, 1 to 100)
and ``?cursor=<id>`` (at most 64 characters); a page is ``{data, has_more, next_cursor}``.

Ids are UUIDv7, so ordering by id is ordering by creation, and the cursor is simply the last id of the
previous page: stable under concurrent inserts and deletes, and one index range scan per page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs
import sqlalchemy as sa

from voidllm.bounds import Bounds, bounded
from voidllm.errors import BadRequestError

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
PAGE_LIMIT = Bounds(minimum=1, maximum=MAX_LIMIT)
CURSOR = Bounds(max_length=64)


def page_limit_field(default: int = DEFAULT_LIMIT) -> Any:
    """The ``limit`` query parameter: 1 to :data:`MAX_LIMIT`."""
    return bounded(PAGE_LIMIT, default=default)


@attrs.frozen
class Page(Generic[T]):
    data: list[T]
    has_more: bool
    next_cursor: str | None = None


@attrs.frozen
class PageQuery:
    """The ``limit`` and ``cursor`` query parameters."""

    limit: int = page_limit_field()
    cursor: str | None = bounded(CURSOR, default=None)

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise BadRequestError(f"limit must be between 1 and {MAX_LIMIT}")


def filters(
    equal: Iterable[tuple[sa.Column[Any], Any]],
    at: sa.Column[datetime],
    from_: datetime | None,
    to: datetime | None,
) -> list[sa.ColumnElement[bool]]:
    """The conditions of a filtered list: each column equal to its value (a ``None`` value: no condition) and
    ``at`` between ``from_`` and ``to`` (each bound inclusive, ``None``: open)."""
    conditions = [column == value for column, value in equal if value is not None]
    if from_ is not None:
        conditions.append(at >= from_)
    if to is not None:
        conditions.append(at <= to)
    return conditions


def paginate(
    conn: sa.Connection,
    query: sa.Select[Any],
    id_column: sa.Column[str],
    page: PageQuery,
    build: Callable[[sa.RowMapping], T],
    *,
    descending: bool = False,
) -> Page[T]:
    """Run ``query`` for one page ordered by ``id_column`` (newest first if ``descending``) and build each
    row with ``build``."""
    if page.cursor:
        query = query.where(id_column < page.cursor if descending else id_column > page.cursor)
    order = id_column.desc() if descending else id_column
    rows = conn.execute(query.order_by(order).limit(page.limit + 1)).mappings().all()
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    data = [build(row) for row in rows]
    return Page(data=data, has_more=more, next_cursor=str(rows[-1][id_column.key]) if more else None)
