"""OpenAI ``chat/completions`` request -> Gemini ``GenerateContentRequest`` body (see the package doc)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from voidllm.providers.base import TranslationError
from voidllm.providers.gemini._content import is_name, text_parts, user_parts
from voidllm.providers.gemini._schema import clean_schema
from voidllm.providers.gemini._tools import tools_config

# Google's documented placeholder for a replayed functionCall part whose real thought signature is not known;
# Gemini 3 models refuse a function-call turn without one.
THOUGHT_SIGNATURE_SENTINEL = "skip_thought_signature_validator"

_REJECTED_FIELDS = {
    "functions": "the legacy 'functions' field is not supported; send 'tools'",
    "function_call": "the legacy 'function_call' field is not supported; send 'tool_choice'",
    "web_search_options": "web_search_options is not supported by the Gemini adapter",
    "audio": "audio output is not supported by the Gemini adapter",
}
_NUMBER_FIELDS = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)
_INTEGER_FIELDS = (("top_k", "topK"), ("n", "candidateCount"), ("seed", "seed"))


def build_request(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The Gemini request body for an OpenAI chat request.

    Raises:
        TranslationError: the request uses something Gemini cannot express; the message names the field.
    """
    _reject_unsupported(payload)
    conversation = _Conversation()
    for message in _messages(payload):
        conversation.add(message)
    if not conversation.contents:
        raise TranslationError("the request has no user, assistant or tool message")
    body: dict[str, Any] = {"contents": conversation.contents}
    if conversation.system:
        body["systemInstruction"] = {"parts": conversation.system}
    declarations, tool_config = tools_config(payload)
    if declarations:
        body["tools"] = [{"functionDeclarations": declarations}]
        if tool_config is not None:
            body["toolConfig"] = {"functionCallingConfig": tool_config}
    if config := _generation_config(payload):
        body["generationConfig"] = config
    return body


def _reject_unsupported(payload: Mapping[str, Any]) -> None:
    for field, reason in _REJECTED_FIELDS.items():
        if payload.get(field) is not None:
            raise TranslationError(reason)
    if payload.get("logprobs") or payload.get("top_logprobs"):
        raise TranslationError("logprobs are not supported by the Gemini adapter")
    if payload.get("logit_bias"):
        raise TranslationError("logit_bias is not supported by Gemini")
    modalities = payload.get("modalities")
    if modalities is not None and (not isinstance(modalities, list) or any(m != "text" for m in modalities)):
        raise TranslationError("only text output is supported by the Gemini adapter")


def _messages(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("messages must be a non-empty list")
    if not all(isinstance(message, Mapping) for message in messages):
        raise TranslationError("every message must be an object")
    return messages


@attrs.define(eq=False)
class _Conversation:
    """Gemini contents built message by message; remembers tool-call ids to name function responses."""

    system: list[dict[str, Any]] = attrs.field(factory=list)
    contents: list[dict[str, Any]] = attrs.field(factory=list)
    tool_names: dict[str, str] = attrs.field(factory=dict)

    def add(self, message: Mapping[str, Any]) -> None:
        role = message.get("role")
        if role in ("system", "developer"):
            self.system.extend(text_parts(message.get("content"), "a system message"))
        elif role == "user":
            self._append("user", user_parts(message.get("content")))
        elif role == "assistant":
            self._append("model", self._assistant_parts(message))
        elif role == "tool":
            self._append("user", [self._function_response(message)])
        else:
            raise TranslationError("a message has an unsupported role")

    def _append(self, role: str, parts: list[dict[str, Any]]) -> None:
        """Add a turn; a turn of the same role as the last one is merged into it (parallel tool results
        must arrive together, and some models refuse two turns of one role in a row)."""
        if not parts:
            return
        if self.contents and self.contents[-1]["role"] == role:
            self.contents[-1]["parts"].extend(parts)
        else:
            self.contents.append({"role": role, "parts": parts})

    def _assistant_parts(self, message: Mapping[str, Any]) -> list[dict[str, Any]]:
        parts = text_parts(message.get("content"), "an assistant message", also=("refusal",))
        tool_calls = message.get("tool_calls")
        if tool_calls is None:
            return parts
        if not isinstance(tool_calls, list):
            raise TranslationError("tool_calls must be a list")
        for call in tool_calls:
            call_id, name, args = _tool_call(call)
            self.tool_names[call_id] = name
            parts.append(
                {"functionCall": {"name": name, "args": args}, "thoughtSignature": THOUGHT_SIGNATURE_SENTINEL}
            )
        return parts

    def _function_response(self, message: Mapping[str, Any]) -> dict[str, Any]:
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise TranslationError("a tool message has no tool_call_id")
        name = self.tool_names.get(call_id)
        if name is None:
            raise TranslationError(
                "a tool message answers a tool call id that no earlier assistant message made"
            )
        text = "".join(
            part["text"] for part in text_parts(message.get("content"), "a tool message", keep_empty=True)
        )
        return {"functionResponse": {"name": name, "response": _function_result(text)}}


def _tool_call(call: object) -> tuple[str, str, dict[str, Any]]:
    """``(id, name, args)`` of one assistant tool call; ``args`` must decode to a JSON object."""
    if not isinstance(call, Mapping) or call.get("type", "function") != "function":
        raise TranslationError("an assistant tool call must be a function call")
    call_id, function = call.get("id"), call.get("function")
    if not isinstance(call_id, str) or not call_id:
        raise TranslationError("an assistant tool call has no id")
    if not isinstance(function, Mapping) or not is_name(function.get("name")):
        raise TranslationError("an assistant tool call has no function name")
    arguments = function.get("arguments") or "{}"
    try:
        args = orjson.loads(arguments) if isinstance(arguments, str) else None
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        raise TranslationError("tool call arguments must be a JSON object")
    return call_id, function["name"], args


def _function_result(text: str) -> dict[str, Any]:
    """A tool's result as Gemini's ``response`` object: a JSON object as is, anything else as ``output``."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"output": text}
    return value if isinstance(value, dict) else {"output": value}


def _generation_config(payload: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for field, name in _NUMBER_FIELDS:
        if (value := payload.get(field)) is not None:
            config[name] = _number(value, field)
    for field, name in _INTEGER_FIELDS:
        if (value := payload.get(field)) is not None:
            config[name] = _integer(value, field)
    for field in ("max_completion_tokens", "max_tokens"):
        if (limit := payload.get(field)) is not None:
            config["maxOutputTokens"] = _integer(limit, field)
            break
    if (stop := payload.get("stop")) is not None:
        config["stopSequences"] = _stop_sequences(stop)
    config.update(_response_format(payload.get("response_format")))
    return config


def _number(value: object, field: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TranslationError(f"{field} must be a number")
    return value


def _integer(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TranslationError(f"{field} must be an integer")
    return value


def _stop_sequences(stop: object) -> list[str]:
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(item, str) for item in sequences):
        raise TranslationError("stop must be a string or a list of strings")
    return sequences


def _response_format(response_format: object) -> dict[str, Any]:
    if response_format is None:
        return {}
    if not isinstance(response_format, Mapping):
        raise TranslationError("response_format must be an object")
    kind = response_format.get("type")
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind != "json_schema":
        raise TranslationError("response_format type must be text, json_object or json_schema")
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if schema is None:
        return {"responseMimeType": "application/json"}
    if not isinstance(schema, Mapping):
        raise TranslationError("response_format.json_schema.schema must be an object")
    return {"responseMimeType": "application/json", "responseSchema": clean_schema(schema)}
