"""Cross-origin access for web pages (CORS, the Fetch standard's "CORS protocol") to ``/v1`` and the MCP
endpoints, answered by the edge (:mod:`voidllm.web.edge`) before authentication.

**Which pages.** ``/v1/...`` accepts the origins of ``server.cors.allowed_origins`` (``*``: any page) and
those of keys' request policies (``allowed_origins``, :mod:`voidllm.request_policy`): the key cache keeps the
union of every live key's (:meth:`~voidllm.auth.cache.KeyCache.allowed_origins`, recomputed when keys
change), and a preflight, which carries no key, is answered for any origin in it. The actual request then
decides per key: the proxy checks the page's ``Origin`` against its key's allowed origins and leaves the
verdict in the ASGI scope (:data:`~voidllm.request_policy.ORIGIN_VERDICT`). A response carries
``Access-Control-Allow-Origin`` only when the key allows the origin, or when the key lists no origins and
``server.cors`` allows it; a key that lists origins and not this one gets 403 ``origin_not_allowed`` without
it, so neither the answer nor credentials are ever exposed to a page the key does not allow. ``GET
/v1/models`` (answered by the app, :mod:`voidllm.web.openai`) decides the same way. With no
``server.cors`` origins and no key listing any, ``/v1`` is not covered at all (no CORS headers). The
MCP endpoints (``/api/v1/mcp/...``) accept the exact origins of ``server.cors.allowed_origins`` and of
``settings.mcp.allowed_origins`` (:func:`mcp_origins`; the endpoint's own Origin check accepts the same ones,
besides the gateway's own origin): ``*`` does not open them, because MCP servers must check ``Origin``
(docs/reference/mcp-transport.md 5.2). A family of paths that no origin may call is left as it was (no CORS
headers; a preflight reaches the endpoint, which refuses it). The admin API, the playground tunnel and the UI
are same-origin only and never covered. Origins are compared exactly with the browser's ``Origin`` header,
after normalising the configured ones (lowercase, no trailing ``/``, no default port).

**Preflights** (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) are answered with 204,
never reaching authentication (a browser sends no credentials with them). For an allowed origin it carries
``Access-Control-Allow-Origin`` (the origin, echoed), ``-Allow-Methods``, ``-Allow-Headers``, ``-Max-Age``
(``server.cors.max_age``) and, with ``server.cors.allow_credentials``, ``-Allow-Credentials: true``; a
disallowed origin gets a bare 204, which the browser treats as a refusal, as Go's ``rs/cors`` and Fiber's
CORS middleware (the Go original's, in dev mode) answer. Both vary on ``Origin`` and the two request headers.

**Allowed request headers** are those the gateway's clients send, not whatever a page asks for: the ones in
:data:`REQUEST_HEADERS` and those starting with :data:`REQUEST_HEADER_PREFIXES` (the OpenAI and Anthropic
SDKs' ``x-stainless-*``, ``openai-*``, ``anthropic-*``; MCP's ``mcp-param-*``). The preflight's answer lists
the requested ones among them; a page asking for another gets a preflight without it, and the browser does
not send the request. On ``/v1``, the headers keys' request policies require
(:meth:`~voidllm.auth.cache.KeyCache.required_headers`) are allowed too.

**Responses** to a request from an allowed origin, every status included (a 401 or 429 must be readable by
the page, as must the edge's own 500 and 503), get ``Access-Control-Allow-Origin``, the credentials header
when configured, and ``Access-Control-Expose-Headers`` naming those of the response's own headers a client
reads (:func:`exposed_headers`: the request id, ``Mcp-Session-Id``, ``WWW-Authenticate``, ``Retry-After`` and
the ``X-RateLimit-*`` headers). Every response of a covered family gets ``Vary: Origin``, so a shared cache
never hands one page's answer to another. Headers are built from bytes already parsed by the HTTP server, so
an echoed origin cannot split a header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from voidllm.web.browser import normal_origin

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from voidllm.config import Config

__all__ = [
    "REQUEST_HEADERS",
    "REQUEST_HEADER_PREFIXES",
    "CorsExchange",
    "CorsPolicy",
    "exposed_headers",
    "mcp_origins",
]

Headers = list[tuple[bytes, bytes]]

REQUEST_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "authorization",
        "content-language",
        "content-type",
        "idempotency-key",
        "last-event-id",
        "mcp-method",
        "mcp-name",
        "mcp-protocol-version",
        "mcp-session-id",
        "x-api-key",
        "x-project",
        "x-request-id",
        "x-source",
    }
)
"""Request headers a page may send (besides :data:`REQUEST_HEADER_PREFIXES`), lowercase."""

REQUEST_HEADER_PREFIXES = ("x-stainless-", "openai-", "anthropic-", "mcp-param-")

_EXPOSED = frozenset(
    {
        b"mcp-session-id",
        b"request-id",
        b"retry-after",
        b"retry-after-ms",
        b"www-authenticate",
        b"x-request-id",
        b"x-voidllm-overhead-ms",
    }
)
_EXPOSED_PREFIX = b"x-ratelimit-"
_PREFLIGHT_VARY = (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
_MAX_REQUESTED = 64  # header names read from one Access-Control-Request-Headers


def mcp_origins(config: Config) -> frozenset[str]:
    """The page origins the MCP endpoints accept besides the gateway's own (normalised): the exact ones of
    ``server.cors.allowed_origins`` and ``settings.mcp.allowed_origins``."""
    listed = (*config.server.cors.allowed_origins, *config.settings.mcp.allowed_origins)
    return frozenset(normal_origin(origin) for origin in listed if origin != "*")


def exposed_headers(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The names of the response's headers a page may read beyond the CORS-safelisted ones, comma-joined."""
    names = dict.fromkeys(
        name.lower()
        for name, _ in headers
        if name.lower() in _EXPOSED or name.lower().startswith(_EXPOSED_PREFIX)
    )
    return b", ".join(names)


