"""The passthrough adapter (openai, vllm, ollama, custom), bytes only (framing: tests/test_sse_framing.py).

Golden streams are OpenAI ``chat.completion.chunk`` streams as documented (role chunk, content deltas, tool
call deltas, the ``include_usage`` chunk with empty ``choices``, ``data: [DONE]``) and a Responses API stream.
Every stream is also fed one byte at a time and in seeded random splits.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import orjson
import pytest

from voidllm.providers import passthrough
from voidllm.providers.base import Adapter, StreamTranslationError, Target, Usage
from voidllm.providers.passthrough import IdentityStreamTranslator, PassthroughAdapter, openai_usage

if TYPE_CHECKING:
    from collections.abc import Iterator

CHUNK = (
    '{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
    '"choices":[{choice}],"usage":null}}'
)
CHAT_EVENTS = [
    CHUNK.format(
        choice='{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null}'
    ),
    CHUNK.format(choice='{"index":0,"delta":{"content":"Hel"},"finish_reason":null}'),
    CHUNK.format(choice='{"index":0,"delta":{"content":"lo \\"usage\\": {}"},"finish_reason":null}'),
    CHUNK.format(
        choice='{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function",'
        '"function":{"name":"f","arguments":""}}]},"finish_reason":null}'
    ),
    CHUNK.format(
        choice='{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"finish_reason":null}'
    ),
    CHUNK.format(choice='{"index":0,"delta":{},"finish_reason":"tool_calls"}'),
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],'
    '"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0}}}',
    "[DONE]",
]
CHAT_STREAM = b"".join(b"data: " + event.encode() + b"\n\n" for event in CHAT_EVENTS)
RESPONSES_STREAM = (
    b"event: response.created\n"
    b'data: {"type":"response.created","response":{"id":"resp_1","status":"in_progress","usage":null}}\n\n'
    b"event: response.output_text.delta\n"
    b'data: {"type":"response.output_text.delta","delta":"Hi"}\n\n'
    b"event: response.completed\n"
    b'data: {"type":"response.completed","response":{"id":"resp_1","status":"completed",'
    b'"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}}\n\n'
)


def splits(data: bytes, how: str) -> Iterator[bytes]:
    if how == "whole":
        yield data
    elif how == "bytes":
        yield from (data[i : i + 1] for i in range(len(data)))
    else:
        rng = random.Random(how)
        pos = 0
        while pos < len(data):
            size = rng.randint(1, 64)
            yield data[pos : pos + size]
            pos += size


def relay(data: bytes, how: str = "whole") -> tuple[IdentityStreamTranslator, bytes]:
    translator = PassthroughAdapter().stream_translator(model="gpt-4o-mini")
    out = b"".join([translator.feed(piece) for piece in splits(data, how)]) + translator.finish()
    return translator, out


HOW = ["whole", "bytes", "random-1", "random-2", "random-3"]

# --- build_call ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "path", "url"),
    [
        ("https://api.openai.com/v1", "chat/completions", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/v1/", "chat/completions", "https://api.openai.com/v1/chat/completions"),
        ("http://10.0.0.5:8000/v1//", "/embeddings", "http://10.0.0.5:8000/v1/embeddings"),
        ("http://ollama:11434/v1", "audio/speech", "http://ollama:11434/v1/audio/speech"),
    ],
)
def test_url(base_url: str, path: str, url: str) -> None:
    assert PassthroughAdapter().build_call(path, {}, Target(base_url), stream=False).url == url


def test_bearer_only_with_a_key() -> None:
    keyed = PassthroughAdapter().build_call(
        "chat/completions", {}, Target("http://x/v1", api_key="sk-1"), stream=True
    )
    assert keyed.headers == [(b"content-type", b"application/json"), (b"authorization", b"Bearer sk-1")]
    plain = PassthroughAdapter().build_call("chat/completions", {}, Target("http://x/v1"), stream=True)
    assert plain.headers == [(b"content-type", b"application/json")]


def test_body_is_the_payload_unchanged() -> None:
    payload = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "h\u00e9llo"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "unknown_vendor_field": [1, {"a": None}],
    }
    assert (
        orjson.loads(
            PassthroughAdapter().build_call("chat/completions", payload, Target("http://x"), stream=True).body
        )
        == payload
    )


# --- translate_response -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "usage"),
    [
        (
            b'{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}',
            Usage(3, 4, 7),
        ),
        (b'{"object":"list","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}', Usage(8, 0, 8)),
        (
            b'{"object":"response","usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}',
            Usage(5, 2, 7),
        ),
        (b'  {"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":1}}', Usage(3, 4, 7)),
        (b'{"usage":{"prompt_tokens":"3","completion_tokens":4}}', None),
        (b'{"usage":{"prompt_tokens":-1}}', None),
        (b'{"usage":{"prompt_tokens":true}}', None),
        (b'{"usage":{"prompt_tokens":99999999999999999999}}', None),
        (b'{"usage":{"cost":1}}', None),
        (b'{"usage":null}', None),
        (b'{"error":{"message":"bad"}}', None),
        (b"[1,2]", None),
        (b"{not json", None),
        (b"ID3\x04\x00binary mp3", None),
        (b"", None),
    ],
)
def test_translate_response_is_identity_with_usage(body: bytes, usage: Usage | None) -> None:
    out, found = PassthroughAdapter().translate_response(body, model="m")
    assert out is body
    assert found == usage


def test_openai_usage_never_raises() -> None:
    assert openai_usage([1]) is None
    assert openai_usage({"prompt_tokens": 2**63}) is None
    assert openai_usage({"completion_tokens": 5}) == Usage(0, 5, 5)


# --- identity stream ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", HOW)
def test_chat_stream_is_relayed_unchanged(how: str) -> None:
    translator, out = relay(CHAT_STREAM, how)
    assert out == CHAT_STREAM
    assert translator.done
    assert translator.usage == Usage(11, 7, 18)


@pytest.mark.parametrize("how", HOW)
def test_crlf_is_normalised(how: str) -> None:
    translator, out = relay(CHAT_STREAM.replace(b"\n", b"\r\n"), how)
    assert out == CHAT_STREAM
    assert translator.done


def test_lone_cr_line_endings() -> None:
    translator, out = relay(CHAT_STREAM.replace(b"\n", b"\r"), "bytes")
    assert out == CHAT_STREAM
    assert translator.done


@pytest.mark.parametrize("how", HOW)
def test_responses_stream_ends_at_its_terminal_event(how: str) -> None:
    translator, out = relay(RESPONSES_STREAM + b'data: {"type":"after"}\n\n', how)
    assert out == RESPONSES_STREAM
    assert translator.done
    assert translator.usage == Usage(5, 2, 7)


def test_nothing_after_done_is_relayed() -> None:
    translator = IdentityStreamTranslator()
    out = translator.feed(b"data: [DONE]\n\ndata: {}\n\n")
    assert out == b"data: [DONE]\n\n"
    assert translator.feed(b"data: more\n\n") == b""
    assert translator.finish() == b""


def test_stream_without_done_is_incomplete() -> None:
    translator, out = relay(CHAT_STREAM[: CHAT_STREAM.index(b"data: [DONE]")])
    assert out == CHAT_STREAM[: CHAT_STREAM.index(b"data: [DONE]")]
    assert not translator.done
    assert translator.usage == Usage(11, 7, 18)  # partial counts survive


def test_unterminated_done_is_relayed_at_eof() -> None:
    translator, out = relay(CHAT_STREAM.rstrip(b"\n"))
    assert out == CHAT_STREAM
    assert translator.done


def test_unterminated_other_event_is_dropped_at_eof() -> None:
    translator, out = relay(b'data: {"choices":[]}\n\ndata: {"partial"')
    assert out == b'data: {"choices":[]}\n\n'
    assert not translator.done


def test_comments_and_fields_travel_inside_their_event() -> None:
    stream = b": ping\n\nid: 7\nretry: 10\ndata: {}\n\n\n\ndata: [DONE]\n\n"
    translator, out = relay(stream, "bytes")
    assert out == b": ping\n\nid: 7\nretry: 10\ndata: {}\n\ndata: [DONE]\n\n"
    assert translator.done


def test_malformed_usage_event_is_relayed_without_usage() -> None:
    translator, out = relay(b'data: {"usage": {"prompt_tokens": 1\n\ndata: [DONE]\n\n')
    assert out.startswith(b'data: {"usage"')
    assert translator.usage is None
    assert translator.done


def test_oversized_event_raises() -> None:
    translator = IdentityStreamTranslator()
    pieces = [b"data: " + b"x" * (1024 * 1024)] * 5
    with pytest.raises(StreamTranslationError, match="longer than"):
        b"".join([translator.feed(piece) for piece in pieces])


def test_conforms_to_the_adapter_protocol() -> None:
    adapter: Adapter = PassthroughAdapter()
    translator = adapter.stream_translator(model="m")
    assert (translator.usage, translator.done) == (None, False)


def test_exports() -> None:
    assert all(hasattr(passthrough, name) for name in passthrough.__all__)
