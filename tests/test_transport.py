"""The upstream transport, H11Pool, against a real trio + h11 server on an ephemeral port.

Real-socket tests use the real clock and wait on the server's own observations (connections accepted,
requests seen, closes seen), never on sleeps. The pool's bookkeeping over time (idle expiry, idle trimming)
runs on memory streams with the autojump clock.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import ipaddress
import socket
import ssl
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import h11
import pytest
import trio
import trio.testing

from voidllm.transport.base import (
    Transport,
    UpstreamClosedError,
    UpstreamConnectError,
    UpstreamConnectTimeoutError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from voidllm.transport.h11pool import H11Pool

MARKER = b"zk-marker-7f3a9c"
# "Closes at once" is checked on the autojump clock: the upstream sees EOF at the very (virtual) instant the
# caller was cancelled, so no timer of any length was waited for, however busy the machine is.


# -- the fake upstream ---------------------------------------------------------------------------------------


@attrs.frozen
class Seen:
    method: bytes
    path: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)


class _ClientGone(Exception):
    pass


@attrs.define(eq=False)
class Upstream:
    """A tiny HTTP/1.1 server; the request path picks the behaviour, the attributes record what it saw.

    ``client_closes`` holds ``trio.current_time()`` for each connection the *client* closed (EOF or reset seen
    while the server was reading); ``server_closes`` counts connections the server closed itself.
    """

    base: str = ""
    connections: int = 0
    requests: list[Seen] = attrs.Factory(list)
    client_closes: list[float] = attrs.Factory(list)
    server_closes: int = 0
    drop_idle: bool = False  # close each connection right after its first response, without saying so
    drop_reused_request: bool = False  # read a second request on a connection, then close without answering
    barrier: int = 0  # /barrier answers once this many requests are waiting in it
    waiting: int = 0
    gate: trio.Event = attrs.Factory(trio.Event)  # /stream sends its second chunk once this is set
    _changed: trio.Event = attrs.Factory(trio.Event)

    def url(self, path: str) -> str:
        return self.base + path

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _client_closed(self) -> None:
        self.client_closes.append(trio.current_time())
        self._notify()

    async def serve(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        self._notify()
        protocol = h11.Connection(h11.SERVER)
        served = 0
        try:
            while True:
                request = await self._event(stream, protocol)
                if isinstance(request, h11.ConnectionClosed):
                    return
                assert isinstance(request, h11.Request)
                if self.drop_reused_request and served:
                    break
                body = b""
                while not isinstance(event := await self._event(stream, protocol), h11.EndOfMessage):
                    body += bytes(event.data)
                path = request.target.split(b"?")[0]
                self.requests.append(Seen(request.method, path, list(request.headers), body))
                self._notify()
                keep = await ROUTES[path](Call(self, stream, protocol, request, body))
                served += 1
                if not keep or protocol.our_state is h11.MUST_CLOSE or self.drop_idle:
                    break
                protocol.start_next_cycle()
            self.server_closes += 1
            self._notify()
        except _ClientGone:
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def _event(self, stream: trio.abc.Stream, protocol: h11.Connection) -> object:
        while (event := protocol.next_event()) is h11.NEED_DATA:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                data = b""
            if not data:
                self._client_closed()
                raise _ClientGone
            protocol.receive_data(data)
        return event

    async def wait_eof(self, stream: trio.abc.Stream) -> None:
        """Read until the client closes, and record it."""
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
        self._client_closed()
        raise _ClientGone

    async def serve_silently(self, stream: trio.abc.Stream) -> None:
        """Accept, never answer (not even a TLS handshake), record when the client goes away."""
        with contextlib.suppress(_ClientGone):
            await self.wait_eof(stream)


@attrs.frozen
class Call:
    """One request as a route sees it."""

    up: Upstream
    stream: trio.abc.Stream
    protocol: h11.Connection
    request: h11.Request
    body: bytes

    async def send(self, *events: h11.Event) -> None:
        await self.stream.send_all(b"".join(self.protocol.send(event) or b"" for event in events))

    async def wait_eof(self) -> None:
        await self.up.wait_eof(self.stream)


def _ok(body: bytes, *headers: tuple[bytes, bytes]) -> h11.Response:
    return h11.Response(status_code=200, headers=[(b"content-length", b"%d" % len(body)), *headers])


def _head(**headers: bytes) -> h11.Response:
    return h11.Response(status_code=200, headers=[(k.replace("_", "-"), v) for k, v in headers.items()])


Route = Callable[[Call], Awaitable[bool]]  # returns whether the connection may serve another request
ROUTES: dict[bytes, Route] = {}


def route(path: str) -> Callable[[Route], Route]:
    def register(handler: Route) -> Route:
        ROUTES[path.encode()] = handler
        return handler

    return register


@route("/cl")
async def _cl(call: Call) -> bool:
    body = [] if call.request.method == b"HEAD" else [h11.Data(data=b"hello")]
    await call.send(_ok(b"hello", (b"X-Upstream", b"Yes")), *body, h11.EndOfMessage())
    return True


@route("/echo")
async def _echo(call: Call) -> bool:
    await call.send(_ok(call.body), h11.Data(data=call.body), h11.EndOfMessage())
    return True


@route("/chunked")
async def _chunked(call: Call) -> bool:
    parts = [h11.Data(data=part) for part in (b"a", b"bb", b"ccc")]
    await call.send(_head(transfer_encoding=b"chunked"), *parts, h11.EndOfMessage())
    return True


@route("/close")
async def _close(call: Call) -> bool:
    await call.send(_ok(b"bye", (b"connection", b"close")), h11.Data(data=b"bye"), h11.EndOfMessage())
    return False


@route("/http10")
async def _http10(call: Call) -> bool:
    await call.stream.send_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold-style body")
    return False


@route("/no-length")
async def _no_length(call: Call) -> bool:
    await call.stream.send_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil eof")
    return False


@route("/1xx")
async def _informational(call: Call) -> bool:
    await call.send(
        h11.InformationalResponse(status_code=100, headers=[]),
        h11.InformationalResponse(status_code=103, headers=[(b"link", b"</a.css>; rel=preload")]),
        _ok(b"final"),
        h11.Data(data=b"final"),
        h11.EndOfMessage(),
    )
    return True


@route("/empty")
async def _empty(call: Call) -> bool:
    status = int(dict(call.request.headers).get(b"x-status", b"204"))
    await call.send(h11.Response(status_code=status, headers=[]), h11.EndOfMessage())
    return True


@route("/drop")
async def _drop(call: Call) -> bool:
    return False


@route("/hang")
async def _hang(call: Call) -> bool:
    await call.wait_eof()
    return False


@route("/midbody")
async def _midbody(call: Call) -> bool:
    await call.send(_head(content_length=b"100"), h11.Data(data=b"x" * 10))
    return False


@route("/midbody-chunked")
async def _midbody_chunked(call: Call) -> bool:
    await call.send(_head(transfer_encoding=b"chunked"), h11.Data(data=b"x" * 10))
    return False


@route("/stall")
async def _stall(call: Call) -> bool:
    await call.send(_head(content_length=b"100"), h11.Data(data=b"x" * 10))
    await call.wait_eof()
    return False


@route("/stream")
async def _stream(call: Call) -> bool:
    await call.send(_head(transfer_encoding=b"chunked"), h11.Data(data=b"one"))
    await call.up.gate.wait()
    await call.send(h11.Data(data=b"two"), h11.EndOfMessage())
    return True


@route("/head-first")
async def _head_first(call: Call) -> bool:
    await call.send(_head(transfer_encoding=b"chunked"))
    await call.up.gate.wait()
    await call.send(h11.Data(data=b"late"), h11.EndOfMessage())
    return True


@route("/barrier")
async def _barrier(call: Call) -> bool:
    up = call.up
    up.waiting += 1
    up._notify()
    await up.wait_for(lambda: up.waiting >= up.barrier)
    await call.send(_ok(b"ok"), h11.Data(data=b"ok"), h11.EndOfMessage())
    return True


@route("/malformed")
async def _malformed(call: Call) -> bool:
    await call.stream.send_all(b"HTTP/1.1 200 OK\r\nX-Leak " + MARKER + b"\r\n\r\n")
    await call.wait_eof()
    return False


@route("/malformed-body")
async def _malformed_body(call: Call) -> bool:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    await call.stream.send_all(head + MARKER + b"\r\n")
    await call.wait_eof()
    return False


# -- fixtures ------------------------------------------------------------------------------------------------


TLSContexts = tuple[ssl.SSLContext, ssl.SSLContext]


@pytest.fixture(scope="session")
def tls_contexts(tmp_path_factory: pytest.TempPathFactory) -> TLSContexts:
    """(server, client) contexts: a throwaway CA and a certificate for 127.0.0.1 (``cryptography``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Certificate | None,
        issuer_key: ec.EllipticCurvePrivateKey,
    ) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer.subject if issuer else name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        )
        if issuer is None:
            builder = builder.add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("voidllm test CA", ca_key, None, ca_key)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate("127.0.0.1", leaf_key, ca, ca_key)

    folder: Path = tmp_path_factory.mktemp("tls")
    (folder / "leaf.pem").write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "leaf.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    client.set_alpn_protocols(["http/1.1"])
    return server, client


