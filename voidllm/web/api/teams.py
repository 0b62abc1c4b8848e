"""Routes of the management API: teams and team memberships (docs/reference/behaviour.md 1.6).

Team changes and team memberships are declared at the member gate: who administers a team is decided per
team by the use case (org admins, the team's own team-scoped key, users whose team role is ``team_admin``),
because a user key's role is its org role and never ``team_admin`` (docs/reference/behaviour.md 4).
"""

from __future__ import annotations

from voidllm.admin import memberships, teams
from voidllm.admin.memberships import MemberOut, TeamMemberCreate, TeamMemberUpdate
from voidllm.admin.pages import Page, PageQuery
from voidllm.admin.teams import TeamCreate, TeamOut, TeamUpdate
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api

TEAMS = "teams"
TEAM = "/orgs/<org_id>/teams/<team_id>"
MEMBER = TEAM + "/members/<membership_id>"
ADMINS = "Team admins of this team (by team role or team-scoped key) and org admins."


@api.post(
    "/orgs/<org_id>/teams",
    body=TeamCreate,
    response=TeamOut,
    status=201,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag=TEAMS,
    audit=("create", "team"),
)
async def create_team(call: Call, org_id: str, body: TeamCreate) -> TeamOut:
    """Create a team"""
    return await teams.create(call.services, call.actor, org_id, body)


@api.get(
    "/orgs/<org_id>/teams",
    query=PageQuery,
    response=Page[TeamOut],
    role=Role.MEMBER,
    allow=("member",),
    tag=TEAMS,
)
async def list_teams(call: Call, org_id: str, query: PageQuery) -> Page[TeamOut]:
    """List teams (below org admin: the caller's own)"""
    return await teams.list_teams(call.services, call.actor, org_id, query)


@api.get(TEAM, response=TeamOut, role=Role.MEMBER, allow=("team_member",), tag=TEAMS)
async def get_team(call: Call, org_id: str, team_id: str) -> TeamOut:
    """Get a team"""
    return await teams.get(call.services, call.actor, org_id, team_id)


@api.patch(
    TEAM,
    body=TeamUpdate,
    response=TeamOut,
    role=Role.MEMBER,
    allow=("org_admin", "team_admin(name, slug)"),
    tag=TEAMS,
    audit=("update", "team"),
    description=ADMINS,
)
async def update_team(call: Call, org_id: str, team_id: str, body: TeamUpdate) -> TeamOut:
    """Update a team"""
    return await teams.update(call.services, call.actor, org_id, team_id, body)


@api.delete(TEAM, status=204, role=Role.ORG_ADMIN, allow=("org_admin",), tag=TEAMS, audit=("delete", "team"))
async def delete_team(call: Call, org_id: str, team_id: str) -> None:
    """Delete a team and revoke its keys"""
    await teams.delete(call.services, call.actor, org_id, team_id)


@api.post(
    TEAM + "/members",
    body=TeamMemberCreate,
    response=MemberOut,
    status=201,
    role=Role.MEMBER,
    allow=("team_admin",),
    tag=TEAMS,
    audit=("create", "team_membership"),
    description=ADMINS,
)
async def add_team_member(call: Call, org_id: str, team_id: str, body: TeamMemberCreate) -> MemberOut:
    """Add an organization member to a team"""
    return await memberships.add_team_member(call.services, call.actor, org_id, team_id, body)


@api.get(
    TEAM + "/members",
    query=PageQuery,
    response=Page[MemberOut],
    role=Role.MEMBER,
    allow=("team_admin",),
    tag=TEAMS,
    description=ADMINS,
)
async def list_team_members(call: Call, org_id: str, team_id: str, query: PageQuery) -> Page[MemberOut]:
    """List the members of a team"""
    return await memberships.list_team_members(call.services, call.actor, org_id, team_id, query)


@api.get(MEMBER, response=MemberOut, role=Role.MEMBER, allow=("team_admin",), tag=TEAMS, description=ADMINS)
async def get_team_member(call: Call, org_id: str, team_id: str, membership_id: str) -> MemberOut:
    """Get a team membership"""
    return await memberships.get_team_member(call.services, call.actor, org_id, team_id, membership_id)


@api.patch(
    MEMBER,
    body=TeamMemberUpdate,
    response=MemberOut,
    role=Role.MEMBER,
    allow=("team_admin",),
    tag=TEAMS,
    audit=("update", "team_membership"),
    description=ADMINS,
)
async def update_team_member(
    call: Call, org_id: str, team_id: str, membership_id: str, body: TeamMemberUpdate
) -> MemberOut:
    """Change a member's team role"""
    return await memberships.update_team_member(
        call.services, call.actor, org_id, team_id, membership_id, body
    )


@api.delete(
    MEMBER,
    status=204,
    role=Role.MEMBER,
    allow=("team_admin",),
    tag=TEAMS,
    audit=("delete", "team_membership"),
    description=ADMINS,
)
async def remove_team_member(call: Call, org_id: str, team_id: str, membership_id: str) -> None:
    """Remove a member from a team and revoke their keys bound to it"""
    await memberships.remove_team_member(call.services, call.actor, org_id, team_id, membership_id)