def _allowed_request_headers(requested: str, required: frozenset[str] = frozenset()) -> bytes:
    names = (name.strip().lower() for name in requested.split(",")[:_MAX_REQUESTED])
    allowed = (
        n for n in names if n in REQUEST_HEADERS or n.startswith(REQUEST_HEADER_PREFIXES) or n in required
    )
    return ", ".join(dict.fromkeys(allowed)).encode("latin-1")


def _add_vary(headers: Headers) -> Headers:
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            if b"origin" not in value.lower() and value.strip() != b"*":
                headers[index] = (name, value + b", Origin")
            return headers
    headers.append((b"vary", b"Origin"))
    return headers


@attrs.frozen
class _Family:
    """The paths under one prefix, the origins that may call them and their methods; ``key_origins`` (the
    ``/v1`` family's): the origins keys' request policies allow, read per request."""

    prefix: str
    origins: frozenset[str]
    any_origin: bool
    methods: bytes
    key_origins: Callable[[], frozenset[str]] | None = None
    key_headers: Callable[[], frozenset[str]] | None = None

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins


@attrs.frozen
class CorsPolicy:
    """What the edge asks per request (:meth:`exchange`); see the module docstring."""

    families: tuple[_Family, ...]
    credentials: bool
    max_age: bytes

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        api_prefix: str,
        mcp_prefix: str,
        key_origins: Callable[[], frozenset[str]] | None = None,
        key_headers: Callable[[], frozenset[str]] | None = None,
    ) -> CorsPolicy | None:
        """The policy of ``config`` for ``/v1`` (``api_prefix``, also open to ``key_origins()``: the origins
        keys' request policies allow) and the MCP endpoints (``mcp_prefix``); ``None`` when no page may call
        either."""
        cors = config.server.cors
        api = _Family(
            api_prefix,
            frozenset(normal_origin(o) for o in cors.allowed_origins if o != "*"),
            "*" in cors.allowed_origins,
            b"GET, POST",
            key_origins,
            key_headers,
        )
        mcp = _Family(mcp_prefix, mcp_origins(config), False, b"GET, POST, DELETE")
        families = tuple(
            family
            for family in (api, mcp)
            if family.origins or family.any_origin or family.key_origins is not None
        )
        if not families:
            return None
        return cls(families, cors.allow_credentials, str(int(cors.max_age)).encode())

    def exchange(self, scope: dict[str, Any]) -> CorsExchange | None:
        """The CORS side of one request; ``None`` on paths no page may call."""
        path: str = scope["path"]
        family = next((f for f in self.families if path.startswith(f.prefix)), None)
        if family is None:
            return None
        by_keys = family.key_origins() if family.key_origins is not None else frozenset()
        if not (family.origins or family.any_origin or by_keys):
            return None  # no page may call it now: as if not covered
        origin = requested_method = requested_headers = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = origin or bytes(value).decode("latin-1")
            elif name == b"access-control-request-method":
                requested_method = requested_method or bytes(value)
            elif name == b"access-control-request-headers":
                requested_headers = bytes(value).decode("latin-1")
        by_config = origin is not None and family.allows(origin)
        return CorsExchange(
            policy=self,
            family=family,
            origin=origin if by_config or (origin is not None and origin in by_keys) else None,
            by_config=by_config,
            preflight=scope["method"] == "OPTIONS" and origin is not None and requested_method is not None,
            requested_headers=requested_headers or "",
        )


@attrs.frozen
class CorsExchange:
    """The CORS headers of one request's answer: a preflight's (:attr:`preflight`) or a response's."""

    policy: CorsPolicy
    family: _Family
    origin: str | None
    """The request's ``Origin`` when it may call this path (by ``server.cors`` or some key), else ``None``."""
    preflight: bool
    requested_headers: str
    by_config: bool = False
    """Whether ``server.cors`` (not only some key's request policy) allows the origin."""

    def _allow_origin(self, origin: str) -> Headers:
        headers = [(b"access-control-allow-origin", origin.encode("latin-1"))]
        if self.policy.credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    def preflight_headers(self) -> Headers:
        """The headers of the 204 answering a preflight."""
        if self.origin is None:
            return [_PREFLIGHT_VARY]
        headers = self._allow_origin(self.origin)
        headers.append((b"access-control-allow-methods", self.family.methods))
        required = self.family.key_headers() if self.family.key_headers is not None else frozenset()
        allowed = _allowed_request_headers(self.requested_headers, required)
        if allowed:
            headers.append((b"access-control-allow-headers", allowed))
        headers += [(b"access-control-max-age", self.policy.max_age), _PREFLIGHT_VARY]
        return headers

    def response_headers(self, headers: Headers, key_verdict: bool | None = None) -> Headers:
        """``headers`` of a response (not a preflight's) with the CORS headers added. ``key_verdict``: whether
        the request's key allows the origin (``None``: the key lists no origins, or no key was checked)."""
        headers = _add_vary(list(headers))
        if self.origin is None or key_verdict is False or (key_verdict is None and not self.by_config):
            return headers
        headers += self._allow_origin(self.origin)
        exposed = exposed_headers(headers)
        if exposed:
            headers.append((b"access-control-expose-headers", exposed))
        return headers
