"""``POST /v1/messages/count_tokens`` for models not served by Anthropic (issue 18 point 3): a tiktoken
estimate computed offline and marked as one, through a real gateway with the ``anthropic`` SDK and raw
requests; models served by Anthropic only keep passing it through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import httpx
import pytest
import tiktoken.load

from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway
from voidllm.proxy import tokencount
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream
from voidllm.testing.mock_providers import open_mock_anthropic

VERSION = {"anthropic-version": "2023-06-01"}
HI = [{"role": "user", "content": "Hello, world"}]


@pytest.fixture
async def mock() -> AsyncIterator[MockUpstream]:
    async with open_mock_upstream(Behaviour()) as upstream:
        yield upstream


def sdk(gw: RunningGateway) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.url, api_key=gw.api_key(), max_retries=0, timeout=10)


def two_models(base_url: str) -> str:
    return "models:" + model_yaml("alpha", base_url, aliases="[first]") + model_yaml("beta", base_url)


MIXED = """
models:
  - name: mixed
    provider: openai
    base_url: {openai}
    strategy: round-robin
    deployments:
      - name: a
        provider: anthropic
        base_url: {anthropic}
        api_key: sk-ant-upstream
      - name: o
        provider: openai
        base_url: {openai}
  - name: claude-test
    provider: anthropic
    base_url: {anthropic}
    api_key: sk-ant-upstream
"""


async def test_count_tokens_is_estimated_for_models_not_served_by_anthropic(
    sqlite_dsn: str, mock: MockUpstream
) -> None:
    async with open_mock_anthropic() as claude:
        models = two_models(mock.base_url) + MIXED.format(openai=mock.base_url, anthropic=claude.base_url)
        models = models.replace("\nmodels:\n", "\n")
        async with run_gateway(make_config(sqlite_dsn, models)) as gw:
            client = sdk(gw)
            raw = await client.messages.with_raw_response.count_tokens(model="first", messages=HI)
            assert raw.headers["voidllm-token-count"] == "estimate"
            # "Hello, world" is 3 tokens in o200k_base; 3 for the message's framing, 3 for the reply's
            assert (await raw.parse()).input_tokens == 9
            assert mock.requests == []  # answered by the gateway

            tools: list[anthropic.types.ToolParam] = [
                {"name": "weather", "description": "The weather", "input_schema": {"type": "object"}}
            ]
            rich = await client.messages.count_tokens(
                model="beta",
                system="Be brief.",
                tools=tools,
                messages=[
                    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}}
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                        ],
                    },
                ],
            )
            tokenizer = tokencount.encoding()
            texts = [
                "Be brief.",
                "Weather in Paris?",
                "weather",
                '{"city":"Paris"}',
                "sunny",
                '{"name":"weather","description":"The weather","input_schema":{"type":"object"}}',
            ]
            expected = (
                sum(len(tokenizer.encode_ordinary(t)) for t in texts) + 3 * 3 + 3 + tokencount.IMAGE_TOKENS
            )
            assert rich.input_tokens == expected

            # a model mixing providers is estimated too; one served by Anthropic only is passed through
            for _ in range(2):
                assert (await client.messages.count_tokens(model="mixed", messages=HI)).input_tokens == 9
            passed = await client.messages.with_raw_response.count_tokens(model="claude-test", messages=HI)
            assert "voidllm-token-count" not in passed.headers
            assert (await passed.parse()).input_tokens == 10  # the mock's count
            assert claude.last.path == "/v1/messages/count_tokens"

            for body, field in (
                ({"model": "beta"}, "messages"),
                ({"model": "beta", "messages": [{"role": "user"}]}, "messages.0"),
                ({"model": "beta", "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
                ({"model": "beta", "messages": [{"role": "user", "content": ["x"]}]}, "messages.0.content.0"),
                ({"model": "beta", "messages": HI, "tools": {}}, "tools"),
                ({"model": "beta", "messages": HI, "system": 1}, "system"),
            ):
                refused = await gw.client.post(
                    "/v1/messages/count_tokens", json=body, headers={"X-Api-Key": gw.api_key()}
                )
                assert refused.status_code == 400, body
                assert refused.json()["type"] == "error"
                assert refused.json()["error"]["type"] == "invalid_request_error"
                assert refused.json()["error"]["message"].startswith(field + ":")


def test_the_encoding_loads_from_the_package_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(blobpath: str) -> bytes:
        raise AssertionError(f"tiktoken tried to fetch {blobpath}")

    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    tokenizer = tokencount._load()
    assert tokenizer.name == "o200k_base"
    assert tokenizer.n_vocab == 200019
    assert tokenizer.encode_ordinary("hello world") == [24912, 2375]


async def test_raw_count_tokens_over_http(sqlite_dsn: str, mock: MockUpstream) -> None:
    """curl's view: Bearer works too, and the answer is plain JSON."""
    async with run_gateway(make_config(sqlite_dsn, two_models(mock.base_url))) as gw:
        async with httpx.AsyncClient(base_url=gw.url) as http:
            counted = await http.post(
                "/v1/messages/count_tokens",
                headers={"Authorization": f"Bearer {gw.api_key()}", **VERSION},
                json={"model": "beta", "messages": HI},
            )
        assert counted.status_code == 200
        assert counted.headers["request-id"] == counted.headers["x-request-id"]
        assert counted.headers["content-type"] == "application/json"
        assert counted.json() == {"input_tokens": 9}
