"""Routes of the management API: API keys (docs/reference/behaviour.md 1.6; visibility checked by the use
cases)."""

from __future__ import annotations

from voidllm.admin import keys
from voidllm.admin.keys import KeyCreate, KeyCreated, KeyOut, KeyRotation, KeyUpdate
from voidllm.admin.pages import Page, PageQuery
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api

TAG = "keys"
KEYS = "/orgs/<org_id>/keys"
KEY = KEYS + "/<key_id>"


@api.post(
    KEYS,
    body=KeyCreate,
    response=KeyCreated,
    status=201,
    role=Role.MEMBER,
    allow=("org_admin", "self(own user_key)"),
    users_only=True,
    tag=TAG,
    audit=("create", "api_key"),
    description="Returns the plaintext key once. Below org admin: only own user keys.",
)
async def create_key(call: Call, org_id: str, body: KeyCreate) -> KeyCreated:
    """Create an API key"""
    return await keys.create(call.services, call.actor, org_id, body)


@api.get(KEYS, query=PageQuery, response=Page[KeyOut], role=Role.MEMBER, allow=("member",), tag=TAG)
async def list_keys(call: Call, org_id: str, query: PageQuery) -> Page[KeyOut]:
    """List the API keys the caller may see"""
    return await keys.list_keys(call.services, call.actor, org_id, query)


@api.get(KEY, response=KeyOut, role=Role.MEMBER, allow=("team_admin", "holder"), tag=TAG)
async def get_key(call: Call, org_id: str, key_id: str) -> KeyOut:
    """Get an API key"""
    return await keys.get(call.services, call.actor, org_id, key_id)


@api.patch(
    KEY,
    body=KeyUpdate,
    response=KeyOut,
    role=Role.MEMBER,
    allow=("team_admin", "holder(name)"),
    tag=TAG,
    audit=("update", "api_key"),
)
async def update_key(call: Call, org_id: str, key_id: str, body: KeyUpdate) -> KeyOut:
    """Update an API key's name, limits or expiry"""
    return await keys.update(call.services, call.actor, org_id, key_id, body)


@api.delete(
    KEY, status=204, role=Role.MEMBER, allow=("team_admin", "holder"), tag=TAG, audit=("delete", "api_key")
)
async def delete_key(call: Call, org_id: str, key_id: str) -> None:
    """Revoke an API key at once"""
    await keys.delete(call.services, call.actor, org_id, key_id)


@api.post(
    KEY + "/rotate",
    response=KeyRotation,
    role=Role.MEMBER,
    allow=("org_admin", "holder"),
    tag=TAG,
    audit=("rotate", "api_key"),
    description="The old key keeps working for at most 24 hours.",
)
async def rotate_key(call: Call, org_id: str, key_id: str) -> KeyRotation:
    """Rotate an API key"""
    return await keys.rotate(call.services, call.actor, org_id, key_id)
