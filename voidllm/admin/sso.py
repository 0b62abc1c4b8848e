"""Single sign-on settings: each organisation's OpenID Connect provider (``org_sso_config``), the read-only
view of the global one (``settings.sso``), and the connection test (docs/reference/behaviour.md 1.6 "Org
SSO").

Org admins manage their own organisation's provider, system admins any. The client secret is write-only:
sealed to its row (AES-GCM, associated data ``org_sso:<org id>``), never returned (``client_secret_set``
says whether there is one), and redacted from the audit log like every ``*_secret`` field. A PUT replaces
every writable field; a PUT without ``client_secret`` keeps the stored one, and the first PUT needs one
(``""`` makes a public client that signs in with PKCE alone).

``local_login: false`` turns password sign-in off for the organisation's members who are not system
administrators (:func:`password_login_blocked`, checked by :func:`voidllm.admin.sessions.login`): a system
administrator always keeps the local sign-in (break-glass).

The connection test fetches the discovery document and the key set (:class:`voidllm.auth.oidc.OidcClient`,
within :data:`TEST_LIMIT` seconds) and reports what failed; it never sends the client secret anywhere.

An organisation's issuer is set by an organisation admin, so it follows the URL policy of the MCP servers'
URLs (:func:`voidllm.auth.oidc.check_org_url`): unless ``settings.sso.allow_private_issuers``, a PUT or a
test of an issuer on this machine or a non-public address is a 400 ``private_url_not_allowed`` naming
``issuer``; a name that resolves to one is refused when the gateway connects (the test reports it, a
sign-in fails with ``provider_error``), and so is every URL the discovery document names.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any, Literal

import attrs
import orjson
import sqlalchemy as sa
import trio

from voidllm import bounds as b
from voidllm.admin.context import Actor
from voidllm.admin.services import Services
from voidllm.admin.tenancy import live_org
from voidllm.auth.oidc import Discovery, OidcClient, OidcError, Provider, check_org_url
from voidllm.bounds import Bounds, bounded
from voidllm.config.settings import SSOConfig
from voidllm.config.validate import issuer_problem
from voidllm.crypto import aad_for
from voidllm.errors import BadRequestError, NotFoundError, PermissionDeniedError, ServiceUnavailableError
from voidllm.identity import Role
from voidllm.mcp.upstream.ssrf import BlockedAddress, PrivateAddress
from voidllm.store import tables as t
from voidllm.store.ids import utcnow

TEST_LIMIT = 10.0
"""Seconds a connection test may take (discovery and key set together)."""
DEFAULT_SCOPES = ("openid", "email", "profile")
_DOMAIN = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+"
_SCOPES = Bounds(
    max_items=32, items=Bounds(max_length=128, pattern=r"[!#-\[\]-~]+", pattern_means="a scope token")
)
_DOMAINS = Bounds(
    max_items=256,
    items=Bounds(max_length=253, pattern=_DOMAIN, pattern_means="a lowercase domain (example.com)"),
)
_CLAIM = Bounds(max_length=128, pattern=r"[A-Za-z0-9_:./-]+", pattern_means="a claim name")
_NOT_FOUND = "single sign-on is not configured for this organization"


class SsoRequiredError(PermissionDeniedError):
    """A password sign-in of a member of an organisation that signs in with SSO only (``local_login``)."""

    code = "sso_required"


def _issuer(value: str) -> str:
    if (problem := issuer_problem(value)) is not None:
        raise BadRequestError(f"issuer {problem}")
    return value


def _optional_issuer(value: str | None) -> str | None:
    return None if value is None else _issuer(value)


def _org_issuer(services: Services, issuer: str) -> None:
    """Refuse an organisation's issuer that the URL policy refuses (module docstring)."""
    try:
        check_org_url(issuer, allow_private=services.config.settings.sso.allow_private_issuers)
    except PrivateAddress as exc:
        raise BadRequestError(f"issuer {exc.reason}", code="private_url_not_allowed") from None
    except BlockedAddress as exc:
        raise BadRequestError(f"issuer {exc.reason}") from None


def _redirect(value: str | None) -> str | None:
    if value is not None and value != "" and issuer_problem(value) is not None:
        raise BadRequestError("redirect_url must be an https:// URL (http only for 127.0.0.1 or localhost)")
    return value or None


def _scopes(value: list[str]) -> list[str]:
    if "openid" not in value:
        raise BadRequestError("scopes must include openid")
    return value


