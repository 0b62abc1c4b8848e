"""An HTTP/1.1 keep-alive connection pool on trio and h11: the hot path's upstream :class:`Transport`.

Why not httpx here: on this 2-core machine httpx costs about 1 ms per request and degrades with concurrency
(ARCHITECTURE.md section 3). Against a minimal trio/h11 server in the same process, on one core, this pool
moves ~5,000 requests/s at 1 and at 32 concurrent requests, where ``httpx.AsyncClient`` moves ~1,850 and
~1,000.

How a request goes:

1. **Slot.** Each origin (scheme, host, port) has at most ``max_connections_per_origin`` requests in flight.
   Taking a free slot does not block; otherwise the request parks (a checkpoint bounded by the caller's cancel
   scope). A finishing request hands its slot straight to the longest waiter, as :class:`trio.Semaphore` does,
   so late arrivals cannot overtake it.
2. **Connection.** The most recently idled connection is reused (LIFO keeps the warm ones warm and lets the
   rest age out), unless it has been idle for ``keepalive_expiry`` or its socket is readable while idle
   (the peer closed it, or sent something unasked), checked without blocking. Otherwise a new one is
   opened; ``connect_timeout`` bounds TCP connect plus TLS handshake and nothing else.
3. **Send.** Headers and a small bytes body go out in one ``send_all``; a streamed body follows chunk by
   chunk, with ``Content-Length`` when the caller knows it, else chunked.
4. **Stale retry.** If a *reused* connection fails before any byte of the response arrived (the peer closed
   it just as we sent), a request with a bytes body is sent once more on a fresh connection. A streamed
   body is never replayed; that request fails with :class:`UpstreamProtocolError`.
5. **Response.** Headers are returned as soon as h11 has parsed them; the body is read on demand from
   ``aiter_bytes()``. Closing the response pools the connection only when both sides finished the message
   and keep-alive holds (bytes already buffered count: a caller that stops right before the terminating
   chunk does not lose the connection); in every other case the socket is closed at once, so the upstream
   sees EOF. At most ``max_idle_per_origin`` connections stay idle; the oldest are closed first.

Deliberately left out: HTTP/2, proxies, ``Expect: 100-continue``, reading a response while a streamed request
body is still being sent (an early answer to an upload surfaces as an error), and a background sweeper
(expired idle connections are closed on the next checkout or release for their origin, and by ``aclose()``).

Exception messages never carry data. h11's own parse errors can quote the offending bytes, so they are
dropped (``from None``) rather than chained; socket errors are chained.
"""

from __future__ import annotations

import collections
import functools
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager
from urllib.parse import urlsplit

import attrs
import h11
import trio

from voidllm.transport.base import (
    CLOSE_GRACE,
    ResponseContext,
    UpstreamClosedError,
    UpstreamConnectError,
    UpstreamConnectTimeoutError,
    UpstreamProtocolError,
    UpstreamResponse,
)
from voidllm.transport.eager import send_eagerly

__all__ = ["H11Pool", "OriginStatistics", "PoolStatistics"]

_RECEIVE_SIZE = 65536
_COALESCE_LIMIT = 65536
"""Bytes bodies up to this size are sent in the same ``send_all`` as the request head."""
_MAX_HEAD_SIZE = 65536
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FRAMING = frozenset((b"content-length", b"transfer-encoding"))
_NO_BODY_METHODS = frozenset((b"GET", b"HEAD"))
_CHUNKED = (b"transfer-encoding", b"chunked")


@attrs.frozen
class OriginStatistics:
    """Connections of one origin at one moment."""

    origin: str
    connections_open: int
    connections_idle: int
    connections_in_use: int
    requests_waiting: int


@attrs.frozen
class PoolStatistics:
    """A snapshot of the pool: one entry per origin it has talked to."""

    origins: tuple[OriginStatistics, ...]

    def for_origin(self, origin: str) -> OriginStatistics | None:
        """The entry for ``origin`` (``"http://127.0.0.1:8080"``, port always written), if any."""
        return next((entry for entry in self.origins if entry.origin == origin), None)


