"""OpenAI chat request -> Anthropic Messages request (egress).

The Anthropic body is built from an allow-list: every field it carries is derived below, and every other
OpenAI field is dropped. What is translated:

- ``system`` and ``developer`` messages, wherever they appear, are joined with ``\\n`` into top-level
  ``system`` (Anthropic has no mid-conversation system turn).
- ``user`` content (a string or parts): ``text``; ``image_url`` with a base64 ``data:`` URL (jpeg, png, gif,
  webp) as a ``base64`` image source, with an ``http(s)`` URL as a ``url`` image source (``detail`` has no
  counterpart and is dropped); ``file`` parts carrying a PDF as ``file_data`` as a base64 ``document``.
- ``assistant`` content (text and refusal parts) as text blocks, ``tool_calls`` as ``tool_use`` blocks (the
  arguments must be a JSON object; an empty string means ``{}``).
- ``tool`` messages as ``tool_result`` blocks of a user turn. Anthropic requires alternating turns, so
  consecutive messages of one role (runs of tool results, a user message after tool results) are merged
  into one turn, tool results first as Anthropic requires. Empty text is dropped (Anthropic rejects empty
  text blocks), and a message left with nothing is skipped.
- ``tools`` as ``{name, description, input_schema}`` (missing parameters: an empty object schema; ``strict``
  is dropped); ``tool_choice`` auto->auto, required->any, none->none (tools kept, so a conversation with
  tool history stays valid), a named function->``{type: tool, name}`` (it must be declared);
  ``parallel_tool_calls: false`` -> ``disable_parallel_tool_use: true``.
- ``max_completion_tokens`` (else ``max_tokens``, else 4096), ``stop`` -> ``stop_sequences``,
  ``temperature``, ``top_p`` and a non-standard ``top_k`` unchanged (Anthropic rejects a temperature above
  1 itself), ``user`` -> ``metadata.user_id``.

Rejected with a :class:`TranslationError` (400) because Anthropic cannot honour them: ``n`` > 1,
``response_format`` of type ``json_schema`` (a schema is a contract we cannot enforce; ``json_object`` is
dropped, since OpenAI already requires the prompt to ask for JSON), audio input or output, legacy
``functions``/``function_call``, ``file_id`` references, custom (non-function) tools and tool choices.
Silently dropped: ``frequency_penalty``, ``presence_penalty``, ``logprobs``, ``top_logprobs``,
``logit_bias``, ``seed``, ``service_tier``, ``store``, ``metadata``, ``stream_options``,
``reasoning_effort``, ``prediction``, message ``name`` fields, and ``cache_control`` hints. Error messages
name the offending field and its position, never its content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from voidllm.providers.anthropic._mapping import (
    DEFAULT_MAX_TOKENS,
    IMAGE_MEDIA_TYPES,
    check_tool_id,
    check_tool_name,
    parse_data_url,
)
from voidllm.providers.base import TranslationError

Block = dict[str, Any]
_SYSTEM_ROLES = ("system", "developer")
_UNSUPPORTED_FIELDS = {
    "functions": "legacy functions are not supported by anthropic; use tools",
    "function_call": "legacy function_call is not supported by anthropic; use tool_choice",
    "audio": "audio output is not supported by anthropic",
}
_UNSUPPORTED_PARTS = {
    "input_audio": "audio input is not supported by anthropic",
    "audio": "audio input is not supported by anthropic",
}


def to_messages_request(payload: Mapping[str, Any], *, model: str, stream: bool) -> dict[str, Any]:
    """Translate an OpenAI chat completion request into an Anthropic Messages request body.

    Raises:
        TranslationError: the request cannot be expressed for Anthropic; the message says which field.
    """
    _reject_unsupported(payload)
    system, messages = _conversation(payload.get("messages"))
    body: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(payload), "messages": messages}
    if system:
        body["system"] = system
    body.update(_sampling(payload))
    body.update(_tooling(payload))
    if stream:
        body["stream"] = True
    return body


def _reject_unsupported(payload: Mapping[str, Any]) -> None:
    for field, message in _UNSUPPORTED_FIELDS.items():
        if payload.get(field) is not None:
            raise TranslationError(message)
    n = payload.get("n")
    if n is not None and n != 1:
        raise TranslationError("n > 1 is not supported by anthropic")
    modalities = payload.get("modalities")
    if isinstance(modalities, list) and any(kind != "text" for kind in modalities):
        raise TranslationError("only text output is supported by anthropic")
    _check_response_format(payload.get("response_format"))


def _check_response_format(value: object) -> None:
    if value is None:
        return
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "json_schema":
        raise TranslationError("response_format json_schema is not supported by anthropic")
    if kind not in ("text", "json_object"):
        raise TranslationError("response_format must be an object of type text, json_object or json_schema")


def _max_tokens(payload: Mapping[str, Any]) -> int:
    for field in ("max_completion_tokens", "max_tokens"):
        value = payload.get(field)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise TranslationError(f"{field} must be a positive integer")
        return value
    return DEFAULT_MAX_TOKENS


def _sampling(payload: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stop = _stop_sequences(payload.get("stop"))
    if stop:
        out["stop_sequences"] = stop
    for field in ("temperature", "top_p", "top_k"):
        value = payload.get(field)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise TranslationError(f"{field} must be a number")
        out[field] = value
    user = payload.get("user")
    if user is not None:
        if not isinstance(user, str):
            raise TranslationError("user must be a string")
        if user:
            out["metadata"] = {"user_id": user}
    return out


def _stop_sequences(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item for item in value if item]
    raise TranslationError("stop must be a string or a list of strings")


# --- messages --------------------------------------------------------------------------------------------


def _conversation(messages: object) -> tuple[str, list[Block]]:
    """Split the system text off and build alternating Anthropic turns."""
    if not isinstance(messages, list) or not messages:
        raise TranslationError("messages must be a non-empty list")
    system: list[str] = []
    turns: list[Block] = []
    for position, message in enumerate(messages):
        where = f"messages[{position}]"
        if not isinstance(message, Mapping):
            raise TranslationError(f"{where} must be an object")
        role = message.get("role")
        if role in _SYSTEM_ROLES:
            system.extend(_texts(message.get("content"), where))
            continue
        convert = _ROLES.get(role) if isinstance(role, str) else None
        if convert is None:
            raise TranslationError(f"{where}.role must be system, developer, user, assistant or tool")
        anthropic_role, blocks = convert(message, where)
        _append_turn(turns, anthropic_role, blocks)
    if not turns:
        raise TranslationError("messages must contain a user or assistant message with content")
    return "\n".join(text for text in system if text), [_tool_results_first(turn) for turn in turns]


def _append_turn(turns: list[Block], role: str, blocks: list[Block]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _tool_results_first(turn: Block) -> Block:
    blocks = turn["content"]
    results = [block for block in blocks if block["type"] == "tool_result"]
    if not results or len(results) == len(blocks):
        return turn
    return {"role": turn["role"], "content": results + [b for b in blocks if b["type"] != "tool_result"]}


def _texts(content: object, where: str) -> list[str]:
    """The texts of a system message: a string or a list of text parts."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content must be a string or a list of text parts")
    return [_part_text(part, f"{where}.content[{index}]") for index, part in enumerate(content)]


