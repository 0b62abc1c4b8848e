"""Egress response translation (Anthropic message -> OpenAI chat.completion): text, tool use, every stop
reason, usage with cache tokens, and bodies that are not messages (a 502 that quotes nothing).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from voidllm.errors import BadGatewayError
from voidllm.providers.anthropic import AnthropicAdapter
from voidllm.providers.base import Usage

ADAPTER = AnthropicAdapter(clock=lambda: 1_700_000_000.9)
SECRET = "SECRET-MARKER-7f3a"


def translate(message: dict[str, Any], model: str = "claude") -> tuple[dict[str, Any], Usage | None]:
    body, usage = ADAPTER.translate_response(orjson.dumps(message), model=model)
    return orjson.loads(body), usage


def message(content: list[Any], stop_reason: str | None = "end_turn", **usage: Any) -> dict[str, Any]:
    return {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-4-6",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 2095, "output_tokens": 503},
    }


def test_text_message() -> None:  # the Messages API documentation's example response
    body, usage = translate(message([{"text": "Hi! My name is Claude.", "type": "text"}]))
    assert body == {
        "id": "chatcmpl-msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "claude",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi! My name is Claude."},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 2095,
            "completion_tokens": 503,
            "total_tokens": 2598,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }
    assert usage == Usage(prompt_tokens=2095, completion_tokens=503, total_tokens=2598)


def test_text_and_tool_use() -> None:  # the tool use guide's example response
    content = [
        {"type": "text", "text": "I'll check the current weather in San Francisco for you."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA", "unit": "celsius"},
        },
        {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
    ]
    body, _ = translate(message(content, "tool_use"))
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": "I'll check the current weather in San Francisco for you.",
        "tool_calls": [
            {
                "id": "toolu_01A09q90qw90lq917835lq9",
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "arguments": '{"location":"San Francisco, CA","unit":"celsius"}',
                },
            },
            {"id": "toolu_02", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
        ],
    }


def test_tool_use_only_has_null_content() -> None:
    body, _ = translate(
        message([{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": [1]}}], "tool_use")
    )
    assert body["choices"][0]["message"]["content"] is None
    assert orjson.loads(body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == {"a": [1]}


def test_text_blocks_are_concatenated_and_thinking_and_server_blocks_dropped() -> None:
    content = [
        {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCgIYAhIM"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
        {"type": "text", "text": "Part one, ", "citations": [{"type": "char_location", "cited_text": "x"}]},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "text", "text": "part two."},
    ]
    body, _ = translate(message(content))
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Part one, part two."}


def test_empty_content_is_an_empty_string() -> None:
    body, _ = translate(message([], "end_turn"))
    assert body["choices"][0]["message"] == {"role": "assistant", "content": ""}


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        ("a_future_reason", "stop"),
        (None, "stop"),
    ],
)
def test_stop_reasons(stop_reason: str | None, finish_reason: str) -> None:
    body, _ = translate(message([{"type": "text", "text": "x"}], stop_reason))
    assert body["choices"][0]["finish_reason"] == finish_reason


def test_usage_counts_cache_writes_and_reads_as_prompt_tokens() -> None:
    usage_in: dict[str, Any] = {
        "input_tokens": 40,
        "cache_creation_input_tokens": 1000,
        "cache_read_input_tokens": 2000,
        "output_tokens": 7,
        "service_tier": "standard",
    }
    body, usage = translate(message([{"type": "text", "text": "x"}], **usage_in))
    assert body["usage"] == {
        "prompt_tokens": 3040,
        "completion_tokens": 7,
        "total_tokens": 3047,
        "prompt_tokens_details": {"cached_tokens": 2000},
    }
    assert usage == Usage(prompt_tokens=3040, completion_tokens=7, total_tokens=3047)


def test_missing_usage_reports_none() -> None:
    raw = message([{"type": "text", "text": "x"}])
    del raw["usage"]
    body, usage = translate(raw)
    assert usage is None
    assert "usage" not in body


def test_invalid_counts_read_as_zero() -> None:
    _, usage = translate(message([], input_tokens=-3, output_tokens=True))
    assert usage == Usage(0, 0, 0)


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        (b"{not json " + SECRET.encode(), "not valid JSON"),
        (orjson.dumps({"type": SECRET, "id": "m", "content": []}), "not a message"),
        (orjson.dumps([SECRET]), "not a message"),
        (orjson.dumps({"type": "message", "content": [{"type": "text", "text": SECRET}]}), "lacks its id"),
        (orjson.dumps({"type": "message", "id": "m", "content": SECRET}), "lacks its id or content"),
        (
            orjson.dumps(
                {"type": "message", "id": "m", "content": [{"type": "tool_use", "id": "t", "name": SECRET}]}
            ),
            "tool_use block lacks",
        ),
    ],
)
def test_unreadable_bodies_are_a_bad_gateway(body: bytes, message_part: str) -> None:
    with pytest.raises(BadGatewayError, match=message_part) as caught:
        ADAPTER.translate_response(body, model="claude")
    assert caught.value.status == 502
    assert caught.value.code == "upstream_invalid_response"
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"type": "overloaded_error", "message": "Overloaded"}, ("Overloaded", "overloaded_error")),
        ({"type": "rate_limit_error", "message": "Slow down"}, ("Slow down", "rate_limit_error")),
        ({"type": "a_new_error", "message": "New"}, ("New", "api_error")),
        ({"type": "api_error"}, ("the provider reported an error", "api_error")),
        (None, ("the provider reported an error", "api_error")),
    ],
)
def test_error_bodies_become_openai_errors(error: Any, expected: tuple[str, str]) -> None:
    body, usage = ADAPTER.translate_response(orjson.dumps({"type": "error", "error": error}), model="m")
    message, kind = expected
    assert orjson.loads(body) == {"error": {"message": message, "type": kind, "param": None, "code": None}}
    assert usage is None
