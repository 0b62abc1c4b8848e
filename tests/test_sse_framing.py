"""The event-stream framing of ``voidllm.sse``, table-driven: every line-end style, every chunk split point of
a sample stream, fields as a client reads them, and the size bounds.

The relay built on it is tested in tests/test_sse.py, the translators in tests/test_provider_*.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from voidllm.sse import (
    DEFAULT_MAX_LINE,
    END,
    Event,
    EventFramer,
    FieldReader,
    SSEError,
    data_of,
    parse_event,
    parse_field,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

# A sample stream with every kind of line: comments, each field, a field without a colon, multi-line data,
# extra blank lines between events, and an unterminated last event. ``{nl}`` is the line end.
SAMPLE = (
    ": hello{nl}{nl}"
    "event: add{nl}id: 7{nl}retry: 1500{nl}data: first{nl}data:second{nl}data{nl}{nl}{nl}{nl}"
    'data: {{"usage":null}}{nl}: inside{nl}{nl}'
    "data: [DONE]"
)
SAMPLE_EVENTS = [
    b": hello\n\n",
    b"event: add\nid: 7\nretry: 1500\ndata: first\ndata:second\ndata\n\n",
    b'data: {"usage":null}\n: inside\n\n',
]
SAMPLE_TAIL = b"data: [DONE]"
SAMPLE_FIELDS = [
    END,
    (b"event", b"add"),
    (b"id", b"7"),
    (b"retry", b"1500"),
    (b"data", b"first"),
    (b"data", b"second"),
    (b"data", b""),
    END,
    END,
    END,
    (b"data", b'{"usage":null}'),
    END,
]
LINE_ENDS = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}


def sample(nl: str) -> bytes:
    return SAMPLE.format(nl=nl).encode()


def frame(chunks: Iterable[bytes], **bounds: int) -> tuple[list[bytes], bytes]:
    framer = EventFramer(**bounds)
    events = [event for chunk in chunks for event in framer.feed(chunk)]
    return events, framer.tail()


def fields(chunks: Iterable[bytes], max_line: int = DEFAULT_MAX_LINE) -> list[tuple[bytes, bytes]]:
    reader = FieldReader(max_line=max_line)
    return [field for chunk in chunks for field in reader.feed(chunk)]


def until_error(
    feed: Callable[[bytes], Iterable[object]], chunks: Iterable[bytes]
) -> tuple[list[object], str]:
    """What ``feed`` yields for ``chunks`` before it raises :class:`SSEError`, and the error's message."""
    seen: list[object] = []
    try:
        for chunk in chunks:
            seen.extend(feed(chunk))
    except SSEError as exc:
        return seen, str(exc)
    raise AssertionError("no SSEError")


def every_split(data: bytes) -> Iterable[list[bytes]]:
    """The whole, every two-way split, every three-way split around a line end, and one byte at a time."""
    yield [data]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]
    for i in range(1, len(data)):
        if data[i - 1 : i] in (b"\r", b"\n"):
            yield [data[: i - 1], data[i - 1 : i], data[i:]]
    yield [data[i : i + 1] for i in range(len(data))]


# --- line ends and chunking -------------------------------------------------------------------------------


@pytest.mark.parametrize("nl", LINE_ENDS.values(), ids=LINE_ENDS.keys())
def test_every_line_end_style_at_every_split_point(nl: str) -> None:
    data = sample(nl)
    for chunks in every_split(data):
        assert frame(chunks) == (SAMPLE_EVENTS, SAMPLE_TAIL), chunks
        assert fields(chunks) == SAMPLE_FIELDS, chunks


def test_mixed_line_ends_at_every_split_point() -> None:
    data = b": hello\r\n\revent: add\nid: 7\r\nretry: 1500\rdata: first\r\ndata:second\ndata\r\r\n\r\n\n"
    data += b'data: {"usage":null}\r: inside\r\n\rdata: [DONE]'
    for chunks in every_split(data):
        assert frame(chunks) == (SAMPLE_EVENTS, SAMPLE_TAIL), chunks
        assert fields(chunks) == SAMPLE_FIELDS, chunks


