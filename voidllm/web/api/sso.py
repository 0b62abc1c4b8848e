"""Routes of the management API: single sign-on settings (each organisation's provider, the global one's
read-only view, connection tests) and the sign-in with a provider (``/auth/oidc/login`` and ``/callback``,
which answer with redirects, never JSON)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from voidllm.admin import sso, sso_signin
from voidllm.admin.context import Actor
from voidllm.admin.services import AuditEntry
from voidllm.admin.sso import GlobalSsoOut, OrgSsoIn, OrgSsoOut, SsoTestIn, SsoTestOut
from voidllm.admin.sso_signin import OidcLoginQuery
from voidllm.auth.oidc import FLOW_TTL, SSO_ERRORS, OidcError
from voidllm.identity import Role
from voidllm.store.ids import utcnow
from voidllm.web.api.framework import Call, Redirect, api
from voidllm.web.browser import cookies, csrf_token, session_cookies

SSO = "sso"
STATE_COOKIE = "voidllm_oidc_state"
STATE_PATH = "/api/v1/auth/oidc"
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


@api.get(
    "/auth/oidc/login",
    query=OidcLoginQuery,
    status=302,
    public=True,
    tag="auth",
    summary="Sign in with single sign-on: redirects to the OpenID Provider (or to /login?sso_error=<code>)",
    description="The provider is the organization's whose slug is org, else the one whose allowed_domains "
    "hold the email's domain (or the existing user's organization's), else the global one. Sets the "
    "HttpOnly cookie voidllm_oidc_state (SameSite=Lax, Path=/api/v1/auth/oidc, 10 minutes): the sealed "
    "state, nonce and PKCE verifier of this sign-in.",
)
async def oidc_login(call: Call, query: OidcLoginQuery) -> Redirect:
    try:
        start = await sso_signin.begin(call.services, query, origin=call.policy.origin(call.scope))
    except OidcError as exc:
        return Redirect(_failed(exc.reason))
    call.set_cookies.append(_state_cookie(start.cookie, FLOW_TTL, secure=call.secure))
    return Redirect(start.location)


@api.get(
    "/auth/oidc/callback",
    status=302,
    public=True,
    tag="auth",
    summary="Where the OpenID Provider sends the browser back: signs in and redirects to / (or to "
    "/login?sso_error=<code>)",
    description="Query: code and state (or error) as the provider sends them; other parameters are ignored. "
    "Success sets the same session cookies as POST /auth/session (voidllm_session, voidllm_csrf); every "
    "answer clears voidllm_oidc_state. sso_error codes: " + ", ".join(SSO_ERRORS) + ".",
)
async def oidc_callback(call: Call) -> Redirect:
    call.set_cookies.append(_state_cookie("", 0, secure=call.secure))
    params = dict(parse_qsl(bytes(call.scope.get("query_string", b"")).decode("latin-1")))
    try:
        out = await sso_signin.finish(call.services, params, cookie=cookies(call.scope).get(STATE_COOKIE))
    except OidcError as exc:
        return Redirect(_failed(exc.reason))
    actor = Actor(call.services.keys.authenticate_key(out.token), ip=call.ip, request_id=call.request_id)
    call.services.audit.record(
        AuditEntry(actor, "login", "session", out.user.id, out.user.org_id, 302, {"method": "oidc"})
    )
    csrf = csrf_token(call.services.keys.hmac_secret, out.token)
    call.set_cookies += session_cookies(out.token, csrf, out.expires_at, utcnow(), secure=call.secure)
    return Redirect(_ROOT)


# Relative to /api/v1/auth/oidc/{login,callback}, so that behind a proxy serving the gateway under a sub-path
# (and stripping it) the browser stays under that sub-path: four levels up is the application's root.
_ROOT = "../../../../"


def _failed(reason: str) -> str:
    return _ROOT + "login?" + urlencode({"sso_error": reason})


def _state_cookie(value: str, max_age: int, *, secure: bool) -> str:
    """``voidllm_oidc_state``: SameSite=Lax, as it must come back on the provider's cross-site redirect."""
    parts = [
        f"{STATE_COOKIE}={value}",
        f"Path={STATE_PATH}",
        f"Max-Age={max_age}",
        "SameSite=Lax",
        "HttpOnly",
    ]
    return "; ".join([*parts, "Secure"] if secure else parts)
