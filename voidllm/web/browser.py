"""Browser sessions: the session cookie, its CSRF defence, and what a request says about its own origin.

A browser signs in with ``POST /api/v1/auth/session`` and gets two cookies (issue 15,
docs/reference/behaviour.md 1.5 adapted):

- ``voidllm_session``: the ``vl_sk_`` session key itself; ``HttpOnly`` (no page script can read it),
  ``SameSite=Strict``, ``Path=/``, ``Max-Age`` until the session expires, ``Secure`` when the request came
  over https (:meth:`BrowserPolicy.is_https`);
- ``voidllm_csrf``: the CSRF token, readable by the page's scripts (not ``HttpOnly``), same other flags.

Any ``/api/v1`` route and the playground tunnel accept the session cookie when the request has no
``Authorization`` or ``X-Api-Key`` header; such a header always wins, so API clients are unchanged. A
cookie-authenticated request with a method other than GET, HEAD or OPTIONS must pass :func:`check_csrf`:
header ``X-CSRF-Token`` equal to the ``voidllm_csrf`` cookie (double submit) and to the token derived from the
session key (so a cookie planted by a sibling domain cannot be paired with a header of the attacker's
choosing), and, when the request has an ``Origin``, that origin must be the request's own
(:meth:`BrowserPolicy.origin`). The token is ``HMAC-SHA256(hmac secret, "voidllm-csrf" + session key)``:
nothing to store, different for every session, and it tells nothing about the key. A refusal is 403
``csrf_failed``.

Proxies. ``X-Forwarded-Proto``, ``X-Forwarded-Host`` and ``X-Forwarded-For`` count only from the addresses
of ``settings.trusted_proxies``; from anyone else they are ignored (a client cannot make the gateway believe
it came over https, or from another address). The client's address (:meth:`BrowserPolicy.client_address`: the
per-IP login limit and the audit log's IP) is the peer's, or, when the peer is a trusted proxy, the
right-most address of ``X-Forwarded-For`` that is not a trusted proxy (each proxy appends the address it got
the request from, so only the entries the trusted proxies appended are believed; what the client itself
sent, left of them, is not). Behind a TLS-terminating proxy that is not trusted, the browser's ``Origin``
(``https://...``) does not match the origin the gateway sees (``http://...``) and state-changing requests are
refused with a message saying so.

Everything here reads a raw ASGI scope, so the Quart routes and the raw ASGI tunnel share it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from voidllm.asgi import header
from voidllm.crypto import KeyKind
from voidllm.errors import AuthenticationError, PermissionDeniedError

if TYPE_CHECKING:
    from voidllm.auth.cache import KeyCache
    from voidllm.identity import KeyIdentity

SESSION_KEY_TYPE = KeyKind.SESSION.key_type
SESSION_COOKIE = "voidllm_session"
CSRF_COOKIE = "voidllm_csrf"
CSRF_HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FAILED = "csrf_failed"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CsrfError(PermissionDeniedError):
    """A cookie-authenticated request that failed the CSRF check (403 ``csrf_failed``)."""

    code = CSRF_FAILED


def cookies(scope: Mapping[str, Any]) -> dict[str, str]:
    """The request's cookies (every ``Cookie`` header); the first of a repeated name counts."""
    found: dict[str, str] = {}
    for key, value in scope["headers"]:
        if key != b"cookie":
            continue
        for part in bytes(value).decode("latin-1").split(";"):
            name, sep, text = part.strip().partition("=")
            if sep and name:
                found.setdefault(name, text.strip())
    return found


