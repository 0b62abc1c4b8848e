"""Ingress translation for ``POST /v1/messages`` (Anthropic client, OpenAI-compatible upstream): requests
(golden bodies in ``fixtures/anthropic/ingress_requests.json`` and every rejection), responses, errors in
Anthropic's shape, and OpenAI chunk streams (``fixtures/anthropic/openai_stream_*.sse``) translated into
Anthropic events whatever the chunk boundaries, one upstream chunk at a time.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from voidllm.errors import BadGatewayError
from voidllm.providers.anthropic import (
    OpenAIToMessagesStream,
    anthropic_error,
    anthropic_stream_error,
    error_type,
    messages_to_openai,
    openai_error_to_anthropic,
    openai_to_messages_response,
)
from voidllm.providers.base import StreamTranslationError, TranslationError, Usage

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
GOLDEN = json.loads((FIXTURES / "ingress_requests.json").read_text())
SECRET = "SECRET-MARKER-7f3a"


# --- requests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", GOLDEN, ids=[case["name"] for case in GOLDEN])
def test_golden_request(case: dict[str, Any]) -> None:
    assert messages_to_openai(case["anthropic"]) == case["openai"]


def request(*messages: Any, **fields: Any) -> dict[str, Any]:
    body = {
        "model": "gpt-4o",
        "max_tokens": 10,
        "messages": list(messages) or [{"role": "user", "content": SECRET}],
    }
    return {**body, **fields}


def user(*blocks: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


_TOOL = {"name": "f", "input_schema": {"type": "object"}}

REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("model", request(model=None), "model field is required"),
    (
        "max_tokens_missing",
        {"model": "m", "messages": [{"role": "user", "content": "x"}]},
        "max_tokens is required",
    ),
    ("max_tokens_zero", request(max_tokens=0), "max_tokens is required and must be a positive integer"),
    ("max_tokens_bool", request(max_tokens=True), "max_tokens is required"),
    ("messages", request(messages=[]), "messages must be a non-empty list"),
    ("message_object", request(messages=[SECRET]), r"messages\[0\] must be an object"),
    ("role", request({"role": "system", "content": SECRET}), r"messages\[0\].role must be user or assistant"),
    (
        "content",
        request({"role": "user", "content": {"x": SECRET}}),
        "must be a string or a list of content blocks",
    ),
    ("block_type", request(user({"text": SECRET})), r"content\[0\] must be an object with a type"),
    (
        "block_unknown",
        request(user({"type": "search_result", "source": SECRET})),
        "block type OpenAI-compatible",
    ),
    (
        "assistant_block",
        request({"role": "assistant", "content": [{"type": "server_tool_use", "id": "s"}]}),
        r"messages\[0\].content\[0\] has a content block type",
    ),
    ("text_not_string", request(user({"type": "text", "text": 4})), "must be a text block"),
    (
        "image_file_source",
        request(user({"type": "image", "source": {"type": "file", "file_id": "file_1"}})),
        "must be a base64 or url image source",
    ),
    (
        "image_no_data",
        request(user({"type": "image", "source": {"type": "base64", "media_type": "image/png"}})),
        "must be a base64 or url image source",
    ),
    (
        "document_text",
        request(
            user({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": SECRET}})
        ),
        "only base64 PDF documents",
    ),
    (
        "document_url",
        request(user({"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}})),
        "only base64 PDF documents",
    ),
    (
        "document_empty",
        request(user({"type": "document", "source": {"type": "base64", "media_type": "application/pdf"}})),
        "source.data must be a non-empty string",
    ),
    (
        "tool_result_image",
        request(
            user(
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": [{"type": "image", "source": {"type": "url", "url": "https://x/" + SECRET}}],
                }
            )
        ),
        "images in tool results",
    ),
    ("tool_result_id", request(user({"type": "tool_result", "content": SECRET})), "tool_use_id is required"),
    (
        "tool_use_id",
        request({"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]}),
        "needs an id and a name",
    ),
    (
        "tool_use_input",
        request(
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": SECRET}]}
        ),
        r"input must be an object",
    ),
    (
        "server_tool",
        request(tools=[{"type": "web_search_20250305", "name": "web_search"}]),
        "server tools are not",
    ),
    (
        "tool_schema",
        request(tools=[{"name": "f", "description": SECRET}]),
        r"tools\[0\].input_schema must be",
    ),
    ("tool_name", request(tools=[{"input_schema": {}}]), r"tools\[0\].name is required"),
    ("tools_not_list", request(tools={}), "tools must be a list"),
    ("choice_type", request(tools=[_TOOL], tool_choice={"type": SECRET}), "tool_choice.type must be"),
    ("choice_string", request(tools=[_TOOL], tool_choice="auto"), "tool_choice.type must be"),
    ("choice_name", request(tools=[_TOOL], tool_choice={"type": "tool"}), "tool_choice.name is required"),
    ("choice_without_tools", request(tool_choice={"type": "any"}), "tool_choice requires tools"),
    ("mcp_servers", request(mcp_servers=[{"type": "url", "url": "https://x", "name": "n"}]), "mcp_servers"),
    ("stop_sequences", request(stop_sequences=SECRET), "stop_sequences must be a list of strings"),
    ("temperature", request(temperature=SECRET), "temperature must be a number"),
    ("system", request(system={"text": SECRET}), "system must be a string or a list of text blocks"),
    (
        "system_block",
        request(system=[{"type": "image", "text": SECRET}]),
        r"system\[0\] must be a text block",
    ),
]


@pytest.mark.parametrize(
    ("payload", "message"), [case[1:] for case in REJECTED], ids=[c[0] for c in REJECTED]
)
def test_rejected_request(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(TranslationError, match=message) as caught:
        messages_to_openai(payload)
    assert SECRET not in str(caught.value)


# --- responses -----------------------------------------------------------------------------------------


def completion(message: dict[str, Any], finish: str | None = "stop", **extra: Any) -> bytes:
    body = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 10,
            "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
    }
    return orjson.dumps({**body, **extra})


def test_text_completion() -> None:  # OpenAI's documented example answer
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "Hello! How can I assist you today?",
        "refusal": None,
        "annotations": [],
    }
    body, usage = openai_to_messages_response(completion(message), model="my-model")
    assert orjson.loads(body) == {
        "id": "msg_chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "type": "message",
        "role": "assistant",
        "model": "my-model",
        "content": [{"type": "text", "text": "Hello! How can I assist you today?"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 19,
            "output_tokens": 10,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    assert usage == Usage(19, 10, 29)


def test_tool_call_completion_with_cached_tokens() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_12345xyz",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location":"Paris, France"}'},
            },
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        ],
    }
    usage_in = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920},
    }
    body, usage = openai_to_messages_response(completion(message, "tool_calls", usage=usage_in), model="m")
    decoded = orjson.loads(body)
    assert decoded["content"] == [
        {
            "type": "tool_use",
            "id": "call_12345xyz",
            "name": "get_weather",
            "input": {"location": "Paris, France"},
        },
        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
    ]
    assert decoded["stop_reason"] == "tool_use"
    assert decoded["usage"] == {
        "input_tokens": 86,
        "output_tokens": 300,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1920,
    }
    assert usage == Usage(2006, 300, 2306)


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
        ("something_new", "end_turn"),
    ],
)
def test_finish_reasons(finish: str | None, stop: str) -> None:
    body, _ = openai_to_messages_response(
        completion({"role": "assistant", "content": "x"}, finish), model="m"
    )
    assert orjson.loads(body)["stop_reason"] == stop


def test_refusal_parts_and_missing_usage() -> None:
    refusal = completion(
        {"role": "assistant", "content": None, "refusal": "I can't help."}, "stop", usage=None
    )
    body, usage = openai_to_messages_response(refusal, model="m")
    assert orjson.loads(body)["content"] == [{"type": "text", "text": "I can't help."}]
    assert usage is None
    assert orjson.loads(body)["usage"] == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    parts = completion(
        {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    )
    assert orjson.loads(openai_to_messages_response(parts, model="m")[0])["content"] == [
        {"type": "text", "text": "ab"}
    ]
    empty = completion({"role": "assistant", "content": ""})
    assert orjson.loads(openai_to_messages_response(empty, model="m")[0])["content"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>" + SECRET.encode(), "not valid JSON"),
        (orjson.dumps({"error": {"message": SECRET}}), "not a chat completion"),
        (orjson.dumps({"choices": []}), "not a chat completion"),
        (orjson.dumps({"choices": [{"index": 0}]}), "choice has no message"),
        (
            completion({"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}),
            "has no function",
        ),
        (
            completion(
                {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}
            ),
            "lacks its id or name",
        ),
        (
            completion(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"x": "' + SECRET},
                        }
                    ],
                }
            ),
            "arguments are not a JSON object",
        ),
        (
            completion(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
                    ],
                }
            ),
            "arguments are not a JSON object",
        ),
    ],
)
def test_unreadable_completions_are_a_bad_gateway(body: bytes, message: str) -> None:
    with pytest.raises(BadGatewayError, match=message) as caught:
        openai_to_messages_response(body, model="m")
    assert caught.value.code == "upstream_invalid_response"
    assert SECRET not in str(caught.value)


# --- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (405, "invalid_request_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_types(status: int, kind: str) -> None:
    assert error_type(status) == kind
    assert orjson.loads(anthropic_error(status, "went wrong")) == {
        "type": "error",
        "error": {"type": kind, "message": "went wrong"},
    }


_RATE_LIMITED = b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_RATE_LIMITED, "Rate limit reached"),
        (b'{"error":"model not found"}', "model not found"),
        (b'{"object":"error","message":"vLLM says no","type":"BadRequestError","code":400}', "vLLM says no"),
        (b'{"error":{"code":5}}', "the upstream reported an error"),
        (b"<html>502 Bad Gateway</html>", "the upstream reported an error"),
        (b"[]", "the upstream reported an error"),
    ],
)
def test_upstream_errors_in_anthropic_shape(body: bytes, message: str) -> None:
    assert orjson.loads(openai_error_to_anthropic(429, body)) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": message},
    }


def test_stream_error_event() -> None:
    assert anthropic_stream_error() == (
        b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"stream aborted"}}\n\n'
    )
    assert b'"overloaded_error"' in anthropic_stream_error(529, "overloaded")


# --- streams -------------------------------------------------------------------------------------------


def stream(name: str) -> bytes:
    return (FIXTURES / f"{name}.sse").read_bytes()


def parse(out: bytes) -> list[dict[str, Any]]:
    """Anthropic events: each an ``event:`` line naming the data's type, a ``data:`` line, a blank line."""
    assert out.endswith(b"\n\n")
    parsed = []
    for event in out[:-2].split(b"\n\n"):
        name_line, data_line = event.split(b"\n")
        data = orjson.loads(data_line.removeprefix(b"data: "))
        assert name_line == b"event: " + data["type"].encode()
        parsed.append(data)
    return parsed


