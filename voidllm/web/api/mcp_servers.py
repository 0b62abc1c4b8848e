"""Routes of the management API: MCP servers (global, org, team), their tests, tool lists, tool blocklists and
health, and the MCP access allowlists (docs/reference/behaviour.md 1.6)."""

from __future__ import annotations

from voidllm.admin import mcp_blocklist, mcp_servers
from voidllm.admin.access import AccessScope
from voidllm.admin.mcp_access import (
    AvailableMcpServer,
    McpAccess,
    available_servers,
    read_mcp_access,
    replace_mcp_access,
)
from voidllm.admin.mcp_blocklist import BlockedTool, BlockedToolCreate, BlockedToolQuery
from voidllm.admin.mcp_servers import (
    McpHealthOut,
    McpScope,
    McpServerCreate,
    McpServerOut,
    McpServerUpdate,
    McpTestResult,
    McpToolOut,
    McpToolRefresh,
)
from voidllm.admin.pages import Page, PageQuery
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api

_TAG = {"tag": "mcp-servers"}
_ONE = "/mcp-servers/<server_id>"
_ORG = "/orgs/<org_id>"
_TEAM = "/orgs/<org_id>/teams/<team_id>"
_KEY = "/orgs/<org_id>/keys/<key_id>"
_CREATE = {
    "body": McpServerCreate,
    "response": McpServerOut,
    "status": 201,
    "audit": ("create", "mcp_server"),
}
_LIST = {"query": PageQuery, "response": Page[McpServerOut], "role": Role.MEMBER}


@api.get(
    "/mcp-servers/health",
    response=list[McpHealthOut],
    role=Role.MEMBER,
    allow=("member",),
    **_TAG,
    summary="Health of the MCP servers",
)
async def mcp_servers_health(call: Call) -> list[McpHealthOut]:
    return await mcp_servers.health(call.services, call.actor)


@api.post(
    "/mcp-servers",
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    **_CREATE,
    **_TAG,
    summary="Register a global MCP server",
)
async def create_global_mcp_server(call: Call, body: McpServerCreate) -> McpServerOut:
    return await mcp_servers.create(call.services, call.actor, McpScope(), body)


@api.get(
    "/mcp-servers",
    query=PageQuery,
    response=Page[McpServerOut],
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    **_TAG,
    summary="List global MCP servers",
)
async def list_global_mcp_servers(call: Call, query: PageQuery) -> Page[McpServerOut]:
    return await mcp_servers.list_servers(call.services, call.actor, McpScope(), query)


@api.post(
    f"{_ORG}/mcp-servers",
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    **_CREATE,
    **_TAG,
    summary="Register an organization's MCP server",
)
async def create_org_mcp_server(call: Call, org_id: str, body: McpServerCreate) -> McpServerOut:
    return await mcp_servers.create(call.services, call.actor, McpScope(org_id), body)


@api.get(
    f"{_ORG}/mcp-servers",
    **_LIST,
    allow=("member",),
    **_TAG,
    summary="List an organization's and the global MCP servers",
)
async def list_org_mcp_servers(call: Call, org_id: str, query: PageQuery) -> Page[McpServerOut]:
    return await mcp_servers.list_servers(call.services, call.actor, McpScope(org_id), query)


@api.post(
    f"{_TEAM}/mcp-servers",
    role=Role.MEMBER,
    allow=("team_admin",),
    **_CREATE,
    **_TAG,
    summary="Register a team's MCP server",
)
async def create_team_mcp_server(
    call: Call, org_id: str, team_id: str, body: McpServerCreate
) -> McpServerOut:
    return await mcp_servers.create(call.services, call.actor, McpScope(org_id, team_id), body)


@api.get(
    f"{_TEAM}/mcp-servers",
    **_LIST,
    allow=("team_member",),
    **_TAG,
    summary="List a team's, its organization's and the global MCP servers",
)
async def list_team_mcp_servers(
    call: Call, org_id: str, team_id: str, query: PageQuery
) -> Page[McpServerOut]:
    return await mcp_servers.list_servers(call.services, call.actor, McpScope(org_id, team_id), query)


@api.get(
    _ONE, response=McpServerOut, role=Role.MEMBER, allow=("team_member",), **_TAG, summary="Get an MCP server"
)
async def get_mcp_server(call: Call, server_id: str) -> McpServerOut:
    return await mcp_servers.get(call.services, call.actor, server_id)


@api.patch(
    _ONE,
    body=McpServerUpdate,
    response=McpServerOut,
    role=Role.MEMBER,
    allow=("team_admin",),
    **_TAG,
    summary="Update an MCP server",
    audit=("update", "mcp_server"),
)
async def update_mcp_server(call: Call, server_id: str, body: McpServerUpdate) -> McpServerOut:
    return await mcp_servers.update(call.services, call.actor, server_id, body)


@api.delete(
    _ONE,
    status=204,
    role=Role.MEMBER,
    allow=("team_admin",),
    **_TAG,
    summary="Delete an MCP server",
    audit=("delete", "mcp_server"),
)
async def delete_mcp_server(call: Call, server_id: str) -> None:
    await mcp_servers.delete(call.services, call.actor, server_id)


@api.patch(
    f"{_ONE}/activate",
    response=McpServerOut,
    role=Role.MEMBER,
    allow=("team_admin",),
    **_TAG,
    summary="Activate an MCP server",
    audit=("activate", "mcp_server"),
)
async def activate_mcp_server(call: Call, server_id: str) -> McpServerOut:
    return await mcp_servers.set_active(call.services, call.actor, server_id, True)


