"""The upstream transport: send one HTTP request, get status, headers and a body stream, close.

The hot path talks to providers only through :class:`Transport`, so it can use the fastest correct
implementation (:class:`voidllm.transport.h11pool.H11Pool`; :class:`voidllm.proxy.demo.DemoTransport` wraps
it), as does the upstream MCP client's JSON-RPC traffic (through a pool that applies the URL policy when it
connects), while health probes, OAuth token requests and admin calls keep plain httpx clients of their own.

Contract of ``transport.request(...)``:

- It is an async context manager that yields an :class:`UpstreamResponse` as soon as the response *headers*
  are in; the body is read with ``aiter_bytes()``, chunk by chunk as it arrives, never buffered.
- Leaving the block closes the response (shielded, bounded by :data:`CLOSE_GRACE`): the connection goes back
  to the pool only if the body was read to its end and keep-alive allows it; otherwise the socket is closed
  at once. So cancelling the caller's scope (client disconnect, deadline) makes the upstream see EOF
  immediately.
- There is no overall request timeout: callers bound requests with cancel scopes (STYLE P3). The transport's
  own limits bound single socket phases only (connect + TLS handshake).

Errors (messages are short and never carry headers or body content)::

    UpstreamError
    ├── UpstreamConnectError          DNS, refused, unreachable, TLS handshake: nothing was sent
    │   └── UpstreamConnectTimeoutError   connect + handshake took longer than the connect limit
    ├── UpstreamTimeoutError          one of the transport's own socket-phase limits ran out
    │   └── UpstreamConnectTimeoutError
    └── UpstreamProtocolError         malformed HTTP, or closed before the response headers
        └── UpstreamClosedError       closed in the middle of the response body

Using a transport after its ``aclose()`` raises :class:`trio.ClosedResourceError` ("we closed it", not "it
broke").
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Protocol

import trio

__all__ = [
    "CLOSE_GRACE",
    "ResponseContext",
    "Transport",
    "UpstreamClosedError",
    "UpstreamConnectError",
    "UpstreamConnectTimeoutError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamResponse",
    "UpstreamTimeoutError",
]

CLOSE_GRACE = 5.0
"""Seconds a response's shielded close may take after its block is left (normally it takes no time)."""


class UpstreamError(Exception):
    """The upstream request failed without a usable response."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made (DNS, refused, unreachable, TLS handshake); the request was not sent."""


class UpstreamTimeoutError(UpstreamError):
    """A socket-phase limit of the transport itself ran out (not the caller's deadline)."""


class UpstreamConnectTimeoutError(UpstreamConnectError, UpstreamTimeoutError):
    """Connecting (TCP + TLS handshake) took longer than the transport's connect limit."""


class UpstreamProtocolError(UpstreamError):
    """The upstream answered with malformed HTTP, or closed the connection before the response headers."""


class UpstreamClosedError(UpstreamProtocolError):
    """The upstream closed the connection in the middle of the response body."""


class UpstreamResponse(Protocol):
    """One upstream response whose headers are in and whose body is still on the wire."""

    status: int
    headers: list[tuple[bytes, bytes]]
    """Lowercased names, values as received, in order."""
    http_version: bytes

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive (de-chunked, never empty).

        Raises:
            UpstreamClosedError: the upstream closed the connection before the body's end.
            UpstreamProtocolError: the body's framing is malformed.
            trio.ClosedResourceError: read after ``aclose()`` (reading past the end just stops).
        """
        ...

    def body_at_hand(self) -> bool:
        """Whether body bytes (or the connection's end) arrived with the head: the first ``aiter_bytes`` step
        then needs no wait on the network, only what is already received (a whole first chunk, or the rest of
        a segment already on its way)."""
        ...

    async def aclose(self) -> None:
        """Pool the connection if the body was read to its end and keep-alive allows; else close it now."""
        ...


class Transport(Protocol):
    """Sends requests upstream; one long-lived instance per process, closed at shutdown."""

    def request(
        self,
        method: bytes,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterable[bytes],
        *,
        content_length: int | None = None,
    ) -> AbstractAsyncContextManager[UpstreamResponse]:
        """Send a request; the context manager yields once the response headers are in.

        Args:
            headers: sent as given, except ``Content-Length`` / ``Transfer-Encoding``, which the transport
                sets from ``body``; ``Host`` is added when missing.
            body: bytes (sent with ``Content-Length``, replayable), or an async iterable of bytes (streamed
                with ``Content-Length: content_length`` when given, else chunked; never replayed).

        Raises:
            UpstreamError: see the module docstring; raised on entering the block, and from ``aiter_bytes``.
            trio.ClosedResourceError: the transport was closed.

        Cancellation: the context manager closes the response (and with it the socket) on the way out,
        shielded and bounded, so a cancelled caller leaves no upstream request behind.
        """
        ...

    async def aclose(self) -> None:
        """Close every connection; later requests raise :class:`trio.ClosedResourceError`."""
        ...


class ResponseContext:
    """The context manager a transport's ``request()`` returns: opens on entry, always closes on the way out.

    ``opener(*args)`` is the transport's coroutine that sends the request and returns the response once the
    headers are in. A plain class rather than ``@asynccontextmanager`` keeps the per-request overhead down.
    """

    __slots__ = ("_args", "_opener", "_response")

    def __init__(self, opener: Callable[..., Awaitable[UpstreamResponse]], *args: object) -> None:
        self._opener = opener
        self._args = args
        self._response: UpstreamResponse | None = None

    async def __aenter__(self) -> UpstreamResponse:
        self._response = await self._opener(*self._args)
        return self._response

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        response, self._response = self._response, None
        if response is not None:
            with trio.move_on_after(CLOSE_GRACE, shield=True):
                await response.aclose()
