"""Signing in with an OpenID Provider: which provider, who the person is, what they may join, and the session
(README "Single sign-on"; the protocol is :mod:`voidllm.auth.oidc`, the redirects :mod:`voidllm.web.api.sso`).

**Which provider** (:func:`begin`): the enabled provider of the organisation whose slug ``org`` names; else
the enabled provider of an organisation whose ``allowed_domains`` hold the email's domain, or of an
organisation the email's existing user belongs to; else the global one (``settings.sso``) when it is
enabled; else ``no_provider``.

**Who** (:func:`finish`, after the state, the code exchange and the ID token checks): the user whose
``external_id`` is ``<issuer>|<sub>``; else the user with the provider's verified email, linked to that
external id on the way (an account with another external id, or a system administrator's account or an
account in another organisation reached through an organisation's provider, is never linked: ``local_only``,
so an organisation's admin cannot take over accounts outside it by configuring a provider); else a new user
(no password, ``auth_provider`` ``oidc``) when the provider has ``auto_provision`` and the email's domain is
in ``allowed_domains`` (``domain_not_allowed`` otherwise, ``not_provisioned`` without auto-provisioning),
made a member of the provider's organisation (the global provider's is ``default_org_slug``'s). An existing
user signing in through an organisation's provider joins that organisation on the same terms.

**Which organisation** the session opens in: the organisation's provider's; for the global provider the
organisation of the user's most recent session, else their only one, else ``default_org_slug``'s, else the
first by name.

**Groups** (``group_sync``, in the session's organisation): each name of the ``group_claim`` claim (a list
of strings, or one string; at most :data:`MAX_GROUPS`, each 1..256 characters) is a team of that
organisation marked with ``external_group`` = the name, created when missing (slug from the name, made unique;
a hand-made team with that slug is never taken over). ``additive`` joins the user to each (as
``default_role``: ``member`` or ``team_admin``; an existing membership keeps its role); ``exact`` also
removes the user from the organisation's SSO-made teams that the claim no longer names (never from a hand-made
team); ``off`` does nothing.

A callback's ``state`` is redeemed once: with Redis as a key every process sees (the cooldowns of
:mod:`voidllm.redis.cooldown`), else in this process (and the provider redeems a code once anyway).

The session is the one a password sign-in gets (:mod:`voidllm.admin.sessions`). Every refusal is an
:class:`~voidllm.auth.oidc.OidcError` whose ``reason`` is an ``sso_error`` code, logged with the provider and
its issuer only (never a token, a code or a claim's value).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

import attrs
import orjson
import sqlalchemy as sa
import trio

from voidllm import bounds as b
from voidllm.admin.services import Services
from voidllm.admin.sessions import LoginOut, LoginUser, choose_org, org_choices_tx
from voidllm.admin.sso import global_provider, oidc_client, org_provider
from voidllm.admin.users import live_user
from voidllm.auth.loader import load_live_key
from voidllm.auth.oidc import FLOW_TTL, FlowState, OidcError, Provider, authorization_url, new_flow
from voidllm.auth.sessions import forget_keys, insert_session, new_session_key
from voidllm.auth.throttle import normal_email
from voidllm.bounds import bounded
from voidllm.bus import TOPIC_KEYS
from voidllm.config.settings import slugify
from voidllm.errors import ConflictError, PermissionDeniedError
from voidllm.identity import KeyIdentity
from voidllm.redis.cooldown import MemoryCooldowns
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow

log = logging.getLogger(__name__)

CALLBACK_PATH = "/api/v1/auth/oidc/callback"
"""Where the provider sends the browser back, below the request's own origin (unless ``redirect_url``)."""
PROVIDER_LIMIT = 20.0
"""Seconds the provider's part of one sign-in may take (discovery, token exchange, key set)."""
MAX_GROUPS = 100
"""Groups of one claim mapped to teams at most; the rest are ignored."""
USED_STATES = 10_000
"""States remembered as used at most (without Redis: per process, each for
:data:`~voidllm.auth.oidc.FLOW_TTL`; with Redis the claims are keys there, shared by every process)."""


@attrs.frozen(kw_only=True)
class OidcLoginQuery:
    """``GET /auth/oidc/login``: the email typed on the sign-in page, or an organisation's slug."""

    email: str = bounded(b.NAME, default="")
    org: str = bounded(b.NAME, default="")


@attrs.frozen
class SignInStart:
    """Where to send the browser, and the sealed state for the ``voidllm_oidc_state`` cookie."""

    location: str
    cookie: str = attrs.field(repr=False)


