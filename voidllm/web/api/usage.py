"""Routes of the management API: usage analytics, MCP usage and the dashboard (docs/reference/behaviour.md
1.6)."""

from __future__ import annotations

import typing
from typing import Any

from voidllm.admin import dashboard, usage
from voidllm.admin.dashboard import DashboardStats
from voidllm.admin.usage import (
    McpGroupBy,
    McpUsageQuery,
    McpUsageReport,
    UsageGroupBy,
    UsageQuery,
    UsageReport,
)
from voidllm.codec import converter
from voidllm.errors import BadRequestError
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api


def _group_by_hook(literal: Any) -> None:
    """Structure ``group_by`` (a ``Literal``) with a message that lists the choices and never echoes the value
    sent (cattrs' own message for a ``Literal`` quotes it)."""
    choices = typing.get_args(literal)

    def structure(value: Any, _: type) -> str:
        if value not in choices:
            raise BadRequestError(f"group_by must be one of: {', '.join(choices)}")
        return str(value)

    converter.register_structure_hook_func(lambda cls: cls == literal, structure)


_group_by_hook(UsageGroupBy)
_group_by_hook(McpGroupBy)


@api.get(
    "/usage",
    query=UsageQuery,
    response=UsageReport,
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    tag="usage",
    summary="Usage of every organization in a time range, optionally grouped",
)
async def get_system_usage(call: Call, query: UsageQuery) -> UsageReport:
    return await usage.system_usage(call.services, call.actor, query)


@api.get(
    "/orgs/<org_id>/usage",
    query=UsageQuery,
    response=UsageReport,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag="usage",
    summary="Usage of one organization in a time range, optionally grouped",
)
async def get_org_usage(call: Call, org_id: str, query: UsageQuery) -> UsageReport:
    return await usage.org_usage(call.services, call.actor, org_id, query)


@api.get(
    "/usage/me",
    query=UsageQuery,
    response=UsageReport,
    allow=("member",),
    tag="usage",
    summary="The caller's own usage (a user's, or a team or service-account key's)",
)
async def get_my_usage(call: Call, query: UsageQuery) -> UsageReport:
    return await usage.my_usage(call.services, call.actor, query)


@api.get(
    "/mcp-usage",
    query=McpUsageQuery,
    response=McpUsageReport,
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    tag="usage",
    summary="MCP tool calls of every organization in a time range, optionally grouped",
)
async def get_system_mcp_usage(call: Call, query: McpUsageQuery) -> McpUsageReport:
    return await usage.mcp_system_usage(call.services, call.actor, query)


@api.get(
    "/orgs/<org_id>/mcp-usage",
    query=McpUsageQuery,
    response=McpUsageReport,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag="usage",
    summary="MCP tool calls of one organization in a time range, optionally grouped",
)
async def get_org_mcp_usage(call: Call, org_id: str, query: McpUsageQuery) -> McpUsageReport:
    return await usage.mcp_org_usage(call.services, call.actor, org_id, query)


@api.get(
    "/dashboard/stats",
    response=DashboardStats,
    allow=("member",),
    tag="usage",
    summary="Last 24 hours, active keys, budget warnings and model health in the caller's scope",
)
async def get_dashboard_stats(call: Call) -> DashboardStats:
    return await dashboard.stats(call.services, call.actor)
