"""Routes of the management API: the caller's own account."""

from __future__ import annotations

from voidllm.admin import invites, users
from voidllm.admin.invites import MyInvites
from voidllm.admin.users import AvailableModels, MeOut, PasswordChange
from voidllm.web.api.framework import Call, api


@api.get("/me", response=MeOut, allow=("self",), tag="me", summary="The calling user")
async def get_me(call: Call) -> MeOut:
    return await users.get_me(call.services, call.actor)


@api.post(
    "/me/password",
    body=PasswordChange,
    allow=("self",),
    tag="me",
    summary="Change own password; ends the other sessions",
    audit=("change_password", "user"),
)
async def change_password(call: Call, body: PasswordChange) -> None:
    await users.change_password(call.services, call.actor, body)


@api.get(
    "/me/available-models",
    response=AvailableModels,
    allow=("member",),
    tag="me",
    summary="Models the calling key may use",
)
async def available_models(call: Call) -> AvailableModels:
    return users.available_models(call.services, call.actor)


@api.get(
    "/me/invites",
    response=MyInvites,
    allow=("self",),
    tag="me",
    summary="Open invites addressed to the calling user",
)
async def my_invites(call: Call) -> MyInvites:
    return await invites.my_invites(call.services, call.actor)
