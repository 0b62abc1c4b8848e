"""Logging in and out, and the caller's own login sessions (docs/reference/behaviour.md 1.5; logout, the
session list and "sign out everywhere" are additions: the Go original has none of them).

A browser signs in through the same :func:`login`; the HTTP layer then puts the key into an ``HttpOnly``
cookie instead of the body (:class:`BrowserSessionOut`, :mod:`voidllm.web.browser`).

Login: the throttle (:mod:`voidllm.auth.throttle`; in Redis when it is on) admits the attempt first and
reserves a failure on the email (429 when throttled), then the password is verified in a worker thread; an
unknown email, a wrong password and a user without an organisation all answer 401 "invalid email or
password" after the same database reads and argon2 work (the answer time does not tell whether the account
exists), and their reservation stands as a failure. The right password clears the email's count, whatever
follows. The session's organisation (issue 12):

- ``org_id`` in the body: that organisation, or 403 "you are not a member of this organization";
- else the organisation of the user's most recent session (any ``session_key`` row, live or not) if the user
  is still a member of it;
- else the only organisation the user belongs to;
- else 409 ``conflict`` whose error object also lists ``organizations`` (``id``, ``name``, ``slug``): the
  client signs in again with ``org_id``. Never silently the first.

A success issues a ``vl_sk_`` session key (see :mod:`voidllm.auth.sessions`), puts it into the key cache at
once, and upgrades the stored hash when the hashing parameters have changed.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.pages import Page, PageQuery, paginate
from voidllm.admin.services import Services
from voidllm.admin.sso import SsoRequiredError, any_org_enabled_tx, password_login_blocked_tx
from voidllm.admin.users import live_user
from voidllm.auth.loader import load_live_key
from voidllm.auth.passwords import needs_rehash
from voidllm.auth.sessions import (
    SESSION_KEY_TYPE,
    forget_keys,
    hash_password_off_loop,
    insert_session,
    live_sessions,
    new_session_key,
    revoke_keys,
    verify_password_off_loop,
)
from voidllm.auth.throttle import LoginThrottle, Throttle, normal_email
from voidllm.bus import TOPIC_KEYS
from voidllm.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    TooManyRequestsError,
)
from voidllm.identity import KeyIdentity
from voidllm.store import tables as t
from voidllm.store.ids import utcnow

_INVALID = "invalid email or password"
_NOT_MEMBER = "you are not a member of this organization"
_SEVERAL = "this account belongs to several organizations: sign in again with org_id"


@attrs.frozen
class LoginRequest:
    email: str = ""
    password: str = attrs.field(default="", repr=False)
    org_id: str | None = None


@attrs.frozen
class OrgChoice:
    """An organisation a signing-in user belongs to, as the 409 lists it."""

    id: str
    name: str
    slug: str


@attrs.frozen
class LoginUser:
    id: str
    email: str
    display_name: str
    role: str
    org_id: str
    is_system_admin: bool


@attrs.frozen
class LoginOut:
    token: str = attrs.field(repr=False)
    expires_at: datetime
    user: LoginUser


@attrs.frozen
class BrowserSessionOut:
    """A browser sign-in's answer: the key went into an HttpOnly cookie, never into the body."""

    user: LoginUser
    expires_at: datetime
    csrf_token: str


@attrs.frozen
class SessionOut:
    id: str
    key_hint: str
    created_at: datetime
    expires_at: datetime
    current: bool


@attrs.frozen
class AuthProviders:
    local: bool
    oidc: bool


async def providers(services: Services) -> AuthProviders:
    """Which login methods exist: local passwords always; single sign-on when the global provider or some
    organisation's provider is enabled (:mod:`voidllm.admin.sso`)."""
    oidc = services.config.settings.sso.enabled or await services.store.run(any_org_enabled_tx)
    return AuthProviders(local=True, oidc=oidc)


def _throttle(services: Services) -> Throttle:
    """The server sets ``services.throttle`` (shared through Redis when it is on); else one in memory."""
    if services.throttle is None:
        services.throttle = LoginThrottle()
    throttle: Throttle = services.throttle
    return throttle


