"""The request policy on the proxy (issue 22 points 2 and 4): denied, not allowed and out-of-bounds parameters
refused with 400 naming the parameter (the openai SDK's ``BadRequestError.param``; Anthropic's envelope on
``/v1/messages``) and never echoing the value sent; required headers (403 naming the header); a model's policy
on top of the key's; browser origins over raw HTTP and through the openai SDK (CORS preflights answered for
origins some key allows, ``Access-Control-Allow-Origin`` only for the key's own, 403 without it otherwise);
and a policy change reaching another running gateway on the same store without a restart."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import httpx
import openai
import pytest
import trio

from tests.admin_tenancy import API, admin, bearer, create_key, default_org
from tests.gateway import RunningGateway, make_config, metric_sample, model_yaml, run_gateway
from tests.polling import poll_until
from voidllm.testing.mock_openai import MockUpstream, open_mock_upstream

MODEL = "gpt-test"
HI: Any = [{"role": "user", "content": "hi"}]
MARKER = "ZK-POLICY-MARKER-93f1"  # a value that must never come back in a refusal
APP = "https://app.example"
OTHER = "https://other.example"
EVIL = "https://evil.example"


@asynccontextmanager
async def gateway(dsn: str, upstream: MockUpstream) -> AsyncIterator[RunningGateway]:
    async with run_gateway(make_config(dsn, "models:" + model_yaml(MODEL, str(upstream.base_url)))) as gw:
        yield gw


@pytest.fixture
async def upstream() -> AsyncIterator[MockUpstream]:
    async with open_mock_upstream() as mock:
        yield mock


async def new_key(gw: RunningGateway, policy: dict[str, Any] | None) -> tuple[str, str]:
    """A fresh key (of the bootstrap admin, in the default organisation) with ``policy`` as its request
    policy; its plaintext and id."""
    org = await default_org(gw)
    me = (await gw.client.get(f"{API}/me", headers=admin(gw))).json()["id"]
    key = await create_key(gw, org, user_id=me)
    if policy is not None:
        await set_policy(gw, f"/orgs/{org}/keys/{key['id']}/policy", policy)
    return key["key"], key["id"]


async def set_policy(gw: RunningGateway, path: str, request: dict[str, Any] | None) -> None:
    response = await gw.client.put(f"{API}{path}", headers=admin(gw), json={"request": request})
    assert response.status_code == 200, response.text


def sdk(gw: RunningGateway, key: str, **headers: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=10, default_headers=headers or None
    )


POLICY = {
    "params": {
        "deny": ["logprobs", "tools"],
        "bounds": {
            "max_tokens": {"max": 100},
            "n": {"min": 1, "max": 1},
            "temperature": {"min": 0, "max": 1},
        },
    }
}


REFUSALS = "voidllm_request_policy_refusals_total"


def refusals() -> dict[str, float]:
    """This process's refusal counts by reason (the gateways here run in it)."""
    reasons = ("parameter_not_allowed", "parameter_out_of_bounds", "required_header", "origin_not_allowed")
    return {reason: metric_sample(REFUSALS, reason=reason) for reason in reasons}


def counted(before: dict[str, float], **expected: int) -> bool:
    after = refusals()
    return all(after[reason] - before[reason] == expected.get(reason, 0) for reason in after)


async def test_refusals_through_the_openai_sdk(sqlite_dsn: str, upstream: MockUpstream) -> None:
    async with gateway(sqlite_dsn, upstream) as gw:
        counts = refusals()
        key, _ = await new_key(gw, POLICY)
        client = sdk(gw, key)
        ok = await client.chat.completions.create(model=MODEL, messages=HI, max_tokens=100, temperature=0.5)
        assert ok.choices
        before = len(upstream.requests)
        cases: list[tuple[dict[str, Any], str, str]] = [
            ({"logprobs": True}, "logprobs", "parameter_not_allowed"),
            (
                {"tools": [{"type": "function", "function": {"name": MARKER}}]},
                "tools",
                "parameter_not_allowed",
            ),
            ({"max_tokens": 93117}, "max_tokens", "parameter_out_of_bounds"),
            ({"n": 2}, "n", "parameter_out_of_bounds"),
            ({"temperature": 1.9371}, "temperature", "parameter_out_of_bounds"),
        ]
        for extra, param, code in cases:
            with pytest.raises(openai.BadRequestError) as caught:
                await client.chat.completions.create(model=MODEL, messages=HI, **extra)
            error = caught.value
            assert (error.param, error.code, error.status_code) == (param, code, 400)
            assert isinstance(error.body, dict)
            assert error.body["type"] == "invalid_request_error"
            text = error.response.text
            assert param in error.message
            for value in ("93117", "1.9371", MARKER):
                assert value not in text
        with pytest.raises(openai.BadRequestError) as bound:
            await client.chat.completions.create(model=MODEL, messages=HI, max_tokens=93117)
        assert "at most 100" in bound.value.message
        # completions and embeddings are checked the same way
        with pytest.raises(openai.BadRequestError) as caught:
            await client.completions.create(model=MODEL, prompt="hi", logprobs=2)
        assert caught.value.param == "logprobs"
        denied = await set_and_key(gw, {"params": {"allow": ["input", "encoding_format"]}})
        embedded = await sdk(gw, denied).embeddings.create(model=MODEL, input="hi")
        assert embedded.data
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk(gw, denied).embeddings.create(model=MODEL, input="hi", dimensions=8)
        assert caught.value.param == "dimensions"
        assert len(upstream.requests) == before + 1  # refusals never reach the upstream
        assert counted(counts, parameter_not_allowed=4, parameter_out_of_bounds=4), refusals()


