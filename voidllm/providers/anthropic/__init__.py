"""Anthropic's Messages API, both ways, without I/O.

Egress (an OpenAI chat request served by an Anthropic upstream) is :class:`AnthropicAdapter`, the
:class:`~voidllm.providers.base.Adapter` of the ``anthropic`` provider: ``build_call`` (``_request``),
``translate_response`` (``_response``) and ``stream_translator`` (``_stream``, an
:class:`AnthropicStreamTranslator`). Only ``chat/completions`` is translated; any other endpoint is a 400.

Ingress (``POST /v1/messages`` from an Anthropic client, served by an OpenAI-compatible upstream):
:func:`messages_to_openai` (``_ingress_request``); :func:`openai_to_messages_response`,
:func:`anthropic_error`, :func:`openai_error_to_anthropic` and :func:`anthropic_stream_error`
(``_ingress_response``); :class:`OpenAIToMessagesStream` (``_ingress_stream``).

Each module's docstring lists what it translates and what it deliberately leaves out. Everything here is
sans-IO (STYLE P11): dicts and bytes in, bytes and values out; no trio, no sockets, no clock except the
adapter's injected one; error messages never quote request or response content. Requests that cannot be
expressed raise :class:`~voidllm.providers.base.TranslationError` (400), upstream bodies that cannot be
read raise :class:`~voidllm.errors.BadGatewayError` (502, code ``upstream_invalid_response``), and broken
streams raise :class:`~voidllm.providers.base.StreamTranslationError` (the stream ends with one abort event).
"""

from __future__ import annotations

from voidllm.providers.anthropic._adapter import AnthropicAdapter as AnthropicAdapter
from voidllm.providers.anthropic._adapter import messages_url as messages_url
from voidllm.providers.anthropic._ingress_request import messages_to_openai as messages_to_openai
from voidllm.providers.anthropic._ingress_response import anthropic_error as anthropic_error
from voidllm.providers.anthropic._ingress_response import anthropic_stream_error as anthropic_stream_error
from voidllm.providers.anthropic._ingress_response import error_type as error_type
from voidllm.providers.anthropic._ingress_response import (
    openai_error_to_anthropic as openai_error_to_anthropic,
)
from voidllm.providers.anthropic._ingress_response import (
    openai_to_messages_response as openai_to_messages_response,
)
from voidllm.providers.anthropic._ingress_stream import OpenAIToMessagesStream as OpenAIToMessagesStream
from voidllm.providers.anthropic._mapping import ANTHROPIC_VERSION as ANTHROPIC_VERSION
from voidllm.providers.anthropic._mapping import DEFAULT_MAX_TOKENS as DEFAULT_MAX_TOKENS
from voidllm.providers.anthropic._stream import AnthropicStreamTranslator as AnthropicStreamTranslator

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "AnthropicAdapter",
    "AnthropicStreamTranslator",
    "OpenAIToMessagesStream",
    "anthropic_error",
    "anthropic_stream_error",
    "error_type",
    "messages_to_openai",
    "messages_url",
    "openai_error_to_anthropic",
    "openai_to_messages_response",
]