@asynccontextmanager
async def open_transport(**options: object) -> AsyncIterator[Transport]:
    transport: Transport = H11Pool(**options)  # type: ignore[arg-type]
    try:
        yield transport
    finally:
        await transport.aclose()


@pytest.fixture
async def transport(tls_contexts: TLSContexts) -> AsyncIterator[Transport]:
    async with open_transport(ssl_context=tls_contexts[1]) as transport:
        yield transport


@pytest.fixture
async def upstream(nursery: trio.Nursery) -> Upstream:
    up = Upstream()
    listeners = await nursery.start(functools.partial(trio.serve_tcp, up.serve, 0, host="127.0.0.1"))
    up.base = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
    return up


@pytest.fixture
async def tls_upstream(nursery: trio.Nursery, tls_contexts: TLSContexts) -> Upstream:
    up = Upstream()
    serve = functools.partial(
        trio.serve_ssl_over_tcp, up.serve, 0, tls_contexts[0], host="127.0.0.1", https_compatible=True
    )
    listeners = await nursery.start(serve)
    up.base = f"https://127.0.0.1:{listeners[0].transport_listener.socket.getsockname()[1]}"
    return up


async def fetch(
    transport: Transport,
    url: str,
    method: bytes = b"GET",
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    async with transport.request(method, url, headers or [], body) as response:
        chunks = [chunk async for chunk in response.aiter_bytes()]
    assert all(chunks), "empty chunks must not be yielded"
    return response.status, response.headers, b"".join(chunks)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- interface ----------------------------------------------------------------------------------------------


async def test_content_length_response_and_lowercased_headers(
    transport: Transport, upstream: Upstream
) -> None:
    async with transport.request(b"GET", upstream.url("/cl"), [], b"") as response:
        assert (response.status, response.http_version) == (200, b"1.1")
        assert (b"x-upstream", b"Yes") in response.headers
        assert b"".join([chunk async for chunk in response.aiter_bytes()]) == b"hello"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/chunked", b"abbccc"),
        ("/close", b"bye"),
        ("/http10", b"old-style body"),
        ("/no-length", b"until eof"),
        ("/1xx", b"final"),
    ],
)
async def test_response_framings(transport: Transport, upstream: Upstream, path: str, body: bytes) -> None:
    status, _, received = await fetch(transport, upstream.url(path))
    assert (status, received) == (200, body)