def _optional_scopes(value: list[str] | None) -> list[str] | None:
    return None if value is None else _scopes(value)


def _not_empty(name: str) -> Any:
    def check(value: str) -> str:
        if not value.strip():
            raise BadRequestError(f"{name} must not be empty")
        return value

    return check


@attrs.frozen(kw_only=True)
class OrgSsoIn:
    """PUT body: every writable field (an omitted one takes its default; an omitted secret is kept)."""

    enabled: bool = True
    issuer: str = bounded(b.URL, converter=_issuer)
    client_id: str = bounded(b.HEADER_VALUE, converter=_not_empty("client_id"))
    client_secret: str | None = bounded(b.HEADER_VALUE, default=None, repr=False)
    redirect_url: str | None = bounded(b.URL, default=None, converter=_redirect)
    scopes: list[str] = bounded(_SCOPES, factory=lambda: list(DEFAULT_SCOPES), converter=_scopes)
    allowed_domains: list[str] = bounded(_DOMAINS, factory=list)
    auto_provision: bool = True
    default_role: Literal["member", "team_admin"] = "member"
    group_sync: Literal["off", "additive", "exact"] = "additive"
    group_claim: str = bounded(_CLAIM, default="groups", converter=_not_empty("group_claim"))
    local_login: bool = True


@attrs.frozen(kw_only=True)
class SsoTestIn:
    """Connection test body: an unsaved form's fields, or nothing (``{}``) to test the stored provider."""

    issuer: str | None = bounded(b.URL, default=None, converter=_optional_issuer)
    client_id: str | None = bounded(b.HEADER_VALUE, default=None)
    client_secret: str | None = bounded(b.HEADER_VALUE, default=None, repr=False)
    redirect_url: str | None = bounded(b.URL, default=None, converter=_redirect)
    scopes: list[str] | None = bounded(_SCOPES, default=None, converter=_optional_scopes)
    enabled: bool | None = None
    allowed_domains: list[str] | None = bounded(_DOMAINS, default=None)
    auto_provision: bool | None = None
    default_role: Literal["member", "team_admin"] | None = None
    group_sync: Literal["off", "additive", "exact"] | None = None
    group_claim: str | None = bounded(_CLAIM, default=None)
    local_login: bool | None = None


