"""Gemini ``GenerateContentResponse`` -> OpenAI ``chat.completion``, and the pieces the stream shares.

The readers below validate only what they use and raise :class:`StreamTranslationError` with a content-free
message when the response has the wrong shape; :func:`translate_response` turns that into a 502.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from voidllm.errors import BadGatewayError
from voidllm.providers.base import StreamTranslationError, UpstreamStreamError, Usage

_FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY")
FINISH_REASONS: dict[str, str] = {"STOP": "stop", "MAX_TOKENS": "length"} | dict.fromkeys(
    _FILTERED, "content_filter"
)
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
_TOKEN = re.compile(r"[A-Za-z0-9_\-.]{1,128}")
_STATUS = re.compile(r"[A-Z_]{1,64}")
_INT64_MAX = 2**63 - 1
_COUNTERS = (
    "promptTokenCount",
    "toolUsePromptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "totalTokenCount",
    "cachedContentTokenCount",
)
_REPORTED = frozenset({"promptTokenCount", "candidatesTokenCount", "totalTokenCount"})


def finish_reason(reason: object, *, tool_calls: bool) -> str:
    """OpenAI's finish_reason for a Gemini ``finishReason``: unknown reasons are ``stop``, and ``stop`` with
    function calls is ``tool_calls``."""
    mapped = FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if mapped == "stop" and tool_calls else mapped


def candidates(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = payload.get("candidates", [])
    if not isinstance(found, list) or not all(isinstance(candidate, Mapping) for candidate in found):
        raise StreamTranslationError("candidates is not a list of objects")
    return found


def candidate_index(candidate: Mapping[str, Any], position: int) -> int:
    index = candidate.get("index", position)
    if type(index) is not int or not 0 <= index < 1024:
        raise StreamTranslationError("a candidate has an invalid index")
    return index


def parts(candidate: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The candidate's content parts (none when the content is missing, as after a safety block)."""
    content = candidate.get("content")
    if content is None:
        return []
    found = content.get("parts", []) if isinstance(content, Mapping) else None
    if not isinstance(found, list) or not all(isinstance(part, Mapping) for part in found):
        raise StreamTranslationError("a candidate's content parts are not a list of objects")
    return found


def part_text(part: Mapping[str, Any]) -> str:
    """The visible text of a part; ``""`` for thought summaries and non-text parts."""
    text = part.get("text")
    if text is None or part.get("thought") is True:
        return ""
    if not isinstance(text, str):
        raise StreamTranslationError("a text part is not a string")
    return text


