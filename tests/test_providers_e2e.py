"""Translated and Azure providers end to end: the official openai SDK -> a real gateway -> mock providers.

Every test runs a real in-process gateway on real sockets in front of servers of
``voidllm.testing.mock_providers`` (Anthropic Messages, Gemini, Vertex AI, Azure OpenAI), and asserts both
what the upstream received (URL, credential header, translated body) and what the client got back (content,
tool calls, finish reasons, usage), and the usage rows the gateway wrote. Starting a gateway costs most of
a test's time, so tests that need several providers run one gateway with one model (and mock) per case.
"""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anthropic
import attrs
import httpx
import openai
import orjson
import pytest

from tests.gateway import RunningGateway, make_config, run_gateway, usage_rows
from voidllm.testing.mock_providers import (
    AZURE_MODEL,
    MockProvider,
    open_mock_anthropic,
    open_mock_azure,
    open_mock_gemini,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextlib import AbstractAsyncContextManager

# A 1x1 PNG, as a client would inline it.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
HI: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
SYSTEM = "You are terse."
QUESTION = "What is the weather in Paris?"
ARGUMENTS = {"city": "Paris", "unit": "celsius"}  # what the mocks call get_weather with
WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city"],
    "additionalProperties": False,
}
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Current weather", "parameters": WEATHER_SCHEMA},
    },
    {"type": "function", "function": {"name": "get_time", "description": "Local time"}},
]
TOOL_RESULT = '{"temperature": 18, "sky": "clear"}'


@attrs.frozen
class Case:
    """One provider as the gateway is configured for it, and where its upstream requests must go."""

    provider: str
    model: str  # the canonical name, sent upstream (Azure: the deployment in the URL serves it)
    extra: str = ""
    api_key: str = "sk-upstream-secret"

    def open(self) -> AbstractAsyncContextManager[MockProvider]:
        if self.provider == "anthropic":
            return open_mock_anthropic()
        if self.provider == "azure":
            return open_mock_azure()
        return open_mock_gemini(vertex=self.provider == "vertex")

    def yaml(self, base_url: str) -> str:
        return f"""
  - name: {self.model}
    provider: {self.provider}
    base_url: "{base_url}"
    api_key: {self.api_key}
    aliases: [{self.model}-alias]
    pricing: {{input_per_1m: 1.0, output_per_1m: 2.0}}
{self.extra}"""

    def path(self, *, stream: bool) -> str:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        google = f"publishers/google/models/{self.model}:{method}"
        return {
            "anthropic": "/v1/messages",
            "gemini": f"/v1beta/models/{self.model}:{method}",
            "vertex": f"/v1/projects/my-project/locations/europe-west4/{google}",
            "azure": "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21",
        }[self.provider]

    def credential(self) -> tuple[str, str]:
        return {
            "anthropic": ("x-api-key", self.api_key),
            "gemini": ("x-goog-api-key", self.api_key),
            "vertex": ("authorization", f"Bearer {self.api_key}"),
            "azure": ("api-key", self.api_key),
        }[self.provider]


ANTHROPIC = Case("anthropic", "claude-sonnet-4-5")
GEMINI = Case("gemini", "gemini-2.5-flash")
VERTEX = Case("vertex", "gemini-2.5-pro", "    gcp_project: my-project\n    gcp_location: europe-west4\n")
AZURE = Case("azure", "gpt-4o", "    azure_deployment: my-gpt4o\n    azure_api_version: 2024-10-21\n")
ALL = [pytest.param(case, id=case.provider) for case in (ANTHROPIC, GEMINI, VERTEX, AZURE)]


