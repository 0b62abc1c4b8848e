"""The ASGI layer in front of the Quart app: request ids for every response, drain tracking for ``/v1``, and
the dispatch of proxied ``POST /v1/...`` routes to the raw proxy handler (Quart's routing would cost 35-50 %
of proxied throughput).

It is plain ASGI so it also covers responses Quart never sees (a request refused while draining). Each ``/v1`` request runs in a cancel scope held by the
:class:`~voidllm.nursery.DrainTracker`: while draining, new requests get 503 ``service_unavailable``; when the
drain deadline passes, the ones still running are cancelled and, if nothing was sent yet, answered with 503.

The last part of every response waits (at most :data:`BODY_DRAIN_LIMIT`) until the request body has been fully
received: hypercorn closes a keep-alive connection whose request body is still arriving when the response ends
(a 405 answered before a ``PUT`` body was read, say), and a client that reuses the connection in that moment
waits for an answer that never comes.
"""

from __future__ import annotations

from typing import Any

import trio

from voidllm.errors import ServiceUnavailableError
from voidllm.nursery import DrainTracker
from voidllm.web.envelope import REQUEST_ID_HEADER, SCOPE_KEY, request_id_from, send_error

Scope = dict[str, Any]
Message = dict[str, Any]

BODY_DRAIN_LIMIT = 1.0
"""Seconds the end of a response waits for the rest of an unread request body."""


class _RequestBody:
    """Wraps ``receive`` to notice when the request body is complete; see the module docstring."""

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        self._receiving = 0
        self.complete = trio.Event()

    async def receive(self) -> Message:
        self._receiving += 1
        try:
            message: Message = await self._receive()
        finally:
            self._receiving -= 1
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.complete.set()
        return message

    async def wait_complete(self) -> None:
        """Let the app's own reader take the rest of the body, or read and discard it here."""
        with trio.move_on_after(BODY_DRAIN_LIMIT):
            while not self.complete.is_set():
                if self._receiving:
                    await self.complete.wait()
                else:
                    await self.receive()


class Edge:
    """Wraps an ASGI app; see the module docstring."""

    def __init__(
        self,
        app: Any,
        drain: DrainTracker,
        *,
        proxy: Any = None,
        proxy_paths: frozenset[str] = frozenset(),
        tracked_prefixes: tuple[str, ...] = ("/v1/",),
    ) -> None:
        self.app = app
        self.drain = drain
        self.proxy = proxy
        self.proxy_paths = proxy_paths
        self.tracked_prefixes = tracked_prefixes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        scope[SCOPE_KEY] = request_id
        started = False
        body = _RequestBody(receive)
        receive = body.receive

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [h for h in message.get("headers", ()) if h[0].lower() != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                await body.wait_complete()
            await send(message)

        if not scope["path"].startswith(self.tracked_prefixes):
            await self.app(scope, receive, send_with_id)
            return
        app = self.proxy if scope["method"] == "POST" and scope["path"] in self.proxy_paths else self.app
        try:
            with self.drain.track() as cancel_scope:
                with cancel_scope:
                    await app(scope, receive, send_with_id)
                if cancel_scope.cancelled_caught and not started:
                    await send_error(
                        send_with_id, 503, "service_unavailable", "request cancelled: server is shutting down",
                        request_id,
                    )
        except ServiceUnavailableError as exc:
            await send_error(send_with_id, exc.status, exc.code, exc.message, request_id)

