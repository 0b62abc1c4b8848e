"""The Gemini / Vertex adapter, bytes and dicts only: URLs and credentials, golden request/response/stream
fixtures written from Google's documented formats (``tests/fixtures/gemini``), every finish reason, usage,
malformed and error events, and error messages that never quote what the client or the provider sent.

Streams are fed whole, one byte at a time and in seeded random splits: chunk boundaries must never change
the output.
"""

from __future__ import annotations

import ast
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from voidllm.errors import BadGatewayError
from voidllm.providers import gemini
from voidllm.providers.base import (
    Adapter,
    StreamTranslationError,
    StreamTranslator,
    Target,
    TranslationError,
    UpstreamStreamError,
    Usage,
)
from voidllm.providers.gemini import GeminiAdapter, GeminiStreamTranslator, build_request, clean_schema
from voidllm.providers.gemini import _response as response_mod

if TYPE_CHECKING:
    from collections.abc import Iterator

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
MARKER = "ZQX-MARKER-7731"
NOW = 1700000000.5
MODEL = "my-gemini"
GEMINI = Target("https://generativelanguage.googleapis.com/", api_key="g-key", model="gemini-2.5-flash")
VERTEX = Target(
    "https://europe-west4-aiplatform.googleapis.com",
    api_key="ya29.token",
    model="gemini-2.5-pro",
    gcp_project="my-proj",
    gcp_location="europe-west4",
)


def adapter(*, vertex: bool = False) -> GeminiAdapter:
    return GeminiAdapter(vertex=vertex, clock=lambda: NOW)


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def chat(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "gemini-2.5-flash", "messages": list(messages), **fields}


def user(content: Any = "hi") -> dict[str, Any]:
    return {"role": "user", "content": content}


def call(call_id: str, name: str, arguments: str = "{}") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def assistant_calls(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": list(calls)}


def tool(call_id: str, content: Any = "ok") -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def fn(name: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


# --- URL, headers, endpoints --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "url"),
    [
        (False, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"),
        (
            True,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        ),
    ],
)
def test_gemini_url_and_key_header(stream: bool, url: str) -> None:
    built = adapter().build_call("chat/completions", chat(user()), GEMINI, stream=stream)
    assert built.url == url
    assert built.headers == [(b"content-type", b"application/json"), (b"x-goog-api-key", b"g-key")]


@pytest.mark.parametrize(
    ("stream", "method"), [(False, "generateContent"), (True, "streamGenerateContent?alt=sse")]
)
def test_vertex_url_and_bearer(stream: bool, method: str) -> None:
    built = adapter(vertex=True).build_call("/chat/completions", chat(user()), VERTEX, stream=stream)
    assert built.url == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/my-proj/locations/europe-west4"
        f"/publishers/google/models/gemini-2.5-pro:{method}"
    )
    assert built.headers == [(b"content-type", b"application/json"), (b"authorization", b"Bearer ya29.token")]


@pytest.mark.parametrize("vertex", [False, True])
def test_no_key_no_credential_header(vertex: bool) -> None:
    target = Target("http://localhost:8080", model="m", gcp_project="p", gcp_location="global")
    built = adapter(vertex=vertex).build_call("chat/completions", chat(user()), target, stream=False)
    assert built.headers == [(b"content-type", b"application/json")]


def test_model_comes_from_target_else_body_without_models_prefix_and_encoded() -> None:
    untargeted = Target("https://g.example")
    built = adapter().build_call(
        "chat/completions", {**chat(user()), "model": "models/gemini-x"}, untargeted, stream=False
    )
    assert built.url == "https://g.example/v1beta/models/gemini-x:generateContent"
    odd = Target("https://g.example", model="a/b?c")
    assert (
        "/models/a%2Fb%3Fc:generateContent"
        in adapter().build_call("chat/completions", chat(user()), odd, stream=False).url
    )
    with pytest.raises(TranslationError, match="model"):
        adapter().build_call("chat/completions", {"messages": [user()]}, untargeted, stream=False)


@pytest.mark.parametrize("path", ["embeddings", "completions", "responses", "audio/speech"])
@pytest.mark.parametrize("vertex", [False, True])
def test_other_endpoints_are_refused_by_name(path: str, vertex: bool) -> None:
    with pytest.raises(TranslationError) as info:
        adapter(vertex=vertex).build_call(path, chat(user()), VERTEX, stream=False)
    assert f"/v1/{path}" in info.value.message
    assert ("vertex" if vertex else "gemini") in info.value.message
    assert info.value.status == 400


def test_vertex_without_project_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="gcp_project"):
        adapter(vertex=True).build_call("chat/completions", chat(user()), GEMINI, stream=False)


