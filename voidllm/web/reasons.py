"""Reason phrases on HTTP/1.1 status lines.

Hypercorn builds h11's response event from the ASGI status alone, so every HTTP/1.1 answer starts with a
status line whose reason is empty (``HTTP/1.1 429 ``). RFC 9112 allows that, but clients and proxies show the
phrase in their errors and logs, and an ASGI app has no way to pass one. :func:`install` makes hypercorn's
HTTP/1.1 protocol use :class:`ReasonedH11Protocol`, which gives each response (and interim response) that
has no reason the standard phrase of its status (:class:`http.HTTPStatus`); a status without one keeps the
empty reason. HTTP/2 has no reason phrase.
"""

from __future__ import annotations

import dataclasses
from http import HTTPStatus

import h11
import hypercorn.protocol
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import H11SendableEvent

_PHRASES = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}


class ReasonedH11Protocol(H11Protocol):
    """Hypercorn's HTTP/1.1 protocol with reason phrases on its status lines; see the module docstring."""

    async def _send_h11_event(self, event: H11SendableEvent) -> None:
        if isinstance(event, h11.Response | h11.InformationalResponse) and not event.reason:
            phrase = _PHRASES.get(event.status_code)
            if phrase is not None:
                event = dataclasses.replace(event, reason=phrase)
        await super()._send_h11_event(event)


def install() -> None:
    """Make hypercorn build :class:`ReasonedH11Protocol` for HTTP/1.1 connections (idempotent)."""
    # ProtocolWrapper looks the class up in its own module, which imports it from hypercorn.protocol.h11.
    hypercorn.protocol.H11Protocol = ReasonedH11Protocol  # type: ignore[attr-defined]