async def test_http10_response_reports_its_version(transport: Transport, upstream: Upstream) -> None:
    async with transport.request(b"GET", upstream.url("/http10"), [], b"") as response:
        assert response.http_version == b"1.0"


async def test_bodiless_responses_keep_the_connection(transport: Transport, upstream: Upstream) -> None:
    head = await fetch(transport, upstream.url("/cl"), method=b"HEAD")
    assert head == (200, [(b"content-length", b"5"), (b"x-upstream", b"Yes")], b"")
    assert (await fetch(transport, upstream.url("/empty")))[::2] == (204, b"")
    not_modified = await fetch(transport, upstream.url("/empty"), headers=[(b"x-status", b"304")])
    assert not_modified[::2] == (304, b"")
    assert upstream.connections == 1


async def test_keep_alive_reuses_one_connection(transport: Transport, upstream: Upstream) -> None:
    for _ in range(10):
        assert (await fetch(transport, upstream.url("/cl")))[2] == b"hello"
    assert upstream.connections == 1
    assert upstream.client_closes == []


async def test_connection_close_and_http10_are_not_reused(transport: Transport, upstream: Upstream) -> None:
    await fetch(transport, upstream.url("/close"))
    await fetch(transport, upstream.url("/http10"))
    await fetch(transport, upstream.url("/cl"))
    assert upstream.connections == 3