def _part_text(part: object, where: str) -> str:
    if not isinstance(part, Mapping) or part.get("type") not in ("text", "refusal"):
        raise TranslationError(f"{where} must be a text part")
    text = part.get(part["type"])
    if not isinstance(text, str):
        raise TranslationError(f"{where}.{part['type']} must be a string")
    return text


def _user(message: Mapping[str, Any], where: str) -> tuple[str, list[Block]]:
    content = message.get("content")
    if content is None or isinstance(content, str):
        return "user", _text_blocks([content or ""])
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content must be a string or a list of parts")
    blocks = [_user_part(part, f"{where}.content[{index}]") for index, part in enumerate(content)]
    return "user", [block for block in blocks if block is not None]


def _text_blocks(texts: list[str]) -> list[Block]:
    return [{"type": "text", "text": text} for text in texts if text]


def _user_part(part: object, where: str) -> Block | None:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if not isinstance(part, Mapping) or not isinstance(kind, str):
        raise TranslationError(f"{where} must be an object with a type")
    if kind == "text":
        return next(iter(_text_blocks([_part_text(part, where)])), None)
    if kind == "image_url":
        return _image_block(part.get("image_url"), where)
    if kind == "file":
        return _document_block(part.get("file"), where)
    raise TranslationError(
        _UNSUPPORTED_PARTS.get(kind, f"{where} has a content part type anthropic does not support")
    )


def _image_block(image: object, where: str) -> Block:
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str) or not url:
        raise TranslationError(f"{where}.image_url.url is required")
    scheme = url[:8].lower()
    if scheme.startswith("data:"):
        media_type, data = parse_data_url(url, f"{where}.image_url.url")
        if media_type not in IMAGE_MEDIA_TYPES:
            raise TranslationError(f"{where}: anthropic accepts only jpeg, png, gif and webp images")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if scheme.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError(f"{where}.image_url.url must be an http(s) URL or a base64 data URL")


