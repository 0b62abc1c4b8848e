"""What every provider adapter offers the proxy (sans-IO: bytes and dicts in, bytes and values out).

An adapter turns the client's OpenAI-style request into the provider's request (URL, headers, body), the
provider's non-streamed answer back into the OpenAI shape, and the provider's stream, event by event, into
OpenAI ``chat.completion.chunk`` SSE events ending with ``data: [DONE]``. It reports the token usage it saw.
It never performs I/O, never logs, and its error messages never quote request or response content.

Translators read their upstream's event stream with :mod:`voidllm.sse`, through :func:`sse_events` or
:func:`sse_fields`, which turn a broken size bound into :class:`StreamTranslationError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from voidllm.sse import SSEError

if TYPE_CHECKING:
    from voidllm.sse import EventFramer, FieldReader

from voidllm.errors import BadRequestError

_LEADING_FIELD = re.compile(r"([a-z_]+(?:\[\d+\])*(?:\.[a-z_]+(?:\[\d+\])*)*) (?:must|is required)")


class TranslationError(BadRequestError):
    """The request cannot be expressed in the provider's API; the message says why, without quoting
    content. A message about one field starts with its path (``messages[2].content must be ...``), which
    becomes the error's ``param`` unless one is given."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        if param is None and (found := _LEADING_FIELD.match(message)) is not None:
            param = found.group(1)
        super().__init__(message, param=param)


class StreamTranslationError(Exception):
    """The provider's stream cannot be translated (malformed event); the stream ends with one abort event."""


# The error types the providers report (OpenAI's and Anthropic's vocabularies) -> the HTTP status each
# stands for. A type outside this table is reported as api_error.
ERROR_STATUS: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "server_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class UpstreamStreamError(StreamTranslationError):
    """The provider reported an error inside its stream: ``kind`` is its error type (``overloaded_error``),
    ``status`` the HTTP status it stands for (529), so the client's error event keeps both. Content-free:
    the provider's own message is not kept."""

    def __init__(self, kind: str, status: int) -> None:
        super().__init__(f"the provider reported {kind} ({status}) in its stream")
        self.kind = kind
        self.status = status

    @classmethod
    def reported(cls, kind: object, status: object = None) -> UpstreamStreamError:
        """From the provider's error object: a known ``kind`` is kept (any other is ``api_error``); an HTTP
        ``status`` in 400-599 is kept (any other is the kind's own)."""
        known = kind if isinstance(kind, str) and kind in ERROR_STATUS else "api_error"
        if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599:
            return cls(known, status)
        return cls(known, ERROR_STATUS[known])


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

    def stream_translator(self, *, model: str, include_usage: bool = False) -> StreamTranslator: ...
