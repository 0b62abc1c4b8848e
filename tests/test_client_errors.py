"""Errors clients can act on, through a real gateway and the real SDKs.

- The envelope carries OpenAI's ``type`` (and ``param`` on a 400 about one field): the openai SDK raises
  its usual class with ``.type``, ``.code`` and ``.param`` set.
- An upstream's error inside a stream keeps its kind: Anthropic's ``overloaded_error`` reaches an OpenAI
  client as one error event with that type and the status it stands for (529), and the SDK raises it.
- ``/v1/messages`` passthrough relays the upstream's own ``error`` event and adds none of ours; an error
  a translated upstream (Gemini) reports mid-stream reaches an Anthropic client as one typed ``error`` event.
- An OpenAI-shaped upstream's own error event is relayed once, without an abort event after it.
- HTTP/1.1 status lines carry their reason phrase (read from a raw socket).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import openai
import orjson
import pytest
import trio

from tests.gateway import RunningGateway, make_config, run_gateway
from voidllm.errors import error_type
from voidllm.providers.base import TranslationError, UpstreamStreamError
from voidllm.proxy.messages import AnthropicPassthrough
from voidllm.proxy.relay import Translated
from voidllm.proxy.sse import SSERelay, abort_event
from voidllm.testing.mock_providers import (
    MockProvider,
    ProviderBehaviour,
    open_mock_anthropic,
    open_mock_gemini,
)

HI = [{"role": "user", "content": "hi"}]
CLAUDE = "claude-test"  # a name the anthropic SDK has no deprecation warning for


@asynccontextmanager
async def anthropic_gateway(
    sqlite_dsn: str, behaviour: ProviderBehaviour | None = None
) -> AsyncIterator[tuple[RunningGateway, MockProvider]]:
    async with open_mock_anthropic(behaviour) as mock:
        models = f"""models:
  - name: {CLAUDE}
    provider: anthropic
    base_url: "{mock.base_url}"
    api_key: sk-upstream-secret
