"""The URL policy for upstream MCP servers (docs/reference/behaviour.md 8.2): which URLs and addresses the
gateway may call.

An MCP server URL is configured by an org admin, so a hostile one could aim the gateway at its own
network: the metadata service (169.254.169.254), loopback admin ports, private subnets. This module is the
one policy, applied twice with the same function: when a URL is saved (the admin use cases turn a refusal
into a 400) and before every connection (the upstream client). Unless ``settings.mcp.allow_private_urls``
is on, the gateway refuses

- any scheme but ``http`` and ``https`` (only ``https`` for an OAuth token URL), and a URL without a valid
  host (:func:`check_url`, also with private URLs allowed);
- a host that names this machine or a non-public address (:func:`private_host`): ``localhost`` and
  ``*.localhost`` (any case, with or without the final dot), and every IP literal that is not globally
  routable (:func:`blocked_ip`): loopback, private (RFC 1918, ULA), link-local, unspecified, multicast,
  reserved, shared (100.64/10), documentation ranges..., also when written as an IPv4-mapped
  (``::ffff:127.0.0.1``), NAT64 (``64:ff9b::7f00:1``) or 6to4 (``2002:7f00:1::``) IPv6 address, or in the
  legacy IPv4 forms that resolvers accept (``127.1``, ``0x7f000001``, ``2130706433``, ``0177.0.0.1``).

A host name is checked again at connect time: the httpcore network backend of every upstream httpx client
(:class:`~voidllm.mcp.upstream.guarded_httpx.GuardedBackend`) resolves the host itself, refuses the
connection if ANY resolved address is blocked, and then connects to the very address it checked (the name
is never resolved a second time), so DNS rebinding between check and connect cannot slip a private address
through. TLS still verifies the certificate against the host name: httpcore passes the origin's name as
``server_hostname``.
:func:`guarded_transport` is the httpx transport built on it (OAuth token requests, the legacy transport's
probe), :class:`GuardedPool` the same rule for the h11 keep-alive pool that carries the JSON-RPC traffic.
httpx itself is imported only when a client is made (:func:`guarded_transport`) or a URL is checked: a
gateway that never calls an MCP server over httpx does not load it (about 50 ms and 2 MB of every start).

Organisations' single sign-on providers follow the same policy (:mod:`voidllm.auth.oidc`, with its own
setting, ``settings.sso.allow_private_issuers``): a caller names the setting that allows private addresses
(``setting``), so the refusal tells how to allow them.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs
import trio

from voidllm.bounds import valid_host
from voidllm.transport.h11pool import H11Pool

if TYPE_CHECKING:
    import httpx

    from voidllm.transport.h11pool import _Target

__all__ = [
    "BlockedAddress",
    "GuardedPool",
    "NameNotResolved",
    "PrivateAddress",
    "blocked_ip",
    "check_url",
    "guarded_transport",
    "private_host",
    "resolve_checked",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class BlockedAddress(Exception):
    """The URL or one of its host's addresses is not allowed. The message names the reason, never the URL.

    ``reason`` is a predicate without its subject (``must be an http:// or https:// URL``), so a caller can
    name its own field; the message is ``<subject> <reason>``.
    """

    def __init__(self, reason: str, subject: str = "URL") -> None:
        super().__init__(f"{subject} {reason}")
        self.reason = reason


class PrivateAddress(BlockedAddress):
    """The URL's host, or an address it resolves to, is this machine or not publicly routable."""


MCP_SETTING = "settings.mcp.allow_private_urls"
"""The setting that allows private addresses to MCP servers (:func:`check_url`'s default ``setting``)."""
PRIVATE = "points at a private, loopback, link-local or reserved address"


def _embedded_v4(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
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


def check_url(url: str, *, allow_private: bool, https_only: bool = False, setting: str = MCP_SETTING) -> None:
    """Refuse a URL that is not http(s) (``https_only``: https), has no valid host, or (unless
    ``allow_private``) names this machine or a non-public address (:func:`private_host`); the refusal of a
    private address names ``setting``, the setting that would allow it.

    Raises:
        BlockedAddress: the URL is not allowed; :class:`PrivateAddress` when only ``allow_private`` would
            allow it.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
        _httpx_url(url)
    except (ValueError, TypeError):
        raise BlockedAddress("must be a valid http:// or https:// URL") from None
    schemes = ("https",) if https_only else ("http", "https")
    if parts.scheme not in schemes:
        want = "an https://" if https_only else "an http:// or https://"
        raise BlockedAddress(f"must be {want} URL")
    if not valid_host(host) or (_numeric_host(host) and _legacy_ipv4(host) is None):
        raise BlockedAddress("must have a valid host name or address")
    if not allow_private and private_host(host):
        raise PrivateAddress(f"{PRIVATE} (allowed with {setting}: true)")


def _httpx_url(url: str) -> None:
    """Parse ``url`` as httpx will when connecting (its IDNA and character rules).

    Raises:
        ValueError: httpx refuses it.
    """
    import httpx  # here, not at the top: see the module docstring

    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(str(exc)) from None


def private_host(host: str) -> bool:
    """Whether a URL's host names this machine (``localhost``, ``*.localhost``) or is an IP literal, in any
    notation a resolver accepts, that is not publicly routable. Other names are checked when resolved."""
    name = host.lower().strip("[]").removesuffix(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip: IPAddress | None = ipaddress.ip_address(name)
    except ValueError:
        ip = _legacy_ipv4(name) if _numeric_host(name) else None
    return ip is not None and blocked_ip(ip)


_NUMBER = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")


def _numeric_host(host: str) -> bool:
    """A host made of numbers only (``127.1``, ``0x7f000001``): resolvers read it as an IPv4 address."""
    parts = host.removesuffix(".").split(".")
    return all(_NUMBER.fullmatch(part) for part in parts)


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in the forms of ``inet_aton`` (1 to 4 parts, each decimal, ``0x`` hex or ``0`` octal,
    the last filling the remaining bytes); None when out of range."""
    parts = host.removesuffix(".").split(".")
    if len(parts) > 4:
        return None
    numbers = []
    for part in parts:
        if part[:2].lower() == "0x":
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not part.isdigit() or "8" in part or "9" in part:
                return None
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


class NameNotResolved(OSError):
    """The host name did not resolve to any address (a connection failure, not a refusal)."""


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The host's addresses, each checked: one blocked address refuses the whole name.

    Raises:
        NameNotResolved: the name did not resolve.
        PrivateAddress: an address is blocked and ``allow_private`` is off.
    """
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise NameNotResolved("name resolution failed") from exc
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise NameNotResolved("name resolution returned no address")
    if not allow_private and any(blocked_ip(ipaddress.ip_address(a)) for a in addresses):
        reason = "resolves to a private, loopback, link-local or reserved address"
        raise PrivateAddress(reason, subject="host")
    return addresses


@attrs.define(eq=False)
class GuardedPool(H11Pool):
    """The upstream MCP client's keep-alive pool (:class:`~voidllm.transport.h11pool.H11Pool`), connecting
    only to addresses :func:`resolve_checked` let through, the very address it checked (the name is never
    resolved a second time); TLS still verifies the certificate against the host name. A host refused when
    connecting raises :class:`BlockedAddress`, not a transport error."""

    allow_private: bool = False

    async def _connect_tcp(self, target: _Target) -> trio.SocketStream:
        addresses = await resolve_checked(target.host, target.port, allow_private=self.allow_private)
        last: OSError | None = None
        for address in addresses:  # the first that accepts, in their order
            try:
                return await trio.open_tcp_stream(address, target.port)
            except OSError as exc:
                last = exc
        assert last is not None  # resolve_checked returns at least one address
        raise last


KEEPALIVE_EXPIRY = 4.0
"""Seconds an idle upstream connection is kept for reuse: under the 5 s after which uvicorn, hypercorn and
Node close an idle connection. With a longer expiry, a request sent on a connection idle for about 5 s met
the server's close and failed ("Server disconnected without sending a response": 8 of 54 such requests in a
trial), and a ``tools/call``, not idempotent, is not retried."""


def guarded_transport(allow_private: bool) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection goes through
    :class:`~voidllm.mcp.upstream.guarded_httpx.GuardedBackend` (httpx's defaults otherwise, without the
    environment's proxies or certificates). Its requests raise :class:`BlockedAddress` (not an
    ``httpx.HTTPError``) for a host refused when connecting."""
    from voidllm.mcp.upstream.guarded_httpx import transport  # loads httpx: see the module docstring

    return transport(allow_private, keepalive_expiry=KEEPALIVE_EXPIRY)
