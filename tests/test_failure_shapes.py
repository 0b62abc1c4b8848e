"""Every way an upstream can break, on every endpoint family: the client always gets an answer it can read.

Before the response headers (closed, half a head, garbage) and in the middle of a non-streamed body (closed
part-way, a Content-Length the body never reaches) the client gets 502 ``upstream_unavailable`` in its
endpoint's envelope, with a request id; a stream that breaks ends with one abort event. Each is a breaker
failure, and a broken body fails over to the next deployment while nothing was sent to the client.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio

from tests.gateway import RunningGateway, make_config, run_gateway
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream

SHAPES = ("close_before_headers", "close_mid_headers", "drop_mid_stream", "garbage", "wrong_length")
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", CHAT),
    "completions": ("/v1/completions", {"prompt": "hi"}),
    "embeddings": ("/v1/embeddings", {"input": "hi"}),
    "messages": ("/v1/messages", {"max_tokens": 16, **CHAT}),
}
STREAMING = ("chat", "completions", "messages")
MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}'


def deployments(*mocks: MockUpstream) -> str:
    lines = ["models:\n  - name: m\n    strategy: priority\n    deployments:"]
    for index, mock in enumerate(mocks):
        deployment = f'{{name: d{index}, provider: openai, base_url: "{mock.base_url}", priority: {index}}}'
        lines.append(f"      - {deployment}")
    return "\n".join(lines) + "\n"


async def call(gw: RunningGateway, family: str, **extra: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {gw.api_key()}"}
    if family == "multipart":
        return await gw.client.post(
            "/v1/audio/transcriptions",
            headers=headers,
            data={"model": "m"},
            files={"file": ("a.wav", b"RIFF" * 100)},
        )
    path, body = FAMILIES[family]
    return await gw.client.post(path, headers=headers, json={"model": "m", **body, **extra})


def assert_unavailable(response: httpx.Response, family: str) -> None:
    assert response.status_code == 502, (family, response.status_code, response.content)
    assert response.headers["x-request-id"], family
    body = response.json()
    if family == "messages":
        assert body["type"] == "error", body
        assert body["error"]["type"] == "api_error", body
    else:
        assert body["error"]["code"] == "upstream_unavailable", (family, body)


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_broken_answer_is_502_in_the_envelope_of_every_endpoint(sqlite_dsn: str, shape: str) -> None:
    async with open_mock_upstream(Behaviour(fail=shape)) as broken:
        async with run_gateway(make_config(sqlite_dsn, deployments(broken))) as gw:
            for family in (*FAMILIES, "multipart"):
                assert_unavailable(await call(gw, family), family)


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_broken_stream_ends_with_one_abort_event(sqlite_dsn: str, shape: str) -> None:
    async with open_mock_upstream(Behaviour(fail=shape, stream_chunks=4)) as broken:
        async with run_gateway(make_config(sqlite_dsn, deployments(broken))) as gw:
            for family in STREAMING:
                response = await call(gw, family, stream=True)
                if shape in ("close_before_headers", "close_mid_headers", "garbage"):
                    assert_unavailable(response, family)
                    continue
                assert response.status_code == 200, (family, response.content)
                last = response.content.strip().split(b"\n\n")[-1]
                if shape == "wrong_length":  # every event arrived: the stream ends at its terminal event
                    assert last in (b"data: [DONE]", MESSAGE_STOP), last
                elif family == "messages":
                    assert last.startswith(b"event: error\ndata: "), last
                else:
                    error = orjson.loads(last.removeprefix(b"data: "))["error"]
                    assert error["code"] == "stream_incomplete", last


@pytest.mark.parametrize("shape", ["drop_mid_stream", "wrong_length"])
async def test_a_body_broken_before_the_client_saw_a_byte_fails_over(sqlite_dsn: str, shape: str) -> None:
    async with open_mock_upstream(Behaviour(fail=shape)) as broken, open_mock_upstream() as ok:
        async with run_gateway(make_config(sqlite_dsn, deployments(broken, ok))) as gw:
            for family in FAMILIES:
                response = await call(gw, family)
                assert response.status_code == 200, (family, response.content)
            metrics = (await gw.client.get("/metrics")).text
    assert 'voidllm_routing_failovers_total{deployment="d0",model="m",reason="broken_body"}' in metrics
    assert len(ok.requests) == len(FAMILIES)


async def test_a_body_broken_mid_way_is_a_breaker_failure(sqlite_dsn: str) -> None:
    breaker = "circuit_breaker:\n  threshold: 1\n  timeout: 30s"
    async with open_mock_upstream(Behaviour(fail="drop_mid_stream")) as broken:
        async with run_gateway(make_config(sqlite_dsn, deployments(broken), settings=breaker)) as gw:
            assert_unavailable(await call(gw, "chat"), "chat")
            response = await call(gw, "chat")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "circuit_open"
    assert len(broken.requests) == 1


async def test_a_chunked_body_declared_endless_gets_408_and_logs_no_error(
    sqlite_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_mock_upstream() as upstream:
        config = make_config(sqlite_dsn, deployments(upstream))
        proxy = attrs.evolve(config.server.proxy, read_timeout=0.3)
        config = attrs.evolve(config, server=attrs.evolve(config.server, proxy=proxy))
        async with run_gateway(config) as gw:
            host, port = gw.url.removeprefix("http://").rsplit(":", 1)
            stream = await trio.open_tcp_stream(host, int(port))
            async with stream:
                head = (
                    "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {gw.api_key()}\r\n"
                    "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                    'FFFFFFFFFFFFFFFF\r\n{"model": "m"'
                )
                await stream.send_all(head.encode())
                answer = b""
                with trio.move_on_after(5):
                    while chunk := await stream.receive_some(65536):
                        answer += chunk
            await trio.sleep(0.3)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"code":"request_timeout"' in answer
    assert "BusyResourceError" not in caplog.text
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR], caplog.text


async def test_a_binary_answer_broken_mid_way_ends_without_its_end(sqlite_dsn: str) -> None:
    breaker = "circuit_breaker:\n  threshold: 1\n  timeout: 30s"
    async with open_mock_upstream(Behaviour(fail="drop_mid_stream", stream_chunks=4)) as broken:
        async with run_gateway(make_config(sqlite_dsn, deployments(broken), settings=breaker)) as gw:
            with pytest.raises(
                httpx.RemoteProtocolError
            ):  # a broken response, not a truncated one passed as whole
                await gw.client.post(
                    "/v1/audio/speech",
                    headers={"Authorization": f"Bearer {gw.api_key()}"},
                    json={"model": "m", "input": "hi", "voice": "alloy"},
                )
            response = await call(gw, "chat")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "circuit_open"