async def login(services: Services, req: LoginRequest, *, ip: str | None) -> LoginOut:
    """Check an email and password and open a session in the organisation chosen as the module says.

    Raises:
        BadRequestError: email or password missing.
        TooManyRequestsError: the IP or the email is throttled (``Retry-After`` set).
        AuthenticationError: unknown email, wrong password, or a user without an organisation.
        PermissionDeniedError: the right password, but ``org_id`` names an organisation the user is not in.
        SsoRequiredError: the right password of a user (not a system administrator) of an organisation whose
            provider turned password sign-in off (403 ``sso_required``; break-glass: system admins pass).
        ConflictError: the right password, no ``org_id`` and no way to choose (``extra["organizations"]``).
    """
    if not req.email.strip() or not req.password:
        raise BadRequestError("email and password are required")
    email = normal_email(req.email)
    throttle = _throttle(services)
    try:
        await throttle.admit(ip, email)  # reserves a failure: a burst cannot outrun the lockout
    except TooManyRequestsError as exc:
        raise _with_retry_after(exc) from None
    user, orgs, recent = await services.store.run(partial(_find_user_tx, email=email))
    ok = await verify_password_off_loop(user["password_hash"] if user else None, req.password)
    if not ok or user is None or not orgs:
        raise AuthenticationError(_INVALID)
    await throttle.record_success(email)
    if not user["is_system_admin"] and await services.store.run(
        partial(password_login_blocked_tx, user_id=user["id"])
    ):
        raise SsoRequiredError("this organization signs in with SSO")
    org_id = choose_org(orgs, recent=recent, wanted=req.org_id)
    token, key_hash, hint = new_session_key(services)
    now = utcnow()
    write = partial(
        _open_session_tx, user_id=user["id"], org_id=org_id, key_hash=key_hash, hint=hint, now=now
    )
    _, revoked, entry = await services.store.run(write)
    if entry is None:  # the user or their organisation was deleted in the meantime
        raise AuthenticationError(_INVALID)
    services.keys.put(*entry)
    await forget_keys(services, revoked)
    await services.bus.publish(TOPIC_KEYS, "*")  # the next request may reach another worker process
    if needs_rehash(user["password_hash"]):
        await _rehash(services, user["id"], user["password_hash"], req.password)
    identity = entry[1]
    out_user = LoginUser(
        id=user["id"],
        email=user["email"],
        display_name=user["display_name"],
        role=identity.role.label,
        org_id=identity.org_id,
        is_system_admin=bool(user["is_system_admin"]),
    )
    assert identity.expires_at is not None
    return LoginOut(token=token, expires_at=identity.expires_at, user=out_user)


def _with_retry_after(exc: TooManyRequestsError) -> TooManyRequestsError:
    """The refusal with its ``Retry-After`` seconds also in the error object (``retry_after``), for clients
    that cannot read headers as easily (the sign-in page)."""
    seconds = next((value for name, value in exc.headers if name.lower() == "retry-after"), None)
    if seconds is None or not seconds.isdigit():
        return exc
    extra = {**exc.extra, "retry_after": int(seconds)}
    return TooManyRequestsError(exc.message, headers=exc.headers, extra=extra)


def choose_org(orgs: list[OrgChoice], *, recent: str | None, wanted: str | None) -> str:
    """The organisation a sign-in opens its session in (rules in the module docstring); ``orgs`` not empty.

    Raises:
        PermissionDeniedError: ``wanted`` is not one of ``orgs``.
        ConflictError: nothing wanted, the most recent session's organisation is not one of ``orgs`` and
            there are several.
    """
    ids = [org.id for org in orgs]
    if wanted is not None:
        if wanted not in ids:
            raise PermissionDeniedError(_NOT_MEMBER)
        return wanted
    if recent in ids:
        return str(recent)
    if len(ids) == 1:
        return ids[0]
    raise ConflictError(_SEVERAL, extra={"organizations": [attrs.asdict(org) for org in orgs]})


def _find_user_tx(
    conn: sa.Connection, *, email: str
) -> tuple[sa.RowMapping | None, list[OrgChoice], str | None]:
    """The live user of ``email`` with :func:`org_choices_tx`; for an unknown email the same queries run
    (matching nothing), so the database work does not tell whether the account exists."""
    user = live_user(conn, t.users.c.email == email)
    return (user, *org_choices_tx(conn, user_id=user["id"] if user is not None else ""))


