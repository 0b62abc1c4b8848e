"""The SSE relay state machine, driven with bytes only: framing, terminal events, usage capture, stripping
of injected usage, the line limit and the one abort event.

Chunk boundaries must never change the result, so most streams are also fed split at every offset, one
byte at a time and in seeded random chunk sizes. The generated streams at the end are built together with
the exact bytes the client must see, independently of the relay's own code.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import pytest

from voidllm.proxy.sse import DEFAULT_MAX_LINE, SSERelay, StreamUsage, Terminal, abort_event

ABORT = (
    b'data: {"error":{"message":"stream aborted","type":"stream_incomplete","code":"stream_incomplete"}}\n\n'
)

# --- realistic upstream streams ------------------------------------------------------------------------

# OpenAI chat.completion.chunk, as sent today (service_tier, system_fingerprint, obfuscation padding).
# With stream_options.include_usage every chunk carries "usage":null before "obfuscation", and one extra
# chunk with "choices":[] and the usage object comes before [DONE].
_OPENAI_HEAD = (
    b'{"id":"chatcmpl-D0q8CZXN1uEzngZGkU7FuV92lnXWq","object":"chat.completion.chunk","created":1769092764,'
    b'"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_29330a9688",'
    b'"choices":['
)
_OPENAI_CHOICES = [
    (
        b'{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
        b'"logprobs":null,"finish_reason":null}',
        b"I",
    ),
    (b'{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}', b"ZGF"),
    (
        b'{"index":0,"delta":{"content":" \\"usage\\":null, {usage}"},"logprobs":null,"finish_reason":null}',
        b"lRK2aBv",
    ),
    (b'{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}', b"kJ"),
]
_OPENAI_USAGE = (
    b'{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,'
    b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
    b'"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}'
)


def openai_stream(*, include_usage: bool) -> bytes:
    usage_member = b',"usage":null' if include_usage else b""
    events = [
        b"data: " + _OPENAI_HEAD + choice + b"]" + usage_member + b',"obfuscation":"' + pad + b'"}\n\n'
        for choice, pad in _OPENAI_CHOICES
    ]
    if include_usage:
        events.append(b"data: " + _OPENAI_HEAD + b'],"usage":' + _OPENAI_USAGE + b',"obfuscation":"Wq"}\n\n')
    return b"".join(events) + b"data: [DONE]\n\n"


# vLLM (pydantic model_dump_json(exclude_unset=True)): no "usage":null on ordinary chunks, a final
# usage-only chunk with vLLM's field order, and [DONE].
_VLLM_HEAD = (
    b'{"id":"chatcmpl-9f1c2a","object":"chat.completion.chunk","created":1717000000,'
    b'"model":"meta-llama/Llama-3.1-8B-Instruct","choices":'
)
VLLM_CONTENT = b"".join(
    b"data: "
    + _VLLM_HEAD
    + b'[{"index":0,"delta":'
    + delta
    + b',"logprobs":null,"finish_reason":'
    + reason
    + b"}]}\n\n"
    for delta, reason in [
        (b'{"role":"assistant","content":""}', b"null"),
        (b'{"content":"Bonjour"}', b"null"),
        (b'{"content":""}', b'"stop"'),
    ]
)
VLLM_USAGE_CHUNK = (
    b"data: " + _VLLM_HEAD + b'[],"usage":{"prompt_tokens":12,"total_tokens":20,"completion_tokens":8}}\n\n'
)
VLLM_STREAM = VLLM_CONTENT + VLLM_USAGE_CHUNK + b"data: [DONE]\n\n"

# Responses API (no [DONE]; typed events, usage inside the terminal event's response object).
RESPONSES_STREAM = (
    b"event: response.created\n"
    b'data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1",'
    b'"object":"response","created_at":1741290958,"status":"in_progress","model":"gpt-4.1","output":[],'
    b'"usage":null}}\n\n'
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":4,'
    b'"item_id":"msg_1","output_index":0,"content_index":0,"delta":"response.completed"}\n\n'
    b'event: response.completed\ndata: {"type":"response.completed","sequence_number":9,"response":{'
    b'"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1","output":[],"usage":{'
    b'"input_tokens":37,"input_tokens_details":{"cached_tokens":0},"output_tokens":11,'
    b'"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48}}}\n\n'
)


# --- helpers -------------------------------------------------------------------------------------------


def run(relay: SSERelay, chunks: Iterable[bytes]) -> bytes:
    """Feed every chunk (as a pump would, stopping once the relay is closed), then finish."""
    out = []
    for chunk in chunks:
        if relay.closed:
            break
        out.append(relay.feed(chunk))
    out.append(relay.finish())
    return b"".join(out)


def one_byte_at_a_time(data: bytes) -> Iterator[bytes]:
    return (data[i : i + 1] for i in range(len(data)))


def random_chunks(data: bytes, seed: int, largest: int = 40) -> list[bytes]:
    rng = random.Random(seed)
    chunks, pos = [], 0
    while pos < len(data):
        size = rng.randint(1, largest)
        chunks.append(data[pos : pos + size])
        pos += size
    return chunks


def chunkings(data: bytes) -> Iterator[list[bytes]]:
    """The whole body, every two-way split, one byte at a time, and seeded random chunk sizes."""
    yield [data]
    for cut in range(1, len(data)):
        yield [data[:cut], data[cut:]]
    yield list(one_byte_at_a_time(data))
    for seed in range(20):
        yield random_chunks(data, seed)


def assert_chunking_invariant(data: bytes, expected: bytes, **options: Any) -> SSERelay:
    """Every chunking of ``data`` gives ``expected``; returns the relay of the last one."""
    for chunks in chunkings(data):
        relay = SSERelay(**options)
        assert run(relay, chunks) == expected, chunks
    return relay


def event(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


# --- framing ---------------------------------------------------------------------------------------------


def test_events_are_relayed_unchanged_and_the_stream_ends_at_done() -> None:
    stream = openai_stream(include_usage=False)
    relay = SSERelay()
    assert relay.feed(stream) == stream
    assert relay.done
    assert not relay.aborted
    assert relay.closed
    assert relay.finish() == b""


def test_each_event_goes_out_as_soon_as_its_blank_line_arrives() -> None:
    first, second = event(b'{"n":1}'), event(b'{"n":2}')
    relay = SSERelay()
    assert relay.feed(first[:-1]) == b""
    assert relay.feed(first[-1:] + second[:5]) == first
    assert relay.feed(second[5:-1]) == b""
    assert relay.feed(b"\n") == second


def test_one_feed_may_carry_many_events() -> None:
    events = b"".join(event(b'{"n":%d}' % i) for i in range(8))
    assert SSERelay().feed(events) == events


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"])
def test_line_endings_are_normalised_to_lf(newline: bytes) -> None:
    upstream = openai_stream(include_usage=False).replace(b"\n", newline)
    assert_chunking_invariant(upstream, openai_stream(include_usage=False))


def test_mixed_line_endings() -> None:
    upstream = b"id: 1\r\ndata: a\r\r\ndata: b\n\r: ping\r\n\r\ndata: [DONE]\r\n\r\n"
    expected = b"id: 1\ndata: a\n\ndata: b\n\n: ping\n\ndata: [DONE]\n\n"
    assert_chunking_invariant(upstream, expected)


def test_comments_and_other_fields_travel_inside_their_event() -> None:
    upstream = (
        b": keep-alive\n\n"
        b'retry: 3000\nid: 41\nevent: delta\n: a comment inside\ndata: {"a":1}\n\n'
        b"data: [DONE]\n\n"
    )
    assert_chunking_invariant(upstream, upstream)


def test_extra_blank_lines_between_events_are_not_relayed() -> None:
    upstream = b"\n\n\ndata: a\n\n\n\n\ndata: b\n\n\ndata: [DONE]\n\n"
    assert_chunking_invariant(upstream, b"data: a\n\ndata: b\n\ndata: [DONE]\n\n")


def test_realistic_streams_survive_every_chunking() -> None:
    stream = openai_stream(include_usage=True)
    relay = assert_chunking_invariant(stream, stream)
    assert relay.usage == StreamUsage(19, 10, 29)
    assert_chunking_invariant(VLLM_STREAM.replace(b"\n", b"\r\n"), VLLM_STREAM)


# --- terminal events -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "done_event",
    [b"data: [DONE]", b"data:[DONE]", b": bye\ndata: [DONE]", b"id: 7\nevent: done\ndata: [DONE]"],
)
def test_done_event_ends_the_stream_and_nothing_after_it_is_relayed(done_event: bytes) -> None:
    relay = SSERelay()
    out = relay.feed(event(b"{}") + done_event + b"\n\n" + event(b'{"late":1}'))
    assert out == event(b"{}") + done_event + b"\n\n"
    assert relay.done
    assert relay.feed(event(b'{"later":2}')) == b""
    assert relay.finish() == b""


@pytest.mark.parametrize(
    "not_done",
    [
        b"data: [DONE] ",
        b"data:  [DONE]",
        b"data: [DONE]\ndata: more",
        b"data: [done]",
        b'data: {"t":"[DONE]"}',
        b": [DONE]",
        b"data: [DONE]x",
    ],
)
def test_almost_done_events_are_ordinary_events(not_done: bytes) -> None:
    relay = SSERelay()
    assert relay.feed(not_done + b"\n\n") == not_done + b"\n\n"
    assert not relay.done
    assert relay.finish() == ABORT


def test_responses_stream_ends_at_its_typed_terminal_event() -> None:
    relay = assert_chunking_invariant(
        RESPONSES_STREAM + event(b'{"type":"ignored"}'), RESPONSES_STREAM, terminal="responses"
    )
    assert relay.done
    assert relay.usage == StreamUsage(37, 11, 48)


@pytest.mark.parametrize("kind", ["response.completed", "response.failed", "response.incomplete"])
def test_each_responses_terminal_event(kind: str) -> None:
    payload = orjson.dumps({"type": kind, "response": {}})
    terminal = b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"
    relay = SSERelay(terminal="responses")
    assert relay.feed(terminal + event(b"{}")) == terminal
    assert relay.done


def test_responses_terminal_names_do_not_end_a_chat_stream() -> None:
    relay = SSERelay(terminal="done")
    assert relay.feed(RESPONSES_STREAM) == RESPONSES_STREAM
    assert not relay.done


def test_responses_mode_also_accepts_done() -> None:
    relay = SSERelay(terminal="responses")
    relay.feed(b"data: [DONE]\n\n")
    assert relay.done


def test_a_responses_event_that_mentions_a_terminal_name_is_not_terminal() -> None:
    delta = event(b'{"type":"response.output_text.delta","delta":"response.completed"}')
    relay = SSERelay(terminal="responses")
    assert relay.feed(delta) == delta
    assert not relay.done


# --- usage capture -------------------------------------------------------------------------------------


def test_usage_is_captured_from_openai_vllm_and_responses_streams() -> None:
    relay = SSERelay()
    relay.feed(openai_stream(include_usage=True))
    assert relay.usage == StreamUsage(prompt_tokens=19, completion_tokens=10, total_tokens=29)
    relay = SSERelay()
    relay.feed(VLLM_STREAM)
    assert relay.usage == StreamUsage(12, 8, 20)


def test_the_last_usage_wins() -> None:
    relay = SSERelay()
    for n in (1, 2, 3):
        usage = b'{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}' % (n, n, 2 * n)
        relay.feed(event(b'{"choices":[],"usage":' + usage + b"}"))
    assert relay.usage == StreamUsage(3, 3, 6)


def test_usage_on_a_content_chunk_is_captured_and_relayed_even_when_stripping() -> None:
    chunk = event(
        b'{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":26,"total_tokens":85,"completion_tokens":59}}'
    )
    relay = SSERelay(strip_injected_usage=True)
    assert relay.feed(chunk) == chunk
    assert relay.usage == StreamUsage(26, 59, 85)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}, StreamUsage(5, 7, 12)),
        ({"prompt_tokens": 5, "completion_tokens": 7}, StreamUsage(5, 7, 12)),
        ({"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 3}, StreamUsage(5, 7, 12)),
        ({"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 20}, StreamUsage(5, 7, 20)),
        ({"prompt_tokens": 5}, StreamUsage(5, 0, 5)),
        ({"input_tokens": 4, "output_tokens": 6, "total_tokens": 10}, StreamUsage(4, 6, 10)),
        ({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}, StreamUsage(0, 0, 0)),
        ({"prompt_tokens": 2**63 - 1, "completion_tokens": 0}, StreamUsage(2**63 - 1, 0, 2**63 - 1)),
        ({"prompt_tokens": 2**63, "completion_tokens": 0}, None),
        ({"prompt_tokens": -1, "completion_tokens": 2}, None),
        ({"prompt_tokens": 1.0, "completion_tokens": 2}, None),
        ({"prompt_tokens": True, "completion_tokens": 2}, None),
        ({"prompt_tokens": "5", "completion_tokens": 2}, None),
        ({"prompt_tokens": None, "completion_tokens": 2}, None),
        ({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": "7"}, None),
        ({"cached_tokens": 5}, None),
        ({}, None),
        ([1, 2, 3], None),
        ("many", None),
        (None, None),
    ],
)
def test_usage_object_validation(usage: object, expected: StreamUsage | None) -> None:
    assert StreamUsage.from_usage(usage) == expected
    relay = SSERelay()
    chunk = event(orjson.dumps({"choices": [], "usage": usage}))
    assert relay.feed(chunk) == chunk
    assert relay.usage == expected


@pytest.mark.parametrize(
    "garbage",
    [
        b'not json but "usage": {"prompt_tokens": 1}',
        b'{"usage":{"prompt_tokens":1e400,"completion_tokens":1}}',
        b'{"usage":{"prompt_tokens":123456789012345678901234567890,"completion_tokens":1}}',
        b'{"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":1}}',
        b'{"usage":{"prompt_tokens":1,"completion_tokens":2}',
        b'{"usage":' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"usage":{"prompt_tokens":1,"completion_tokens":2},"x":"\xff\xfe"}',
        b'{"usage":NaN}',
        b'["usage", {"prompt_tokens": 1}]',
        b'"usage"',
        b'{"response":{"usage":{"input_tokens":"1"}}}',
        b'{"response":"usage"}',
    ],
)
def test_garbage_never_raises_and_keeps_the_earlier_usage(garbage: bytes) -> None:
    relay = SSERelay()
    relay.feed(event(b'{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'))
    assert relay.feed(event(garbage)) == event(garbage)
    assert relay.usage == StreamUsage(1, 1, 2)


def test_usage_split_over_several_data_lines_is_joined_as_an_sse_client_would() -> None:
    relay = SSERelay()
    relay.feed(b'data: {"choices":[],\ndata: "usage":{"prompt_tokens":3,"completion_tokens":4}}\n\n')
    assert relay.usage == StreamUsage(3, 4, 7)


def test_null_usage_does_not_count_as_usage() -> None:
    relay = SSERelay()
    relay.feed(event(b'{"choices":[],"usage":null}') + event(b'{"response":{"usage":null}}'))
    assert relay.usage is None


# --- stripping the usage the gateway injected ----------------------------------------------------------


def test_stripping_gives_the_client_the_stream_it_would_have_had() -> None:
    relay = assert_chunking_invariant(
        openai_stream(include_usage=True), openai_stream(include_usage=False), strip_injected_usage=True
    )
    assert relay.usage == StreamUsage(19, 10, 29)
    assert relay.done


def test_stripping_a_vllm_stream_drops_only_the_usage_chunk() -> None:
    expected = VLLM_CONTENT + b"data: [DONE]\n\n"
    relay = assert_chunking_invariant(VLLM_STREAM, expected, strip_injected_usage=True)
    assert relay.usage == StreamUsage(12, 8, 20)


def test_without_stripping_the_usage_chunk_and_null_members_are_relayed() -> None:
    stream = openai_stream(include_usage=True)
    assert SSERelay(strip_injected_usage=False).feed(stream) == stream


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        (b'{"a":1,"usage":null}', b'{"a":1}'),
        (b'{"a":1, "usage": null}', b'{"a":1}'),
        (b'{"a": 1 , "usage" : null }', b'{"a": 1 }'),
        (b'{"a":1,\t"usage":\tnull}', b'{"a":1}'),
        (b'{"usage":null,"a":1}', b'{"a":1}'),
        (b'{"usage": null, "a": 1}', b'{"a": 1}'),
        (b'{ "usage" : null , "a": 1 }', b'{ "a": 1 }'),
        (b'{"a":1,"usage":null,"b":2}', b'{"a":1,"b":2}'),
        (b'{"a": 1, "usage": null, "b": 2}', b'{"a": 1, "b": 2}'),
        (b'{"usage":null}', b"{}"),
        (b'{"a":1,"usage":null,"usage":null}', b'{"a":1}'),
        (
            b'{"a":"x\\\\","usage":null,"b":"}]{[","c":[1,{"d":2}],"e":"' + b"z" * 40 + b'"}',
            b'{"a":"x\\\\","b":"}]{[","c":[1,{"d":2}],"e":"' + b"z" * 40 + b'"}',
        ),
        (
            b'{"a":"{[","b":[' + b"1," * 30 + b'1],"usage":null,"c":"]}"}',
            b'{"a":"{[","b":[' + b"1," * 30 + b'1],"c":"]}"}',
        ),
        # usage:null that is not a member of the top-level object, or not a member at all: untouched
        (b'{"x_groq":{"id":"req_1","usage":null},"a":1}', None),
        (b'{"a":[{"usage":null}],"b":' + b"2" * 60 + b"}", None),
        (b'{"b":' + b"2" * 60 + b',"a":{"usage":null}}', None),
        (b'{"content":"\\"usage\\":null"}', None),
        (b'{"content":"\\"usage\\": null, "}', None),
        (b'{"k":"usage","usage2":null}', None),
        (b'{"usage":nullx}', None),
        (b'["usage",null]', None),
    ],
)
def test_null_usage_member_is_cut_out_of_the_bytes(upstream: bytes, expected: bytes | None) -> None:
    relay = SSERelay(strip_injected_usage=True)
    assert relay.feed(event(upstream)) == event(upstream if expected is None else expected)


def test_python_json_spacing_with_usage_first() -> None:
    chunks = [{"usage": None, "id": "c1", "choices": [{"index": 0, "delta": {"content": w}}]} for w in "ab"]
    upstream = b"".join(event(python_json(c)) for c in chunks)
    expected = b"".join(event(python_json({k: v for k, v in c.items() if k != "usage"})) for c in chunks)
    done = b"data: [DONE]\n\n"
    assert_chunking_invariant(upstream + done, expected + done, strip_injected_usage=True)


def python_json(value: object) -> bytes:
    """``json.dumps`` with its default ``", "``/``": "`` separators, as many Python servers send."""
    return json.dumps(value).encode()


def test_stripping_in_an_event_with_other_fields() -> None:
    relay = SSERelay(strip_injected_usage=True)
    upstream = b'id: 3\nevent: chunk\ndata: {"a":1,"usage":null}\n\n'
    assert relay.feed(upstream) == b'id: 3\nevent: chunk\ndata: {"a":1}\n\n'


def test_usage_only_chunk_is_dropped_whole_with_its_other_fields() -> None:
    relay = SSERelay(strip_injected_usage=True)
    usage = b'{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}'
    usage_chunk = b'id: 9\ndata: {"choices":[],"usage":' + usage + b"}\n\n"
    assert relay.feed(usage_chunk) == b""
    assert relay.usage == StreamUsage(1, 2, 3)
    assert not relay.saw_data


def test_a_usage_only_chunk_with_garbage_usage_is_relayed() -> None:
    chunk = event(b'{"choices":[],"usage":{"prompt_tokens":"x"}}')
    relay = SSERelay(strip_injected_usage=True)
    assert relay.feed(chunk) == chunk
    assert relay.usage is None


def test_a_null_member_in_a_payload_split_over_data_lines_is_left_alone() -> None:
    upstream = b'data: {"a":1,\ndata: "usage":null}\n\n'
    assert SSERelay(strip_injected_usage=True).feed(upstream) == upstream


# --- first data, line limit ----------------------------------------------------------------------------


def test_saw_data_marks_the_first_relayed_data_event() -> None:
    relay = SSERelay(strip_injected_usage=True)
    relay.feed(b": ping\n\nevent: keepalive\nid: 1\n\n")
    assert not relay.saw_data
    relay.feed(b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n')
    assert not relay.saw_data  # dropped, so never sent
    relay.feed(b"data")
    assert not relay.saw_data
    relay.feed(b"\n\n")
    assert relay.saw_data


def test_a_line_of_exactly_max_line_bytes_passes() -> None:
    line = b"data: " + b"x" * 10
    relay = SSERelay(max_line=len(line))
    assert run(relay, [line + b"\r\n\r\n", b"data: [DONE]\n\n"]) == line + b"\n\ndata: [DONE]\n\n"
    assert relay.done
    assert relay.protocol_error is None


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: ok\n\ndata: " + b"x" * 11 + b"\n\n"],
        [b"data: ok\n\n", b"data: " + b"x" * 11],
        [b"data: ok\n\ndata: xx", b"xxxxxxx", b"xx"],
        [b"data: ok\n\n", b"data: x\n", b"data: " + b"x" * 11 + b"\ndata: y"],
        [b"data: ok\n\n", b"data: x\n", b"data: " + b"x" * 11 + b"\ndata: y" + b"\n" * 20],
        [b"data: ok\n\n: " + b"c" * 20 + b"\n"],
    ],
)
def test_a_longer_line_aborts_the_relay_once(chunks: list[bytes]) -> None:
    relay = SSERelay(max_line=16)
    out = b"".join(relay.feed(chunk) for chunk in chunks)
    assert out == b"data: ok\n\n" + ABORT
    assert relay.aborted
    assert not relay.done
    assert relay.closed
    assert relay.protocol_error == "an event-stream line is longer than 16 bytes"
    assert relay.feed(b"data: [DONE]\n\n") == b""
    assert relay.finish() == b""
    assert relay.abort() == b""


def test_many_short_lines_may_exceed_max_line_together() -> None:
    body = b"\n".join(b"data: %04d" % i for i in range(20)) + b"\n\n"
    relay = SSERelay(max_line=16)
    assert b"".join(relay.feed(c) for c in random_chunks(body, seed=3, largest=7)) == body
    assert not relay.aborted


def test_an_event_that_never_ends_is_cut_at_max_event() -> None:
    relay = SSERelay(max_event=100)
    fed = b"".join(relay.feed(b"data: %04d\n" % i) for i in range(10))  # 110 bytes, no blank line
    assert relay.aborted
    assert fed.endswith(abort_event())


def test_the_default_line_limit_is_four_mib() -> None:
    assert DEFAULT_MAX_LINE == 4 * 1024 * 1024
    big = b"data: " + b"x" * (DEFAULT_MAX_LINE - 6)
    relay = SSERelay()
    out = b"".join(relay.feed(big[i : i + 65536]) for i in range(0, len(big), 65536))
    assert out == b""
    assert not relay.aborted
    assert relay.feed(b"\n\n") == big + b"\n\n"
    relay = SSERelay()
    out = b"".join(relay.feed(c) for c in (big[: 1 << 20], big[1 << 20 :], b"x"))
    assert out == ABORT
    assert relay.aborted


# --- end of stream -------------------------------------------------------------------------------------


def test_early_eof_ends_with_exactly_one_abort_event() -> None:
    relay = SSERelay()
    assert run(relay, [event(b'{"a":1}')]) == event(b'{"a":1}') + ABORT
    assert relay.aborted
    assert not relay.done
    assert relay.finish() == b""
    assert relay.abort() == b""


def test_abort_event_bytes() -> None:
    assert abort_event() == ABORT
    assert abort_event("stream_transform_aborted") == (
        b'data: {"error":{"message":"stream aborted","type":"stream_transform_aborted",'
        b'"code":"stream_transform_aborted"}}\n\n'
    )


def test_abort_with_a_code_and_message_then_nothing_more() -> None:
    relay = SSERelay()
    relay.feed(b'data: {}\n\ndata: {"partial')
    out = relay.abort(code="pii_restore_aborted", message="response withheld by PII policy")
    assert orjson.loads(out.removeprefix(b"data: ")) == {
        "error": {
            "message": "response withheld by PII policy",
            "type": "pii_restore_aborted",
            "code": "pii_restore_aborted",
        }
    }
    assert out.endswith(b"}\n\n")
    assert relay.abort() == b""
    assert relay.finish() == b""
    assert relay.feed(b"\n\n") == b""


def test_finish_after_done_adds_nothing_and_abort_is_refused() -> None:
    relay = SSERelay()
    relay.feed(b"data: [DONE]\n\n")
    assert relay.finish() == b""
    assert relay.abort() == b""
    assert relay.done
    assert not relay.aborted


@pytest.mark.parametrize("tail", [b"data: [DONE]", b"data: [DONE]\n", b"data: [DONE]\r\n", b"data: [DONE]\r"])
def test_an_unterminated_done_at_eof_still_ends_the_stream_cleanly(tail: bytes) -> None:
    relay = SSERelay()
    assert run(relay, [event(b"{}") + tail]) == event(b"{}") + b"data: [DONE]\n\n"
    assert relay.done
    assert not relay.aborted


def test_an_unterminated_responses_terminal_at_eof_ends_the_stream() -> None:
    upstream = RESPONSES_STREAM.rstrip(b"\n")
    relay = SSERelay(terminal="responses")
    assert run(relay, one_byte_at_a_time(upstream)) == RESPONSES_STREAM
    assert relay.done
    assert relay.usage == StreamUsage(37, 11, 48)


def test_an_unterminated_ordinary_event_is_dropped_but_its_usage_counts() -> None:
    relay = SSERelay()
    tail = b'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":5}}\n'
    out = run(relay, [event(b"{}"), tail])
    assert out == event(b"{}") + ABORT
    assert relay.usage == StreamUsage(4, 5, 9)


def test_a_truncated_event_is_dropped_before_the_abort_event() -> None:
    relay = SSERelay()
    assert run(relay, [event(b"{}"), b'data: {"choices":[{"delta":{"content":"Hel']) == event(b"{}") + ABORT


def test_usage_survives_an_abort() -> None:
    relay = SSERelay(strip_injected_usage=True)
    relay.feed(event(b'{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":5,"total_tokens":9}}'))
    assert relay.abort() == ABORT
    assert relay.usage == StreamUsage(4, 5, 9)


def test_empty_stream_and_empty_feeds() -> None:
    relay = SSERelay()
    assert relay.feed(b"") == b""
    assert relay.finish() == ABORT


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="terminal"):
        SSERelay(terminal="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_line"):
        SSERelay(max_line=0)


# --- generated streams ---------------------------------------------------------------------------------


def _chunk_payload(rng: random.Random, index: int) -> tuple[bytes, bytes]:
    """A chat chunk with a "usage": null member at a random place and in a random style, and the same
    chunk as the provider would send it without include_usage."""
    sep, colon = rng.choice([(b",", b":"), (b", ", b": "), (b" , ", b" : "), (b",\t", b":\t")])
    content = rng.choice([b"a", b"{[", b'\\"usage\\":null', b"}"])
    members = [
        b'"id"' + colon + b'"chatcmpl-%d"' % index,
        b'"choices"' + colon + b'[{"index":0,"delta":{"content":"' + content + b'"}}]',
        b'"nested"' + colon + b'{"usage"' + colon + b"null}",
    ]
    rng.shuffle(members)
    with_usage = list(members)
    with_usage.insert(rng.randint(0, len(members)), b'"usage"' + colon + b"null")
    return b"{" + sep.join(with_usage) + b"}", b"{" + sep.join(members) + b"}"


def generated_stream(seed: int) -> tuple[bytes, bytes, StreamUsage]:
    """(upstream bytes with include_usage, what the client must see, the usage to capture)."""
    rng = random.Random(seed)
    upstream, expected = [], []
    for index in range(rng.randint(1, 6)):
        kind = rng.random()
        if kind < 0.15:
            upstream.append([b": ping"])
            expected.append([b": ping"])
        else:
            sent, seen = _chunk_payload(rng, index)
            fields = [b"id: %d" % index] if kind > 0.8 else []
            upstream.append([*fields, b"data: " + sent])
            expected.append([*fields, b"data: " + seen])
    prompt, completion = rng.randint(0, 10**6), rng.randint(0, 10**6)
    usage = StreamUsage(prompt, completion, prompt + completion)
    upstream.append(
        [
            b'data: {"id":"u","choices":[],"usage":'
            + orjson.dumps(
                {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "total_tokens": usage.total_tokens,
                }
            )
            + b"}"
        ]
    )
    upstream.append([b"data: [DONE]"])
    expected.append([b"data: [DONE]"])
    newline = rng.choice([b"\n", b"\r\n", b"\r"])
    encode = lambda events, nl: b"".join(nl.join(lines) + nl + nl for lines in events)  # noqa: E731
    return encode(upstream, newline), encode(expected, b"\n"), usage


@pytest.mark.parametrize("seed", range(150))
def test_generated_streams_in_random_chunks(seed: int) -> None:
    upstream, expected, usage = generated_stream(seed)
    for chunk_seed in range(4):
        relay = SSERelay(strip_injected_usage=True)
        assert run(relay, random_chunks(upstream, seed * 10 + chunk_seed, largest=23)) == expected
        assert relay.usage == usage
        assert relay.done
        assert relay.saw_data


@pytest.mark.parametrize("terminal", ["done", "responses"])
def test_generated_streams_relay_byte_for_byte_without_stripping(terminal: Terminal) -> None:
    for seed in range(40):
        upstream, _, usage = generated_stream(seed)
        normalised = upstream.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        relay = SSERelay(terminal=terminal)
        assert run(relay, one_byte_at_a_time(upstream)) == normalised
        assert relay.usage == usage


def test_an_unchanged_single_event_chunk_is_passed_on_without_a_copy() -> None:
    chunk = openai_stream(include_usage=False).split(b"\n\n")[1] + b"\n\n"
    assert SSERelay().feed(chunk) is chunk


def test_exports() -> None:
    import voidllm.proxy.sse as module

    imported = {"annotations", "Any", "Literal", "Mapping", "TYPE_CHECKING", "attrs", "orjson", "re"}
    imported |= {"EventFramer", "SSEError", "data_of", "data_value"}
    assert set(module.__all__) == {name for name in vars(module) if not name.startswith("_")} - imported
