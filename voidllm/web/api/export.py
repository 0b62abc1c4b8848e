"""Routes of the management API: usage export and cost report of an organisation (issue 7 point 4)."""

from __future__ import annotations

from voidllm.admin import export
from voidllm.admin.export import CostReport, CostReportQuery, ExportQuery
from voidllm.identity import Role
from voidllm.web.api.framework import Call, Streamed, api


@api.get(
    "/orgs/<org_id>/usage/export",
    query=ExportQuery,
    produces="text/csv",
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag="usage",
    summary="Export the organization's usage events in a time range as CSV (streamed)",
)
async def export_usage(call: Call, org_id: str, query: ExportQuery) -> Streamed:
    chunks = await export.export_usage(call.services, call.actor, org_id, query)
    day = f"{query.from_:%Y%m%d}-{query.to:%Y%m%d}"
    return Streamed("text/csv; charset=utf-8", f"usage-{org_id}-{day}.csv", chunks)


@api.get(
    "/orgs/<org_id>/usage/cost-report",
    query=CostReportQuery,
    response=CostReport,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag="usage",
    summary="Cost of the organization's usage in a time range: per model, per day, top spenders",
)
async def get_cost_report(call: Call, org_id: str, query: CostReportQuery) -> CostReport:
    return await export.cost_report(call.services, call.actor, org_id, query)
