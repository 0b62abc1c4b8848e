"""The upstream transport: send one HTTP request, get status, headers and a body stream, close.

The hot path talks to providers only through :class:`Transport`, so it can use the fastest correct
implementation (:class:`voidllm.proxy.h11pool.H11Pool`) while health probes, MCP and admin calls keep plain
httpx (:class:`HttpxTransport`, also the reference implementation the tests hold the pool to).

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

import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Protocol

import attrs
import h11
import httpx
import trio

__all__ = [
    "CLOSE_GRACE",
    "HttpxTransport",
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


# -- httpx ---------------------------------------------------------------------------------------------------


@attrs.define(eq=False)
class HttpxTransport:
    """:class:`Transport` over one shared ``httpx.AsyncClient``, which this transport owns and closes.

    Build it with :meth:`create` (no redirects, no cookie jar, no environment proxies or ``.netrc``, only the
    connect phase timed), or hand in a client configured alike. Requests bypass the client's default headers
    (no ``User-Agent``, no ``Accept-Encoding``: headers go out as given) and bodies are relayed raw, without
    decompression.
    """

    client: httpx.AsyncClient

    @classmethod
    def create(
        cls,
        *,
        max_connections_per_origin: int = 100,
        max_idle_per_origin: int = 32,
        keepalive_expiry: float = 60.0,
        connect_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> HttpxTransport:
        """A transport over a new client with the same knobs as the h11 pool.

        httpx limits connections in total, not per origin; the figures are applied to the whole client.
        """
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections_per_origin,
                max_keepalive_connections=max_idle_per_origin,
                keepalive_expiry=keepalive_expiry,
            ),
            verify=ssl_context if ssl_context is not None else True,
            follow_redirects=False,
            trust_env=False,
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
        )
        return cls(client)

    def request(
        self,
        method: bytes,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterable[bytes],
        *,
        content_length: int | None = None,
    ) -> AbstractAsyncContextManager[UpstreamResponse]:
        """See :meth:`Transport.request`."""
        return ResponseContext(self._open, method, url, headers, body, content_length)

    async def aclose(self) -> None:
        """Close the client and every connection it holds."""
        await self.client.aclose()

    async def _open(
        self,
        method: bytes,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterable[bytes],
        content_length: int | None,
    ) -> UpstreamResponse:
        if self.client.is_closed:
            raise trio.ClosedResourceError("transport is closed")
        length = len(body) if isinstance(body, bytes | bytearray | memoryview) else content_length
        request = httpx.Request(method, url, headers=_framed(method, headers, length), content=body)
        try:
            response = await self.client.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectTimeout as exc:
            raise UpstreamConnectTimeoutError("connecting to the upstream timed out") from exc
        except httpx.ConnectError as exc:
            raise UpstreamConnectError("could not connect to the upstream") from exc
        except httpx.UnsupportedProtocol as exc:
            raise ValueError("unsupported upstream URL scheme") from exc
        except (httpx.LocalProtocolError, h11.LocalProtocolError):  # h11's message quotes the value
            raise ValueError("invalid request: method, header or body length") from None
        except httpx.RemoteProtocolError as exc:
            if "disconnected" in str(exc):  # "Server disconnected without sending a response."
                raise UpstreamProtocolError(_CLOSED_BEFORE_HEAD) from None
            raise UpstreamProtocolError("malformed upstream response head") from None  # h11 quotes the bytes
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError("upstream socket operation timed out") from exc
        except httpx.TransportError as exc:
            raise UpstreamProtocolError("upstream failed before the response headers") from exc
        return _HttpxResponse(response)


_FRAMING = frozenset((b"content-length", b"transfer-encoding"))
_NO_BODY_METHODS = frozenset((b"GET", b"HEAD"))
_CLOSED_BEFORE_HEAD = "upstream closed the connection before the response headers"


def _framed(
    method: bytes, headers: list[tuple[bytes, bytes]], length: int | None
) -> list[tuple[bytes, bytes]]:
    """The caller's headers minus framing, plus ours: chunked for ``None``, none for an empty GET/HEAD."""
    out = [(name, value) for name, value in headers if name.lower() not in _FRAMING]
    if length is None:
        out.append((b"transfer-encoding", b"chunked"))
    elif length or method not in _NO_BODY_METHODS:
        out.append((b"content-length", b"%d" % length))
    return out


class _HttpxResponse:
    __slots__ = ("_closed", "_raw", "_response", "headers", "http_version", "status")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._raw: AsyncIterator[bytes] | None = None
        self._closed = False
        self.status = response.status_code
        self.headers = [(name.lower(), value) for name, value in response.headers.raw]
        self.http_version = response.http_version.removeprefix("HTTP/").encode()

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        return self

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise trio.ClosedResourceError("response is closed")
        if self._raw is None:
            self._raw = self._response.aiter_raw()
        try:
            while True:
                chunk = await self._raw.__anext__()
                if chunk:
                    return chunk
        except httpx.ReadError as exc:
            raise UpstreamClosedError("upstream closed the connection mid-body") from exc
        except httpx.RemoteProtocolError as exc:
            # h11 says "peer closed connection without sending complete message body"; anything else is
            # malformed framing, and h11's message then quotes the bytes: not chained.
            if "peer closed" in str(exc):
                raise UpstreamClosedError("upstream closed the connection mid-body") from None
            raise UpstreamProtocolError("malformed upstream response body") from None
        except httpx.TransportError as exc:
            raise UpstreamProtocolError("upstream failed mid-body") from exc

    async def aclose(self) -> None:
        raw, self._raw, self._closed = self._raw, None, True
        if raw is not None:
            await raw.aclose()  # type: ignore[attr-defined]
        await self._response.aclose()
