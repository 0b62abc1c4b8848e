"""Server-sent events in and out, one complete line at a time (sans-IO).

:class:`SSELines` cuts a byte stream into ``(field, value)`` pairs as soon as each line is complete; only a
partial line is held between feeds, bounded by ``max_line``. Line endings ``\\r\\n``, ``\\r`` and ``\\n``
are all accepted (a ``\\r`` ending one chunk and a ``\\n`` opening the next count as one line end). A blank
line is reported as ``(b"", b"")`` (the end of an event); comment lines (``: ping``) are skipped. One
leading space of a value is removed, as the SSE specification says.

Deliberately left out: ``data:`` lines are not joined into one multi-line event payload. Both directions
translated here (Anthropic's stream and OpenAI's chunk stream) send one JSON document per ``data:`` line,
so each line is translated the moment it is complete, without waiting for the blank line.
"""

from __future__ import annotations

import attrs
import orjson

from voidllm.providers.base import StreamTranslationError

DEFAULT_MAX_LINE = 4 * 1024 * 1024
BLANK = (b"", b"")


@attrs.define(eq=False)
class SSELines:
    """Splits SSE bytes into complete ``(field, value)`` lines."""

    max_line: int = DEFAULT_MAX_LINE
    _partial: bytearray = attrs.field(factory=bytearray, init=False)
    _pending_cr: bool = attrs.field(default=False, init=False)

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """Return the lines ``data`` completes.

        Raises:
            StreamTranslationError: a line is longer than ``max_line``.
        """
        if self._pending_cr and data.startswith(b"\n"):
            data = data[1:]
        self._pending_cr = data.endswith(b"\r")
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        self._partial += data
        if b"\n" not in data:
            self._check_length()
            return []
        *lines, rest = bytes(self._partial).split(b"\n")
        self._partial = bytearray(rest)
        self._check_length()
        return [field for line in lines if (field := _field(line)) is not None]

    def _check_length(self) -> None:
        if len(self._partial) > self.max_line:
            raise StreamTranslationError("stream line exceeds the size limit")


def _field(line: bytes) -> tuple[bytes, bytes] | None:
    if not line:
        return BLANK
    if line.startswith(b":"):
        return None
    name, colon, value = line.partition(b":")
    if colon and value.startswith(b" "):
        value = value[1:]
    return name, value


def openai_event(payload: object) -> bytes:
    """One OpenAI-style ``data:`` event."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def anthropic_event(payload: dict[str, object]) -> bytes:
    """One Anthropic-style event: an ``event:`` line naming the payload's ``type``, then a ``data:`` line."""
    kind = payload["type"]
    assert isinstance(kind, str)
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


OPENAI_DONE = b"data: [DONE]\n\n"
