"""HTTP/1.1 answers (voidllm.web.http1): an answer of known length goes out in one write with its first body
bytes, an answer without a length sends its head at once, the end of an answer of known length writes nothing,
and a held head is never lost or reordered.

The protocol runs as hypercorn runs it (its own h11 connection, config and worker context); its writes are
captured where hypercorn's connection would write them to the socket."""

from __future__ import annotations

from types import SimpleNamespace

import h11
import hypercorn.config
import pytest
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.events import Body, EndBody, Response, StreamClosed
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio.worker_context import WorkerContext

from voidllm.asgi import HEAD_WITH_FIRST_PART
from voidllm.web.http1 import GatewayH11Protocol

pytestmark = pytest.mark.trio

REQUEST = b"GET /v1/models HTTP/1.1\r\nhost: gateway\r\n\r\n"


def protocol(cls: type[H11Protocol] = GatewayH11Protocol) -> tuple[H11Protocol, list[Event]]:
    """A protocol that has read one request (its connection is ready for the answer) and its writes."""
    config = hypercorn.config.Config()
    config.include_date_header = False  # the bytes compared below would carry the time
    written: list[Event] = []

    async def send(event: Event) -> None:
        written.append(event)

    proto = cls(None, config, WorkerContext(None), None, None, False, None, None, send)  # type: ignore[arg-type]
    proto.connection.receive_data(REQUEST)
    while proto.connection.next_event().__class__.__name__ != "EndOfMessage":
        pass
    return proto, written


def raw(written: list[Event]) -> list[bytes]:
    return [bytes(event.data) for event in written if isinstance(event, RawData)]


async def answer(proto: H11Protocol, headers: list[tuple[bytes, bytes]], *bodies: bytes) -> None:
    await proto.stream_send(Response(stream_id=1, status_code=200, headers=headers))
    for body in bodies:
        await proto.stream_send(Body(stream_id=1, data=body))
    await proto.stream_send(EndBody(stream_id=1))


async def test_an_answer_of_known_length_is_one_write_with_its_body() -> None:
    proto, written = protocol()
    await proto.stream_send(Response(stream_id=1, status_code=200, headers=[(b"content-length", b"7")]))
    assert written == []  # held until the body

    await proto.stream_send(Body(stream_id=1, data=b'{"a":1}'))

    assert raw(written) == [b'HTTP/1.1 200 OK\r\ncontent-length: 7\r\nserver: hypercorn-h11\r\n\r\n{"a":1}']


async def test_the_bytes_are_those_hypercorn_writes_in_several_writes() -> None:
    """Joined, the writes are byte for byte hypercorn's own (its status line carries no reason phrase)."""
    ours, our_writes = protocol()
    theirs, their_writes = protocol(H11Protocol)
    for proto in (ours, theirs):
        await answer(proto, [(b"content-type", b"application/json"), (b"content-length", b"4")], b"ab", b"cd")
        await proto.stream_send(StreamClosed(stream_id=1))

    assert len(raw(their_writes)) == 4  # head, two bodies, the end (empty)
    assert len(raw(our_writes)) == 2  # head with the first body, the second body (the end is no bytes)
    assert b"".join(raw(our_writes)) == b"".join(raw(their_writes)).replace(b" 200 \r\n", b" 200 OK\r\n", 1)
    assert [type(e) for e in our_writes if not isinstance(e, RawData)] == [
        type(e) for e in their_writes if not isinstance(e, RawData)
    ]


async def test_an_answer_without_a_length_sends_its_head_at_once() -> None:
    """Chunked (an event stream): the client waits for the head to open its stream."""
    proto, written = protocol()
    await proto.stream_send(
        Response(stream_id=1, status_code=200, headers=[(b"content-type", b"text/event-stream")])
    )
    assert raw(written) == [
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nserver: hypercorn-h11\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    ]

    await proto.stream_send(Body(stream_id=1, data=b"data: 1\n\n"))
    assert raw(written)[1] == b"9\r\ndata: 1\n\n\r\n"


