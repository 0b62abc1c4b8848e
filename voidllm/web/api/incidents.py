"""Routes of the management API: the incident log (upstream failures, failovers, fallbacks;
:mod:`voidllm.admin.incidents`)."""

from __future__ import annotations

from voidllm.admin import incidents
from voidllm.admin.incidents import (
    IncidentOut,
    IncidentQuery,
    IncidentSummary,
    OrgIncidentQuery,
    OrgSummaryQuery,
    SummaryQuery,
)
from voidllm.admin.pages import Page
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api


@api.get(
    "/incidents",
    query=IncidentQuery,
    response=Page[IncidentOut],
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    tag="incidents",
    summary="List upstream incidents of every organization, newest first",
)
async def list_incidents(call: Call, query: IncidentQuery) -> Page[IncidentOut]:
    return await incidents.list_incidents(call.services, call.actor, query)


@api.get(
    "/incidents/summary",
    query=SummaryQuery,
    response=IncidentSummary,
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    tag="incidents",
    summary="Incident totals by deployment over a time range, every organization",
)
async def incidents_summary(call: Call, query: SummaryQuery) -> IncidentSummary:
    return await incidents.summary(call.services, call.actor, query)


@api.get(
    "/orgs/<org_id>/incidents",
    query=OrgIncidentQuery,
    response=Page[IncidentOut],
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag="incidents",
    summary="List one organization's upstream incidents, newest first",
)
async def list_org_incidents(call: Call, org_id: str, query: OrgIncidentQuery) -> Page[IncidentOut]:
    return await incidents.org_incidents(call.services, call.actor, org_id, query)


@api.get(
    "/orgs/<org_id>/incidents/summary",
    query=OrgSummaryQuery,
    response=IncidentSummary,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag="incidents",
    summary="Incident totals by deployment over a time range, one organization",
)
async def org_incidents_summary(call: Call, org_id: str, query: OrgSummaryQuery) -> IncidentSummary:
    return await incidents.org_summary(call.services, call.actor, org_id, query)
