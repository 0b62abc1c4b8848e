"""The prompt guard on the OpenAI routes (``/v1`` and the playground tunnel): off, flag, redact and block on
a real gateway in front of the mock upstream, which records what it received; answers redacted, buffered and
streamed (a finding split across chunks); findings on the usage row and in the metrics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.admin_tenancy import API, admin, create_key, default_org
from tests.gateway import RunningGateway, make_config, metric_sample, model_yaml, run_gateway, usage_rows
from tests.guard_samples import SAMPLES
from voidllm.config import ConfigError
from voidllm.guard import Mode, kinds
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream

EMAIL = SAMPLES[kinds.EMAIL][1]
OTHER_EMAIL = "max.mustermann@example.org"
CARD = SAMPLES[kinds.CREDIT_CARD][1]
OPENAI_KEY = SAMPLES[kinds.OPENAI_KEY][1]


@pytest.fixture
async def mock() -> AsyncIterator[MockUpstream]:
    async with open_mock_upstream(Behaviour(stream_chunks=4)) as upstream:
        yield upstream


def guard_settings(detectors: str, *, responses: bool = False) -> str:
    return f"guard:\n  detectors: {detectors}\n  responses: {'true' if responses else 'false'}"


def client(gw: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=gw.api_key(), max_retries=0, timeout=10)


def chat_body(*contents: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": c} for c in contents], **extra}


async def post(gw: RunningGateway, path: str, body: dict[str, Any] | bytes) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"authorization": f"Bearer {gw.api_key()}", "content-type": "application/json"}
    return await gw.client.post(path, content=content, headers=headers)


async def test_guard_off_forwards_the_exact_bytes(sqlite_dsn: str, mock: MockUpstream) -> None:
    raw = b'{"model":"gpt-test",  "messages":[{"role":"user","content":"mail ' + EMAIL.encode() + b'"}]}'
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url))
    assert not config.settings.guard.active
    async with run_gateway(config) as gw:
        assert (await post(gw, "/v1/chat/completions", raw)).status_code == 200
    assert mock.requests[-1].body == raw
    [row] = await usage_rows("sqlite", sqlite_dsn)
    assert (row["guard_findings"], row["guard_action"]) == (None, None)


async def test_flag_counts_and_forwards_the_exact_bytes(sqlite_dsn: str, mock: MockUpstream) -> None:
    raw = orjson.dumps(chat_body(f"mail {EMAIL} or {OTHER_EMAIL}", f"again {EMAIL}"))
    config = make_config(
        sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url), settings=guard_settings("{pii: flag}")
    )
    flagged = metric_sample("voidllm_guard_findings_total", kind="email", action="flag", direction="request")
    async with run_gateway(config) as gw:
        assert (await post(gw, "/v1/chat/completions", raw)).status_code == 200
    assert mock.requests[-1].body == raw
    [row] = await usage_rows("sqlite", sqlite_dsn)
    assert json.loads(row["guard_findings"]) == {"request": {"email": 3}}
    assert row["guard_action"] == "flag"
    after = metric_sample("voidllm_guard_findings_total", kind="email", action="flag", direction="request")
    assert after - flagged == 3


async def test_redact_replaces_values_with_stable_placeholders(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(
        sqlite_dsn,
        "models:" + model_yaml("gpt-test", mock.base_url),
        settings=guard_settings("{email: redact, credit_card: redact, phone: flag}"),
    )
    async with run_gateway(config) as gw:
        answer = await client(gw).chat.completions.create(
            model="gpt-test",
            messages=[
                {"role": "system", "content": f"Support desk. Escalate to {OTHER_EMAIL}."},
                {"role": "user", "content": f"I am {EMAIL}, card {CARD}"},
                {"role": "assistant", "content": "Noted."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": f"Again: {EMAIL.upper()} and {OTHER_EMAIL}"}],
                },
            ],
        )
        assert answer.choices[0].message.content == "Hello from the mock."
    sent = mock.requests[-1].json()
    assert [m["content"] for m in sent["messages"]] == [
        "Support desk. Escalate to [EMAIL_1].",
        "I am [EMAIL_2], card [CREDIT_CARD_1]",
        "Noted.",
        [{"type": "text", "text": "Again: [EMAIL_2] and [EMAIL_1]"}],
    ]
    assert EMAIL.encode() not in mock.requests[-1].body
    [row] = await usage_rows("sqlite", sqlite_dsn)
    assert json.loads(row["guard_findings"]) == {"request": {"credit_card": 1, "email": 4}}
    assert (row["guard_action"], row["status"]) == ("redact", "ok")


async def test_redact_on_completions_embeddings_and_responses(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(
        sqlite_dsn,
        "models:" + model_yaml("gpt-test", mock.base_url),
        settings=guard_settings("{pii: redact}"),
    )
    async with run_gateway(config) as gw:
        oai = client(gw)
        await oai.completions.create(model="gpt-test", prompt=f"Dear {EMAIL},")
        assert mock.requests[-1].json()["prompt"] == "Dear [EMAIL_1],"
        await oai.embeddings.create(model="gpt-test", input=[f"card {CARD}", "plain"])
        assert mock.requests[-1].json()["input"] == ["card [CREDIT_CARD_1]", "plain"]
        await oai.responses.create(
            model="gpt-test",
            instructions=f"answer {OTHER_EMAIL}",
            input=[{"role": "user", "content": [{"type": "input_text", "text": f"from {EMAIL}"}]}],
        )
        sent = mock.requests[-1].json()
        assert sent["instructions"] == "answer [EMAIL_1]"
        assert sent["input"][0]["content"][0]["text"] == "from [EMAIL_2]"


async def test_block_refuses_with_content_blocked(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(
        sqlite_dsn,
        "models:" + model_yaml("gpt-test", mock.base_url),
        settings=guard_settings("{credentials: block, email: redact}"),
    )
    blocked = metric_sample("voidllm_guard_blocked_total", route="/v1/chat/completions")
    async with run_gateway(config) as gw:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            await client(gw).chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": f"my key {OPENAI_KEY}, mail {EMAIL}"}]
            )
        assert refused.value.status_code == 403
        assert refused.value.code == "content_blocked"
        assert "openai_key" in refused.value.message
        assert OPENAI_KEY not in str(refused.value.body)
        assert EMAIL not in str(refused.value.body)
        assert "email" not in refused.value.message  # only the kinds that block are named
    assert mock.requests == []
    assert metric_sample("voidllm_guard_blocked_total", route="/v1/chat/completions") - blocked == 1
    [row] = await usage_rows("sqlite", sqlite_dsn)
    assert (row["status"], row["status_code"], row["guard_action"]) == ("blocked", 403, "block")
    assert json.loads(row["guard_findings"]) == {"request": {"email": 1, "openai_key": 1}}
    assert (row["model_name"], row["total_tokens"]) == ("gpt-test", 0)


async def test_the_playground_tunnel_is_guarded(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(
        sqlite_dsn,
        "models:" + model_yaml("gpt-test", mock.base_url),
        settings=guard_settings("{email: redact, openai_key: block}"),
    )
    async with run_gateway(config) as gw:
        ok = await post(gw, "/api/v1/playground/chat/completions", chat_body(f"hi {EMAIL}"))
        assert ok.status_code == 200
        assert mock.requests[-1].json()["messages"][0]["content"] == "hi [EMAIL_1]"
        refused = await post(gw, "/api/v1/playground/chat/completions", chat_body(f"key {OPENAI_KEY}"))
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "content_blocked"
    assert len(mock.requests) == 1


@pytest.mark.parametrize("detectors", [None, "{pii: flag}"], ids=["off", "flag"])
async def test_the_playground_tunnel_off_and_flag_forward_the_exact_bytes(
    sqlite_dsn: str, mock: MockUpstream, detectors: str | None
) -> None:
    raw = f'{{"model":"gpt-test",  "messages":[{{"role":"user","content":"mail {EMAIL} or {OTHER_EMAIL}"}}]}}'
    settings = "" if detectors is None else guard_settings(detectors)
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url), settings=settings)
    assert config.settings.guard.active is (detectors is not None)
    flagged = metric_sample("voidllm_guard_findings_total", kind="email", action="flag", direction="request")
    async with run_gateway(config) as gw:
        answer = await post(gw, "/api/v1/playground/chat/completions", raw.encode())
        assert answer.status_code == 200, answer.text
    assert mock.requests[-1].body == raw.encode()
    [row] = await usage_rows("sqlite", sqlite_dsn)
    after = metric_sample("voidllm_guard_findings_total", kind="email", action="flag", direction="request")
    if detectors is None:
        assert (row["guard_findings"], row["guard_action"]) == (None, None)
        assert after == flagged
    else:
        assert (json.loads(row["guard_findings"]), row["guard_action"]) == ({"request": {"email": 2}}, "flag")
        assert after - flagged == 2


async def test_buffered_answers_are_redacted(sqlite_dsn: str, mock: MockUpstream) -> None:
    mock.behaviour.completion_text = f"Sure, {EMAIL} and {OTHER_EMAIL} are noted."
    config = make_config(
        sqlite_dsn,
        "models:" + model_yaml("gpt-test", mock.base_url),
        settings=guard_settings("{email: redact}", responses=True),
    )
    async with run_gateway(config) as gw:
        answer = await client(gw).chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": f"note {OTHER_EMAIL}"}]
        )
        assert answer.choices[0].message.content == "Sure, [EMAIL_2] and [EMAIL_1] are noted."
        text = await client(gw).completions.create(model="gpt-test", prompt="x")
        assert text.choices[0].text == "Sure, [EMAIL_1] and [EMAIL_2] are noted."
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [json.loads(r["guard_findings"]) for r in rows] == [
        {"request": {"email": 1}, "response": {"email": 2}},
        {"response": {"email": 2}},
    ]


async def test_answers_are_untouched_without_responses(sqlite_dsn: str, mock: MockUpstream) -> None:
    mock.behaviour.completion_text = f"Sure, {EMAIL}."
    config = make_config(
        sqlite_dsn,
        "models:" + model_yaml("gpt-test", mock.base_url),
        settings=guard_settings("{email: redact}"),
    )
    async with run_gateway(config) as gw:
        answer = await client(gw).chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == f"Sure, {EMAIL}."


@pytest.mark.parametrize("chunks", [3, 4, 7, 29])
async def test_streamed_answers_are_redacted_across_chunks(
    sqlite_dsn: str, mock: MockUpstream, chunks: int
) -> None:
    text = f"Write to {EMAIL} or pay with {CARD} today."
    mock.behaviour.completion_text, mock.behaviour.stream_chunks = text, chunks
    config = make_config(
        sqlite_dsn,
        "models:" + model_yaml("gpt-test", mock.base_url),
        settings=guard_settings("{pii: redact}", responses=True),
    )
    async with run_gateway(config) as gw:
        stream = await client(gw).chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        deltas = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    assert "".join(deltas) == "Write to [EMAIL_1] or pay with [CREDIT_CARD_1] today."
    assert not any("jane" in d or "4111" in d or "example" in d for d in deltas)
    [row] = await usage_rows("sqlite", sqlite_dsn)
    assert json.loads(row["guard_findings"]) == {"response": {"credit_card": 1, "email": 1}}


async def test_streamed_text_completion_is_redacted(sqlite_dsn: str, mock: MockUpstream) -> None:
    mock.behaviour.completion_text, mock.behaviour.stream_chunks = f"mail {EMAIL}", 5
    config = make_config(
        sqlite_dsn,
        "models:" + model_yaml("gpt-test", mock.base_url),
        settings=guard_settings("{email: redact}", responses=True),
    )
    async with run_gateway(config) as gw:
        stream = await client(gw).completions.create(model="gpt-test", prompt=f"{EMAIL}", stream=True)
        pieces = [chunk.choices[0].text async for chunk in stream if chunk.choices]
    assert "".join(pieces) == "mail [EMAIL_1]"
    assert mock.requests[-1].json()["prompt"] == "[EMAIL_1]"


async def put_guard(gw: RunningGateway, path: str, guard: dict[str, Any] | None) -> None:
    response = await gw.client.put(f"{API}{path}", headers=admin(gw), json={"guard": guard})
    assert response.status_code == 200, response.text


async def test_scope_policies_merge_with_the_baseline(sqlite_dsn: str, mock: MockUpstream) -> None:
    """settings.guard flags e-mail addresses; an organisation's policy redacts them for its keys, a key's
    blocks card numbers, a model's redacts card numbers for every key: the most restrictive mode wins, per
    kind, and responses are redacted as soon as one scope asks."""
    mock.behaviour.completion_text = f"Reply to {OTHER_EMAIL}."
    config = make_config(
        sqlite_dsn,
        "models:" + model_yaml("gpt-test", mock.base_url),
        settings=guard_settings("{email: flag}"),
    )
    async with run_gateway(config) as gw:
        org = await default_org(gw)
        me = (await gw.client.get(f"{API}/me", headers=admin(gw))).json()["id"]
        created = await create_key(gw, org, user_id=me)
        key = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=created["key"], max_retries=0, timeout=10)
        text = f"{EMAIL} {CARD}"
        messages: Any = [{"role": "user", "content": text}]

        await key.chat.completions.create(model="gpt-test", messages=messages)
        assert mock.requests[-1].json()["messages"][0]["content"] == text  # the baseline flags only

        await put_guard(gw, f"/orgs/{org}/policy", {"detectors": {"email": "redact"}})
        await key.chat.completions.create(model="gpt-test", messages=messages)
        assert mock.requests[-1].json()["messages"][0]["content"] == f"[EMAIL_1] {CARD}"

        models = (await gw.client.get(f"{API}/models", headers=admin(gw))).json()["data"]
        model_id = next(m["id"] for m in models if m["name"] == "gpt-test")
        await put_guard(
            gw, f"/models/{model_id}/policy", {"detectors": {"credit_card": "redact"}, "responses": True}
        )
        answer = await key.chat.completions.create(model="gpt-test", messages=messages)
        assert mock.requests[-1].json()["messages"][0]["content"] == "[EMAIL_1] [CREDIT_CARD_1]"
        assert answer.choices[0].message.content == "Reply to [EMAIL_2]."
        # the bootstrap key has no policy of its own, but its organisation's and the model's apply
        await client(gw).chat.completions.create(model="gpt-test", messages=messages)
        assert mock.requests[-1].json()["messages"][0]["content"] == "[EMAIL_1] [CREDIT_CARD_1]"

        await put_guard(
            gw, f"/orgs/{org}/keys/{created['id']}/policy", {"detectors": {"credit_card": "block"}}
        )
        with pytest.raises(openai.PermissionDeniedError) as refused:
            await key.chat.completions.create(model="gpt-test", messages=messages)
        assert refused.value.code == "content_blocked"
        await client(gw).chat.completions.create(model="gpt-test", messages=messages)  # another key: redacted

        for path in (
            f"/orgs/{org}/policy",
            f"/models/{model_id}/policy",
            f"/orgs/{org}/keys/{created['id']}/policy",
        ):
            await put_guard(gw, path, None)
        await key.chat.completions.create(model="gpt-test", messages=messages)
        assert mock.requests[-1].json()["messages"][0]["content"] == text


@pytest.mark.parametrize("chunks", [5, 17])
async def test_streamed_responses_api_is_redacted(sqlite_dsn: str, mock: MockUpstream, chunks: int) -> None:
    mock.behaviour.completion_text, mock.behaviour.stream_chunks = f"Contact {EMAIL} today.", chunks
    mock.behaviour.response_function_call = orjson.dumps({"to": EMAIL, "subject": "Invoice"}).decode()
    redacted_arguments = {"to": "[EMAIL_1]", "subject": "Invoice"}  # the text's placeholder
    config = make_config(
        sqlite_dsn,
        "models:" + model_yaml("gpt-test", mock.base_url),
        settings=guard_settings("{email: redact}", responses=True),
    )
    async with run_gateway(config) as gw:
        stream = await client(gw).responses.create(model="gpt-test", input="hi", stream=True)
        deltas: list[str] = []
        arguments: list[str] = []
        kinds_seen: list[str] = []
        done_arguments = final = ""
        final_arguments: Any = None
        async for event in stream:
            kinds_seen.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
            elif event.type == "response.function_call_arguments.delta":
                arguments.append(event.delta)
            elif event.type == "response.function_call_arguments.done":
                done_arguments = event.arguments
            elif event.type == "response.completed":
                final = event.response.output_text
                call = next(o for o in event.response.output if o.type == "function_call")
                final_arguments = call.arguments
    assert "".join(deltas) == "Contact [EMAIL_1] today."
    assert not any("jane" in delta for delta in deltas)
    assert final == "Contact [EMAIL_1] today."
    assert orjson.loads("".join(arguments)) == redacted_arguments
    assert not any("jane" in delta or "example.co" in delta for delta in arguments)
    last = max(i for i, kind in enumerate(kinds_seen) if kind == "response.function_call_arguments.delta")
    assert kinds_seen[last + 1] == "response.function_call_arguments.done"
    assert orjson.loads(done_arguments) == orjson.loads(final_arguments) == redacted_arguments
    [row] = await usage_rows("sqlite", sqlite_dsn)
    assert json.loads(row["guard_findings"]) == {"response": {"email": 2}}


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("guard:\n  detectors: {emial: redact}", "settings.guard.detectors.emial: unknown detector"),
        ("guard:\n  detectors: {email: hide}", "settings.guard.detectors.email: expected one of off, flag"),
        ("guard:\n  respones: true", "settings.guard.respones: unknown key"),
        ("guard:\n  responses: 1", "settings.guard.responses: expected true or false"),
        ("guard: [email]", "settings.guard: expected an object"),
    ],
)
def test_settings_guard_is_strict(yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        make_config("/tmp/unused.db", settings=yaml_text)
    assert message in str(refused.value)


def test_settings_guard_groups_and_kinds() -> None:
    settings = guard_settings("{pii: redact, phone: off, iban: 'off'}", responses=True)  # YAML: off is false
    config = make_config("/tmp/unused.db", settings=settings)
    policy = config.settings.guard
    assert policy.mode("email") is Mode.REDACT
    assert policy.mode("phone") is Mode.OFF
    assert policy.mode("iban") is Mode.OFF
    assert policy.mode("openai_key") is Mode.OFF
    assert policy.responses


async def test_rerank_moderations_and_images_are_guarded(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(
        sqlite_dsn,
        "models:" + model_yaml("gpt-test", mock.base_url),
        settings=guard_settings("{pii: redact}"),
    )
    async with run_gateway(config) as gw:
        body = {
            "model": "gpt-test",
            "query": f"who is {EMAIL}",
            "documents": [f"card {CARD}", {"text": EMAIL}],
        }
        assert (await post(gw, "/v1/rerank", body)).status_code == 200
        sent = mock.requests[-1].json()
        assert sent["query"] == "who is [EMAIL_1]"
        assert sent["documents"] == ["card [CREDIT_CARD_1]", {"text": "[EMAIL_1]"}]
        assert (await post(gw, "/v1/moderations", {"model": "gpt-test", "input": EMAIL})).status_code == 200
        assert mock.requests[-1].json()["input"] == "[EMAIL_1]"
        draw = {"model": "gpt-test", "prompt": f"a card reading {CARD}"}
        assert (await post(gw, "/v1/images/generations", draw)).status_code == 200
        assert mock.requests[-1].json()["prompt"] == "a card reading [CREDIT_CARD_1]"