@attrs.define
class Setup:
    """A running gateway, an SDK client for it, and the mocks behind it (by model name)."""

    mocks: dict[str, MockProvider]
    gw: RunningGateway
    client: openai.AsyncOpenAI

    @property
    def mock(self) -> MockProvider:
        [mock] = self.mocks.values()
        return mock

    async def chat(self, model: str, messages: list[Any] | None = None, **fields: Any) -> Any:
        """A chat completion through the SDK (a stream when ``stream=True``); ``messages`` default to "hi"."""
        return await self.client.chat.completions.create(model=model, messages=messages or HI, **fields)

    async def raw_chat(self, **body: Any) -> tuple[int, bytes]:
        """POST /v1/chat/completions with httpx: the status and the body bytes exactly as relayed."""
        headers = {"Authorization": f"Bearer {self.gw.api_key()}"}
        response = await self.gw.client.post("/v1/chat/completions", headers=headers, json=body)
        return response.status_code, response.content


@asynccontextmanager
async def setup(sqlite_dsn: str, *cases: Case) -> AsyncIterator[Setup]:
    """A mock per case (each case names its own model) and one gateway serving them all, for the block."""
    async with AsyncExitStack() as stack:
        mocks = {case.model: await stack.enter_async_context(case.open()) for case in cases}
        models = "models:" + "".join(case.yaml(mocks[case.model].base_url) for case in cases)
        gw = await stack.enter_async_context(run_gateway(make_config(sqlite_dsn, models)))
        client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=gw.api_key(), max_retries=0, timeout=10)
        yield Setup(mocks, gw, client)


def events(body: bytes) -> list[Any]:
    """The data of each SSE event, decoded (``"[DONE]"`` stays a string)."""
    out: list[Any] = []
    for block in body.decode().split("\n\n"):
        data = [line[len("data: ") :] for line in block.split("\n") if line.startswith("data: ")]
        if data:
            out.append("[DONE]" if data == ["[DONE]"] else orjson.loads("\n".join(data)))
    return out


def counts(usage: Any) -> tuple[int, int, int]:
    return usage.prompt_tokens, usage.completion_tokens, usage.total_tokens


def columns(rows: list[dict[str, Any]], *names: str) -> list[tuple[Any, ...]]:
    return [tuple(row[name] for name in names) for row in rows]


# --- plain and streamed chat ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ALL)
async def test_plain_chat(sqlite_dsn: str, case: Case) -> None:
    async with setup(sqlite_dsn, case) as s:
        raw = await s.client.chat.completions.with_raw_response.create(
            model=f"{case.model}-alias",
            max_tokens=50,
            temperature=0.2,
            stop=["END"],
            messages=[{"role": "system", "content": SYSTEM}, *HI],
        )
        completion = raw.parse()
        choice = completion.choices[0]
        assert (choice.message.role, choice.message.content, choice.finish_reason) == (
            "assistant",
            "Hello from the mock.",
            "stop",
        )
        assert choice.message.tool_calls is None
        assert counts(completion.usage) == (10, 8, 18)
        assert completion.model == (AZURE_MODEL if case.provider == "azure" else f"{case.model}-alias")

        sent = s.mock.last
        assert sent.method == "POST"
        assert sent.path == case.path(stream=False)
        name, value = case.credential()
        assert sent.header(name) == value
        if name != "authorization":  # the client's gateway key never travels upstream
            assert sent.header("authorization") is None
        assert sent.header("x-request-id") == raw.headers["x-request-id"]
        body = sent.json()
        if case.provider == "anthropic":
            assert sent.header("anthropic-version") == "2023-06-01"
            assert body == {
                "model": case.model,
                "max_tokens": 50,
                "system": SYSTEM,
                "stop_sequences": ["END"],
                "temperature": 0.2,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            }
        elif case.provider == "azure":
            assert body == {
                "model": case.model,
                "max_tokens": 50,
                "temperature": 0.2,
                "stop": ["END"],
                "messages": [{"role": "system", "content": SYSTEM}, *HI],
            }
        else:
            assert body == {
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "systemInstruction": {"parts": [{"text": SYSTEM}]},
                "generationConfig": {"temperature": 0.2, "maxOutputTokens": 50, "stopSequences": ["END"]},
            }
    rows = await usage_rows("sqlite", sqlite_dsn)
    names = ("provider", "model_name", "requested_model_name", "status", "status_code", "stream")
    assert columns(rows, *names) == [(case.provider, case.model, f"{case.model}-alias", "ok", 200, False)]
    assert columns(rows, "prompt_tokens", "completion_tokens", "total_tokens") == [(10, 8, 18)]
    assert rows[0]["cost_estimate"] == pytest.approx(10 / 1e6 * 1.0 + 8 / 1e6 * 2.0)


