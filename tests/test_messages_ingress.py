"""``POST /v1/messages``: the official anthropic SDK through the gateway to an OpenAI-compatible upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import httpx
import pytest

from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway, usage_rows
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream
from voidllm.testing.mock_providers import open_mock_anthropic, open_mock_azure, open_mock_gemini


@pytest.fixture
async def mock() -> AsyncIterator[MockUpstream]:
    async with open_mock_upstream(Behaviour(stream_chunks=4)) as upstream:
        yield upstream


def client(gw: RunningGateway) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.url, api_key=gw.api_key(), max_retries=0, timeout=10)


async def test_message_through_an_openai_upstream(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(
        sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url, aliases="[claude-ish]")
    )
    async with run_gateway(config) as gw:
        message = await client(gw).messages.create(
            model="claude-ish",
            max_tokens=64,
            system="be brief",
            messages=[{"role": "user", "content": "hi"}],
        )
        assert message.content[0].type == "text"
        assert message.content[0].text == "Hello from the mock."
        assert message.stop_reason == "end_turn"
        assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 8)
    sent = mock.requests[-1].json()
    assert sent["model"] == "gpt-test"
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent["max_tokens"] == 64
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [(r["model_name"], r["requested_model_name"], r["total_tokens"]) for r in rows] == [
        ("gpt-test", "claude-ish", 18)
    ]


async def test_streamed_message_through_an_openai_upstream(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url))
    async with run_gateway(config) as gw:
        async with client(gw).messages.stream(
            model="gpt-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            text = "".join([chunk async for chunk in stream.text_stream])
            final = await stream.get_final_message()
        assert text == "Hello from the mock."
        assert final.stop_reason == "end_turn"
        assert final.usage.output_tokens == 8
    assert mock.requests[-1].json()["stream_options"] == {"include_usage": True}
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [(r["stream"], r["total_tokens"], r["status"]) for r in rows] == [(True, 18, "ok")]


async def test_errors_come_back_in_anthropics_shape(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url))
    async with run_gateway(config) as gw:
        with pytest.raises(anthropic.NotFoundError) as missing:
            await client(gw).messages.create(
                model="nope", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
        bad_key = anthropic.AsyncAnthropic(base_url=gw.url, api_key="vl_uk_" + "0" * 48, max_retries=0)
        with pytest.raises(anthropic.AuthenticationError):
            await bad_key.messages.create(
                model="gpt-test", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        mock.behaviour.status = 429
        with pytest.raises(anthropic.RateLimitError) as limited:
            await client(gw).messages.create(
                model="gpt-test", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        assert limited.value.body["type"] == "error"  # type: ignore[index]
        raw = await gw.client.post("/v1/messages", content=b"{nope", headers={"x-api-key": gw.api_key()})
        assert raw.status_code == 400
        assert raw.json()["type"] == "error"
        assert raw.json()["error"]["type"] == "invalid_request_error"


async def test_bearer_auth_and_count_tokens_estimated_without_an_anthropic_upstream(
    sqlite_dsn: str, mock: MockUpstream
) -> None:
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url))
    async with run_gateway(config) as gw:
        async with httpx.AsyncClient(base_url=gw.url) as http:
            counted = await http.post(
                "/v1/messages/count_tokens",
                headers={"Authorization": f"Bearer {gw.api_key()}"},
                json={"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]},
            )
        assert counted.status_code == 200
        assert counted.headers["voidllm-token-count"] == "estimate"  # tests/test_anthropic_conventions.py
        assert counted.json() == {"input_tokens": 7}


ANTHROPIC_MODEL = """
models:
  - name: claude-test
    provider: anthropic
    base_url: {base_url}
    api_key: sk-ant-upstream
    aliases: [claude]