@pytest.mark.parametrize(
    ("chunks", "events", "tail"),
    [
        # a CR ending one chunk and an LF opening the next are one line end
        ([b"data: a\r", b"\n\r", b"\ndata: b\r\n"], [b"data: a\n\n"], b"data: b"),
        ([b"data: a\r", b"\r", b"\n"], [b"data: a\n\n"], b""),
        # ... but a CR, then a chunk with only that LF, then more
        ([b"data: a\r", b"\n", b"\r\n"], [b"data: a\n\n"], b""),
        # two CRs are two line ends: a blank line
        ([b"data: a\r\r"], [b"data: a\n\n"], b""),
        ([b"data: a\r", b"\r"], [b"data: a\n\n"], b""),
        # an LF after a CR that did not end a chunk is a line end of its own
        ([b"data: a\r\n\n"], [b"data: a\n\n"], b""),
        ([b"\n\n\n", b"\r\n", b"data: a\n\n"], [b"data: a\n\n"], b""),
        ([], [], b""),
        ([b"", b""], [], b""),
    ],
)
def test_line_ends_across_chunks(chunks: list[bytes], events: list[bytes], tail: bytes) -> None:
    assert frame(chunks) == (events, tail)


def test_an_event_that_is_the_whole_chunk_is_the_chunk_itself() -> None:
    chunk = b'data: {"a": 1}\n\n'
    assert next(iter(EventFramer().feed(chunk))) is chunk


def test_tail_empties_the_framer() -> None:
    framer = EventFramer()
    assert list(framer.feed(b"data: a\n")) == []
    assert framer.tail() == b"data: a"
    assert framer.tail() == b""
    assert list(framer.feed(b"data: b\n\n")) == [b"data: b\n\n"]


def test_a_field_line_comes_out_as_soon_as_it_is_complete() -> None:
    reader = FieldReader()
    assert list(reader.feed(b"event:ping\r")) == [(b"event", b"ping")]
    assert list(reader.feed(b"\ndata:  two spaces\n:comment\nfield\n\n")) == [
        (b"data", b" two spaces"),
        (b"field", b""),
        END,
    ]
    assert list(reader.feed(b"data: par")) == []
    assert list(reader.feed(b"tial\n")) == [(b"data", b"partial")]


# --- fields as a client reads them ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (b"data: x", (b"data", b"x")),
        (b"data:x", (b"data", b"x")),
        (b"data:  x", (b"data", b" x")),
        (b"data: x ", (b"data", b"x ")),
        (b"data", (b"data", b"")),
        (b"data:", (b"data", b"")),
        (b"event: a:b", (b"event", b"a:b")),
        (b"id", (b"id", b"")),
        (b"unknown: 1", (b"unknown", b"1")),
        (b" data: x", (b" data", b"x")),
        (b": comment", None),
        (b":", None),
    ],
)
def test_parse_field(line: bytes, field: tuple[bytes, bytes] | None) -> None:
    assert parse_field(line) == field


@pytest.mark.parametrize(
    ("event", "parsed"),
    [
        (b"data: x\n\n", Event(b"message", b"x")),
        (b"data: x", Event(b"message", b"x")),
        (b"data: a\ndata: b\ndata\n\n", Event(b"message", b"a\nb\n")),
        (b"data:\n\n", Event(b"message", b"")),
        (b"event: add\ndata: x\nevent: last\n\n", Event(b"last", b"x")),
        (b"event:\ndata: x\n\n", Event(b"message", b"x")),
        (b"id: 1\nid: 2\ndata: x\n\n", Event(b"message", b"x", id=b"2")),
        (b"id: 1\nid: 2\x003\ndata: x\n\n", Event(b"message", b"x", id=b"1")),
        (b"id\ndata: x\n\n", Event(b"message", b"x", id=b"")),
        (b"retry: 1500\ndata: x\n\n", Event(b"message", b"x", retry=1500)),
        (b"retry: 1500\nretry: 15s\ndata: x\n\n", Event(b"message", b"x", retry=1500)),
        (b"retry: -1\nretry: \xd9\xa1\ndata: x\n\n", Event(b"message", b"x")),
        (b": comment\ndata: x\nDATA: y\nfoo: z\n\n", Event(b"message", b"x")),
        (b"event: ping\nid: 4\n\n", None),
        (b": only a comment\n\n", None),
        (b"", None),
    ],
)
def test_parse_event(event: bytes, parsed: Event | None) -> None:
    assert parse_event(event) == parsed


@pytest.mark.parametrize(
    ("event", "data"),
    [
        (b"data: x", b"x"),
        (b"data:x\n\n", b"x"),
        (b"data:  x", b" x"),
        (b"data", b""),
        (b"data: a\ndata: b\n\n", b"a\nb"),
        (b"event: e\nid: 1", None),
        (b": comment\n\n", None),
        (b"data: [DONE]\n\n", b"[DONE]"),
    ],
)
def test_data_of(event: bytes, data: bytes | None) -> None:
    assert data_of(event) == data
    parsed = parse_event(event)
    assert (parsed.data if parsed is not None else None) == data