def start(message_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": "claude-via-openai",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    return {"type": "message_start", "message": message}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def text_delta(index: int, text: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}


def json_delta(index: int, fragment: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "input_json_delta", "partial_json": fragment},
    }


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def end(stop_reason: str, usage: dict[str, int]) -> list[dict[str, Any]]:
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": usage,
    }
    return [delta, {"type": "message_stop"}]


TEXT_EVENTS = [
    start("msg_chatcmpl-123"),
    block_start(0, {"type": "text", "text": ""}),
    text_delta(0, "Hello"),
    text_delta(0, " there"),
    block_stop(0),
    *end(
        "end_turn",
        {
            "input_tokens": 5,
            "output_tokens": 2,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 4,
        },
    ),
]
TOOL_EVENTS = [
    start("msg_chatcmpl-9tools"),
    block_start(0, {"type": "text", "text": ""}),
    text_delta(0, "Let me check."),
    block_stop(0),
    block_start(
        1, {"type": "tool_use", "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "name": "get_weather", "input": {}}
    ),
    *(json_delta(1, fragment) for fragment in ['{"', "location", '":"', "Paris, France", '"}']),
    block_stop(1),
    block_start(2, {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}),
    json_delta(2, "{}"),
    block_stop(2),
    *end(
        "tool_use",
        {
            "input_tokens": 82,
            "output_tokens": 17,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    ),
]
STREAMS = [
    ("openai_stream_text", TEXT_EVENTS, Usage(9, 2, 11)),
    ("openai_stream_tools", TOOL_EVENTS, Usage(82, 17, 99)),
]


FINISHED = {"index": 0, "delta": {}, "finish_reason": "stop"}


def data(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def delta(content: dict[str, Any]) -> dict[str, Any]:
    """A chunk of choice 0 with ``content`` as its delta."""
    return {"id": "c", "choices": [{"index": 0, "delta": content}]}


def feed_bytewise(machine: OpenAIToMessagesStream, raw: bytes) -> None:
    for i in range(len(raw)):
        machine.feed(raw[i : i + 1])


def translate(pieces: list[bytes]) -> bytes:
    machine = OpenAIToMessagesStream(model="claude-via-openai")
    out = b"".join(machine.feed(piece) for piece in pieces) + machine.finish()
    assert machine.done
    return out


@pytest.mark.parametrize(("name", "expected", "usage"), STREAMS, ids=[s[0] for s in STREAMS])
def test_openai_streams(name: str, expected: list[dict[str, Any]], usage: Usage) -> None:
    machine = OpenAIToMessagesStream(model="claude-via-openai")
    assert parse(machine.feed(stream(name))) == expected
    assert machine.done
    assert machine.usage == usage
    assert machine.feed(b"data: [DONE]\n\n") == b""  # a repeated terminal is harmless


@pytest.mark.parametrize("name", [s[0] for s in STREAMS])
def test_chunk_boundaries_never_change_the_output(name: str) -> None:
    raw = stream(name)
    whole = translate([raw])
    assert translate([raw[i : i + 1] for i in range(len(raw))]) == whole
    assert translate([raw.replace(b"\n", b"\r\n")]) == whole
    rng = random.Random(name)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(raw)), 10))
        assert translate([raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]) == whole


