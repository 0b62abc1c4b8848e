"""Usage export and cost report of one organisation (issue 7 point 4).

**Export** (:func:`export_usage`): the organisation's ``usage_events`` rows in ``[from, to)`` as CSV, oldest
first, streamed in constant memory whatever the row count. Rows are read in keyset-paginated chunks of
:data:`CHUNK_ROWS`: each chunk is one short :meth:`~voidllm.store.store.Store.run` (``WHERE org_id = ? AND
created_at in range AND (created_at, id) > last ORDER BY created_at, id LIMIT n``, served by the
``(org_id, created_at)`` index), encoded to CSV bytes in the same worker thread and yielded, so at most one
chunk lives in memory and the client's reading speed paces the reads (the web layer sends each chunk
before the next is read). Each chunk is its own transaction: events written while an export runs appear
in it when they fall after its current position, as in any paginated read of an append-only table.

Cells are neutralised against spreadsheet formula injection (OWASP "CSV injection"): a text value that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``. This applies to
the columns whose text comes from clients or admins (names, models, ``source``, ``project``); ids,
numbers and timestamps are left alone. Timestamps are RFC 3339 in UTC with microseconds and a ``Z``
(fixed width, so they sort as text), booleans ``true`` / ``false``, missing values empty. There is no
content to leak: usage rows hold metadata only.

Measured on the 2-core dev machine (SQLite, loaded by other work): one million rows export in ~17 s with
the gateway's resident memory flat (``tests/test_usage_export.py``); reading all rows at once would
take ~1.8 GB.

**Cost report** (:func:`cost_report`): totals, per model, per UTC day and the top spending keys and users
of ``[from, to)``, aggregated by the database from ``usage_events`` (exact for any range, not only whole
hours, and independent of the hourly rollup's progress). Events without pricing count as cost 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from functools import partial
from typing import Any, Literal

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.services import Services
from voidllm.admin.tenancy import RESERVED, live_org
from voidllm.bounds import Bounds, bounded
from voidllm.errors import BadRequestError
from voidllm.identity import Role
from voidllm.store.store import Store
from voidllm.store.tables import api_keys, usage_events, users
from voidllm.usage.cost import money

CHUNK_ROWS = 1000
"""Rows read (and encoded) per database round trip of an export."""

MAX_TOP = 100

# -- requests -----------------------------------------------------------------------------------------


@attrs.frozen
class ExportQuery:
    """``GET /orgs/{org_id}/usage/export``: events with ``from <= created_at < to`` (RFC 3339)."""

    from_: datetime
    to: datetime
    format: Literal["csv"] = "csv"


@attrs.frozen
class CostReportQuery:
    """``GET /orgs/{org_id}/usage/cost-report``: ``from <= created_at < to``; ``top`` spenders per list."""

    from_: datetime
    to: datetime
    top: int = bounded(Bounds(minimum=1, maximum=MAX_TOP), default=10)


# -- cost report values -------------------------------------------------------------------------------


@attrs.frozen
class CostTotals:
    """Requests, tokens and cost (in the pricing's currency) of a slice of usage."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float


@attrs.frozen
class ModelCost:
    model_name: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float


@attrs.frozen
class DayCost:
    """One UTC calendar day."""

    day: date
    requests: int
    total_tokens: int
    cost: float


@attrs.frozen
class Spender:
    """A key or user by cost; ``name`` is the key's name or the user's email (also when since deleted;
    empty when unknown)."""

    id: str
    name: str
    requests: int
    total_tokens: int
    cost: float


@attrs.frozen
class CostReport:
    """Cost of an organisation's usage in ``[from, to)``; lists are ordered by cost, days by date."""

    org_id: str
    from_: datetime
    to: datetime
    totals: CostTotals
    by_model: list[ModelCost]
    by_day: list[DayCost]
    top_keys: list[Spender]
    top_users: list[Spender]


# -- use cases ----------------------------------------------------------------------------------------


async def export_usage(
    services: Services, actor: Actor, org_id: str, query: ExportQuery
) -> AsyncIterator[bytes]:
    """Check access, then return the CSV export of ``org_id``'s usage as an async iterator of byte chunks
    (the header first; see the module docstring).

    Nothing is read before iteration starts, so errors are raised here, before a response begins.

    Resource handling: each chunk is read in its own transaction; closing the iterator (a client that
    disconnects) stops the export after at most the chunk being read.

    Raises:
        PermissionDeniedError: below org admin, or another organisation.
        NotFoundError: the organisation does not exist.
        BadRequestError: ``from`` is not before ``to``.
    """
    await _check(services, actor, org_id, query.from_, query.to)
    return _csv_chunks(services.store, org_id, query.from_, query.to, CHUNK_ROWS)


async def cost_report(services: Services, actor: Actor, org_id: str, query: CostReportQuery) -> CostReport:
    """The cost report of ``org_id`` over ``[from, to)``.

    Raises:
        PermissionDeniedError: below org admin, or another organisation.
        NotFoundError: the organisation does not exist.
        BadRequestError: ``from`` is not before ``to``, or ``top`` is not within 1..100.
    """
    await _check(services, actor, org_id, query.from_, query.to)
    if not 1 <= query.top <= MAX_TOP:
        raise BadRequestError(f"top must be between 1 and {MAX_TOP}", code="validation_error")
    return await services.store.run(partial(_report_tx, org_id, query))


async def _check(services: Services, actor: Actor, org_id: str, start: datetime, end: datetime) -> None:
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)
    if start >= end:
        raise BadRequestError("from must be before to", code="validation_error")
    await services.store.run(live_org, org_id)


