"""Anthropic Messages request -> OpenAI chat request (ingress: ``POST /v1/messages`` to an OpenAI upstream).

The inverse of the egress request translation, built from an allow-list the same way:

- ``system`` (a string or text blocks, joined with ``\\n``) -> a leading system message.
- user content: ``text`` -> text parts, ``image`` (base64 or url source) -> ``image_url`` parts (base64 as a
  ``data:`` URL), a base64 PDF ``document`` -> a ``file`` part with ``file_data``; a single text block
  becomes a plain string. ``tool_result`` blocks -> ``role: tool`` messages placed before the rest of the
  turn (their text blocks: a string, or text parts when there are several).
- assistant content: text blocks concatenated into ``content``, ``tool_use`` -> ``tool_calls`` with the
  input as a JSON string.
- ``tools`` -> function tools (``input_schema`` -> ``parameters``); ``tool_choice`` auto->auto,
  any->required, tool->named function, none->none; ``disable_parallel_tool_use: true`` ->
  ``parallel_tool_calls: false``.
- ``max_tokens`` (required, as Anthropic requires it) -> ``max_tokens``, the field every OpenAI-compatible
  server understands; ``stop_sequences`` -> ``stop``; ``temperature``, ``top_p``; ``metadata.user_id`` ->
  ``user``; ``stream: true`` -> ``stream`` plus ``stream_options.include_usage`` so usage is reported.

Rejected with a :class:`TranslationError` (400): server tools (web search, code execution, ...),
``mcp_servers``, images inside ``tool_result`` (OpenAI tool messages carry text only), documents other than
base64 PDFs, Files API sources, and block types OpenAI has no counterpart for. Silently dropped:
``thinking`` and ``redacted_thinking`` blocks, ``top_k`` (OpenAI itself rejects it), ``is_error`` on tool
results, ``cache_control``, citations, ``thinking``/``service_tier``/``container`` request fields. Error
messages name the field and position, never content.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from voidllm.providers.base import TranslationError

Message = dict[str, Any]
_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})


def messages_to_openai(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Translate an Anthropic Messages request into an OpenAI chat completion request.

    Raises:
        TranslationError: the request is invalid or uses a feature OpenAI-compatible upstreams lack.
    """
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise TranslationError("model field is required")
    if payload.get("mcp_servers"):
        raise TranslationError("mcp_servers are not supported by OpenAI-compatible upstreams")
    body: dict[str, Any] = {
        "model": model,
        "messages": _messages(payload),
        "max_tokens": _max_tokens(payload),
    }
    body.update(_sampling(payload))
    body.update(_tooling(payload))
    if payload.get("stream") is True:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _max_tokens(payload: Mapping[str, Any]) -> int:
    value = payload.get("max_tokens")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TranslationError("max_tokens is required and must be a positive integer")
    return value


def _sampling(payload: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stop = payload.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(item, str) for item in stop):
            raise TranslationError("stop_sequences must be a list of strings")
        if stop:
            out["stop"] = list(stop)
    for field in ("temperature", "top_p"):
        value = payload.get(field)
        if value is not None:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise TranslationError(f"{field} must be a number")
            out[field] = value
    metadata = payload.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, Mapping) else None
    if isinstance(user, str) and user:
        out["user"] = user
    return out


# --- messages --------------------------------------------------------------------------------------------


def _messages(payload: Mapping[str, Any]) -> list[Message]:
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("messages must be a non-empty list")
    out: list[Message] = []
    system = _system(payload.get("system"))
    if system:
        out.append({"role": "system", "content": system})
    for position, message in enumerate(messages):
        where = f"messages[{position}]"
        if not isinstance(message, Mapping):
            raise TranslationError(f"{where} must be an object")
        role = message.get("role")
        if role == "user":
            out.extend(_user(message.get("content"), where))
        elif role == "assistant":
            out.append(_assistant(message.get("content"), where))
        else:
            raise TranslationError(f"{where}.role must be user or assistant")
    return out


def _system(system: object) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    if not isinstance(system, list):
        raise TranslationError("system must be a string or a list of text blocks")
    return "\n".join(_block_text(block, f"system[{index}]") for index, block in enumerate(system))


def _block_text(block: object, where: str) -> str:
    if (
        not isinstance(block, Mapping)
        or block.get("type") != "text"
        or not isinstance(block.get("text"), str)
    ):
        raise TranslationError(f"{where} must be a text block")
    return str(block["text"])