def test_each_upstream_chunk_is_translated_at_once() -> None:
    machine = OpenAIToMessagesStream(model="claude-via-openai")
    per_chunk = [
        parse(out) if (out := machine.feed(event + b"\n\n")) else []
        for event in stream("openai_stream_tools").split(b"\n\n")
        if event
    ]
    assert [[event["type"] for event in events] for events in per_chunk] == [
        ["message_start", "content_block_start", "content_block_delta"],
        ["content_block_stop", "content_block_start"],  # empty arguments: no delta
        ["content_block_delta"],
        ["content_block_delta"],
        ["content_block_delta"],
        ["content_block_delta"],
        ["content_block_delta"],
        ["content_block_stop", "content_block_start", "content_block_delta"],
        ["content_block_stop"],
        [],  # the usage chunk: remembered for message_delta
        ["message_delta", "message_stop"],
    ]


def test_stream_without_usage_and_with_usage_on_the_finish_chunk() -> None:
    head = b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
    no_usage = translate(
        [
            head,
            b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\n',
            b"data: [DONE]\n\n",
        ]
    )
    assert parse(no_usage)[-2]["usage"] == {"output_tokens": 0}
    assert parse(no_usage)[-2]["delta"]["stop_reason"] == "max_tokens"
    inline = data({"choices": [FINISHED], "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
    machine = OpenAIToMessagesStream(model="m")
    events = parse(machine.feed(head + inline + b"data: [DONE]\n\n"))
    assert events[-2]["usage"]["input_tokens"] == 3
    assert machine.usage == Usage(3, 1, 4)


def test_refusal_other_choices_and_reasoning_are_handled() -> None:
    raw = (
        b'data: {"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"hm"}}]}\n\n'
        b'data: {"id":"c1","choices":[{"index":1,"delta":{"content":"other choice"}},'
        b'{"index":0,"delta":{"refusal":"No."}}]}\n\n'
        b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    events = parse(translate([raw]))
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[2]["delta"]["text"] == "No."
    assert events[4]["delta"]["stop_reason"] == "refusal"


def test_text_after_a_tool_call_opens_a_new_block() -> None:
    raw = (
        data(delta({"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f"}}]}))
        + data(delta({"content": "done"}))
        + data({"id": "c", "choices": [FINISHED]})
        + b"data: [DONE]\n\n"
    )
    kinds = [(e["type"], e.get("index")) for e in parse(translate([raw]))]
    assert kinds == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("message_delta", None),
        ("message_stop", None),
    ]


