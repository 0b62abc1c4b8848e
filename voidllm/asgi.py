"""The bottom of the ASGI stack, shared by the edge, the proxy and the MCP server: the JSON error envelope of
every non-MCP API, the request id every response carries, header lookup in a scope, and the one request-body
reader (:class:`BodyReader`, :func:`read_body`).

``{"error": {"code": "<machine_code>", "message": "<human text>", "type": "<OpenAI error type>",
"request_id": "<uuid>"}}`` (docs/reference/behaviour.md 1.1), with ``param`` naming the request field a 400
is about when there is one. ``type`` (:func:`voidllm.errors.error_type`) and ``param`` are OpenAI's, so its
SDKs and the clients built on them read the error as they read OpenAI's own. Messages come from our own error
classes and never contain request or response content.

Request bodies are read within a size limit and a time limit, enforced here and not by hypercorn: its
``read_timeout`` bounds every socket read of a connection, so it would also cut a response that streams for
longer than that while the client sends nothing (an LLM stream, an export). The reader raises errors of the
one tree (413 :class:`~voidllm.errors.RequestTooLargeError`, 408 :class:`~voidllm.errors.RequestTimeoutError`,
400 for a malformed ``Content-Length``) and :class:`ClientDisconnectedError`; each caller answers them in its
own envelope (OpenAI's or Anthropic's shape on ``/v1``, JSON-RPC on the MCP endpoints).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import attrs
import orjson
import trio
import uuid_utils

from voidllm.errors import BadRequestError, RequestTimeoutError, RequestTooLargeError, error_type

REQUEST_ID_HEADER = b"x-request-id"
SCOPE_KEY = "voidllm.request_id"
HEAD_WITH_FIRST_PART = "voidllm.head_with_first_part"
"""A key of ``http.response.start``: true when a body message follows at once (the first event of a stream
that came with the upstream's head), so the HTTP/1.1 server writes the head and that message in one write
(:mod:`voidllm.web.http1`). Servers that do not know it ignore it."""

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

DISCONNECT_NOTICE = "voidllm.disconnect_notice"
"""A scope key: the request's :class:`DisconnectNotice`, where the server gives one
(:mod:`voidllm.web.disconnects`)."""


class DisconnectNotice:
    """Tells a request that its client went away as the server learns it, with no task waiting on
    ``receive()``: the server calls :meth:`fire` when it queues ``http.disconnect`` for the app (the message
    is still queued), and the callback the request gave :meth:`watch` runs then, or at once if it came
    before."""

    __slots__ = ("_callback", "fired")

    def __init__(self) -> None:
        self._callback: Callable[[], None] | None = None
        self.fired = False

    def watch(self, callback: Callable[[], None] | None) -> None:
        """Run ``callback`` when the client goes away (now, if it has); ``None`` stops watching."""
        self._callback = callback
        if callback is not None and self.fired:
            callback()

    def fire(self) -> None:
        """The client went away (the server's side)."""
        self.fired = True
        if self._callback is not None:
            self._callback()


def error_body(
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    extra: Mapping[str, Any] | None = None,
    *,
    param: str | None = None,
) -> bytes:
    """Serialise the error envelope of a ``status`` answer; ``param`` names the request field it is about,
    ``extra`` adds fields to the error object (never code, message, type, param or id)."""
    error: dict[str, Any] = {"code": code, "message": message, "type": error_type(status)}
    if param is not None:
        error["param"] = param
    if request_id:
        error["request_id"] = request_id
    for name, value in (extra or {}).items():
        error.setdefault(name, value)
    return orjson.dumps({"error": error})


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The first value of header ``name`` (lowercase bytes; ASGI servers lowercase header names) in an ASGI
    scope, decoded as latin-1."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-Id`` when it is a UUID (normalised), otherwise a new UUIDv7."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            try:
                return str(uuid.UUID(value.decode("latin-1")))
            except ValueError:
                break
    return str(uuid_utils.uuid7())


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    headers: Iterable[tuple[str, str]] = (),
    *,
    param: str | None = None,
) -> None:
    """Send a complete error-envelope response over raw ASGI, with ``headers`` (``Retry-After``) added."""
    body = error_body(status, code, message, request_id, param=param)
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers)
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class ClientDisconnectedError(Exception):
    """The client went away before its request body was complete; there is no one left to answer."""


