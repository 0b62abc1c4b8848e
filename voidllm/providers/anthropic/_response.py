"""Anthropic Messages response -> OpenAI ``chat.completion`` (egress).

Text blocks are concatenated into ``message.content`` (``null`` when the answer is only tool calls);
``tool_use`` blocks become ``tool_calls`` with the input serialised as a JSON string; ``stop_reason`` maps
as in :data:`~voidllm.providers.anthropic._mapping.STOP_TO_FINISH`. The id is ``chatcmpl-<message id>``,
``model`` is the name the client asked for, and usage counts cache writes and cache reads as prompt tokens
(cache reads are also reported as ``prompt_tokens_details.cached_tokens``).

An Anthropic error body (``{"type": "error", "error": {...}}``) becomes OpenAI's error shape
(``{"error": {"message", "type", "param", "code"}}``) with the provider's message kept for the client and
its error type kept when it is one Anthropic documents (else ``api_error``).

Deliberately left out: ``thinking``/``redacted_thinking`` blocks (OpenAI's chat API has no place for
them), server tool blocks (``server_tool_use``, ``web_search_tool_result``, ...) and text citations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from voidllm.errors import BadGatewayError
from voidllm.providers.anthropic._mapping import (
    ERROR_TYPES,
    finish_reason,
    openai_usage,
    token_count,
    usage_from_anthropic,
)

if TYPE_CHECKING:
    from voidllm.providers.base import Usage

INVALID_RESPONSE = "upstream_invalid_response"


def to_chat_completion(body: bytes, *, model: str, created: int) -> tuple[bytes, Usage | None]:
    """Translate an Anthropic message (or error) into an OpenAI chat completion (or error).

    Returns:
        The OpenAI JSON body and the usage it reports (``None`` without a usage object, and for errors).

    Raises:
        BadGatewayError: the body is neither an Anthropic message nor an Anthropic error (code
            ``upstream_invalid_response``).
    """
    payload = _load(body)
    if payload.get("type") == "error":
        return openai_error(payload.get("error")), None
    message = _check_message(payload)
    text, tool_calls = _content(message["content"])
    reply: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    choice = {
        "index": 0,
        "message": reply,
        "logprobs": None,
        "finish_reason": finish_reason(message.get("stop_reason")),
    }
    out: dict[str, Any] = {
        "id": f"chatcmpl-{message['id']}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
    }
    raw_usage = message.get("usage")
    if not isinstance(raw_usage, Mapping):
        return orjson.dumps(out), None
    usage = usage_from_anthropic(raw_usage)
    out["usage"] = openai_usage(usage, cached_tokens=token_count(raw_usage, "cache_read_input_tokens"))
    return orjson.dumps(out), usage


def openai_error(error: object) -> bytes:
    """An Anthropic ``error`` object in OpenAI's error shape."""
    error = error if isinstance(error, Mapping) else {}
    kind, message = error.get("type"), error.get("message")
    kind = kind if kind in ERROR_TYPES else "api_error"
    text = message if isinstance(message, str) else "the provider reported an error"
    return orjson.dumps({"error": {"message": text, "type": kind, "param": None, "code": None}})


def _load(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _invalid("anthropic response is not valid JSON") from None
    if not isinstance(payload, dict):
        raise _invalid("anthropic response is not a message")
    return payload


def _check_message(message: dict[str, Any]) -> dict[str, Any]:
    if message.get("type") != "message":
        raise _invalid("anthropic response is not a message")
    if not isinstance(message.get("id"), str) or not isinstance(message.get("content"), list):
        raise _invalid("anthropic message lacks its id or content")
    return message


def _content(blocks: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            calls.append(_tool_call(block))
    return "".join(texts), calls


def _tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(arguments, dict):
        raise _invalid("anthropic tool_use block lacks its id, name or input")
    function = {"name": name, "arguments": orjson.dumps(arguments).decode()}
    return {"id": call_id, "type": "function", "function": function}


def _invalid(message: str) -> BadGatewayError:
    return BadGatewayError(message, code=INVALID_RESPONSE)
