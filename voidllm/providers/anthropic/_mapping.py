"""Tables and small checks shared by both translation directions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from voidllm.providers.base import TranslationError, Usage

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

# The error types Anthropic documents (``{"type": "error", "error": {"type": ..., "message": ...}}``).
ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    }
)

# Anthropic's documented pattern for tool names; tool_use ids use the same alphabet without a length cap.
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOOL_ID = re.compile(r"[A-Za-z0-9_-]+")

# Anthropic stop_reason -> OpenAI finish_reason. pause_turn (a server tool paused a long turn) has no OpenAI
# counterpart and ends the turn; a context window overflow is a length stop. Unknown reasons read as stop.
STOP_TO_FINISH: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# OpenAI finish_reason -> Anthropic stop_reason. OpenAI does not say whether a stop sequence matched, so
# "stop" is always end_turn. Unknown or missing reasons read as end_turn.
FINISH_TO_STOP: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason(stop_reason: object) -> str:
    """The OpenAI finish_reason for an Anthropic stop_reason."""
    return STOP_TO_FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def stop_reason(finish: object) -> str:
    """The Anthropic stop_reason for an OpenAI finish_reason."""
    return FINISH_TO_STOP.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


def check_tool_name(name: object, where: str) -> str:
    """Return ``name`` if Anthropic accepts it as a tool name.

    Raises:
        TranslationError: not a string of 1-64 letters, digits, ``_`` or ``-``.
    """
    if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
        raise TranslationError(f"{where} must be 1-64 characters of letters, digits, '_' or '-'")
    return name


def check_tool_id(value: object, where: str) -> str:
    """Return ``value`` if Anthropic accepts it as a tool_use id.

    Raises:
        TranslationError: not a non-empty string of letters, digits, ``_`` or ``-``.
    """
    if not isinstance(value, str) or not _TOOL_ID.fullmatch(value):
        raise TranslationError(f"{where} must be a non-empty string of letters, digits, '_' or '-'")
    return value


def token_count(usage: Mapping[str, Any], key: str) -> int:
    """A token counter from a usage object; missing, null or invalid counts read as 0."""
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_from_anthropic(usage: Mapping[str, Any]) -> Usage:
    """Our usage from Anthropic's: prompt tokens include cache writes and cache reads."""
    prompt = sum(token_count(usage, key) for key in _ANTHROPIC_INPUT_KEYS)
    completion = token_count(usage, "output_tokens")
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


_ANTHROPIC_INPUT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def openai_usage(usage: Usage, *, cached_tokens: int | None = None) -> dict[str, Any]:
    """The OpenAI ``usage`` object, with ``prompt_tokens_details`` when the cached token count is given."""
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if cached_tokens is not None:
        body["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return body


def usage_from_openai(usage: Mapping[str, Any]) -> Usage:
    """Our usage from an OpenAI ``usage`` object; a missing total is the sum of the parts."""
    prompt = token_count(usage, "prompt_tokens")
    completion = token_count(usage, "completion_tokens")
    total = token_count(usage, "total_tokens") or prompt + completion
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


def cached_prompt_tokens(usage: Mapping[str, Any]) -> int:
    """OpenAI's ``prompt_tokens_details.cached_tokens`` (0 when absent)."""
    details = usage.get("prompt_tokens_details")
    return token_count(details, "cached_tokens") if isinstance(details, Mapping) else 0


def anthropic_usage(usage: Mapping[str, Any]) -> dict[str, int]:
    """Anthropic's usage object for an OpenAI one: cached prompt tokens are reported as cache reads."""
    cached = min(cached_prompt_tokens(usage), token_count(usage, "prompt_tokens"))
    return {
        "input_tokens": token_count(usage, "prompt_tokens") - cached,
        "output_tokens": token_count(usage, "completion_tokens"),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def parse_data_url(url: str, where: str) -> tuple[str, str]:
    """Split a base64 ``data:`` URL into its media type and payload.

    Raises:
        TranslationError: not of the form ``data:<media type>;base64,<data>``.
    """
    header, comma, data = url[5:].partition(",")
    params = header.split(";")
    if not comma or not data or "base64" not in params[1:]:
        raise TranslationError(f"{where} must be a base64 data URL (data:<media type>;base64,<data>)")
    return params[0].strip().lower(), data
