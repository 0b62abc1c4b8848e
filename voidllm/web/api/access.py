"""Routes of the management API: model-access allowlists (org, team, key) and scoped model aliases."""

from __future__ import annotations

from voidllm.admin import aliases
from voidllm.admin.access import AccessScope, ModelAccess, read_model_access, replace_model_access
from voidllm.admin.aliases import AliasCreate, AliasOut
from voidllm.admin.pages import Page, PageQuery
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api

_ORG = "/orgs/<org_id>"
_TEAM = "/orgs/<org_id>/teams/<team_id>"
_KEY = "/orgs/<org_id>/keys/<key_id>"
_ACCESS = {"response": ModelAccess, "tag": "access"}
_REPLACE = {"body": ModelAccess, "audit": ("replace", "model_access")}


@api.get(
    f"{_ORG}/model-access",
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    **_ACCESS,
    summary="An organization's model allowlist",
)
async def get_org_model_access(call: Call, org_id: str) -> ModelAccess:
    return await read_model_access(call.services, call.actor, AccessScope(org_id))


@api.put(
    f"{_ORG}/model-access",
    role=Role.SYSTEM_ADMIN,
    allow=("system_admin",),
    **_ACCESS,
    **_REPLACE,
    summary="Replace an organization's model allowlist",
)
async def put_org_model_access(call: Call, org_id: str, body: ModelAccess) -> ModelAccess:
    return await replace_model_access(call.services, call.actor, AccessScope(org_id), body)


@api.get(
    f"{_TEAM}/model-access",
    role=Role.MEMBER,
    allow=("team_admin",),
    **_ACCESS,
    summary="A team's model allowlist",
)
async def get_team_model_access(call: Call, org_id: str, team_id: str) -> ModelAccess:
    return await read_model_access(call.services, call.actor, AccessScope(org_id, team_id=team_id))


@api.put(
    f"{_TEAM}/model-access",
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    **_ACCESS,
    **_REPLACE,
    summary="Replace a team's model allowlist",
)
async def put_team_model_access(call: Call, org_id: str, team_id: str, body: ModelAccess) -> ModelAccess:
    return await replace_model_access(call.services, call.actor, AccessScope(org_id, team_id=team_id), body)


@api.get(
    f"{_KEY}/model-access",
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    **_ACCESS,
    summary="An API key's model allowlist",
)
async def get_key_model_access(call: Call, org_id: str, key_id: str) -> ModelAccess:
    return await read_model_access(call.services, call.actor, AccessScope(org_id, key_id=key_id))


@api.put(
    f"{_KEY}/model-access",
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    **_ACCESS,
    **_REPLACE,
    summary="Replace an API key's model allowlist",
)
async def put_key_model_access(call: Call, org_id: str, key_id: str, body: ModelAccess) -> ModelAccess:
    return await replace_model_access(call.services, call.actor, AccessScope(org_id, key_id=key_id), body)


_ALIASES = {"role": Role.ORG_ADMIN, "allow": ("org_admin",), "tag": "aliases"}


@api.post(
    f"{_ORG}/model-aliases",
    body=AliasCreate,
    response=AliasOut,
    status=201,
    **_ALIASES,
    summary="Create an organization model alias",
    audit=("create", "model_alias"),
)
async def create_org_alias(call: Call, org_id: str, body: AliasCreate) -> AliasOut:
    return await aliases.create(call.services, call.actor, org_id, None, body)


@api.get(
    f"{_ORG}/model-aliases",
    query=PageQuery,
    response=Page[AliasOut],
    **_ALIASES,
    summary="List an organization's model aliases",
)
async def list_org_aliases(call: Call, org_id: str, query: PageQuery) -> Page[AliasOut]:
    return await aliases.list_aliases(call.services, call.actor, org_id, None, query)


@api.delete(
    f"{_ORG}/model-aliases/<alias_id>",
    status=204,
    **_ALIASES,
    summary="Delete an organization model alias",
    audit=("delete", "model_alias"),
)
async def delete_org_alias(call: Call, org_id: str, alias_id: str) -> None:
    await aliases.delete(call.services, call.actor, org_id, None, alias_id)


@api.post(
    f"{_TEAM}/model-aliases",
    body=AliasCreate,
    response=AliasOut,
    status=201,
    **_ALIASES,
    summary="Create a team model alias",
    audit=("create", "model_alias"),
)
async def create_team_alias(call: Call, org_id: str, team_id: str, body: AliasCreate) -> AliasOut:
    return await aliases.create(call.services, call.actor, org_id, team_id, body)


@api.get(
    f"{_TEAM}/model-aliases",
    query=PageQuery,
    response=Page[AliasOut],
    **_ALIASES,
    summary="List a team's model aliases",
)
async def list_team_aliases(call: Call, org_id: str, team_id: str, query: PageQuery) -> Page[AliasOut]:
    return await aliases.list_aliases(call.services, call.actor, org_id, team_id, query)


@api.delete(
    f"{_TEAM}/model-aliases/<alias_id>",
    status=204,
    **_ALIASES,
    summary="Delete a team model alias",
    audit=("delete", "model_alias"),
)
async def delete_team_alias(call: Call, org_id: str, team_id: str, alias_id: str) -> None:
    await aliases.delete(call.services, call.actor, org_id, team_id, alias_id)