async def test_concurrent_requests_all_succeed(transport: Transport, upstream: Upstream) -> None:
    upstream.barrier = 20
    results: list[bytes] = []

    async def one() -> None:
        results.append((await fetch(transport, upstream.url("/barrier")))[2])

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(one)
    assert results == [b"ok"] * 20
    assert upstream.connections == 20  # all 20 were in flight at once (the barrier), each on a connection


async def test_requests_wait_for_a_free_slot(upstream: Upstream) -> None:
    async with open_transport(max_connections_per_origin=1) as transport:
        done: list[str] = []

        async def second() -> None:
            assert (await fetch(transport, upstream.url("/cl")))[2] == b"hello"
            done.append("second")

        with trio.fail_after(10):
            async with transport.request(b"GET", upstream.url("/stream"), [], b"") as first:
                chunks = first.aiter_bytes()
                assert await chunks.__anext__() == b"one"
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(second)
                    await trio.testing.wait_all_tasks_blocked()
                    if isinstance(transport, H11Pool):
                        stats = transport.statistics().for_origin(upstream.url(""))
                        assert stats is not None
                        assert (stats.connections_in_use, stats.requests_waiting) == (1, 1)
                    assert done == []
                    assert upstream.connections == 1
                    assert len(upstream.requests) == 1
                    upstream.gate.set()
                    assert [chunk async for chunk in chunks] == [b"two"]
                    await first.aclose()
        assert done == ["second"]
        assert upstream.connections == 1


async def _body_parts() -> AsyncIterator[bytes]:
    yield b"ab"
    yield b""
    await trio.lowlevel.checkpoint()
    yield b"cd"


async def test_streamed_request_body_is_chunked(transport: Transport, upstream: Upstream) -> None:
    async with transport.request(b"POST", upstream.url("/echo"), [], _body_parts()) as response:
        assert b"".join([chunk async for chunk in response.aiter_bytes()]) == b"abcd"
    seen = upstream.requests[-1]
    assert (seen.header(b"transfer-encoding"), seen.header(b"content-length")) == (b"chunked", None)
    assert seen.body == b"abcd"


async def test_streamed_request_body_with_content_length(transport: Transport, upstream: Upstream) -> None:
    url = upstream.url("/echo")
    async with transport.request(b"POST", url, [], _body_parts(), content_length=4) as response:
        assert b"".join([chunk async for chunk in response.aiter_bytes()]) == b"abcd"
    seen = upstream.requests[-1]
    assert (seen.header(b"transfer-encoding"), seen.header(b"content-length")) == (None, b"4")
    assert seen.body == b"abcd"


async def test_large_bytes_body(transport: Transport, upstream: Upstream) -> None:
    body = bytes(range(256)) * 1024  # 256 KiB: sent apart from the head
    assert (await fetch(transport, upstream.url("/echo"), b"POST", body))[2] == body
    assert upstream.requests[-1].header(b"content-length") == b"262144"


async def test_streamed_body_shorter_than_content_length_is_refused(
    transport: Transport, upstream: Upstream
) -> None:
    with pytest.raises(ValueError, match="does not match content_length"):
        async with transport.request(b"POST", upstream.url("/echo"), [], _body_parts(), content_length=10):
            pass
    assert (await fetch(transport, upstream.url("/cl")))[2] == b"hello"  # the transport still works


async def test_unsupported_scheme_is_refused(transport: Transport) -> None:
    with pytest.raises(ValueError, match="scheme"):
        await fetch(transport, "ftp://127.0.0.1/file")


async def test_headers_are_sent_as_given_with_our_framing(transport: Transport, upstream: Upstream) -> None:
    headers = [(b"X-Custom", b"1"), (b"Content-Length", b"999"), (b"Transfer-Encoding", b"gzip")]
    assert (await fetch(transport, upstream.url("/echo"), b"POST", b"payload", headers))[2] == b"payload"
    seen = upstream.requests[-1]
    names = [name for name, _ in seen.headers]
    assert sorted(names) == [b"content-length", b"host", b"x-custom"]  # no user-agent, accept-encoding, ...
    assert seen.header(b"content-length") == b"7"
    assert seen.header(b"host") == upstream.base.removeprefix("http://").encode()
    await fetch(transport, upstream.url("/cl"), headers=[(b"Host", b"example.test")])
    assert [v for k, v in upstream.requests[-1].headers if k == b"host"] == [b"example.test"]
    assert upstream.requests[-1].header(b"content-length") is None  # an empty GET says nothing about a body


