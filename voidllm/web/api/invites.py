"""Routes of the management API: invitations (managed by org admins, peeked and redeemed by token holders,
accepted or declined by the existing account they are addressed to, signed in)."""

from __future__ import annotations

from voidllm.admin import invites
from voidllm.admin.invites import (
    InviteAnswer,
    InviteCreate,
    InviteCreated,
    InviteOut,
    InvitePeek,
    InviteRedeem,
    Joined,
    PeekQuery,
    Redeemed,
)
from voidllm.admin.pages import Page, PageQuery
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api


@api.post(
    "/orgs/<org_id>/invites",
    body=InviteCreate,
    response=InviteCreated,
    status=201,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag="invites",
    summary="Invite an email; the vl_iv_ token is shown only in this response",
    audit=("create", "invite"),
)
async def create_invite(call: Call, org_id: str, body: InviteCreate) -> InviteCreated:
    return await invites.create_invite(call.services, call.actor, org_id, body)


@api.get(
    "/orgs/<org_id>/invites",
    query=PageQuery,
    response=Page[InviteOut],
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag="invites",
    summary="List an organization's invites with their status",
)
async def list_invites(call: Call, org_id: str, query: PageQuery) -> Page[InviteOut]:
    return await invites.list_invites(call.services, call.actor, org_id, query)


@api.delete(
    "/orgs/<org_id>/invites/<invite_id>",
    status=204,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag="invites",
    summary="Withdraw an invite",
    audit=("delete", "invite"),
)
async def delete_invite(call: Call, org_id: str, invite_id: str) -> None:
    await invites.delete_invite(call.services, call.actor, org_id, invite_id)


@api.get(
    "/invites/peek",
    query=PeekQuery,
    response=InvitePeek,
    public=True,
    tag="invites",
    summary="Look at an invite",
)
async def peek_invite(call: Call, query: PeekQuery) -> InvitePeek:
    return await invites.peek_invite(call.services, query.token)


@api.post(
    "/invites/redeem",
    body=InviteRedeem,
    response=Redeemed,
    status=201,
    public=True,
    tag="invites",
    summary="Redeem an invite: create the account and its membership",
    audit=("redeem", "invite"),
)
async def redeem_invite(call: Call, body: InviteRedeem) -> Redeemed:
    return await invites.redeem_invite(call.services, body)


@api.post(
    "/invites/accept",
    body=InviteAnswer,
    response=Joined,
    status=201,
    allow=("self",),
    tag="invites",
    summary="Accept an invite addressed to the signed-in user: join its organization",
    audit=("accept", "invite"),
)
async def accept_invite(call: Call, body: InviteAnswer) -> Joined:
    return await invites.accept_invite(call.services, call.actor, body)


@api.post(
    "/invites/decline",
    body=InviteAnswer,
    status=204,
    allow=("self",),
    tag="invites",
    summary="Decline an invite addressed to the signed-in user; its token stops working",
    audit=("decline", "invite"),
)
async def decline_invite(call: Call, body: InviteAnswer) -> None:
    await invites.decline_invite(call.services, call.actor, body)
