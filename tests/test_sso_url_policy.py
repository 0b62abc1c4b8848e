"""SSRF through single sign-on: an organisation's provider follows the MCP servers' URL policy
(:mod:`voidllm.mcp.upstream.ssrf`), the global provider does not (the operator configured it).

The organisation's client here is the gateway's own, :func:`~voidllm.mcp.upstream.ssrf.guarded_transport`;
host names resolve through a fake resolver (as in ``tests/test_mcp_client.py``), so a "public" issuer is a
name the test controls: :class:`PublicIssuer` answers for it in memory and hands every other request to the
guarded transport, which must refuse the private targets the discovery document names before a byte leaves.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import pytest
import trio

from voidllm.auth.oidc import PRIVATE_SETTING, Discovery, OidcClient, OidcError, Provider, new_flow
from voidllm.mcp.upstream.ssrf import guarded_transport

PUBLIC = "https://idp.public.test"
SETTING_HINT = f"(allowed with {PRIVATE_SETTING}: true)"


def _fake_resolver(
    answers: dict[str, list[str]], asked: list[str]
) -> Callable[..., Awaitable[list[tuple[Any, ...]]]]:
    async def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[Any, ...]]:
        asked.append(host)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    return getaddrinfo


@attrs.define(eq=False)
class PublicIssuer(httpx.AsyncBaseTransport):
    """Answers the discovery document of :data:`PUBLIC` in memory (a provider on the internet); any other
    request goes to ``rest``, the gateway's guarded transport."""

    document: dict[str, str]
    rest: httpx.AsyncBaseTransport
    seen: list[str] = attrs.Factory(list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == httpx.URL(PUBLIC).host:
            self.seen.append(request.url.path)
            return httpx.Response(200, json=self.document)
        return await self.rest.handle_async_request(request)

    async def aclose(self) -> None:
        await self.rest.aclose()


def _document(jwks_uri: str, token_endpoint: str) -> dict[str, str]:
    return {
        "issuer": PUBLIC,
        "authorization_endpoint": f"{PUBLIC}/auth",
        "token_endpoint": token_endpoint,
        "jwks_uri": jwks_uri,
    }


def _provider(provider_id: str) -> Provider:
    return Provider(
        id=provider_id,
        org_id="org-1",
        issuer=PUBLIC,
        client_id="voidllm",
        client_secret="s",
        redirect_url=None,
        scopes=("openid",),
        allowed_domains=(),
        auto_provision=True,
        default_role="member",
        group_sync="off",
        group_claim="groups",
        algorithms=("RS256",),
    )


@asynccontextmanager
async def _org_client(
    transport: httpx.AsyncBaseTransport, *, global_http: httpx.AsyncClient | None = None
) -> AsyncIterator[OidcClient]:
    async with httpx.AsyncClient(transport=transport) as org_http:
        yield OidcClient(global_http or org_http, org_http)


async def test_a_public_issuer_cannot_aim_the_gateway_at_private_urls_of_its_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issuer passes, but the key set's host resolves to a private address (refused when connecting, no
    connection made) and the token endpoint is the metadata service (refused before any lookup)."""
    asked: list[str] = []
    monkeypatch.setattr(trio.socket, "getaddrinfo", _fake_resolver({"keys.public.test": ["10.0.0.5"]}, asked))
    document = _document("https://keys.public.test/jwks", "https://169.254.169.254/latest/meta-data")
    issuer = PublicIssuer(document, guarded_transport(False))
    async with _org_client(issuer) as client:
        discovery = await client.discover(PUBLIC, org=True)
        assert issuer.seen == ["/.well-known/openid-configuration"]
        with pytest.raises(OidcError) as keys:
            await client.key_set(discovery.jwks_uri, org=True)
        assert keys.value.reason == "provider_error"
        assert str(keys.value) == (
            "the key set (JWKS) host resolves to a private, loopback, link-local or reserved address "
            + SETTING_HINT
        )
        flow = new_flow("org-1", "https://gw.test/cb", now=0.0)
        with pytest.raises(OidcError) as token:
            await client.exchange(_provider("org-1"), discovery, code="c", flow=flow)
        assert str(token.value) == (
            "the token endpoint URL points at a private, loopback, link-local or reserved address "
            + SETTING_HINT
        )
    assert asked == ["keys.public.test"]  # the token endpoint was refused before any lookup


async def test_the_key_set_of_a_provider_is_checked_when_signing_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """:meth:`OidcClient.verify` of an organisation's provider fetches the key set under the policy too."""
    asked: list[str] = []
    monkeypatch.setattr(trio.socket, "getaddrinfo", _fake_resolver({}, asked))
    discovery = Discovery(PUBLIC, f"{PUBLIC}/auth", f"{PUBLIC}/token", "https://[::ffff:127.0.0.1]/jwks")
    async with _org_client(PublicIssuer({}, guarded_transport(False))) as client:
        with pytest.raises(OidcError, match=r"^the key set \(JWKS\) URL points at a private"):
            await client.verify(_provider("org-1"), discovery, "x.y.z", nonce="n")
    assert asked == []