def test_body_is_the_translated_request() -> None:
    payload = chat(user("hello"), temperature=0)
    built = adapter().build_call("chat/completions", payload, GEMINI, stream=True)
    assert orjson.loads(built.body) == build_request(payload)
    assert "stream" not in orjson.loads(built.body)


# --- request translation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((FIXTURES / "requests").glob("*.json")), ids=lambda p: p.stem)
def test_golden_request(path: Path) -> None:
    fixture = load(path)
    assert build_request(fixture["openai"]) == fixture["gemini"]


def test_tool_result_is_named_after_the_latest_call_with_that_id() -> None:
    body = build_request(
        chat(
            user(),
            assistant_calls(call("call_g0", "first")),
            tool("call_g0"),
            assistant_calls(call("call_g0", "second")),
            tool("call_g0"),
        )
    )
    names = [
        part["functionResponse"]["name"]
        for c in body["contents"]
        for part in c["parts"]
        if "functionResponse" in part
    ]
    assert names == ["first", "second"]


def test_tool_result_followed_by_user_text_shares_the_user_turn() -> None:
    body = build_request(chat(user("a"), assistant_calls(call("c1", "f")), tool("c1", "done"), user("b")))
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"output": "done"}}},
        {"text": "b"},
    ]


@pytest.mark.parametrize(
    ("content", "response"),
    [
        ('{"a": 1}', {"a": 1}),
        ('{"error": "not found"}', {"error": "not found"}),
        ("plain text", {"output": "plain text"}),
        ("42", {"output": 42}),
        ("", {"output": ""}),
        (None, {"output": ""}),
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], {"output": "ab"}),
    ],
)
def test_tool_result_becomes_a_response_object(content: Any, response: dict[str, Any]) -> None:
    body = build_request(chat(user(), assistant_calls(call("c", "f")), tool("c", content)))
    assert body["contents"][-1]["parts"] == [{"functionResponse": {"name": "f", "response": response}}]


def test_assistant_text_parts_and_refusal_and_empty_content() -> None:
    body = build_request(
        chat(
            user(),
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "a"}, {"type": "refusal", "refusal": "no"}],
            },
            {"role": "assistant", "content": ""},
            user("again"),
        )
    )
    assert body["contents"][1] == {"role": "model", "parts": [{"text": "a"}, {"text": "no"}]}
    assert len(body["contents"]) == 3


@pytest.mark.parametrize(
    ("choice", "config", "declared"),
    [
        ("auto", {"mode": "AUTO"}, ["a", "b"]),
        ("none", {"mode": "NONE"}, ["a", "b"]),
        ("required", {"mode": "ANY"}, ["a", "b"]),
        (
            {"type": "function", "function": {"name": "b"}},
            {"mode": "ANY", "allowedFunctionNames": ["b"]},
            ["a", "b"],
        ),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [fn("a")]}},
            {"mode": "ANY", "allowedFunctionNames": ["a"]},
            ["a", "b"],
        ),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [fn("b")]}},
            {"mode": "AUTO"},
            ["b"],
        ),
        (None, None, ["a", "b"]),
    ],
)
def test_tool_choice(choice: Any, config: dict[str, Any] | None, declared: list[str]) -> None:
    payload = chat(user(), tools=[fn("a"), fn("b")])
    if choice is not None:
        payload["tool_choice"] = choice
    body = build_request(payload)
    assert [d["name"] for d in body["tools"][0]["functionDeclarations"]] == declared
    assert body.get("toolConfig") == (None if config is None else {"functionCallingConfig": config})


def test_tool_choice_without_tools_is_dropped_unless_it_requires_a_call() -> None:
    assert "toolConfig" not in build_request(chat(user(), tool_choice="auto", tools=[]))
    assert "tools" not in build_request(chat(user(), tool_choice="none"))
    with pytest.raises(TranslationError, match="no tools"):
        build_request(chat(user(), tool_choice="required"))