"""
        async with run_gateway(make_config(sqlite_dsn, models)) as gw:
            yield gw, mock


def sdk(gw: RunningGateway, key: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=key or gw.api_key(), max_retries=0, timeout=10)


# --- the envelope ---------------------------------------------------------------------------------------


def test_error_types_follow_openai_vocabulary() -> None:
    assert [error_type(s) for s in (400, 401, 403, 404, 408, 409, 413, 429, 500, 502, 503, 504)] == [
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "invalid_request_error",
        "invalid_request_error",
        "invalid_request_error",
        "rate_limit_error",
        "server_error",
        "server_error",
        "server_error",
        "server_error",
    ]


def test_translation_errors_name_the_field_they_are_about() -> None:
    assert TranslationError("messages must be a non-empty list").param == "messages"
    assert TranslationError("messages[2].content must be a string").param == "messages[2].content"
    assert TranslationError("stop must be a string or a list of strings").param == "stop"
    assert TranslationError("n > 1 is not supported by anthropic").param is None
    assert TranslationError("the request has no user message", param="messages").param == "messages"


async def test_the_openai_sdk_raises_its_own_classes_with_type_code_and_param(sqlite_dsn: str) -> None:
    async with (
        anthropic_gateway(sqlite_dsn) as (gw, _),
        sdk(gw) as client,
        sdk(gw, "vl_uk_" + "0" * 48) as stranger,
    ):
        with pytest.raises(openai.AuthenticationError) as unauthorized:
            await stranger.chat.completions.create(model=CLAUDE, messages=HI)
        error = unauthorized.value
        assert (error.type, error.code, error.param) == ("authentication_error", "unauthorized", None)
        assert error.body["request_id"] == error.response.headers["x-request-id"]  # type: ignore[index]

        with pytest.raises(openai.BadRequestError) as no_model:
            await client.chat.completions.create(model="", messages=HI)
        error = no_model.value
        assert (error.type, error.code, error.param) == ("invalid_request_error", "bad_request", "model")

        with pytest.raises(openai.BadRequestError) as inexpressible:
            await client.chat.completions.create(model=CLAUDE, messages=[])
        error = inexpressible.value
        assert (error.type, error.param) == ("invalid_request_error", "messages")

        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model="nope", messages=HI)
        error = missing.value
        assert (error.type, error.code, error.param) == ("not_found_error", "model_not_found", None)

        admin = await gw.client.get("/api/v1/orgs", headers={"Authorization": "Bearer vl_uk_" + "0" * 48})
        assert admin.json()["error"]["type"] == "authentication_error"  # one envelope everywhere


# --- errors inside a stream -----------------------------------------------------------------------------


async def test_an_anthropic_overloaded_error_mid_stream_keeps_its_kind(sqlite_dsn: str) -> None:
    behaviour = ProviderBehaviour(fail="error_event", stream_chunks=4)
    async with anthropic_gateway(sqlite_dsn, behaviour) as (gw, _), sdk(gw) as client:
        stream = await client.chat.completions.create(model=CLAUDE, messages=HI, stream=True)
        with pytest.raises(openai.APIError) as caught:
            async for _ in stream:
                pass
        error = caught.value
        assert not isinstance(error, openai.APIStatusError)  # the stream's status was 200
        assert (error.type, error.code, error.param) == ("overloaded_error", "upstream_stream_error", None)
        assert error.body["status"] == 529  # type: ignore[index]  # retryable, as the SDKs count it
        assert "Overloaded" not in error.message  # the provider's words are not relayed into our event

        raw = await gw.client.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {gw.api_key()}"},
            json={"model": CLAUDE, "messages": HI, "stream": True},
        )
        assert raw.content.count(b'"error"') == 1
        assert raw.content.endswith(
            b'data: {"error":{"message":"the upstream reported overloaded_error during the stream",'
            b'"type":"overloaded_error","param":null,"code":"upstream_stream_error","status":529}}\n\n'
        )


async def test_messages_passthrough_relays_the_upstreams_one_error_event(sqlite_dsn: str) -> None:
    behaviour = ProviderBehaviour(fail="error_event", stream_chunks=4)
    async with anthropic_gateway(sqlite_dsn, behaviour) as (gw, _):
        body = {"model": CLAUDE, "max_tokens": 16, "messages": HI, "stream": True}
        raw = await gw.client.post("/v1/messages", headers={"x-api-key": gw.api_key()}, json=body)
        assert raw.status_code == 200
        assert raw.content.count(b"event: error") == 1
        assert raw.content.endswith(
            b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
            b"\n\n"
        )

        async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=gw.api_key(), max_retries=0) as client:
            with pytest.raises(anthropic.APIStatusError) as caught:
                await read_all(client.messages.stream(model=CLAUDE, max_tokens=16, messages=HI))  # type: ignore[arg-type]
        overloaded = {"type": "overloaded_error", "message": "Overloaded"}
        assert caught.value.body == {"type": "error", "error": overloaded}


async def read_all(manager: Any) -> None:
    async with manager as events:
        async for _ in events:
            pass


async def test_a_gemini_error_mid_stream_reaches_an_anthropic_client_typed(
    sqlite_dsn: str,
) -> None:
    async with open_mock_gemini(ProviderBehaviour(fail="error_event", stream_chunks=4)) as mock:
        models = f"""models:
  - name: gemini-2.5-flash
    provider: gemini
    base_url: "{mock.base_url}"
    api_key: sk-upstream-secret