async def test_response_chunks_arrive_before_the_body_ends(transport: Transport, upstream: Upstream) -> None:
    with trio.fail_after(5):  # a buffering transport would hang on the first chunk: the server waits for us
        async with transport.request(b"GET", upstream.url("/stream"), [], b"") as response:
            chunks = response.aiter_bytes()
            assert await chunks.__anext__() == b"one"
            upstream.gate.set()
            assert [chunk async for chunk in chunks] == [b"two"]
    assert upstream.client_closes == []


async def test_body_at_hand_tells_whether_body_bytes_came_with_the_head(
    transport: Transport, upstream: Upstream
) -> None:
    with trio.fail_after(5):
        async with transport.request(b"GET", upstream.url("/stream"), [], b"") as response:
            assert response.body_at_hand()  # its first chunk was written with the head
            chunks = response.aiter_bytes()
            assert await chunks.__anext__() == b"one"
            assert not response.body_at_hand()  # the next waits for the gate
            upstream.gate.set()
            assert [chunk async for chunk in chunks] == [b"two"]
            assert not response.body_at_hand()  # the end was read


async def test_a_head_sent_alone_has_no_body_at_hand(transport: Transport, upstream: Upstream) -> None:
    with trio.fail_after(5):
        async with transport.request(b"GET", upstream.url("/head-first"), [], b"") as response:
            assert not response.body_at_hand()
            upstream.gate.set()
            assert [chunk async for chunk in response.aiter_bytes()] == [b"late"]


async def test_cancel_while_waiting_for_headers_closes_at_once(
    autojump_clock: trio.testing.MockClock, transport: Transport, upstream: Upstream
) -> None:
    async with trio.open_nursery() as nursery:

        async def call() -> None:
            await fetch(transport, upstream.url("/hang"))

        nursery.start_soon(call)
        with trio.fail_after(5):
            await upstream.wait_for(lambda: len(upstream.requests) == 1)
            cancelled_at = trio.current_time()
            nursery.cancel_scope.cancel()
            await upstream.wait_for(lambda: len(upstream.client_closes) == 1)
    assert upstream.client_closes == [cancelled_at]


async def test_cancel_mid_body_closes_at_once(
    autojump_clock: trio.testing.MockClock, transport: Transport, upstream: Upstream
) -> None:
    with trio.CancelScope() as scope:
        async with transport.request(b"GET", upstream.url("/stall"), [], b"") as response:
            chunks = response.aiter_bytes()
            assert await chunks.__anext__() == b"x" * 10
            cancelled_at = trio.current_time()
            scope.cancel()
            await chunks.__anext__()
    assert scope.cancelled_caught
    with trio.fail_after(5):
        await upstream.wait_for(lambda: len(upstream.client_closes) == 1)
    assert upstream.client_closes == [cancelled_at]


async def test_leaving_before_the_body_ends_closes_the_connection(
    autojump_clock: trio.testing.MockClock, transport: Transport, upstream: Upstream
) -> None:
    async with transport.request(b"GET", upstream.url("/stall"), [], b"") as response:
        assert response.status == 200
        left_at = trio.current_time()
    with trio.fail_after(5):
        await upstream.wait_for(lambda: len(upstream.client_closes) == 1)
    assert upstream.client_closes == [left_at]
    await fetch(transport, upstream.url("/cl"))
    assert upstream.connections == 2


async def test_idle_connection_closed_by_the_server_is_replaced(
    transport: Transport, upstream: Upstream
) -> None:
    upstream.drop_idle = True
    assert (await fetch(transport, upstream.url("/cl")))[2] == b"hello"
    with trio.fail_after(5):
        await upstream.wait_for(lambda: upstream.server_closes == 1)
    # a streamed body cannot be replayed: this passes only if the dead connection is noticed before use
    async with transport.request(b"POST", upstream.url("/echo"), [], _body_parts()) as response:
        assert b"".join([chunk async for chunk in response.aiter_bytes()]) == b"abcd"
    assert upstream.connections == 2
    assert len(upstream.requests) == 2


async def test_refused_port_is_a_connect_error(transport: Transport) -> None:
    with pytest.raises(UpstreamConnectError):
        await fetch(transport, f"http://127.0.0.1:{free_port()}/")


@pytest.mark.parametrize("path", ["/midbody", "/midbody-chunked"])
async def test_closed_mid_body(transport: Transport, upstream: Upstream, path: str) -> None:
    async with transport.request(b"GET", upstream.url(path), [], b"") as response:
        chunks = response.aiter_bytes()
        assert await chunks.__anext__() == b"x" * 10
        with pytest.raises(UpstreamClosedError):
            await chunks.__anext__()


