"""The upstream MCP client (voidllm.mcp.upstream.client) against a real MCP server built with the official
SDK.

Every test talks over real sockets to :mod:`voidllm.testing.mock_mcp` (the SDK's streamable HTTP app served
by hypercorn on trio), in both answer modes (JSON and SSE) where the mode matters.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import pytest
import trio
import trio.testing

from voidllm.mcp.upstream import ssrf
from voidllm.mcp.upstream.client import (
    LATEST_HANDSHAKE_VERSION,
    MODERN_VERSION,
    McpUpstreams,
    UpstreamRpcError,
    UpstreamServer,
    UpstreamSession,
    UpstreamTimeout,
    UpstreamUnavailable,
    _header_value,
)
from voidllm.mcp.upstream.oauth import OAuthError, TokenCache
from voidllm.testing.mock_mcp import MockMcp, OAuthBehaviour, open_legacy_sse_server, open_mock_mcp

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

ECHO = {"name": "echo", "arguments": {"text": "hi"}}


def _server(url: str, **kwargs: str) -> UpstreamServer:
    return UpstreamServer(id="srv-1", alias="tools", url=url, **kwargs)


@pytest.fixture
async def upstreams() -> AsyncIterator[McpUpstreams]:
    up = McpUpstreams(call_timeout=10.0, allow_private_urls=True)
    try:
        yield up
    finally:
        await up.aclose()


@pytest.mark.parametrize("json_response", [True, False], ids=["json", "sse"])
async def test_session_lifecycle(upstreams: McpUpstreams, json_response: bool) -> None:
    async with open_mock_mcp(json_response=json_response) as mock:
        server = _server(mock.url)
        session = await upstreams.open(server)
        assert session.protocol_version == LATEST_HANDSHAKE_VERSION
        assert session.session_id

        result, same = await upstreams.request(server, session, "tools/call", ECHO)
        assert same == session
        assert result["structuredContent"] == {"text": "hi"}
        assert result["isError"] is False

        await upstreams.notify(server, session, "notifications/roots/list_changed", None)
        await upstreams.close(server, session)

        methods = [(r.http_method, r.rpc_method) for r in mock.received]
        assert methods == [
            ("POST", "server/discover"),  # the 2026-07-28 probe, refused: this server is 2025-11-25
            ("POST", "initialize"),
            ("POST", "notifications/initialized"),
            ("POST", "tools/call"),
            ("POST", "notifications/roots/list_changed"),
            ("DELETE", None),
        ]
        initialize, *later = mock.received[1:]
        assert initialize.session_id is None
        assert "mcp-protocol-version" not in initialize.headers
        for received in later:
            assert received.session_id == session.session_id
            assert received.headers["mcp-protocol-version"] == LATEST_HANDSHAKE_VERSION
        for received in mock.received[:-1]:
            assert received.headers["accept"] == "application/json, text/event-stream"
            assert received.headers["content-type"] == "application/json"


async def test_request_opens_lazily_and_deleted_session_reopens(upstreams: McpUpstreams) -> None:
    async with open_mock_mcp() as mock:
        server = _server(mock.url)
        result, session = await upstreams.request(server, None, "tools/list", None)
        assert {t["name"] for t in result["tools"]} == {"echo", "fail", "slow", "big"}
        assert len(mock.rpc("initialize")) == 1
        # The SDK forgets a deleted session and answers 404: the client re-initializes by itself.
        await upstreams.close(server, session)
        result, renewed = await upstreams.request(server, session, "tools/call", ECHO)
        assert result["structuredContent"] == {"text": "hi"}
        assert renewed.session_id not in (None, session.session_id)
        assert len(mock.rpc("initialize")) == 2


@pytest.mark.parametrize("json_response", [True, False], ids=["json", "sse"])
async def test_expired_session_reinitializes_and_retries_once(
    upstreams: McpUpstreams, json_response: bool
) -> None:
    async with open_mock_mcp(json_response=json_response) as mock:
        server = _server(mock.url)
        session = await upstreams.open(server)
        mock.expire_sessions()
        result, renewed = await upstreams.request(server, session, "tools/call", ECHO)
        assert result["structuredContent"] == {"text": "hi"}
        assert renewed.session_id != session.session_id
        calls = mock.rpc("tools/call")
        assert [c.session_id for c in calls] == [session.session_id, renewed.session_id]
        assert len(mock.rpc("initialize")) == 2
        assert len(mock.rpc("notifications/initialized")) == 2


async def test_session_expiring_again_is_not_retried_forever(upstreams: McpUpstreams) -> None:
    async with open_mock_mcp() as mock:
        server = _server(mock.url)
        session = await upstreams.open(server)
        mock.expire_every_session = True
        with pytest.raises(UpstreamUnavailable) as info:
            await upstreams.request(server, session, "tools/call", ECHO)
        assert info.value.status == 404
        assert len(mock.rpc("tools/call")) == 1
        assert len(mock.rpc("initialize")) == 2


async def test_notifications_before_the_response_are_skipped(upstreams: McpUpstreams) -> None:
    async with open_mock_mcp(json_response=False, chatty=True) as mock:
        server = _server(mock.url)
        session = await upstreams.open(server)
        call = {"name": "chatty", "arguments": {"text": "answer"}}
        async with upstreams.client(server).stream(
            "POST",
            mock.url,
            json={"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": call},
            headers={
                "accept": "application/json, text/event-stream",
                "mcp-session-id": session.session_id or "",
                "mcp-protocol-version": session.protocol_version,
            },
        ) as raw:
            body = (await raw.aread()).decode()
        assert body.index("notifications/message") < body.index('"id":99')  # the mock does send them first

        result, _ = await upstreams.request(server, session, "tools/call", call)
        assert result["content"] == [{"type": "text", "text": "answer"}]


def test_mcp_name_header_values() -> None:
    assert _header_value("echo") == "echo"
    assert _header_value("résumé") == "=?base64?csOpc3Vtw6k=?="
    assert _header_value("a\r\nX-Injected: 1").startswith("=?base64?")
    assert _header_value(" padded") == "=?base64?IHBhZGRlZA==?="


@pytest.mark.parametrize("json_response", [True, False], ids=["json", "sse"])
async def test_tool_errors_and_json_rpc_errors(upstreams: McpUpstreams, json_response: bool) -> None:
    async with open_mock_mcp(json_response=json_response) as mock:
        server = _server(mock.url)
        result, session = await upstreams.request(
            server, None, "tools/call", {"name": "fail", "arguments": {"reason": "secret-arg"}}
        )
        assert result["isError"] is True  # a tool error is a result, not a protocol error

        with pytest.raises(UpstreamRpcError) as info:
            await upstreams.request(server, session, "no/such/method", {"x": "secret-arg"})
        assert info.value.code == -32601
        assert info.value.to_object()["code"] == -32601
        assert "secret-arg" not in str(info.value)
        assert str(info.value) == "MCP server 'tools' answered JSON-RPC error -32601"


@pytest.mark.parametrize("json_response", [True, False], ids=["json", "sse"])
async def test_modern_server_needs_no_handshake(upstreams: McpUpstreams, json_response: bool) -> None:
    async with open_mock_mcp(json_response=json_response, modern=True) as mock:
        server = _server(mock.url)
        session = await upstreams.open(server)
        assert session == UpstreamSession(None, MODERN_VERSION)
        result, same = await upstreams.request(server, session, "tools/call", ECHO)
        assert same == session
        assert result["structuredContent"] == {"text": "hi"}
        assert await upstreams.open(server) == session  # the era is remembered: no second discover
        await upstreams.close(server, session)  # nothing to delete

        assert [(r.http_method, r.rpc_method) for r in mock.received] == [
            ("POST", "server/discover"),
            ("POST", "tools/call"),
        ]
        call = mock.received[1]
        assert call.headers["mcp-protocol-version"] == MODERN_VERSION
        assert call.headers["mcp-method"] == "tools/call"
        assert call.headers["mcp-name"] == "echo"
        assert call.session_id is None


async def test_handshake_server_is_probed_for_the_modern_era_once(upstreams: McpUpstreams) -> None:
    async with open_mock_mcp() as mock:
        server = _server(mock.url)
        await upstreams.open(server)
        await upstreams.open(server)
        assert len(mock.rpc("server/discover")) == 1
        assert len(mock.rpc("initialize")) == 2


async def test_paginated_tools_list(upstreams: McpUpstreams) -> None:
    async with open_mock_mcp(extra_tools=7, page_size=3) as mock:
        tools = await upstreams.list_tools(_server(mock.url))
        assert sorted(t["name"] for t in tools) == sorted(
            ["echo", "fail", "slow", "big", *(f"tool_{i}" for i in range(7))]
        )
        assert len(mock.rpc("tools/list")) == 4  # 11 tools, 3 a page
        assert mock.received[-1].http_method == "DELETE"  # the short-lived session is ended


async def test_probe(upstreams: McpUpstreams) -> None:
    async with open_mock_mcp() as mock:
        result = await upstreams.probe(_server(mock.url))
        assert (result.ok, result.tools, result.error, result.legacy_sse) == (True, 4, None, False)


async def test_probe_detects_legacy_http_sse_server(upstreams: McpUpstreams) -> None:
    async with open_legacy_sse_server() as url:
        result = await upstreams.probe(_server(url))
        assert result.ok is False
        assert result.legacy_sse is True
        assert result.error == "MCP server 'tools' speaks only the deprecated HTTP+SSE transport"


async def test_probe_of_a_non_mcp_404_is_not_legacy(upstreams: McpUpstreams) -> None:
    async with open_mock_mcp() as mock:
        result = await upstreams.probe(_server(mock.base_url + "/nothing-here"))
        assert (result.ok, result.legacy_sse) == (False, False)
        assert result.error == "MCP server 'tools' answered HTTP 404"


async def test_unreachable_server(upstreams: McpUpstreams) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UpstreamUnavailable, match=r"MCP server 'tools' unreachable \(ConnectError\)"):
        await upstreams.open(_server(f"http://127.0.0.1:{port}/mcp"))


# -- auth ----------------------------------------------------------------------------------------------


async def test_bearer_auth(upstreams: McpUpstreams) -> None:
    async with open_mock_mcp(require_header=("Authorization", "Bearer s3cret")) as mock:
        good = _server(mock.url, auth_type="bearer", auth_token="s3cret")
        result, _ = await upstreams.request(good, None, "tools/call", ECHO)
        assert result["structuredContent"] == {"text": "hi"}
        assert all(r.headers["authorization"] == "Bearer s3cret" for r in mock.received)

        for bad in (
            attrs.evolve(good, id="srv-2", auth_token="wrong"),
            attrs.evolve(good, id="srv-3", auth_type="none"),
        ):
            with pytest.raises(UpstreamUnavailable) as info:
                await upstreams.open(bad)
            assert info.value.status == 401
            assert "wrong" not in str(info.value)
            assert "s3cret" not in str(info.value)
        assert "s3cret" not in repr(good)


async def test_custom_header_auth(upstreams: McpUpstreams) -> None:
    async with open_mock_mcp(require_header=("X-Api-Key", "k-123")) as mock:
        server = _server(mock.url, auth_type="header", auth_header="X-Api-Key", auth_token="k-123")
        result, _ = await upstreams.request(server, None, "tools/call", ECHO)
        assert result["structuredContent"] == {"text": "hi"}
        assert all(r.headers["x-api-key"] == "k-123" for r in mock.received)
        assert all("authorization" not in r.headers for r in mock.received)


def _oauth_server(mock: MockMcp, secret: str = "secret") -> UpstreamServer:
    return _server(
        mock.url,
        auth_type="oauth",
        oauth_token_url=mock.base_url + "/token",
        oauth_client_id="client",
        oauth_client_secret=secret,
        oauth_scopes="tools:read tools:call",
    )


@pytest.fixture
def flowing_clock() -> trio.testing.MockClock:
    """Real time plus jumps: the mock server's shutdown waits on timers, the test needs to skip ahead."""
    return trio.testing.MockClock(rate=1.0)