@pytest.mark.parametrize("case", ALL)
async def test_streamed_chat_with_and_without_usage(sqlite_dsn: str, case: Case) -> None:
    async with setup(sqlite_dsn, case) as s:
        s.mock.behaviour.stream_chunks = 4
        pieces = s.mock.behaviour.pieces()
        messages = [{"role": "system", "content": SYSTEM}, *HI]

        # without stream_options: no usage anywhere in what the client gets
        status, body = await s.raw_chat(model=case.model, stream=True, messages=messages)
        assert status == 200
        assert b'"usage"' not in body
        assert body.endswith(b"data: [DONE]\n\n")
        chunks = events(body)[:-1]
        deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
        assert deltas[0]["role"] == "assistant"
        assert [delta["content"] for delta in deltas if delta.get("content")] == pieces
        assert [chunk["choices"][0]["finish_reason"] for chunk in chunks if chunk["choices"]][-1] == "stop"
        first_upstream = s.mock.last

        # with include_usage: the text in order, then exactly one usage chunk, last
        stream = await s.chat(case.model, messages, stream=True, stream_options={"include_usage": True})
        received = [chunk async for chunk in stream]
        texts = [c.choices[0].delta.content for c in received if c.choices and c.choices[0].delta.content]
        assert texts == pieces
        assert [c for c in received if c.usage is not None] == [received[-1]]
        assert received[-1].choices == []
        assert counts(received[-1].usage) == (10, 8, 18)

        for sent in (first_upstream, s.mock.last):
            assert sent.path == case.path(stream=True)
            upstream = sent.json()
            if case.provider == "anthropic":
                assert upstream["stream"] is True
                assert "stream_options" not in upstream
                assert sent.header("accept") == "text/event-stream"
            elif case.provider == "azure":  # the gateway asks for usage either way
                assert upstream["stream"] is True
                assert upstream["stream_options"] == {"include_usage": True}
            else:  # the URL decides; the body has no stream field
                assert "stream" not in upstream
                assert "stream_options" not in upstream
    rows = await usage_rows("sqlite", sqlite_dsn)
    names = ("provider", "stream", "status", "prompt_tokens", "completion_tokens", "total_tokens")
    assert columns(rows, *names) == [(case.provider, True, "ok", 10, 8, 18)] * 2
    assert all(row["ttft_ms"] is not None for row in rows)


# --- tools ----------------------------------------------------------------------------------------------


def expected_tools(provider: str) -> dict[str, Any]:
    """The translated tools and tool choice of a named-function ``tool_choice`` without parallel calls."""
    if provider == "anthropic":
        empty = {"type": "object", "properties": {}}
        return {
            "tools": [
                {"name": "get_weather", "description": "Current weather", "input_schema": WEATHER_SCHEMA},
                {"name": "get_time", "description": "Local time", "input_schema": empty},
            ],
            "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        }
    if provider == "azure":
        choice = {"type": "function", "function": {"name": "get_weather"}}
        return {"tools": TOOLS, "tool_choice": choice, "parallel_tool_calls": False}
    cleaned = {key: value for key, value in WEATHER_SCHEMA.items() if key != "additionalProperties"}
    return {
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "get_weather", "description": "Current weather", "parameters": cleaned},
                    {"name": "get_time", "description": "Local time"},
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
    }


