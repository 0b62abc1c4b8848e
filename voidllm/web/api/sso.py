"""Routes of the management API: single sign-on settings (each organisation's provider, the global one's
read-only view, connection tests) and the sign-in with a provider (``/auth/oidc/login`` and ``/callback``,
which answer with redirects, never JSON)."""

from __future__ import annotations

from voidllm.admin import sso
from voidllm.admin.sso import GlobalSsoOut, OrgSsoIn, OrgSsoOut, SsoTestIn, SsoTestOut
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api

SSO = "sso"
ORG_SSO = "/orgs/<org_id>/sso"


@api.get(ORG_SSO, response=OrgSsoOut, role=Role.ORG_ADMIN, allow=("org_admin",), tag=SSO)
async def get_org_sso(call: Call, org_id: str) -> OrgSsoOut:
    """Get the organization's single sign-on provider (the client secret is never returned)"""
    return await sso.get(call.services, call.actor, org_id)


@api.put(
    ORG_SSO,
    body=OrgSsoIn,
    response=OrgSsoOut,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag=SSO,
    audit=("update", "sso_config"),
    description="Replaces every writable field; client_secret is write-only: omitted keeps the stored one, "
    'required on the first PUT ("" for a public client). local_login false stops password sign-in for '
    "the organization's members who are not system administrators.",
)
async def put_org_sso(call: Call, org_id: str, body: OrgSsoIn) -> OrgSsoOut:
    """Set the organization's single sign-on provider"""
    return await sso.put(call.services, call.actor, org_id, body)


@api.delete(
    ORG_SSO, status=204, role=Role.ORG_ADMIN, allow=("org_admin",), tag=SSO, audit=("delete", "sso_config")
)
async def delete_org_sso(call: Call, org_id: str) -> None:
    """Remove the organization's single sign-on provider"""
    await sso.delete(call.services, call.actor, org_id)


@api.post(
    ORG_SSO + "/test",
    body=SsoTestIn,
    response=SsoTestOut,
    role=Role.ORG_ADMIN,
    allow=("org_admin",),
    tag=SSO,
    description="Fetches the provider's discovery document and key set. The body is optional: an unsaved "
    "form's fields (its issuer is tested), or nothing to test the stored provider.",
)
async def test_org_sso(call: Call, org_id: str, body: SsoTestIn) -> SsoTestOut:
    """Test the connection to a single sign-on provider"""
    return await sso.probe_org(call.services, call.actor, org_id, body)


@api.get("/settings/sso", response=GlobalSsoOut, role=Role.SYSTEM_ADMIN, allow=("system_admin",), tag=SSO)
async def get_global_sso(call: Call) -> GlobalSsoOut:
    """The global single sign-on provider of voidllm.yaml (read-only, without its secret)"""
    return sso.global_view(call.services, call.actor)


@api.post("/settings/sso/test", response=SsoTestOut, role=Role.SYSTEM_ADMIN, allow=("system_admin",), tag=SSO)
async def test_global_sso(call: Call) -> SsoTestOut:
    """Test the connection to the global single sign-on provider"""
    return await sso.probe_global(call.services, call.actor)