async def test_oauth_token_is_cached_until_shortly_before_expiry(
    upstreams: McpUpstreams, flowing_clock: trio.testing.MockClock
) -> None:
    oauth = OAuthBehaviour(expires_in=120)
    async with open_mock_mcp(oauth=oauth) as mock:
        server = _oauth_server(mock)
        _, session = await upstreams.request(server, None, "tools/call", ECHO)
        await upstreams.request(server, session, "tools/call", ECHO)
        assert oauth.issued == ["tok-1"]
        assert oauth.scopes == ["tools:read tools:call"]
        mcp_requests = [r for r in mock.received if r.path == "/mcp"]
        assert {r.headers["authorization"] for r in mcp_requests} == {"Bearer tok-1"}

        flowing_clock.jump(89)  # 120 s minus the 30 s margin: still valid
        await upstreams.request(server, session, "tools/call", ECHO)
        assert oauth.issued == ["tok-1"]
        flowing_clock.jump(2)
        await upstreams.request(server, session, "tools/call", ECHO)
        assert oauth.issued == ["tok-1", "tok-2"]
        assert mock.received[-1].headers["authorization"] == "Bearer tok-2"


async def test_oauth_token_refused_by_upstream_is_replaced_once(upstreams: McpUpstreams) -> None:
    oauth = OAuthBehaviour()
    async with open_mock_mcp(oauth=oauth) as mock:
        server = _oauth_server(mock)
        _, session = await upstreams.request(server, None, "tools/call", ECHO)
        oauth.revoked.add("tok-1")
        result, _ = await upstreams.request(server, session, "tools/call", ECHO)
        assert result["structuredContent"] == {"text": "hi"}
        assert oauth.issued == ["tok-1", "tok-2"]

        oauth.revoked.update({"tok-2", "tok-3"})  # the fresh token is refused too: give up after one refresh
        with pytest.raises(UpstreamUnavailable) as info:
            await upstreams.request(server, session, "tools/call", ECHO)
        assert info.value.status == 401
        assert oauth.issued == ["tok-1", "tok-2", "tok-3"]


