"""Multipart uploads in any part order, end to end: raw multipart bodies and the Python ``openai`` SDK -> a
real gateway -> the mock upstream on real sockets, which records the body exactly as it arrived.

Python's SDK sends ``model`` before the file (streamed through); Node's ``openai`` SDK sends the file first
(held in memory within ``max_request_body``, then sent whole). Either way the upstream must receive the
client's bytes with only the model value replaced by the canonical name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
import openai
import pytest

from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream

BOUNDARY = b"order-b0undary"
CONTENT_TYPE = "multipart/form-data; boundary=" + BOUNDARY.decode()
# file bytes that look like framing: CRLF, a near-boundary, a closing-boundary lookalike
AUDIO = b"RIFF\x00\x10\x00\x00WAVEfmt \r\n--order-b0undar\r\n" + bytes(range(256)) * 512 + b"\r\n--\r\n"
LIMIT = 256 * 1024

Part = tuple[str, bytes, bool]  # name, content, is a file


def form(parts: Sequence[Part]) -> bytes:
    """A multipart/form-data body written by hand, in the order given."""
    out = []
    for name, content, is_file in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{name}.wav"' if is_file else "")
        headers = f"Content-Disposition: {disposition}\r\n"
        if is_file:
            headers += "Content-Type: audio/wav\r\n"
        out.append(b"--" + BOUNDARY + b"\r\n" + headers.encode() + b"\r\n" + content + b"\r\n")
    return b"".join(out) + b"--" + BOUNDARY + b"--\r\n"


def with_model(parts: Sequence[Part], model: bytes) -> list[Part]:
    return [(name, model if name == "model" else content, is_file) for name, content, is_file in parts]


FILE: Part = ("file", AUDIO, True)
MODEL: Part = ("model", b"whisper", False)
LANGUAGE: Part = ("language", b"en", False)
PROMPT: Part = ("prompt", b"Vocabulary: VoidLLM, trio", False)
FORMAT: Part = ("response_format", b"json", False)
ORDERS = {  # the parts, and whether the gateway holds the body (a file part comes before the model field)
    "file first": ([FILE, MODEL, LANGUAGE], True),
    "model first": ([MODEL, LANGUAGE, FILE], False),
    "model last after several fields": ([PROMPT, LANGUAGE, FORMAT, FILE, MODEL], True),
    "model last after text fields only": ([PROMPT, LANGUAGE, MODEL], False),
}


@pytest.fixture
async def mock() -> AsyncIterator[MockUpstream]:
    async with open_mock_upstream() as upstream:
        yield upstream


@pytest.fixture
async def gw(sqlite_dsn: str, mock: MockUpstream) -> AsyncIterator[RunningGateway]:
    models = "models:" + model_yaml("whisper-test", mock.base_url, aliases="[whisper]")
    config = make_config(sqlite_dsn, f"server:\n  proxy:\n    max_request_body: {LIMIT}\n" + models)
    async with run_gateway(config) as gateway:
        yield gateway


def headers(gw: RunningGateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.api_key()}", "Content-Type": CONTENT_TYPE}


async def chunked(body: bytes, size: int = 10_000) -> AsyncIterator[bytes]:
    """The body in pieces, sent without a Content-Length (chunked transfer encoding)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_every_part_order_reaches_the_upstream_rewritten_and_otherwise_byte_exact(
    gw: RunningGateway, mock: MockUpstream, order: str, declared: bool
) -> None:
    parts, held = ORDERS[order]
    body = form(parts)
    content = body if declared else chunked(body)
    answer = await gw.client.post("/v1/audio/transcriptions", headers=headers(gw), content=content)
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"]
    [received] = mock.requests
    expected = form(with_model(parts, b"whisper-test"))
    assert received.body == expected
    assert received.form["model"] == "whisper-test"
    if declared or held:  # a held body is sent with its length; a streamed one keeps the client's framing
        assert received.header("content-length") == str(len(expected))
    else:
        assert received.header("transfer-encoding") == "chunked"


async def test_a_body_without_a_model_field_is_a_400_naming_model(
    gw: RunningGateway, mock: MockUpstream
) -> None:
    for parts in ([FILE, LANGUAGE], [LANGUAGE, FILE], [PROMPT, LANGUAGE], [FILE]):
        for content in (form(parts), chunked(form(parts))):
            answer = await gw.client.post("/v1/audio/transcriptions", headers=headers(gw), content=content)
            assert answer.status_code == 400
            error = answer.json()["error"]
            assert (error["code"], error["message"]) == ("bad_request", "model field is required")
    assert mock.requests == []