async def test_closed_before_headers_is_a_protocol_error(transport: Transport, upstream: Upstream) -> None:
    with pytest.raises(UpstreamProtocolError) as caught:
        await fetch(transport, upstream.url("/drop"), b"POST", b"payload")
    assert not isinstance(caught.value, UpstreamClosedError)
    assert upstream.connections == 1  # a fresh connection is never retried


@pytest.mark.parametrize("path", ["/malformed", "/malformed-body"])
async def test_malformed_responses_never_leak_content(
    transport: Transport, upstream: Upstream, path: str
) -> None:
    with pytest.raises(UpstreamProtocolError) as caught:
        await fetch(transport, upstream.url(path))
    assert not isinstance(caught.value, UpstreamClosedError)
    printed = "".join(traceback.format_exception(caught.value))
    assert MARKER.decode() not in printed


async def test_invalid_request_header_never_leaks_content(transport: Transport, upstream: Upstream) -> None:
    with pytest.raises(ValueError, match="header") as caught:
        await fetch(transport, upstream.url("/cl"), headers=[(b"x-key", MARKER + b"\n")])
    assert MARKER.decode() not in "".join(traceback.format_exception(caught.value))


async def test_closed_transport_refuses_requests(transport: Transport, upstream: Upstream) -> None:
    await transport.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await fetch(transport, upstream.url("/cl"))


async def test_https_with_keep_alive(transport: Transport, tls_upstream: Upstream) -> None:
    for _ in range(3):
        assert (await fetch(transport, tls_upstream.url("/cl")))[2] == b"hello"
    assert tls_upstream.connections == 1


async def test_https_cancel_mid_body_closes_at_once(
    autojump_clock: trio.testing.MockClock, transport: Transport, tls_upstream: Upstream
) -> None:
    with trio.CancelScope() as scope:
        async with transport.request(b"GET", tls_upstream.url("/stall"), [], b"") as response:
            assert await response.aiter_bytes().__anext__() == b"x" * 10
            cancelled_at = trio.current_time()
            scope.cancel()
            await trio.sleep_forever()
    with trio.fail_after(5):
        await tls_upstream.wait_for(lambda: len(tls_upstream.client_closes) == 1)
    assert tls_upstream.client_closes == [cancelled_at]


async def test_https_untrusted_certificate_is_a_connect_error(tls_upstream: Upstream) -> None:
    async with open_transport() as transport:  # the default trust store does not know the test CA
        with pytest.raises(UpstreamConnectError):
            await fetch(transport, tls_upstream.url("/cl"))