async def test_oauth_token_endpoint_discovered_when_not_configured(upstreams: McpUpstreams) -> None:
    oauth = OAuthBehaviour()
    async with open_mock_mcp(oauth=oauth) as mock:
        server = attrs.evolve(_oauth_server(mock), oauth_token_url="")
        _, session = await upstreams.request(server, None, "tools/call", ECHO)
        oauth.revoked.add("tok-1")
        result, _ = await upstreams.request(server, session, "tools/call", ECHO)
        assert result["structuredContent"] == {"text": "hi"}
        assert oauth.issued == ["tok-1", "tok-2"]
        paths = [r.path for r in mock.received if r.path != "/mcp"]
        assert paths == ["/.well-known/oauth-authorization-server", "/token", "/token"]  # metadata read once


async def test_oauth_bad_credentials(upstreams: McpUpstreams) -> None:
    async with open_mock_mcp(oauth=OAuthBehaviour()) as mock:
        server = _oauth_server(mock, secret="not-the-secret")
        with pytest.raises(UpstreamUnavailable) as info:
            await upstreams.open(server)
        assert (
            str(info.value)
            == "MCP server 'tools': OAuth token request failed: token endpoint answered HTTP 401"
        )
        assert [r.path for r in mock.received] == ["/token"]


async def test_oauth_token_url_must_be_https_unless_private_urls_allowed() -> None:
    server = _server(
        "https://mcp.example.com/mcp", auth_type="oauth", oauth_token_url="http://auth.example.com/token"
    )
    async with httpx.AsyncClient() as client:
        with pytest.raises(OAuthError, match="must use https"):
            await TokenCache(allow_private_urls=False).token(client, server)