def expected_history(provider: str, call_id: str) -> dict[str, Any]:
    """How the second turn (question, assistant tool call, tool result) must reach the provider."""
    if provider == "anthropic":
        return {
            "system": SYSTEM,
            "tool_choice": {"type": "auto"},
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Let me check."},
                        {"type": "tool_use", "id": call_id, "name": "get_weather", "input": ARGUMENTS},
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": call_id, "content": TOOL_RESULT}],
                },
            ],
        }
    if provider == "azure":
        function = {"name": "get_weather", "arguments": orjson.dumps(ARGUMENTS).decode()}
        return {
            "tool_choice": "auto",
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": QUESTION},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": call_id, "type": "function", "function": function}],
                },
                {"role": "tool", "tool_call_id": call_id, "content": TOOL_RESULT},
            ],
        }
    return {
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "contents": [
            {"role": "user", "parts": [{"text": QUESTION}]},
            {
                "role": "model",
                "parts": [
                    {"text": "Let me check."},
                    {
                        "functionCall": {"name": "get_weather", "args": ARGUMENTS},
                        "thoughtSignature": "skip_thought_signature_validator",
                    },
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": orjson.loads(TOOL_RESULT)}}
                ],
            },
        ],
    }


@pytest.mark.parametrize("case", ALL)
async def test_tool_calls_round_trip(sqlite_dsn: str, case: Case) -> None:
    call_id = {"anthropic": "toolu_mock01", "azure": "call_mock01"}.get(case.provider, "call_g0")
    question = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    async with setup(sqlite_dsn, case) as s:
        s.mock.behaviour.tool_call = True
        weather = {"type": "function", "function": {"name": "get_weather"}}
        first = await s.chat(
            case.model, question, tools=TOOLS, tool_choice=weather, parallel_tool_calls=False
        )
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content == (None if case.provider == "azure" else "Let me check.")
        [call] = choice.message.tool_calls or []
        assert (call.id, call.type, call.function.name) == (call_id, "function", "get_weather")
        assert isinstance(call.function.arguments, str)
        assert orjson.loads(call.function.arguments) == ARGUMENTS
        sent = s.mock.last.json()
        assert {key: sent[key] for key in expected_tools(case.provider)} == expected_tools(case.provider)

        # the agent runs the tool and sends the whole conversation back
        s.mock.behaviour.tool_call = False
        history = [
            *question,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT},
        ]
        second = await s.chat(case.model, history, tools=TOOLS, tool_choice="auto")
        answer = second.choices[0]
        assert (answer.message.content, answer.finish_reason) == ("Hello from the mock.", "stop")
        sent = s.mock.last.json()
        expected = expected_history(case.provider, call_id)
        assert {key: sent[key] for key in expected} == expected

        # the same call streamed: the header (id, name) first, then the arguments in fragments
        s.mock.behaviour.tool_call = True
        stream = await s.chat(case.model, question, tools=TOOLS, tool_choice="required", stream=True)
        chunks = [chunk async for chunk in stream if chunk.choices]
        calls = [call for chunk in chunks for call in (chunk.choices[0].delta.tool_calls or [])]
        assert calls[0].id == call_id
        assert calls[0].function
        assert calls[0].function.name == "get_weather"
        assert {call.index for call in calls} == {0}
        assert len(calls) == (1 if case.provider in ("gemini", "vertex") else 4)  # Gemini sends calls whole
        fragments = [call.function.arguments or "" for call in calls if call.function]
        assert orjson.loads("".join(fragments)) == ARGUMENTS
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
        required = {"anthropic": {"tool_choice": {"type": "any"}}, "azure": {"tool_choice": "required"}}.get(
            case.provider, {"toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}
        )
        sent = s.mock.last.json()
        assert {key: sent[key] for key in required} == required
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert columns(rows, "provider", "status", "stream", "total_tokens") == [
        (case.provider, "ok", False, 18),
        (case.provider, "ok", False, 18),
        (case.provider, "ok", True, 18),
    ]


# --- content parts --------------------------------------------------------------------------------------


async def test_image_data_url(sqlite_dsn: str) -> None:
    question = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
            ],
        }
    ]
    async with setup(sqlite_dsn, ANTHROPIC, GEMINI, VERTEX) as s:
        for case in (ANTHROPIC, GEMINI, VERTEX):
            completion = await s.chat(case.model, question)
            assert completion.choices[0].message.content == "Hello from the mock."
            sent = s.mocks[case.model].last.json()
            if case.provider == "anthropic":
                image = {"type": "base64", "media_type": "image/png", "data": PNG}
                assert sent["messages"] == [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is in this image?"},
                            {"type": "image", "source": image},
                        ],
                    }
                ]
            else:
                assert sent["contents"] == [
                    {
                        "role": "user",
                        "parts": [
                            {"text": "What is in this image?"},
                            {"inlineData": {"mimeType": "image/png", "data": PNG}},
                        ],
                    }
                ]