@attrs.define(eq=False)
class H11Pool:
    """Pooled keep-alive HTTP/1.1 over trio sockets (TLS via :class:`trio.SSLStream`), parsed by h11.

    Args:
        max_connections_per_origin: requests in flight per origin; more wait for a free slot.
        max_idle_per_origin: idle keep-alive connections kept per origin.
        keepalive_expiry: seconds an idle connection may wait before it is closed instead of reused.
        connect_timeout: seconds for TCP connect plus TLS handshake (a socket-phase limit, not a deadline).
        ssl_context: for https; default: the system trust store through ``truststore`` when installed, else
            certifi's bundle; ALPN ``http/1.1``. An injected context must not offer ``h2``.
    """

    max_connections_per_origin: int = 100
    max_idle_per_origin: int = 32
    keepalive_expiry: float = 60.0
    connect_timeout: float = 10.0
    ssl_context: ssl.SSLContext | None = None
    _origins: dict[str, _OriginPool] = attrs.field(factory=dict, init=False)
    _closed: bool = attrs.field(default=False, init=False)

    def request(
        self,
        method: bytes,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterable[bytes],
        *,
        content_length: int | None = None,
    ) -> AbstractAsyncContextManager[UpstreamResponse]:
        """See :meth:`voidllm.transport.base.Transport.request`."""
        return ResponseContext(self._open, method, url, headers, body, content_length)

    async def aclose(self) -> None:
        """Close every connection, idle or in use; waiting and later requests raise ClosedResourceError."""
        self._closed = True
        connections: list[_Connection] = []
        for pool in self._origins.values():
            pool.waiters.unpark_all()
            connections.extend(pool.idle)
            connections.extend(pool.active)
            pool.idle.clear()
            pool.active.clear()
        with trio.move_on_after(CLOSE_GRACE, shield=True):
            for connection in connections:
                await connection.aclose()

    def statistics(self) -> PoolStatistics:
        """Open, idle and in-use connections and waiting requests, per origin."""
        return PoolStatistics(
            tuple(
                OriginStatistics(
                    origin=key,
                    connections_open=len(pool.idle) + len(pool.active),
                    connections_idle=len(pool.idle),
                    connections_in_use=len(pool.active),
                    requests_waiting=len(pool.waiters),
                )
                for key, pool in self._origins.items()
            )
        )

    async def _open(
        self,
        method: bytes,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterable[bytes],
        content_length: int | None,
    ) -> _Response:
        target = _parse_url(url)
        pool = self._origins.get(target.origin) or self._add_origin(target)
        length: int | None
        if isinstance(body, bytes | bytearray | memoryview):
            replayable, length = True, len(body)
        else:
            replayable, length = False, content_length
        head = _request_head(method, target, headers, length)
        await self._acquire_slot(pool)
        try:
            connection = await self._checkout(pool)
            try:
                response = await self._exchange(pool, connection, head, body, retry=replayable)
            except _StaleConnectionError:
                connection = await self._connect(pool)
                response = await self._exchange(pool, connection, head, body, retry=False)
        except BaseException:
            self._release_slot(pool)
            raise
        return _Response(self, pool, connection, response)

    def _add_origin(self, target: _Target) -> _OriginPool:
        pool = _OriginPool(target)
        self._origins[target.origin] = pool
        return pool

    async def _acquire_slot(self, pool: _OriginPool) -> None:
        if self._closed:
            raise trio.ClosedResourceError("transport is closed")
        if pool.slots < self.max_connections_per_origin:
            pool.slots += 1
            return  # no checkpoint here: sending the request is one
        await pool.waiters.park()  # woken with the slot of a finishing request, or by aclose()
        if self._closed:
            raise trio.ClosedResourceError("transport is closed")

    def _release_slot(self, pool: _OriginPool) -> None:
        if pool.waiters:
            pool.waiters.unpark()  # hand the slot over
        else:
            pool.slots -= 1

    async def _checkout(self, pool: _OriginPool) -> _Connection:
        now = trio.current_time()
        while pool.idle:
            connection = pool.idle.pop()
            if now - connection.idle_since < self.keepalive_expiry and not connection.is_stale():
                pool.active.add(connection)
                return connection
            await connection.aclose()
        return await self._connect(pool)

    async def _connect(self, pool: _OriginPool) -> _Connection:
        stream, sock = await self._open_stream(pool.target)
        connection = _Connection(stream, sock)
        pool.active.add(connection)
        return connection

    async def _open_stream(self, target: _Target) -> tuple[trio.abc.Stream, trio.socket.SocketType | None]:
        """Connect (and handshake) within ``connect_timeout``; the seam tests replace with memory streams."""
        try:
            with trio.fail_after(self.connect_timeout):
                tcp = await self._connect_tcp(target)
                try:
                    tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
                    stream = await self._start_tls(tcp, target.host) if target.tls else tcp
                except BaseException:
                    await trio.aclose_forcefully(tcp)
                    raise
        except trio.TooSlowError as exc:
            raise UpstreamConnectTimeoutError("connecting to the upstream timed out") from exc
        except (OSError, trio.BrokenResourceError) as exc:
            raise UpstreamConnectError("could not connect to the upstream") from exc
        return stream, tcp.socket

    async def _connect_tcp(self, target: _Target) -> trio.SocketStream:
        """The TCP connection (``OSError`` when none can be made); a subclass may choose the address."""
        return await trio.open_tcp_stream(target.host, target.port)

    async def _start_tls(self, tcp: trio.SocketStream, host: str) -> trio.SSLStream[trio.SocketStream]:
        if self.ssl_context is None:
            self.ssl_context = _default_ssl_context()
        stream = trio.SSLStream(tcp, self.ssl_context, server_hostname=host, https_compatible=True)
        await stream.do_handshake()
        if stream.selected_alpn_protocol() not in (None, "http/1.1"):
            raise UpstreamConnectError("upstream negotiated a protocol other than HTTP/1.1")
        return stream

    async def _exchange(
        self,
        pool: _OriginPool,
        connection: _Connection,
        head: h11.Request,
        body: bytes | AsyncIterable[bytes],
        *,
        retry: bool,
    ) -> h11.Response:
        """Send the request and read up to the response headers; on any failure the connection is closed."""
        connection.received = False
        try:
            await connection.send_request(head, body)
            return await connection.receive_head()
        except (trio.BrokenResourceError, h11.RemoteProtocolError) as exc:
            await self._discard(pool, connection)
            if retry and connection.reused and not connection.received:
                raise _StaleConnectionError from None
            if isinstance(exc, h11.RemoteProtocolError) and not connection.eof:
                raise UpstreamProtocolError("malformed upstream response head") from None  # h11 quotes bytes
            raise UpstreamProtocolError("upstream closed the connection before the response headers") from exc
        except BaseException:
            await self._discard(pool, connection)
            raise

    async def _discard(self, pool: _OriginPool, connection: _Connection) -> None:
        pool.active.discard(connection)
        await connection.aclose()

    async def _release(self, pool: _OriginPool, connection: _Connection, *, complete: bool) -> None:
        """Pool the connection if the exchange finished cleanly and keep-alive holds, else close it."""
        pool.active.discard(connection)
        protocol = connection.protocol
        self._release_slot(pool)
        finished = complete and protocol.our_state is h11.DONE and protocol.their_state is h11.DONE
        if not finished or self._closed:
            await connection.aclose()
            return
        protocol.start_next_cycle()
        now = connection.idle_since = trio.current_time()
        connection.reused = True
        idle = pool.idle
        idle.append(connection)
        expiry, limit = self.keepalive_expiry, self.max_idle_per_origin
        while idle and (len(idle) > limit or now - idle[0].idle_since >= expiry):
            await idle.popleft().aclose()
        # (no checkpoint of its own: pooling is a few list operations, and a yield here would cost every
        # request a scheduler round after its answer)


