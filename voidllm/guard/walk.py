"""Walking request bodies to their text parts, scanning each with a guard and replacing it in place.

What counts as text, per ingress (everything else, such as roles, ids, model names, images, audio, files and
token arrays, is left alone):

- OpenAI chat completions: each message's ``content`` (a string, or the ``text`` of its ``text`` parts),
  ``tool_calls[].function.arguments`` and the legacy ``function_call.arguments``;
- OpenAI completions: ``prompt`` (a string or a list of strings); ``suffix``;
- OpenAI embeddings: ``input`` (a string or a list of strings);
- OpenAI responses: ``instructions``; ``input`` (a string, or items: message ``content`` as above with
  ``input_text`` / ``output_text`` parts, ``function_call.arguments``, ``function_call_output.output``);
- Anthropic messages: ``system`` (a string or text blocks); each message's ``content`` (a string, or blocks:
  ``text``, every string inside ``tool_use.input``, ``tool_result.content`` as content, a ``document``'s
  plain-text ``source.data`` or content ``source.content``); ``thinking`` blocks are left alone (they are
  the model's own, signed: changed, the upstream refuses them);
- MCP ``tools/call``: every string inside ``params.arguments``.

Each function takes the parsed JSON body (a dict, changed in place) and the request's
:class:`voidllm.guard.scan.RequestGuard`; ``guard.redactions`` tells afterwards whether anything changed
(the caller re-serialises the body only then).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from voidllm.guard.scan import RequestGuard

_TEXT_PARTS = frozenset(("text", "input_text", "output_text"))


def _scan_key(obj: Any, key: str, guard: RequestGuard) -> None:
    if isinstance(obj, dict):
        value = obj.get(key)
        if isinstance(value, str):
            obj[key] = guard.scan(value)


def _scan_list(obj: Any, key: str, guard: RequestGuard) -> None:
    """``obj[key]``: a string, or a list whose strings are scanned (other items left alone)."""
    if not isinstance(obj, dict):
        return
    value = obj.get(key)
    if isinstance(value, str):
        obj[key] = guard.scan(value)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                value[index] = guard.scan(item)


def map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    """Every string in a JSON value (dict values and list items, recursively, not keys) replaced in place by
    ``fn`` of it; a string value itself is returned as ``fn`` of it."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = map_strings(item, fn)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            value[index] = map_strings(item, fn)
    return value


def scan_strings(value: Any, guard: RequestGuard) -> Any:
    """Every string in a JSON value (dict values and list items, recursively, not keys), scanned."""
    return map_strings(value, guard.scan)


def _openai_content(message: dict[str, Any], guard: RequestGuard) -> None:
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = guard.scan(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") in _TEXT_PARTS:
                _scan_key(part, "text", guard)


def guard_openai(body: dict[str, Any], guard: RequestGuard) -> None:
    """The text parts of an OpenAI chat completions, completions, embeddings or responses body."""
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, dict):
                continue
            _openai_content(message, guard)
            calls = message.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                _scan_key(call.get("function") if isinstance(call, dict) else None, "arguments", guard)
            _scan_key(message.get("function_call"), "arguments", guard)
    _scan_list(body, "prompt", guard)
    _scan_key(body, "suffix", guard)
    _scan_key(body, "instructions", guard)
    items = body.get("input")
    if isinstance(items, list) and any(isinstance(item, dict) for item in items):
        for item in items:
            if isinstance(item, dict):
                _openai_content(item, guard)
                _scan_key(item, "arguments", guard)
                _scan_key(item, "output", guard)
    else:
        _scan_list(body, "input", guard)


def _anthropic_content(holder: dict[str, Any], guard: RequestGuard) -> None:
    content = holder.get("content")
    if isinstance(content, str):
        holder["content"] = guard.scan(content)
        return
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            _scan_key(block, "text", guard)
        elif kind == "tool_use":
            scan_strings(block.get("input"), guard)
        elif kind == "tool_result":
            _anthropic_content(block, guard)
        elif kind == "document" and isinstance(source := block.get("source"), dict):
            if source.get("type") == "text":
                _scan_key(source, "data", guard)
            elif source.get("type") == "content":
                _anthropic_content(source, guard)


def guard_anthropic(body: dict[str, Any], guard: RequestGuard) -> None:
    """The text parts of an Anthropic messages body."""
    system = body.get("system")
    if isinstance(system, str):
        body["system"] = guard.scan(system)
    elif isinstance(system, list):
        for block in system:
            if isinstance(block, dict) and block.get("type") == "text":
                _scan_key(block, "text", guard)
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if isinstance(message, dict):
            _anthropic_content(message, guard)


def guard_mcp_call(params: dict[str, Any], guard: RequestGuard) -> None:
    """The arguments of an MCP ``tools/call`` (its ``params``): every string in them."""
    arguments = params.get("arguments")
    if isinstance(arguments, dict | list):
        scan_strings(arguments, guard)