def _blocks(content: object, where: str) -> list[Mapping[str, Any]]:
    """Content as a list of typed blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content must be a string or a list of content blocks")
    for index, block in enumerate(content):
        if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
            raise TranslationError(f"{where}.content[{index}] must be an object with a type")
    return content


def _user(content: object, where: str) -> list[Message]:
    tools: list[Message] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(_blocks(content, where)):
        at = f"{where}.content[{index}]"
        if block["type"] == "tool_result":
            tools.append(_tool_message(block, at))
        elif block["type"] not in _DROPPED_BLOCKS:
            parts.append(_user_part(block, at))
    if not parts:
        return tools
    only_text = len(parts) == 1 and parts[0]["type"] == "text"
    return [*tools, {"role": "user", "content": parts[0]["text"] if only_text else parts}]


def _user_part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": _block_text(block, where)}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _image_url(block.get("source"), where)}}
    if kind == "document":
        return _file_part(block, where)
    raise TranslationError(f"{where} has a content block type OpenAI-compatible upstreams do not support")


def _image_url(source: object, where: str) -> str:
    if isinstance(source, Mapping):
        kind, media_type, data, url = (source.get(key) for key in ("type", "media_type", "data", "url"))
        if kind == "base64" and isinstance(media_type, str) and isinstance(data, str) and data:
            return f"data:{media_type};base64,{data}"
        if kind == "url" and isinstance(url, str) and url:
            return url
    raise TranslationError(f"{where}.source must be a base64 or url image source")


def _file_part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if (
        not isinstance(source, Mapping)
        or source.get("type") != "base64"
        or source.get("media_type") != "application/pdf"
    ):
        raise TranslationError(
            f"{where}: only base64 PDF documents are supported by OpenAI-compatible upstreams"
        )
    data = source.get("data")
    if not isinstance(data, str) or not data:
        raise TranslationError(f"{where}.source.data must be a non-empty string")
    title = block.get("title")
    filename = title if isinstance(title, str) and title else "document.pdf"
    return {
        "type": "file",
        "file": {"filename": filename, "file_data": f"data:application/pdf;base64,{data}"},
    }


def _tool_message(block: Mapping[str, Any], where: str) -> Message:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise TranslationError(f"{where}.tool_use_id is required")
    content = block.get("content", "")
    texts: list[str] = []
    for index, item in enumerate([] if content in ("", None) else _blocks(content, where)):
        if item["type"] == "image":
            raise TranslationError(
                f"{where}: images in tool results are not supported by OpenAI-compatible upstreams"
            )
        texts.append(_block_text(item, f"{where}.content[{index}]"))
    text: str | list[dict[str, str]] = (
        texts[0] if len(texts) == 1 else [{"type": "text", "text": t} for t in texts]
    )
    return {"role": "tool", "tool_call_id": tool_use_id, "content": text or ""}


def _assistant(content: object, where: str) -> Message:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(_blocks(content, where)):
        at = f"{where}.content[{index}]"
        if block["type"] == "text":
            texts.append(_block_text(block, at))
        elif block["type"] == "tool_use":
            calls.append(_tool_call(block, at))
        elif block["type"] not in _DROPPED_BLOCKS:
            raise TranslationError(
                f"{at} has a content block type OpenAI-compatible upstreams do not support"
            )
    text = "".join(texts)
    message: Message = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise TranslationError(f"{where} needs an id and a name")
    if not isinstance(arguments, Mapping):
        raise TranslationError(f"{where}.input must be an object")
    function = {"name": name, "arguments": orjson.dumps(dict(arguments)).decode()}
    return {"id": call_id, "type": "function", "function": function}


# --- tools -----------------------------------------------------------------------------------------------


def _tooling(payload: Mapping[str, Any]) -> dict[str, Any]:
    tools = payload.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise TranslationError("tools must be a list")
    choice = _tool_choice(payload.get("tool_choice"))
    if not tools:
        if choice.get("tool_choice") not in (None, "auto", "none"):
            raise TranslationError("tool_choice requires tools")
        return {}
    return {"tools": [_function_tool(tool, f"tools[{index}]") for index, tool in enumerate(tools)], **choice}


def _function_tool(tool: object, where: str) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or tool.get("type", "custom") != "custom":
        raise TranslationError(f"{where}: server tools are not supported by OpenAI-compatible upstreams")
    name, schema = tool.get("name"), tool.get("input_schema")
    if not isinstance(name, str) or not name:
        raise TranslationError(f"{where}.name is required")
    if not isinstance(schema, Mapping):
        raise TranslationError(f"{where}.input_schema must be an object")
    function: dict[str, Any] = {"name": name, "parameters": dict(schema)}
    description = tool.get("description")
    if isinstance(description, str) and description:
        function["description"] = description
    return {"type": "function", "function": function}


def _tool_choice(choice: object) -> dict[str, Any]:
    if choice is None:
        return {}
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if not isinstance(choice, Mapping) or kind not in ("auto", "any", "tool", "none"):
        raise TranslationError("tool_choice.type must be auto, any, tool or none")
    out: dict[str, Any] = {"tool_choice": {"auto": "auto", "any": "required", "none": "none"}.get(kind)}
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise TranslationError("tool_choice.name is required for type tool")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out