"""


async def test_anthropic_upstream_gets_and_returns_bytes_unchanged(sqlite_dsn: str) -> None:
    async with open_mock_anthropic() as upstream:
        config = make_config(sqlite_dsn, ANTHROPIC_MODEL.format(base_url=upstream.base_url))
        body = b'{"model": "claude-test",  "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}'
        async with run_gateway(config) as gw, httpx.AsyncClient() as direct:
            headers = {
                "x-api-key": gw.api_key(),
                "anthropic-version": "2023-06-01",
                "content-type": "application/json",
            }
            via = await gw.client.post("/v1/messages", content=body, headers=headers)
            assert upstream.last.body == body  # byte for byte
            assert upstream.last.header("x-api-key") == "sk-ant-upstream"
            straight = await direct.post(
                f"{upstream.base_url}/v1/messages",
                content=body,
                headers={**headers, "x-api-key": "sk-ant-upstream"},
            )
            assert via.status_code == 200
            assert via.content == straight.content

            streamed = body.replace(b'"max_tokens"', b'"stream": true, "max_tokens"')
            via_stream = await gw.client.post("/v1/messages", content=streamed, headers=headers)
            direct_stream = await direct.post(
                f"{upstream.base_url}/v1/messages",
                content=streamed,
                headers={**headers, "x-api-key": "sk-ant-upstream"},
            )
            assert via_stream.headers["content-type"].startswith("text/event-stream")
            assert via_stream.content == direct_stream.content

            aliased = await client(gw).messages.create(
                model="claude", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )
            assert aliased.content[0].type == "text"
            assert upstream.last.json()["model"] == "claude-test"

            counted = await gw.client.post(
                "/v1/messages/count_tokens",
                headers=headers,
                json={"model": "claude", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert counted.status_code == 200
            assert counted.json() == {"input_tokens": 10}
            assert upstream.last.path == "/v1/messages/count_tokens"
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [(r["stream"], r["status"], r["total_tokens"] > 0) for r in rows][:3] == [
        (False, "ok", True),
        (True, "ok", True),
        (False, "ok", True),
    ]


TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


async def test_tools_through_azure_and_gemini_upstreams(sqlite_dsn: str) -> None:
    async with open_mock_azure() as azure, open_mock_gemini() as gemini:
        models = f"""
models:
  - name: az
    provider: azure
    base_url: {azure.base_url}
    azure_deployment: gpt4o
    azure_api_version: 2024-10-21
    api_key: az-key
  - name: gem
    provider: gemini
    base_url: {gemini.base_url}
    api_key: g-key
"""
        azure.behaviour.tool_call = gemini.behaviour.tool_call = True
        async with run_gateway(make_config(sqlite_dsn, models)) as gw:
            sdk = client(gw)
            for model, upstream in (("az", azure), ("gem", gemini)):
                asked = await sdk.messages.create(
                    model=model,
                    max_tokens=64,
                    tools=TOOLS,
                    tool_choice={"type": "auto"},
                    messages=[{"role": "user", "content": "weather in Paris?"}],
                )
                assert asked.stop_reason == "tool_use"
                call = next(block for block in asked.content if block.type == "tool_use")
                assert (call.name, call.input) == ("get_weather", {"city": "Paris", "unit": "celsius"})
                upstream.behaviour.tool_call = False
                answered = await sdk.messages.create(
                    model=model,
                    max_tokens=64,
                    tools=TOOLS,
                    messages=[
                        {"role": "user", "content": "weather in Paris?"},
                        {
                            "role": "assistant",
                            "content": [
                                {"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}
                            ],
                        },
                        {
                            "role": "user",
                            "content": [
                                {"type": "tool_result", "tool_use_id": call.id, "content": "21 degrees"}
                            ],
                        },
                    ],
                )
                assert answered.content[0].text == "Hello from the mock."
                async with sdk.messages.stream(
                    model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
                ) as stream:
                    assert "".join([t async for t in stream.text_stream]) == "Hello from the mock."
            assert "/openai/deployments/gpt4o/chat/completions" in azure.last.path
            assert gemini.last.path.startswith("/v1beta/models/gem:streamGenerateContent")
            sent_tools = gemini.requests[0].json()["tools"][0]["functionDeclarations"][0]
            assert sent_tools["name"] == "get_weather"