async def set_and_key(gw: RunningGateway, policy: dict[str, Any]) -> str:
    key, _ = await new_key(gw, policy)
    return key


async def test_refusals_over_raw_http_and_in_anthropics_envelope(
    sqlite_dsn: str, upstream: MockUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with gateway(sqlite_dsn, upstream) as gw:
        key = await set_and_key(gw, {"params": {"deny": ["metadata"], "bounds": {"max_tokens": {"max": 64}}}})
        chat = await gw.client.post(
            "/v1/chat/completions",
            headers=bearer(key),
            json={"model": MODEL, "messages": HI, "metadata": {"note": MARKER}},
        )
        assert chat.status_code == 400
        error = chat.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "parameter_not_allowed",
            "metadata",
        )
        assert MARKER not in chat.text
        messages = await gw.client.post(
            "/v1/messages",
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
            json={"model": MODEL, "max_tokens": 5000, "messages": [{"role": "user", "content": MARKER}]},
        )
        assert messages.status_code == 400
        body = messages.json()
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
        assert "max_tokens" in body["error"]["message"]
        assert "5000" not in messages.text
        assert MARKER not in messages.text
        sdk_client = anthropic.AsyncAnthropic(base_url=gw.url, api_key=key, max_retries=0, timeout=10)
        with pytest.raises(anthropic.BadRequestError) as refused:
            await sdk_client.messages.create(
                model=MODEL, max_tokens=10, messages=HI, metadata={"user_id": MARKER}
            )
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["type"] == "error"
        assert refused.value.body["error"]["type"] == "invalid_request_error"
        assert "metadata" in str(refused.value)
        assert MARKER not in refused.value.response.text
        fine = await gw.client.post(
            "/v1/messages",
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
            json={"model": MODEL, "max_tokens": 64, "messages": HI},
        )
        assert fine.status_code == 200, fine.text
    gateway_log = [r for r in caplog.records if r.name.startswith(("voidllm", "hypercorn"))]
    assert gateway_log  # the gateway's own debug log was captured (the SDKs log their requests themselves)
    assert not [r for r in gateway_log if MARKER in r.getMessage() or MARKER in repr(r.__dict__)]


async def test_required_headers_and_a_models_policy(sqlite_dsn: str, upstream: MockUpstream) -> None:
    async with gateway(sqlite_dsn, upstream) as gw:
        counts = refusals()
        key = await set_and_key(gw, {"required_headers": [{"name": "X-App", "value": "checkout"}]})
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await sdk(gw, key).chat.completions.create(model=MODEL, messages=HI)
        assert caught.value.code == "required_header"
        assert "x-app" in caught.value.message
        with pytest.raises(openai.PermissionDeniedError) as wrong:
            await sdk(gw, key, **{"X-App": MARKER}).chat.completions.create(model=MODEL, messages=HI)
        assert MARKER not in wrong.value.response.text
        assert "checkout" not in wrong.value.response.text
        assert await sdk(gw, key, **{"X-App": "checkout"}).chat.completions.create(model=MODEL, messages=HI)
        assert counted(counts, required_header=2), refusals()

        # a model's policy applies to every key, on top of the key's own
        plain = await set_and_key(gw, {"params": {"bounds": {"max_tokens": {"max": 500}}}})
        models = (await gw.client.get(f"{API}/models", headers=admin(gw))).json()["data"]
        model_id = next(m["id"] for m in models if m["name"] == MODEL)
        await set_policy(
            gw,
            f"/models/{model_id}/policy",
            {"params": {"deny": ["seed"], "bounds": {"max_tokens": {"max": 200}}}},
        )
        with pytest.raises(openai.BadRequestError) as seeded:
            await sdk(gw, plain).chat.completions.create(model=MODEL, messages=HI, seed=7)
        assert seeded.value.param == "seed"
        with pytest.raises(openai.BadRequestError) as capped:
            await sdk(gw, plain).chat.completions.create(model=MODEL, messages=HI, max_tokens=300)
        assert "at most 200" in capped.value.message
        assert await sdk(gw, plain).chat.completions.create(model=MODEL, messages=HI, max_tokens=200)
        # no policy anywhere for the admin's bootstrap key on this model but the model's: seed refused too
        with pytest.raises(openai.BadRequestError):
            await sdk(gw, gw.api_key()).chat.completions.create(model=MODEL, messages=HI, seed=7)
        await set_policy(gw, f"/models/{model_id}/policy", None)
        assert await sdk(gw, gw.api_key()).chat.completions.create(model=MODEL, messages=HI, seed=7)