# -- export -------------------------------------------------------------------------------------------

_FORMULA_START = frozenset("=+-@\t\r")
_u = usage_events.c


def _exported(dialect: str) -> tuple[tuple[str, sa.ColumnElement[Any]], ...]:
    """The CSV columns and what each selects. Timestamps and flags are formatted by the database so rows
    need no per-value Python conversion: ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` from both dialects (SQLite
    stores exactly that with a space and no ``Z``, see :mod:`voidllm.store.types`)."""
    created: sa.ColumnElement[str]
    if dialect == "postgresql":
        created = sa.func.to_char(
            sa.func.timezone("UTC", _u.created_at), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"', type_=sa.Text
        )
    else:
        created = sa.func.replace(_u.created_at, " ", "T", type_=sa.Text) + "Z"
    return (
        ("created_at", created),
        ("id", _u.id),
        ("request_id", _u.request_id),
        ("key_id", _u.key_id),
        ("key_name", api_keys.c.name),
        ("key_type", _u.key_type),
        ("user_id", _u.user_id),
        ("team_id", _u.team_id),
        ("service_account_id", _u.service_account_id),
        ("model_name", _u.model_name),
        ("requested_model_name", _u.requested_model_name),
        ("provider", _u.provider),
        ("deployment_name", _u.deployment_name),
        ("status_code", _u.status_code),
        ("status", _u.status),
        ("stream", sa.case((_u.stream, "true"), else_="false")),
        ("prompt_tokens", _u.prompt_tokens),
        ("completion_tokens", _u.completion_tokens),
        ("total_tokens", _u.total_tokens),
        ("cost_estimate", _u.cost_estimate),
        ("request_duration_ms", _u.request_duration_ms),
        ("ttft_ms", _u.ttft_ms),
        ("tokens_per_second", _u.tokens_per_second),
        ("source", _u.source),
        ("project", _u.project),
    )


EXPORT_COLUMNS: tuple[str, ...] = tuple(name for name, _ in _exported("sqlite"))
"""The CSV header, in order."""

_GUARDED = tuple(
    EXPORT_COLUMNS.index(name)
    for name in ("key_name", "model_name", "requested_model_name", "deployment_name", "source", "project")
)
_CREATED, _ID = EXPORT_COLUMNS.index("created_at"), EXPORT_COLUMNS.index("id")


@attrs.frozen
class _Chunk:
    data: bytes
    rows: int
    last: tuple[datetime, str] | None  # (created_at, id) of the last row read


async def _csv_chunks(
    store: Store, org_id: str, start: datetime, end: datetime, size: int
) -> AsyncIterator[bytes]:
    yield _encode([EXPORT_COLUMNS])
    after: tuple[datetime, str] | None = None
    while True:
        chunk = await store.run(partial(_read_chunk, org_id, start, end, after, size))
        if chunk.rows:
            yield chunk.data
        if chunk.rows < size:
            return
        after = chunk.last


def _read_chunk(
    org_id: str,
    start: datetime,
    end: datetime,
    after: tuple[datetime, str] | None,
    size: int,
    conn: sa.Connection,
) -> _Chunk:
    # One lower bound on created_at (the range's start, then the last row's time) lets the index seek
    # straight to the position; with two, SQLite may pick the range's start and rescan every chunk.
    lower = start if after is None else after[0]
    select = (
        sa.select(*(column for _, column in _exported(conn.dialect.name)))
        .select_from(usage_events.outerjoin(api_keys, api_keys.c.id == _u.key_id))
        .where(_u.org_id == org_id, _u.created_at >= lower, _u.created_at < end)
        .order_by(_u.created_at, _u.id)
        .limit(size)
    )
    if after is not None:
        created_at, event_id = after
        select = select.where(sa.or_(_u.created_at > created_at, _u.id > event_id))
    rows = conn.execute(select).all()
    if not rows:
        return _Chunk(b"", 0, None)
    last = rows[-1]
    return _Chunk(_encode(_guarded(rows)), len(rows), (datetime.fromisoformat(last[_CREATED]), last[_ID]))