class _StaleConnectionError(Exception):
    """A reused connection failed before any response byte; the request may be sent again."""


@attrs.frozen
class _Target:
    origin: str
    tls: bool
    host: str
    port: int
    host_header: bytes
    path: bytes


@functools.lru_cache(maxsize=1024)
def _parse_url(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("unsupported upstream URL scheme")
    host = parts.hostname
    if not host:
        raise ValueError("upstream URL has no host")
    port = parts.port or _DEFAULT_PORTS[scheme]
    ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
    bracketed = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    host_header = bracketed if port == _DEFAULT_PORTS[scheme] else f"{bracketed}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(
        origin=f"{scheme}://{bracketed}:{port}",
        tls=scheme == "https",
        host=ascii_host,
        port=port,
        host_header=host_header.encode("ascii"),
        path=path.encode("ascii"),
    )


def _request_head(
    method: bytes, target: _Target, headers: list[tuple[bytes, bytes]], body_length: int | None
) -> h11.Request:
    """The request line and headers: the caller's minus framing, plus ``Host`` if missing and our framing."""
    out: list[tuple[bytes, bytes]] = []
    has_host = False
    for name, value in headers:
        lower = name.lower()
        if lower in _FRAMING:
            continue
        if lower == b"host":
            has_host = True
        out.append((name, value))
    if not has_host:
        out.insert(0, (b"host", target.host_header))
    if body_length is None:
        out.append(_CHUNKED)
    elif body_length or method not in _NO_BODY_METHODS:
        out.append((b"content-length", b"%d" % body_length))
    try:
        return h11.Request(method=method, target=target.path, headers=out)
    except h11.LocalProtocolError:
        raise ValueError("invalid request method or header") from None  # h11's message quotes the value