@api.patch(
    f"{_ONE}/deactivate",
    response=McpServerOut,
    role=Role.MEMBER,
    allow=("team_admin",),
    **_TAG,
    summary="Deactivate an MCP server",
    audit=("deactivate", "mcp_server"),
)
async def deactivate_mcp_server(call: Call, server_id: str) -> McpServerOut:
    return await mcp_servers.set_active(call.services, call.actor, server_id, False)


@api.post(
    f"{_ONE}/test",
    response=McpTestResult,
    role=Role.MEMBER,
    allow=("team_admin",),
    **_TAG,
    summary="Test an MCP server",
    audit=("test", "mcp_server"),
)
async def test_mcp_server(call: Call, server_id: str) -> McpTestResult:
    return await mcp_servers.test(call.services, call.actor, server_id)


@api.get(
    f"{_ONE}/tools",
    response=list[McpToolOut],
    role=Role.MEMBER,
    allow=("team_member",),
    **_TAG,
    summary="An MCP server's cached tool list",
)
async def list_mcp_server_tools(call: Call, server_id: str) -> list[McpToolOut]:
    return await mcp_servers.list_tools(call.services, call.actor, server_id)


@api.post(
    f"{_ONE}/refresh-tools",
    response=McpToolRefresh,
    role=Role.MEMBER,
    allow=("team_admin",),
    **_TAG,
    summary="Fetch an MCP server's tool list now",
    audit=("refresh_tools", "mcp_server"),
)
async def refresh_mcp_server_tools(call: Call, server_id: str) -> McpToolRefresh:
    return await mcp_servers.refresh_tools(call.services, call.actor, server_id)


@api.get(
    f"{_ONE}/blocklist",
    response=list[BlockedTool],
    role=Role.MEMBER,
    allow=("team_member",),
    **_TAG,
    summary="An MCP server's blocked tools",
)
async def list_blocked_mcp_tools(call: Call, server_id: str) -> list[BlockedTool]:
    return await mcp_blocklist.list_blocked(call.services, call.actor, server_id)


@api.post(
    f"{_ONE}/blocklist",
    body=BlockedToolCreate,
    response=BlockedTool,
    status=201,
    role=Role.MEMBER,
    allow=("team_admin",),
    **_TAG,
    summary="Block a tool of an MCP server",
    audit=("create", "mcp_tool_blocklist"),
)
async def block_mcp_tool(call: Call, server_id: str, body: BlockedToolCreate) -> BlockedTool:
    return await mcp_blocklist.block(call.services, call.actor, server_id, body)


@api.delete(
    f"{_ONE}/blocklist",
    query=BlockedToolQuery,
    status=204,
    role=Role.MEMBER,
    allow=("team_admin",),
    **_TAG,
    summary="Unblock a tool of an MCP server",
    audit=("delete", "mcp_tool_blocklist"),
)
async def unblock_mcp_tool(call: Call, server_id: str, query: BlockedToolQuery) -> None:
    await mcp_blocklist.unblock(call.services, call.actor, server_id, query.tool_name)


# -- MCP access allowlists --------------------------------------------------------------------------------

_ACCESS = {"response": McpAccess, "tag": "access"}
_REPLACE = {"body": McpAccess, "audit": ("replace", "mcp_access")}


@api.get(
    f"{_ORG}/mcp-access",
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    **_ACCESS,
    summary="An organization's MCP allowlist",
)
async def get_org_mcp_access(call: Call, org_id: str) -> McpAccess:
    return await read_mcp_access(call.services, call.actor, AccessScope(org_id))


@api.put(
    f"{_ORG}/mcp-access",
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    **_ACCESS,
    **_REPLACE,
    summary="Replace an organization's MCP allowlist",
)
async def put_org_mcp_access(call: Call, org_id: str, body: McpAccess) -> McpAccess:
    return await replace_mcp_access(call.services, call.actor, AccessScope(org_id), body)


@api.get(
    f"{_TEAM}/mcp-access",
    role=Role.MEMBER,
    allow=("team_admin",),
    **_ACCESS,
    summary="A team's MCP allowlist",
)
async def get_team_mcp_access(call: Call, org_id: str, team_id: str) -> McpAccess:
    return await read_mcp_access(call.services, call.actor, AccessScope(org_id, team_id=team_id))


@api.put(
    f"{_TEAM}/mcp-access",
    role=Role.MEMBER,
    allow=("team_admin",),
    **_ACCESS,
    **_REPLACE,
    summary="Replace a team's MCP allowlist",
)
async def put_team_mcp_access(call: Call, org_id: str, team_id: str, body: McpAccess) -> McpAccess:
    return await replace_mcp_access(call.services, call.actor, AccessScope(org_id, team_id=team_id), body)


@api.get(
    f"{_KEY}/mcp-access",
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    **_ACCESS,
    summary="An API key's MCP allowlist",
)
async def get_key_mcp_access(call: Call, org_id: str, key_id: str) -> McpAccess:
    return await read_mcp_access(call.services, call.actor, AccessScope(org_id, key_id=key_id))


@api.put(
    f"{_KEY}/mcp-access",
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    **_ACCESS,
    **_REPLACE,
    summary="Replace an API key's MCP allowlist",
)
async def put_key_mcp_access(call: Call, org_id: str, key_id: str, body: McpAccess) -> McpAccess:
    return await replace_mcp_access(call.services, call.actor, AccessScope(org_id, key_id=key_id), body)


@api.get(
    f"{_ORG}/available-mcp-servers",
    response=list[AvailableMcpServer],
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag="access",
    summary="Global MCP servers an organization can be granted",
)
async def get_available_mcp_servers(call: Call, org_id: str) -> list[AvailableMcpServer]:
    return await available_servers(call.services, call.actor, org_id)