# -- SSRF guard ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",
        "2001:db8::1",
    ],
)
def test_blocked_addresses(address: str) -> None:
    assert ssrf.blocked_ip(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address: str) -> None:
    assert not ssrf.blocked_ip(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/mcp", "must be an http:// or https:// URL"),
        ("file:///etc/passwd", "must be an http:// or https:// URL"),
        ("http://127.0.0.1:8080/mcp", "points at a private, loopback, link-local or reserved address"),
        ("http://[::1]/mcp", "points at a private, loopback, link-local or reserved address"),
        ("http://[::ffff:127.0.0.1]/mcp", "points at a private, loopback, link-local or reserved address"),
        (
            "http://169.254.169.254/latest/meta-data",
            "points at a private, loopback, link-local or reserved address",
        ),
    ],
)
async def test_refused_urls(url: str, message: str) -> None:
    up = McpUpstreams(allow_private_urls=False)
    try:
        with pytest.raises(UpstreamUnavailable, match=message):
            await up.open(_server(url))
    finally:
        await up.aclose()


async def test_private_address_refused_at_connect_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name is resolved when connecting: loopback behind a name never receives a byte; ``localhost`` and an
    address literal are refused before any lookup."""
    monkeypatch.setattr(trio.socket, "getaddrinfo", _fake_resolver({"loopback.test": ["127.0.0.1"]}))
    up = McpUpstreams(allow_private_urls=False)
    try:
        async with open_mock_mcp() as mock:
            port = mock.url.rsplit(":", 1)[1].split("/")[0]
            with pytest.raises(UpstreamUnavailable, match="host resolves to a private"):
                await up.open(_server(f"http://loopback.test:{port}/mcp"))
            with pytest.raises(UpstreamUnavailable, match="points at a private"):
                await up.open(_server(f"http://localhost:{port}/mcp"))
            with pytest.raises(UpstreamUnavailable, match="points at a private"):
                await up.open(_server(mock.url))
            assert mock.received == []
    finally:
        await up.aclose()


async def test_a_name_is_resolved_once_per_connection_and_the_checked_address_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pool connects to the address the policy checked: the name is looked up once for the connection
    (never again by the socket layer), the request still names the host, and later calls reuse the
    connection without any lookup."""
    asked: list[str] = []

    async def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[Any, ...]]:
        asked.append(host)
        address = {"named.test": "127.0.0.1"}.get(host, host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(trio.socket, "getaddrinfo", getaddrinfo)
    up = McpUpstreams(allow_private_urls=True)
    try:
        async with open_mock_mcp(modern=True, json_response=True) as mock:
            port = mock.url.rsplit(":", 1)[1].split("/")[0]
            server = _server(f"http://named.test:{port}/mcp")
            session = None
            for _ in range(3):
                result, session = await up.request(server, session, "tools/call", ECHO)
                assert result["structuredContent"] == {"text": "hi"}
            assert asked.count("named.test") == 1
            assert all(host in ("named.test", "127.0.0.1") for host in asked)
            assert {r.headers.get("host") for r in mock.received} == {f"named.test:{port}"}
            assert len({r.peer for r in mock.received}) == 1  # one connection for the discovery and the calls
    finally:
        await up.aclose()


async def test_ftp_refused_even_with_private_urls_allowed(upstreams: McpUpstreams) -> None:
    with pytest.raises(UpstreamUnavailable, match="must be an http:// or https:// URL"):
        await upstreams.open(_server("ftp://127.0.0.1/mcp"))


def _fake_resolver(answers: dict[str, list[str]]) -> Callable[..., Awaitable[list[tuple[Any, ...]]]]:
    async def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    return getaddrinfo


async def test_any_private_address_of_a_name_refuses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        trio.socket, "getaddrinfo", _fake_resolver({"rebind.test": ["93.184.216.34", "10.0.0.5"]})
    )
    with pytest.raises(ssrf.BlockedAddress):
        await ssrf.resolve_checked("rebind.test", 443, allow_private=False)
    assert await ssrf.resolve_checked("rebind.test", 443, allow_private=True) == ["93.184.216.34", "10.0.0.5"]