def _default_ssl_context() -> ssl.SSLContext:
    try:
        import truststore
    except ImportError:
        import certifi

        context = ssl.create_default_context(cafile=certifi.where())
    else:
        context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_alpn_protocols(["http/1.1"])
    return context


@attrs.define(eq=False)
class _OriginPool:
    target: _Target
    idle: collections.deque[_Connection] = attrs.field(factory=collections.deque)
    active: set[_Connection] = attrs.field(factory=set)
    slots: int = 0
    waiters: trio.lowlevel.ParkingLot = attrs.field(factory=trio.lowlevel.ParkingLot)


@attrs.define(eq=False)
class _Connection:
    """One upstream connection and its h11 state machine; ``received``/``eof`` describe the current cycle."""

    stream: trio.abc.Stream
    socket: trio.socket.SocketType | None
    protocol: h11.Connection = attrs.field(
        factory=lambda: h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD_SIZE)
    )
    idle_since: float = 0.0
    reused: bool = False
    received: bool = False
    eof: bool = False

    def is_stale(self) -> bool:
        """Readable while idle: the peer closed it (or sent bytes nobody asked for)."""
        return self.socket is not None and self.socket.is_readable()

    async def aclose(self) -> None:
        """Close the socket at once (no TLS close_notify); the peer sees EOF."""
        await trio.aclose_forcefully(self.stream)

    async def receive(self) -> None:
        data = await self.stream.receive_some(_RECEIVE_SIZE)
        if data:
            self.received = True
        else:
            self.eof = True
        # h11 appends the data to a bytearray, so a bytearray (which trio's stubs allow) is as good as bytes.
        self.protocol.receive_data(data)  # type: ignore[arg-type]

    async def send_request(self, head: h11.Request, body: bytes | AsyncIterable[bytes]) -> None:
        protocol = self.protocol
        data = protocol.send(head) or b""
        if isinstance(body, bytes | bytearray | memoryview):
            if body:  # framed by Content-Length: h11 passes the bytes through unchanged
                protocol.send_with_data_passthrough(h11.Data(data=body))
            protocol.send(h11.EndOfMessage())
            if len(body) <= _COALESCE_LIMIT:
                await send_eagerly(self.stream, data + body)
            else:
                await send_eagerly(self.stream, data)
                await send_eagerly(self.stream, body)
            return
        try:
            await self.stream.send_all(data)
            async for chunk in body:
                if chunk:
                    await self.stream.send_all(protocol.send(h11.Data(data=chunk)) or b"")
            await self.stream.send_all(protocol.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            raise ValueError("streamed request body does not match content_length") from None

    async def receive_head(self) -> h11.Response:
        protocol = self.protocol
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                await self.receive()
            elif type(event) is h11.Response:
                return event
            elif type(event) is not h11.InformationalResponse:  # pragma: no cover - h11 raises first
                raise UpstreamProtocolError("unexpected upstream event before the response headers")


_Step = h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]
"""What ``h11.Connection.next_event`` returns."""


