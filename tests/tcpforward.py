"""A TCP forwarder between the gateway and a real server, to simulate an outage of that server.

``down()`` cuts every open connection and makes new ones close at once (the client sees "server closed the
connection"); ``up()`` forwards again. The server itself keeps running, so other tests are not disturbed.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio


@attrs.define(eq=False)
class Forwarder:
    target: tuple[str, int]
    port: int = 0
    forwarding: bool = True
    _scopes: set[trio.CancelScope] = attrs.field(factory=set)

    def down(self) -> None:
        self.forwarding = False
        for scope in list(self._scopes):
            scope.cancel()

    def up(self) -> None:
        self.forwarding = True

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            if not self.forwarding:
                return
            try:
                upstream = await trio.open_tcp_stream(*self.target)
            except OSError:
                return
            async with upstream:
                with trio.CancelScope() as scope:
                    self._scopes.add(scope)
                    try:
                        async with trio.open_nursery() as nursery:
                            nursery.start_soon(_pump, client, upstream, nursery.cancel_scope)
                            nursery.start_soon(_pump, upstream, client, nursery.cancel_scope)
                    finally:
                        self._scopes.discard(scope)


async def _pump(source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope) -> None:
    try:
        while data := await source.receive_some(65536):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    done.cancel()


@asynccontextmanager
async def forward(host: str, port: int) -> AsyncIterator[Forwarder]:
    """Listen on an ephemeral 127.0.0.1 port and forward to ``host:port`` until the block exits."""
    forwarder = Forwarder((host, port))
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, forwarder._handle, 0, host="127.0.0.1")
        )
        forwarder.port = listeners[0].socket.getsockname()[1]
        try:
            yield forwarder
        finally:
            nursery.cancel_scope.cancel()