@attrs.define(eq=False)
class UsedStates:
    """States already redeemed in this process, each kept until its flow would have expired anyway."""

    expiry: dict[str, float] = attrs.Factory(dict)

    def redeem(self, state: str, *, now: float, until: float) -> bool:
        """Mark ``state`` used; ``False`` when it already was."""
        for old in [key for key, end in self.expiry.items() if end < now]:
            del self.expiry[old]
        if state in self.expiry:
            return False
        while len(self.expiry) >= USED_STATES:
            del self.expiry[next(iter(self.expiry))]
        self.expiry[state] = until
        return True


_USED = UsedStates()


async def _redeem_state(services: Services, state: str, *, now: float, until: float) -> bool:
    """Mark the state used: in Redis when it is on (every process sees it), else in :data:`_USED`."""
    if isinstance(services.cooldowns, MemoryCooldowns):
        return _USED.redeem(state, now=now, until=until)
    key = "oidc-state:" + hashlib.sha256(state.encode()).hexdigest()
    return await services.cooldowns.claim(key, float(FLOW_TTL)) is None


def _refuse(reason: str, message: str, provider: Provider | None = None) -> OidcError:
    extra = {"reason": reason, "provider": provider.id if provider else None}
    extra["issuer"] = provider.issuer if provider else None
    log.warning("single sign-on refused: %s", message, extra=extra)
    return OidcError(reason, message)


def _domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


# -- which provider --------------------------------------------------------------------------------------


def _default_org_tx(conn: sa.Connection, slug: str) -> str | None:
    o = t.organizations
    return conn.execute(sa.select(o.c.id).where(o.c.slug == slug, o.c.deleted_at.is_(None))).scalar()


def _enabled_rows(conn: sa.Connection, *where: sa.ColumnElement[bool]) -> list[sa.RowMapping]:
    s, o = t.org_sso_config, t.organizations
    query = (
        sa.select(s)
        .select_from(s.join(o, o.c.id == s.c.org_id))
        .where(s.c.enabled.is_(True), o.c.deleted_at.is_(None), *where)
        .order_by(o.c.name, o.c.id)
    )
    return list(conn.execute(query).mappings())


def _pick_tx(conn: sa.Connection, *, email: str, org_slug: str) -> sa.RowMapping | None:
    """The enabled organisation provider for this sign-in (module docstring), or ``None``."""
    if org_slug:
        rows = _enabled_rows(conn, t.organizations.c.slug == org_slug)
        if rows:
            return rows[0]
    if not email:
        return None
    domain = _domain(email)
    for row in _enabled_rows(conn):
        if domain in orjson.loads(row["allowed_domains"]):
            return row
    user = live_user(conn, t.users.c.email == email)
    if user is None:
        return None
    mine = sa.select(t.org_memberships.c.org_id).where(t.org_memberships.c.user_id == user["id"])
    rows = _enabled_rows(conn, t.org_sso_config.c.org_id.in_(mine))
    return rows[0] if rows else None


async def _provider_for(services: Services, *, email: str, org_slug: str) -> Provider | None:
    row = await services.store.run(partial(_pick_tx, email=email, org_slug=org_slug))
    if row is not None:
        return org_provider(services, row)
    return await _global(services)


async def _global(services: Services) -> Provider | None:
    sso = services.config.settings.sso
    if not sso.enabled:
        return None
    org_id = await services.store.run(lambda conn: _default_org_tx(conn, sso.default_org_slug))
    return global_provider(sso, org_id)


async def _provider_by_id(services: Services, provider_id: str) -> Provider | None:
    if provider_id == "global":
        return await _global(services)
    rows = await services.store.run(
        lambda conn: _enabled_rows(conn, t.org_sso_config.c.org_id == provider_id)
    )
    return org_provider(services, rows[0]) if rows else None


async def begin(services: Services, query: OidcLoginQuery, *, origin: str) -> SignInStart:
    """Pick the provider and build its authorization request (module docstring).

    Raises:
        OidcError: ``no_provider``, or ``provider_error`` (discovery failed).
    """
    email = normal_email(query.email) if "@" in query.email else ""
    provider = await _provider_for(services, email=email, org_slug=query.org.strip().lower())
    if provider is None:
        raise _refuse("no_provider", "no enabled provider for this sign-in")
    try:
        with trio.fail_after(PROVIDER_LIMIT):
            discovery = await oidc_client(services).discover(provider.issuer, org=not provider.is_global)
    except OidcError as exc:
        raise _refuse(exc.reason, str(exc), provider) from None
    except trio.TooSlowError:
        raise _refuse("provider_error", "the discovery document took too long", provider) from None
    flow = new_flow(provider.id, provider.redirect_url or origin + CALLBACK_PATH, now=time.time())
    location = authorization_url(discovery, provider, flow, login_hint=email)
    return SignInStart(location=location, cookie=flow.seal(services.keyring))


# -- the callback ----------------------------------------------------------------------------------------


