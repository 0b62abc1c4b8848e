"""Routes of the management API: service accounts (docs/reference/behaviour.md 1.6; scope checked by the use
cases)."""

from __future__ import annotations

from voidllm.admin import service_accounts as accounts
from voidllm.admin.pages import Page, PageQuery
from voidllm.admin.service_accounts import ServiceAccountCreate, ServiceAccountOut, ServiceAccountUpdate
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api

TAG = "service-accounts"
ACCOUNTS = "/orgs/<org_id>/service-accounts"
ACCOUNT = ACCOUNTS + "/<sa_id>"
SCOPE = "Org-scoped accounts: org admins. Team-scoped accounts: admins of that team and org admins."


@api.post(
    ACCOUNTS,
    body=ServiceAccountCreate,
    response=ServiceAccountOut,
    status=201,
    role=Role.MEMBER,
    allow=("team_admin",),
    tag=TAG,
    audit=("create", "service_account"),
    description=SCOPE,
)
async def create_service_account(call: Call, org_id: str, body: ServiceAccountCreate) -> ServiceAccountOut:
    """Create a service account"""
    return await accounts.create(call.services, call.actor, org_id, body)


@api.get(
    ACCOUNTS,
    query=PageQuery,
    response=Page[ServiceAccountOut],
    role=Role.MEMBER,
    allow=("member",),
    tag=TAG,
    description=SCOPE,
)
async def list_service_accounts(call: Call, org_id: str, query: PageQuery) -> Page[ServiceAccountOut]:
    """List the service accounts the caller manages"""
    return await accounts.list_accounts(call.services, call.actor, org_id, query)


@api.get(
    ACCOUNT, response=ServiceAccountOut, role=Role.MEMBER, allow=("team_admin",), tag=TAG, description=SCOPE
)
async def get_service_account(call: Call, org_id: str, sa_id: str) -> ServiceAccountOut:
    """Get a service account"""
    return await accounts.get(call.services, call.actor, org_id, sa_id)


@api.patch(
    ACCOUNT,
    body=ServiceAccountUpdate,
    response=ServiceAccountOut,
    role=Role.MEMBER,
    allow=("team_admin",),
    tag=TAG,
    audit=("update", "service_account"),
    description=SCOPE,
)
async def update_service_account(
    call: Call, org_id: str, sa_id: str, body: ServiceAccountUpdate
) -> ServiceAccountOut:
    """Rename a service account"""
    return await accounts.update(call.services, call.actor, org_id, sa_id, body)


@api.delete(
    ACCOUNT,
    status=204,
    role=Role.MEMBER,
    allow=("team_admin",),
    tag=TAG,
    audit=("delete", "service_account"),
    description=SCOPE,
)
async def delete_service_account(call: Call, org_id: str, sa_id: str) -> None:
    """Delete a service account and revoke its keys"""
    await accounts.delete(call.services, call.actor, org_id, sa_id)
