"""The data plane end to end: the official openai SDK -> a real gateway -> the mock upstream on real
sockets."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import hypercorn.trio.task_group
import hypercorn.trio.tcp_server
import openai
import orjson
import pytest
import trio

from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway, usage_rows
from tests.polling import poll_until
from voidllm import server
from voidllm.proxy import handler
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream
from voidllm.web.http1 import GatewayH11Protocol


@pytest.fixture
async def mock() -> AsyncIterator[MockUpstream]:
    async with open_mock_upstream(Behaviour(stream_chunks=4)) as upstream:
        yield upstream


def sdk(gw: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=gw.api_key(), max_retries=0, timeout=10)


def auth(gw: RunningGateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.api_key()}"}


async def test_chat_completion_through_the_sdk(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url, aliases="[fast]"))
    async with run_gateway(config) as gw:
        raw = await sdk(gw).chat.completions.with_raw_response.create(
            model="fast", messages=[{"role": "user", "content": "hi"}]
        )
        completion = raw.parse()
        assert completion.choices[0].message.content == "Hello from the mock."
        assert completion.usage is not None
        assert completion.usage.total_tokens == 18
        assert float(raw.headers["x-voidllm-overhead-ms"]) >= 0
        assert raw.headers["x-ratelimit-remaining-requests"] == "99"
        sent = mock.requests[-1]
        assert sent.path == "/v1/chat/completions"
        assert sent.json()["model"] == "gpt-test"
        assert sent.header("authorization") == "Bearer sk-upstream-secret"
        assert sent.header("x-request-id") == raw.headers["x-request-id"]
        assert (sent.header("user-agent") or "").startswith("VoidLLM/")
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert len(rows) == 1
    row = rows[0]
    assert (row["model_name"], row["requested_model_name"], row["status"], row["status_code"]) == (
        "gpt-test",
        "fast",
        "ok",
        200,
    )
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (10, 8, 18)
    assert row["cost_estimate"] == pytest.approx(10 / 1e6 * 1.0 + 8 / 1e6 * 2.0)
    assert row["stream"] is False
    assert row["request_id"] == raw.headers["x-request-id"]


async def test_stream_without_usage_request_looks_exactly_like_the_provider(
    sqlite_dsn: str, mock: MockUpstream
) -> None:
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url))
    async with run_gateway(config) as gw:
        async with gw.client.stream(
            "POST",
            "/v1/chat/completions",
            headers=auth(gw),
            json={"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["x-accel-buffering"] == "no"
            relayed = b"".join([chunk async for chunk in response.aiter_bytes()])
        assert mock.requests[-1].json()["stream_options"] == {"include_usage": True}
        # what the mock sends when the client does not ask for usage, byte for byte
        direct = httpx.AsyncClient(base_url=mock.base_url)
        async with direct:
            expected = (
                await direct.post(
                    "/chat/completions",
                    json={
                        "model": "gpt-test",
                        "stream": True,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                )
            ).content
        assert relayed == expected
        assert b'"usage"' not in relayed
        assert relayed.endswith(b"data: [DONE]\n\n")
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [(r["stream"], r["total_tokens"], r["status"]) for r in rows] == [(True, 18, "ok")]
    assert rows[0]["ttft_ms"] is not None


async def test_a_streams_first_event_goes_out_in_one_write_with_its_head(
    sqlite_dsn: str, mock: MockUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mock writes its head with its first event, and the gateway writes both to the client in one write;
    when the upstream's head comes alone (a model still on its first token), the client gets the head at
    once, before any event."""
    writes: list[bytes] = []
    real_write = GatewayH11Protocol._write

    async def recording(self: GatewayH11Protocol, data: bytes) -> None:
        writes.append(self._held + data)  # what _write sends: a held head goes with the data
        await real_write(self, data)

    monkeypatch.setattr(GatewayH11Protocol, "_write", recording)
    body = {"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url))
    async with run_gateway(config) as gw:
        headers = auth(gw)
        writes.clear()
        async with gw.client.stream("POST", "/v1/chat/completions", headers=headers, json=body) as response:
            relayed = b"".join([chunk async for chunk in response.aiter_bytes()])
        assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\n\r\n" in writes[0]
        first_event = relayed[: relayed.index(b"\n\n") + 2]
        assert writes[0].endswith(first_event + b"\r\n")  # the head and the first event's chunk
        assert b"".join(writes).endswith(b"0\r\n\r\n")  # the rest as before, to the body's end

        gate = trio.Event()
        mock.behaviour.first_event_gate = gate
        writes.clear()
        with trio.fail_after(10):
            async with gw.client.stream("POST", "/v1/chat/completions", headers=headers, json=body) as late:
                assert late.status_code == 200  # the head came before any event was sent upstream
                assert len(writes) == 1
                assert writes[0].endswith(b"\r\n\r\n")
                gate.set()
                assert b"".join([chunk async for chunk in late.aiter_bytes()]) == relayed
        assert b"data: " in writes[1]


async def test_stream_with_usage_request_keeps_the_usage_chunk(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url))
    async with run_gateway(config) as gw:
        stream = await sdk(gw).chat.completions.create(
            model="gpt-test",
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "hi"}],
        )
        chunks = [chunk async for chunk in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Hello from the mock."
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 8


async def test_other_endpoints_through_the_sdk(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url))
    async with run_gateway(config) as gw:
        client = sdk(gw)
        completion = await client.completions.create(model="gpt-test", prompt="hi")
        assert completion.choices[0].text
        streamed = await client.completions.create(model="gpt-test", prompt="hi", stream=True)
        assert "".join([c.choices[0].text async for c in streamed if c.choices])
        embeddings = await client.embeddings.create(model="gpt-test", input=["a", "b"])
        assert len(embeddings.data) == 2
        response = await client.responses.create(model="gpt-test", input="hi")
        assert response.usage is not None
        assert response.usage.total_tokens > 0
        speech = await client.audio.speech.create(model="gpt-test", voice="alloy", input="hi")
        assert len(speech.content) > 0
        rerank = await gw.client.post(
            "/v1/rerank", headers=auth(gw), json={"model": "gpt-test", "query": "q", "documents": ["a", "b"]}
        )
        assert rerank.status_code == 200
        assert len(rerank.json()["results"]) == 2
        paths = [r.path for r in mock.requests]
        assert paths == [
            "/v1/completions",
            "/v1/completions",
            "/v1/embeddings",
            "/v1/responses",
            "/v1/audio/speech",
            "/v1/rerank",
        ]
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert len(rows) == 6
    assert {r["status"] for r in rows} == {"ok"}
    assert rows[3]["total_tokens"] > 0  # the Responses API's input/output tokens