async def test_tls_handshake_that_never_ends_is_a_connect_timeout(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    silent = Upstream()  # accepts, then only waits for the client to go away
    serve = functools.partial(trio.serve_tcp, silent.serve_silently, 0, host="127.0.0.1")
    listeners = await nursery.start(serve)
    url = f"https://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"
    async with open_transport(connect_timeout=0.1) as transport:
        started = trio.current_time()
        with pytest.raises(UpstreamConnectTimeoutError) as caught:
            await fetch(transport, url)
    assert isinstance(caught.value, UpstreamTimeoutError)
    assert trio.current_time() - started == pytest.approx(0.1)
    with trio.fail_after(5):
        await silent.wait_for(lambda: len(silent.client_closes) == 1)


def test_error_tree() -> None:
    assert issubclass(UpstreamConnectTimeoutError, UpstreamConnectError)
    assert issubclass(UpstreamConnectTimeoutError, UpstreamTimeoutError)
    assert issubclass(UpstreamClosedError, UpstreamProtocolError)
    for error in (UpstreamConnectError, UpstreamTimeoutError, UpstreamProtocolError):
        assert issubclass(error, UpstreamError)


# -- H11Pool specifics ---------------------------------------------------------------------------------------


async def test_pool_retries_a_bytes_request_once_on_a_stale_connection(upstream: Upstream) -> None:
    upstream.drop_reused_request = True  # the server closes a kept-alive connection as the request arrives
    async with open_transport() as pool:
        await fetch(pool, upstream.url("/cl"))
        assert (await fetch(pool, upstream.url("/echo"), b"POST", b"again"))[2] == b"again"
    assert upstream.connections == 2
    assert [seen.path for seen in upstream.requests] == [b"/cl", b"/echo"]


async def test_pool_never_replays_a_streamed_body(upstream: Upstream) -> None:
    upstream.drop_reused_request = True
    async with open_transport() as pool:
        await fetch(pool, upstream.url("/cl"))
        with pytest.raises(UpstreamProtocolError):
            async with pool.request(b"POST", upstream.url("/echo"), [], _body_parts()):
                pass
    assert upstream.connections == 1


async def test_pool_keeps_a_connection_whose_rest_is_already_buffered(upstream: Upstream) -> None:
    async with open_transport() as pool:
        async with pool.request(b"GET", upstream.url("/cl"), [], b"") as response:
            assert response.status == 200  # the 5 body bytes arrived with the head; nobody reads them
        await fetch(pool, upstream.url("/cl"))
    assert upstream.connections == 1


async def test_a_body_end_read_ahead_still_pools_the_connection(upstream: Upstream) -> None:
    async with open_transport() as pool:
        async with pool.request(b"GET", upstream.url("/cl"), [], b"") as response:
            assert await response.aiter_bytes().__anext__() == b"hello"
            assert response.body_at_hand()  # the end, read ahead and kept; nobody reads it
        await fetch(pool, upstream.url("/cl"))
    assert upstream.connections == 1


async def test_a_malformed_body_read_ahead_fails_its_next_step(
    transport: Transport, upstream: Upstream
) -> None:
    async with transport.request(b"GET", upstream.url("/malformed-body"), [], b"") as response:
        chunks = response.aiter_bytes()
        assert await chunks.__anext__() == b"abc"
        assert response.body_at_hand()  # the broken framing is at hand: the next step raises without a wait
        with pytest.raises(UpstreamProtocolError) as caught:
            await chunks.__anext__()
    assert MARKER.decode() not in "".join(traceback.format_exception(caught.value))


async def test_pool_statistics_and_aclose(upstream: Upstream) -> None:
    pool = H11Pool()
    async with pool.request(b"GET", upstream.url("/stall"), [], b"") as response:
        await fetch(pool, upstream.url("/cl"))
        stats = pool.statistics().for_origin(upstream.url(""))
        assert stats is not None
        assert (stats.connections_open, stats.connections_idle, stats.connections_in_use) == (2, 1, 1)
        await pool.aclose()
        assert pool.statistics().for_origin(upstream.url("")) == attrs.evolve(
            stats, connections_open=0, connections_idle=0, connections_in_use=0
        )
        with pytest.raises((UpstreamClosedError, trio.ClosedResourceError)), trio.fail_after(5):
            async for _ in response.aiter_bytes():
                pass
    with trio.fail_after(5):
        await upstream.wait_for(lambda: len(upstream.client_closes) == 2)


async def test_pool_sets_tcp_nodelay(upstream: Upstream) -> None:
    async with open_transport() as pool:
        assert isinstance(pool, H11Pool)
        async with pool.request(b"GET", upstream.url("/cl"), [], b"") as response:
            connection = next(iter(pool._origins[upstream.url("")].active))
            assert connection.socket is not None
            assert connection.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert response.status == 200


# -- H11Pool bookkeeping over time, in memory (autojump clock) -----------------------------------------------


@attrs.define(eq=False)
class MemoryPool(H11Pool):
    """An H11Pool whose connections are memory streams served by an :class:`Upstream` task."""

    upstream: Upstream | None = None
    nursery: trio.Nursery | None = None

    async def _open_stream(self, target: object) -> tuple[trio.abc.Stream, None]:
        assert self.upstream is not None
        assert self.nursery is not None
        client, server = trio.testing.memory_stream_pair()
        self.nursery.start_soon(self.upstream.serve, server)
        return client, None


async def test_idle_connection_expires(autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    upstream = Upstream()
    pool = MemoryPool(keepalive_expiry=60, upstream=upstream, nursery=nursery)
    url = "http://upstream.test/cl"
    await fetch(pool, url)
    await trio.sleep(59)
    await fetch(pool, url)
    assert upstream.connections == 1
    await trio.sleep(60)
    await fetch(pool, url)
    assert (upstream.connections, trio.current_time()) == (2, 119)
    await trio.testing.wait_all_tasks_blocked()
    assert len(upstream.client_closes) == 1
    await pool.aclose()


async def test_expired_idle_connections_are_closed_on_release(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    upstream = Upstream()
    pool = MemoryPool(keepalive_expiry=10, upstream=upstream, nursery=nursery)
    upstream.barrier = 2
    async with trio.open_nursery() as requests:
        requests.start_soon(fetch, pool, "http://upstream.test/barrier")
        requests.start_soon(fetch, pool, "http://upstream.test/barrier")
    async with pool.request(b"GET", "http://upstream.test/cl", [], b""):
        await trio.sleep(30)  # meanwhile the other idle connection expires
    await trio.testing.wait_all_tasks_blocked()
    stats = pool.statistics().for_origin("http://upstream.test:80")
    assert stats is not None
    assert (stats.connections_open, stats.connections_idle) == (1, 1)
    assert upstream.client_closes == [30]
    await pool.aclose()


async def test_idle_connections_are_trimmed(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    upstream = Upstream()
    upstream.barrier = 5
    pool = MemoryPool(max_idle_per_origin=2, upstream=upstream, nursery=nursery)
    async with trio.open_nursery() as requests:
        for _ in range(5):
            requests.start_soon(fetch, pool, "http://upstream.test/barrier")
    await trio.testing.wait_all_tasks_blocked()
    stats = pool.statistics().for_origin("http://upstream.test:80")
    assert stats is not None
    assert (stats.connections_open, stats.connections_idle, stats.connections_in_use) == (2, 2, 0)
    assert (upstream.connections, len(upstream.client_closes)) == (5, 3)
    await pool.aclose()


async def test_waiters_get_slots_in_order(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    upstream = Upstream()
    pool = MemoryPool(max_connections_per_origin=1, upstream=upstream, nursery=nursery)
    order: list[int] = []

    async def call(index: int) -> None:
        await fetch(pool, "http://upstream.test/echo", b"POST", b"%d" % index)
        order.append(index)

    async with pool.request(b"GET", "http://upstream.test/stream", [], b"") as first:
        async with trio.open_nursery() as requests:
            for index in range(3):
                requests.start_soon(call, index)
                await trio.testing.wait_all_tasks_blocked()
            stats = pool.statistics().for_origin("http://upstream.test:80")
            assert stats is not None
            assert stats.requests_waiting == 3
            upstream.gate.set()
            async for _ in first.aiter_bytes():
                pass
            await first.aclose()
    assert order == [0, 1, 2]
    assert [seen.body for seen in upstream.requests[1:]] == [b"0", b"1", b"2"]
    assert upstream.connections == 1
    upstream.gate = trio.Event()
    async with pool.request(b"GET", "http://upstream.test/stream", [], b"") as again:  # the limit still holds
        async with trio.open_nursery() as requests:
            requests.start_soon(fetch, pool, "http://upstream.test/cl")
            await trio.testing.wait_all_tasks_blocked()
            stats = pool.statistics().for_origin("http://upstream.test:80")
            assert stats is not None
            assert (stats.connections_in_use, stats.requests_waiting) == (1, 1)
            upstream.gate.set()
            async for _ in again.aiter_bytes():
                pass
            await again.aclose()
    await pool.aclose()


async def test_aclose_wakes_waiting_requests(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    upstream = Upstream()
    pool = MemoryPool(max_connections_per_origin=1, upstream=upstream, nursery=nursery)
    async with pool.request(b"GET", "http://upstream.test/stream", [], b""):
        async with trio.open_nursery() as requests:

            async def waiter() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await fetch(pool, "http://upstream.test/cl")

            requests.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            await pool.aclose()
    stats = pool.statistics().for_origin("http://upstream.test:80")
    assert stats is not None
    assert (stats.connections_open, stats.requests_waiting) == (0, 0)


async def test_cancelled_waiter_gives_up_its_place(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    upstream = Upstream()
    pool = MemoryPool(max_connections_per_origin=1, upstream=upstream, nursery=nursery)
    async with pool.request(b"GET", "http://upstream.test/stream", [], b"") as first:
        with trio.move_on_after(5) as waited:
            await fetch(pool, "http://upstream.test/cl")
        assert waited.cancelled_caught
        assert trio.current_time() == 5
        upstream.gate.set()
        async for _ in first.aiter_bytes():
            pass
    await fetch(pool, "http://upstream.test/cl")
    stats = pool.statistics().for_origin("http://upstream.test:80")
    assert stats is not None
    assert (stats.connections_open, stats.requests_waiting) == (1, 0)
    await pool.aclose()
