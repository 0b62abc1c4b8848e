"""OpenID Connect sign-in, the protocol part: discovery, keys, the authorization request, the code exchange
and the ID token checks (README "Single sign-on"; who may sign in and what happens then is
:mod:`voidllm.admin.sso_signin`).

The flow is the Authorization Code flow with PKCE (RFC 7636, ``S256``):

1. :func:`new_flow` makes a fresh ``state``, ``nonce`` and code verifier; :meth:`FlowState.seal` seals them
   with the provider's id and the time into the ``voidllm_oidc_state`` cookie (AES-256-GCM under the
   gateway's key, associated data ``oidc-state``: it cannot be read or forged); :func:`authorization_url`
   is where the browser goes.
2. The callback's ``state`` must equal the cookie's (:meth:`FlowState.open` refuses a cookie older than
   :data:`FLOW_TTL`); :meth:`OidcClient.exchange` trades the code for tokens at the token endpoint
   (``client_secret_basic``, with the verifier), and :meth:`OidcClient.verify` checks the ID token.
3. ID token checks (:func:`check_id_token`, with joserfc): a JWS signed with one of the provider's JWKS keys
   by an algorithm of the allowlist (``none`` and HMAC are never accepted: the config and the admin API
   refuse them); ``iss`` equal to the discovered issuer; ``aud`` holding the client id, and ``azp`` equal to
   it when there are several audiences; ``exp``, ``iat`` (and ``nbf`` when present) within
   :data:`LEEWAY` seconds of the wall clock; ``nonce`` equal to the cookie's; a ``sub``.

Caches (:class:`OidcClient`, one per process, over the probes' httpx client): each issuer's discovery
document and each JWKS for :data:`CACHE_TTL` (at most :data:`CACHE_SIZE` of each, the oldest evicted). A token
signed with a key id the cached set does not hold refetches the set once (a key rotation), at most once per
:data:`REFETCH_INTERVAL` per set, so tokens with made-up key ids cannot make the gateway hammer the provider.
Every answer of the provider is bounded (:data:`MAX_DOCUMENT`); the caller bounds the time
(``trio.fail_after``).

Endpoints are https, or http on a loopback host (tests). Where they may be depends on who configured the
provider. The global one (``settings.sso``) is the operator's, who is trusted: it is fetched through
:attr:`OidcClient.http` and may be anywhere. An organisation's provider is set by an organisation admin, so
a hostile one could aim the gateway at its own network (the metadata service, loopback ports, private
subnets): every URL fetched for it (the discovery document, then the ``jwks_uri`` and ``token_endpoint`` that
document names, which come from the remote) follows the MCP servers' URL policy
(:mod:`voidllm.mcp.upstream.ssrf`) unless ``settings.sso.allow_private_issuers``: the URL is checked before
the request (:func:`check_org_url`), and the request goes through :attr:`OidcClient.org_http`, whose guarded
network backend resolves the host itself and connects only to the addresses it checked (so DNS rebinding
cannot slip a private address through). A refusal is a ``provider_error`` saying that private addresses
are not allowed and which setting allows them. The ``authorization_endpoint`` is never fetched by the
gateway (the browser goes there), so it is not checked.

Errors are :class:`OidcError` with a ``reason`` from :data:`SSO_ERRORS`; their messages name what failed (the
step, the claim, an HTTP status) and never a token, a code, a secret or a claim's value other than the
issuer.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import attrs
import orjson
import trio

from voidllm.config.validate import issuer_problem
from voidllm.crypto import CryptoError, Keyring
from voidllm.errors import GatewayError
from voidllm.lazyhttp import Client, resolved
from voidllm.mcp.upstream.ssrf import BlockedAddress, PrivateAddress, check_url

if TYPE_CHECKING:
    import httpx
    from joserfc.jwk import KeySet

# Authlib and joserfc (with the X.509 and key parts of cryptography they pull in: about 100 modules and 10 MB)
# are imported by the functions that use them, on a sign-in: a gateway without single sign-on never loads
# them (tests/test_startup.py).

__all__ = [
    "CACHE_SIZE",
    "CACHE_TTL",
    "FLOW_TTL",
    "LEEWAY",
    "MAX_DOCUMENT",
    "PRIVATE_SETTING",
    "REFETCH_INTERVAL",
    "SSO_ERRORS",
    "Discovery",
    "FlowState",
    "OidcClient",
    "OidcError",
    "Provider",
    "UnknownKeyError",
    "authorization_url",
    "check_id_token",
    "check_org_url",
    "new_flow",
]

SSO_ERRORS = {
    "no_provider": "no single sign-on provider fits this sign-in",
    "state_mismatch": "the sign-in's state is missing, expired, already used or not this browser's",
    "provider_error": "the provider refused or could not be reached (discovery, keys, token exchange)",
    "token_invalid": "the ID token failed a check (signature, algorithm, issuer, audience, time, nonce)",
    "email_unverified": "the provider did not assert a verified email address",
    "domain_not_allowed": "a new user whose email domain is not in allowed_domains",
    "not_provisioned": "a new user, and the provider does not create users (auto_provision false)",
    "local_only": "the email belongs to an account this provider may not sign in (it signs in with its "
    "password, or belongs elsewhere)",
    "account_disabled": "the account or its organisation is deleted or deactivated",
}
"""The ``sso_error`` codes of ``/login?sso_error=<code>`` (README "Single sign-on"), with what each means."""

FLOW_TTL = 600
"""Seconds a sign-in may take from the redirect to the provider to the callback (the cookie's Max-Age)."""
LEEWAY = 60
"""Seconds of clock difference tolerated in ``exp``, ``iat`` and ``nbf``."""
CACHE_TTL = 600.0
"""Seconds a discovery document or a JWKS is kept."""
CACHE_SIZE = 64
"""Issuers (and key sets) kept at most."""
REFETCH_INTERVAL = 30.0
"""Least seconds between two refetches of one key set caused by unknown key ids."""
MAX_DOCUMENT = 1024 * 1024
"""Bytes a discovery document, key set or token answer may have."""
PRIVATE_SETTING = "settings.sso.allow_private_issuers"
"""The setting that lets organisations' providers be on private addresses (module docstring)."""
_STATE_AAD = "oidc-state"


class OidcError(GatewayError):
    """A sign-in that cannot go on; ``reason`` is one of :data:`SSO_ERRORS`."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in SSO_ERRORS, reason
        super().__init__(message)
        self.reason = reason


class UnknownKeyError(OidcError):
    """The ID token names a key id the key set does not hold (a rotation: refetch the set once)."""

    def __init__(self) -> None:
        super().__init__("token_invalid", "the ID token is signed with a key the provider does not publish")


def check_org_url(url: str, *, allow_private: bool) -> None:
    """Refuse a URL of an organisation's provider that the URL policy refuses (not http(s), no valid host, or,
    unless ``allow_private``, this machine or a non-public address written in it); a host name is checked
    again when connecting (:attr:`OidcClient.org_http`).

    Raises:
        BlockedAddress: the URL is not allowed; :class:`PrivateAddress` (naming :data:`PRIVATE_SETTING`)
            when only ``allow_private`` would allow it.
    """
    check_url(url, allow_private=allow_private, setting=PRIVATE_SETTING)


@attrs.frozen
class Provider:
    """One OpenID Provider as a sign-in uses it: the global one (``id`` ``global``) or an organisation's
    (``id`` = the organisation's id, ``org_id`` set). ``org_id`` of the global one is the organisation of
    ``default_org_slug`` when it exists."""

    id: str
    org_id: str | None
    issuer: str
    client_id: str
    client_secret: str = attrs.field(repr=False)
    redirect_url: str | None
    scopes: tuple[str, ...]
    allowed_domains: tuple[str, ...]
    auto_provision: bool
    default_role: str
    group_sync: str
    group_claim: str
    algorithms: tuple[str, ...]

    @property
    def is_global(self) -> bool:
        return self.id == "global"


@attrs.frozen
class Discovery:
    """What the sign-in needs of a provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str

    @classmethod
    def from_document(cls, document: Any, issuer: str) -> Discovery:
        """Read and check a discovery document fetched for ``issuer``.

        Raises:
            OidcError: ``provider_error``: not an object, a missing or non-https endpoint, or an ``issuer``
                that is not the configured one.
        """
        if not isinstance(document, dict):
            raise OidcError("provider_error", "the discovery document is not a JSON object")
        values = {}
        for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            if not isinstance(value, str) or issuer_problem(value) is not None:
                raise OidcError("provider_error", f"the discovery document has no usable {name}")
            values[name] = value
        if values["issuer"].rstrip("/") != issuer.rstrip("/"):
            raise OidcError(
                "provider_error", f"the discovery document is for issuer {values['issuer'][:200]!r}"
            )
        return cls(**values)


@attrs.frozen
class FlowState:
    """One sign-in in flight, carried by the sealed ``voidllm_oidc_state`` cookie."""

    provider: str
    state: str
    nonce: str
    verifier: str = attrs.field(repr=False)
    redirect_uri: str
    created: float

    def seal(self, keyring: Keyring) -> str:
        """The cookie value: this state sealed (confidential and unforgeable), URL-safe."""
        sealed = keyring.encrypt_secret(orjson.dumps(attrs.asdict(self)).decode(), aad=_STATE_AAD)
        return sealed.replace("+", "-").replace("/", "_").rstrip("=")

    @classmethod
    def open(cls, keyring: Keyring, value: str, *, now: float) -> FlowState | None:
        """The state sealed in ``value``; ``None`` when it is not one, was tampered with or is older than
        :data:`FLOW_TTL`."""
        token = value.replace("-", "+").replace("_", "/")
        token += "=" * (-len(token) % 4)
        try:
            fields = orjson.loads(keyring.decrypt_secret(token, aad=_STATE_AAD))
            flow = cls(**{field.name: fields[field.name] for field in attrs.fields(cls)})
        except (CryptoError, orjson.JSONDecodeError, KeyError, TypeError):
            return None
        if not 0 <= now - flow.created <= FLOW_TTL:
            return None
        return flow


def _random() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def new_flow(provider: str, redirect_uri: str, *, now: float) -> FlowState:
    """A fresh sign-in: random ``state``, ``nonce`` and code verifier (256 bits each)."""
    return FlowState(
        provider=provider,
        state=_random(),
        nonce=_random(),
        verifier=_random(),
        redirect_uri=redirect_uri,
        created=now,
    )


def authorization_url(
    discovery: Discovery, provider: Provider, flow: FlowState, *, login_hint: str = ""
) -> str:
    """Where the browser goes to sign in at the provider (Authorization Code with PKCE ``S256``)."""
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    params = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": flow.redirect_uri,
        "scope": " ".join(provider.scopes),
        "state": flow.state,
        "nonce": flow.nonce,
        "code_challenge": create_s256_code_challenge(flow.verifier),
        "code_challenge_method": "S256",
    }
    if login_hint:
        params["login_hint"] = login_hint
    separator = "&" if urlsplit(discovery.authorization_endpoint).query else "?"
    return discovery.authorization_endpoint + separator + urlencode(params, quote_via=quote)


