"""GuardedStream without I/O (STYLE P11): streamed answers in each dialect, cut at random byte boundaries,
come out with each finding replaced whole, in order, the held tails flushed at the end of their choice,
block or stream, and no event carrying part of a value."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from tests.guard_samples import SAMPLES
from voidllm.guard import GuardPolicy, Mode, RequestGuard, kinds
from voidllm.proxy import messages
from voidllm.proxy.guardstream import GuardedStream
from voidllm.proxy.relay import Translated
from voidllm.proxy.sse import SSERelay

EMAIL = SAMPLES[kinds.EMAIL][1]
IBAN = SAMPLES[kinds.IBAN][1]
TEXT = f"Write to {EMAIL} or pay {IBAN} now."
REDACTED = "Write to [EMAIL_1] or pay [IBAN_1] now."
POLICY = GuardPolicy({kinds.EMAIL: Mode.REDACT, kinds.IBAN: Mode.BLOCK}, responses=True)


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def sse(obj: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(obj) + b"\n\n"


def chunk(choice: dict[str, Any]) -> bytes:
    return sse(
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
    )


def chat_stream(size: int, *, finish: bool = True) -> bytes:
    out = [chunk({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None})]
    out += [chunk({"index": 0, "delta": {"content": p}, "finish_reason": None}) for p in pieces(TEXT, size)]
    args = orjson.dumps({"to": EMAIL}).decode()
    for p in pieces(args, size):
        call = {"index": 0, "function": {"arguments": p}}
        out.append(chunk({"index": 1, "delta": {"tool_calls": [call]}, "finish_reason": None}))
    if finish:
        out.append(chunk({"index": 0, "delta": {}, "finish_reason": "stop"}))
        out.append(chunk({"index": 1, "delta": {}, "finish_reason": "tool_calls"}))
    return b"".join(out) + b"data: [DONE]\n\n"


def run(stream: GuardedStream, raw: bytes, seed: int) -> bytes:
    rng = random.Random(seed)
    out: list[bytes] = []
    position = 0
    while position < len(raw):
        step = rng.randint(1, 40)
        out.append(stream.feed(raw[position : position + step]))
        position += step
    out.append(stream.finish())
    return b"".join(out)


def events(raw: bytes) -> list[Any]:
    return [
        orjson.loads(line[6:])
        for line in raw.replace(b"\r", b"").split(b"\n")
        if line.startswith(b"data: ") and line != b"data: [DONE]"
    ]


@pytest.mark.parametrize("size", [1, 3, 7, 16, 64])
@pytest.mark.parametrize("finish", [True, False])
def test_chat_chunks_content_and_tool_arguments(size: int, finish: bool) -> None:
    guard = RequestGuard(POLICY)
    out = run(GuardedStream(SSERelay(), guard, "openai"), chat_stream(size, finish=finish), seed=size)
    assert out.endswith(b"data: [DONE]\n\n")
    content = arguments = ""
    for event in events(out):
        for choice in event["choices"]:
            delta = choice.get("delta", {})
            assert EMAIL[:8] not in orjson.dumps(delta).decode()
            if choice["index"] == 0:
                content += delta.get("content") or ""
            for call in delta.get("tool_calls") or ():
                arguments += call["function"]["arguments"]
    assert content == REDACTED
    assert orjson.loads(arguments) == {"to": "[EMAIL_1]"}
    assert dict(guard.outcome().response_findings) == {"email": 2, "iban": 1}


def test_events_without_text_pass_as_they_are_and_tails_flush_before_done() -> None:
    first = chunk({"index": 0, "delta": {"role": "assistant"}, "finish_reason": None})
    words = b"".join(
        chunk({"index": 0, "delta": {"content": p}, "finish_reason": None}) for p in ("Hel", "lo")
    )
    stream = GuardedStream(SSERelay(), RequestGuard(POLICY), "openai")
    assert stream.feed(first) == first  # the same bytes
    held = stream.feed(words)
    assert [e["choices"][0]["delta"]["content"] for e in events(held)] == ["", ""]  # a word is held whole
    end = stream.feed(b"data: [DONE]\n\n")
    assert end.endswith(b"data: [DONE]\n\n")
    assert [e["choices"][0]["delta"]["content"] for e in events(end)] == ["Hello"]
    assert events(end)[0]["id"] == "c1"


def anthropic_stream(size: int) -> bytes:
    out = [
        sse({"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 1}}}, "message_start")
    ]
    start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    out.append(sse(start, "content_block_start"))
    for p in pieces(TEXT, size):
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
        out.append(sse(delta, "content_block_delta"))
    out.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    out.append(
        sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}}, "message_delta")
    )
    out.append(sse({"type": "message_stop"}, "message_stop"))
    return b"".join(out)


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("size", [1, 5, 13])
def test_anthropic_blocks_flush_before_their_stop(size: int, crlf: bool) -> None:
    guard = RequestGuard(POLICY)
    stream = GuardedStream(Translated(messages.AnthropicPassthrough()), guard, "anthropic")
    raw = anthropic_stream(size)
    out = run(stream, raw.replace(b"\n", b"\r\n") if crlf else raw, seed=size)
    kinds_seen = [e["type"] for e in events(out)]
    assert kinds_seen.index("content_block_stop") > max(
        i for i, kind in enumerate(kinds_seen) if kind == "content_block_delta"
    )
    text = "".join(e["delta"]["text"] for e in events(out) if e["type"] == "content_block_delta")
    assert text == REDACTED
    assert b"event: content_block_delta\ndata: " in out


def responses_stream(size: int) -> bytes:
    out = []
    for p in pieces(TEXT, size):
        event = {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": p}
        out.append(sse(event, "response.output_text.delta"))
    done = {"type": "response.output_text.done", "output_index": 0, "content_index": 0, "text": TEXT}
    out.append(sse(done, "response.output_text.done"))
    output = [{"type": "message", "content": [{"type": "output_text", "text": TEXT}]}]
    completed = {"type": "response.completed", "response": {"id": "r", "output": output, "usage": {}}}
    out.append(sse(completed, "response.completed"))
    return b"".join(out)


@pytest.mark.parametrize("size", [2, 9])
def test_responses_deltas_and_the_full_texts_they_repeat(size: int) -> None:
    guard = RequestGuard(POLICY)
    out = run(GuardedStream(SSERelay(terminal="responses"), guard, "responses"), responses_stream(size), size)
    seen = events(out)
    deltas = "".join(e["delta"] for e in seen if e["type"] == "response.output_text.delta")
    assert deltas == REDACTED
    [done] = [e for e in seen if e["type"] == "response.output_text.done"]
    assert done["text"] == REDACTED
    [completed] = [e for e in seen if e["type"] == "response.completed"]
    assert completed["response"]["output"][0]["content"][0]["text"] == REDACTED
    assert EMAIL.encode() not in out
    assert dict(guard.outcome().response_findings) == {"email": 1, "iban": 1}  # the repeats are not counted


ARGUMENTS = orjson.dumps({"to": EMAIL, "note": "urgent"}).decode()
REDACTED_ARGUMENTS = orjson.dumps({"to": "[EMAIL_1]", "note": "urgent"}).decode()


def function_call_stream(cut: int) -> bytes:
    """A message (output 0) and a function call (output 1) whose arguments arrive in two deltas cut at
    ``cut``, interleaved with the message's text, then each item's done event and the final response."""
    text = {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "item_id": "m"}
    call = {"type": "response.function_call_arguments.delta", "output_index": 1, "item_id": "fc"}
    out = [
        sse({**text, "delta": "Sending "}, text["type"]),
        sse({**call, "delta": ARGUMENTS[:cut]}, call["type"]),
        sse({**text, "delta": "now."}, text["type"]),
        sse({**call, "delta": ARGUMENTS[cut:]}, call["type"]),
    ]
    done = {"type": "response.function_call_arguments.done", "output_index": 1, "item_id": "fc"}
    out.append(sse({**done, "arguments": ARGUMENTS}, done["type"]))
    text_done = {"type": "response.output_text.done", "output_index": 0, "content_index": 0, "text": "x"}
    out.append(sse(text_done, text_done["type"]))
    output = [{"type": "function_call", "id": "fc", "name": "send", "arguments": ARGUMENTS}]
    completed = {"type": "response.completed", "response": {"id": "r", "output": output, "usage": {}}}
    out.append(sse(completed, "response.completed"))
    return b"".join(out)


@pytest.mark.parametrize("cut", range(1, len(ARGUMENTS)))
def test_responses_function_call_arguments_are_redacted_at_every_split(cut: int) -> None:
    guard = RequestGuard(POLICY)
    out = run(
        GuardedStream(SSERelay(terminal="responses"), guard, "responses"), function_call_stream(cut), cut
    )
    seen = events(out)
    types = [e["type"] for e in seen]
    deltas = [e for e in seen if e["type"] == "response.function_call_arguments.delta"]
    assert "".join(e["delta"] for e in deltas) == REDACTED_ARGUMENTS
    for delta in deltas:  # no delta carries a piece of the address (four characters or more)
        assert not any(EMAIL[i : i + 4] in delta["delta"] for i in range(len(EMAIL) - 3)), delta
        assert (delta["output_index"], delta["item_id"]) == (1, "fc")
    last = max(i for i, kind in enumerate(types) if kind == "response.function_call_arguments.delta")
    assert types[last + 1] == "response.function_call_arguments.done"  # the tail goes out right before it
    [done] = [e for e in seen if e["type"] == "response.function_call_arguments.done"]
    assert done["arguments"] == REDACTED_ARGUMENTS
    [completed] = [e for e in seen if e["type"] == "response.completed"]
    assert completed["response"]["output"][0]["arguments"] == REDACTED_ARGUMENTS
    text = "".join(e["delta"] for e in seen if e["type"] == "response.output_text.delta")
    assert text == "Sending now."
    assert b"event: response.function_call_arguments.delta\ndata: " in out
    assert EMAIL.encode() not in out
    assert dict(guard.outcome().response_findings) == {"email": 1}
