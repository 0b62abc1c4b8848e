"""Routes of the management API: users.

``PATCH /users/{id}`` is open to every caller at the route (self service); the use case decides who may
change which account (:func:`voidllm.admin.users.update_user`).
"""

from __future__ import annotations

from voidllm.admin import users
from voidllm.admin.pages import Page, PageQuery
from voidllm.admin.users import UserCreate, UserOut, UserUpdate
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api


@api.post(
    "/users",
    body=UserCreate,
    response=UserOut,
    status=201,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag="users",
    summary="Create a user with an organization membership",
    audit=("create", "user"),
)
async def create_user(call: Call, body: UserCreate) -> UserOut:
    return await users.create_user(call.services, call.actor, body)


@api.get(
    "/users",
    query=PageQuery,
    response=Page[UserOut],
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    tag="users",
    summary="List users",
)
async def list_users(call: Call, query: PageQuery) -> Page[UserOut]:
    return await users.list_users(call.services, call.actor, query)


@api.get(
    "/users/<user_id>",
    response=UserOut,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag="users",
    summary="Get a user",
)
async def get_user(call: Call, user_id: str) -> UserOut:
    return await users.get_user(call.services, call.actor, user_id)


@api.patch(
    "/users/<user_id>",
    body=UserUpdate,
    response=UserOut,
    role=Role.MEMBER,
    tag="users",
    allow=(
        "system_admin",
        "account_admin(display_name, email, password)",
        "self(display_name, email, password)",
    ),
    summary="Update a user (name, email, system admin flag, password)",
    audit=("update", "user"),
    description="Allowed to the user itself (a password or email change needs current_password), a system "
    "admin, or an org admin of every organization the user belongs to.",
)
async def update_user(call: Call, user_id: str, body: UserUpdate) -> UserOut:
    return await users.update_user(call.services, call.actor, user_id, body)


@api.delete(
    "/users/<user_id>",
    status=204,
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    tag="users",
    summary="Delete a user and revoke all their keys",
    audit=("delete", "user"),
)
async def delete_user(call: Call, user_id: str) -> None:
    await users.delete_user(call.services, call.actor, user_id)
