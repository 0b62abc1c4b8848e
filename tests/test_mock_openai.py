"""The mock OpenAI-compatible upstream, driven by the official ``openai`` SDK and raw httpx.

Every test here talks to a real socket, so they run on the real clock (no autojump) and keep their
waits short.
"""

from __future__ import annotations

import base64
import functools
import json
import random
import signal
import struct
import subprocess
import sys
import types
from collections.abc import AsyncIterator
from contextlib import aclosing

import httpx
import openai
import pytest
import trio

import voidllm.testing
from voidllm.testing import mock_openai
from voidllm.testing.mock_openai import (
    Behaviour,
    MockUpstream,
    _MultipartParser,
    open_mock_upstream,
)

TEXT = Behaviour().completion_text
MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
async def mock() -> AsyncIterator[MockUpstream]:
    async with open_mock_upstream() as upstream:
        yield upstream


@pytest.fixture
async def client(mock: MockUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=mock.base_url, api_key="sk-test", max_retries=0, timeout=5)
    yield sdk
    await sdk.close()


@pytest.fixture
async def http(mock: MockUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mock.base_url, timeout=5) as client:
        yield client


def sse_data(text: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order."""
    return [line.removeprefix("data: ") for line in text.split("\n") if line.startswith("data: ")]


# ------------------------------------------------------------------------------- endpoints (SDK)


async def test_chat_completion(mock: MockUpstream, client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=MESSAGES, extra_headers={"x-request-id": "req-123"}
    )
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-test"
    assert completion.choices[0].message.content == TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 8, 18)
    assert raw.headers["x-request-id"] == "req-123"
    assert raw.headers["x-ratelimit-remaining-requests"] == "99"


async def test_chat_stream_without_usage(mock: MockUpstream, client: openai.AsyncOpenAI) -> None:
    mock.behaviour.stream_chunks = 4
    stream = await client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert len(chunks) == 1 + 4 + 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == TEXT
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None and chunk.model == "gpt-test" for chunk in chunks)


async def test_chat_stream_with_include_usage(mock: MockUpstream, client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert len(chunks) == 1 + 5 + 1 + 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 18
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks[:-1]) == TEXT


async def test_chat_stream_wire_format(http: httpx.AsyncClient) -> None:
    body = {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    response = await http.post("/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers
    assert response.text.endswith("\n\ndata: [DONE]\n\n")
    chunks = [json.loads(data) for data in sse_data(response.text)[:-1]]
    assert all('"usage":null' in data for data in sse_data(response.text)[:-2])
    assert [chunk["usage"] for chunk in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 8

    plain = await http.post("/chat/completions", json={"model": "m", "messages": MESSAGES, "stream": True})
    assert '"usage"' not in plain.text
    assert sse_data(plain.text)[-1] == "[DONE]"


async def test_completions(client: openai.AsyncOpenAI) -> None:
    completion = await client.completions.create(model="davinci-test", prompt="Say hello")
    assert completion.object == "text_completion"
    assert completion.choices[0].text == TEXT
    assert completion.usage is not None
    assert completion.usage.total_tokens == 18

    stream = await client.completions.create(
        model="davinci-test", prompt="Say hello", stream=True, stream_options={"include_usage": True}
    )
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert "".join(choice.text for chunk in chunks for choice in chunk.choices) == TEXT
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 10


async def test_embeddings(client: openai.AsyncOpenAI, http: httpx.AsyncClient) -> None:
    # The SDK asks for base64 unless told otherwise, and decodes it.
    result = await client.embeddings.create(model="embed-test", input=["a", "b", "c"])
    assert [item.index for item in result.data] == [0, 1, 2]
    assert result.data[0].embedding == [(index % 8 + 1) / 64 for index in range(8)]
    assert result.usage.prompt_tokens == result.usage.total_tokens == 10

    single = await client.embeddings.create(
        model="embed-test", input="one", encoding_format="float", dimensions=4
    )
    assert len(single.data) == 1
    assert single.data[0].embedding == [1 / 64, 2 / 64, 3 / 64, 4 / 64]

    raw = await http.post("/embeddings", json={"model": "e", "input": [1, 2, 3], "encoding_format": "base64"})
    [item] = raw.json()["data"]
    assert struct.unpack("<8f", base64.b64decode(item["embedding"]))[0] == 1 / 64


async def test_responses_api(client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(model="gpt-test", input="Say hello")
    assert response.output_text == TEXT
    assert response.usage is not None
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (10, 8, 18)

    async with await client.responses.create(model="gpt-test", input="Say hello", stream=True) as stream:
        events = [event async for event in stream]
    types = [event.type for event in events]
    assert types == ["response.created"] + ["response.output_text.delta"] * 5 + ["response.completed"]
    assert "".join(event.delta for event in events if event.type == "response.output_text.delta") == TEXT
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.usage is not None
    assert completed.response.usage.total_tokens == 18


async def test_transcription_of_a_2mb_upload(mock: MockUpstream, client: openai.AsyncOpenAI) -> None:
    audio = random.Random(7).randbytes(2 * 1024 * 1024)
    transcription = await client.audio.transcriptions.create(
        model="whisper-1", file=("speech.mp3", audio, "audio/mpeg"), language="en"
    )
    assert transcription.text == TEXT
    [received] = mock.requests
    assert received.path == "/v1/audio/transcriptions"
    assert received.form == {"model": "whisper-1", "language": "en"}
    assert received.file_fields == ("file",)
    assert received.file_bytes == len(audio)
    assert len(received.body) > len(audio)


async def test_speech_is_streamed_audio(client: openai.AsyncOpenAI) -> None:
    speech = await client.audio.speech.create(model="tts-1", voice="alloy", input="Hello")
    assert speech.response.headers["content-type"] == "audio/mpeg"
    assert speech.response.headers["transfer-encoding"] == "chunked"
    assert speech.content.startswith(b"ID3")
    assert len(speech.content) == 32 * 1024 + 10


# ------------------------------------------------------------------------------ endpoints (httpx)


async def test_other_endpoints(mock: MockUpstream, http: httpx.AsyncClient) -> None:
    moderation = (await http.post("/moderations", json={"input": ["a", "b"]})).json()
    assert [result["flagged"] for result in moderation["results"]] == [False, False]

    body = {"query": "q", "documents": ["x", "y", "z"], "top_n": 2, "return_documents": True}
    rerank = (await http.post("/rerank", json={"model": "rerank-test", **body})).json()
    assert [result["index"] for result in rerank["results"]] == [0, 1]
    assert rerank["results"][0]["relevance_score"] > rerank["results"][1]["relevance_score"]
    assert rerank["results"][1]["document"] == {"text": "y"}

    images = (await http.post("/images/generations", json={"model": "img", "prompt": "p", "n": 2})).json()
    assert len(images["data"]) == 2
    assert base64.b64decode(images["data"][0]["b64_json"]).startswith(b"\x89PNG\r\n\x1a\n")

    image = {"image": ("a.png", b"\x89PNG" * 100)}
    edit = await http.post("/images/edits", data={"model": "img", "prompt": "p"}, files=image)
    assert len(edit.json()["data"]) == 1
    assert mock.requests[-1].form == {"model": "img", "prompt": "p"}
    assert mock.requests[-1].file_bytes == 400

    form = {"model": "whisper-1", "response_format": "text"}
    translation = await http.post("/audio/translations", data=form, files={"file": ("a.wav", b"RIFF")})
    assert translation.headers["content-type"].startswith("text/plain")
    assert translation.text == TEXT

    mock.by_model["special"] = Behaviour()
    models = (await http.get("/models")).json()
    assert [model["id"] for model in models["data"]] == ["mock-model", "special"]
    assert (await http.get("/models/special")).json()["id"] == "special"


async def test_unknown_path_and_invalid_json(http: httpx.AsyncClient) -> None:
    missing = await http.post("/nope", json={})
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "message": "Invalid URL (POST /v1/nope)",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert (await http.get("/chat/completions")).status_code == 404

    json_type = {"content-type": "application/json"}
    invalid = await http.post("/chat/completions", content=b"{not json", headers=json_type)
    assert invalid.status_code == 400
    assert invalid.json()["error"]["type"] == "invalid_request_error"
    not_multipart = await http.post("/audio/transcriptions", json={"model": "whisper-1"})
    assert not_multipart.status_code == 400


async def test_chunked_request_body(mock: MockUpstream, http: httpx.AsyncClient) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        yield b'{"model": "chunky", '
        yield b'"messages": []}'

    response = await http.post("/chat/completions", content=pieces())
    assert response.json()["model"] == "chunky"
    assert mock.requests[-1].header("transfer-encoding") == "chunked"


# ---------------------------------------------------------------------------------- failure modes


async def test_hang_until_the_client_times_out(mock: MockUpstream) -> None:
    mock.behaviour.fail = "hang"
    async with openai.AsyncOpenAI(base_url=mock.base_url, api_key="k", max_retries=0, timeout=0.3) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="m", messages=MESSAGES)
    with trio.fail_after(2):
        closed = await mock.wait_client_closed()
    assert closed.path == "/v1/chat/completions"


async def test_reset(mock: MockUpstream, client: openai.AsyncOpenAI) -> None:
    mock.behaviour.fail = "reset"
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert len(mock.requests) == 1
    assert mock.client_closed == []


async def read_lines(response: httpx.Response, lines: list[str]) -> None:
    """Append the response's lines to ``lines`` as they come (kept when the stream breaks)."""
    async for line in response.aiter_lines():
        lines.append(line)


async def test_drop_mid_stream(mock: MockUpstream, http: httpx.AsyncClient) -> None:
    mock.behaviour.fail = "drop_mid_stream"
    mock.behaviour.stream_chunks = 6
    lines: list[str] = []
    async with http.stream("POST", "/chat/completions", json={"model": "m", "stream": True}) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            await read_lines(response, lines)
    data = [line for line in lines if line.startswith("data: ")]
    assert len(data) == (1 + 6 + 1 + 1) // 2
    assert "data: [DONE]" not in lines


async def test_echo_400_carries_the_request_body(mock: MockUpstream, client: openai.AsyncOpenAI) -> None:
    mock.behaviour.fail = "echo_400"
    marker = "zk-marker-5f0c2a"
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": marker}])
    assert caught.value.status_code == 400
    assert marker in caught.value.message
    assert json.loads(caught.value.body["message"])["messages"][0]["content"] == marker  # type: ignore[index]


async def test_echo_500_carries_the_request_body_in_a_server_error(
    mock: MockUpstream, http: httpx.AsyncClient
) -> None:
    mock.behaviour.fail = "echo_500"
    marker = "zk-marker-5f0c2b"
    response = await http.post("/chat/completions", json={"model": "m", "messages": [marker]})
    assert response.status_code == 500
    assert json.loads(response.json()["error"]["message"])["messages"] == [marker]


async def test_rate_limited_with_retry_headers(mock: MockUpstream, client: openai.AsyncOpenAI) -> None:
    extra = {"x-extra": "1"}
    mock.behaviour = Behaviour(status=429, retry_after="2", retry_after_ms="1500", extra_headers=extra)
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    headers = caught.value.response.headers
    assert (headers["retry-after"], headers["retry-after-ms"], headers["x-extra"]) == ("2", "1500", "1")
    assert headers["x-ratelimit-remaining-requests"] == "99"
    assert caught.value.code == "rate_limit_exceeded"


async def test_other_2xx_status_keeps_the_body(mock: MockUpstream, http: httpx.AsyncClient) -> None:
    mock.behaviour.status = 201
    response = await http.post("/chat/completions", json={"model": "m"})
    assert response.status_code == 201
    assert response.json()["object"] == "chat.completion"


async def test_stall_body(mock: MockUpstream) -> None:
    mock.behaviour = Behaviour(fail="stall_body", status=503)
    async with httpx.AsyncClient(base_url=mock.base_url, timeout=httpx.Timeout(5, read=0.3)) as http:
        async with http.stream("POST", "/chat/completions", json={"model": "m"}) as response:
            assert response.status_code == 503
            assert int(response.headers["content-length"]) > 4096
            with pytest.raises(httpx.ReadTimeout):
                await response.aread()
    with trio.fail_after(2):
        await mock.wait_client_closed()


async def test_latency_delays_the_answer(
    autojump_clock: trio.testing.MockClock, mock: MockUpstream, http: httpx.AsyncClient
) -> None:
    mock.behaviour.latency = 0.1
    started = trio.current_time()
    await http.post("/chat/completions", json={"model": "m"})
    assert trio.current_time() - started == pytest.approx(0.1)


async def test_behaviour_by_model(mock: MockUpstream, client: openai.AsyncOpenAI) -> None:
    mock.by_model["down"] = Behaviour(status=503)
    mock.by_model["chatty"] = Behaviour(completion_text="Other words.")
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="down", messages=MESSAGES)
    chatty = await client.chat.completions.create(model="chatty", messages=MESSAGES)
    assert chatty.choices[0].message.content == "Other words."
    default = await client.chat.completions.create(model="other", messages=MESSAGES)
    assert default.choices[0].message.content == TEXT