def test_incomplete_stream() -> None:
    machine = OpenAIToMessagesStream(model="m")
    raw = stream("openai_stream_text")
    machine.feed(raw[: raw.index(b"data: [DONE]")])
    assert not machine.done
    assert machine.usage == Usage(9, 2, 11)
    assert machine.finish() == b""


_CHUNK = data(delta({"content": "SECRET"}))
_TOOL0 = data(delta({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f"}}]}))
_TOOL1 = data(delta({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g"}}]}))
_ARGS0 = data(delta({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}))
_FINISH = data({"id": "c", "choices": [FINISHED]})

MALFORMED: list[tuple[str, bytes, str]] = [
    ("invalid_json", b"data: {SECRET\n\n", "not valid JSON"),
    ("not_object", b'data: ["SECRET"]\n\n', "not a JSON object"),
    (
        "error_payload",
        _CHUNK + b'data: {"error":{"message":"SECRET","type":"server_error"}}\n\n',
        r"reported server_error \(500\)",
    ),
    ("no_choices", b'data: {"id":"c","object":"SECRET"}\n\n', "no choices list"),
    ("done_first", b"data: [DONE]\n\n", r"\[DONE\] before a finish reason"),
    ("done_without_finish", _CHUNK + b"data: [DONE]\n\n", r"\[DONE\] before a finish reason"),
    ("content_after_finish", _CHUNK + _FINISH + _CHUNK, "content after the finish reason"),
    ("interleaved_tools", _TOOL0 + _TOOL1 + _ARGS0, "interleaved"),
    (
        "tool_without_name",
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a"}]}}]}\n\n',
        "lacks its id or name",
    ),
    (
        "tool_call_not_object",
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":["SECRET"]}}]}\n\n',
        "not an object",
    ),
    ("tool_index_negative", _TOOL0.replace(b'"index":0,"id"', b'"index":-1,"id"'), "lacks a valid index"),
    ("tool_index_text", _TOOL0.replace(b'"index":0,"id"', b'"index":"0","id"'), "lacks a valid index"),
    ("chunk_after_done", _CHUNK + _FINISH + b"data: [DONE]\n\n" + _CHUNK, "after the end of the message"),
]


@pytest.mark.parametrize(("raw", "message"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_streams_raise(raw: bytes, message: str) -> None:
    machine = OpenAIToMessagesStream(model="m")
    with pytest.raises(StreamTranslationError, match=message) as caught:
        feed_bytewise(machine, raw)
    assert "SECRET" not in str(caught.value)