def test_schema_cleaning_follows_structure_not_data() -> None:
    schema = {
        "$schema": "x",
        "$id": "y",
        "type": "object",
        "additionalProperties": False,
        "$defs": {"d": {"type": "object", "additionalProperties": {"type": "string"}}},
        "properties": {
            "additionalProperties": {"type": "string", "$comment": "kept name"},
            "list": {"type": "array", "items": [{"type": "string", "additionalProperties": False}]},
            "choice": {"oneOf": [{"not": {"type": "object", "additionalProperties": True}}]},
        },
        "example": {"additionalProperties": 1, "$schema": 2},
        "enum": [{"$schema": "data"}],
    }
    assert clean_schema(schema) == {
        "type": "object",
        "$defs": {"d": {"type": "object"}},
        "properties": {
            "additionalProperties": {"type": "string"},
            "list": {"type": "array", "items": [{"type": "string"}]},
            "choice": {"oneOf": [{"not": {"type": "object"}}]},
        },
        "example": {"additionalProperties": 1, "$schema": 2},
        "enum": [{"$schema": "data"}],
    }
    assert "additionalProperties" in schema  # the input is not changed


def test_schema_nesting_is_bounded() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(200):
        schema = {"type": "object", "properties": {"x": schema}}
    with pytest.raises(TranslationError, match="nests deeper"):
        build_request(chat(user(), tools=[fn("deep", schema)]))


def test_parameters_with_no_property_are_left_out() -> None:
    tools = [
        fn("a", {"type": "object", "properties": {}, "additionalProperties": False}),
        fn("b", {}),
        fn("c"),
    ]
    body = build_request(chat(user(), tools=tools))
    assert body["tools"][0]["functionDeclarations"] == [{"name": "a"}, {"name": "b"}, {"name": "c"}]
    composite = {"anyOf": [{"type": "object", "properties": {"x": {"type": "string"}}}]}
    assert build_request(chat(user(), tools=[fn("d", composite)]))["tools"][0]["functionDeclarations"][0][
        "parameters"
    ]


@pytest.mark.parametrize(
    ("fields", "config"),
    [
        ({"max_tokens": 10}, {"maxOutputTokens": 10}),
        ({"max_completion_tokens": 20, "max_tokens": 10}, {"maxOutputTokens": 20}),
        ({"max_completion_tokens": None, "max_tokens": 10}, {"maxOutputTokens": 10}),
        ({"top_k": 40}, {"topK": 40}),
        ({"stop": ["a", "b"]}, {"stopSequences": ["a", "b"]}),
        ({"response_format": {"type": "text"}}, None),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            {"responseMimeType": "application/json"},
        ),
        (
            {
                "modalities": ["text"],
                "logprobs": False,
                "reasoning_effort": "low",
                "stream_options": {"include_usage": True},
            },
            None,
        ),
    ],
)
def test_generation_config(fields: dict[str, Any], config: dict[str, Any] | None) -> None:
    assert build_request(chat(user(), **fields)).get("generationConfig") == config


# --- refusals: a 400 that says why and never quotes the request ---------------------------------------------

