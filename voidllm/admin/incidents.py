"""Reading the incident log (:mod:`voidllm.usage.incidents` writes it): upstream failures, failovers and
fallbacks of proxied requests, metadata only.

- ``GET /incidents``: every organisation's incidents (system administrators), or one's with ``org_id``;
- ``GET /orgs/{org_id}/incidents``: one organisation's (its org admins and system administrators; another
  organisation's admin gets 403, an unknown organisation 404, as the other organisation routes);

newest first, cursor-paged like the audit log (``{data, has_more, next_cursor}``, the cursor is the last id
of the previous page: ids are UUIDv7, so id order is time order). Filters: ``from`` and ``to`` (inclusive,
RFC 3339) on the incident's time, and exact matches on ``model`` (the model whose attempt failed),
``deployment``, ``provider``, ``kind``, ``error_class`` and ``client_outcome`` (the last three from their
fixed vocabularies; anything else is a 400 naming the parameter).

``GET /incidents/summary`` and ``GET /orgs/{org_id}/incidents/summary`` total a range by deployment:
``failures`` (failed attempts), ``failovers``, ``fallbacks`` (away from the deployment's model after its
failure there) and ``client_errors`` (failed attempts of requests whose client got an error in the end).
The range is ``from`` (inclusive) to ``to`` (exclusive), by default the last 24 hours, at most 90 days.
Deployments with the most failures come first.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.pages import Page, PageQuery, filters, page_limit_field, paginate
from voidllm.admin.services import Services
from voidllm.bounds import CHOICE, NAME, Bounds, bounded
from voidllm.errors import BadRequestError, NotFoundError
from voidllm.identity import Role
from voidllm.store import tables as t
from voidllm.store.ids import utcnow
from voidllm.usage.incidents import CLIENT_OUTCOMES, ERROR_CLASSES, KINDS

__all__ = [
    "DEFAULT_SUMMARY_RANGE",
    "MAX_RANGE",
    "DeploymentIncidents",
    "IncidentOut",
    "IncidentQuery",
    "IncidentSummary",
    "OrgIncidentQuery",
    "OrgSummaryQuery",
    "SummaryQuery",
    "list_incidents",
    "org_incidents",
    "org_summary",
    "summary",
]

DEFAULT_LIMIT = 50
MAX_RANGE = timedelta(days=90)
DEFAULT_SUMMARY_RANGE = timedelta(hours=24)
KIND = Bounds(max_length=16, choices=KINDS)
ERROR_CLASS = Bounds(max_length=32, choices=ERROR_CLASSES)
CLIENT_OUTCOME = Bounds(max_length=16, choices=CLIENT_OUTCOMES)
ORG_ID = Bounds(max_length=36)


@attrs.frozen
class OrgIncidentQuery(PageQuery):
    """Filters of ``GET /orgs/{org_id}/incidents``; ``from``/``to`` bound the time (inclusive, RFC 3339)."""

    limit: int = page_limit_field(DEFAULT_LIMIT)
    from_: datetime | None = None
    to: datetime | None = None
    model: str | None = bounded(NAME, default=None)
    deployment: str | None = bounded(NAME, default=None)
    provider: str | None = bounded(CHOICE, default=None)
    kind: str | None = bounded(KIND, default=None)
    error_class: str | None = bounded(ERROR_CLASS, default=None)
    client_outcome: str | None = bounded(CLIENT_OUTCOME, default=None)


@attrs.frozen
class IncidentQuery(OrgIncidentQuery):
    """Filters of ``GET /incidents``: those of one organisation's list, and the organisation."""

    org_id: str | None = bounded(ORG_ID, default=None)


@attrs.frozen
class OrgSummaryQuery:
    """``from`` (inclusive) and ``to`` (exclusive), RFC 3339; by default the last 24 hours."""

    from_: datetime | None = None
    to: datetime | None = None


@attrs.frozen
class SummaryQuery(OrgSummaryQuery):
    org_id: str | None = bounded(ORG_ID, default=None)


@attrs.frozen
class IncidentOut:
    """One incident: who asked, which model and deployment failed how, and what the client got."""

    id: str
    created_at: datetime
    request_id: str | None
    org_id: str
    team_id: str | None
    key_id: str
    requested_model: str
    model: str
    deployment: str
    provider: str
    kind: str
    error_class: str
    status_code: int | None
    attempt: int
    client_outcome: str

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> IncidentOut:
        return cls(
            id=row["id"],
            created_at=row["created_at"],
            request_id=row["request_id"],
            org_id=row["org_id"],
            team_id=row["team_id"],
            key_id=row["key_id"],
            requested_model=row["requested_model"],
            model=row["model"],
            deployment=row["deployment"],
            provider=row["provider"],
            kind=row["kind"],
            error_class=row["error_class"],
            status_code=row["status_code"],
            attempt=row["attempt"],
            client_outcome=row["client_outcome"],
        )


@attrs.frozen
class DeploymentIncidents:
    """Totals of one deployment (of one model) over the summary's range."""

    model: str
    deployment: str
    provider: str
    failures: int
    failovers: int
    fallbacks: int
    client_errors: int


@attrs.frozen
class IncidentSummary:
    org_id: str | None
    from_: datetime
    to: datetime
    data: list[DeploymentIncidents]


