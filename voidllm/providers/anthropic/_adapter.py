"""The Anthropic egress adapter: OpenAI chat in, Anthropic Messages upstream (the ``Adapter`` protocol)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from voidllm.providers.anthropic._mapping import ANTHROPIC_VERSION
from voidllm.providers.anthropic._request import to_messages_request
from voidllm.providers.anthropic._response import to_chat_completion
from voidllm.providers.anthropic._stream import AnthropicStreamTranslator
from voidllm.providers.base import Target, TranslationError, UpstreamCall, Usage

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

CHAT_PATH = "chat/completions"


@attrs.frozen
class AnthropicAdapter:
    """Translates OpenAI chat completions to and from Anthropic's Messages API.

    ``clock`` gives the ``created`` timestamp of translated answers (injected so tests are deterministic).
    """

    clock: Callable[[], float] = time.time

    def build_call(
        self, path: str, payload: Mapping[str, Any], target: Target, *, stream: bool
    ) -> UpstreamCall:
        """Build the Messages request for an OpenAI chat completion request.

        The URL is ``<base_url>/v1/messages``. ``base_url`` is the API root without ``/v1``; a trailing
        ``/v1`` (or ``/v1/``) that an administrator included anyway is removed first. The upstream model is
        ``target.model`` when set, else the request's ``model``.

        Raises:
            TranslationError: ``path`` is not ``chat/completions``, or the request cannot be expressed for
                Anthropic (the message says which field).
        """
        if path.strip("/") != CHAT_PATH:
            raise TranslationError("this endpoint is not supported by the anthropic provider")
        model = target.model or payload.get("model")
        if not isinstance(model, str) or not model:
            raise TranslationError("model field is required")
        body = to_messages_request(payload, model=model, stream=stream)
        return UpstreamCall(
            url=messages_url(target.base_url), headers=_headers(target, stream), body=orjson.dumps(body)
        )

    def translate_response(self, body: bytes, *, model: str) -> tuple[bytes, Usage | None]:
        """Translate a non-streamed Anthropic message into an OpenAI chat completion.

        Raises:
            BadGatewayError: the body is not an Anthropic message (code ``upstream_invalid_response``).
        """
        return to_chat_completion(body, model=model, created=int(self.clock()))

    def stream_translator(self, *, model: str, include_usage: bool = False) -> AnthropicStreamTranslator:
        """A translator for one streamed answer; ``include_usage`` adds OpenAI's final usage chunk."""
        return AnthropicStreamTranslator(model=model, created=int(self.clock()), include_usage=include_usage)


def messages_url(base_url: str) -> str:
    """``<base_url>/v1/messages``, tolerating a trailing slash or ``/v1`` on ``base_url``."""
    root = base_url.rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return f"{root}/v1/messages"


def _headers(target: Target, stream: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"anthropic-version", ANTHROPIC_VERSION.encode()),
        (b"content-type", b"application/json"),
        (b"accept", b"text/event-stream" if stream else b"application/json"),
    ]
    if target.api_key:
        headers.insert(0, (b"x-api-key", target.api_key.encode()))
    return headers