def _guarded(rows: Sequence[sa.Row[Any]]) -> Sequence[Sequence[Any]]:
    """``rows`` with formula-like text cells prefixed by ``'`` (module docstring); other rows as they are."""
    out: list[Sequence[Any]] = []
    for row in rows:
        for index in _GUARDED:
            value = row[index]
            if value and value[0] in _FORMULA_START:
                cells = list(row)
                for index in _GUARDED:
                    value = cells[index]
                    if value and value[0] in _FORMULA_START:
                        cells[index] = "'" + value
                out.append(cells)
                break
        else:
            out.append(row)
    return out


def _encode(rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


# -- cost report --------------------------------------------------------------------------------------

_REQUESTS = sa.func.count().label("requests")
_PROMPT = sa.func.coalesce(sa.func.sum(_u.prompt_tokens), 0).label("prompt_tokens")
_COMPLETION = sa.func.coalesce(sa.func.sum(_u.completion_tokens), 0).label("completion_tokens")
_TOTAL = sa.func.coalesce(sa.func.sum(_u.total_tokens), 0).label("total_tokens")
_COST = sa.func.coalesce(sa.func.sum(_u.cost_estimate), 0.0).label("cost")


def _report_tx(org_id: str, query: CostReportQuery, conn: sa.Connection) -> CostReport:
    in_range = (_u.org_id == org_id, _u.created_at >= query.from_, _u.created_at < query.to)
    totals = conn.execute(sa.select(_REQUESTS, _PROMPT, _COMPLETION, _TOTAL, _COST).where(*in_range)).one()
    by_model = conn.execute(
        sa.select(_u.model_name, _REQUESTS, _PROMPT, _COMPLETION, _TOTAL, _COST)
        .where(*in_range)
        .group_by(_u.model_name)
        .order_by(_COST.desc(), _u.model_name)
    ).mappings()
    day = _utc_day(conn, _u.created_at).label("day")
    by_day = conn.execute(
        sa.select(day, _REQUESTS, _TOTAL, _COST).where(*in_range).group_by(day).order_by(day)
    ).mappings()
    return CostReport(
        org_id=org_id,
        from_=query.from_,
        to=query.to,
        totals=CostTotals(**_costs(totals._mapping)),
        by_model=[ModelCost(**_costs(row), model_name=row["model_name"]) for row in by_model],
        by_day=[
            DayCost(
                day=date.fromisoformat(str(row["day"])),
                requests=row["requests"],
                total_tokens=int(row["total_tokens"]),
                cost=money(row["cost"]),
            )
            for row in by_day
        ],
        top_keys=_top(conn, _u.key_id, api_keys.c.name, api_keys, in_range, query.top),
        top_users=_top(conn, _u.user_id, users.c.email, users, in_range, query.top),
    )


def _costs(row: sa.RowMapping) -> dict[str, Any]:
    return {
        "requests": int(row["requests"]),
        "prompt_tokens": int(row["prompt_tokens"]),
        "completion_tokens": int(row["completion_tokens"]),
        "total_tokens": int(row["total_tokens"]),
        "cost": money(row["cost"]),
    }


def _utc_day(conn: sa.Connection, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The UTC calendar date of a timestamp column (SQLite stores UTC text; PostgreSQL converts)."""
    if conn.dialect.name == "postgresql":
        return sa.func.date(sa.func.timezone("UTC", column))
    return sa.func.date(column)


def _top(
    conn: sa.Connection,
    owner: sa.ColumnElement[str],
    label: sa.ColumnElement[str],
    table: sa.Table,
    in_range: tuple[sa.ColumnElement[bool], ...],
    limit: int,
) -> list[Spender]:
    spend = (
        sa.select(owner.label("id"), _REQUESTS, _TOTAL, _COST)
        .where(*in_range, owner.is_not(None))
        .group_by(owner)
        .order_by(_COST.desc(), owner)
        .limit(limit)
        .subquery()
    )
    rows = conn.execute(
        sa.select(spend, sa.func.coalesce(label, "").label("name"))
        .select_from(spend.outerjoin(table, table.c.id == spend.c.id))
        .order_by(spend.c.cost.desc(), spend.c.id)
    ).mappings()
    return [
        Spender(
            id=row["id"],
            name=row["name"].split(RESERVED)[0],
            requests=int(row["requests"]),
            total_tokens=int(row["total_tokens"]),
            cost=money(row["cost"]),
        )
        for row in rows
    ]