async def test_multipart_transcription_streams_the_file_and_rewrites_the_model(
    sqlite_dsn: str, mock: MockUpstream
) -> None:
    config = make_config(
        sqlite_dsn, "models:" + model_yaml("whisper-test", mock.base_url, aliases="[whisper]")
    )
    audio = bytes(range(256)) * 8192  # 2 MiB
    async with run_gateway(config) as gw:
        result = await sdk(gw).audio.transcriptions.create(model="whisper", file=("a.wav", audio))
        assert result.text
    received = mock.requests[-1]
    assert received.path == "/v1/audio/transcriptions"
    assert received.form["model"] == "whisper-test"
    assert received.file_bytes == len(audio)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"model": "nope", "messages": []}, 404, "model_not_found"),
        ({"messages": []}, 400, "bad_request"),
        (b"{broken", 400, "bad_request"),
        ({"model": "gpt-test", "padding": "x" * 5000}, 413, "request_too_large"),
    ],
)
async def test_client_mistakes_get_the_error_envelope(
    sqlite_dsn: str, mock: MockUpstream, body: Any, status: int, code: str
) -> None:
    config = make_config(
        sqlite_dsn,
        "server:\n  proxy:\n    max_request_body: 4kB\nmodels:" + model_yaml("gpt-test", mock.base_url),
    )
    async with run_gateway(config) as gw:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        response = await gw.client.post("/v1/chat/completions", headers=auth(gw), content=content)
        assert response.status_code == status
        assert response.json()["error"]["code"] == code
        if code == "model_not_found":  # issue 13 point 6: the error names the model asked for
            assert response.json()["error"]["message"].startswith("model 'nope' not found")
        assert mock.requests == []