async def test_a_stream_whose_first_event_is_at_hand_goes_out_with_its_head() -> None:
    """The app marks its start (voidllm.asgi.HEAD_WITH_FIRST_PART): the head waits for the first body message
    and both are one write; the rest of the stream is written as before."""
    proto, written = protocol()
    marked = {"type": "http.response.start", "status": 200, HEAD_WITH_FIRST_PART: True}
    proto.stream = SimpleNamespace(response=marked)  # type: ignore[assignment] # hypercorn's HTTPStream keeps it
    await proto.stream_send(
        Response(stream_id=1, status_code=200, headers=[(b"content-type", b"text/event-stream")])
    )
    assert written == []

    await proto.stream_send(Body(stream_id=1, data=b"data: 1\n\n"))
    await proto.stream_send(Body(stream_id=1, data=b"data: 2\n\n"))
    await proto.stream_send(EndBody(stream_id=1))

    assert raw(written) == [
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nserver: hypercorn-h11\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n",
        b"9\r\ndata: 2\n\n\r\n",
        b"0\r\n\r\n",
    ]


async def test_a_start_marked_false_sends_its_head_at_once() -> None:
    proto, written = protocol()
    proto.stream = SimpleNamespace(response={HEAD_WITH_FIRST_PART: False})  # type: ignore[assignment]
    await proto.stream_send(
        Response(stream_id=1, status_code=200, headers=[(b"content-type", b"text/event-stream")])
    )
    assert len(raw(written)) == 1


async def test_the_head_is_validated_once() -> None:
    """h11 validates the headers each time an event is made: ours, and h11's own when it sets the framing
    headers. Putting the reason phrase in afterwards made a third."""
    proto, _ = protocol()
    made: list[int] = []
    real_init = h11.Response.__init__

    def counting(self: h11.Response, **kwargs: object) -> None:
        made.append(kwargs.get("status_code"))  # type: ignore[arg-type]
        real_init(self, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(h11.Response, "__init__", counting)
        await proto.stream_send(Response(stream_id=1, status_code=200, headers=[(b"content-length", b"0")]))
    assert made == [200, 200]


async def test_an_empty_answer_of_known_length_goes_out_at_its_end() -> None:
    proto, written = protocol()
    await answer(proto, [(b"content-length", b"0")])

    assert raw(written) == [b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nserver: hypercorn-h11\r\n\r\n"]


async def test_a_held_head_goes_out_before_the_stream_closes() -> None:
    """An app that ends after its start without a body (it failed): the head is written, then the
    connection closes, as hypercorn did."""
    proto, written = protocol()
    await proto.stream_send(Response(stream_id=1, status_code=200, headers=[(b"content-length", b"5")]))
    await proto.stream_send(StreamClosed(stream_id=1))

    assert raw(written) == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nserver: hypercorn-h11\r\n\r\n"]
    assert isinstance(written[-1], Closed)  # the answer is incomplete: the connection ends


async def test_the_next_answer_on_the_connection_is_held_again() -> None:
    proto, written = protocol()
    await answer(proto, [(b"content-length", b"1")], b"a")
    await proto.stream_send(StreamClosed(stream_id=1))
    assert isinstance(written[-1], Updated)  # kept alive
    proto.connection.receive_data(REQUEST)
    while proto.connection.next_event().__class__.__name__ != "EndOfMessage":
        pass
    written.clear()

    await answer(proto, [(b"content-length", b"1")], b"b")

    assert raw(written) == [b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\nserver: hypercorn-h11\r\n\r\nb"]


async def test_statuses_get_their_reason_phrase() -> None:
    proto, written = protocol()
    await answer(proto, [(b"content-length", b"0")])
    assert raw(written)[0].startswith(b"HTTP/1.1 200 OK\r\n")

    proto, written = protocol()
    await proto.stream_send(Response(stream_id=1, status_code=429, headers=[(b"content-length", b"0")]))
    await proto.stream_send(EndBody(stream_id=1))
    assert raw(written)[0].startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