def test_behaviour_rejects_unknown_fail_modes() -> None:
    with pytest.raises(ValueError, match="fail"):
        Behaviour(fail="explode")
    behaviour = Behaviour()
    with pytest.raises(ValueError, match="fail"):
        behaviour.fail = "explode"


# ------------------------------------------------------------------------- recording, connections


async def test_requests_are_recorded(mock: MockUpstream, client: openai.AsyncOpenAI) -> None:
    await client.chat.completions.create(
        model="m", messages=MESSAGES, extra_query={"api-version": "2024"}, extra_headers={"X-Custom": "Yes"}
    )
    [received] = mock.requests
    assert received.method == "POST"
    assert received.path == "/v1/chat/completions?api-version=2024"
    assert received.header("X-Custom") == "Yes"
    assert received.header("authorization") == "Bearer sk-test"
    assert all(name == name.lower() for name, _ in received.headers)
    assert received.json() == {"model": "m", "messages": MESSAGES}
    assert received.received_at <= trio.current_time()
    assert received.form == {}
    assert received.file_bytes == 0

    mock.record = False
    await client.models.list()
    assert len(mock.requests) == 1
    mock.clear()
    assert mock.requests == []


async def test_client_closing_mid_stream_is_recorded(mock: MockUpstream, http: httpx.AsyncClient) -> None:
    mock.behaviour = Behaviour(stream_chunks=10, chunk_interval=30.0)
    body = {"model": "m", "stream": True}
    with trio.fail_after(2):
        async with http.stream("POST", "/chat/completions?x=1", json=body) as response:
            async with aclosing(response.aiter_lines()) as lines:
                first = await anext(lines)
            assert first.startswith("data: ")  # flushed at once, long before the next event
        closed = await mock.wait_client_closed()
    assert closed.path == "/v1/chat/completions?x=1"
    assert closed.at >= mock.requests[0].received_at
    with trio.fail_after(2):
        await mock.wait_no_connections()


