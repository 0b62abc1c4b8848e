"""Round trips through both directions: an Anthropic request translated to OpenAI (ingress) and back
(egress) keeps its meaning; so do a message and a stream sent through the response translators both ways.
Also the package's export list.

"Meaning" is compared on a normal form that forgets only what the translations document as dropped or
reshaped: string versus block content, how system text is split, thinking blocks, ``cache_control``,
document titles, ``is_error``, ``top_k``, and where an assistant's text sits among its tool calls.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

import voidllm.providers.anthropic as package
from voidllm.providers.anthropic import (
    AnthropicAdapter,
    OpenAIToMessagesStream,
    messages_to_openai,
    openai_to_messages_response,
)
from voidllm.providers.base import Adapter, StreamTranslator, Target

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
ADAPTER = AnthropicAdapter(clock=lambda: 1_700_000_000)
_IMAGE = {
    "type": "image",
    "source": {"type": "base64", "media_type": "image/gif", "data": "R0lGODlhAQABAAAAACw="},
}

_MESSAGE = b'{"id":"msg_1","type":"message","role":"assistant","content":[],"stop_reason":"end_turn"}'

SAMPLES: list[dict[str, Any]] = [
    *(case["anthropic"] for case in json.loads((FIXTURES / "ingress_requests.json").read_text())),
    {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "{"}],
    },
    {
        "model": "m",
        "max_tokens": 5,
        "tools": [
            {"name": "a", "input_schema": {"type": "object"}},
            {"name": "b", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}},
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": [_IMAGE, {"type": "text", "text": "go"}]},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "a",
                        "input": {"n": [1, 2.5, None, True, "é"]},
                    },
                    {"type": "text", "text": "and "},
                    {"type": "tool_use", "id": "toolu_2", "name": "b", "input": {}},
                    {"type": "text", "text": "more"},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "1"}],
                    },
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "2", "is_error": True},
                ],
            },
        ],
    },
    {
        "model": "m",
        "max_tokens": 5,
        "tools": [{"name": "a", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "system": [{"type": "text", "text": "s1"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
        ],
        "stream": True,
    },
]


def _blocks(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _clean(block: dict[str, Any]) -> dict[str, Any]:
    block = {k: v for k, v in block.items() if k not in ("cache_control", "title", "is_error")}
    if block["type"] == "tool_result":
        content = _blocks(block.pop("content", ""))
        block["content"] = [_clean(item) for item in content if item != {"type": "text", "text": ""}]
    return block


def _turn(message: dict[str, Any]) -> dict[str, Any]:
    blocks = [
        _clean(b) for b in _blocks(message["content"]) if b["type"] not in ("thinking", "redacted_thinking")
    ]
    if message["role"] == "assistant":
        text = "".join(b["text"] for b in blocks if b["type"] == "text")
        blocks = [{"type": "text", "text": text}] * bool(text) + [b for b in blocks if b["type"] != "text"]
    else:
        blocks = [b for b in blocks if b["type"] == "tool_result"] + [
            b for b in blocks if b["type"] != "tool_result"
        ]
    return {"role": message["role"], "content": blocks}


def normal(request: dict[str, Any]) -> dict[str, Any]:
    """The meaning of an Anthropic request; see the module docstring for what it forgets."""
    system = request.get("system") or ""
    out: dict[str, Any] = {
        k: request[k]
        for k in ("model", "max_tokens", "temperature", "top_p", "tools", "tool_choice")
        if k in request
    }
    out["system"] = system if isinstance(system, str) else "\n".join(b["text"] for b in system)
    out["messages"] = [_turn(message) for message in request["messages"]]
    out["stop_sequences"] = request.get("stop_sequences") or []
    out["user"] = (request.get("metadata") or {}).get("user_id")
    out["stream"] = request.get("stream") is True
    out["tools"] = [
        {k: v for k, v in t.items() if k not in ("cache_control", "type")} for t in out.get("tools") or []
    ]
    if not out["tools"] or out.get("tool_choice", {}).get("type") == "none":
        out["tool_choice"] = {"type": "none"} if out["tools"] else None
    return out


@pytest.mark.parametrize("sample", SAMPLES)
def test_request_round_trip_keeps_meaning(sample: dict[str, Any]) -> None:
    openai_request = messages_to_openai(sample)
    call = ADAPTER.build_call(
        "chat/completions",
        openai_request,
        Target(base_url="https://api.anthropic.com"),
        stream=sample.get("stream") is True,
    )
    assert normal(orjson.loads(call.body)) == normal(sample)


MESSAGES = [
    ({"content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn"}, None),
    ({"content": [{"type": "text", "text": "cut"}], "stop_reason": "max_tokens"}, None),
    ({"content": [{"type": "text", "text": "no"}], "stop_reason": "refusal"}, None),
    (
        {
            "content": [
                {"type": "thinking", "thinking": "t", "signature": "s"},
                {"type": "text", "text": "Let me "},
                {"type": "text", "text": "look."},
                {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Paris"}},
            ],
            "stop_reason": "tool_use",
        },
        [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    ),
]


@pytest.mark.parametrize(("fields", "content"), MESSAGES)
def test_response_round_trip_keeps_meaning(
    fields: dict[str, Any], content: list[dict[str, Any]] | None
) -> None:
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 20,
        "cache_read_input_tokens": 30,
        "output_tokens": 4,
    }
    original = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "stop_sequence": None,
        "usage": usage,
        **fields,
    }
    openai_body, openai_usage = ADAPTER.translate_response(orjson.dumps(original), model="alias")
    back, back_usage = openai_to_messages_response(openai_body, model="alias")
    message = orjson.loads(back)
    assert message["content"] == (content if content is not None else original["content"])
    assert message["stop_reason"] == original["stop_reason"]
    assert message["usage"]["input_tokens"] + message["usage"]["cache_read_input_tokens"] == 60
    assert message["usage"]["cache_read_input_tokens"] == 30
    assert message["usage"]["output_tokens"] == 4
    assert back_usage == openai_usage


def _accumulate(sse: bytes) -> dict[str, Any]:
    """A minimal Anthropic stream accumulator (the SDK's is exercised in test_provider_anthropic_sdk)."""
    message: dict[str, Any] = {}
    partial: dict[int, str] = {}
    for event in sse.split(b"\n\n"):
        data = next((line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")), b"")
        if not data:
            continue
        payload = orjson.loads(data)
        kind = payload["type"]
        if kind == "message_start":
            message = {"content": [], "stop_reason": None}
        elif kind == "content_block_start":
            message["content"].append(dict(payload["content_block"]))
        elif kind == "content_block_delta":
            block, delta = message["content"][payload["index"]], payload["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                partial[payload["index"]] = partial.get(payload["index"], "") + delta["partial_json"]
        elif kind == "message_delta":
            message["stop_reason"] = payload["delta"]["stop_reason"]
    for index, raw in partial.items():
        message["content"][index]["input"] = orjson.loads(raw) if raw else {}
    message["content"] = [b for b in message["content"] if b["type"] in ("text", "tool_use")]
    return message


@pytest.mark.parametrize("name", ["stream_text", "stream_tool_use", "stream_thinking"])
def test_stream_round_trip_keeps_meaning(name: str) -> None:
    raw = (FIXTURES / f"{name}.sse").read_bytes()
    egress = ADAPTER.stream_translator(model="alias", include_usage=True)
    ingress = OpenAIToMessagesStream(model="alias")
    back = b"".join(ingress.feed(egress.feed(raw[i : i + 7])) for i in range(0, len(raw), 7))
    assert egress.done
    assert ingress.done
    assert _accumulate(back) == _accumulate(raw)
    assert ingress.usage == egress.usage


def test_exports() -> None:
    public = {name for name in dir(package) if not name.startswith("_")} - {"annotations"}
    assert set(package.__all__) == public


def test_the_adapter_satisfies_the_protocols() -> None:  # checked by mypy; at run time, the shape
    adapter: Adapter = AnthropicAdapter()
    translator: StreamTranslator = adapter.stream_translator(model="m")
    assert translator.usage is None
    assert not translator.done
    assert (
        abs(orjson.loads(adapter.translate_response(_MESSAGE, model="m")[0])["created"] - time.time()) < 3600
    )
