"""The floor of a trio proxy on this stack: ``trio.serve_tcp`` and h11 on both sides, one upstream connection
per client connection, nothing else (no auth, routing, usage, limits, timeouts or error answers).

Not part of the gateway or of ``scripts/bench``: docs/performance.md ("The floor on this machine") runs it
beside the gateway and nginx under the same ``wrk`` load to show what any trio and h11 proxy adds on a
machine. Usage: ``python scripts/bench_lib/bare_proxy.py LISTEN_PORT UPSTREAM_PORT`` (both on 127.0.0.1).
"""

from __future__ import annotations

import sys

import h11
import trio


async def _next(stream: trio.SocketStream, conn: h11.Connection) -> object:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
            continue
        return event


async def _body(stream: trio.SocketStream, conn: h11.Connection) -> bytes:
    chunks = []
    while isinstance(event := await _next(stream, conn), h11.Data):
        chunks.append(bytes(event.data))
    return b"".join(chunks)


def _message(conn: h11.Connection, head: h11.Request | h11.Response, body: bytes) -> bytes:
    return b"".join(conn.send(event) or b"" for event in (head, h11.Data(data=body), h11.EndOfMessage()))


def _framed(headers: list[tuple[bytes, bytes]], length: int, *drop: bytes) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in headers if k not in (b"content-length", b"transfer-encoding", *drop)]
    return [*kept, (b"content-length", str(length).encode())]


async def _serve(client: trio.SocketStream, upstream_port: int) -> None:
    server_side = h11.Connection(h11.SERVER)
    upstream = await trio.open_tcp_stream("127.0.0.1", upstream_port)
    client_side = h11.Connection(h11.CLIENT)
    try:
        while True:
            request = await _next(client, server_side)
            if not isinstance(request, h11.Request):
                return
            body = await _body(client, server_side)
            head = h11.Request(
                method=request.method,
                target=request.target,
                headers=_framed(list(request.headers), len(body), b"connection"),
            )
            await upstream.send_all(_message(client_side, head, body))
            response = await _next(upstream, client_side)
            assert isinstance(response, h11.Response)
            answer = await _body(upstream, client_side)
            client_side.start_next_cycle()
            headers = _framed(list(response.headers), len(answer), b"connection")
            out = h11.Response(status_code=response.status_code, headers=headers)
            await client.send_all(_message(server_side, out, answer))
            server_side.start_next_cycle()
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
        pass
    finally:
        await upstream.aclose()
        await client.aclose()


async def main(listen_port: int, upstream_port: int) -> None:
    async def handler(client: trio.SocketStream) -> None:
        await _serve(client, upstream_port)

    await trio.serve_tcp(handler, listen_port, host="127.0.0.1")


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), int(sys.argv[2]))