M = MARKER
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("no messages", {"model": "m"}, "messages"),
    ("empty messages", chat(), "messages"),
    ("message not object", chat(M), "object"),  # type: ignore[arg-type]
    ("unknown role", chat({"role": M, "content": M}), "role"),
    ("only system", chat({"role": "system", "content": M}), "no user"),
    (
        "system image",
        chat({"role": "system", "content": [{"type": "image_url", "image_url": {"url": M}}]}),
        "only text",
    ),
    ("content number", chat({"role": "user", "content": 7}), "string or a list"),
    ("part not object", chat(user([M])), "not an object"),
    ("unknown part", chat(user([{"type": M, M: M}])), "unsupported type"),
    ("text not string", chat(user([{"type": "text", "text": [M]}])), "no text"),
    (
        "url unknown ext",
        chat(user([{"type": "image_url", "image_url": {"url": f"https://x.example/{M}"}}])),
        "extension",
    ),
    (
        "url unknown ext2",
        chat(user([{"type": "image_url", "image_url": {"url": f"https://x.example/{M}.bmpx"}}])),
        "extension",
    ),
    (
        "url bad scheme",
        chat(user([{"type": "image_url", "image_url": {"url": f"ftp://{M}/a.png"}}])),
        "data:, http",
    ),
    (
        "url invalid",
        chat(user([{"type": "image_url", "image_url": {"url": f"http://[{M}/a.png"}}])),
        "not a valid",
    ),
    ("url missing", chat(user([{"type": "image_url", "image_url": {"detail": M}}])), "no url"),
    (
        "data url no base64",
        chat(user([{"type": "image_url", "image_url": {"url": f"data:image/png,{M}"}}])),
        "base64",
    ),
    (
        "data url no type",
        chat(user([{"type": "image_url", "image_url": {"url": f"data:;base64,{M}"}}])),
        "base64",
    ),
    (
        "audio format",
        chat(user([{"type": "input_audio", "input_audio": {"data": M, "format": M}}])),
        "wav or mp3",
    ),
    ("audio no data", chat(user([{"type": "input_audio", "input_audio": {"format": "wav"}}])), "no data"),
    ("file id", chat(user([{"type": "file", "file": {"file_id": M}}])), "file_id"),
    ("file url", chat(user([{"type": "file", "file": {"file_data": f"https://{M}.pdf"}}])), "data: url"),
    ("tool_calls not list", chat(user(), {"role": "assistant", "tool_calls": M}), "list"),
    ("call not function", chat(user(), assistant_calls({"id": M, "type": M})), "function call"),
    ("call no id", chat(user(), assistant_calls({"type": "function", "function": {"name": M}})), "no id"),
    (
        "call no name",
        chat(user(), assistant_calls({"id": M, "function": {"arguments": M}})),
        "no function name",
    ),
    ("args not json", chat(user(), assistant_calls(call("c", "f", M))), "JSON object"),
    ("args array", chat(user(), assistant_calls(call("c", "f", f'["{M}"]'))), "JSON object"),
    ("args not string", chat(user(), assistant_calls(call("c", "f", {M: M}))), "JSON object"),  # type: ignore[arg-type]
    ("tool no id", chat(user(), {"role": "tool", "content": M}), "no tool_call_id"),
    ("tool unknown id", chat(user(), assistant_calls(call("c", "f")), tool(M, M)), "no earlier assistant"),
    (
        "tool result before call",
        chat(user(), tool(M, M), assistant_calls(call(M, "f"))),
        "no earlier assistant",
    ),
    (
        "tool image",
        chat(user(), assistant_calls(call("c", "f")), tool("c", [{"type": "image_url", "image_url": M}])),
        "only text",
    ),
    ("tools not list", chat(user(), tools=M), "tools must be a list"),
    ("web tool", chat(user(), tools=[{"type": "web_search", "name": M}]), "only function tools"),
    ("tool no name", chat(user(), tools=[{"type": "function", "function": {"description": M}}]), "no name"),
    (
        "tool params not object",
        chat(user(), tools=[{"type": "function", "function": {"name": "f", "parameters": M}}]),
        "JSON schema",
    ),
    (
        "choice undeclared",
        chat(user(), tools=[fn("f")], tool_choice={"type": "function", "function": {"name": M}}),
        "not among",
    ),
    ("choice unknown", chat(user(), tools=[fn("f")], tool_choice=M), "tool_choice must be"),
    (
        "allowed bad mode",
        chat(user(), tools=[fn("f")], tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": M}}),
        "mode",
    ),
    (
        "allowed not function",
        chat(
            user(),
            tools=[fn("f")],
            tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": ["auto", M]}},
        ),
        "only functions",
    ),
    (
        "allowed undeclared",
        chat(
            user(),
            tools=[fn("f")],
            tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [fn(M)]}},
        ),
        "not among",
    ),
    (
        "allowed empty",
        chat(
            user(), tools=[fn("f")], tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "auto"}}
        ),
        "no function",
    ),
    ("temperature", chat(user(), temperature=M), "temperature must be a number"),
    ("temperature bool", chat(user(), temperature=True), "temperature must be a number"),
    ("max tokens float", chat(user(), max_tokens=1.5), "max_tokens must be an integer"),
    ("n string", chat(user(), n=M), "n must be an integer"),
    ("stop ints", chat(user(), stop=[M, 1]), "stop must be"),
    ("format unknown", chat(user(), response_format={"type": M}), "response_format type"),
    ("format not object", chat(user(), response_format=M), "response_format must be"),
    (
        "format schema not object",
        chat(user(), response_format={"type": "json_schema", "json_schema": {"schema": M}}),
        "schema must be",
    ),
    ("functions", chat(user(), functions=[{"name": M}]), "legacy"),
    ("function_call", chat(user(), function_call={"name": M}), "legacy"),
    ("logprobs", chat(user(), logprobs=True), "logprobs"),
    ("top_logprobs", chat(user(), top_logprobs=3), "logprobs"),
    ("logit_bias", chat(user(), logit_bias={M: 1}), "logit_bias"),
    ("audio out", chat(user(), modalities=["text", "audio"], audio={"voice": M}), "audio"),
    ("modalities", chat(user(), modalities=[M]), "only text output"),
    ("modalities odd", chat(user(), modalities=[{M: M}]), "only text output"),
    ("web search", chat(user(), web_search_options={M: M}), "web_search_options"),
]


