"""OpenAI ``chat.completion`` -> Anthropic message (ingress), and errors in Anthropic's shape.

The first choice becomes the message: its text (or refusal) as one text block, each tool call as a
``tool_use`` block whose input is the parsed arguments. ``finish_reason`` maps as in
:data:`~voidllm.providers.anthropic._mapping.FINISH_TO_STOP` (``stop`` is always ``end_turn``, since OpenAI
does not say whether a stop sequence matched, so ``stop_sequence`` is ``null``). The id is
``msg_<completion id>``, ``model`` the name the client asked for. Usage: OpenAI's prompt tokens minus its
cached tokens are ``input_tokens``, the cached ones ``cache_read_input_tokens``.

Errors on the ``/v1/messages`` route take Anthropic's shape, ``{"type": "error", "error": {"type",
"message"}}``, with the type chosen from the HTTP status (:data:`ERROR_TYPES`). An upstream's own error
message is relayed to the client (it is the provider's text, as on the OpenAI routes); the gateway's own
messages never carry content. A stream that cannot be finished ends with one ``error`` event.

Deliberately left out: other choices, ``logprobs``, and non-standard reasoning fields
(``reasoning_content``): a thinking block would need a signature only Anthropic can make.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from voidllm.errors import BadGatewayError
from voidllm.providers.anthropic._mapping import anthropic_usage, stop_reason, usage_from_openai
from voidllm.providers.anthropic._response import INVALID_RESPONSE

if TYPE_CHECKING:
    from voidllm.providers.base import Usage

# HTTP status -> Anthropic error type, as Anthropic's API documents them. Other 4xx statuses are
# invalid_request_error, other 5xx api_error.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def openai_to_messages_response(body: bytes, *, model: str) -> tuple[bytes, Usage | None]:
    """Translate an OpenAI chat completion into an Anthropic message.

    Returns:
        The Anthropic JSON body and the usage the upstream reported (``None`` without a usage object).

    Raises:
        BadGatewayError: the body is not a chat completion, or a tool call's arguments are not a JSON
            object (code ``upstream_invalid_response``).
    """
    completion, choice = _load_completion(body)
    message = choice.get("message")
    if not isinstance(message, Mapping):
        raise _invalid("chat completion choice has no message")
    raw_usage = completion.get("usage")
    usage = raw_usage if isinstance(raw_usage, Mapping) else {}
    out = {
        "id": f"msg_{completion.get('id') or 'unknown'}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _content(message),
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(usage),
    }
    return orjson.dumps(out), usage_from_openai(usage) if usage else None


def anthropic_error(status: int, message: str) -> bytes:
    """An error body in Anthropic's shape: ``{"type": "error", "error": {"type": ..., "message": ...}}``."""
    return orjson.dumps({"type": "error", "error": {"type": error_type(status), "message": message}})


def openai_error_to_anthropic(status: int, body: bytes) -> bytes:
    """An upstream error answer as an Anthropic error body for the same status.

    The upstream's message is kept for the client (OpenAI's ``{"error": {"message": ...}}``, a bare
    ``{"error": "..."}``, or vLLM's ``{"object": "error", "message": ...}``); without one, a generic message.
    """
    return anthropic_error(status, _error_message(body) or "the upstream reported an error")


def _error_message(body: bytes) -> str:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(payload, dict):
        return ""
    error = payload.get("error")
    message = error.get("message") if isinstance(error, Mapping) else error or payload.get("message")
    return message if isinstance(message, str) else ""


def anthropic_stream_error(status: int = 500, message: str = "stream aborted") -> bytes:
    """The one ``error`` event that ends an Anthropic-shaped stream which cannot be completed."""
    return b"event: error\ndata: " + anthropic_error(status, message) + b"\n\n"


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status."""
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def _load_completion(body: bytes) -> tuple[dict[str, Any], Mapping[str, Any]]:
    try:
        completion = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _invalid("upstream response is not valid JSON") from None
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise _invalid("upstream response is not a chat completion")
    return completion, choices[0]


def _content(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = _text(message.get("content")) or _text(message.get("refusal"))
    if text:
        blocks.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        blocks.append(_tool_use(call))
    return blocks


def _text(content: object) -> str:
    """Message text: a string, or the text of a list of text parts (some servers answer that way)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def _tool_use(call: object) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(call, Mapping) or not isinstance(function, Mapping):
        raise _invalid("upstream tool call has no function")
    call_id, name = call.get("id"), function.get("name")
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise _invalid("upstream tool call lacks its id or name")
    return {"type": "tool_use", "id": call_id, "name": name, "input": _arguments(function.get("arguments"))}


def _arguments(arguments: object) -> dict[str, Any]:
    if arguments in (None, ""):
        return {}
    try:
        value = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise _invalid("upstream tool call arguments are not a JSON object")
    return value


def _invalid(message: str) -> BadGatewayError:
    return BadGatewayError(message, code=INVALID_RESPONSE)
