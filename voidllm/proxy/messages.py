"""The Anthropic-native ingress, ``POST /v1/messages`` (and ``/v1/messages/count_tokens``): the glue.

A client speaking Anthropic's Messages API (Anthropic's own SDK, with ``x-api-key`` or ``Authorization:
Bearer`` carrying a VoidLLM key) is routed like every other request: by ``model`` (aliases, access, limits,
usage, failover, fallback). What reaches the upstream depends on its provider:

- ``anthropic``: the client's body, byte for byte (only an alias in ``model`` is rewritten), to
  ``<base_url>/v1/messages``; the answer and its stream come back byte for byte too. Usage is read from the
  answer (``message_start``/``message_delta`` in a stream) without changing it.
- anything else: the body is translated once to an OpenAI chat request (then, for Gemini/Vertex, on to their
  API by their adapter), and the answer is translated back: OpenAI -> Anthropic message, OpenAI chunks ->
  Anthropic stream events, an upstream error -> Anthropic's error shape.

Gateway errors on this route use Anthropic's error shape too. ``count_tokens`` is passed through for models
served by ``anthropic`` upstreams only; for the others the gateway answers an estimate of its own, marked as
one (:mod:`voidllm.proxy.tokencount`).
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from voidllm.providers.anthropic import (
    ANTHROPIC_VERSION,
    AnthropicAdapter,
    AnthropicStreamTranslator,
    OpenAIToMessagesStream,
    anthropic_error,
    messages_to_openai,
    messages_url,
    openai_error_to_anthropic,
    openai_to_messages_response,
)
from voidllm.providers.base import StreamTranslationError, UpstreamStreamError, Usage
from voidllm.proxy.headers import Headers, header
from voidllm.proxy.jsonbody import JsonRequest, parse_object_with_model
from voidllm.routing.registry import Upstream

_CLIENT_HEADERS = (b"anthropic-version", b"anthropic-beta")
_USAGE_READER = AnthropicAdapter()


def error_body(status: int, message: str) -> bytes:
    """A gateway error in Anthropic's shape."""
    return anthropic_error(status, message)


@attrs.frozen
class MessagesRequest:
    """A parsed ``/v1/messages`` body and its OpenAI translation."""

    model: str
    stream: bool
    payload: dict[str, Any] = attrs.field(repr=False)
    openai: JsonRequest = attrs.field(repr=False)

    @classmethod
    def parse(cls, raw: bytes, *, count_tokens: bool = False) -> MessagesRequest:
        """Parse and translate; count_tokens bodies carry no ``max_tokens`` and are never translated.

        Raises:
            BadRequestError: not a JSON object, no model, or (TranslationError) not expressible for OpenAI.
        """
        payload, model = parse_object_with_model(raw)
        stream = payload.get("stream") is True
        translated = {"model": model} if count_tokens else messages_to_openai(payload)
        return cls(model, stream, payload, JsonRequest.parse(orjson.dumps(translated)))

    def retranslated(self, *, count_tokens: bool = False) -> MessagesRequest:
        """The request once ``payload`` was changed in place (the prompt guard's redaction): translated
        again."""
        translated = {"model": self.model} if count_tokens else messages_to_openai(self.payload)
        return attrs.evolve(self, openai=JsonRequest.parse(orjson.dumps(translated)))

    def anthropic_body(self, raw: bytes, canonical_model: str) -> bytes:
        """The client's bytes, with the canonical model name when an alias was used."""
        if canonical_model == self.model:
            return raw
        return orjson.dumps({**self.payload, "model": canonical_model})


def anthropic_call(
    upstream: Upstream, *, path: str, body: bytes, client_headers: Headers, request_id: str, stream: bool
) -> tuple[str, Headers, bytes]:
    """``(url, headers, body)`` for an Anthropic upstream: the Messages API as the client sent it."""
    headers: Headers = [(b"content-type", b"application/json")]
    headers.append((b"accept", b"text/event-stream" if stream else b"application/json"))
    for name in _CLIENT_HEADERS:
        value = header(client_headers, name)
        if value is not None:
            headers.append((name, value))
    if header(client_headers, b"anthropic-version") is None:
        headers.append((b"anthropic-version", ANTHROPIC_VERSION.encode()))
    if upstream.api_key:
        headers.append((b"x-api-key", upstream.api_key.encode()))
    headers.append((b"x-request-id", request_id.encode()))
    url = messages_url(upstream.base_url)
    return (url + "/count_tokens" if path.endswith("count_tokens") else url), headers, body


def usage_of_message(body: bytes) -> Usage | None:
    """Token usage of a non-streamed Anthropic message (the body itself is relayed unchanged)."""
    try:
        return _USAGE_READER.translate_response(body, model="")[1]
    except Exception:  # an unreadable body is relayed as it is; it just has no usage
        return None


@attrs.define(eq=False)
class AnthropicPassthrough:
    """Relays an Anthropic stream byte for byte while reading its usage and its end (``message_stop``).

    ``error_relayed`` turns true once the upstream's own ``error`` event went out with the bytes: it is the
    client's one error event, so the stream ends there without an abort event of ours.
    """

    _reader: AnthropicStreamTranslator = attrs.field(
        factory=lambda: AnthropicStreamTranslator(model="", created=0)
    )
    _broken: bool = False
    error_relayed: bool = False

    @property
    def usage(self) -> Usage | None:
        return self._reader.usage

    @property
    def done(self) -> bool:
        return self._reader.done

    def feed(self, data: bytes) -> bytes:
        if not self._broken:
            try:
                self._reader.feed(data)
            except UpstreamStreamError:
                self._broken = self.error_relayed = True
            except StreamTranslationError:
                self._broken = True  # keep relaying the provider's bytes; only the usage reading stops
        return data

    def finish(self) -> bytes:
        return b""


@attrs.define(eq=False)
class ToMessagesStream:
    """OpenAI chunks (from the upstream, or from an egress translator first) -> Anthropic stream events."""

    first: Any  # an egress StreamTranslator (gemini/vertex/anthropic) or None for OpenAI-shaped upstreams
    second: OpenAIToMessagesStream

    @property
    def usage(self) -> Usage | None:
        return self.second.usage or (self.first.usage if self.first is not None else None)

    @property
    def done(self) -> bool:
        return self.second.done

    def feed(self, data: bytes) -> bytes:
        return self.second.feed(self.first.feed(data) if self.first is not None else data)

    def finish(self) -> bytes:
        tail = self.first.finish() if self.first is not None else b""
        return self.second.feed(tail) + self.second.finish()


def to_messages_response(body: bytes, *, model: str, egress: Any) -> tuple[bytes, Usage | None]:
    """A 2xx answer as an Anthropic message (translating from the provider's API first when needed)."""
    if egress is not None:
        body, _ = egress.translate_response(body, model=model)
    return openai_to_messages_response(body, model=model)


def error_to_anthropic(status: int, body: bytes) -> bytes:
    """An upstream error body in Anthropic's shape (its own words kept, its shape changed)."""
    return openai_error_to_anthropic(status, body)