async def test_unknown_key_is_rejected_before_anything_is_read(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url))
    async with run_gateway(config) as gw:
        response = await gw.client.post(
            "/v1/chat/completions",
            json={"model": "gpt-test"},
            headers={"Authorization": "Bearer vl_uk_" + "1" * 48},
        )
        assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthorized")
        assert mock.requests == []


async def test_upstream_errors_are_relayed_as_they_are(sqlite_dsn: str, mock: MockUpstream) -> None:
    mock.behaviour.fail = "echo_400"
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url))
    async with run_gateway(config) as gw:
        response = await gw.client.post(
            "/v1/chat/completions?api-version=1",
            headers=auth(gw),
            json={"model": "gpt-test", "messages": [{"role": "user", "content": "X1"}]},
        )
        assert response.status_code == 400
        assert "X1" in response.text
    assert mock.requests[-1].path == "/v1/chat/completions"  # the query string is not forwarded
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [(r["status"], r["status_code"]) for r in rows] == [("upstream_error", 400)]


async def test_unreachable_upstream_is_a_502(sqlite_dsn: str) -> None:
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", "http://127.0.0.1:9/v1"))
    async with run_gateway(config) as gw:
        response = await gw.client.post("/v1/chat/completions", headers=auth(gw), json={"model": "gpt-test"})
        assert (response.status_code, response.json()["error"]["code"]) == (502, "upstream_unavailable")


async def test_next_deployment_after_a_5xx_or_a_refused_connection(sqlite_dsn: str) -> None:
    async with open_mock_upstream(Behaviour(status=503)) as broken, open_mock_upstream() as healthy:
        models = f"""models:
  - name: multi
    strategy: priority
    deployments:
      - {{name: refused, provider: openai, base_url: "http://127.0.0.1:9/v1", priority: 0}}
      - {{name: broken, provider: openai, base_url: "{broken.base_url}", priority: 1}}
      - {{name: healthy, provider: vllm, base_url: "{healthy.base_url}", priority: 2}}
"""
        async with run_gateway(make_config(sqlite_dsn, models)) as gw:
            response = await gw.client.post("/v1/chat/completions", headers=auth(gw), json={"model": "multi"})
            assert response.status_code == 200
            assert len(broken.requests) == 1
            assert len(healthy.requests) == 1
            healthy.behaviour.status = 500
            last = await gw.client.post("/v1/chat/completions", headers=auth(gw), json={"model": "multi"})
            assert last.status_code == 500  # the last candidate's answer goes to the client as it is
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [r["deployment_name"] for r in rows] == ["multi/healthy", "multi/healthy"]


async def test_stream_that_dies_gets_exactly_one_incomplete_event(
    sqlite_dsn: str, mock: MockUpstream
) -> None:
    mock.behaviour.fail = "drop_mid_stream"
    mock.behaviour.stream_chunks = 10
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url))
    async with run_gateway(config) as gw:
        response = await gw.client.post(
            "/v1/chat/completions", headers=auth(gw), json={"model": "gpt-test", "stream": True}
        )
        body = response.content
        assert body.count(b"stream_incomplete") == 2  # "type" and "code" of the one event
        assert body.count(b'"error"') == 1
        assert b"[DONE]" not in body
        assert body.endswith(b'"code":"stream_incomplete"}}\n\n')
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [(r["status"], r["status_code"]) for r in rows] == [("incomplete", 502)]