# --- finish reasons, cache tokens, Azure's v1 API -----------------------------------------------------

FINISH_REASONS = {
    ANTHROPIC: {
        "max_tokens": "length",
        "refusal": "content_filter",
        "stop_sequence": "stop",
        "pause_turn": "stop",
    },
    GEMINI: {
        "MAX_TOKENS": "length",
        "SAFETY": "content_filter",
        "RECITATION": "content_filter",
        "OTHER": "stop",
    },
    AZURE: {"length": "length", "content_filter": "content_filter"},
}


async def test_finish_reasons_are_mapped(sqlite_dsn: str) -> None:
    async with setup(sqlite_dsn, *FINISH_REASONS) as s:
        for case, mapping in FINISH_REASONS.items():
            behaviour = s.mocks[case.model].behaviour
            for native, expected in mapping.items():
                behaviour.stop = native
                completion = await s.chat(case.model)
                assert completion.choices[0].finish_reason == expected, (case.provider, native)
            native, expected = next(iter(mapping.items()))
            behaviour.stop = native
            stream = await s.chat(case.model, stream=True)
            finishes = [c.choices[0].finish_reason async for c in stream if c.choices]
            assert [finish for finish in finishes if finish] == [expected], (case.provider, native)


async def test_anthropic_cache_tokens_count_as_prompt_tokens(sqlite_dsn: str) -> None:
    async with setup(sqlite_dsn, ANTHROPIC) as s:
        s.mock.behaviour.cache_creation_tokens, s.mock.behaviour.cache_read_tokens = 3, 2
        usage = (await s.chat(ANTHROPIC.model)).usage
        assert counts(usage) == (15, 8, 23)
        assert usage.prompt_tokens_details is not None
        assert usage.prompt_tokens_details.cached_tokens == 2
        stream = await s.chat(ANTHROPIC.model, stream=True, stream_options={"include_usage": True})
        last = [chunk async for chunk in stream][-1]
        assert counts(last.usage) == (15, 8, 23)
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert columns(rows, "prompt_tokens", "completion_tokens", "total_tokens") == [(15, 8, 23)] * 2


async def test_azure_v1_api_names_the_deployment_in_the_body(sqlite_dsn: str) -> None:
    case = Case("azure", "gpt-4o", "    azure_deployment: my-gpt4o\n    azure_api_version: v1\n")
    async with setup(sqlite_dsn, case) as s:
        completion = await s.chat(case.model)
        assert completion.choices[0].message.content == "Hello from the mock."
        assert s.mock.last.path == "/openai/v1/chat/completions"
        assert s.mock.last.json()["model"] == "my-gpt4o"
        assert s.mock.last.header("api-key") == case.api_key


# --- failures -------------------------------------------------------------------------------------------

BROKEN_STREAMS = [  # (case, failure mode, the code of the one error event, its type and its tail)
    (ANTHROPIC, "malformed_event", "stream_transform_aborted", "stream_transform_aborted", b""),
    (
        attrs.evolve(ANTHROPIC, model="claude-error-event"),
        "error_event",  # Anthropic's overloaded_error mid-stream keeps its kind and its status
        "upstream_stream_error",
        "overloaded_error",
        b',"status":529',
    ),
    (
        attrs.evolve(ANTHROPIC, model="claude-dropped"),
        "drop_mid_stream",
        "stream_incomplete",
        "stream_incomplete",
        b"",
    ),
    (GEMINI, "malformed_event", "stream_transform_aborted", "stream_transform_aborted", b""),
    (
        attrs.evolve(GEMINI, model="gemini-error-event"),
        "error_event",  # Gemini's 503 UNAVAILABLE mid-stream
        "upstream_stream_error",
        "api_error",
        b',"status":503',
    ),
]