@pytest.mark.parametrize(
    ("payload", "reason"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED]
)
def test_refused_with_a_reason_that_quotes_nothing(payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(TranslationError) as info:
        adapter().build_call("chat/completions", payload, GEMINI, stream=False)
    assert reason in info.value.message
    assert MARKER not in str(info.value)
    assert info.value.status == 400
    assert info.value.__cause__ is None or MARKER not in str(info.value.__cause__)


# --- non-streamed responses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((FIXTURES / "responses").glob("*.json")), ids=lambda p: p.stem)
def test_golden_response(path: Path) -> None:
    fixture = load(path)
    body, usage = adapter().translate_response(orjson.dumps(fixture["gemini"]), model=MODEL)
    assert orjson.loads(body) == fixture["openai"]
    assert usage == (Usage(*fixture["usage"]) if fixture["usage"] else None)


FINISH = [
    ("STOP", False, "stop"),
    ("STOP", True, "tool_calls"),
    (None, True, "tool_calls"),
    (None, False, "stop"),
    ("MAX_TOKENS", False, "length"),
    ("MAX_TOKENS", True, "length"),
    ("SAFETY", False, "content_filter"),
    ("RECITATION", False, "content_filter"),
    ("BLOCKLIST", False, "content_filter"),
    ("PROHIBITED_CONTENT", False, "content_filter"),
    ("SPII", False, "content_filter"),
    ("IMAGE_SAFETY", False, "content_filter"),
    ("OTHER", False, "stop"),
    ("LANGUAGE", False, "stop"),
    ("MALFORMED_FUNCTION_CALL", False, "stop"),
    ("FINISH_REASON_UNSPECIFIED", False, "stop"),
    ("UNEXPECTED_TOOL_CALL", False, "stop"),
]


@pytest.mark.parametrize(("reason", "calls", "expected"), FINISH)
def test_every_finish_reason(reason: str | None, calls: bool, expected: str) -> None:
    parts: list[dict[str, Any]] = [{"text": "x"}]
    if calls:
        parts.append({"functionCall": {"name": "f", "args": {}}})
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if reason is not None:
        candidate["finishReason"] = reason
    body, _ = adapter().translate_response(orjson.dumps({"candidates": [candidate]}), model=MODEL)
    assert orjson.loads(body)["choices"][0]["finish_reason"] == expected


@pytest.mark.parametrize(("reason", "calls", "expected"), [case for case in FINISH if case[0] is not None])
def test_every_finish_reason_streamed(reason: str, calls: bool, expected: str) -> None:
    """The function call and the finish reason arrive in different events."""
    parts: list[dict[str, Any]] = [{"text": "x"}]
    if calls:
        parts.append({"functionCall": {"name": "f", "args": {}}})
    translator = adapter().stream_translator(model=MODEL)
    translator.feed(sse({"candidates": [{"content": {"parts": parts}, "index": 0}]}))
    out = translator.feed(sse({"candidates": [{"finishReason": reason, "index": 0}]}))
    assert events(out) == [
        {
            "id": "chatcmpl-1700000000500000000",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": MODEL,
            "choices": [{"index": 0, "delta": {}, "finish_reason": expected}],
        }
    ]
    assert events(translator.finish()) == ["[DONE]"]


def test_response_without_usage_metadata_has_no_usage() -> None:
    body, usage = adapter().translate_response(
        b'{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}', model=MODEL
    )
    assert usage is None
    assert "usage" not in orjson.loads(body)
    assert orjson.loads(body)["id"] == "chatcmpl-1700000000500000000"


@pytest.mark.parametrize(
    "metadata",
    [
        {"trafficType": "ON_DEMAND"},
        {"promptTokenCount": "3", "totalTokenCount": 3},
        {"promptTokenCount": -1},
        {"promptTokenCount": 1.0},
        {"promptTokenCount": True},
        [1, 2],
        None,
    ],
)
def test_unusable_usage_metadata_is_ignored(metadata: Any) -> None:
    payload = {
        "candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"}],
        "usageMetadata": metadata,
    }
    assert adapter().translate_response(orjson.dumps(payload), model=MODEL)[1] is None


