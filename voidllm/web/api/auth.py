"""Routes of the management API: logging in and out, the caller's sessions, the login methods."""

from __future__ import annotations

from voidllm.admin import sessions
from voidllm.admin.context import Actor
from voidllm.admin.pages import Page, PageQuery
from voidllm.admin.sessions import AuthProviders, LoginOut, LoginRequest, SessionOut
from voidllm.web.api.framework import Call, api


@api.post(
    "/auth/login", body=LoginRequest, response=LoginOut, public=True, tag="auth",
    summary="Log in with email and password; returns a vl_sk_ session key", audit=("login", "session"),
)
async def login(call: Call, body: LoginRequest) -> LoginOut:
    out = await sessions.login(call.services, body, ip=call.ip)
    session = call.services.keys.authenticate_key(out.token)
    call.audit_actor = Actor(session, ip=call.ip, request_id=call.request_id)
    return out


@api.post(
    "/auth/logout", status=204, allow=("self",), tag="auth", summary="End the presenting session",
    audit=("logout", "session"),
)
async def logout(call: Call) -> None:
    await sessions.logout(call.services, call.actor)


@api.get(
    "/auth/sessions", query=PageQuery, response=Page[SessionOut], allow=("self",), tag="auth",
    summary="List own live sessions",
)
async def list_sessions(call: Call, query: PageQuery) -> Page[SessionOut]:
    return await sessions.list_sessions(call.services, call.actor, query)


@api.delete(
    "/auth/sessions/<session_id>", status=204, allow=("self",), tag="auth",
    summary="End one of one's own sessions", audit=("revoke", "session"),
)
async def revoke_session(call: Call, session_id: str) -> None:
    await sessions.revoke_session(call.services, call.actor, session_id)


@api.get(
    "/auth/providers", response=AuthProviders, public=True, tag="auth", summary="Available login methods"
)
async def auth_providers(call: Call) -> AuthProviders:
    return sessions.providers()