class _Response:
    """An :class:`UpstreamResponse` whose body is read from its pooled connection on demand."""

    __slots__ = (
        "_ahead",
        "_complete",
        "_connection",
        "_origin",
        "_pool",
        "headers",
        "http_version",
        "status",
    )

    def __init__(
        self, pool: H11Pool, origin: _OriginPool, connection: _Connection, event: h11.Response
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._connection: _Connection | None = connection
        self._complete = False
        self._ahead: _Step | h11.RemoteProtocolError | None = None
        self.status = event.status_code
        self.headers: list[tuple[bytes, bytes]] = list(event.headers)
        self.http_version = event.http_version

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        return self

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        connection = self._connection
        if self._complete:
            raise StopAsyncIteration
        if connection is None:
            raise trio.ClosedResourceError("response is closed")
        protocol = connection.protocol
        try:
            while True:
                if self._ahead is None:
                    event = protocol.next_event()
                else:  # what body_at_hand() read ahead
                    ahead, self._ahead = self._ahead, None
                    if isinstance(ahead, h11.RemoteProtocolError):
                        raise ahead
                    event = ahead
                if event is h11.NEED_DATA:
                    await connection.receive()
                elif type(event) is h11.Data:
                    if event.data:
                        return bytes(event.data)
                elif type(event) is h11.EndOfMessage:
                    self._complete = True
                    raise StopAsyncIteration
                else:  # pragma: no cover - h11 raises first
                    raise UpstreamProtocolError("unexpected upstream event in the response body")
        except trio.BrokenResourceError as exc:
            raise UpstreamClosedError("upstream closed the connection mid-body") from exc
        except h11.RemoteProtocolError:
            if connection.eof:
                raise UpstreamClosedError("upstream closed the connection mid-body") from None
            raise UpstreamProtocolError("malformed upstream response body") from None

    def body_at_hand(self) -> bool:
        """Whether the next body step is already received: h11 is asked for its next event from what is
        buffered (no I/O), and that event is kept for :meth:`__anext__`."""
        connection = self._connection
        if connection is None or self._complete:
            return False
        if self._ahead is None:
            try:
                event = connection.protocol.next_event()
                while type(event) is h11.Data and not event.data:
                    event = connection.protocol.next_event()
            except h11.RemoteProtocolError as exc:  # malformed: the next step raises, without a wait
                self._ahead = exc
                return True
            if event is h11.NEED_DATA:
                return False
            self._ahead = event
        return True

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            await trio.lowlevel.checkpoint()
            return
        ahead, self._ahead = self._ahead, None
        if isinstance(ahead, h11.RemoteProtocolError):
            complete = False
        else:
            complete = (
                self._complete or type(ahead) is h11.EndOfMessage or _drain_buffered(connection.protocol)
            )
        await self._pool._release(self._origin, connection, complete=complete)


def _drain_buffered(protocol: h11.Connection) -> bool:
    """Consume what is already buffered; True if that reaches the end of the message (no I/O)."""
    try:
        while True:
            event = protocol.next_event()
            if type(event) is not h11.Data:
                return type(event) is h11.EndOfMessage
    except h11.RemoteProtocolError:
        return False