def test_usage_total_is_never_below_its_parts() -> None:
    usage = response_mod.usage_of({"promptTokenCount": 5, "candidatesTokenCount": 3, "thoughtsTokenCount": 2})
    assert usage is not None
    assert usage[0] == Usage(5, 5, 10)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"},
            ("invalid_request_error", "invalid_argument"),
        ),
        (
            {"code": 403, "message": "no", "status": "PERMISSION_DENIED"},
            ("permission_error", "permission_denied"),
        ),
        ({"code": 503, "message": "busy", "status": "UNAVAILABLE"}, ("api_error", "unavailable")),
        ({"code": "x", "status": "not a status!"}, ("api_error", None)),
        ("just a string", ("api_error", None)),
    ],
)
def test_error_bodies_become_openai_errors(error: Any, expected: tuple[str, str | None]) -> None:
    body, usage = adapter().translate_response(orjson.dumps({"error": error}), model=MODEL)
    translated = orjson.loads(body)["error"]
    assert (translated["type"], translated["code"]) == expected
    assert isinstance(translated["message"], str)
    assert usage is None


@pytest.mark.parametrize(
    "body",
    [
        f"not json {MARKER}".encode(),
        f'["{MARKER}"]'.encode(),
        f'{{"candidates": "{MARKER}"}}'.encode(),
        f'{{"candidates": [{{"content": {{"parts": [{{"text": ["{MARKER}"]}}]}}}}]}}'.encode(),
        f'{{"candidates": [{{"content": {{"parts": "{MARKER}"}}}}]}}'.encode(),
        orjson.dumps(
            {"candidates": [{"content": {"parts": [{"functionCall": {"name": MARKER, "args": MARKER}}]}}]}
        ),
        orjson.dumps(
            {"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}, "index": MARKER}]}
        ),
        b'{"candidates": [{"index": -1}]}',
    ],
)
def test_malformed_response_is_a_bad_gateway_that_quotes_nothing(body: bytes) -> None:
    with pytest.raises(BadGatewayError) as info:
        adapter().translate_response(body, model=MODEL)
    assert info.value.status == 502
    assert MARKER not in str(info.value)
    assert MARKER not in str(info.value.__cause__)


# --- streams ------------------------------------------------------------------------------------------------


def sse(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\r\n\r\n"


def events(out: bytes) -> list[Any]:
    """The data of each event in translator output, parsed; every event must be one ``data:`` line."""
    assert out == b"" or out.endswith(b"\n\n")
    found = []
    for event in out.split(b"\n\n")[:-1]:
        assert event.startswith(b"data: ")
        assert b"\n" not in event
        data = event[6:]
        found.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return found


def splits(data: bytes, how: str) -> Iterator[bytes]:
    if how == "whole":
        yield data
    elif how == "bytes":
        yield from (data[i : i + 1] for i in range(len(data)))
    else:
        rng = random.Random(f"{how}:{len(data)}")
        pos = 0
        while pos < len(data):
            size = rng.randint(1, 40)
            yield data[pos : pos + size]
            pos += size


def feed_all(translator: GeminiStreamTranslator, pieces: list[bytes]) -> bytes:
    return b"".join([translator.feed(piece) for piece in pieces])


def run(translator: GeminiStreamTranslator, data: bytes, how: str = "whole") -> bytes:
    return b"".join([translator.feed(piece) for piece in splits(data, how)]) + translator.finish()


STREAMS = sorted((FIXTURES / "streams").glob("*.sse"), key=lambda p: p.stem)


@pytest.mark.parametrize("how", ["whole", "bytes", "random-1", "random-2", "random-3"])
@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.stem)
def test_golden_stream(path: Path, how: str) -> None:
    expected = load(path.with_suffix(".expected.json"))
    translator = adapter().stream_translator(model=MODEL, include_usage=True)
    assert events(run(translator, path.read_bytes(), how)) == expected["events"]
    assert translator.done is expected["done"]
    assert translator.usage == Usage(*expected["usage"])


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.stem)
def test_golden_stream_without_usage_chunk(path: Path) -> None:
    expected = [
        e for e in load(path.with_suffix(".expected.json"))["events"] if e == "[DONE]" or e["choices"]
    ]
    translator = adapter(vertex=True).stream_translator(model=MODEL)
    assert events(run(translator, path.read_bytes())) == expected


def test_each_upstream_event_is_translated_at_once() -> None:
    translator = adapter().stream_translator(model=MODEL)
    text = (FIXTURES / "streams" / "tool_calls.sse").read_bytes()
    first, second = text.split(b"\r\n\r\n")[:2]
    assert translator.feed(first + b"\r\n") == b""  # the blank line has not arrived yet
    assert len(events(translator.feed(b"\r\n"))) == 2  # role, text
    assert len(events(translator.feed(second + b"\r\n\r\n"))) == 3  # two tool calls, finish
    assert translator.done is False  # [DONE] only comes at EOF
    assert events(translator.finish()) == ["[DONE]"]
    assert translator.done is True


