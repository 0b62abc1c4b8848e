"""Egress stream translation (Anthropic events -> OpenAI chunks), fed bytes only.

The upstream streams are the Messages streaming documentation's examples (``fixtures/anthropic/*.sse``).
The expected chunk sequences are written out by hand below. Chunk boundaries must never change the
result, so each stream is also fed whole, split at every offset, one byte at a time, in seeded random
sizes and with CRLF line ends; fed one upstream event at a time, each event's chunks must come out at once.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from voidllm.providers.anthropic import AnthropicAdapter, AnthropicStreamTranslator
from voidllm.providers.base import StreamTranslationError, Usage

if TYPE_CHECKING:
    from collections.abc import Iterable

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
ADAPTER = AnthropicAdapter(clock=lambda: 1_700_000_000)
DONE = b"data: [DONE]\n\n"


def stream(name: str) -> bytes:
    return (FIXTURES / f"{name}.sse").read_bytes()


def events(raw: bytes) -> list[bytes]:
    return [event + b"\n\n" for event in raw.split(b"\n\n") if event]


def translator(include_usage: bool = False) -> AnthropicStreamTranslator:
    return ADAPTER.stream_translator(model="claude", include_usage=include_usage)


def feed_all(pieces: Iterable[bytes], include_usage: bool = False) -> bytes:
    machine = translator(include_usage)
    out = b"".join(machine.feed(piece) for piece in pieces) + machine.finish()
    assert machine.done
    return out


def chunks(out: bytes) -> list[Any]:
    """The emitted events, parsed; every event must be exactly one ``data:`` line and a blank line."""
    assert out.endswith(b"\n\n")
    parsed: list[Any] = []
    for event in out[:-2].split(b"\n\n"):
        assert event.startswith(b"data: ")
        assert b"\n" not in event
        payload = event[len(b"data: ") :]
        parsed.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return parsed


# --- the expected OpenAI chunks, written independently of the translator -----------------------------


def chunk(message_id: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{message_id}",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "claude",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def text(message_id: str, content: str) -> dict[str, Any]:
    return chunk(message_id, {"content": content})


def tool_header(message_id: str, index: int, call_id: str, name: str) -> dict[str, Any]:
    call = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    return chunk(message_id, {"tool_calls": [call]})


def arguments(message_id: str, index: int, fragment: str) -> dict[str, Any]:
    return chunk(message_id, {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})


def role(message_id: str) -> dict[str, Any]:
    return chunk(message_id, {"role": "assistant", "content": ""})


def finish(message_id: str, reason: str) -> dict[str, Any]:
    return chunk(message_id, {}, reason)


TEXT_ID = "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"
TEXT_CHUNKS = [role(TEXT_ID), text(TEXT_ID, "Hello"), text(TEXT_ID, "!"), finish(TEXT_ID, "stop"), "[DONE]"]

TOOL_ID = "msg_014p7gG3wDgGV9EUtLvnow3U"
TOOL_CHUNKS = [
    role(TOOL_ID),
    text(TOOL_ID, "Okay"),
    text(TOOL_ID, ","),
    text(TOOL_ID, " let's check the weather for San Francisco, CA:"),
    tool_header(TOOL_ID, 0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather"),
    *(
        arguments(TOOL_ID, 0, fragment)
        for fragment in [
            '{"location":',
            ' "San',
            " Francisc",
            "o,",
            ' CA"',
            ", ",
            '"unit": "fah',
            'renheit"}',
        ]
    ),
    tool_header(TOOL_ID, 1, "toolu_02Second", "get_time"),
    arguments(TOOL_ID, 1, "{}"),
    finish(TOOL_ID, "tool_calls"),
    "[DONE]",
]

THINK_ID = "msg_01ThinkingExample"
THINK_CHUNKS = [
    role(THINK_ID),
    text(THINK_ID, "The greatest common divisor of 1071 and 462 is **21**."),
    finish(THINK_ID, "length"),
    "[DONE]",
]

CASES = [
    ("stream_text", TEXT_CHUNKS, Usage(25, 15, 40)),
    ("stream_tool_use", TOOL_CHUNKS, Usage(472, 89, 561)),
    ("stream_thinking", THINK_CHUNKS, Usage(3040, 120, 3160)),  # thinking dropped; cache tokens counted
]


@pytest.mark.parametrize(("name", "expected", "usage"), CASES, ids=[case[0] for case in CASES])
def test_documented_streams(name: str, expected: list[Any], usage: Usage) -> None:
    machine = translator()
    out = machine.feed(stream(name))
    assert chunks(out) == expected
    assert machine.done
    assert machine.usage == usage
    assert machine.finish() == b""


@pytest.mark.parametrize(("name", "expected", "usage"), CASES, ids=[case[0] for case in CASES])
def test_every_upstream_event_is_translated_at_once(name: str, expected: list[Any], usage: Usage) -> None:
    machine = translator()
    outputs = [machine.feed(event) for event in events(stream(name))]
    assert b"".join(outputs) == machine_output(name)
    kinds = [orjson.loads(event.split(b"data: ", 1)[1])["type"] for event in events(stream(name))]
    for kind, out in zip(kinds, outputs, strict=True):
        produced = len(chunks(out)) if out else 0
        if kind in ("ping", "content_block_stop"):
            assert produced == 0
        elif kind in ("message_start", "message_delta"):
            assert produced == 1
        elif kind == "message_stop":
            assert out == DONE


def machine_output(name: str) -> bytes:
    return translator().feed(stream(name))


@pytest.mark.parametrize("name", [case[0] for case in CASES])
def test_chunk_boundaries_never_change_the_output(name: str) -> None:
    raw = stream(name)
    whole = machine_output(name)
    assert feed_all([raw[i : i + 1] for i in range(len(raw))]) == whole
    assert feed_all([raw.replace(b"\n", b"\r\n")]) == whole
    crlf = raw.replace(b"\n", b"\r\n")
    assert feed_all([crlf[i : i + 1] for i in range(len(crlf))]) == whole
    assert feed_all([raw.replace(b"\n", b"\r")]) == whole
    rng = random.Random(name)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(raw)), 12))
        assert feed_all([raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]) == whole


def test_split_at_every_offset() -> None:
    raw = stream("stream_text")
    whole = machine_output("stream_text")
    for offset in range(len(raw) + 1):
        assert feed_all([raw[:offset], raw[offset:]]) == whole


def test_usage_chunk_only_when_asked() -> None:
    out = translator(include_usage=True).feed(stream("stream_thinking"))
    usage_chunk = {
        "id": f"chatcmpl-{THINK_ID}",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "claude",
        "choices": [],
        "usage": {
            "prompt_tokens": 3040,
            "completion_tokens": 120,
            "total_tokens": 3160,
            "prompt_tokens_details": {"cached_tokens": 2000},
        },
    }
    assert chunks(out) == [*THINK_CHUNKS[:-1], usage_chunk, "[DONE]"]


def test_message_delta_input_tokens_update_the_prompt_count() -> None:
    raw = stream("stream_text").replace(
        b'"usage": {"output_tokens": 15}', b'"usage": {"input_tokens": 30, "output_tokens": 15}'
    )
    machine = translator()
    machine.feed(raw)
    assert machine.usage == Usage(30, 15, 45)


def test_incomplete_stream_keeps_partial_usage_and_is_not_done() -> None:
    machine = translator()
    raw = stream("stream_tool_use")
    out = machine.feed(raw[: raw.index(b"event: message_delta")])
    assert not machine.done
    assert machine.usage == Usage(472, 2, 474)
    assert machine.finish() == b""
    assert DONE not in out


def test_tolerated_stream_details() -> None:
    raw = (
        b": a comment\n"
        b'event: ping\ndata: {"type":"ping"}\n\n'
        b"id: 7\nretry: 100\nevent: message_start\n"
        b'data:{"type":"message_start","message":{"id":"m1","usage":{"input_tokens":3,"output_tokens":1}}}'
        b"\n\n"
        b'data: {"type":"a_new_event_type","index":0}\n\n'
        b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Hi"}}\n\n'
        b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""}}\n\n'
        b'data: {"type":"content_block_stop","index":0}\n\n'
        b'data: {"type":"content_block_start","index":1,'
        b'"content_block":{"type":"tool_use","id":"t","name":"f","input":{"a":1}}}\n\n'
        b'data: {"type":"content_block_stop","index":1}\n\n'
        b'data: {"type":"message_delta","delta":{},"usage":{"output_tokens":4}}\n\n'
        b'data: {"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"}}\n\n'
        b'data: {"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":5}}\n\n'
        b'data: {"type":"message_stop"}\n\n'
    )
    machine = translator()
    header = {"index": 0, "id": "t", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    assert chunks(machine.feed(raw)) == [
        role("m1"),
        text("m1", "Hi"),
        chunk("m1", {"tool_calls": [header]}),
        finish("m1", "stop"),
        "[DONE]",
    ]
    assert machine.usage == Usage(3, 5, 8)


# --- malformed streams ---------------------------------------------------------------------------------

START = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"m1","usage":{"input_tokens":1}}}\n\n'
)
TEXT_BLOCK = b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
TOOL_BLOCK = (
    b'data: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"tool_use","id":"t","name":"f"}}\n\n'
)
STOP_BLOCK = b'data: {"type":"content_block_stop","index":0}\n\n'
DELTA = b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}\n\n'
MESSAGE_STOP = b'data: {"type":"message_stop"}\n\n'
TEXT_DELTA = (
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"SECRET"}}\n\n'
)
JSON_DELTA = (
    b'data: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"input_json_delta","partial_json":"{"}}\n\n'
)

MALFORMED: list[tuple[str, bytes, str]] = [
    (
        "error_event",
        START + b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
        b'"message": "Overloaded"}}\n\n',
        r"reported overloaded_error \(529\)",
    ),
    (
        "error_event_unknown_type",
        START + b'data: {"type":"error","error":{"type":"SECRET"}}\n\n',
        r"reported api_error \(500\)",
    ),
    ("invalid_json", START + b"data: {SECRET\n\n", "not valid JSON"),
    ("not_utf8", START + b'data: {"type":"ping","x":"\xff"}\n\n', "not valid JSON"),
    ("no_type", START + b'data: ["SECRET"]\n\n', "has no type"),
    (
        "name_mismatch",
        START + b'event: ping\ndata: {"type":"message_stop"}\n\n',
        "event name and data type disagree",
    ),
    ("before_start", TEXT_BLOCK, "out of order"),
    ("second_start", START + START, "out of order"),
    ("start_without_id", b'data: {"type":"message_start","message":{}}\n\n', "lacks a valid id"),
    ("start_without_message", b'data: {"type":"message_start"}\n\n', "lacks a valid message"),
    ("unknown_block", START + TEXT_DELTA, "not open"),
    (
        "block_out_of_order",
        START + TEXT_BLOCK.replace(b'"index":0', b'"index":1'),
        "content blocks out of order",
    ),
    ("index_not_int", START + TEXT_BLOCK.replace(b'"index":0', b'"index":"0"'), "lacks a valid index"),
    ("index_bool", START + TEXT_BLOCK.replace(b'"index":0', b'"index":false'), "lacks a valid index"),
    ("block_twice", START + TEXT_BLOCK + STOP_BLOCK + TEXT_BLOCK, "content blocks out of order"),
    ("stop_twice", START + TEXT_BLOCK + STOP_BLOCK + STOP_BLOCK, "not open"),
    ("text_delta_on_tool", START + TOOL_BLOCK + TEXT_DELTA, "delta does not match its content block"),
    ("json_delta_on_text", START + TEXT_BLOCK + JSON_DELTA, "delta does not match its content block"),
    (
        "delta_without_text",
        START + TEXT_BLOCK + TEXT_DELTA.replace(b'"text":"SECRET"', b'"text":1'),
        "valid text",
    ),
    ("tool_without_id", START + TOOL_BLOCK.replace(b'"id":"t",', b""), "lacks a valid id"),
    ("delta_while_open", START + TEXT_BLOCK + DELTA, "message_delta while a content block is open"),
    ("stop_before_delta", START + MESSAGE_STOP, "out of order"),
    ("stop_reason_twice", START + DELTA + DELTA, "out of order"),
    ("stop_reason_not_string", START + DELTA.replace(b'"end_turn"', b"7"), "out of order"),
    ("block_after_delta", START + DELTA + TEXT_BLOCK, "out of order"),
]


@pytest.mark.parametrize(("raw", "message"), [case[1:] for case in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_streams_raise(raw: bytes, message: str) -> None:
    machine = translator()
    with pytest.raises(StreamTranslationError, match=message) as caught:
        feed_bytewise(machine, raw)  # the error comes with the offending line's last byte
    assert "SECRET" not in str(caught.value)
    assert not machine.done


def feed_bytewise(machine: AnthropicStreamTranslator, raw: bytes) -> None:
    for i in range(len(raw)):
        machine.feed(raw[i : i + 1])


def test_nothing_after_message_stop_is_translated() -> None:
    machine = translator()
    trailing = b"data: {not json\n\n" + START
    assert machine.feed(stream("stream_text") + trailing) == machine_output("stream_text")
    assert machine.done


def test_line_limit() -> None:
    machine = translator()
    with pytest.raises(StreamTranslationError, match="longer than"):
        machine.feed(b"data: " + b"x" * (4 * 1024 * 1024))
