"""The HTTP/1.1 server loop the mock upstreams share (trio + h11): listen, read requests, keep-alive, send.

:func:`open_listener` binds one TCP listener (``localhost`` may resolve to IPv4 and IPv6, and with port 0
the two would get different ports, so only the first is kept). The mock then runs
``trio.serve_listeners`` with a handler that wraps each socket in an :class:`H11Connection` and calls
:func:`converse`: read a request with its whole body (Content-Length or chunked; ``Expect: 100-continue``
is answered), let the mock answer it, and go on with the next request on the same connection while both
sides allow it (keep-alive). A malformed request can get an answer of the mock's choosing
(``malformed``); a client that goes away ends the conversation quietly (one that breaks off a request body
can be noted: ``gone``), and the socket is closed at the end either way.

Sending: :meth:`H11Connection.whole` gives the bytes of a whole response (one ``send_all``);
:meth:`H11Connection.send_events` streams a chunked body, one write per event, optionally cut short; the
pieces (:meth:`~H11Connection.head`, :meth:`~H11Connection.send`) are there for the failure modes that
break the protocol on purpose.

Deliberately left out: HTTP/2, TLS, request body limits (the mocks serve tests and benchmarks).
"""

from __future__ import annotations

import http
from typing import TYPE_CHECKING, Final

import attrs
import h11
import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

__all__ = ["H11Connection", "Headers", "PeerGone", "Request", "converse", "open_listener"]

Headers = list[tuple[bytes, bytes]]

_READ_SIZE: Final = 65536
_REASONS: Final = {status.value: status.phrase.encode() for status in http.HTTPStatus}


class PeerGone(Exception):
    """The client closed the connection in the middle of a request body; ``target`` is the request's."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


@attrs.frozen
class Request:
    """One request with its whole body; header names are lowercase (h11 lowercases them)."""

    method: str
    target: str
    headers: Headers
    body: bytes


async def open_listener(host: str, port: int) -> tuple[trio.SocketListener, int]:
    """Listen on ``host``:``port``; return the listener and the port it is bound to."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    for extra in listeners[1:]:
        await extra.aclose()
    bound: int = listeners[0].socket.getsockname()[1]
    return listeners[0], bound


@attrs.define(eq=False)
class H11Connection:
    """One server side of a client connection: the socket and its h11 state."""

    stream: trio.SocketStream
    conn: h11.Connection = attrs.Factory(lambda: h11.Connection(h11.SERVER))

    async def read_request(self) -> Request | None:
        """The next request with its whole body, or None when the client closed the connection before it.

        Raises:
            PeerGone: the client closed the connection in the middle of the body.
            h11.RemoteProtocolError: the request is malformed.
        """
        event = await self._next_event()
        if not isinstance(event, h11.Request):
            return None
        head = event
        method, target = head.method.decode("ascii"), head.target.decode("latin-1")
        if self.conn.they_are_waiting_for_100_continue:
            go_on = h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
            await self.stream.send_all(self.send(go_on))
        chunks: list[bytes] = []
        while not isinstance(event := await self._next_event(), h11.EndOfMessage):
            if event is None:
                raise PeerGone(target)
            assert isinstance(event, h11.Data), event
            chunks.append(bytes(event.data))
        return Request(method, target, list(head.headers), b"".join(chunks))

    async def _next_event(self) -> h11.Event | None:
        """The next h11 event, reading from the socket as needed (a reset counts as end of file); None when
        the client closed the connection in the middle of a body."""
        while (event := self.conn.next_event()) is h11.NEED_DATA:
            try:
                data = await self.stream.receive_some(_READ_SIZE)
            except trio.BrokenResourceError:
                data = b""
            if not data and self.conn.their_state is h11.SEND_BODY:
                return None
            self.conn.receive_data(data)
        assert isinstance(event, h11.Event), "h11 pauses only after a request, and we read one at a time"
        return event

    def start_next_cycle(self) -> bool:
        """Get ready for the next request; False when the connection cannot carry one."""
        if self.conn.our_state is not h11.DONE or self.conn.their_state is not h11.DONE:
            return False
        self.conn.start_next_cycle()
        return True

    def send(self, event: h11.Event) -> bytes:
        """The bytes of ``event`` (h11 must see the events of a response in order)."""
        return self.conn.send(event) or b""

    def head(self, status: int, headers: Headers) -> bytes:
        """The bytes of a response head with the standard reason phrase."""
        return self.send(h11.Response(status_code=status, headers=headers, reason=_REASONS.get(status, b"")))

    def whole(self, status: int, headers: Headers, body: bytes) -> bytes:
        """The bytes of a whole response (``headers`` carry its Content-Length)."""
        return self.head(status, headers) + self.send(h11.Data(data=body)) + self.send(h11.EndOfMessage())

    async def send_events(
        self,
        status: int,
        headers: Headers,
        events: Sequence[bytes],
        *,
        interval: float = 0.0,
        stop_after: int | None = None,
        gate: trio.Event | None = None,
    ) -> bool:
        """Stream ``events`` with chunked encoding, one write per event (the head goes with the first, the
        end with the last), ``interval`` seconds apart; with ``gate``, the head goes alone and the events
        wait until it is set. With ``stop_after``, only that many events are sent and the body is left
        unfinished; return whether it was finished."""
        sent = events[:stop_after]
        finished = len(sent) == len(events)
        pending = self.head(status, headers)
        if gate is not None:
            await self.stream.send_all(pending)
            pending = b""
            await gate.wait()
        for number, event in enumerate(sent):
            if number and interval > 0:
                await trio.sleep(interval)
            pending += self.send(h11.Data(data=event))
            if finished and number == len(sent) - 1:
                pending += self.send(h11.EndOfMessage())
            await self.stream.send_all(pending)
            pending = b""
        if pending:  # no event sent: an empty stream, or stopped before the first event
            await self.stream.send_all(pending + (self.send(h11.EndOfMessage()) if finished else b""))
        return finished

    async def reject(self, status: int, headers: Headers, body: bytes) -> None:
        """Answer a malformed request when the protocol state still allows an answer."""
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        try:
            await self.stream.send_all(self.whole(status, headers, body))
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
            pass


async def converse(
    connection: H11Connection,
    answer: Callable[[Request], Awaitable[bool]],
    *,
    malformed: Callable[[h11.RemoteProtocolError], tuple[int, Headers, bytes]] | None = None,
    gone: Callable[[str], None] | None = None,
) -> None:
    """Answer requests on one connection until either side ends it, then close the socket.

    ``answer`` sends the response and says whether the connection may carry another request. With
    ``malformed``, a malformed request gets the response it returns (status, headers, body); ``gone`` is
    told the target of a request whose body the client broke off by closing the connection.
    """
    try:
        while (request := await connection.read_request()) is not None:
            if not await answer(request) or not connection.start_next_cycle():
                return
    except PeerGone as exc:
        if gone is not None:
            gone(exc.target)
    except h11.RemoteProtocolError as error:
        if malformed is not None:
            await connection.reject(*malformed(error))
    except (h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(connection.stream)