def _invalid(what: str) -> OidcError:
    return OidcError("token_invalid", f"the ID token {what}")


def check_id_token(
    id_token: str, keys: KeySet, *, provider: Provider, issuer: str, nonce: str, now: float
) -> dict[str, Any]:
    """The claims of ``id_token`` after the checks of the module docstring (``now``: Unix seconds).

    Raises:
        UnknownKeyError: the token's key id is not in ``keys``.
        OidcError: ``token_invalid``, naming the check that failed.
    """
    from joserfc import jwt
    from joserfc.errors import (
        BadSignatureError,
        ExpiredTokenError,
        InvalidKeyIdError,
        JoseError,
        MissingClaimError,
    )

    try:
        token = jwt.decode(id_token, keys, algorithms=list(provider.algorithms))
    except InvalidKeyIdError:
        raise UnknownKeyError from None
    except BadSignatureError:
        raise _invalid("has a bad signature") from None
    except JoseError as exc:
        raise _invalid(f"cannot be read ({type(exc).__name__})") from None
    except ValueError:  # joserfc raises ValueError for some malformed compact serialisations
        raise _invalid("cannot be read") from None
    if token.header.get("alg") not in provider.algorithms:  # joserfc checks it; this states the rule
        raise _invalid("is signed with an algorithm that is not allowed")
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        now=int(now),
        leeway=LEEWAY,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": provider.client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise _invalid("has expired") from None
    except MissingClaimError as exc:
        raise _invalid(f"lacks the claim {exc.claim}") from None
    except JoseError as exc:
        raise _invalid(f"has a wrong {getattr(exc, 'claim', 'claim')}") from None
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != provider.client_id:
        raise _invalid("has several audiences and another authorized party (azp)")
    return claims


