"""Routes of the management API: the audit log (docs/reference/behaviour.md 1.6)."""

from __future__ import annotations

from voidllm.admin import audit
from voidllm.admin.audit import AuditLogOut, AuditQuery
from voidllm.admin.pages import Page
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api


@api.get(
    "/audit-logs",
    query=AuditQuery,
    response=Page[AuditLogOut],
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag="audit",
    summary="List audit log entries, newest first",
)
async def list_audit_logs(call: Call, query: AuditQuery) -> Page[AuditLogOut]:
    return await audit.list_logs(call.services, call.actor, query)