async def test_keep_alive_reuses_one_connection(mock: MockUpstream) -> None:
    async with httpx.AsyncClient(base_url=mock.base_url) as http:
        for _ in range(5):
            response = await http.post("/chat/completions", json={"model": "m"})
            assert response.status_code == 200
        assert mock.open_connections == 1
    assert mock.client_closed == []


# ------------------------------------------------------------------------------- parser, CLI, API


def test_multipart_parser_handles_any_split() -> None:
    boundary = b"XyZ"
    file_content = b"\r\n--Xy not a boundary \r\n--X\r\n-"  # prefixes of the delimiter
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n'
        b"Content-Type: audio/mpeg\r\n\r\n" + file_content + b"\r\n--XyZ--\r\n"
    )
    for size in (1, 2, 3, 7, len(body)):
        parser = _MultipartParser(boundary)
        for start in range(0, len(body), size):
            parser.feed(body[start : start + size])
        assert parser.complete
        assert parser.error is None
        assert parser.fields == {"model": "whisper-1"}
        assert (parser.file_fields, parser.file_bytes) == (["file"], len(file_content))


def test_exports_match_the_public_names() -> None:
    module = mock_openai
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", module.__name__) == module.__name__
    }
    assert sorted(public) == sorted(module.__all__)
    assert voidllm.testing.__all__ == [name for name in module.__all__ if name != "main"]
    assert all(getattr(voidllm.testing, name) is getattr(module, name) for name in voidllm.testing.__all__)