async def finish(services: Services, params: Mapping[str, str], *, cookie: str | None) -> LoginOut:
    """Check the callback, redeem the code, check the ID token, find or make the user, sync the groups and
    open a session (module docstring).

    Raises:
        OidcError: any refusal, with its ``sso_error`` code as ``reason``.
    """
    now = time.time()
    flow = FlowState.open(services.keyring, cookie, now=now) if cookie else None
    state = params.get("state", "")
    if flow is None or not state or state != flow.state:
        raise _refuse("state_mismatch", "the state is missing, expired or not this browser's")
    if not await _redeem_state(services, state, now=now, until=flow.created + FLOW_TTL):
        raise _refuse("state_mismatch", "the state was already used")
    provider = await _provider_by_id(services, flow.provider)
    if provider is None:
        raise _refuse("no_provider", "the provider of this sign-in is no longer enabled")
    if "error" in params or not params.get("code"):
        code = params.get("error", "")[:64]
        raise _refuse("provider_error", f"the provider answered error {code!r}", provider)
    claims = await _redeem(services, provider, params["code"], flow)
    if not isinstance(claims.get("email"), str) or "@" not in claims["email"]:
        raise _refuse("email_unverified", "the ID token has no email", provider)
    if claims.get("email_verified") not in (True, "true"):
        raise _refuse("email_unverified", "the provider did not verify the email", provider)
    groups = _groups(claims.get(provider.group_claim))
    write = partial(
        _sign_in_tx,
        provider=provider,
        external_id=f"{claims['iss']}|{claims['sub']}",
        email=normal_email(claims["email"]),
        name=str(claims.get("name") or "")[:256],
        groups=groups,
        services=services,
        now=utcnow(),
    )
    try:
        user, entry, token, revoked = await services.store.run(write)
    except OidcError as exc:
        raise _refuse(exc.reason, str(exc), provider) from None
    services.keys.put(*entry)
    await forget_keys(services, revoked)
    await services.bus.publish(TOPIC_KEYS, "*")
    identity = entry[1]
    assert identity.expires_at is not None
    log.info("single sign-on", extra={"provider": provider.id, "issuer": provider.issuer})
    out_user = LoginUser(
        id=user["id"],
        email=user["email"],
        display_name=user["display_name"],
        role=identity.role.label,
        org_id=identity.org_id,
        is_system_admin=bool(user["is_system_admin"]),
    )
    return LoginOut(token=token, expires_at=identity.expires_at, user=out_user)


async def _redeem(services: Services, provider: Provider, code: str, flow: FlowState) -> dict[str, Any]:
    client = oidc_client(services)
    try:
        with trio.fail_after(PROVIDER_LIMIT):
            discovery = await client.discover(provider.issuer, org=not provider.is_global)
            id_token = await client.exchange(provider, discovery, code=code, flow=flow)
            return await client.verify(provider, discovery, id_token, nonce=flow.nonce)
    except OidcError as exc:
        raise _refuse(exc.reason, str(exc), provider) from None
    except trio.TooSlowError:
        raise _refuse("provider_error", "the provider took too long", provider) from None


def _groups(value: Any) -> list[str]:
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    found = [name for name in names if isinstance(name, str) and 0 < len(name) <= 256]
    return list(dict.fromkeys(found))[:MAX_GROUPS]


def _sign_in_tx(
    conn: sa.Connection,
    *,
    provider: Provider,
    external_id: str,
    email: str,
    name: str,
    groups: list[str],
    services: Services,
    now: datetime,
) -> tuple[sa.RowMapping, tuple[str, KeyIdentity], str, list[str]]:
    user = _find_or_make_user(
        conn, provider=provider, external_id=external_id, email=email, name=name, now=now
    )
    org_id = _session_org(conn, provider=provider, user_id=user["id"])
    if provider.group_sync != "off":
        _sync_groups(conn, provider=provider, org_id=org_id, user_id=user["id"], groups=groups, now=now)
    token, key_hash, hint = new_session_key(services)
    key_id, revoked = insert_session(
        conn, user_id=user["id"], org_id=org_id, key_hash=key_hash, hint=hint, now=now
    )
    entry = load_live_key(conn, key_id, now=now)
    if entry is None:
        raise OidcError("account_disabled", "the organisation is deactivated")
    return user, entry, token, revoked


def _orgs_of(conn: sa.Connection, user_id: str) -> set[str]:
    m, o = t.org_memberships, t.organizations
    query = (
        sa.select(m.c.org_id)
        .select_from(m.join(o, o.c.id == m.c.org_id))
        .where(m.c.user_id == user_id, o.c.deleted_at.is_(None))
    )
    return set(conn.execute(query).scalars())


