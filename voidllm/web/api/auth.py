"""Routes of the management API: logging in and out (with a key, or a browser's cookie session), the
caller's sessions, the login methods."""

from __future__ import annotations

from voidllm.admin import sessions
from voidllm.admin.context import Actor
from voidllm.admin.pages import Page, PageQuery
from voidllm.admin.sessions import AuthProviders, BrowserSessionOut, LoginOut, LoginRequest, SessionOut
from voidllm.store.ids import utcnow
from voidllm.web.api.framework import Call, api
from voidllm.web.browser import cleared_cookies, csrf_token, session_cookies


@api.post(
    "/auth/login",
    body=LoginRequest,
    response=LoginOut,
    public=True,
    tag="auth",
    summary="Log in with email and password; returns a vl_sk_ session key",
    audit=("login", "session"),
)
async def login(call: Call, body: LoginRequest) -> LoginOut:
    out = await sessions.login(call.services, body, ip=call.ip)
    session = call.services.keys.authenticate_key(out.token)
    call.audit_actor = Actor(session, ip=call.ip, request_id=call.request_id)
    return out


@api.post(
    "/auth/session",
    body=LoginRequest,
    response=BrowserSessionOut,
    public=True,
    tag="auth",
    summary="Browser sign-in: the session goes into an HttpOnly cookie (voidllm_session), the CSRF token "
    "into the voidllm_csrf cookie and the body; no key in the body",
    audit=("login", "session"),
    description="Errors as for /auth/login. A request whose Origin is not the gateway's own is refused "
    "(403 csrf_failed). Later requests authenticate with the cookie when they send no Authorization "
    "header; those that change state must send X-CSRF-Token equal to the voidllm_csrf cookie.",
)
async def sign_in(call: Call, body: LoginRequest) -> BrowserSessionOut:
    call.policy.check_origin(call.scope)
    out = await sessions.login(call.services, body, ip=call.ip)
    session = call.services.keys.authenticate_key(out.token)
    call.audit_actor = Actor(session, ip=call.ip, request_id=call.request_id)
    csrf = csrf_token(call.services.keys.hmac_secret, out.token)
    call.set_cookies += session_cookies(out.token, csrf, out.expires_at, utcnow(), secure=call.secure)
    return BrowserSessionOut(user=out.user, expires_at=out.expires_at, csrf_token=csrf)


@api.post(
    "/auth/logout",
    status=204,
    allow=("self",),
    tag="auth",
    summary="End the presenting session (and clear the browser's session cookies)",
    audit=("logout", "session"),
)
async def logout(call: Call) -> None:
    await sessions.logout(call.services, call.actor)
    call.set_cookies += cleared_cookies(secure=call.secure)


@api.get(
    "/auth/sessions",
    query=PageQuery,
    response=Page[SessionOut],
    allow=("self",),
    tag="auth",
    summary="List own live sessions",
)
async def list_sessions(call: Call, query: PageQuery) -> Page[SessionOut]:
    return await sessions.list_sessions(call.services, call.actor, query)


@api.delete(
    "/auth/sessions",
    status=204,
    allow=("self",),
    tag="auth",
    summary="Sign out everywhere: end all own sessions, the presenting one included (API keys stay)",
    audit=("logout_everywhere", "session"),
)
async def logout_everywhere(call: Call) -> None:
    await sessions.logout_everywhere(call.services, call.actor)
    call.set_cookies += cleared_cookies(secure=call.secure)


@api.delete(
    "/auth/sessions/<session_id>",
    status=204,
    allow=("self",),
    tag="auth",
    summary="End one of one's own sessions",
    audit=("revoke", "session"),
)
async def revoke_session(call: Call, session_id: str) -> None:
    await sessions.revoke_session(call.services, call.actor, session_id)


@api.get(
    "/auth/providers", response=AuthProviders, public=True, tag="auth", summary="Available login methods"
)
async def auth_providers(call: Call) -> AuthProviders:
    return await sessions.providers(call.services)
