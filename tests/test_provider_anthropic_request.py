"""Egress request translation (OpenAI chat -> Anthropic Messages): the upstream call, golden bodies written
from both APIs' documented formats (``fixtures/anthropic/egress_requests.json``), and every rejection with
its message, which must never quote request content.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from voidllm.errors import BadRequestError
from voidllm.providers.anthropic import AnthropicAdapter, messages_url
from voidllm.providers.base import Target, TranslationError

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
GOLDEN = json.loads((FIXTURES / "egress_requests.json").read_text())
TARGET = Target(base_url="https://api.anthropic.com", api_key="sk-ant-test", model="claude-sonnet-4-5")
SECRET = "SECRET-MARKER-7f3a"
ADAPTER = AnthropicAdapter(clock=lambda: 1_700_000_000)


def build(payload: dict[str, Any], *, stream: bool = False, target: Target = TARGET) -> dict[str, Any]:
    call = ADAPTER.build_call("chat/completions", payload, target, stream=stream)
    body: dict[str, Any] = orjson.loads(call.body)
    return body


def user(content: Any = "hi") -> dict[str, Any]:
    return {"role": "user", "content": content}


def chat(*messages: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "claude", "messages": list(messages) or [user(SECRET)], **fields}


# --- the call ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", GOLDEN, ids=[case["name"] for case in GOLDEN])
def test_golden_request(case: dict[str, Any]) -> None:
    assert build(case["openai"]) == case["anthropic"]


def test_streaming_call_url_and_headers() -> None:
    call = ADAPTER.build_call("/chat/completions", chat(user("hi")), TARGET, stream=True)
    assert call.url == "https://api.anthropic.com/v1/messages"
    assert call.headers == [
        (b"x-api-key", b"sk-ant-test"),
        (b"anthropic-version", b"2023-06-01"),
        (b"content-type", b"application/json"),
        (b"accept", b"text/event-stream"),
    ]
    assert orjson.loads(call.body)["stream"] is True


def test_plain_call_accepts_json_and_omits_stream() -> None:
    call = ADAPTER.build_call("chat/completions", chat(user("hi"), stream=True), TARGET, stream=False)
    assert (b"accept", b"application/json") in call.headers
    assert "stream" not in orjson.loads(call.body)


def test_no_key_no_key_header_and_model_from_request() -> None:
    target = Target(base_url="http://anthropic.internal:8080/")
    call = ADAPTER.build_call("chat/completions", chat(user("hi")), target, stream=False)
    assert [name for name, _ in call.headers] == [b"anthropic-version", b"content-type", b"accept"]
    assert orjson.loads(call.body)["model"] == "claude"


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1/", "https://api.anthropic.com/v1/messages"),
        ("https://gw.example/anthropic", "https://gw.example/anthropic/v1/messages"),
        ("https://gw.example/v10", "https://gw.example/v10/v1/messages"),
    ],
)
def test_messages_url(base_url: str, url: str) -> None:
    assert messages_url(base_url) == url


@pytest.mark.parametrize("path", ["embeddings", "completions", "responses", "models"])
def test_other_endpoints_are_rejected(path: str) -> None:
    with pytest.raises(TranslationError, match="not supported by the anthropic provider"):
        ADAPTER.build_call(path, chat(), TARGET, stream=False)


def test_translation_error_is_a_400() -> None:
    assert issubclass(TranslationError, BadRequestError)
    assert TranslationError("x").status == 400


def test_payload_is_not_mutated() -> None:
    # merging turns must build new lists, never extend the caller's
    case = next(case for case in GOLDEN if case["name"] == "multi_turn_tool_use_with_merged_results")
    payload = json.loads(json.dumps(case["openai"]))
    build(payload)
    build(payload)
    assert payload == case["openai"]


# --- rejections ----------------------------------------------------------------------------------------

_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def _call(arguments: Any, call_id: str = "call_1", name: str = "get_weather", kind: str = "function") -> Any:
    return {"id": call_id, "type": kind, "function": {"name": name, "arguments": arguments}}


def _assistant_calls(*calls: Any) -> dict[str, Any]:
    return chat(
        user(SECRET), {"role": "assistant", "content": SECRET, "tool_calls": list(calls)}, tools=[_TOOL]
    )


def _image(url: Any) -> dict[str, Any]:
    return chat(user([{"type": "text", "text": SECRET}, {"type": "image_url", "image_url": {"url": url}}]))


REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("n", chat(n=2), "n > 1 is not supported by anthropic"),
    (
        "json_schema",
        chat(response_format={"type": "json_schema", "json_schema": {"name": SECRET}}),
        "response_format json_schema is not supported by anthropic",
    ),
    (
        "response_format_type",
        chat(response_format={"type": SECRET}),
        "response_format must be an object of type",
    ),
    ("functions", chat(functions=[{"name": SECRET}]), "legacy functions are not supported"),
    ("function_call", chat(function_call="auto"), "legacy function_call is not supported"),
    ("audio_out", chat(audio={"voice": "alloy"}), "audio output is not supported"),
    ("modalities", chat(modalities=["text", "audio"]), "only text output is supported"),
    ("no_messages", {"model": "claude"}, "messages must be a non-empty list"),
    ("empty_messages", chat(messages=[]), "messages must be a non-empty list"),
    ("only_system", chat({"role": "system", "content": SECRET}), "must contain a user or assistant message"),
    ("message_not_object", chat(user(SECRET), SECRET), r"messages\[1\] must be an object"),
    ("role", chat({"role": SECRET, "content": SECRET}), r"messages\[0\].role must be"),
    ("legacy_role", chat({"role": "function", "name": "f", "content": SECRET}), "legacy function messages"),
    (
        "system_content",
        chat({"role": "system", "content": 5}, user()),
        "must be a string or a list of text parts",
    ),
    (
        "system_image",
        chat({"role": "system", "content": [{"type": "image_url"}]}, user()),
        "must be a text part",
    ),
    ("user_content", chat(user({"text": SECRET})), r"messages\[0\].content must be a string or a list"),
    ("part_not_object", chat(user([SECRET])), r"content\[0\] must be an object with a type"),
    ("text_not_string", chat(user([{"type": "text", "text": 5}])), r"content\[0\].text must be a string"),
    ("svg", _image("data:image/svg+xml;base64,PHN2Zz4="), "only jpeg, png, gif and webp"),
    ("not_base64", _image("data:image/png," + SECRET), "must be a base64 data URL"),
    ("scheme", _image("ftp://example.com/" + SECRET), "must be an http\\(s\\) URL or a base64 data URL"),
    ("no_url", _image(""), r"image_url.url is required"),
    (
        "audio_in",
        chat(user([{"type": "input_audio", "input_audio": {"data": SECRET}}])),
        "audio input is not",
    ),
    ("unknown_part", chat(user([{"type": SECRET}])), "content part type anthropic does not support"),
    ("file_id", chat(user([{"type": "file", "file": {"file_id": "file-abc"}}])), "file_data, not a file_id"),
    (
        "file_txt",
        chat(user([{"type": "file", "file": {"file_data": "data:text/plain;base64,aGk="}}])),
        "only PDF files",
    ),
    (
        "file_not_object",
        chat(user([{"type": "file", "file": SECRET}])),
        r"content\[0\].file must be an object",
    ),
    (
        "arguments_list",
        _assistant_calls(_call("[1, 2]")),
        r"tool_calls\[0\].function.arguments must be a JSON",
    ),
    ("arguments_broken", _assistant_calls(_call('{"city": "' + SECRET)), "arguments must be a JSON object"),
    ("call_id", _assistant_calls(_call("{}", call_id="call " + SECRET)), r"tool_calls\[0\].id must be"),
    ("call_no_id", _assistant_calls({"type": "function", "function": {"name": "f"}}), r"tool_calls\[0\].id"),
    ("call_name", _assistant_calls(_call("{}", name="get weather")), r"function.name must be 1-64"),
    ("call_kind", _assistant_calls(_call("{}", kind="custom")), "must be a function tool call"),
    ("call_function", _assistant_calls({"id": "c", "type": "function"}), r"function must be an object"),
    ("calls_not_list", chat(user(), {"role": "assistant", "tool_calls": {}}), "tool_calls must be a list"),
    (
        "assistant_function_call",
        chat(user(), {"role": "assistant", "function_call": {"name": "f"}}),
        "legacy function_call",
    ),
    ("assistant_content", chat(user(), {"role": "assistant", "content": 3}), "must be a string or a list"),
    ("tool_no_id", chat(user(), {"role": "tool", "content": SECRET}), r"messages\[1\].tool_call_id must be"),
    (
        "tool_content",
        chat(user(), {"role": "tool", "tool_call_id": "c", "content": 3}),
        "must be a string or a",
    ),
    ("tools_not_list", chat(tools={}), "tools must be a list"),
    (
        "tool_kind",
        chat(tools=[{"type": "custom", "custom": {"name": "x"}}]),
        r"tools\[0\] must be a function",
    ),
    ("tool_function", chat(tools=[{"type": "function"}]), r"tools\[0\].function must be an object"),
    ("tool_name", chat(tools=[{"type": "function", "function": {"name": "a.b"}}]), r"name must be 1-64"),
    ("tool_name_long", chat(tools=[{"type": "function", "function": {"name": "x" * 65}}]), "1-64 characters"),
    (
        "tool_description",
        chat(tools=[{"type": "function", "function": {"name": "x", "description": 1}}]),
        "description must be a string",
    ),
    (
        "tool_parameters",
        chat(tools=[{"type": "function", "function": {"name": "x", "parameters": "{}"}}]),
        "parameters must be a JSON schema object",
    ),
    ("tool_duplicate", chat(tools=[_TOOL, _TOOL]), "tools must have unique names"),
    (
        "choice_undeclared",
        chat(tools=[_TOOL], tool_choice={"type": "function", "function": {"name": SECRET}}),
        "names a function that is not among the tools",
    ),
    ("choice_without_tools", chat(tool_choice="required"), "tool_choice requires tools"),
    (
        "choice_allowed_tools",
        chat(tools=[_TOOL], tool_choice={"type": "allowed_tools", "allowed_tools": {}}),
        "tool_choice must be auto, required, none or a named function",
    ),
    ("choice_string", chat(tools=[_TOOL], tool_choice=SECRET), "tool_choice must be auto, required, none"),
    ("max_tokens_zero", chat(max_tokens=0), "max_tokens must be a positive integer"),
    ("max_tokens_text", chat(max_completion_tokens="10"), "max_completion_tokens must be a positive integer"),
    ("max_tokens_bool", chat(max_tokens=True), "max_tokens must be a positive integer"),
    ("temperature", chat(temperature=SECRET), "temperature must be a number"),
    ("top_p_bool", chat(top_p=True), "top_p must be a number"),
    ("stop", chat(stop=[SECRET, 5]), "stop must be a string or a list of strings"),
    ("user", chat(user=5), "user must be a string"),
    ("model", chat(model=""), "model field is required"),
]


@pytest.mark.parametrize(
    ("payload", "message"), [case[1:] for case in REJECTED], ids=[c[0] for c in REJECTED]
)
def test_rejected_request(payload: dict[str, Any], message: str) -> None:
    target = Target(base_url=TARGET.base_url)  # no canonical model: the request's model is used
    with pytest.raises(TranslationError, match=message) as caught:
        ADAPTER.build_call("chat/completions", payload, target, stream=False)
    assert SECRET not in str(caught.value)
    assert caught.value.status == 400
