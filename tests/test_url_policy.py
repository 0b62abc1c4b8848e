"""One URL policy for upstream MCP servers (:func:`voidllm.mcp.upstream.ssrf.check_url`), one table.

The same table goes through the three places that apply the policy: the policy itself, the admin use cases
saving a server URL (400 ``private_url_not_allowed``) and the upstream client before it connects. They used
to disagree (only the admin side treated ``localhost`` as private), which let a URL saved with private URLs
allowed, or written in ``voidllm.yaml``, reach this machine once the setting was off.
"""

from __future__ import annotations

from typing import Any

import httpcore
import pytest
import trio

from voidllm.admin.mcp_servers import _checked_url
from voidllm.errors import BadRequestError
from voidllm.mcp.upstream.client import McpUpstreams, UpstreamServer, UpstreamUnavailable
from voidllm.mcp.upstream.ssrf import (
    BlockedAddress,
    PrivateAddress,
    check_url,
    guarded_transport,
    private_host,
)

PRIVATE = [
    # loopback, in every notation a resolver accepts
    "http://127.0.0.1/mcp",
    "http://127.0.0.1:8080/mcp",
    "http://127.1/",
    "http://127.0.1/",
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://2130706433/",
    "http://127.255.255.254/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    # this machine by name
    "http://localhost/",
    "http://localhost:8080/mcp",
    "http://LOCALHOST./",
    "http://LocalHost/",
    "http://api.localhost/",
    "http://a.b.LOCALHOST./",
    # unspecified (reaches this machine on most systems)
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    # IPv4 embedded in IPv6
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:192.168.1.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:a9fe:a9fe::]/",
    # private networks
    "http://10.1.2.3/",
    "http://10.1/",
    "http://0xa.0x1.0x2.0x3/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.0.1/",
    "http://[fc00::1]/",
    "http://[fd12:3456:789a::1]/",
    "http://100.64.0.1/",
    # link-local, cloud metadata
    "http://169.254.169.254/latest/meta-data",
    "http://169.254.169.254.:80/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://169.254.43518/",
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",
    # multicast, broadcast, reserved, documentation
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://[ff02::1]/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://192.0.2.10/",
    "http://198.51.100.1/",
    "http://203.0.113.1/",
    "http://198.18.0.1/",
    "http://[2001:db8::1]/",
    "https://127.0.0.1/secure",
]

PUBLIC = [
    "https://mcp.example.com/mcp",
    "http://mcp.example.com:8080/",
    "http://8.8.8.8/",
    "http://134744072/",  # 8.8.8.8 as one number
    "http://0x08080808/",
    "http://[2606:4700:4700::1111]/",
    "http://[::ffff:8.8.8.8]/",
    "http://localhost.example.com/",  # a public name that merely starts with "localhost"
    "http://mylocalhost/",
    "http://localhost-mcp.example.com/",
    "http://example.com./",
]

INVALID = [
    "ftp://mcp.example.com/",
    "file:///etc/passwd",
    "gopher://127.0.0.1/",
    "mcp.example.com/mcp",
    "not a url",
    "",
    "http://",
    "http://:80/",
    "http://host:99999/",
    "http://host:port/",
    "http://999.1.1.1/",
    "http://1.2.3.4.5/",
    "http://0x1ffffffff/",
    "http://256.256/",
    "http://08.0.0.1/",
    "http://exa mple.com/",
]


@pytest.mark.parametrize("url", PRIVATE)
def test_private_targets_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(PrivateAddress, match="allow_private_urls"):
        check_url(url, allow_private=False)
    check_url(url, allow_private=True)


@pytest.mark.parametrize("url", PUBLIC)
def test_public_targets_are_allowed(url: str) -> None:
    check_url(url, allow_private=False)


@pytest.mark.parametrize("url", INVALID)
def test_invalid_urls_are_refused_even_with_private_urls_allowed(url: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(BlockedAddress) as refused:
            check_url(url, allow_private=allow_private)
        assert not isinstance(refused.value, PrivateAddress)
        assert url not in str(refused.value) or not url  # the message names the reason, never the URL


def test_https_only_refuses_http_even_to_a_public_host() -> None:
    with pytest.raises(BlockedAddress, match="must be an https:// URL"):
        check_url("http://idp.example.com/token", allow_private=False, https_only=True)
    check_url("https://idp.example.com/token", allow_private=False, https_only=True)


@pytest.mark.parametrize(
    ("host", "private"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("[::1]", True),
        ("127.1", True),
        ("0x7f000001", True),
        ("[::ffff:127.0.0.1]", True),
        ("0.0.0.0", True),
        ("example.com", False),
        ("8.8.8.8", False),
        ("localhost.example.com", False),
    ],
)
def test_private_host(host: str, private: bool) -> None:
    assert private_host(host) is private


@pytest.mark.parametrize("url", PRIVATE)
def test_saving_a_private_url_is_a_400_naming_the_field(url: str) -> None:
    with pytest.raises(BadRequestError) as refused:
        _checked_url(url, "oauth_token_url", allow_private=False)
    assert refused.value.code == "private_url_not_allowed"
    assert refused.value.message.startswith("oauth_token_url points at a private")
    assert "settings.mcp.allow_private_urls" in refused.value.message
    assert _checked_url(f"  {url} ", "url", allow_private=True) == url


@pytest.mark.parametrize("url", PUBLIC)
def test_saving_a_public_url_keeps_it_trimmed(url: str) -> None:
    assert _checked_url(f" {url}\t", "url", allow_private=False) == url


@pytest.mark.parametrize("url", INVALID)
def test_saving_an_invalid_url_is_a_400_naming_the_field(url: str) -> None:
    with pytest.raises(BadRequestError) as refused:
        _checked_url(url, "url", allow_private=True)
    assert refused.value.code != "private_url_not_allowed"
    assert refused.value.message.startswith("url must")


@pytest.mark.parametrize("url", ["https://user:pw@mcp.example.com/", "http://token@mcp.example.com/"])
def test_saving_a_url_with_credentials_is_refused(url: str) -> None:
    with pytest.raises(BadRequestError, match="url must not contain credentials"):
        _checked_url(url, "url", allow_private=True)


@pytest.mark.parametrize("url", PRIVATE)
async def test_the_client_refuses_the_same_urls_before_any_lookup_or_connection(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_lookup(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the URL policy let a private URL reach name resolution")

    monkeypatch.setattr(trio.socket, "getaddrinfo", no_lookup)
    upstreams = McpUpstreams(allow_private_urls=False)
    try:
        with pytest.raises(UpstreamUnavailable, match="points at a private"):
            await upstreams.open(UpstreamServer(id="srv-1", alias="tools", url=url))
    finally:
        await upstreams.aclose()


def test_idle_upstream_connections_expire_before_common_servers_close_them() -> None:
    pool = guarded_transport(False)._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    assert 0 < pool._keepalive_expiry < 5.0  # uvicorn, hypercorn and Node close idle connections at 5 s
    assert 0 < McpUpstreams()._pool.keepalive_expiry < 5.0  # the pool that carries the JSON-RPC calls