"""
        async with run_gateway(make_config(sqlite_dsn, models)) as gw:
            body = {"model": "gemini-2.5-flash", "max_tokens": 16, "messages": HI, "stream": True}
            raw = await gw.client.post("/v1/messages", headers={"x-api-key": gw.api_key()}, json=body)
    assert raw.status_code == 200
    assert raw.content.count(b"event: error") == 1
    last = raw.content.strip().split(b"\n\n")[-1]
    error = orjson.loads(last.removeprefix(b"event: error\ndata: "))
    assert error["error"]["type"] == "overloaded_error"  # Gemini's 503 UNAVAILABLE, in Anthropic's words
    assert "overloaded." not in error["error"]["message"]  # the provider's own words are not kept


def test_the_passthrough_stops_at_the_upstreams_error_event() -> None:
    stream = Translated(AnthropicPassthrough())
    start = b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","usage":{}}}\n\n'
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"x"}}\n\n'
    assert stream.feed(start) == start
    assert not stream.aborted
    assert stream.feed(error) == error
    assert stream.aborted
    assert not stream.done
    assert stream.abort("stream_incomplete") == b""
    assert stream.finish() == b""


def test_an_openai_upstreams_error_event_is_relayed_once() -> None:
    relay = SSERelay()
    chunk = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
    error = b'data: {"error":{"message":"boom","type":"server_error","param":null,"code":null}}\n\n'
    assert relay.feed(chunk + error + chunk) == chunk + error  # nothing after the error event
    assert relay.aborted
    assert not relay.done
    assert relay.finish() == b""
    assert relay.abort() == b""


def test_a_chunk_that_merely_mentions_error_is_relayed_as_it_is() -> None:
    relay = SSERelay()
    chunk = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"an \\"error\\""}}],"error":null}\n\n'
    assert relay.feed(chunk) == chunk
    assert not relay.closed


def test_a_responses_api_error_event_closes_the_relay() -> None:
    relay = SSERelay(terminal="responses")
    error = b'event: error\ndata: {"type":"error","code":"server_error","message":"x","param":null}\n\n'
    assert relay.feed(error) == error
    assert relay.aborted


def test_the_abort_event_of_a_reported_error() -> None:
    reported = UpstreamStreamError.reported("rate_limit_error")
    assert (reported.kind, reported.status) == ("rate_limit_error", 429)
    assert orjson.loads(abort_event(reported=reported).removeprefix(b"data: "))["error"] == {
        "message": "the upstream reported rate_limit_error during the stream",
        "type": "rate_limit_error",
        "param": None,
        "code": "upstream_stream_error",
        "status": 429,
    }
    unknown = UpstreamStreamError.reported("SECRET words", 7)
    assert (unknown.kind, unknown.status) == ("api_error", 500)
    assert UpstreamStreamError.reported("api_error", 503).status == 503


# --- status lines ---------------------------------------------------------------------------------------


async def status_line(gw: RunningGateway, request: bytes) -> bytes:
    """The first line of the answer to ``request``, read from a raw socket."""
    host, port = gw.url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(request)
        answer = b""
        with trio.fail_after(10):
            while b"\r\n" not in answer:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                answer += chunk
    return answer.split(b"\r\n", 1)[0]


async def test_status_lines_carry_their_reason_phrase(sqlite_dsn: str) -> None:
    async with anthropic_gateway(sqlite_dsn, ProviderBehaviour(status=429)) as (gw, _):
        key = gw.api_key()
        chat = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
        )
        body = orjson.dumps({"model": CLAUDE, "messages": HI})
        cases = {
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n": b"HTTP/1.1 200 OK",
            b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n": b"HTTP/1.1 401 Unauthorized",
            b"GET /v1/models/nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + key.encode()
            + b"\r\n\r\n": b"HTTP/1.1 404 Not Found",
            chat % (key.encode(), len(body), body): b"HTTP/1.1 429 Too Many Requests",  # the upstream's
            chat % (key.encode(), 2, b"{}"): b"HTTP/1.1 400 Bad Request",
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n": b"HTTP/1.1 400 Bad Request",  # hypercorn
        }
        for request, expected in cases.items():
            assert await status_line(gw, request) == expected, request