async def test_a_stream_that_ends_with_its_head_gets_the_head_and_one_incomplete_event(
    sqlite_dsn: str, nursery: trio.Nursery
) -> None:
    """The upstream writes its head and the end of an empty body together: the end is at hand, the relay
    reads it before any event, and the client still gets the head, then the one abort event."""

    async def upstream(stream: trio.SocketStream) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            received += await stream.receive_some()
        head, _, body = received.partition(b"\r\n\r\n")
        length = int(
            next(line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")).split(
                b":"
            )[1]
        )
        while len(body) < length:
            body += await stream.receive_some()
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        await stream.aclose()

    listeners = await nursery.start(functools.partial(trio.serve_tcp, upstream, 0, host="127.0.0.1"))
    base_url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/v1"
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", base_url))
    async with run_gateway(config) as gw:
        with trio.fail_after(10):
            response = await gw.client.post(
                "/v1/chat/completions", headers=auth(gw), json={"model": "gpt-test", "stream": True}
            )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content.count(b"data: ") == 1
    assert response.content.endswith(b'"code":"stream_incomplete"}}\n\n')


async def test_model_timeout_bounds_a_stream(sqlite_dsn: str, mock: MockUpstream) -> None:
    mock.behaviour.stream_chunks = 20
    mock.behaviour.chunk_interval = 0.1
    config = make_config(
        sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url, extra="    timeout: 500ms")
    )
    async with run_gateway(config) as gw:
        response = await gw.client.post(
            "/v1/chat/completions", headers=auth(gw), json={"model": "gpt-test", "stream": True}
        )
        assert response.content.endswith(b'"code":"stream_incomplete"}}\n\n')
        with trio.fail_after(2):
            await mock.wait_client_closed()  # the gateway left before the two-second stream ended