async def test_broken_stream_ends_with_exactly_one_error_event(sqlite_dsn: str) -> None:
    async with setup(sqlite_dsn, *(case for case, *_ in BROKEN_STREAMS)) as s:
        for case, fail, code, kind, tail in BROKEN_STREAMS:
            behaviour = s.mocks[case.model].behaviour
            behaviour.fail, behaviour.stream_chunks = fail, 6
            status, body = await s.raw_chat(model=case.model, stream=True, messages=HI)
            assert status == 200  # the stream was committed before it broke
            received = events(body)
            assert "[DONE]" not in received, fail
            errors = [event for event in received if "error" in event]
            assert errors == [received[-1]], fail
            assert errors[0]["error"]["code"] == code
            assert errors[0]["error"]["type"] == kind
            assert body.count(b'"error"') == 1
            assert body.endswith(b'"code":"' + code.encode() + b'"' + tail + b"}}\n\n")
            assert received[0]["choices"][0]["delta"]["role"] == "assistant"  # what came before was relayed
            if fail != "drop_mid_stream":
                assert received[1]["choices"][0]["delta"]["content"] == behaviour.pieces()[0]
                assert len(received) == 3, fail  # role, first text, the error: nothing after the bad event
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert columns(rows, "model_name", "provider", "status", "status_code", "stream") == [
        (case.model, case.provider, "incomplete", 502, True) for case, *_ in BROKEN_STREAMS
    ]
    assert [row["prompt_tokens"] for row in rows[:3]] == [10, 10, 10]  # message_start's input tokens


UPSTREAM_ERRORS = [  # (case, status the provider answers, what the SDK raises)
    (ANTHROPIC, 429, openai.RateLimitError),
    (attrs.evolve(ANTHROPIC, model="claude-400"), 400, openai.BadRequestError),
    (GEMINI, 429, openai.RateLimitError),
    (VERTEX, 403, openai.PermissionDeniedError),
    (AZURE, 400, openai.BadRequestError),
]


async def test_upstream_error_status_is_relayed(sqlite_dsn: str) -> None:
    async with setup(sqlite_dsn, *(case for case, _, _ in UPSTREAM_ERRORS)) as s:
        for case, status, error in UPSTREAM_ERRORS:
            mock = s.mocks[case.model]
            mock.behaviour.status, mock.behaviour.retry_after = status, "7"
            mock.behaviour.error_message = f"quota exhausted for {case.model}"
            with pytest.raises(error) as raised:
                await s.chat(case.model)
            assert raised.value.status_code == status
            assert f"quota exhausted for {case.model}" in raised.value.response.text
            # the provider's error, in the OpenAI envelope the SDK understands, with its back-off
            if case.provider != "azure":  # translated providers' errors come in OpenAI's envelope
                body = orjson.loads(raised.value.response.content)
                assert set(body) == {"error"}
                assert set(body["error"]) >= {"message", "type", "param", "code"}
            assert raised.value.response.headers["retry-after"] == "7"
            assert len(mock.requests) == 1
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert columns(rows, "model_name", "provider", "status", "status_code") == [
        (case.model, case.provider, "upstream_error", status) for case, status, _ in UPSTREAM_ERRORS
    ]


SECRET = "zq-private-7f3a-content"
INEXPRESSIBLE = [  # (case, fields the provider cannot honour)
    (ANTHROPIC, {"n": 2}),
    (ANTHROPIC, {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
    (
        ANTHROPIC,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "input_audio", "input_audio": {"data": SECRET, "format": "wav"}}],
                }
            ]
        },
    ),
    (GEMINI, {"logit_bias": {"42": 5}}),
    (VERTEX, {"functions": [{"name": "f"}]}),
]