def test_stream_without_finish_reason_is_incomplete_but_keeps_usage() -> None:
    translator = adapter().stream_translator(model=MODEL, include_usage=True)
    out = translator.feed(
        sse(
            {
                "candidates": [{"content": {"parts": [{"text": "a"}]}}],
                "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4},
            }
        )
    )
    assert [e["choices"][0]["delta"] for e in events(out)] == [
        {"role": "assistant", "content": ""},
        {"content": "a"},
    ]
    assert translator.finish() == b""
    assert translator.done is False
    assert translator.usage == Usage(4, 0, 4)


def test_usage_last_object_with_counters_wins() -> None:
    translator = adapter().stream_translator(model=MODEL)
    translator.feed(
        sse(
            {
                "candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1, "totalTokenCount": 3},
            }
        )
    )
    translator.feed(sse({"usageMetadata": {"trafficType": "ON_DEMAND"}}))
    assert translator.usage == Usage(2, 1, 3)
    assert (
        translator.feed(
            sse({"usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 5, "totalTokenCount": 7}})
        )
        == b""
    )
    assert translator.usage == Usage(2, 5, 7)
    assert events(translator.finish()) == ["[DONE]"]


def test_unterminated_last_event_is_translated_when_complete_json() -> None:
    translator = adapter().stream_translator(model=MODEL)
    data = sse({"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"}]}).rstrip(
        b"\r\n"
    )
    assert translator.feed(data) == b""
    assert [
        e if e == "[DONE]" else e["choices"][0]["finish_reason"] for e in events(translator.finish())
    ] == [
        None,
        None,
        "stop",
        "[DONE]",
    ]
    assert translator.done


def test_truncated_last_event_is_an_incomplete_stream() -> None:
    translator = adapter().stream_translator(model=MODEL)
    translator.feed(sse({"candidates": [{"content": {"parts": [{"text": "a"}]}}]}))
    translator.feed(b'data: {"candidates": [{"content": {"parts": [{"te')
    assert translator.finish() == b""
    assert translator.done is False


def test_two_candidates_must_both_finish() -> None:
    translator = adapter().stream_translator(model=MODEL)
    out = translator.feed(
        sse(
            {
                "candidates": [
                    {"content": {"parts": [{"text": "a"}]}, "index": 0, "finishReason": "STOP"},
                    {"content": {"parts": [{"functionCall": {"name": "f"}}]}, "index": 1},
                ]
            }
        )
    )
    assert [(e["choices"][0]["index"], list(e["choices"][0]["delta"])) for e in events(out)] == [
        (0, ["role", "content"]),
        (0, ["content"]),
        (0, []),
        (1, ["role", "content"]),
        (1, ["tool_calls"]),
    ]
    unfinished = adapter().stream_translator(model=MODEL)
    unfinished.feed(
        sse({"candidates": [{"index": 0, "finishReason": "STOP"}, {"index": 1, "content": {"parts": []}}]})
    )
    assert unfinished.finish() == b""
    assert not unfinished.done
    out = translator.feed(sse({"candidates": [{"index": 1, "finishReason": "STOP"}]}))
    assert events(out)[0]["choices"][0] == {"index": 1, "delta": {}, "finish_reason": "tool_calls"}
    assert events(translator.finish()) == ["[DONE]"]


def test_stream_tool_call_ids_count_across_events_and_indexes_per_candidate() -> None:
    translator = adapter().stream_translator(model=MODEL)
    calls = []
    for name in ("a", "b", "c"):
        out = translator.feed(
            sse(
                {
                    "candidates": [
                        {"content": {"parts": [{"functionCall": {"name": name, "args": {"n": name}}}]}}
                    ]
                }
            )
        )
        calls += [
            e["choices"][0]["delta"]["tool_calls"][0]
            for e in events(out)
            if "tool_calls" in e["choices"][0]["delta"]
        ]
    assert [(c["index"], c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        (0, "call_g0", "a", '{"n":"a"}'),
        (1, "call_g1", "b", '{"n":"b"}'),
        (2, "call_g2", "c", '{"n":"c"}'),
    ]


def test_stream_id_falls_back_to_the_clock() -> None:
    translator = adapter().stream_translator(model=MODEL)
    out = translator.feed(
        sse({"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"}]})
    )
    assert {e["id"] for e in events(out)} == {"chatcmpl-1700000000500000000"}
    assert {e["created"] for e in events(out)} == {1700000000}