@attrs.define(eq=False)
class _Cache:
    """A small cache by key with an expiry; the oldest entry goes when it is full."""

    entries: dict[str, tuple[float, Any]] = attrs.Factory(dict)

    def get(self, key: str, now: float) -> Any:
        found = self.entries.get(key)
        return found[1] if found is not None and found[0] > now else None

    def put(self, key: str, value: Any, now: float) -> None:
        self.entries.pop(key, None)
        while len(self.entries) >= CACHE_SIZE:
            del self.entries[next(iter(self.entries))]
        self.entries[key] = (now + CACHE_TTL, value)


@attrs.define(eq=False)
class OidcClient:
    """Talks to OpenID Providers and caches their documents (see the module docstring).

    ``http`` fetches for the global provider (any address); ``org_http`` for organisations' providers: its
    transport must be :func:`voidllm.mcp.upstream.ssrf.guarded_transport` with ``allow_private_issuers``,
    which also allows private addresses in the URLs themselves (:func:`check_org_url`). The methods' ``org``
    (or the provider's :attr:`Provider.is_global`) says whose URL it is; the caches keep the two apart.
    ``clock`` is trio's (cache expiry), ``wall`` the Unix time the ID token's times are checked against.
    """

    http: Client
    org_http: Client
    allow_private_issuers: bool = False
    clock: Callable[[], float] = trio.current_time
    wall: Callable[[], float] = time.time
    _documents: _Cache = attrs.Factory(_Cache)
    _keys: _Cache = attrs.Factory(_Cache)
    _refetched: dict[str, float] = attrs.Factory(dict)

    async def discover(self, issuer: str, *, org: bool) -> Discovery:
        """The issuer's discovery document (cached); ``org``: an organisation's provider's.

        Raises:
            OidcError: ``provider_error``: refused by the URL policy (``org``), unreachable, not 200, not
                JSON, or unusable.
        """
        key = _cache_key(issuer, org=org)
        cached = self._documents.get(key, self.clock())
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        discovery = Discovery.from_document(await self._get_json(url, "discovery document", org=org), issuer)
        self._documents.put(key, discovery, self.clock())
        return discovery

    async def key_set(self, jwks_uri: str, *, org: bool, refresh: bool = False) -> KeySet:
        """The provider's signing keys (cached; ``refresh`` fetches them again); ``org``: an organisation's
        provider's.

        Raises:
            OidcError: ``provider_error``: refused by the URL policy (``org``), unreachable, not 200, or not
                a key set.
        """
        key = _cache_key(jwks_uri, org=org)
        cached = None if refresh else self._keys.get(key, self.clock())
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        document = await self._get_json(jwks_uri, "key set (JWKS)", org=org)
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        try:
            keys = KeySet.import_key_set(document)
        except (JoseError, ValueError, TypeError, KeyError):
            raise OidcError("provider_error", "the key set (JWKS) holds no usable key") from None
        self._keys.put(key, keys, self.clock())
        return keys

    async def exchange(self, provider: Provider, discovery: Discovery, *, code: str, flow: FlowState) -> str:
        """Trade the authorization code for tokens; returns the ID token.

        Raises:
            OidcError: ``provider_error``: the URL policy refused the token endpoint (an organisation's
                provider), or the token endpoint refused (its ``error`` code is named) or answered without an
                ID token.
        """
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.verifier,
        }
        basic = f"{quote(provider.client_id, safe='')}:{quote(provider.client_secret, safe='')}"
        headers = {
            "Authorization": "Basic " + base64.b64encode(basic.encode()).decode(),
            "Accept": "application/json",
        }
        if not provider.client_secret:  # a public client
            form["client_id"] = provider.client_id
            del headers["Authorization"]
        what, org = "token endpoint", not provider.is_global
        http = self._client(discovery.token_endpoint, what, org=org)
        with self._fetching(what, org=org):
            response = await http.post(discovery.token_endpoint, data=form, headers=headers)
        document = _json(response, what, refused=True)
        id_token = document.get("id_token") if isinstance(document, dict) else None
        if not isinstance(id_token, str):
            raise OidcError("provider_error", "the token endpoint answered without an ID token")
        return id_token

    async def verify(
        self, provider: Provider, discovery: Discovery, id_token: str, *, nonce: str
    ) -> dict[str, Any]:
        """The ID token's claims after :func:`check_id_token`; a key id not in the cached set refetches it
        once (rate limited, module docstring).

        Raises:
            OidcError: ``token_invalid`` or ``provider_error`` (the key set cannot be fetched).
        """
        org = not provider.is_global
        keys = await self.key_set(discovery.jwks_uri, org=org)
        check = partial(check_id_token, id_token, provider=provider, issuer=discovery.issuer, nonce=nonce)
        try:
            return check(keys, now=self.wall())
        except UnknownKeyError:
            now = self.clock()
            last = self._refetched.get(discovery.jwks_uri)
            if last is not None and now - last < REFETCH_INTERVAL:
                raise
            self._refetched[discovery.jwks_uri] = now
            if len(self._refetched) > CACHE_SIZE:
                del self._refetched[next(iter(self._refetched))]
        keys = await self.key_set(discovery.jwks_uri, org=org, refresh=True)
        return check(keys, now=self.wall())

    async def _get_json(self, url: str, what: str, *, org: bool) -> Any:
        http = self._client(url, what, org=org)
        with self._fetching(what, org=org):
            response = await http.get(url, headers={"Accept": "application/json"})
        return _json(response, what)

    def _client(self, url: str, what: str, *, org: bool) -> httpx.AsyncClient:
        """The client that fetches ``url`` (the :attr:`http` of the global provider, else :attr:`org_http`
        once the URL policy allowed the URL)."""
        if not org:
            return resolved(self.http)
        try:
            check_org_url(url, allow_private=self.allow_private_issuers)
        except BlockedAddress as exc:
            raise OidcError("provider_error", f"the {what} URL {exc.reason}") from None
        return resolved(self.org_http)

    @contextmanager
    def _fetching(self, what: str, *, org: bool) -> Iterator[None]:
        """Turn a failed request into a ``provider_error``: unreachable, or a host that resolves to a private
        address (refused by :attr:`org_http` when connecting)."""
        import httpx  # loaded at first use (voidllm.lazyhttp)

        try:
            yield
        except httpx.HTTPError as exc:
            raise OidcError("provider_error", f"the {what} is unreachable ({type(exc).__name__})") from None
        except PrivateAddress as exc:
            reason = f"{exc} (allowed with {PRIVATE_SETTING}: true)" if org else str(exc)
            raise OidcError("provider_error", f"the {what} {reason}") from None
        except BlockedAddress as exc:
            raise OidcError("provider_error", f"the {what} {exc}") from None


def _cache_key(url: str, *, org: bool) -> str:
    """Documents fetched for organisations' providers and for the global one are cached apart, so an
    organisation never gets what only the global provider's (unguarded) fetch could reach."""
    return ("org " if org else "global ") + url


def _json(response: httpx.Response, what: str, *, refused: bool = False) -> Any:
    """The JSON body of a provider's answer, bounded; a refusal names the OAuth ``error`` code."""
    body = response.content
    if len(body) > MAX_DOCUMENT:
        raise OidcError("provider_error", f"the {what} answered more than {MAX_DOCUMENT} bytes")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if response.status_code != 200:
        code = document.get("error") if refused and isinstance(document, Mapping) else None
        named = f" ({code[:64]})" if isinstance(code, str) and code.isascii() else ""
        raise OidcError("provider_error", f"the {what} answered HTTP {response.status_code}{named}")
    if document is None:
        raise OidcError("provider_error", f"the {what} is not JSON")
    return document