async def test_connection_goes_to_the_checked_address(
    monkeypatch: pytest.MonkeyPatch, upstreams: McpUpstreams
) -> None:
    """The guard resolves the name itself and connects to the address it checked (no second lookup)."""
    monkeypatch.setattr(trio.socket, "getaddrinfo", _fake_resolver({"mcp.internal.test": ["127.0.0.1"]}))
    async with open_mock_mcp() as mock:
        port = mock.url.rsplit(":", 1)[1].split("/")[0]
        result, _ = await upstreams.request(
            _server(f"http://mcp.internal.test:{port}/mcp"), None, "tools/call", ECHO
        )
        assert result["structuredContent"] == {"text": "hi"}
        assert mock.received[0].headers["host"] == f"mcp.internal.test:{port}"


# -- limits --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("json_response", [True, False], ids=["json", "sse"])
async def test_response_size_cap(json_response: bool) -> None:
    up = McpUpstreams(allow_private_urls=True, max_response_bytes=20_000)
    try:
        async with open_mock_mcp(json_response=json_response) as mock:
            server = _server(mock.url)
            result, session = await up.request(
                server, None, "tools/call", {"name": "big", "arguments": {"size": 5_000}}
            )
            assert result["content"][0]["text"] == "x" * 5_000
            with pytest.raises(
                UpstreamUnavailable, match="MCP server 'tools': response larger than 20000 bytes"
            ):
                await up.request(
                    server, session, "tools/call", {"name": "big", "arguments": {"size": 50_000}}
                )
    finally:
        await up.aclose()