def _document_block(file: object, where: str) -> Block:
    if not isinstance(file, Mapping):
        raise TranslationError(f"{where}.file must be an object")
    data_url = file.get("file_data")
    if not isinstance(data_url, str) or not data_url.lower().startswith("data:"):
        raise TranslationError(f"{where}: anthropic needs the file inline as file_data, not a file_id")
    media_type, data = parse_data_url(data_url, f"{where}.file.file_data")
    if media_type != "application/pdf":
        raise TranslationError(f"{where}: anthropic accepts only PDF files")
    return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _assistant(message: Mapping[str, Any], where: str) -> tuple[str, list[Block]]:
    content = message.get("content")
    if content is None or isinstance(content, str):
        blocks = _text_blocks([content or ""])
    elif isinstance(content, list):
        blocks = _text_blocks([_part_text(part, f"{where}.content[{i}]") for i, part in enumerate(content)])
    else:
        raise TranslationError(f"{where}.content must be a string or a list of text parts")
    if message.get("function_call") is not None:
        raise TranslationError(f"{where}: legacy function_call is not supported by anthropic; use tool_calls")
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise TranslationError(f"{where}.tool_calls must be a list")
        blocks.extend(_tool_use(call, f"{where}.tool_calls[{i}]") for i, call in enumerate(calls))
    return "assistant", blocks


def _tool_use(call: object, where: str) -> Block:
    if not isinstance(call, Mapping) or call.get("type", "function") != "function":
        raise TranslationError(f"{where} must be a function tool call")
    function = call.get("function")
    if not isinstance(function, Mapping):
        raise TranslationError(f"{where}.function must be an object")
    return {
        "type": "tool_use",
        "id": check_tool_id(call.get("id"), f"{where}.id"),
        "name": check_tool_name(function.get("name"), f"{where}.function.name"),
        "input": _arguments(function.get("arguments"), f"{where}.function.arguments"),
    }


def _arguments(value: object, where: str) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise TranslationError(f"{where} must be a JSON object") from None
    if not isinstance(value, dict):
        raise TranslationError(f"{where} must be a JSON object")
    return value


def _tool(message: Mapping[str, Any], where: str) -> tuple[str, list[Block]]:
    block: Block = {
        "type": "tool_result",
        "tool_use_id": check_tool_id(message.get("tool_call_id"), f"{where}.tool_call_id"),
    }
    content = message.get("content")
    if isinstance(content, list):
        parts = [_user_part(part, f"{where}.content[{index}]") for index, part in enumerate(content)]
        content = [part for part in parts if part is not None]
    elif content is not None and not isinstance(content, str):
        raise TranslationError(f"{where}.content must be a string or a list of parts")
    if content:
        block["content"] = content
    return "user", [block]


def _legacy_function(message: Mapping[str, Any], where: str) -> tuple[str, list[Block]]:
    raise TranslationError(
        f"{where}: legacy function messages are not supported by anthropic; use tool messages"
    )


_ROLES: dict[str, Callable[[Mapping[str, Any], str], tuple[str, list[Block]]]] = {
    "user": _user,
    "assistant": _assistant,
    "tool": _tool,
    "function": _legacy_function,
}


# --- tools -----------------------------------------------------------------------------------------------


def _tooling(payload: Mapping[str, Any]) -> dict[str, Any]:
    tools = _tools(payload.get("tools"))
    names = {tool["name"] for tool in tools}
    choice = _tool_choice(payload.get("tool_choice"), names)
    if not tools:
        return {}
    if payload.get("parallel_tool_calls") is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    return {"tools": tools, "tool_choice": choice} if choice else {"tools": tools}


def _tools(value: object) -> list[Block]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TranslationError("tools must be a list")
    tools = [_tool_definition(tool, f"tools[{index}]") for index, tool in enumerate(value)]
    if len({tool["name"] for tool in tools}) != len(tools):
        raise TranslationError("tools must have unique names")
    return tools


def _tool_definition(tool: object, where: str) -> Block:
    if not isinstance(tool, Mapping) or tool.get("type") != "function":
        raise TranslationError(
            f"{where} must be a function tool; anthropic does not support other tool types"
        )
    function = tool.get("function")
    if not isinstance(function, Mapping):
        raise TranslationError(f"{where}.function must be an object")
    out: Block = {"name": check_tool_name(function.get("name"), f"{where}.function.name")}
    description = function.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise TranslationError(f"{where}.function.description must be a string")
        if description:
            out["description"] = description
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise TranslationError(f"{where}.function.parameters must be a JSON schema object")
    out["input_schema"] = dict(parameters) if parameters else {"type": "object", "properties": {}}
    return out


def _tool_choice(value: object, names: set[str]) -> Block | None:
    if value is None or (not names and value in ("auto", "none")):
        return None
    if not names:
        raise TranslationError("tool_choice requires tools")
    if isinstance(value, str):
        if value not in _CHOICES:
            raise TranslationError("tool_choice must be auto, required, none or a named function")
        return {"type": _CHOICES[value]}
    function = (
        value.get("function") if isinstance(value, Mapping) and value.get("type") == "function" else None
    )
    if not isinstance(function, Mapping):
        raise TranslationError("tool_choice must be auto, required, none or a named function")
    name = function.get("name")
    if not isinstance(name, str) or name not in names:
        raise TranslationError("tool_choice names a function that is not among the tools")
    return {"type": "tool", "name": name}


_CHOICES = {"auto": "auto", "required": "any", "none": "none"}