@pytest.mark.parametrize("notice", [True, False], ids=["disconnect notice", "watcher task"])
@pytest.mark.parametrize("stream", [True, False])
async def test_client_disconnect_cancels_the_upstream_at_once(
    sqlite_dsn: str, mock: MockUpstream, stream: bool, notice: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through hypercorn the request learns of the disconnect from its notice (voidllm.web.disconnects), with
    no task of its own; under a server without one, a task watches receive()."""
    watchers: list[object] = []
    real_watch = handler._watch_disconnect

    async def counted(*args: Any) -> None:
        watchers.append(args)
        await real_watch(*args)

    monkeypatch.setattr(handler, "_watch_disconnect", counted)
    if not notice:
        monkeypatch.setattr(server, "install_disconnect_notices", lambda: None)
        monkeypatch.setattr(hypercorn.trio.tcp_server, "TaskGroup", hypercorn.trio.task_group.TaskGroup)
    if stream:
        mock.behaviour.stream_chunks, mock.behaviour.chunk_interval = 50, 0.05
    else:
        mock.behaviour.fail = "hang"
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url))
    async with run_gateway(config) as gw:
        received = trio.Event()

        async def call() -> None:
            async with httpx.AsyncClient(base_url=gw.url) as client:
                async with client.stream(
                    "POST",
                    "/v1/chat/completions",
                    headers=auth(gw),
                    json={"model": "gpt-test", "stream": stream},
                ) as response:
                    async for _ in response.aiter_bytes():
                        received.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            with trio.fail_after(5):
                if stream:
                    await received.wait()
                    await trio.sleep(0.2)  # a few chunks go by; the usage chunk is not sent yet
                else:
                    await mock.wait_requests()
            nursery.cancel_scope.cancel()  # the client goes away: its connection closes
        with trio.fail_after(
            2
        ):  # a hang is cut only by the model's timeout (minutes); the stream lasts 2.5 s
            await mock.wait_client_closed()  # before the upstream's answer ended
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [(r["status"], r["status_code"], r["stream"]) for r in rows] == [
        ("client_disconnect", 499, stream)
    ]
    assert len(watchers) == (0 if notice else 1)


async def test_sync_sdk_client_chat_stream_and_transcription(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(sqlite_dsn, "models:" + model_yaml("gpt-test", mock.base_url))
    async with run_gateway(config) as gw:
        key = gw.api_key()

        def use_sync_client() -> tuple[str, str, str]:
            with openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=10) as client:
                plain = client.chat.completions.create(
                    model="gpt-test", messages=[{"role": "user", "content": "a"}]
                )
                stream = client.chat.completions.create(model="gpt-test", stream=True, messages=[])
                streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
                heard = client.audio.transcriptions.create(model="gpt-test", file=("a.wav", b"RIFF" * 1000))
                return plain.choices[0].message.content or "", streamed, heard.text

        plain, streamed, heard = await trio.to_thread.run_sync(use_sync_client)
        assert plain == streamed == "Hello from the mock."
        assert heard


async def test_metrics_describe_the_traffic(sqlite_dsn: str, mock: MockUpstream) -> None:
    config = make_config(sqlite_dsn, "models:" + model_yaml("metrics-model", mock.base_url))
    async with run_gateway(config) as gw:
        await gw.client.post("/v1/chat/completions", headers=auth(gw), json={"model": "metrics-model"})
        await gw.client.post(
            "/v1/chat/completions", headers=auth(gw), json={"model": "metrics-model", "stream": True}
        )
        # a request's metrics are recorded as it finishes, just after its last byte went out
        served = 'voidllm_upstream_requests_total{model="metrics-model",provider="openai",status="200"} 2.0'

        async def recorded() -> bool:
            return served in (await gw.client.get("/metrics")).text

        with trio.fail_after(5):
            await poll_until(recorded, interval=0.01)
        text = (await gw.client.get("/metrics")).text
    expected = [
        'voidllm_upstream_requests_total{model="metrics-model",provider="openai",status="200"} 2.0',
        'voidllm_proxy_duration_seconds_count{model="metrics-model",stream="false"} 1.0',
        'voidllm_proxy_duration_seconds_count{model="metrics-model",stream="true"} 1.0',
        'voidllm_proxy_ttft_seconds_count{model="metrics-model"} 2.0',
        'voidllm_tokens_total{direction="prompt",model="metrics-model"} 20.0',
        'voidllm_tokens_total{direction="completion",model="metrics-model"} 16.0',
        "voidllm_active_streams 0.0",
        "voidllm_usage_buffer_depth",
        "voidllm_usage_events_dropped_total",
        "voidllm_proxy_overhead_seconds_count",
    ]
    missing = [line for line in expected if line not in text]
    assert missing == []


# -- read deadlines: on request bodies only, never on responses that stream for long ----------------------


def _short_read_timeout(config: Any, seconds: float) -> Any:
    import attrs

    proxy = attrs.evolve(config.server.proxy, read_timeout=seconds)
    return attrs.evolve(config, server=attrs.evolve(config.server, proxy=proxy))


async def test_a_stream_longer_than_read_timeout_is_not_cut(sqlite_dsn: str) -> None:
    async with open_mock_upstream(Behaviour(stream_chunks=6, chunk_interval=0.2)) as upstream:
        config = _short_read_timeout(
            make_config(sqlite_dsn, "models:" + model_yaml("m", upstream.base_url)), 0.3
        )
        async with run_gateway(config) as gw:
            body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            async with gw.client.stream(
                "POST", "/v1/chat/completions", json=body, headers=auth(gw)
            ) as response:
                events = [line async for line in response.aiter_lines() if line.startswith("data:")]
    assert events[-1] == "data: [DONE]"  # 1.2 s of streaming, four times the read timeout
    assert len(events) >= 7


async def test_a_request_body_that_stalls_gets_408(sqlite_dsn: str) -> None:
    async with open_mock_upstream() as upstream:
        config = _short_read_timeout(
            make_config(sqlite_dsn, "models:" + model_yaml("m", upstream.base_url)), 0.3
        )
        async with run_gateway(config) as gw:
            host, port = gw.url.removeprefix("http://").rsplit(":", 1)
            stream = await trio.open_tcp_stream(host, int(port))
            async with stream:
                head = (
                    "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {gw.api_key()}\r\n"
                    'Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"model": "m"'
                )
                await stream.send_all(head.encode())
                with trio.fail_after(5):
                    answer = b""
                    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                        answer += await stream.receive_some(65536)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"code":"request_timeout"' in answer
    assert len(upstream.requests) == 0
