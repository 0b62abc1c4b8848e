"""The mock upstreams' shared HTTP/1.1 server loop (voidllm.testing.h11server), over real sockets.

The mocks' own behaviour is tested in tests/test_mock_openai.py and the provider end-to-end tests; here the
loop itself: keep-alive, whole bodies (Content-Length and chunked), 100-continue, event streams cut short,
the malformed and gone hooks. Real sockets, so the real clock (STYLE P17), each wait bounded.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import h11
import trio

from voidllm.testing.h11server import H11Connection, Headers, Request, converse, open_listener

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

LIMIT = 10  # seconds for any one exchange on this shared machine


@asynccontextmanager
async def serve(
    answer: Callable[[H11Connection, Request], Awaitable[bool]], **hooks: Any
) -> AsyncIterator[int]:
    async def handle(stream: trio.SocketStream) -> None:
        connection = H11Connection(stream)
        await converse(connection, lambda request: answer(connection, request), **hooks)

    listener, port = await open_listener("127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, handle, [listener])
        yield port
        nursery.cancel_scope.cancel()


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    out = bytearray()
    while data := await stream.receive_some(65536):
        out += data
    return bytes(out)


def chunked_body(target: str, raw: bytes) -> tuple[bytes, bool]:
    """The body of the response in ``raw`` and whether it was finished, read by an h11 client."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target=target, headers=[("Host", "t")]))
    client.send(h11.EndOfMessage())
    client.receive_data(raw)
    client.receive_data(b"")
    body = b""
    try:
        while not isinstance(event := client.next_event(), h11.EndOfMessage):
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return body, False
            if isinstance(event, h11.Data):
                body += event.data
    except h11.RemoteProtocolError:  # closed in the middle of the chunked body
        return body, False
    return body, True


def echo(seen: list[Request]) -> Callable[[H11Connection, Request], Awaitable[bool]]:
    async def answer(connection: H11Connection, request: Request) -> bool:
        seen.append(request)
        body = request.method.encode() + b" " + request.target.encode() + b" " + request.body
        headers: Headers = [(b"content-length", b"%d" % len(body))]
        await connection.stream.send_all(connection.whole(200, headers, body))
        return True

    return answer


async def test_requests_on_one_connection_with_whole_bodies() -> None:
    seen: list[Request] = []
    async with serve(echo(seen)) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(
            b"POST /a?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nX-Name: V\r\n\r\nhello"
            b"POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            b"GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        with trio.fail_after(LIMIT):
            raw = await read_until_closed(stream)
    assert [(r.method, r.target, r.body) for r in seen] == [
        ("POST", "/a?x=1", b"hello"),
        ("POST", "/b", b"abcde"),
        ("GET", "/c", b""),
    ]
    assert (b"x-name", b"V") in seen[0].headers  # names lowercase, values as sent
    assert raw.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert raw.endswith(b"GET /c ")


async def test_expect_100_continue_is_answered_before_the_body() -> None:
    seen: list[Request] = []
    async with serve(echo(seen)) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(
            b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\n\r\n"
        )
        with trio.fail_after(LIMIT):
            assert (await stream.receive_some(65536)).startswith(b"HTTP/1.1 100 Continue\r\n")
            await stream.send_all(b"ok")
            raw = await read_until_closed(stream)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert seen[0].body == b"ok"


async def test_events_go_out_chunked_and_may_be_cut_short() -> None:
    events = [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"]
    finished: list[bool] = []

    async def answer(connection: H11Connection, request: Request) -> bool:
        stop_after = int(request.target.removeprefix("/")) if request.target != "/all" else None
        finished.append(await connection.send_events(200, [], events, stop_after=stop_after))
        return finished[-1]

    async with serve(answer) as port:
        for target, body, complete in [
            ("/all", b"".join(events), True),
            ("/2", b"".join(events[:2]), False),
            ("/0", b"", False),
        ]:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(
                b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % target.encode()
            )
            with trio.fail_after(LIMIT):
                raw = await read_until_closed(stream)
            assert chunked_body(target, raw) == (body, complete), target
    assert finished == [True, False, False]


async def test_an_empty_event_stream_is_finished() -> None:
    async def answer(connection: H11Connection, request: Request) -> bool:
        return await connection.send_events(200, [], [])

    async with serve(answer) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        with trio.fail_after(LIMIT):
            raw = await read_until_closed(stream)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\n0\r\n\r\n")


async def test_a_malformed_request_gets_the_hooks_answer_then_the_connection_closes() -> None:
    body = b"bad request"

    def malformed(error: h11.RemoteProtocolError) -> tuple[int, Headers, bytes]:
        return 400, [(b"content-length", b"%d" % len(body)), (b"connection", b"close")], body

    seen: list[Request] = []
    async with serve(echo(seen), malformed=malformed) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"\x00\xff not HTTP\r\n\r\n")
        with trio.fail_after(LIMIT):
            raw = await read_until_closed(stream)
        assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert raw.endswith(b"\r\n\r\nbad request")
    async with serve(echo(seen)) as port:  # without the hook the connection just closes
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"\x00\xff not HTTP\r\n\r\n")
        with trio.fail_after(LIMIT):
            assert await read_until_closed(stream) == b""
    assert seen == []


async def test_a_client_that_breaks_off_its_body_is_reported_to_the_gone_hook() -> None:
    gone: list[str] = []
    told = trio.Event()

    def note(target: str) -> None:
        gone.append(target)
        told.set()

    seen: list[Request] = []
    async with serve(echo(seen), gone=note) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        await stream.aclose()
        with trio.fail_after(LIMIT):
            await told.wait()
    assert gone == ["/upload"]
    assert seen == []