@attrs.frozen
class OrgSsoOut:
    org_id: str
    enabled: bool
    issuer: str
    client_id: str
    client_secret_set: bool
    redirect_url: str | None
    scopes: list[str]
    allowed_domains: list[str]
    auto_provision: bool
    default_role: str
    group_sync: str
    group_claim: str
    local_login: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> OrgSsoOut:
        return cls(
            org_id=row["org_id"],
            enabled=bool(row["enabled"]),
            issuer=row["issuer"],
            client_id=row["client_id"],
            client_secret_set=bool(row["client_secret_enc"]),
            redirect_url=row["redirect_url"],
            scopes=orjson.loads(row["scopes"]),
            allowed_domains=orjson.loads(row["allowed_domains"]),
            auto_provision=bool(row["auto_provision"]),
            default_role=row["default_role"],
            group_sync=row["group_sync"],
            group_claim=row["group_claim"],
            local_login=bool(row["local_login"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@attrs.frozen
class GlobalSsoOut:
    """``settings.sso`` of ``voidllm.yaml``, read-only; ``configured`` when an issuer is set."""

    configured: bool
    enabled: bool
    issuer: str
    client_id: str
    client_secret_set: bool
    redirect_url: str | None
    scopes: list[str]
    allowed_domains: list[str]
    auto_provision: bool
    default_role: str
    default_org_slug: str
    group_sync: str
    group_claim: str
    id_token_algorithms: list[str]


@attrs.frozen
class SsoTestOut:
    ok: bool
    issuer: str
    authorization_endpoint: str | None
    jwks_keys: int
    error: str | None


def _require_org_admin(actor: Actor, org_id: str) -> None:
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)


def _select(org_id: str) -> sa.Select[Any]:
    s = t.org_sso_config
    return sa.select(s).where(s.c.org_id == org_id)


def _get_tx(conn: sa.Connection, *, org_id: str) -> sa.RowMapping:
    live_org(conn, org_id)
    row = conn.execute(_select(org_id)).mappings().first()
    if row is None:
        raise NotFoundError(_NOT_FOUND)
    return row


async def get(services: Services, actor: Actor, org_id: str) -> OrgSsoOut:
    """The organisation's provider; 404 when it has none."""
    _require_org_admin(actor, org_id)
    return OrgSsoOut.from_row(await services.store.run(partial(_get_tx, org_id=org_id)))


async def put(services: Services, actor: Actor, org_id: str, req: OrgSsoIn) -> OrgSsoOut:
    """Set the organisation's provider (module docstring: the secret is kept when omitted, the issuer follows
    the URL policy)."""
    _require_org_admin(actor, org_id)
    _org_issuer(services, req.issuer)
    sealed = None
    if req.client_secret:
        sealed = services.keyring.encrypt_secret(req.client_secret, aad=aad_for("org_sso", org_id))
    values = {
        "enabled": req.enabled,
        "issuer": req.issuer,
        "client_id": req.client_id,
        "redirect_url": req.redirect_url,
        "scopes": orjson.dumps(req.scopes).decode(),
        "allowed_domains": orjson.dumps(req.allowed_domains).decode(),
        "auto_provision": req.auto_provision,
        "default_role": req.default_role,
        "group_sync": req.group_sync,
        "group_claim": req.group_claim,
        "local_login": req.local_login,
    }
    write = partial(
        _put_tx, org_id=org_id, values=values, sealed=sealed, secret_sent=req.client_secret is not None
    )
    return OrgSsoOut.from_row(await services.store.run(write))


def _put_tx(
    conn: sa.Connection, *, org_id: str, values: dict[str, Any], sealed: str | None, secret_sent: bool
) -> sa.RowMapping:
    live_org(conn, org_id)
    s = t.org_sso_config
    exists = conn.execute(sa.select(s.c.org_id).where(s.c.org_id == org_id)).first() is not None
    if secret_sent:
        values = {**values, "client_secret_enc": sealed}
    elif not exists:
        raise BadRequestError(
            'client_secret is required when single sign-on is first set ("" for a public client)'
        )
    now = utcnow()
    if exists:
        conn.execute(s.update().where(s.c.org_id == org_id).values(**values, updated_at=now))
    else:
        conn.execute(s.insert().values(org_id=org_id, **values, created_at=now, updated_at=now))
    return conn.execute(_select(org_id)).mappings().one()


async def delete(services: Services, actor: Actor, org_id: str) -> None:
    """Remove the organisation's provider; 404 when it has none."""
    _require_org_admin(actor, org_id)
    await services.store.run(partial(_delete_tx, org_id=org_id))


def _delete_tx(conn: sa.Connection, *, org_id: str) -> None:
    live_org(conn, org_id)
    s = t.org_sso_config
    if conn.execute(s.delete().where(s.c.org_id == org_id)).rowcount == 0:
        raise NotFoundError(_NOT_FOUND)


def global_view(services: Services, actor: Actor) -> GlobalSsoOut:
    """``settings.sso`` without its secret (system admins)."""
    actor.require(Role.SYSTEM_ADMIN)
    sso = services.config.settings.sso
    return GlobalSsoOut(
        configured=bool(sso.issuer),
        enabled=sso.enabled,
        issuer=sso.issuer,
        client_id=sso.client_id,
        client_secret_set=bool(sso.client_secret),
        redirect_url=sso.redirect_url or None,
        scopes=list(sso.scopes),
        allowed_domains=list(sso.allowed_domains),
        auto_provision=sso.auto_provision,
        default_role=sso.default_role,
        default_org_slug=sso.default_org_slug,
        group_sync=sso.group_sync,
        group_claim=sso.group_claim,
        id_token_algorithms=list(sso.id_token_algorithms),
    )


async def probe_org(services: Services, actor: Actor, org_id: str, req: SsoTestIn) -> SsoTestOut:
    """Test the unsaved form's issuer when it names one (400 when the URL policy refuses it), else the stored
    provider (404 without one; a stored issuer the policy refuses now fails the test)."""
    _require_org_admin(actor, org_id)
    issuer = req.issuer
    if issuer is None:
        issuer = (await services.store.run(partial(_get_tx, org_id=org_id)))["issuer"]
    else:
        _org_issuer(services, issuer)
        await services.store.run(lambda conn: live_org(conn, org_id))
    return await _test(services, issuer, org=True)


async def probe_global(services: Services, actor: Actor) -> SsoTestOut:
    """Test ``settings.sso`` (system admins); not ok when it has no issuer."""
    actor.require(Role.SYSTEM_ADMIN)
    issuer = services.config.settings.sso.issuer
    if not issuer:
        error = "settings.sso has no issuer"
        return SsoTestOut(ok=False, issuer="", authorization_endpoint=None, jwks_keys=0, error=error)
    return await _test(services, issuer, org=False)


async def _test(services: Services, issuer: str, *, org: bool) -> SsoTestOut:
    client = oidc_client(services)
    discovery: Discovery | None = None
    try:
        with trio.fail_after(TEST_LIMIT):
            discovery = await client.discover(issuer, org=org)
            keys = await client.key_set(discovery.jwks_uri, org=org, refresh=True)
    except OidcError as exc:
        endpoint = discovery.authorization_endpoint if discovery else None
        return SsoTestOut(
            ok=False, issuer=issuer, authorization_endpoint=endpoint, jwks_keys=0, error=str(exc)
        )
    except trio.TooSlowError:
        error = f"the provider did not answer within {TEST_LIMIT:g} s"
        return SsoTestOut(ok=False, issuer=issuer, authorization_endpoint=None, jwks_keys=0, error=error)
    count = len(list(keys))
    return SsoTestOut(
        ok=True,
        issuer=issuer,
        authorization_endpoint=discovery.authorization_endpoint,
        jwks_keys=count,
        error=None,
    )


def oidc_client(services: Services) -> OidcClient:
    """The process's OpenID Provider client (set by the server; the command line has none)."""
    if services.oidc is None:
        raise ServiceUnavailableError("single sign-on is not available in this process")
    return services.oidc


def global_provider(sso: SSOConfig, org_id: str | None) -> Provider:
    """``settings.sso`` as a :class:`~voidllm.auth.oidc.Provider`; ``org_id``: ``default_org_slug``'s."""
    return Provider(
        id="global",
        org_id=org_id,
        issuer=sso.issuer,
        client_id=sso.client_id,
        client_secret=sso.client_secret,
        redirect_url=sso.redirect_url or None,
        scopes=sso.scopes,
        allowed_domains=sso.allowed_domains,
        auto_provision=sso.auto_provision,
        default_role=sso.default_role,
        group_sync=sso.group_sync,
        group_claim=sso.group_claim,
        algorithms=sso.id_token_algorithms,
    )


def org_provider(services: Services, row: sa.RowMapping) -> Provider:
    """An ``org_sso_config`` row as a :class:`~voidllm.auth.oidc.Provider` (the secret opened); organisation
    providers accept the default algorithms of ``settings.sso.id_token_algorithms``."""
    secret = ""
    if row["client_secret_enc"]:
        secret = services.keyring.decrypt_secret(
            row["client_secret_enc"], aad=aad_for("org_sso", row["org_id"])
        )
    return Provider(
        id=row["org_id"],
        org_id=row["org_id"],
        issuer=row["issuer"],
        client_id=row["client_id"],
        client_secret=secret,
        redirect_url=row["redirect_url"],
        scopes=tuple(orjson.loads(row["scopes"])),
        allowed_domains=tuple(orjson.loads(row["allowed_domains"])),
        auto_provision=bool(row["auto_provision"]),
        default_role=row["default_role"],
        group_sync=row["group_sync"],
        group_claim=row["group_claim"],
        algorithms=services.config.settings.sso.id_token_algorithms,
    )


def password_login_blocked_tx(conn: sa.Connection, *, user_id: str) -> bool:
    """Whether the user belongs to an organisation whose enabled provider turned local sign-in off (the
    caller lets system administrators through)."""
    s, m = t.org_sso_config, t.org_memberships
    query = (
        sa.select(s.c.org_id)
        .select_from(s.join(m, m.c.org_id == s.c.org_id))
        .where(m.c.user_id == user_id, s.c.enabled.is_(True), s.c.local_login.is_(False))
        .limit(1)
    )
    return conn.execute(query).first() is not None


def any_org_enabled_tx(conn: sa.Connection) -> bool:
    """Whether some live organisation has an enabled provider."""
    s, o = t.org_sso_config, t.organizations
    query = (
        sa.select(s.c.org_id)
        .select_from(s.join(o, o.c.id == s.c.org_id))
        .where(s.c.enabled.is_(True), o.c.deleted_at.is_(None))
        .limit(1)
    )
    return conn.execute(query).first() is not None
