"""The prompt guard and request policies on multipart uploads (audio transcriptions and translations, image
edits and variations), end to end: raw multipart bodies -> a real gateway -> the mock upstream on real
sockets, which records the body exactly as it arrived.

With a guard kind on or parameter rules in a request policy, the gateway holds the whole body before anything
goes upstream, whether the text field comes before the file part or after it (where the streamed path would
already be sending): block refuses with 403 ``content_blocked``, redact rewrites only the field's value
(the file part byte-identical, the Content-Length that of the new body), flag counts; a policy refuses a
form field by name or out of its bounds (400 naming it, never its value). Without either the body streams
on as before (a chunked upload stays chunked upstream).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.admin_tenancy import API, admin, bearer, create_key, default_org
from tests.gateway import RunningGateway, make_config, metric_sample, model_yaml, run_gateway, usage_rows
from tests.guard_samples import SAMPLES
from tests.test_multipart_order import AUDIO, CONTENT_TYPE, Part, chunked, form, with_model
from voidllm.config import Config
from voidllm.guard import kinds
from voidllm.testing.mock_openai import MockUpstream, open_mock_upstream

EMAIL = SAMPLES[kinds.EMAIL][1]
OPENAI_KEY = SAMPLES[kinds.OPENAI_KEY][1]
FILE: Part = ("file", AUDIO, True)
MODEL: Part = ("model", b"whisper", False)
LANGUAGE: Part = ("language", b"en", False)
SECRET_PROMPT: Part = ("prompt", f"Names: Jane, {EMAIL}, and again {EMAIL.upper()}".encode(), False)
REDACTED_PROMPT: Part = ("prompt", b"Names: Jane, [EMAIL_1], and again [EMAIL_1]", False)
ORDERS = {  # where the prompt sits: before the file, or after it (where the streamed path sends already)
    "prompt, model, file": [SECRET_PROMPT, MODEL, FILE, LANGUAGE],
    "model, file, prompt": [MODEL, FILE, LANGUAGE, SECRET_PROMPT],
    "file, model, prompt": [FILE, MODEL, SECRET_PROMPT],
}
MARKER = "ZK-FORM-MARKER-51c2"  # a value that must never come back in a refusal


@pytest.fixture
async def mock() -> AsyncIterator[MockUpstream]:
    async with open_mock_upstream() as upstream:
        yield upstream


def config(dsn: str, mock: MockUpstream, detectors: str | None) -> Config:
    models = "models:" + model_yaml("whisper-test", mock.base_url, aliases="[whisper]")
    settings = "" if detectors is None else f"guard:\n  detectors: {detectors}"
    return make_config(dsn, models, settings=settings)


def headers(key: str) -> dict[str, str]:
    return {**bearer(key), "Content-Type": CONTENT_TYPE}


def replaced(parts: list[Part], old: Part, new: Part) -> list[Part]:
    return [new if part == old else part for part in parts]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_redact_rewrites_the_prompt_and_nothing_else(
    sqlite_dsn: str, mock: MockUpstream, order: str, declared: bool
) -> None:
    parts = ORDERS[order]
    body = form(parts)
    async with run_gateway(config(sqlite_dsn, mock, "{email: redact}")) as gw:
        answer = await gw.client.post(
            "/v1/audio/transcriptions",
            headers=headers(gw.api_key()),
            content=body if declared else chunked(body),
        )
        assert answer.status_code == 200, answer.text
    [received] = mock.requests
    expected = form(with_model(replaced(parts, SECRET_PROMPT, REDACTED_PROMPT), b"whisper-test"))
    assert received.body == expected  # the file part byte-identical, only the two values changed
    assert received.header("content-length") == str(len(expected))  # held: sent whole with its length
    assert received.form["prompt"] == REDACTED_PROMPT[1].decode()
    assert EMAIL.encode() not in received.body
    [row] = await usage_rows("sqlite", sqlite_dsn)
    assert json.loads(row["guard_findings"]) == {"request": {"email": 2}}
    assert (row["guard_action"], row["status"]) == ("redact", "ok")


@pytest.mark.parametrize("order", ["prompt first", "prompt after the file"])
async def test_block_refuses_before_anything_goes_upstream(
    sqlite_dsn: str, mock: MockUpstream, order: str
) -> None:
    prompt: Part = ("prompt", f"my key {OPENAI_KEY}".encode(), False)
    parts = [prompt, MODEL, FILE] if order == "prompt first" else [MODEL, FILE, prompt]
    route = "/v1/images/edits"
    blocked = metric_sample("voidllm_guard_blocked_total", route=route)
    async with run_gateway(config(sqlite_dsn, mock, "{credentials: block}")) as gw:
        answer = await gw.client.post(route, headers=headers(gw.api_key()), content=chunked(form(parts)))
        assert answer.status_code == 403
        error = answer.json()["error"]
        assert error["code"] == "content_blocked"
        assert "openai_key" in error["message"]
        assert OPENAI_KEY not in answer.text
    assert mock.requests == []
    assert metric_sample("voidllm_guard_blocked_total", route=route) - blocked == 1
    [row] = await usage_rows("sqlite", sqlite_dsn)
    assert (row["status"], row["status_code"], row["guard_action"]) == ("blocked", 403, "block")
    assert json.loads(row["guard_findings"]) == {"request": {"openai_key": 1}}


async def test_flag_counts_and_forwards_the_body_as_sent(sqlite_dsn: str, mock: MockUpstream) -> None:
    parts = ORDERS["model, file, prompt"]
    flagged = metric_sample("voidllm_guard_findings_total", kind="email", action="flag", direction="request")
    async with run_gateway(config(sqlite_dsn, mock, "{pii: flag}")) as gw:
        answer = await gw.client.post(
            "/v1/audio/translations", headers=headers(gw.api_key()), content=form(parts)
        )
        assert answer.status_code == 200, answer.text
    [received] = mock.requests
    assert received.body == form(with_model(parts, b"whisper-test"))
    [row] = await usage_rows("sqlite", sqlite_dsn)
    assert json.loads(row["guard_findings"]) == {"request": {"email": 2}}
    assert row["guard_action"] == "flag"
    after = metric_sample("voidllm_guard_findings_total", kind="email", action="flag", direction="request")
    assert after - flagged == 2


async def test_guard_off_keeps_the_streamed_path(sqlite_dsn: str, mock: MockUpstream) -> None:
    """Without guard or parameter rules a model-first upload streams on: a chunked body stays chunked (a held
    one would go with a Content-Length), and the prompt is not looked at."""
    parts = ORDERS["model, file, prompt"]
    async with run_gateway(config(sqlite_dsn, mock, None)) as gw:
        answer = await gw.client.post(
            "/v1/audio/transcriptions", headers=headers(gw.api_key()), content=chunked(form(parts))
        )
        assert answer.status_code == 200, answer.text
    [received] = mock.requests
    assert received.body == form(with_model(parts, b"whisper-test"))
    assert received.header("transfer-encoding") == "chunked"
    assert received.header("content-length") is None
    [row] = await usage_rows("sqlite", sqlite_dsn)
    assert (row["guard_findings"], row["guard_action"]) == (None, None)


async def policy_key(gw: RunningGateway, policy: dict[str, object]) -> str:
    """A fresh key of the bootstrap admin with ``policy`` as its request policy."""
    org = await default_org(gw)
    me = (await gw.client.get(f"{API}/me", headers=admin(gw))).json()["id"]
    key = await create_key(gw, org, user_id=me)
    path = f"{API}/orgs/{org}/keys/{key['id']}/policy"
    response = await gw.client.put(path, headers=admin(gw), json={"request": policy})
    assert response.status_code == 200, response.text
    return str(key["key"])


@pytest.mark.parametrize("route", ["/v1/audio/transcriptions", "/v1/audio/translations", "/v1/images/edits"])
async def test_request_policies_apply_to_form_fields(sqlite_dsn: str, mock: MockUpstream, route: str) -> None:
    policy = {
        "params": {
            "deny": ["language", "timestamp_granularities"],
            "bounds": {"temperature": {"min": 0, "max": 1}},
        }
    }
    # the parts sent (a field after the file: where the streamed path would send already) -> param, code
    refused = {
        "denied": ([MODEL, FILE, ("language", MARKER.encode(), False)], "language", "parameter_not_allowed"),
        "denied list": (
            [MODEL, FILE, ("timestamp_granularities[]", b"word", False)],
            "timestamp_granularities",
            "parameter_not_allowed",
        ),
        "too high": ([MODEL, FILE, ("temperature", b"1.5", False)], "temperature", "parameter_out_of_bounds"),
        "not a number": (
            [("temperature", MARKER.encode(), False), MODEL, FILE],
            "temperature",
            "parameter_out_of_bounds",
        ),
        "a file under a bounded name": (
            [MODEL, FILE, ("temperature", b"0.5", True)],
            "temperature",
            "parameter_out_of_bounds",
        ),
    }
    async with run_gateway(config(sqlite_dsn, mock, None)) as gw:
        key = await policy_key(gw, policy)
        for name, (parts, param, code) in refused.items():
            answer = await gw.client.post(route, headers=headers(key), content=chunked(form(parts)))
            assert answer.status_code == 400, (name, answer.text)
            error = answer.json()["error"]
            assert (error["code"], error["param"]) == (code, param), name
            assert MARKER not in answer.text
        assert mock.requests == []
        fine = [MODEL, FILE, ("temperature", b" 0.5 ", False), ("prompt", b"words", False)]
        answer = await gw.client.post(route, headers=headers(key), content=chunked(form(fine)))
        assert answer.status_code == 200, answer.text
    [received] = mock.requests
    assert received.path == route
    assert received.body == form(with_model(fine, b"whisper-test"))
    assert received.header("content-length") == str(len(received.body))  # held for the policy's rules


async def test_a_models_policy_alone_holds_and_checks_the_form(sqlite_dsn: str, mock: MockUpstream) -> None:
    """No baseline guard and no key policy: the model's policy (known once the model is resolved) has the
    rest of the body read then, its parameter rules and guard applied to the fields after the file."""
    async with run_gateway(config(sqlite_dsn, mock, None)) as gw:
        models = (await gw.client.get(f"{API}/models", headers=admin(gw))).json()["data"]
        model_id = next(m["id"] for m in models if m["name"] == "whisper-test")
        policy = {"request": {"params": {"deny": ["language"]}}, "guard": {"detectors": {"email": "redact"}}}
        response = await gw.client.put(f"{API}/models/{model_id}/policy", headers=admin(gw), json=policy)
        assert response.status_code == 200, response.text
        send = headers(gw.api_key())
        denied = await gw.client.post(
            "/v1/audio/transcriptions", headers=send, content=chunked(form([MODEL, FILE, LANGUAGE]))
        )
        assert denied.status_code == 400
        assert denied.json()["error"]["param"] == "language"
        assert mock.requests == []
        parts = [MODEL, FILE, SECRET_PROMPT]
        answer = await gw.client.post("/v1/audio/transcriptions", headers=send, content=chunked(form(parts)))
        assert answer.status_code == 200, answer.text
    [received] = mock.requests
    assert received.body == form(with_model([MODEL, FILE, REDACTED_PROMPT], b"whisper-test"))


@pytest.mark.parametrize("response_format", [None, "text", "srt", "vtt"])
async def test_a_transcriptions_text_is_redacted_in_every_format(
    sqlite_dsn: str, mock: MockUpstream, response_format: str | None
) -> None:
    """``responses: true``: the transcript comes back redacted whether the upstream answers JSON
    (``{"text": ...}``) or plain text (``response_format`` text, srt, vtt), with its own length."""
    mock.behaviour.completion_text = f"Write to {EMAIL} or {EMAIL} today."
    models = "models:" + model_yaml("whisper-test", mock.base_url, aliases="[whisper]")
    settings = "guard:\n  detectors: {email: redact}\n  responses: true"
    parts = [MODEL, FILE] + (
        [] if response_format is None else [("response_format", response_format.encode(), False)]
    )
    async with run_gateway(make_config(sqlite_dsn, models, settings=settings)) as gw:
        answer = await gw.client.post(
            "/v1/audio/transcriptions", headers=headers(gw.api_key()), content=form(parts)
        )
    assert answer.status_code == 200, answer.text
    assert EMAIL not in answer.text
    expected = "Write to [EMAIL_1] or [EMAIL_1] today."
    if response_format is None:
        assert answer.json()["text"] == expected
    else:
        assert answer.text == expected
        assert answer.headers["content-type"].startswith("text/plain")
    assert answer.headers["content-length"] == str(len(answer.content))
    [row] = await usage_rows("sqlite", sqlite_dsn)
    assert json.loads(row["guard_findings"]) == {"response": {"email": 2}}
