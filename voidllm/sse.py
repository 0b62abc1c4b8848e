"""Server-sent events (``text/event-stream``) framing, sans-IO: bytes in, events or field lines out.

The one place that knows how an event stream is cut up (the WHATWG HTML "server-sent events" parsing
rules), used by the proxy's relay (``proxy/sse.py``), the provider stream translators and the MCP upstream
client. Nothing here touches a socket, a clock or trio (STYLE P11).

Line ends. ``\\r\\n``, ``\\r`` and ``\\n`` each end a line, anywhere and mixed. A ``\\r`` that ends one chunk
ends its line at once; a ``\\n`` opening the next chunk is then the rest of that ``\\r\\n``, not a second line
end. Whatever comes out has ``\\n`` line ends.

Two ways to read a stream:

- :class:`EventFramer` hands out each complete event as soon as its blank line arrives, as bytes: its
  lines unchanged, each ended by ``\\n``, then the blank line (so an event ends with ``\\n\\n`` and can be
  relayed as it is). Blank lines between events are skipped. An event that comes whole inside one chunk is
  a slice of it (the chunk itself when it is exactly one event), so relaying costs no copy. At EOF,
  :meth:`~EventFramer.tail` gives the unterminated rest, which an SSE client would never dispatch; the
  caller decides.
- :class:`FieldReader` hands out each field line as soon as it is complete, as ``(name, value)``, and
  :data:`END` for a blank line (the end of an event); comments are skipped. For translators that act on
  every ``data:`` line at once and never join lines.

:func:`parse_event` reads one event's fields (``event``, ``data``, ``id``, ``retry``) as a client would;
:func:`data_of` is the quick way to its data alone. A field line is ``name: value`` (one space after the
colon is removed), ``name`` alone (empty value), or a comment when it starts with ``:``.

Bounds. A line longer than ``max_line`` bytes (default 4 MiB; comments too) raises :class:`SSEError` as soon
as it is known, the unfinished line included, after the events or fields completed before it. An
:class:`EventFramer` may also bound the bytes it holds for one unfinished event (``max_event``). After an
:class:`SSEError` the stream is broken: feed nothing more.

``feed`` is a generator: nothing is read until it is iterated. Iterate it to the end, or stop when the
caller stops reading the stream altogether.

Deliberately left out: a leading UTF-8 byte order mark is not removed (the relay passes it on as it came);
bytes are never decoded or checked as UTF-8; :class:`Event` carries the ``id`` of its own event (the last
event id of the stream and reconnection are a client's business, and no caller reconnects).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "DEFAULT_MAX_LINE",
    "END",
    "Event",
    "EventFramer",
    "FieldReader",
    "SSEError",
    "data_of",
    "data_value",
    "parse_event",
    "parse_field",
]

DEFAULT_MAX_LINE: Final = 4 * 1024 * 1024
END: Final = (b"", b"")
"""What :class:`FieldReader` yields for a blank line: the end of an event."""


class SSEError(Exception):
    """The stream broke a size bound; the message names the bound, never the content."""


@attrs.frozen
class Event:
    """One event as an SSE client dispatches it.

    ``type`` is the last ``event`` field (``message`` without one), ``data`` the ``data`` fields joined by
    ``\\n``, ``id`` the last ``id`` field without a NUL byte (``None`` without one), ``retry`` the last
    ``retry`` field made only of ASCII digits (``None`` without one).
    """

    type: bytes
    data: bytes
    id: bytes | None = None
    retry: int | None = None


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class _LineEnds:
    """Rewrites ``\\r\\n`` and lone ``\\r`` to ``\\n``, across chunk boundaries."""

    _cr_pending: bool = False

    def normalise(self, data: bytes) -> bytes:
        if self._cr_pending:
            self._cr_pending = False
            if data.startswith(b"\n"):
                data = data[1:]
        if b"\r" in data:
            self._cr_pending = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return data


def _line_error(max_line: int) -> SSEError:
    return SSEError(f"an event-stream line is longer than {max_line} bytes")


def _longest_line(data: bytes) -> int:
    return max(map(len, data.split(b"\n")))


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class EventFramer:
    """Cuts a byte stream into complete events; see the module docstring.

    Cost: each chunk is searched once; the chunks of an unfinished event are kept in a list and joined
    once, when its blank line arrives, and the length of the unfinished line is tracked as they come.
    """

    max_line: int = attrs.field(default=DEFAULT_MAX_LINE, validator=attrs.validators.gt(0))
    max_event: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.gt(0))
    )
    _ends: _LineEnds = attrs.field(factory=_LineEnds, init=False, repr=False)
    _pending: list[bytes] = attrs.field(factory=list, init=False, repr=False)
    _held: int = attrs.field(default=0, init=False, repr=False)
    _line_len: int = attrs.field(default=0, init=False, repr=False)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield each event ``data`` completes: its lines, each ended by ``\\n``, then ``\\n``.

        Raises:
            SSEError: a line is longer than ``max_line``, or the unfinished event holds more than
                ``max_event`` bytes (after the events completed before it were yielded).
        """
        data = self._ends.normalise(data)
        if not data:
            return
        pending = self._pending
        if pending:
            if b"\n\n" not in data and not (data.startswith(b"\n") and pending[-1].endswith(b"\n")):
                pending.append(data)
                self._held += len(data)
                self._check_held(data)
                return
            data = b"".join((*pending, data))
            pending.clear()
        start = 0
        end = data.find(b"\n\n")
        while end >= 0:
            while start < end and data[start] == 0x0A:  # blank lines before the event
                start += 1
            if start < end:
                if end - start > self.max_line and _longest_line(data[start:end]) > self.max_line:
                    raise _line_error(self.max_line)
                yield data[start : end + 2]
            start = end + 2
            end = data.find(b"\n\n", start)
        self._keep(data, start)

    def tail(self) -> bytes:
        """At EOF: the unterminated last event without its trailing line end, or ``b""``; then empty."""
        tail = b"".join(self._pending).strip(b"\n")
        self._pending.clear()
        self._held = self._line_len = 0
        return tail

    def _keep(self, data: bytes, start: int) -> None:
        """Hold ``data[start:]``, the unfinished event (if any), and check its bounds."""
        if start == len(data):
            self._held = self._line_len = 0
            return
        tail = data[start:]
        self._pending.append(tail)
        self._held = len(tail)
        self._line_len = len(tail) - tail.rfind(b"\n") - 1
        if len(tail) > self.max_line and _longest_line(tail) > self.max_line:
            raise _line_error(self.max_line)
        self._check_event()

    def _check_held(self, data: bytes) -> None:
        """Track the unfinished line across chunks; raise when a line or the event outgrows its bound."""
        first = data.find(b"\n")
        if first < 0:
            self._line_len += len(data)
            longest = self._line_len
        else:
            longest = self._line_len + first
            if len(data) > self.max_line:
                longest = max(longest, _longest_line(data[first + 1 :]))
            self._line_len = len(data) - data.rfind(b"\n") - 1
        if max(longest, self._line_len) > self.max_line:
            raise _line_error(self.max_line)
        self._check_event()

    def _check_event(self) -> None:
        if self.max_event is not None and self._held > self.max_event:
            raise SSEError(f"an event-stream event is longer than {self.max_event} bytes")


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class FieldReader:
    """Cuts a byte stream into field lines as each completes; see the module docstring."""

    max_line: int = attrs.field(default=DEFAULT_MAX_LINE, validator=attrs.validators.gt(0))
    _ends: _LineEnds = attrs.field(factory=_LineEnds, init=False, repr=False)
    _partial: bytearray = attrs.field(factory=bytearray, init=False, repr=False)

    def feed(self, data: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Yield ``(name, value)`` for each field line ``data`` completes and :data:`END` for a blank line.

        Raises:
            SSEError: a line is longer than ``max_line`` (after the fields completed before it).
        """
        data = self._ends.normalise(data)
        self._partial += data
        if b"\n" in data:
            *lines, rest = bytes(self._partial).split(b"\n")
            self._partial = bytearray(rest)
            for line in lines:
                if len(line) > self.max_line:
                    raise _line_error(self.max_line)
                field = parse_field(line) if line else END
                if field is not None:
                    yield field
        if len(self._partial) > self.max_line:
            raise _line_error(self.max_line)


def parse_field(line: bytes) -> tuple[bytes, bytes] | None:
    """``(name, value)`` of one non-blank line without its line end; ``None`` for a comment."""
    if line.startswith(b":"):
        return None
    name, colon, value = line.partition(b":")
    if colon and value.startswith(b" "):
        value = value[1:]
    return name, value


def parse_event(event: bytes) -> Event | None:
    """The event as a client dispatches it, from its lines (``\\n`` line ends, the blank line optional);
    ``None`` when it has no ``data`` field (a client dispatches nothing then)."""
    kind, data, event_id, retry = b"message", list[bytes](), None, None
    for line in event.split(b"\n"):
        field = parse_field(line) if line else None
        if field is None:
            continue
        name, value = field
        if name == b"data":
            data.append(value)
        elif name == b"event":
            kind = value or b"message"
        elif name == b"id":
            event_id = value if b"\0" not in value else event_id
        elif name == b"retry" and value.isdigit():
            retry = int(value)
    return Event(kind, b"\n".join(data), event_id, retry) if data else None


def data_value(line: bytes) -> bytes | None:
    """The value of a ``data`` field line (one leading space removed); ``None`` for any other line."""
    if line.startswith(b"data:"):
        return line[6:] if line.startswith(b"data: ") else line[5:]
    return b"" if line == b"data" else None


def data_of(event: bytes) -> bytes | None:
    """The event's data as a client sees it (its ``data`` lines joined by ``\\n``); ``None`` without any.

    ``event`` has ``\\n`` line ends; a trailing blank line does not matter.
    """
    if b"\n" not in event:
        return data_value(event)
    values = [value for line in event.split(b"\n") if (value := data_value(line)) is not None]
    return b"\n".join(values) if values else None