def csrf_token(hmac_secret: bytes, session_key: str) -> str:
    """The CSRF token of a session (see the module docstring)."""
    digest = hmac.new(hmac_secret, b"voidllm-csrf\0" + session_key.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@attrs.frozen
class BrowserPolicy:
    """What the gateway believes about where a request came from; built once from the settings."""

    trusted_proxies: tuple[_Network, ...] = ()

    @classmethod
    def from_settings(cls, trusted_proxies: Iterable[str]) -> BrowserPolicy:
        """From ``settings.trusted_proxies`` (already checked to be addresses or networks)."""
        return cls(tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted_proxies))

    def _trusted(self, address: str) -> bool:
        """Whether ``address`` is one of the trusted proxies (never anything that is not an IP address)."""
        if not self.trusted_proxies:
            return False
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:  # a unix socket's peer, say
            return False
        return any(parsed in network for network in self.trusted_proxies)

    def from_trusted_proxy(self, scope: Mapping[str, Any]) -> bool:
        """Whether the connection's peer is one of the trusted proxies."""
        client = scope.get("client")
        return client is not None and self._trusted(client[0])

    def client_address(self, scope: Mapping[str, Any]) -> str | None:
        """The client's address: the connection's peer, or behind trusted proxies the right-most address of
        ``X-Forwarded-For`` that is not a trusted proxy (see the module docstring); ``None`` without a peer.
        """
        client = scope.get("client")
        if not client:
            return None
        address = str(client[0])
        if not self._trusted(address):
            return address
        chain = [
            entry.strip()
            for key, value in scope["headers"]
            if key == b"x-forwarded-for"
            for entry in bytes(value).decode("latin-1").split(",")
        ]
        for entry in reversed(chain):
            try:
                ipaddress.ip_address(entry)
            except ValueError:  # a proxy's garbage or an obfuscated entry: nothing left of it is believed
                break
            address = entry
            if not self._trusted(address):
                break
        return address

    def _forwarded(self, scope: Mapping[str, Any], name: bytes) -> str | None:
        """The first entry of a proxy header, only from a trusted proxy."""
        value = header(scope, name)
        if value is None or not self.from_trusted_proxy(scope):
            return None
        return value.split(",")[0].strip() or None

    def is_https(self, scope: Mapping[str, Any]) -> bool:
        """Over TLS to the gateway itself, or ``X-Forwarded-Proto: https`` from a trusted proxy."""
        if scope.get("scheme") == "https":
            return True
        proto = self._forwarded(scope, b"x-forwarded-proto")
        return proto is not None and proto.lower() == "https"

    def origin(self, scope: Mapping[str, Any]) -> str:
        """The request's own origin: ``scheme://host`` as the browser saw it (see the module docstring)."""
        host = self._forwarded(scope, b"x-forwarded-host") or header(scope, b"host") or ""
        return normal_origin(f"{'https' if self.is_https(scope) else 'http'}://{host.strip()}")

    def check_origin(self, scope: Mapping[str, Any]) -> None:
        """An ``Origin`` header, when present, must be the request's own origin.

        Raises:
            CsrfError: it is another one (or ``null``).
        """
        origin = header(scope, b"origin")
        if origin is None:
            return
        own = self.origin(scope)
        if normal_origin(origin.strip()) == own:
            return
        hint = ""
        if origin.lower().startswith("https://") and own.startswith("http://"):
            hint = "; behind a reverse proxy that terminates TLS, list it in settings.trusted_proxies"
        raise CsrfError(f"cross-origin request refused: Origin {origin[:200]!r} is not {own!r}{hint}")


def normal_origin(origin: str) -> str:
    """Lowercase, without a trailing slash or the scheme's default port (``https://h:443``: ``https://h``)."""
    origin = origin.lower().rstrip("/")
    for scheme, port in (("http://", ":80"), ("https://", ":443")):
        if origin.startswith(scheme) and origin.endswith(port):
            return origin.removesuffix(port)
    return origin


def check_csrf(scope: Mapping[str, Any], policy: BrowserPolicy, hmac_secret: bytes, session_key: str) -> None:
    """The CSRF check of a request authenticated by the session cookie (module docstring); safe methods
    pass.

    Raises:
        CsrfError: the token is missing or wrong, or the origin is another one.
    """
    if scope["method"] in SAFE_METHODS:
        return
    sent = header(scope, CSRF_HEADER)
    if not sent:
        raise CsrfError("missing X-CSRF-Token header: send the value of the voidllm_csrf cookie")
    cookie = cookies(scope).get(CSRF_COOKIE, "")
    expected = csrf_token(hmac_secret, session_key)
    if not (hmac.compare_digest(sent.encode(), cookie.encode()) and hmac.compare_digest(sent, expected)):
        raise CsrfError("the X-CSRF-Token header does not match this session's voidllm_csrf cookie")
    policy.check_origin(scope)


def session_from_cookie(scope: Mapping[str, Any]) -> str | None:
    """The session key of the cookie when the request carries no ``Authorization`` or ``X-Api-Key`` header,
    else ``None``."""
    if header(scope, b"authorization") is not None or header(scope, b"x-api-key") is not None:
        return None
    return cookies(scope).get(SESSION_COOKIE) or None


async def authenticate_cookie(
    scope: Mapping[str, Any], keys: KeyCache, policy: BrowserPolicy
) -> tuple[str, KeyIdentity] | None:
    """The session key of the cookie and its identity, CSRF-checked, when the request has no
    ``Authorization`` or ``X-Api-Key`` header (then ``None``: authenticate the header instead).

    Raises:
        AuthenticationError: an unknown, expired or revoked session, or a cookie holding another kind of key.
        CsrfError: a request that changes state failed :func:`check_csrf`.
    """
    session_key = session_from_cookie(scope)
    if session_key is None:
        return None
    identity = await keys.resolve_key(session_key)
    if identity.key_type != SESSION_KEY_TYPE:
        raise AuthenticationError("the session cookie holds no session: sign in again")
    check_csrf(scope, policy, keys.hmac_secret, session_key)
    return session_key, identity


def _cookie(name: str, value: str, max_age: int, *, http_only: bool, secure: bool) -> str:
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def session_cookies(
    session_key: str, csrf: str, expires_at: datetime, now: datetime, *, secure: bool
) -> list[str]:
    """The ``Set-Cookie`` values of a sign-in: the session (HttpOnly) and the CSRF token (script-readable)."""
    max_age = max(0, int((expires_at - now).total_seconds()))
    return [
        _cookie(SESSION_COOKIE, session_key, max_age, http_only=True, secure=secure),
        _cookie(CSRF_COOKIE, csrf, max_age, http_only=False, secure=secure),
    ]


def cleared_cookies(*, secure: bool) -> list[str]:
    """The ``Set-Cookie`` values that make the browser drop both cookies (sign-out)."""
    return [
        _cookie(SESSION_COOKIE, "", 0, http_only=True, secure=secure),
        _cookie(CSRF_COOKIE, "", 0, http_only=False, secure=secure),
    ]
