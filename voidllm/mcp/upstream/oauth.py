"""OAuth 2.0 client credentials for upstream MCP servers (``auth_type: oauth``), docs/reference/behaviour.md
8.2.

:class:`TokenCache` fetches an access token from the server's token URL (``POST``, form
``grant_type=client_credentials``, ``client_id``, ``client_secret``, ``scope``) and keeps it until
``expires_in`` minus 30 s, but at least 30 s; a token response without ``expires_in`` counts as 3600 s.
Concurrent callers for the same credentials wait for one fetch (a lock per cache key). The client calls
:meth:`TokenCache.invalidate` when the upstream answers 401 and fetches once more.

Without a configured token URL, the token endpoint is discovered once per MCP server origin (RFC 8414:
``GET <origin>/.well-known/oauth-authorization-server``, its ``token_endpoint``), as the reference does.

The token URL must be https unless ``allow_private_urls`` (tests, private deployments); the request goes
through the server's own guarded client, so the SSRF guard applies to it too. Token responses are capped
at 64 KiB. Errors name what failed (status, shape), never the secret or the response body.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import trio

if TYPE_CHECKING:
    import httpx

    from voidllm.mcp.upstream.client import UpstreamServer

__all__ = ["DEFAULT_EXPIRES_IN", "EXPIRY_MARGIN", "OAuthError", "TokenCache"]

DEFAULT_EXPIRES_IN = 3600.0
EXPIRY_MARGIN = 30.0
_MAX_TOKEN_RESPONSE = 64 * 1024

_Key = tuple[str, str, str]


class OAuthError(Exception):
    """The token endpoint could not be reached or gave no usable token."""


@attrs.frozen
class _Token:
    value: str = attrs.field(repr=False)
    valid_until: float


@attrs.define(eq=False)
class TokenCache:
    """Access tokens per (token URL, client id, scopes), refreshed shortly before they expire."""

    allow_private_urls: bool = False
    _tokens: dict[_Key, _Token] = attrs.field(factory=dict, init=False)
    _locks: dict[_Key, trio.Lock] = attrs.field(factory=dict, init=False)
    _discovered: dict[str, str] = attrs.field(factory=dict, init=False)
    fetches: int = attrs.field(default=0, init=False)

    @staticmethod
    def _key(server: UpstreamServer) -> _Key:
        return (server.oauth_token_url or server.url, server.oauth_client_id, server.oauth_scopes)

    def invalidate(self, server: UpstreamServer, token: str) -> None:
        """Forget ``token`` (the upstream refused it); a newer token fetched meanwhile stays."""
        key = self._key(server)
        cached = self._tokens.get(key)
        if cached is not None and cached.value == token:
            del self._tokens[key]

    async def token(self, client: httpx.AsyncClient, server: UpstreamServer) -> str:
        key = self._key(server)
        lock = self._locks.setdefault(key, trio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and trio.current_time() < cached.valid_until:
                return cached.value
            token_url = server.oauth_token_url or await self._discover(client, server.url)
            token = await self._fetch(client, server, token_url)
            self._tokens[key] = token
            return token.value

    def _check(self, url: httpx.URL, what: str) -> None:
        if not url.host:
            raise OAuthError(f"the {what} has no host")
        if url.scheme != "https" and not (url.scheme == "http" and self.allow_private_urls):
            raise OAuthError(f"the {what} must use https")

    async def _discover(self, client: httpx.AsyncClient, server_url: str) -> str:
        """The token endpoint from the authorization server metadata at the MCP server's origin (RFC 8414)."""
        import httpx  # loaded at first use (voidllm.lazyhttp)

        base = httpx.URL(server_url)
        origin = base.copy_with(path="/", query=None, fragment=None)
        cached = self._discovered.get(str(origin))
        if cached is not None:
            return cached
        metadata = origin.join("/.well-known/oauth-authorization-server")
        self._check(metadata, "OAuth metadata URL")
        payload = await self._get_json(client, "GET", metadata, None, "OAuth metadata")
        endpoint = payload.get("token_endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise OAuthError("OAuth metadata has no token_endpoint")
        self._discovered[str(origin)] = endpoint
        return endpoint

    async def _get_json(
        self, client: httpx.AsyncClient, method: str, url: httpx.URL, form: dict[str, str] | None, what: str
    ) -> dict[str, Any]:
        import httpx  # loaded at first use (voidllm.lazyhttp)

        try:
            headers = {"Accept": "application/json"}
            async with client.stream(method, url, data=form, headers=headers) as response:
                if response.status_code != 200:
                    raise OAuthError(f"{what} endpoint answered HTTP {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > _MAX_TOKEN_RESPONSE:
                        raise OAuthError(f"{what} response too large")
        except httpx.HTTPError as exc:
            raise OAuthError(f"{what} endpoint unreachable ({type(exc).__name__})") from exc
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise OAuthError(f"{what} response is not JSON") from exc
        if not isinstance(payload, dict):
            raise OAuthError(f"{what} response is not a JSON object")
        return payload

    async def _fetch(self, client: httpx.AsyncClient, server: UpstreamServer, token_url: str) -> _Token:
        import httpx  # loaded at first use (voidllm.lazyhttp)

        url = httpx.URL(token_url)
        self._check(url, "OAuth token URL")
        form = {
            "grant_type": "client_credentials",
            "client_id": server.oauth_client_id,
            "client_secret": server.oauth_client_secret,
        }
        if server.oauth_scopes:
            form["scope"] = server.oauth_scopes
        self.fetches += 1
        payload = await self._get_json(client, "POST", url, form, "token")
        value = payload.get("access_token")
        if not isinstance(value, str) or not value:
            raise OAuthError("token response has no access_token")
        expires_in = payload.get("expires_in", DEFAULT_EXPIRES_IN)
        if isinstance(expires_in, str) and expires_in.isdigit():
            expires_in = float(expires_in)
        if (
            not isinstance(expires_in, (int, float))
            or isinstance(expires_in, bool)
            or not math.isfinite(expires_in)
        ):
            expires_in = DEFAULT_EXPIRES_IN
        lifetime = max(float(expires_in) - EXPIRY_MARGIN, EXPIRY_MARGIN)
        return _Token(value, trio.current_time() + lifetime)