@pytest.mark.parametrize(
    "issuer",
    [
        "http://127.0.0.1:9",
        "http://localhost:9",
        "https://169.254.169.254",
        "https://10.1.2.3/realms/acme",
        "https://[::1]:8443",
        "https://0x7f000001",
    ],
)
async def test_an_org_issuer_on_a_private_address_is_refused_before_any_lookup(
    issuer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    monkeypatch.setattr(trio.socket, "getaddrinfo", _fake_resolver({}, asked))
    async with _org_client(guarded_transport(False)) as client:
        with pytest.raises(OidcError) as refused:
            await client.discover(issuer, org=True)
    assert refused.value.reason == "provider_error"
    assert str(refused.value).startswith("the discovery document URL points at a private")
    assert str(refused.value).endswith(SETTING_HINT)
    assert asked == []


async def test_a_name_that_rebinds_to_a_private_address_is_refused_when_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One private address among a name's answers refuses it (the guard checks every address it resolves)."""
    asked: list[str] = []
    answers = {"idp.rebind.test": ["93.184.216.34", "127.0.0.1"]}
    monkeypatch.setattr(trio.socket, "getaddrinfo", _fake_resolver(answers, asked))
    async with _org_client(guarded_transport(False)) as client:
        with pytest.raises(OidcError, match=r"^the discovery document host resolves to a private"):
            await client.discover("https://idp.rebind.test", org=True)
    assert asked == ["idp.rebind.test"]


async def test_the_global_provider_may_be_private_and_its_cache_is_not_the_organisations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The operator's provider is fetched without the policy; an organisation naming the same issuer gets
    nothing from that fetch (the caches are apart) and is refused."""
    internal = "https://idp.internal.test"
    monkeypatch.setattr(trio.socket, "getaddrinfo", _fake_resolver({"idp.internal.test": ["10.0.0.7"]}, []))

    def operator_idp(request: httpx.Request) -> httpx.Response:
        document = {**_document(f"{internal}/jwks", f"{internal}/token"), "issuer": internal}
        return httpx.Response(200, json={**document, "authorization_endpoint": f"{internal}/auth"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(operator_idp)) as global_http:
        async with _org_client(guarded_transport(False), global_http=global_http) as client:
            assert (await client.discover(internal, org=False)).token_endpoint == f"{internal}/token"
            with pytest.raises(OidcError, match="host resolves to a private"):
                await client.discover(internal, org=True)


async def test_private_issuers_allowed_by_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``allow_private_issuers`` the URL passes and the guarded transport connects to the private
    address it resolved (here a closed port: unreachable, not refused)."""
    asked: list[str] = []
    monkeypatch.setattr(trio.socket, "getaddrinfo", _fake_resolver({"127.0.0.1": ["127.0.0.1"]}, asked))
    async with httpx.AsyncClient(transport=guarded_transport(True)) as org_http:
        client = OidcClient(org_http, org_http, allow_private_issuers=True)
        with pytest.raises(OidcError, match=r"^the discovery document is unreachable \(ConnectError\)$"):
            await client.discover("http://127.0.0.1:9", org=True)
    assert asked == ["127.0.0.1"]