async def test_a_second_model_field_after_a_file_is_refused(gw: RunningGateway, mock: MockUpstream) -> None:
    small: Part = ("file", AUDIO[:1000], True)
    body = form([small, MODEL, small, ("model", b"expensive", False)])
    answer = await gw.client.post("/v1/audio/transcriptions", headers=headers(gw), content=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "the model field must appear only once"
    assert mock.requests == []


async def test_a_held_body_over_max_request_body_is_a_413(gw: RunningGateway, mock: MockUpstream) -> None:
    big: Part = ("file", bytes(LIMIT), True)
    bodies = {
        "declared": form([big, MODEL]),  # refused from its Content-Length, before anything is read
        "chunked, before the model field": chunked(form([big, MODEL])),
        "chunked, after the model field": chunked(form([FILE, MODEL, ("mask", bytes(LIMIT), True)])),
        # model first: streamed on to the upstream, so the limit is found while the upstream reads it
        "chunked, streamed": chunked(form([MODEL, big])),
    }
    for name, content in bodies.items():
        answer = await gw.client.post("/v1/audio/transcriptions", headers=headers(gw), content=content)
        assert answer.status_code == 413, (name, answer.text)
        error = answer.json()["error"]
        assert (error["code"], error["message"]) == (
            "request_too_large",
            f"request body exceeds {LIMIT} bytes",
        )
    assert all(len(request.body) <= LIMIT for request in mock.requests)  # the streamed one was cut short
    just_fits = form([("file", bytes(LIMIT - 1000), True), MODEL])
    assert len(just_fits) <= LIMIT
    answer = await gw.client.post("/v1/audio/transcriptions", headers=headers(gw), content=chunked(just_fits))
    assert answer.status_code == 200
    assert mock.requests[-1].body == form(
        [("file", bytes(LIMIT - 1000), True), ("model", b"whisper-test", False)]
    )


async def test_a_held_body_goes_to_the_next_upstream_after_a_503(sqlite_dsn: str) -> None:
    """A held body is bytes, so it may be sent again, like a JSON body (a streamed one is sent once)."""
    async with open_mock_upstream(Behaviour(status=503)) as broken, open_mock_upstream() as healthy:
        models = f"""models:
  - name: whisper-test
    strategy: priority
    deployments:
      - {{name: broken, provider: openai, base_url: "{broken.base_url}", priority: 0}}
      - {{name: healthy, provider: openai, base_url: "{healthy.base_url}", priority: 1}}
"""
        async with run_gateway(make_config(sqlite_dsn, models)) as gateway:
            body = form([FILE, ("model", b"whisper-test", False)])
            answer = await gateway.client.post(
                "/v1/audio/transcriptions", headers=headers(gateway), content=body
            )
            assert answer.status_code == 200
            assert [r.body for r in broken.requests] == [body]
            assert [r.body for r in healthy.requests] == [body]


async def test_the_python_sdk_transcription_is_rewritten_and_otherwise_byte_exact(
    gw: RunningGateway, mock: MockUpstream
) -> None:
    sent: list[bytes] = []

    async def keep(request: httpx.Request) -> None:
        sent.append(await request.aread())

    async with httpx.AsyncClient(event_hooks={"request": [keep]}) as http:
        client = openai.AsyncOpenAI(
            base_url=gw.url + "/v1", api_key=gw.api_key(), max_retries=0, timeout=10, http_client=http
        )
        result = await client.audio.transcriptions.create(
            model="whisper", file=("a.wav", AUDIO), language="en", prompt="VoidLLM"
        )
    assert result.text
    [body] = sent
    [received] = mock.requests
    assert received.form == {"model": "whisper-test", "language": "en", "prompt": "VoidLLM"}
    assert received.file_fields == ("file",)
    model_part = b'name="model"\r\n\r\nwhisper\r\n'
    assert body.count(model_part) == 1
    assert body.index(model_part) < body.index(b'name="file"')  # Python's SDK sends the model first
    assert received.body == body.replace(model_part, b'name="model"\r\n\r\nwhisper-test\r\n')