MALFORMED = [
    ("not json", f"data: {{{MARKER}\r\n\r\n".encode()),
    ("empty data", b"data: \r\n\r\n"),
    ("array", f'data: ["{MARKER}"]\r\n\r\n'.encode()),
    ("string", f'data: "{MARKER}"\r\n\r\n'.encode()),
    (
        "error object",
        sse({"error": {"code": 500, "message": f"Internal error {MARKER}", "status": "INTERNAL"}}),
    ),
    ("error odd", sse({"error": {"code": MARKER, "status": f"{MARKER} !"}})),
    ("candidates not list", sse({"candidates": {MARKER: 1}})),
    ("candidate not object", sse({"candidates": [MARKER]})),
    ("parts not list", sse({"candidates": [{"content": {"parts": MARKER}}]})),
    ("content not object", sse({"candidates": [{"content": MARKER}]})),
    ("text not string", sse({"candidates": [{"content": {"parts": [{"text": {MARKER: 1}}]}}]})),
    (
        "call no name",
        sse({"candidates": [{"content": {"parts": [{"functionCall": {"args": {MARKER: 1}}}]}}]}),
    ),
    (
        "call args list",
        sse({"candidates": [{"content": {"parts": [{"functionCall": {"name": MARKER, "args": [MARKER]}}]}}]}),
    ),
    ("index invalid", sse({"candidates": [{"index": MARKER}]})),
]


@pytest.mark.parametrize("how", ["whole", "bytes"])
@pytest.mark.parametrize("bad", [case[1] for case in MALFORMED], ids=[case[0] for case in MALFORMED])
def test_malformed_event_aborts_with_a_content_free_error(bad: bytes, how: str) -> None:
    translator = adapter().stream_translator(model=MODEL, include_usage=True)
    good = sse(
        {
            "candidates": [{"content": {"parts": [{"text": "ok"}]}}],
            "usageMetadata": {"promptTokenCount": 1, "totalTokenCount": 1},
        }
    )
    assert len(events(translator.feed(good))) == 2
    pieces = list(splits(bad + sse({"candidates": [{"finishReason": "STOP"}]}), how))
    with pytest.raises(StreamTranslationError) as info:
        feed_all(translator, pieces)
    assert MARKER not in str(info.value)
    assert translator.feed(sse({"candidates": [{"finishReason": "STOP"}]})) == b""
    assert translator.finish() == b""
    assert translator.done is False
    assert translator.usage == Usage(1, 0, 1)


def test_error_event_keeps_its_kind_and_status_only() -> None:
    translator = adapter().stream_translator(model=MODEL)
    with pytest.raises(UpstreamStreamError) as info:
        translator.feed(
            sse({"error": {"code": 429, "message": f"quota {MARKER}", "status": "RESOURCE_EXHAUSTED"}})
        )
    assert (info.value.kind, info.value.status) == ("rate_limit_error", 429)
    assert str(info.value) == "the provider reported rate_limit_error (429) in its stream"


def test_error_in_unterminated_last_event_aborts() -> None:
    translator = adapter().stream_translator(model=MODEL)
    translator.feed(b'data: {"error": {"code": 500, "status": "INTERNAL"}}')
    with pytest.raises(StreamTranslationError):
        translator.finish()
    assert translator.done is False


def test_oversized_event_aborts() -> None:
    translator = adapter().stream_translator(model=MODEL)
    with pytest.raises(StreamTranslationError, match="longer than"):
        feed_all(translator, [b"data: " + b"x" * (1024 * 1024)] * 5)


# --- module hygiene -----------------------------------------------------------------------------------------


def test_sans_io_no_io_or_async_imports() -> None:
    package = Path(gemini.__file__).parent
    sources = [*package.glob("*.py"), package.parent / "passthrough.py", package.parent / "azure.py"]
    forbidden = {"trio", "httpx", "asyncio", "anyio", "socket", "logging", "h11"}
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not {name.split(".")[0] for name in names} & forbidden, source.name


def test_exports() -> None:
    public = {name for name in vars(gemini) if not name.startswith("_")} - {"annotations"}
    assert set(gemini.__all__) <= public
    assert {"GeminiAdapter", "GeminiStreamTranslator", "build_request", "clean_schema"} <= set(gemini.__all__)


def test_conforms_to_the_adapter_protocol() -> None:
    for vertex in (False, True):
        conforming: Adapter = GeminiAdapter(vertex=vertex)
        translator: StreamTranslator = conforming.stream_translator(model=MODEL)
        assert (translator.usage, translator.done) == (None, False)
