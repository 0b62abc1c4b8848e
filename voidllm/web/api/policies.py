"""Routes of the management API: the request and guard policies of organisations, teams, keys and models
(:mod:`voidllm.admin.policies`: the documents, who may read and change them, how changes propagate)."""

from __future__ import annotations

from voidllm.admin import policies
from voidllm.admin.policies import PolicyIn, PolicyOut
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api

TAG = "policies"
ORG = "/orgs/<org_id>/policy"
TEAM = "/orgs/<org_id>/teams/<team_id>/policy"
KEY = "/orgs/<org_id>/keys/<key_id>/policy"
MODEL = "/models/<model_id>/policy"
DOCUMENT = (
    "Body: request (params: allow, deny, bounds; required_headers; allowed_origins) and guard (detectors, "
    "responses), each an object or null; see the README, Request policy. An invalid document is a 400 naming "
    "its path (field), e.g. request.params.bounds.max_tokens.max."
)


@api.get(ORG, response=PolicyOut, role=Role.ORG_ADMIN, allow=("org_admin",), tag=TAG)
async def get_org_policy(call: Call, org_id: str) -> PolicyOut:
    """Get an organization's policies"""
    return await policies.get(call.services, call.actor, "org", org_id)


@api.put(
    ORG,
    body=PolicyIn,
    response=PolicyOut,
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    tag=TAG,
    audit=("update", "policy"),
    description=DOCUMENT,
)
async def put_org_policy(call: Call, org_id: str, body: PolicyIn) -> PolicyOut:
    """Set an organization's policies"""
    return await policies.put(call.services, call.actor, "org", org_id, body=body)


@api.delete(
    ORG, status=204, role=Role.SYSTEM_ADMIN, allow=("system_admin",), tag=TAG, audit=("delete", "policy")
)
async def delete_org_policy(call: Call, org_id: str) -> None:
    """Remove an organization's policies"""
    await policies.delete(call.services, call.actor, "org", org_id)


@api.get(TEAM, response=PolicyOut, role=Role.MEMBER, allow=("team_admin",), tag=TAG)
async def get_team_policy(call: Call, org_id: str, team_id: str) -> PolicyOut:
    """Get a team's policies, with the effective ones"""
    return await policies.get(call.services, call.actor, "team", org_id, team_id)


@api.put(
    TEAM,
    body=PolicyIn,
    response=PolicyOut,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag=TAG,
    audit=("update", "policy"),
    description=DOCUMENT,
)
async def put_team_policy(call: Call, org_id: str, team_id: str, body: PolicyIn) -> PolicyOut:
    """Set a team's policies"""
    return await policies.put(call.services, call.actor, "team", org_id, team_id, body=body)


@api.delete(TEAM, status=204, role=Role.ORG_ADMIN, allow=("org_admin",), tag=TAG, audit=("delete", "policy"))
async def delete_team_policy(call: Call, org_id: str, team_id: str) -> None:
    """Remove a team's policies"""
    await policies.delete(call.services, call.actor, "team", org_id, team_id)


@api.get(KEY, response=PolicyOut, role=Role.MEMBER, allow=("team_admin", "holder"), tag=TAG)
async def get_key_policy(call: Call, org_id: str, key_id: str) -> PolicyOut:
    """Get an API key's policies, with the effective ones"""
    return await policies.get(call.services, call.actor, "key", org_id, key_id)


@api.put(
    KEY,
    body=PolicyIn,
    response=PolicyOut,
    role=Role.MEMBER,
    allow=("team_admin",),
    tag=TAG,
    audit=("update", "policy"),
    description=DOCUMENT + " Set by the admins above the key, never by its holder below org admin.",
)
async def put_key_policy(call: Call, org_id: str, key_id: str, body: PolicyIn) -> PolicyOut:
    """Set an API key's policies"""
    return await policies.put(call.services, call.actor, "key", org_id, key_id, body=body)


@api.delete(KEY, status=204, role=Role.MEMBER, allow=("team_admin",), tag=TAG, audit=("delete", "policy"))
async def delete_key_policy(call: Call, org_id: str, key_id: str) -> None:
    """Remove an API key's policies"""
    await policies.delete(call.services, call.actor, "key", org_id, key_id)


@api.get(MODEL, response=PolicyOut, role=Role.SYSTEM_ADMIN, allow=("system_admin",), tag=TAG)
async def get_model_policy(call: Call, model_id: str) -> PolicyOut:
    """Get a model's policies"""
    return await policies.get(call.services, call.actor, "model", model_id)


@api.put(
    MODEL,
    body=PolicyIn,
    response=PolicyOut,
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    tag=TAG,
    audit=("update", "policy"),
    description=DOCUMENT + " A model's request policy applies its params only.",
)
async def put_model_policy(call: Call, model_id: str, body: PolicyIn) -> PolicyOut:
    """Set a model's policies"""
    return await policies.put(call.services, call.actor, "model", model_id, body=body)


@api.delete(
    MODEL, status=204, role=Role.SYSTEM_ADMIN, allow=("system_admin",), tag=TAG, audit=("delete", "policy")
)
async def delete_model_policy(call: Call, model_id: str) -> None:
    """Remove a model's policies"""
    await policies.delete(call.services, call.actor, "model", model_id)
