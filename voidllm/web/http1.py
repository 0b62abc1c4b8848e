"""HTTP/1.1 answers as hypercorn writes them, with three changes (:class:`GatewayH11Protocol`).

- **Reason phrases.** Hypercorn builds h11's response event from the ASGI status alone, so every HTTP/1.1
  answer starts with a status line whose reason is empty (``HTTP/1.1 429 ``). RFC 9112 allows that, but
  clients and proxies show the phrase in their errors and logs, and an ASGI app has no way to pass one. Each
  response (and interim response) that has no reason gets the standard phrase of its status
  (:class:`http.HTTPStatus`); a status without one keeps the empty reason.
- **One write for an answer of known length.** Hypercorn writes the status line and headers, each body
  message and the end as separate socket writes. An answer with a ``Content-Length`` (every buffered answer:
  JSON, errors, files) keeps its head until its first body message and writes both at once: one system call,
  one task switch and one TCP segment instead of two, and the client reads the whole answer in one piece. The
  head waits at most for the next event of its stream: a body message (written with it), the end, or the
  stream closing (the head is written first, so the bytes on the wire are the same as before, in order). An
  answer without a length (chunked: event streams, relayed binary bodies of unknown size) sends its head at
  once, as before: a streaming client waits for it to open the stream. Unless the app marks its start with
  :data:`~voidllm.asgi.HEAD_WITH_FIRST_PART` (a stream whose first event is already at hand, which the relay
  sends right after): that head is held for the first body message in the same way. The end of an answer of
  known length has no bytes of its own and is not written at all (hypercorn writes nothing, but takes its
  send lock and yields twice for it).
- **One validation of the head.** The response event is made with its reason phrase at once (replacing it
  afterwards made h11 validate every header a second time).

HTTP/2 has neither: no reason phrase, and its frames are written by hypercorn's own H2 protocol.
"""

from __future__ import annotations

import dataclasses
from http import HTTPStatus
from itertools import chain

import h11
import hypercorn.protocol
from hypercorn.events import RawData
from hypercorn.protocol.events import Body, EndBody, Response
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import H11SendableEvent

from voidllm.asgi import HEAD_WITH_FIRST_PART

_PHRASES = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}


class GatewayH11Protocol(H11Protocol):
    """Hypercorn's HTTP/1.1 protocol with reason phrases and one write per answer of known length; see the
    module docstring."""

    _held: bytes = b""  # the head of an answer of known length, not written yet

    async def stream_send(self, event: StreamEvent) -> None:
        if self._held and not isinstance(event, Body | EndBody):
            await self._write(b"")  # anything else (the stream closing): the head goes first, as before
        if isinstance(event, Response) and event.status_code >= 200:
            # As hypercorn builds it, with the reason phrase given at once: h11 validates an event's headers
            # each time one is made, and replacing the reason afterwards made (and validated) it twice.
            headers = list(chain(event.headers, self.config.response_headers("h11")))
            if self.keep_alive_requests >= self.config.keep_alive_max_requests:
                headers.append((b"connection", b"close"))
            response = h11.Response(
                headers=headers, status_code=event.status_code, reason=_PHRASES.get(event.status_code, b"")
            )
            await self._send_h11_event(response)
            return
        await super().stream_send(event)

    async def _send_h11_event(self, event: H11SendableEvent) -> None:
        if isinstance(event, h11.Response | h11.InformationalResponse) and not event.reason:
            phrase = _PHRASES.get(event.status_code)
            if phrase is not None:
                event = dataclasses.replace(event, reason=phrase)
        try:
            data = self.connection.send(event)
        except h11.LocalProtocolError:
            if self.connection.their_state != h11.ERROR:
                raise
            return
        if isinstance(event, h11.Response) and (
            any(name == b"content-length" for name, _ in event.headers) or self._first_part_follows()
        ):
            self._held = data or b""
            return
        if data or self._held:  # (the end of an answer of known length is no bytes: no write at all)
            await self._write(data or b"")

    def _first_part_follows(self) -> bool:
        """Whether the app marked its ``http.response.start`` with :data:`HEAD_WITH_FIRST_PART` (hypercorn's
        stream keeps that message while it hands the head here)."""
        start = getattr(self.stream, "response", None)
        return bool(start and start.get(HEAD_WITH_FIRST_PART))

    async def _write(self, data: bytes) -> None:
        if self._held:
            data, self._held = self._held + data, b""
        await self.send(RawData(data=data))


def install() -> None:
    """Make hypercorn build :class:`GatewayH11Protocol` for HTTP/1.1 connections (idempotent)."""
    # ProtocolWrapper looks the class up in its own module, which imports it from hypercorn.protocol.h11.
    hypercorn.protocol.H11Protocol = GatewayH11Protocol  # type: ignore[attr-defined]