def part_call(part: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(name, JSON arguments)`` of a ``functionCall`` part, or None for other parts."""
    call = part.get("functionCall")
    if call is None:
        return None
    name = call.get("name") if isinstance(call, Mapping) else None
    args = call.get("args", {}) if isinstance(call, Mapping) else None
    if not isinstance(name, str) or not name or not isinstance(args, Mapping):
        raise StreamTranslationError("a functionCall part has no name or its args are not an object")
    return name, orjson.dumps(args).decode()


def tool_call(number: int, name: str, arguments: str) -> dict[str, Any]:
    return {"id": f"call_g{number}", "type": "function", "function": {"name": name, "arguments": arguments}}


def prompt_blocked(payload: Mapping[str, Any]) -> bool:
    feedback = payload.get("promptFeedback")
    return isinstance(feedback, Mapping) and feedback.get("blockReason") is not None


def response_id(payload: Mapping[str, Any], fallback: str) -> str:
    value = payload.get("responseId")
    return f"chatcmpl-{value}" if isinstance(value, str) and _TOKEN.fullmatch(value) else fallback


def usage_of(metadata: object) -> tuple[Usage, dict[str, Any]] | None:
    """The usage of a ``usageMetadata`` object, as a value and as OpenAI's ``usage`` JSON.

    prompt = promptTokenCount + toolUsePromptTokenCount; completion = candidatesTokenCount +
    thoughtsTokenCount (thinking is billed as output); total = totalTokenCount, never below their sum.
    ``None`` when no counter is present (Vertex sends ``usageMetadata`` with only ``trafficType`` on
    intermediate chunks) or a counter is not a non-negative integer.
    """
    if not isinstance(metadata, Mapping) or not _REPORTED & metadata.keys():
        return None
    counts = {key: metadata.get(key, 0) for key in _COUNTERS}
    if not all(type(value) is int and 0 <= value <= _INT64_MAX for value in counts.values()):
        return None
    prompt = counts["promptTokenCount"] + counts["toolUsePromptTokenCount"]
    completion = counts["candidatesTokenCount"] + counts["thoughtsTokenCount"]
    usage = Usage(prompt, completion, max(counts["totalTokenCount"], prompt + completion))
    return usage, _usage_json(usage, counts)


def _usage_json(usage: Usage, counts: Mapping[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if counts["cachedContentTokenCount"]:
        out["prompt_tokens_details"] = {"cached_tokens": counts["cachedContentTokenCount"]}
    if counts["thoughtsTokenCount"]:
        out["completion_tokens_details"] = {"reasoning_tokens": counts["thoughtsTokenCount"]}
    return out


def stream_error(error: object) -> UpstreamStreamError:
    """A Gemini ``error`` object inside a stream: its HTTP code and the matching error type, content-free."""
    code = error.get("code") if isinstance(error, Mapping) else None
    kind = _ERROR_TYPES.get(code, "api_error") if type(code) is int else "api_error"
    return UpstreamStreamError.reported(kind, code)


def openai_error(error: object) -> bytes:
    """A Gemini ``error`` object in OpenAI's error shape; the provider's message is kept for the client."""
    error = error if isinstance(error, Mapping) else {}
    code, status, message = error.get("code"), error.get("status"), error.get("message")
    kind = _ERROR_TYPES.get(code, "api_error") if type(code) is int else "api_error"
    return orjson.dumps(
        {
            "error": {
                "message": message if isinstance(message, str) else "the provider reported an error",
                "type": kind,
                "param": None,
                "code": status.lower() if isinstance(status, str) and _STATUS.fullmatch(status) else None,
            }
        }
    )


def translate_response(
    body: bytes, *, model: str, created: int, fallback_id: str
) -> tuple[bytes, Usage | None]:
    """A Gemini answer as an OpenAI ``chat.completion`` (or error) body, and its usage.

    Raises:
        BadGatewayError: the body is not a GenerateContentResponse or error object.
    """
    try:
        payload = orjson.loads(body)
        if not isinstance(payload, dict):
            raise StreamTranslationError("the response is not a JSON object")
        if "error" in payload:
            return openai_error(payload["error"]), None
        choices = _choices(payload)
    except (orjson.JSONDecodeError, StreamTranslationError) as exc:
        raise BadGatewayError("the provider's response could not be translated") from exc
    out: dict[str, Any] = {
        "id": response_id(payload, fallback_id),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
    }
    usage = usage_of(payload.get("usageMetadata"))
    if usage is not None:
        out["usage"] = usage[1]
    return orjson.dumps(out), usage[0] if usage is not None else None


def _choices(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = candidates(payload)
    if not found:
        reason = "content_filter" if prompt_blocked(payload) else "stop"
        return [_choice(0, [], [], reason)]
    choices: list[dict[str, Any]] = []
    numbered = 0
    for position, candidate in enumerate(found):
        texts, calls = [], []
        for part in parts(candidate):
            texts.append(part_text(part))
            if (call := part_call(part)) is not None:
                calls.append(tool_call(numbered, *call))
                numbered += 1
        reason = finish_reason(candidate.get("finishReason"), tool_calls=bool(calls))
        choices.append(_choice(candidate_index(candidate, position), texts, calls, reason))
    return sorted(choices, key=lambda choice: choice["index"])


def _choice(index: int, texts: list[str], calls: list[dict[str, Any]], reason: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return {"index": index, "message": message, "finish_reason": reason}