async def test_inexpressible_request_is_a_400_that_does_not_quote_content(sqlite_dsn: str) -> None:
    async with setup(sqlite_dsn, ANTHROPIC, GEMINI, VERTEX) as s:
        for case, fields in INEXPRESSIBLE:
            status, answer = await s.raw_chat(
                **{"model": case.model, "messages": [{"role": "user", "content": SECRET}], **fields}
            )
            assert status == 400, fields
            error = orjson.loads(answer)["error"]
            assert error["code"] == "bad_request"
            assert error["message"]
            assert error["request_id"]
            assert SECRET.encode() not in answer
        assert all(mock.requests == [] for mock in s.mocks.values())
    assert await usage_rows("sqlite", sqlite_dsn) == []


# --- the doubles themselves -------------------------------------------------------------------------------


async def test_the_mocks_speak_and_refuse_like_the_providers() -> None:
    """Credentials, Azure's api-version, strict bodies, count_tokens, Anthropic's SDK reading the stream."""
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    async with (
        open_mock_anthropic() as claude,
        open_mock_gemini() as gemini,
        open_mock_gemini(vertex=True) as vertex,
        open_mock_azure() as azure,
        httpx.AsyncClient() as http,
    ):
        url = f"{claude.base_url}/v1/messages"
        body = {"model": "m", "max_tokens": 5, "messages": HI}
        refused = await http.post(url, headers={"x-api-key": "k"}, json=body)
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "authentication_error"
        counted = await http.post(f"{url}/count_tokens", headers=headers, json={"model": "m", "messages": HI})
        assert counted.json() == {"input_tokens": 10}
        use = {"type": "tool_use", "id": "t1", "name": "f", "input": {}}
        unanswered = [*HI, {"role": "assistant", "content": [use]}, {"role": "user", "content": "and?"}]
        for extra, says in [({"n": 2}, "Extra inputs"), ({"messages": unanswered}, "without tool_result")]:
            answer = await http.post(url, headers=headers, json={**body, **extra})
            assert answer.status_code == 400
            assert says in answer.json()["error"]["message"]
        sdk = anthropic.AsyncAnthropic(
            api_key="k", base_url=claude.base_url, max_retries=0, default_headers={"x-api-key": "k"}
        )
        claude.behaviour.tool_call = True
        question: Any = HI
        async with sdk.messages.stream(model="m", max_tokens=5, messages=question) as stream:
            final = await stream.get_final_message()
        assert [block.type for block in final.content] == ["text", "tool_use"]
        assert final.stop_reason == "tool_use"
        assert final.content[1].input == ARGUMENTS  # type: ignore[union-attr]

        contents = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        gemini_url = f"{gemini.base_url}/v1beta/models/g:generateContent"
        assert (await http.post(gemini_url, json=contents)).json()["error"]["status"] == "UNAUTHENTICATED"
        unknown = await http.post(gemini_url, headers={"x-goog-api-key": "k"}, json={**contents, "n": 2})
        assert unknown.status_code == 400
        assert unknown.json()["error"]["status"] == "INVALID_ARGUMENT"
        vertex_path = "/v1/projects/p/locations/l/publishers/google/models/g:generateContent"
        google_key = {"x-goog-api-key": "k"}
        wrong_key = await http.post(vertex.base_url + vertex_path, headers=google_key, json=contents)
        assert wrong_key.status_code == 401
        assert (await http.post(gemini.base_url + vertex_path, json=contents)).status_code == 404

        deployment = "/openai/deployments/d/chat/completions"
        chat = {"messages": HI}
        no_version = await http.post(azure.base_url + deployment, headers={"api-key": "k"}, json=chat)
        assert no_version.status_code == 400
        assert "api-version" in no_version.json()["error"]["message"]
        no_key = await http.post(f"{azure.base_url}{deployment}?api-version=2024-10-21", json=chat)
        assert no_key.status_code == 401
        assert [r.path for r in azure.requests] == [deployment, f"{deployment}?api-version=2024-10-21"]