def _find_or_make_user(
    conn: sa.Connection, *, provider: Provider, external_id: str, email: str, name: str, now: datetime
) -> sa.RowMapping:
    u = t.users
    user = live_user(conn, u.c.external_id == external_id)
    allowed = _domain(email) in provider.allowed_domains
    if user is None:
        user = live_user(conn, u.c.email == email)
        if user is not None:
            _check_link(conn, user, provider=provider, external_id=external_id, allowed=allowed)
            conn.execute(
                u.update().where(u.c.id == user["id"]).values(external_id=external_id, updated_at=now)
            )
    if user is None:
        _check_new(provider, allowed=allowed)
        user_id = new_id()
        display = name.strip()[:256]
        conn.execute(
            u.insert().values(
                id=user_id,
                email=email,
                display_name=display,
                password_hash=None,
                auth_provider="oidc",
                external_id=external_id,
                created_at=now,
                updated_at=now,
            )
        )
        user = live_user(conn, u.c.id == user_id)
        assert user is not None
    if provider.org_id is not None and provider.org_id not in _orgs_of(conn, user["id"]):
        if not provider.is_global or not _orgs_of(conn, user["id"]):
            _check_new(provider, allowed=allowed)
            _join(conn, provider.org_id, user["id"], now)
    return user


def _check_link(
    conn: sa.Connection, user: sa.RowMapping, *, provider: Provider, external_id: str, allowed: bool
) -> None:
    """May this provider sign in the existing account of its verified email (module docstring)?"""
    if user["external_id"] not in (None, external_id):
        raise OidcError("local_only", "the account is linked to another identity")
    if provider.is_global:
        return
    if user["is_system_admin"] or not allowed or not _orgs_of(conn, user["id"]) <= {provider.org_id}:
        raise OidcError("local_only", "an organisation's provider may not sign in this account")


def _check_new(provider: Provider, *, allowed: bool) -> None:
    if not provider.auto_provision:
        raise OidcError("not_provisioned", "the provider does not create users")
    if not allowed:
        raise OidcError("domain_not_allowed", "the email's domain is not in allowed_domains")
    if provider.org_id is None:
        raise OidcError("no_provider", "settings.sso.default_org_slug names no organisation")


def _join(conn: sa.Connection, org_id: str, user_id: str, now: datetime) -> None:
    m = t.org_memberships
    conn.execute(
        m.insert().values(
            id=new_id(), org_id=org_id, user_id=user_id, role="member", created_at=now, updated_at=now
        )
    )


def _session_org(conn: sa.Connection, *, provider: Provider, user_id: str) -> str:
    if not provider.is_global and provider.org_id is not None:
        return provider.org_id
    orgs, recent = org_choices_tx(conn, user_id=user_id)
    if not orgs:
        raise OidcError("not_provisioned", "the account belongs to no organisation")
    try:
        return choose_org(orgs, recent=recent, wanted=None)
    except (ConflictError, PermissionDeniedError):
        ids = [org.id for org in orgs]
        return provider.org_id if provider.org_id in ids else ids[0]


def _sync_groups(
    conn: sa.Connection, *, provider: Provider, org_id: str, user_id: str, groups: list[str], now: datetime
) -> None:
    tm, mm = t.teams, t.team_memberships
    live = (tm.c.org_id == org_id, tm.c.deleted_at.is_(None))
    made = {
        row["external_group"]: row["id"]
        for row in conn.execute(
            sa.select(tm.c.id, tm.c.external_group).where(*live, tm.c.external_group.is_not(None))
        ).mappings()
    }
    wanted = {group: made.get(group) or _make_team(conn, org_id, group, now) for group in groups}
    joined = set(conn.execute(sa.select(mm.c.team_id).where(mm.c.user_id == user_id)).scalars())
    for team_id in wanted.values():
        if team_id not in joined:
            values = {"id": new_id(), "team_id": team_id, "user_id": user_id, "role": provider.default_role}
            conn.execute(mm.insert().values(**values, created_at=now, updated_at=now))
    if provider.group_sync == "exact":
        stale = set(made.values()) - set(wanted.values())
        if stale:
            conn.execute(mm.delete().where(mm.c.user_id == user_id, mm.c.team_id.in_(stale)))


def _make_team(conn: sa.Connection, org_id: str, group: str, now: datetime) -> str:
    """A team for ``group`` with a free slug (``<slug>``, ``<slug>-sso``, ``<slug>-sso-2``, ...)."""
    tm = t.teams
    base = slugify(group)[:200]
    taken = set(
        conn.execute(sa.select(tm.c.slug).where(tm.c.org_id == org_id, tm.c.slug.like(base + "%"))).scalars()
    )
    candidates = [base, f"{base}-sso", *(f"{base}-sso-{n}" for n in range(2, len(taken) + 3))]
    slug = next(candidate for candidate in candidates if candidate not in taken)
    team_id = new_id()
    conn.execute(
        tm.insert().values(
            id=team_id,
            org_id=org_id,
            name=group,
            slug=slug,
            external_group=group,
            created_at=now,
            updated_at=now,
        )
    )
    return team_id