# --- size bounds ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunks", "events"),
    [
        # a complete line of 17 bytes, after a complete event in the same chunk
        ([b"data: ok\n\ndata: " + b"x" * 11 + b"\n\n"], [b"data: ok\n\n"]),
        # the unfinished line outgrows the bound: known at once, not at its line end
        ([b"data: ok\n\n", b"data: " + b"x" * 11], [b"data: ok\n\n"]),
        ([b"data: ok\n\ndata: xx", b"xxxxxxx", b"xx"], [b"data: ok\n\n"]),
        # a long line in the middle of an unfinished event, in one chunk or growing over several
        ([b"data: ok\n\n", b"data: x\n", b"data: " + b"x" * 11 + b"\ndata: y"], [b"data: ok\n\n"]),
        ([b"data: x\n", b"data: xxxx", b"x" * 7 + b"\n"], []),
        # comments count
        ([b"data: ok\n\n: " + b"c" * 20 + b"\n"], [b"data: ok\n\n"]),
        ([b": " + b"c" * 15], []),
    ],
)
def test_a_line_over_max_line_raises_after_the_events_before_it(
    chunks: list[bytes], events: list[bytes]
) -> None:
    framer = EventFramer(max_line=16)
    assert until_error(framer.feed, chunks) == (events, "an event-stream line is longer than 16 bytes")


@pytest.mark.parametrize("nl", LINE_ENDS.values(), ids=LINE_ENDS.keys())
def test_lines_of_exactly_max_line_pass_and_many_may_exceed_it_together(nl: str) -> None:
    line = b"data: " + b"x" * 10
    body = nl.encode().join([line] * 20) + (nl * 2).encode()
    for chunks in every_split(body):
        assert frame(chunks, max_line=16) == ([body.replace(nl.encode(), b"\n")], b"")
        assert fields(chunks, max_line=16) == [(b"data", b"x" * 10)] * 20 + [END]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: " + b"x" * 11],
        [b"data: " + b"x" * 11 + b"\n"],
        [b"data: x\n", b"data: " + b"x" * 11 + b"\ndata: y"],
        [b"data: xxxxx", b"xxxxxx", b"\n"],
        [b": " + b"c" * 15 + b"\r"],
    ],
)
def test_field_reader_line_bound(chunks: list[bytes]) -> None:
    reader = FieldReader(max_line=16)
    _, message = until_error(reader.feed, chunks)
    assert message == "an event-stream line is longer than 16 bytes"


def test_the_default_line_bound_is_four_mib() -> None:
    assert DEFAULT_MAX_LINE == 4 * 1024 * 1024
    big = b"data: " + b"x" * (DEFAULT_MAX_LINE - 6)
    framer = EventFramer()
    assert [event for i in range(0, len(big), 65536) for event in framer.feed(big[i : i + 65536])] == []
    assert list(framer.feed(b"\n\n")) == [big + b"\n\n"]
    with pytest.raises(SSEError):
        list(framer.feed(big + b"x"))
    assert FieldReader().max_line == DEFAULT_MAX_LINE


@pytest.mark.parametrize(
    ("chunks", "events"),
    [
        ([b"data: 1234\n\n" * 3, b"data: 12345"], [b"data: 1234\n\n"] * 3),
        ([b"data: 1234\n"], []),
        ([b"data: 12", b"34\n", b"x"], []),
        ([b"data: ok\n\ndata: 1\ndata: 2\n"], [b"data: ok\n\n"]),
    ],
)
def test_max_event_bounds_the_unfinished_event(chunks: list[bytes], events: list[bytes]) -> None:
    framer = EventFramer(max_event=10)
    assert until_error(framer.feed, chunks) == (events, "an event-stream event is longer than 10 bytes")


def test_max_event_counts_only_what_is_held() -> None:
    events = [b"data: 0123456789abcdef\n\n"] * 3  # complete events are not held
    assert frame([b"".join(events), b"data: 123\n"], max_event=10) == (events, b"data: 123")


@pytest.mark.parametrize("bounds", [{"max_line": 0}, {"max_event": 0}, {"max_line": -1}])
def test_bounds_must_be_positive(bounds: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        EventFramer(**bounds)
