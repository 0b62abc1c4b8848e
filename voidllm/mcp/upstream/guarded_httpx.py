"""The httpx side of the URL policy (:mod:`voidllm.mcp.upstream.ssrf`): the httpcore network backend that
connects only to checked addresses, and the httpx transport built on it. A module of its own so that httpx
and httpcore load only when such a client is made (:func:`voidllm.mcp.upstream.ssrf.guarded_transport`)."""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING

import attrs
import httpcore
import httpx
import trio
from httpcore._backends.trio import TrioBackend

from voidllm.mcp.upstream.ssrf import BlockedAddress, NameNotResolved, resolve_checked

if TYPE_CHECKING:
    from collections.abc import Iterable


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
        try:
            addresses = await resolve_checked(host, port, allow_private=self.allow_private)
        except NameNotResolved as exc:
            raise httpcore.ConnectError(str(exc)) from exc
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


def transport(allow_private: bool, *, keepalive_expiry: float) -> httpx.AsyncHTTPTransport:
    """See :func:`voidllm.mcp.upstream.ssrf.guarded_transport`."""
    # One TLS context for the transport and the pool that replaces its own: each loads the CA bundle (about
    # 1 MB and 30 ms).
    ssl_context = httpx.create_ssl_context(trust_env=False)
    built = httpx.AsyncHTTPTransport(verify=ssl_context, trust_env=False)
    # httpx offers no network_backend argument: rebuild its pool with the guarded backend (same knobs).
    built._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=keepalive_expiry,
        network_backend=GuardedBackend(allow_private),
    )
    return built
