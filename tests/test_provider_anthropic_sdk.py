"""The official SDKs read what the translators write, and send what they accept.

The Anthropic SDK talks to a ``MockTransport`` that answers with the ingress translators' output (a message,
a stream, errors in Anthropic's shape); the OpenAI SDK reads the egress translators' output. Each handler
also feeds the SDK's own request body to the matching request translator. No sockets, no clock. Both SDKs
are built on ``httpx2`` (the Anthropic SDK refuses ``httpx`` objects), so the fakes are ``httpx2`` ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import orjson
import pytest

from voidllm.providers.anthropic import (
    AnthropicAdapter,
    OpenAIToMessagesStream,
    anthropic_error,
    anthropic_stream_error,
    error_type,
    messages_to_openai,
    openai_to_messages_response,
)
from voidllm.providers.base import Target

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
ADAPTER = AnthropicAdapter(clock=lambda: 1_700_000_000)
SCHEMA: dict[str, Any] = {"type": "object", "properties": {"location": {"type": "string"}}}
Handler = Callable[[httpx2.Request], httpx2.Response]


def anthropic_client(handler: Handler) -> anthropic.Anthropic:
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return anthropic.Anthropic(api_key="k", base_url="http://gateway.test", http_client=http, max_retries=0)


def openai_client(handler: Handler) -> openai.OpenAI:
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(api_key="k", base_url="http://gateway.test/v1", http_client=http, max_retries=0)


def sse(body: bytes) -> httpx2.Response:
    return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})


# --- the Anthropic SDK against the ingress translators -------------------------------------------------


def test_anthropic_sdk_reads_a_translated_message() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(messages_to_openai(orjson.loads(request.content)))
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location":"Oslo"}'},
        }
        upstream = {
            "id": "chatcmpl-1",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {"role": "assistant", "content": "On it.", "tool_calls": [call]},
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        }
        return httpx2.Response(
            200, content=openai_to_messages_response(orjson.dumps(upstream), model="my-model")[0]
        )

    message = anthropic_client(handler).messages.create(
        model="my-model",
        max_tokens=100,
        tools=[{"name": "get_weather", "input_schema": SCHEMA}],
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    )
    assert seen[0]["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}
    ]
    assert message.stop_reason == "tool_use"
    text, tool = message.content
    assert text.type == "text"
    assert text.text == "On it."
    assert tool.type == "tool_use"
    assert tool.input == {"location": "Oslo"}
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 3)


def test_anthropic_sdk_reads_a_translated_stream() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        assert messages_to_openai(orjson.loads(request.content))["stream_options"] == {"include_usage": True}
        machine = OpenAIToMessagesStream(model="my-model")
        return sse(machine.feed((FIXTURES / "openai_stream_tools.sse").read_bytes()))

    with anthropic_client(handler).messages.stream(
        model="my-model", max_tokens=100, messages=[{"role": "user", "content": "Weather in Paris?"}]
    ) as stream:
        message = stream.get_final_message()
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    inputs = [block.input for block in message.content if block.type == "tool_use"]
    assert inputs == [{"location": "Paris, France"}, {}]
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (82, 17)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (429, anthropic.RateLimitError),
        (529, anthropic.OverloadedError),
    ],
)
def test_anthropic_sdk_reads_translated_errors(status: int, error: type[anthropic.APIStatusError]) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, content=anthropic_error(status, "nope"))

    client = anthropic_client(handler)
    with pytest.raises(error) as caught:
        client.messages.create(model="m", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    assert caught.value.body == {"type": "error", "error": {"type": error_type(status), "message": "nope"}}


def test_anthropic_sdk_raises_on_the_abort_event() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        machine = OpenAIToMessagesStream(model="m")
        head = machine.feed(b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n')
        return sse(head + anthropic_stream_error())

    stream = anthropic_client(handler).messages.stream(model="m", max_tokens=1, messages=[])
    with stream as events, pytest.raises(anthropic.APIStatusError, match="stream aborted"):
        events.get_final_message()


# --- the OpenAI SDK against the egress translators -----------------------------------------------------


def test_openai_sdk_reads_a_translated_completion() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        payload = orjson.loads(request.content)
        ADAPTER.build_call("chat/completions", payload, Target(base_url="https://a"), stream=False)
        tool_use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Oslo"}}
        upstream = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [tool_use],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 5, "output_tokens": 6},
        }
        return httpx2.Response(
            200, content=ADAPTER.translate_response(orjson.dumps(upstream), model="claude")[0]
        )

    completion = openai_client(handler).chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert orjson.loads(call.function.arguments) == {"location": "Oslo"}
    assert completion.usage is not None
    assert completion.usage.total_tokens == 11


def test_openai_sdk_reads_a_translated_stream() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        payload = orjson.loads(request.content)
        ADAPTER.build_call("chat/completions", payload, Target(base_url="https://a"), stream=True)
        include_usage = payload["stream_options"]["include_usage"]
        machine = ADAPTER.stream_translator(model="claude", include_usage=include_usage)
        return sse(machine.feed((FIXTURES / "stream_tool_use.sse").read_bytes()))

    with openai_client(handler).chat.completions.stream(
        model="claude",
        messages=[{"role": "user", "content": "Weather?"}],
        stream_options={"include_usage": True},
    ) as stream:
        completion = stream.get_final_completion()
    message = completion.choices[0].message
    assert message.content == "Okay, let's check the weather for San Francisco, CA:"
    arguments = [
        orjson.loads(call.function.arguments) for call in message.tool_calls or [] if call.type == "function"
    ]
    assert arguments == [{"location": "San Francisco, CA", "unit": "fahrenheit"}, {}]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 472