# -- use cases ------------------------------------------------------------------------------------------


async def list_incidents(services: Services, actor: Actor, query: IncidentQuery) -> Page[IncidentOut]:
    """One page of every organisation's incidents (or ``org_id``'s), newest first.

    Raises:
        PermissionDeniedError: below system admin.
        BadRequestError: ``from`` is after ``to``.
    """
    actor.require(Role.SYSTEM_ADMIN)
    _check_order(query.from_, query.to)
    return await services.store.run(partial(_list_tx, query, query.org_id))


async def org_incidents(
    services: Services, actor: Actor, org_id: str, query: OrgIncidentQuery
) -> Page[IncidentOut]:
    """One page of one organisation's incidents, newest first.

    Raises:
        PermissionDeniedError: below org admin, or another organisation's admin.
        NotFoundError: no such organisation.
        BadRequestError: ``from`` is after ``to``.
    """
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)
    _check_order(query.from_, query.to)
    return await services.store.run(partial(_org_list_tx, query, org_id))


async def summary(services: Services, actor: Actor, query: SummaryQuery) -> IncidentSummary:
    """Totals by deployment over the range, every organisation's (or ``org_id``'s).

    Raises:
        PermissionDeniedError: below system admin.
        BadRequestError: the range is empty, reversed or longer than :data:`MAX_RANGE`.
    """
    actor.require(Role.SYSTEM_ADMIN)
    from_, to = _range(query)
    return await services.store.run(partial(_summary_tx, from_, to, query.org_id))


async def org_summary(
    services: Services, actor: Actor, org_id: str, query: OrgSummaryQuery
) -> IncidentSummary:
    """Totals by deployment of one organisation's incidents; errors as :func:`org_incidents`."""
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)
    from_, to = _range(query)
    return await services.store.run(partial(_org_summary_tx, from_, to, org_id))


def _check_order(from_: datetime | None, to: datetime | None) -> None:
    if from_ is not None and to is not None and from_ > to:
        raise BadRequestError("from must not be after to", code="validation_error", param="from")


def _range(query: OrgSummaryQuery) -> tuple[datetime, datetime]:
    to = query.to or utcnow()
    from_ = query.from_ or to - DEFAULT_SUMMARY_RANGE
    if from_ >= to:
        raise BadRequestError("from must be before to", code="validation_error", param="from")
    if to - from_ > MAX_RANGE:
        raise BadRequestError(
            f"the range from..to must not exceed {MAX_RANGE.days} days", code="validation_error", param="from"
        )
    return from_, to


# -- queries --------------------------------------------------------------------------------------------


def _require_org_exists(conn: sa.Connection, org_id: str) -> None:
    if conn.execute(sa.select(t.organizations.c.id).where(t.organizations.c.id == org_id)).first() is None:
        raise NotFoundError("organization not found")


def _org_list_tx(query: OrgIncidentQuery, org_id: str, conn: sa.Connection) -> Page[IncidentOut]:
    _require_org_exists(conn, org_id)
    return _list_tx(query, org_id, conn)


def _list_tx(query: OrgIncidentQuery, org_id: str | None, conn: sa.Connection) -> Page[IncidentOut]:
    c = t.incidents.c
    equal = (
        (c.org_id, org_id),
        (c.model, query.model),
        (c.deployment, query.deployment),
        (c.provider, query.provider),
        (c.kind, query.kind),
        (c.error_class, query.error_class),
        (c.client_outcome, query.client_outcome),
    )
    conditions = filters(equal, c.created_at, query.from_, query.to)
    select = sa.select(t.incidents).where(*conditions)
    return paginate(conn, select, c.id, query, IncidentOut.from_row, descending=True)


def _org_summary_tx(from_: datetime, to: datetime, org_id: str, conn: sa.Connection) -> IncidentSummary:
    _require_org_exists(conn, org_id)
    return _summary_tx(from_, to, org_id, conn)


def _summary_tx(from_: datetime, to: datetime, org_id: str | None, conn: sa.Connection) -> IncidentSummary:
    c = t.incidents.c

    def count(*conditions: Any) -> Any:
        return sa.func.sum(sa.case((sa.and_(*conditions), 1), else_=0))

    failures = count(c.kind == "failure").label("failures")
    query = (
        sa.select(
            c.model,
            c.deployment,
            c.provider,
            failures,
            count(c.kind == "failover").label("failovers"),
            count(c.kind == "fallback").label("fallbacks"),
            count(c.kind == "failure", c.client_outcome == "error").label("client_errors"),
        )
        .where(c.created_at >= from_, c.created_at < to, *([c.org_id == org_id] if org_id else []))
        .group_by(c.model, c.deployment, c.provider)
        .order_by(failures.desc(), c.model, c.deployment, c.provider)
    )
    data = [
        DeploymentIncidents(
            model=row.model,
            deployment=row.deployment,
            provider=row.provider,
            failures=int(row.failures or 0),
            failovers=int(row.failovers or 0),
            fallbacks=int(row.fallbacks or 0),
            client_errors=int(row.client_errors or 0),
        )
        for row in conn.execute(query)
    ]
    return IncidentSummary(org_id=org_id, from_=from_, to=to, data=data)