async def preflight(
    gw: RunningGateway, origin: str, headers: str = "authorization,content-type"
) -> httpx.Response:
    return await gw.client.options(
        "/v1/chat/completions",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": headers,
        },
    )


async def chat_from(gw: RunningGateway, key: str, origin: str, **extra: str) -> httpx.Response:
    return await gw.client.post(
        "/v1/chat/completions",
        headers={**bearer(key), "Origin": origin, **extra},
        json={"model": MODEL, "messages": HI},
    )


async def test_browser_origins(sqlite_dsn: str, upstream: MockUpstream) -> None:
    async with gateway(sqlite_dsn, upstream) as gw:
        # no key lists origins and server.cors is empty: /v1 is not covered (behaviour unchanged)
        bare = await preflight(gw, APP)
        assert "access-control-allow-origin" not in bare.headers
        plain = await chat_from(gw, gw.api_key(), APP)
        assert plain.status_code == 200
        assert "access-control-allow-origin" not in plain.headers
        assert "origin" not in plain.headers.get("vary", "").lower()

        web = await set_and_key(gw, {"allowed_origins": [APP], "required_headers": [{"name": "x-app"}]})
        other = await set_and_key(gw, {"allowed_origins": [OTHER]})
        allowed = await preflight(gw, APP, "authorization,content-type,x-app")
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == APP
        assert "x-app" in allowed.headers["access-control-allow-headers"]
        assert (await preflight(gw, OTHER)).headers["access-control-allow-origin"] == OTHER
        refused = await preflight(gw, EVIL)
        assert refused.status_code == 204
        assert "access-control-allow-origin" not in refused.headers

        ok = await chat_from(gw, web, APP, **{"x-app": "1"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == APP
        counts = refusals()
        for key, origin in ((web, EVIL), (web, OTHER), (other, APP)):
            denied = await chat_from(gw, key, origin, **{"x-app": "1"})
            assert denied.status_code == 403, denied.text
            assert denied.json()["error"]["code"] == "origin_not_allowed"
            assert "access-control-allow-origin" not in denied.headers
            assert "access-control-allow-credentials" not in denied.headers
        assert counted(counts, origin_not_allowed=3), refusals()  # a refused preflight is not a request
        # a key without origins, from a page some other key allows: served, but not readable by the page
        unlisted = await chat_from(gw, gw.api_key(), APP)
        assert unlisted.status_code == 200
        assert "access-control-allow-origin" not in unlisted.headers
        # no Origin header (not a browser): the origin list does not apply
        server_side = await gw.client.post(
            "/v1/chat/completions",
            headers={**bearer(web), "x-app": "1"},
            json={"model": MODEL, "messages": HI},
        )
        assert server_side.status_code == 200
        # the playground is the gateway's own page: the key's origin list does not apply there
        tunnelled = await gw.client.post(
            "/api/v1/playground/chat/completions",
            headers={**bearer(web), "Origin": gw.url, "x-app": "1"},
            json={"model": MODEL, "messages": HI},
        )
        assert tunnelled.status_code == 200, tunnelled.text


async def test_the_model_list_follows_the_keys_origins_and_headers(
    sqlite_dsn: str, upstream: MockUpstream
) -> None:
    """``GET /v1/models`` (answered by the gateway itself) applies the key's origins and required headers as
    the proxied routes do, so a page its key allows can list the models it may call, and no other page can
    read them."""
    async with gateway(sqlite_dsn, upstream) as gw:
        web = await set_and_key(gw, {"allowed_origins": [APP], "required_headers": [{"name": "x-app"}]})
        counts = refusals()

        listed = await gw.client.get("/v1/models", headers={**bearer(web), "Origin": APP, "x-app": "1"})
        assert listed.status_code == 200, listed.text
        assert [m["id"] for m in listed.json()["data"]] == [MODEL]
        assert listed.headers["access-control-allow-origin"] == APP
        one = await gw.client.get(f"/v1/models/{MODEL}", headers={**bearer(web), "Origin": APP, "x-app": "1"})
        assert one.status_code == 200
        assert one.headers["access-control-allow-origin"] == APP

        for origin, extra in ((EVIL, {"x-app": "1"}), (APP, {})):
            denied = await gw.client.get("/v1/models", headers={**bearer(web), "Origin": origin, **extra})
            assert denied.status_code == 403, denied.text
            assert denied.json()["error"]["code"] == (
                "origin_not_allowed" if origin == EVIL else "required_header"
            )
            # the page the key allows may read its own refusal; any other page gets no CORS headers
            assert denied.headers.get("access-control-allow-origin") == (None if origin == EVIL else APP)
            assert MODEL not in denied.text
        assert counted(counts, origin_not_allowed=1, required_header=1), refusals()

        # a key without a policy, from a page only another key allows: listed, but not readable by the page
        plain = await gw.client.get("/v1/models", headers={**bearer(gw.api_key()), "Origin": APP})
        assert plain.status_code == 200
        assert "access-control-allow-origin" not in plain.headers


async def test_browser_origins_through_the_openai_sdk(sqlite_dsn: str, upstream: MockUpstream) -> None:
    """The openai SDK sending ``Origin`` (as it does from a browser, ``dangerouslyAllowBrowser``): the key's
    own origin is served and may read the answer; any other is a ``PermissionDeniedError`` with
    ``origin_not_allowed`` and no ``Access-Control-Allow-Origin``, and nothing goes upstream."""
    async with gateway(sqlite_dsn, upstream) as gw:
        web = await set_and_key(gw, {"allowed_origins": [APP]})
        await set_and_key(gw, {"allowed_origins": [OTHER]})
        chat = sdk(gw, web, Origin=APP).chat.completions
        served = await chat.with_raw_response.create(model=MODEL, messages=HI)
        assert served.headers["access-control-allow-origin"] == APP
        assert served.parse().choices
        embedded = await sdk(gw, web, Origin=APP).embeddings.with_raw_response.create(model=MODEL, input="hi")
        assert embedded.headers["access-control-allow-origin"] == APP
        sent = len(upstream.requests)
        for origin in (EVIL, OTHER):  # OTHER: allowed for another key, not for this one
            with pytest.raises(openai.PermissionDeniedError) as caught:
                await sdk(gw, web, Origin=origin).chat.completions.create(model=MODEL, messages=HI)
            error = caught.value
            assert (error.status_code, error.code) == (403, "origin_not_allowed")
            assert "access-control-allow-origin" not in error.response.headers
            assert "access-control-allow-credentials" not in error.response.headers
        assert len(upstream.requests) == sent


async def test_a_policy_change_reaches_another_gateway_without_restart(
    sqlite_dsn: str, upstream: MockUpstream
) -> None:
    config = make_config(sqlite_dsn, "models:" + model_yaml(MODEL, str(upstream.base_url)))
    async with run_gateway(config) as a, run_gateway(config) as b:
        key, key_id = await new_key(a, None)
        org = await default_org(a)

        async def status_on_b() -> int:
            response = await b.client.post(
                "/v1/chat/completions",
                headers=bearer(key),
                json={"model": MODEL, "messages": HI, "logprobs": True},
            )
            return response.status_code

        with trio.fail_after(5):
            await poll_until(lambda: _is(status_on_b, 200))
        await set_policy(a, f"/orgs/{org}/policy", {"params": {"deny": ["logprobs"]}})
        with trio.fail_after(5):
            await poll_until(lambda: _is(status_on_b, 400))
        await set_policy(
            a, f"/orgs/{org}/keys/{key_id}/policy", {"params": {"allow": ["messages", "logprobs"]}}
        )
        await set_policy(a, f"/orgs/{org}/policy", None)
        with trio.fail_after(5):
            await poll_until(lambda: _is(status_on_b, 200))


async def _is(probe: Any, expected: int) -> bool:
    return bool(await probe() == expected)
