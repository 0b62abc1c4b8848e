"""What every provider adapter offers the proxy (sans-IO: bytes and dicts in, bytes and values out).

An adapter turns the client's OpenAI-style request into the provider's request (URL, headers, body), the
provider's non-streamed answer back into the OpenAI shape, and the provider's stream, event by event, into
OpenAI ``chat.completion.chunk`` SSE events ending with ``data: [DONE]``. It reports the token usage it saw.
It never performs I/O, never logs, and its error messages never quote request or response content.

Translators read their upstream's event stream with :mod:`voidllm.sse`, through :func:`sse_events` or
:func:`sse_fields`, which turn a broken size bound into :class:`StreamTranslationError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from voidllm.sse import SSEError

if TYPE_CHECKING:
    from voidllm.sse import EventFramer, FieldReader

from voidllm.errors import BadRequestError


class TranslationError(BadRequestError):
    """The request cannot be expressed in the provider's API; the message says why, without quoting
    content."""


class StreamTranslationError(Exception):
    """The provider's stream cannot be translated (malformed event); the stream ends with one abort event."""


def sse_events(framer: EventFramer, data: bytes) -> Iterator[bytes]:
    """The events ``data`` completes (:meth:`voidllm.sse.EventFramer.feed`).

    Raises:
        StreamTranslationError: a line or an event is over its size bound.
    """
    try:
        yield from framer.feed(data)
    except SSEError as exc:
        raise StreamTranslationError(str(exc)) from exc


def sse_fields(reader: FieldReader, data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The field lines ``data`` completes (:meth:`voidllm.sse.FieldReader.feed`).

    Raises:
        StreamTranslationError: a line is over its size bound.
    """
    try:
        yield from reader.feed(data)
    except SSEError as exc:
        raise StreamTranslationError(str(exc)) from exc


@attrs.frozen
class Target:
    """Where and how to reach one upstream, as the adapter needs it."""

    base_url: str
    api_key: str = attrs.field(default="", repr=False)
    model: str = ""  # the canonical model name sent upstream
    azure_deployment: str = ""
    azure_api_version: str = ""
    gcp_project: str = ""
    gcp_location: str = ""


@attrs.frozen
class UpstreamCall:
    """A fully built upstream request."""

    url: str
    headers: list[tuple[bytes, bytes]] = attrs.field(repr=False)  # carries the upstream credential
    body: bytes = attrs.field(repr=False)


@attrs.frozen
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class StreamTranslator(Protocol):
    """Translates one provider stream; ``feed`` returns OpenAI SSE bytes ready to relay."""

    usage: Usage | None
    done: bool

    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class Adapter(Protocol):
    def build_call(
        self, path: str, payload: Mapping[str, Any], target: Target, *, stream: bool
    ) -> UpstreamCall: ...

    def translate_response(self, body: bytes, *, model: str) -> tuple[bytes, Usage | None]: ...

    def stream_translator(self, *, model: str) -> StreamTranslator: ...
