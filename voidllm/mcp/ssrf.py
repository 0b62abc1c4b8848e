"""The SSRF guard for upstream MCP servers (reference 8.2): which URLs and addresses the gateway may call.

An MCP server URL is configured by an org admin, so a hostile one could aim the gateway at its own
network: the metadata service (169.254.169.254), loopback admin ports, private subnets. Unless
``settings.mcp.allow_private_urls`` is on, the gateway refuses

- any scheme but ``http`` and ``https`` (:func:`check_url`);
- every address that is not globally routable: loopback, private (RFC 1918, ULA), link-local,
  unspecified, multicast, reserved, shared (100.64/10), documentation ranges... (:func:`blocked_ip`), also
  when written as an IPv4-mapped (``::ffff:127.0.0.1``) or NAT64 (``64:ff9b::7f00:1``) IPv6 address.

The check runs at connect time, not when the URL is saved: :class:`GuardedBackend` is the httpcore network
backend of every upstream client. It resolves the host itself, refuses the connection if ANY resolved
address is blocked, and then connects to the very address it checked (the name is never resolved a second
time), so DNS rebinding between check and connect cannot slip a private address through. TLS still
verifies the certificate against the host name: httpcore passes the origin's name as ``server_hostname``.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from typing import TYPE_CHECKING

import attrs
import httpcore
import httpx
import trio
from httpcore._backends.trio import TrioBackend

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["BlockedAddress", "GuardedBackend", "blocked_ip", "check_url", "resolve_checked"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class BlockedAddress(Exception):
    """The URL or one of its host's addresses is not allowed. The message names the reason, never the URL."""


def _embedded_v4(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def blocked_ip(ip: IPAddress) -> bool:
    """True for every address that is not publicly routable unicast."""
    ip = _embedded_v4(ip)
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.is_link_local:
        return True
    if ip.is_private or ip.is_reserved:
        return True
    return not ip.is_global


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a non-http(s) URL, a URL without host, and (unless ``allow_private``) a literal blocked IP."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise BlockedAddress("invalid URL") from exc
    if parsed.scheme not in ("http", "https"):
        raise BlockedAddress("only http and https URLs are allowed")
    if not parsed.host:
        raise BlockedAddress("URL has no host")
    if allow_private:
        return
    try:
        ip = ipaddress.ip_address(parsed.host)
    except ValueError:
        return
    if blocked_ip(ip):
        raise BlockedAddress(
            "address is private, loopback, link-local or reserved (allowed with settings.mcp.allow_private_urls)"
        )


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The host's addresses, each checked: one blocked address refuses the whole name."""
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpcore.ConnectError("name resolution failed") from exc
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise httpcore.ConnectError("name resolution returned no address")
    if not allow_private and any(blocked_ip(ipaddress.ip_address(a)) for a in addresses):
        raise BlockedAddress("host resolves to a private, loopback, link-local or reserved address")
    return addresses


@attrs.define(eq=False)
class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's trio backend, connecting only to addresses :func:`resolve_checked` let through."""

    allow_private: bool
    inner: TrioBackend = attrs.field(factory=TrioBackend)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked(host, port, allow_private=self.allow_private)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)
