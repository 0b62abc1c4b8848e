"""The prompt guard on ``POST /v1/messages`` (the anthropic SDK): block in Anthropic's envelope, redact before
the translation to an OpenAI upstream and in the native body to an Anthropic upstream, answers redacted
(translated, native, streamed with a finding split across content block deltas); off and flag forward what
was sent (flag counting the kinds)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anthropic
import pytest

from tests.gateway import RunningGateway, make_config, metric_sample, model_yaml, run_gateway, usage_rows
from tests.guard_samples import SAMPLES
from voidllm.guard import kinds
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream
from voidllm.testing.mock_providers import MockProvider, ProviderBehaviour, open_mock_anthropic

EMAIL = SAMPLES[kinds.EMAIL][1]
IBAN = SAMPLES[kinds.IBAN][1]
GITHUB = SAMPLES[kinds.GITHUB_TOKEN][1]
CLAUDE = """
  - name: claude-test
    provider: anthropic
    base_url: {url}
    api_key: sk-ant-upstream
"""


@pytest.fixture
async def mock() -> AsyncIterator[MockUpstream]:
    async with open_mock_upstream(Behaviour(stream_chunks=4)) as upstream:
        yield upstream


@pytest.fixture
async def claude() -> AsyncIterator[MockProvider]:
    async with open_mock_anthropic(ProviderBehaviour(stream_chunks=9)) as upstream:
        yield upstream


def guard(detectors: str, *, responses: bool = False) -> str:
    return f"guard:\n  detectors: {detectors}\n  responses: {'true' if responses else 'false'}"


def models(mock: MockUpstream, claude: MockProvider) -> str:
    return "models:" + model_yaml("gpt-test", mock.base_url) + CLAUDE.format(url=claude.base_url)


def client(gw: RunningGateway) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.url, api_key=gw.api_key(), max_retries=0, timeout=10)


async def test_block_answers_in_anthropics_envelope(
    sqlite_dsn: str, mock: MockUpstream, claude: MockProvider
) -> None:
    config = make_config(sqlite_dsn, models(mock, claude), settings=guard("{credentials: block}"))
    before = metric_sample("voidllm_guard_blocked_total", route="/v1/messages")
    async with run_gateway(config) as gw:
        for model in ("gpt-test", "claude-test"):
            with pytest.raises(anthropic.PermissionDeniedError) as refused:
                await client(gw).messages.create(
                    model=model,
                    max_tokens=16,
                    system=f"deploy with {GITHUB}",
                    messages=[{"role": "user", "content": "go"}],
                )
            body = refused.value.body
            assert isinstance(body, dict)
            assert body["type"] == "error"
            assert body["error"]["type"] == "permission_error"
            assert "github_token" in body["error"]["message"]
            assert GITHUB not in json.dumps(body)
    assert mock.requests == []
    assert claude.requests == []
    after = metric_sample("voidllm_guard_blocked_total", route="/v1/messages")
    assert after - before == 2
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [(r["model_name"], r["status"], r["status_code"]) for r in rows] == [
        ("gpt-test", "blocked", 403),
        ("claude-test", "blocked", 403),
    ]


async def test_redact_reaches_both_kinds_of_upstream(
    sqlite_dsn: str, mock: MockUpstream, claude: MockProvider
) -> None:
    config = make_config(sqlite_dsn, models(mock, claude), settings=guard("{pii: redact}"))
    messages: list[anthropic.types.MessageParam] = [
        {"role": "user", "content": f"I am {EMAIL}"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "pay", "input": {"to": IBAN, "n": 1}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": f"paid {IBAN}"},
                {"type": "text", "text": f"thanks, {EMAIL.upper()}"},
            ],
        },
    ]
    tools: list[anthropic.types.ToolParam] = [{"name": "pay", "input_schema": {"type": "object"}}]
    async with run_gateway(config) as gw:
        for model in ("gpt-test", "claude-test"):
            await client(gw).messages.create(
                model=model, max_tokens=16, system=f"for {EMAIL}", messages=messages, tools=tools
            )
    translated = mock.requests[-1].json()["messages"]
    assert translated[0] == {"role": "system", "content": "for [EMAIL_1]"}
    assert translated[1]["content"] == "I am [EMAIL_1]"
    assert json.loads(translated[2]["tool_calls"][0]["function"]["arguments"]) == {"to": "[IBAN_1]", "n": 1}
    assert translated[3]["content"] == "paid [IBAN_1]"
    native = claude.requests[-1].json()
    assert native["system"] == "for [EMAIL_1]"
    assert native["messages"][0]["content"] == "I am [EMAIL_1]"
    assert native["messages"][1]["content"][0]["input"] == {"to": "[IBAN_1]", "n": 1}
    assert native["messages"][2]["content"][0]["content"] == "paid [IBAN_1]"
    assert native["messages"][2]["content"][1]["text"] == "thanks, [EMAIL_1]"
    assert EMAIL.encode() not in claude.requests[-1].body
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [json.loads(r["guard_findings"]) for r in rows] == [{"request": {"email": 3, "iban": 2}}] * 2


async def test_answers_are_redacted_translated_and_native(
    sqlite_dsn: str, mock: MockUpstream, claude: MockProvider
) -> None:
    mock.behaviour.completion_text = f"Reach {EMAIL}."
    claude.behaviour.text = f"Your IBAN {IBAN} and {EMAIL}."
    config = make_config(sqlite_dsn, models(mock, claude), settings=guard("{pii: redact}", responses=True))
    async with run_gateway(config) as gw:
        answer = await client(gw).messages.create(
            model="gpt-test", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.content[0].type == "text"
        assert answer.content[0].text == "Reach [EMAIL_1]."
        native = await client(gw).messages.create(
            model="claude-test", max_tokens=16, messages=[{"role": "user", "content": f"mine: {EMAIL}"}]
        )
        assert native.content[0].type == "text"
        assert native.content[0].text == "Your IBAN [IBAN_1] and [EMAIL_1]."


@pytest.mark.parametrize("model", ["gpt-test", "claude-test"])
async def test_streamed_answers_are_redacted_across_deltas(
    sqlite_dsn: str, mock: MockUpstream, claude: MockProvider, model: str
) -> None:
    text = f"Send it to {EMAIL} or {IBAN}, thanks."
    mock.behaviour.completion_text, mock.behaviour.stream_chunks = text, 11
    claude.behaviour.text, claude.behaviour.stream_chunks = text, 11
    config = make_config(sqlite_dsn, models(mock, claude), settings=guard("{pii: redact}", responses=True))
    async with run_gateway(config) as gw:
        async with client(gw).messages.stream(
            model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            pieces = [piece async for piece in stream.text_stream]
            final = await stream.get_final_message()
    assert "".join(pieces) == "Send it to [EMAIL_1] or [IBAN_1], thanks."
    assert not any("jane" in piece or "3704" in piece for piece in pieces)
    assert final.content[0].type == "text"
    assert final.content[0].text == "Send it to [EMAIL_1] or [IBAN_1], thanks."
    [row] = await usage_rows("sqlite", sqlite_dsn)
    assert json.loads(row["guard_findings"]) == {"response": {"email": 1, "iban": 1}}


def flagged(before: dict[str, float] | None = None) -> dict[str, float]:
    """E-mail addresses and IBANs flagged in requests (``voidllm_guard_findings_total``), since ``before``."""
    labels = {"action": "flag", "direction": "request"}
    now = {
        kind: metric_sample("voidllm_guard_findings_total", kind=kind, **labels) for kind in ("email", "iban")
    }
    return {kind: n - (before or {}).get(kind, 0.0) for kind, n in now.items()}


@pytest.mark.parametrize("detectors", [None, "{pii: flag}"], ids=["off", "flag"])
async def test_off_and_flag_forward_what_was_sent(
    sqlite_dsn: str, mock: MockUpstream, claude: MockProvider, detectors: str | None
) -> None:
    """Off and flag change nothing: the native upstream gets the exact bytes, the translated one every value
    as it was; flag counts the kinds on the usage rows and in the metrics, off records nothing."""
    settings = "" if detectors is None else guard(detectors)
    config = make_config(sqlite_dsn, models(mock, claude), settings=settings)
    assert config.settings.guard.active is (detectors is not None)
    before = flagged()
    content = f"pay {IBAN} or mail {EMAIL}"
    raw = f'{{"model":"%s",  "max_tokens":16, "system":"for {EMAIL}",'.encode()
    raw += f'"messages":[{{"role":"user","content":"{content}"}}]}}'.encode()
    async with run_gateway(config) as gw:
        headers = {
            "x-api-key": gw.api_key(),
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
        }
        for model in (b"claude-test", b"gpt-test"):
            answer = await gw.client.post("/v1/messages", headers=headers, content=raw % model)
            assert answer.status_code == 200, answer.text
    assert claude.requests[-1].body == raw % b"claude-test"
    assert [m["content"] for m in mock.requests[-1].json()["messages"]] == [
        f"for {EMAIL}",
        content,
    ]
    rows = await usage_rows("sqlite", sqlite_dsn)
    if detectors is None:
        assert [(r["guard_findings"], r["guard_action"]) for r in rows] == [(None, None)] * 2
        assert flagged(before) == {"email": 0, "iban": 0}
    else:
        findings = [(json.loads(r["guard_findings"]), r["guard_action"]) for r in rows]
        assert findings == [({"request": {"email": 2, "iban": 1}}, "flag")] * 2
        assert flagged(before) == {"email": 4, "iban": 2}