@pytest.mark.slow
async def test_cli_serves_until_sigterm() -> None:
    command = [
        sys.executable,
        "-m",
        "voidllm.testing.mock_openai",
        "--port",
        "0",
        "--latency",
        "1ms",
        "--stream-chunks",
        "2",
        "--chunk-interval",
        "1ms",
    ]
    pipe = subprocess.PIPE
    run = functools.partial(trio.run_process, command, stdout=pipe, stderr=pipe, check=False)
    with trio.fail_after(8):
        async with trio.open_nursery() as nursery:  # on failure, cancelling the nursery kills the process
            process: trio.Process = await nursery.start(run)
            assert process.stdout is not None
            assert process.stderr is not None
            line = b""
            while not line.endswith(b"\n"):
                line += await process.stdout.receive_some(1024)
            url = line.decode().strip().removeprefix("listening ")
            assert url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient(base_url=url + "/v1") as http:
                response = await http.post("/chat/completions", json={"model": "m", "stream": True})
            assert len(sse_data(response.text)) == 1 + 2 + 1 + 1
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
            assert await process.stderr.receive_some(65536) == b""  # no runpy double-import warning


async def test_drop_mid_body_of_a_plain_response() -> None:
    async with open_mock_upstream(Behaviour(fail="drop_mid_stream")) as mock:
        async with httpx.AsyncClient(base_url=mock.base_url) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post("/chat/completions", json={"model": "m"})
            # the server keeps serving after dropping one response
            mock.behaviour.fail = None
            assert (await client.post("/chat/completions", json={"model": "m"})).status_code == 200
