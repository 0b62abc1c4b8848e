"""Routes of the management API: organizations and their memberships (docs/reference/behaviour.md 1.6)."""

from __future__ import annotations

from voidllm.admin import memberships, orgs
from voidllm.admin.memberships import MemberOut, OrgMemberCreate, OrgMemberUpdate
from voidllm.admin.orgs import OrgCreate, OrgOut, OrgUpdate
from voidllm.admin.pages import Page, PageQuery
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api

ORGS = "organizations"
ORG = "/orgs/<org_id>"
MEMBER = ORG + "/members/<membership_id>"


@api.post(
    "/orgs",
    body=OrgCreate,
    response=OrgOut,
    status=201,
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    tag=ORGS,
    audit=("create", "organization"),
)
async def create_org(call: Call, body: OrgCreate) -> OrgOut:
    """Create an organization"""
    return await orgs.create(call.services, call.actor, body)


@api.get("/orgs", query=PageQuery, response=Page[OrgOut], role=Role.ORG_ADMIN, allow=("org_admin",), tag=ORGS)
async def list_orgs(call: Call, query: PageQuery) -> Page[OrgOut]:
    """List organizations (org admins see their own)"""
    return await orgs.list_orgs(call.services, call.actor, query)


@api.get(ORG, response=OrgOut, role=Role.ORG_ADMIN, allow=("org_admin",), tag=ORGS)
async def get_org(call: Call, org_id: str) -> OrgOut:
    """Get an organization"""
    return await orgs.get(call.services, call.actor, org_id)


@api.patch(
    ORG,
    body=OrgUpdate,
    response=OrgOut,
    role=Role.ORG_ADMIN,
    allow=("system_admin", "org_admin(name, slug)"),
    tag=ORGS,
    audit=("update", "organization"),
)
async def update_org(call: Call, org_id: str, body: OrgUpdate) -> OrgOut:
    """Update an organization"""
    return await orgs.update(call.services, call.actor, org_id, body)


@api.delete(
    ORG,
    status=204,
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    tag=ORGS,
    audit=("delete", "organization"),
)
async def delete_org(call: Call, org_id: str) -> None:
    """Delete an organization and revoke its keys"""
    await orgs.delete(call.services, call.actor, org_id)


@api.post(
    ORG + "/deactivate",
    response=OrgOut,
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    tag=ORGS,
    audit=("deactivate", "organization"),
)
async def deactivate_org(call: Call, org_id: str) -> OrgOut:
    """Deactivate an organization: its keys stop working at once"""
    return await orgs.deactivate(call.services, call.actor, org_id)


@api.post(
    ORG + "/reactivate",
    response=OrgOut,
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    tag=ORGS,
    audit=("reactivate", "organization"),
)
async def reactivate_org(call: Call, org_id: str) -> OrgOut:
    """Reactivate an organization: its keys work again"""
    return await orgs.reactivate(call.services, call.actor, org_id)


@api.post(
    ORG + "/members",
    body=OrgMemberCreate,
    response=MemberOut,
    status=201,
    role=Role.ORG_ADMIN,
    allow=("system_admin",),
    tag=ORGS,
    audit=("create", "org_membership"),
)
async def add_org_member(call: Call, org_id: str, body: OrgMemberCreate) -> MemberOut:
    """Add an existing user to an organization (system admins; org admins send an invite instead)"""
    return await memberships.add_org_member(call.services, call.actor, org_id, body)


@api.get(
    ORG + "/members",
    query=PageQuery,
    response=Page[MemberOut],
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag=ORGS,
)
async def list_org_members(call: Call, org_id: str, query: PageQuery) -> Page[MemberOut]:
    """List the members of an organization"""
    return await memberships.list_org_members(call.services, call.actor, org_id, query)


@api.get(MEMBER, response=MemberOut, role=Role.ORG_ADMIN, allow=("org_admin",), tag=ORGS)
async def get_org_member(call: Call, org_id: str, membership_id: str) -> MemberOut:
    """Get an organization membership"""
    return await memberships.get_org_member(call.services, call.actor, org_id, membership_id)


@api.patch(
    MEMBER,
    body=OrgMemberUpdate,
    response=MemberOut,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag=ORGS,
    audit=("update", "org_membership"),
)
async def update_org_member(call: Call, org_id: str, membership_id: str, body: OrgMemberUpdate) -> MemberOut:
    """Change a member's organization role"""
    return await memberships.update_org_member(call.services, call.actor, org_id, membership_id, body)


@api.delete(
    MEMBER,
    status=204,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag=ORGS,
    audit=("delete", "org_membership"),
)
async def remove_org_member(call: Call, org_id: str, membership_id: str) -> None:
    """Remove a member from an organization and revoke their keys in it"""
    await memberships.remove_org_member(call.services, call.actor, org_id, membership_id)