def org_choices_tx(conn: sa.Connection, *, user_id: str) -> tuple[list[OrgChoice], str | None]:
    """The user's live organisations (by name) and the organisation of their most recent session."""
    m, o, k = t.org_memberships, t.organizations, t.api_keys
    rows = conn.execute(
        sa.select(o.c.id, o.c.name, o.c.slug)
        .select_from(m.join(o, o.c.id == m.c.org_id))
        .where(m.c.user_id == user_id, o.c.deleted_at.is_(None))
        .order_by(o.c.name, o.c.id)
    ).mappings()
    orgs = [OrgChoice(id=row["id"], name=row["name"], slug=row["slug"]) for row in rows]
    recent = conn.execute(
        sa.select(k.c.org_id)
        .where(k.c.user_id == user_id, k.c.key_type == SESSION_KEY_TYPE)
        .order_by(k.c.created_at.desc(), k.c.id.desc())
        .limit(1)
    ).scalar()
    return orgs, recent


def _open_session_tx(
    conn: sa.Connection, *, user_id: str, org_id: str, key_hash: str, hint: str, now: datetime
) -> tuple[str, list[str], tuple[str, KeyIdentity] | None]:
    key_id, revoked = insert_session(
        conn, user_id=user_id, org_id=org_id, key_hash=key_hash, hint=hint, now=now
    )
    return key_id, revoked, load_live_key(conn, key_id, now=now)


async def _rehash(services: Services, user_id: str, old_hash: str, password: str) -> None:
    new_hash = await hash_password_off_loop(password)
    u = t.users
    # Only if nobody changed the password meanwhile.
    update = u.update().where(u.c.id == user_id, u.c.password_hash == old_hash).values(password_hash=new_hash)
    await services.store.run(lambda conn: conn.execute(update))


async def logout(services: Services, actor: Actor) -> None:
    """End the session the caller authenticated with."""
    if actor.identity is None or actor.identity.key_type != SESSION_KEY_TYPE:
        raise BadRequestError("only a session key can log out")
    key_id = actor.identity.key_id
    this_key = t.api_keys.c.id == key_id
    revoked = await services.store.run(lambda conn: revoke_keys(conn, this_key, now=utcnow()))
    await forget_keys(services, revoked)


async def logout_everywhere(services: Services, actor: Actor) -> None:
    """End every live session of the calling user, the presenting one included ("sign out everywhere");
    the user's API keys stay."""
    user_id = actor.require_user()
    k = t.api_keys
    where = (k.c.user_id == user_id, k.c.key_type == SESSION_KEY_TYPE)
    revoked = await services.store.run(lambda conn: revoke_keys(conn, *where, now=utcnow()))
    await forget_keys(services, revoked)


async def list_sessions(services: Services, actor: Actor, page: PageQuery) -> Page[SessionOut]:
    """The caller's live sessions, oldest first; ``current`` marks the one making the request."""
    user_id = actor.require_user()
    return await services.store.run(partial(_list_tx, user_id=user_id, current=actor.key_id, page=page))


def _list_tx(conn: sa.Connection, *, user_id: str, current: str | None, page: PageQuery) -> Page[SessionOut]:
    query = live_sessions(user_id, utcnow()).order_by(None)

    def build(row: sa.RowMapping) -> SessionOut:
        return SessionOut(
            id=row["id"],
            key_hint=row["key_hint"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            current=row["id"] == current,
        )

    return paginate(conn, query, t.api_keys.c.id, page, build)


async def revoke_session(services: Services, actor: Actor, session_id: str) -> None:
    """End one of the caller's own sessions; 404 for anyone else's or an already ended one."""
    user_id = actor.require_user()
    k = t.api_keys
    where = (k.c.id == session_id, k.c.user_id == user_id, k.c.key_type == SESSION_KEY_TYPE)
    revoked = await services.store.run(lambda conn: revoke_keys(conn, *where, now=utcnow()))
    if not revoked:
        raise NotFoundError("session not found")
    await forget_keys(services, revoked)
