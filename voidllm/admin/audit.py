"""Reading the audit log: ``GET /api/v1/audit-logs`` (docs/reference/behaviour.md 1.6), newest first.

System administrators see every organisation's entries (or one, with ``org_id``); organisation
administrators only their own: asking for another organisation is 403. Writing is
:mod:`voidllm.admin.audit_writer`.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.pages import Page, PageQuery, filters, page_limit_field, paginate
from voidllm.admin.services import Services
from voidllm.bounds import Bounds, bounded
from voidllm.errors import BadRequestError
from voidllm.identity import Role
from voidllm.store.tables import audit_logs

DEFAULT_LIMIT = 50
STATUS_CODE = Bounds(minimum=100, maximum=599)
"""An HTTP status, as ``status_code`` filters by it."""


@attrs.frozen
class AuditQuery(PageQuery):
    """Filters of ``GET /audit-logs``; ``from``/``to`` bound ``timestamp`` (inclusive, RFC 3339);
    ``status_code`` is the answer the audited request got (the web UI's status filter)."""

    limit: int = page_limit_field(DEFAULT_LIMIT)
    org_id: str | None = None
    from_: datetime | None = None
    to: datetime | None = None
    actor_id: str | None = None
    resource_type: str | None = None
    action: str | None = None
    status_code: int | None = bounded(STATUS_CODE, default=None)


@attrs.frozen
class AuditLogOut:
    """One audit log entry; ``description`` is the request body as JSON text with secrets redacted."""

    id: str
    timestamp: datetime
    request_id: str | None
    org_id: str | None
    actor_id: str | None
    actor_type: str
    actor_key_id: str | None
    action: str
    resource_type: str
    resource_id: str | None
    description: str
    ip_address: str | None
    status_code: int

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> AuditLogOut:
        return cls(
            id=row["id"],
            timestamp=row["timestamp"],
            request_id=row["request_id"],
            org_id=row["org_id"],
            actor_id=row["actor_id"],
            actor_type=row["actor_type"],
            actor_key_id=row["actor_key_id"],
            action=row["action"],
            resource_type=row["resource_type"],
            resource_id=row["resource_id"],
            description=row["description"],
            ip_address=row["ip_address"],
            status_code=row["status_code"],
        )


async def list_logs(services: Services, actor: Actor, query: AuditQuery) -> Page[AuditLogOut]:
    """One page of audit log entries matching ``query``, newest first.

    Raises:
        PermissionDeniedError: below org admin, or an org admin asking for another organisation.
        BadRequestError: ``from`` is after ``to``.
    """
    actor.require(Role.ORG_ADMIN)
    org_id = query.org_id
    if not actor.is_system_admin:
        if org_id is not None:
            actor.require_org(org_id)
        org_id = actor.org_id
    if query.from_ is not None and query.to is not None and query.from_ > query.to:
        raise BadRequestError("from must not be after to", code="validation_error")
    return await services.store.run(partial(_list_tx, attrs.evolve(query, org_id=org_id)))


def _list_tx(query: AuditQuery, conn: sa.Connection) -> Page[AuditLogOut]:
    c = audit_logs.c
    equal = (
        (c.org_id, query.org_id),
        (c.actor_id, query.actor_id),
        (c.resource_type, query.resource_type),
        (c.action, query.action),
        (c.status_code, query.status_code),
    )
    conditions = filters(equal, c.timestamp, query.from_, query.to)
    select = sa.select(audit_logs).where(*conditions)
    return paginate(conn, select, c.id, query, AuditLogOut.from_row, descending=True)