def declared_length(scope: Mapping[str, Any]) -> int | None:
    """The request's ``Content-Length``, or ``None`` when it has none.

    Raises:
        BadRequestError: the header is not a number.
    """
    value = header(scope, b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequestError("invalid Content-Length") from None


@attrs.define
class BodyReader:
    """Reads an ASGI request body message by message, within ``limit`` bytes and ``read_timeout`` seconds.

    :meth:`next` bounds each ``receive()`` by ``read_timeout`` (a body streamed onwards as it arrives);
    :meth:`rest` bounds the whole remaining body by it (a body read before anything else happens), so a client
    trickling its body gets the timeout either way. ``more`` is false once the last message arrived, or once
    every byte of a declared ``Content-Length`` did (one wait for the server's empty last message fewer).
    """

    receive: Receive
    limit: int
    read_timeout: float = math.inf
    declared: int | None = None  # the request's Content-Length, checked against ``limit`` by :meth:`start`
    received: int = 0
    more: bool = True

    @classmethod
    def start(
        cls, scope: Mapping[str, Any], receive: Receive, *, limit: int, read_timeout: float = math.inf
    ) -> BodyReader:
        """A reader for the request of ``scope``; a declared ``Content-Length`` over ``limit`` is refused
        before anything is read.

        Raises:
            RequestTooLargeError: the declared length exceeds ``limit``.
            BadRequestError: the ``Content-Length`` is not a number.
        """
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            raise _too_large(limit)
        return cls(receive, limit, read_timeout, declared, more=declared != 0)

    async def next(self) -> bytes:
        """The next chunk of the body (possibly empty), received within ``read_timeout``.

        Raises:
            RequestTimeoutError: no message within ``read_timeout``.
            RequestTooLargeError: the bytes received so far exceed ``limit``.
            ClientDisconnectedError: the client went away.
        """
        with trio.move_on_after(self.read_timeout):
            return self._take(await self.receive())
        raise _too_slow(self.read_timeout)

    async def rest(self) -> bytes:
        """The rest of the body in one piece, all of it received within ``read_timeout``.

        Raises:
            RequestTimeoutError: the body was not complete within ``read_timeout``.
            RequestTooLargeError: the body exceeds ``limit``.
            ClientDisconnectedError: the client went away.
        """
        with trio.move_on_after(self.read_timeout):
            if not self.more:
                return b""
            first = self._take(await self.receive())
            if not self.more:
                return first
            chunks = [first]
            while self.more:
                chunks.append(self._take(await self.receive()))
            return b"".join(chunks)
        raise _too_slow(self.read_timeout)

    def _take(self, message: dict[str, Any]) -> bytes:
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError
        chunk: bytes = message.get("body", b"")
        self.received += len(chunk)
        # Every declared byte is here: the body is whole (the HTTP/1.1 and HTTP/2 parsers refuse a body
        # longer than its Content-Length), so the server's empty last message is not waited for.
        self.more = message.get("more_body", False) and self.received != self.declared
        if self.received > self.limit:
            raise _too_large(self.limit)
        return chunk


async def read_body(
    scope: Mapping[str, Any], receive: Receive, *, limit: int, read_timeout: float = math.inf
) -> bytes:
    """The whole request body, within ``limit`` bytes and ``read_timeout`` seconds in whole.

    Raises:
        RequestTooLargeError: the declared length or the bytes received exceed ``limit``.
        RequestTimeoutError: the body was not complete within ``read_timeout``.
        BadRequestError: the ``Content-Length`` is not a number.
        ClientDisconnectedError: the client went away.
    """
    return await BodyReader.start(scope, receive, limit=limit, read_timeout=read_timeout).rest()


def _too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(f"request body exceeds {limit} bytes")


def _too_slow(timeout: float) -> RequestTimeoutError:
    return RequestTimeoutError(f"request body not received within {timeout:g}s")