async def test_call_timeout_cancels_the_call() -> None:
    up = McpUpstreams(allow_private_urls=True, call_timeout=0.5)
    try:
        async with open_mock_mcp() as mock:
            server = _server(mock.url)
            session = await up.open(server)
            # the tool sleeps 30 s: only the call timeout raises this (and the test does not wait 30 s)
            with pytest.raises(UpstreamTimeout, match=r"MCP server 'tools' did not answer within 0.5 s"):
                await up.request(
                    server, session, "tools/call", {"name": "slow", "arguments": {"seconds": 30}}
                )
            (cancelled,) = mock.rpc("notifications/cancelled")
            assert cancelled.session_id == session.session_id
            # The session is still usable afterwards.
            result, _ = await up.request(server, session, "tools/call", ECHO)
            assert result["structuredContent"] == {"text": "hi"}
    finally:
        await up.aclose()


@pytest.mark.parametrize("json_response", [True, False], ids=["json", "sse"])
async def test_one_pooled_client_per_server(upstreams: McpUpstreams, json_response: bool) -> None:
    async with open_mock_mcp(json_response=json_response) as mock:
        one, two = _server(mock.url), attrs.evolve(_server(mock.url), id="srv-2")
        _, session = await upstreams.request(one, None, "tools/call", ECHO)
        for _ in range(3):
            await upstreams.request(one, session, "tools/call", ECHO)
        client = upstreams.client(one)
        assert upstreams.client(one) is client
        assert upstreams.client(two) is not client
        assert len({r.peer for r in mock.received}) == 1  # every request on one kept-alive connection
        await upstreams.aclose()
        assert client.is_closed


def test_upstream_session_round_trip() -> None:
    for session in (UpstreamSession("abc", "2025-06-18"), UpstreamSession(None, MODERN_VERSION)):
        assert UpstreamSession.from_dict(session.to_dict()) == session
    for bad in ({}, {"s": 1, "v": "2025-06-18"}, {"s": "a", "v": None}):
        with pytest.raises(ValueError, match="invalid upstream session"):
            UpstreamSession.from_dict(bad)
