"""Relay of an OpenAI-style ``text/event-stream`` body, event by event (sans-IO: bytes in, bytes out).

:class:`SSERelay` is a small state machine. The stream pump feeds it upstream chunks and sends on what
:meth:`SSERelay.feed` returns; it never touches a socket, a clock or trio, so every framing case is tested
without I/O (STYLE P11).

Framing is :class:`voidllm.sse.EventFramer`'s: line ends (``\r\n``, ``\r``, ``\n``, also split across
chunks) become ``\n``, and each event is handed on as soon as its blank line arrives, with ``\n`` line
endings and one blank line after it; nothing waits for a second event. Comment lines (``: ping``) and
``event:``/``id:``/``retry:`` fields travel inside their event unchanged. A line longer than ``max_line``
(default 4 MiB) is a protocol error: the relay aborts, after the events completed before it.

Cost. The framer searches each chunk once. An event that needs no change goes out as the framer's slice of
the chunk (the chunk itself when it is exactly one event). Measured on CPython 3.11 with 313-byte OpenAI
chunks, one per feed: about 1.8 us per event passed through, 3 us when it carries ``"usage":null``, 5 us
when that member is cut out.

Inspection is lazy. An event is examined only for what a substring test says it may hold:

- error: an event with an ``"error"`` key is parsed to tell an upstream's error event.
- terminal: ``[DONE]`` (an event whose only data line is exactly ``[DONE]``), and with
  ``terminal="responses"`` also the Responses API's ``response.completed``/``.failed``/``.incomplete``
  events. Nothing after the terminal event is relayed; the caller stops reading.
- usage: an event with a ``"usage"`` key whose value is not ``null`` has its data parsed with orjson; the
  last valid ``usage`` object (chat chunks) or ``response.usage`` (Responses events) wins.
- ``strip_injected_usage``: when the gateway, not the client, asked for ``stream_options.include_usage``,
  the usage-only chunk (``"choices":[]`` and a usage object) is dropped once captured, and the
  ``"usage":null`` member providers add to every other chunk is cut out of the bytes (first, middle or last
  member, any whitespace), leaving the rest of the JSON byte for byte as sent.

End of stream. :meth:`SSERelay.finish` (upstream EOF) and :meth:`SSERelay.abort` (timeout, upstream failure)
close the relay. If the terminal event never arrived, exactly one abort event is emitted and no ``[DONE]``.
An upstream's own error event (``{"error": {...}}``, or a Responses API ``error`` event) is relayed as it is
and closes the relay as aborted: it is the stream's one error event, and the client keeps its type and code.
An unterminated final event (no blank line before EOF) is never dispatched by an SSE client, so it is
relayed only when it is the terminal event (some servers end with ``data: [DONE]`` and no blank line);
otherwise its usage is still captured and its bytes are dropped.

Deliberately left out: an event is held in memory until its blank line arrives and is bounded only through
the line limit; the stream is never decoded or validated as UTF-8 (a leading BOM is relayed as is); a usage
object inside a chunk that also has choices is relayed even when stripping (removing an object member
needs a full parse and re-serialisation); a ``"usage":null`` member in a JSON payload split over several
``data:`` lines is not stripped; provider translation (Anthropic, Gemini) happens before this relay.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs
import orjson

from voidllm.sse import DEFAULT_MAX_LINE, EventFramer, SSEError, data_of, data_value

if TYPE_CHECKING:
    from voidllm.providers.base import UpstreamStreamError

__all__ = ["DEFAULT_MAX_LINE", "UPSTREAM_STREAM_ERROR", "SSERelay", "StreamUsage", "Terminal", "abort_event"]

Terminal = Literal["done", "responses"]

UPSTREAM_STREAM_ERROR = "upstream_stream_error"
"""The ``code`` of the error event that ends a stream in which the upstream reported an error."""

_INT64_MAX = 2**63 - 1
_RESPONSES_TERMINAL = (b'"response.completed"', b'"response.failed"', b'"response.incomplete"')
_NULL_USAGE = re.compile(rb'"usage"[ \t]*:[ \t]*(null)[ \t]*([,}])')
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BLANKS = b" \t"


def abort_event(
    code: str = "stream_incomplete",
    message: str = "stream aborted",
    reported: UpstreamStreamError | None = None,
) -> bytes:
    """The content-free event that ends a stream which did not reach its terminal event; when the upstream
    ``reported`` an error, the event keeps its type and the status it stands for."""
    error: dict[str, object]
    if reported is None:
        error = {"message": message, "type": code, "code": code}
    else:
        error = {
            "message": f"the upstream reported {reported.kind} during the stream",
            "type": reported.kind,
            "param": None,
            "code": UPSTREAM_STREAM_ERROR,
            "status": reported.status,
        }
    return b"data: " + orjson.dumps({"error": error}) + b"\n\n"


@attrs.frozen
class StreamUsage:
    """Token counts reported by the upstream in a stream."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def from_payload(cls, payload: object) -> StreamUsage | None:
        """The usage in one parsed ``data:`` payload: ``usage`` (chat, completions) or ``response.usage``
        (Responses API events). Never raises; ``None`` when there is no valid usage object."""
        if not isinstance(payload, Mapping):
            return None
        usage = payload.get("usage")
        if usage is None:
            response = payload.get("response")
            usage = response.get("usage") if isinstance(response, Mapping) else None
        return cls.from_usage(usage)

    @classmethod
    def from_usage(cls, usage: object) -> StreamUsage | None:
        """Read ``prompt/completion_tokens`` or ``input/output_tokens`` plus ``total_tokens``.

        An object is taken only if every counter it carries is an integer in ``[0, 2**63)``; an absent
        counter is 0 and the total is never below prompt + completion. Anything else is ``None``.
        """
        if not isinstance(usage, Mapping):
            return None
        if "prompt_tokens" in usage or "completion_tokens" in usage:
            names = ("prompt_tokens", "completion_tokens")
        elif "input_tokens" in usage or "output_tokens" in usage:
            names = ("input_tokens", "output_tokens")
        else:
            return None
        prompt, completion, total = (_count(usage.get(name, 0)) for name in (*names, "total_tokens"))
        if prompt is None or completion is None or total is None:
            return None
        return cls(prompt, completion, max(total, prompt + completion))


def _count(value: object) -> int | None:
    return value if type(value) is int and 0 <= value <= _INT64_MAX else None


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class SSERelay:
    """Relays one upstream event stream to the client; see the module docstring.

    Feed it with :meth:`feed` until :attr:`closed`, then call :meth:`finish` (or :meth:`abort` when the
    upstream failed or the deadline passed) and send what they return. ``saw_data`` turns true with the
    first relayed event that has a ``data:`` line (the caller's time-to-first-token mark). ``usage`` is
    the last usage reported so far; it survives an abort. ``protocol_error`` says why the relay aborted
    by itself (an over-long line), for the log.
    """

    strip_injected_usage: bool = False
    terminal: Terminal = attrs.field(default="done", validator=attrs.validators.in_(("done", "responses")))
    max_line: int = attrs.field(default=DEFAULT_MAX_LINE, validator=attrs.validators.gt(0))
    # an upstream that never ends an event must not grow the bytes held until the stream's deadline
    max_event: int = attrs.field(default=4 * DEFAULT_MAX_LINE, validator=attrs.validators.gt(0))
    done: bool = attrs.field(default=False, init=False)
    aborted: bool = attrs.field(default=False, init=False)
    saw_data: bool = attrs.field(default=False, init=False)
    usage: StreamUsage | None = attrs.field(default=None, init=False)
    protocol_error: str | None = attrs.field(default=None, init=False)
    _framer: EventFramer = attrs.field(init=False, repr=False)

    @_framer.default
    def _new_framer(self) -> EventFramer:
        return EventFramer(max_line=self.max_line, max_event=self.max_event)

    @property
    def closed(self) -> bool:
        """True once the terminal event was relayed or the stream was aborted: stop reading."""
        return self.done or self.aborted

    def feed(self, data: bytes) -> bytes:
        """Take upstream bytes; return the complete events to send now (``b""`` if none is complete)."""
        if self.closed or not data:
            return b""
        out: list[bytes] = []
        try:
            for event in self._framer.feed(data):
                self._relay_event(event, out)
                if self.closed:
                    break
        except SSEError as exc:
            self.protocol_error = str(exc)
            out.append(self.abort())
        return b"".join(out)

    def finish(self) -> bytes:
        """Upstream EOF: the unterminated last event if it is the terminal one, else the abort event."""
        if self.closed:
            return b""
        tail = self._framer.tail()
        out: list[bytes] = []
        if tail:
            event = self._inspect(tail)
            if self.done and event is not None:
                self._emit(event + b"\n\n", out)
        if not self.done:
            out.append(self.abort())
        return b"".join(out)

    def abort(
        self,
        code: str = "stream_incomplete",
        reported: UpstreamStreamError | None = None,
        message: str = "stream aborted",
    ) -> bytes:
        """Close the relay early; return the one abort event, or ``b""`` if it is already closed."""
        if self.closed:
            return b""
        self.aborted = True
        self._framer.tail()
        return abort_event(code, message, reported)

    def _relay_event(self, event: bytes, out: list[bytes]) -> None:
        """Relay one event (ending with its blank line); an unchanged event goes out as the same object."""
        if not self._may_matter(event):
            self._emit(event, out)
            return
        kept = self._inspect(event)
        if kept is not None:
            self._emit(kept, out)
            if not self.done and b'"error"' in kept and self._is_error(kept):
                self.aborted = True  # the upstream's error event is the stream's one error event

    def _may_matter(self, event: bytes) -> bool:
        """Cheap test: could the event carry usage, be terminal or be an error?"""
        if b'"usage"' in event or b"[DONE]" in event or b'"error"' in event:
            return True
        if self.terminal != "responses":
            return False
        return any(name in event for name in _RESPONSES_TERMINAL)

    def _emit(self, event: bytes, out: list[bytes]) -> None:
        out.append(event)
        if not self.saw_data and data_of(event) is not None:
            self.saw_data = True

    def _inspect(self, event: bytes) -> bytes | None:
        """Capture usage and spot the terminal event; return the event to relay (the same object when
        unchanged), or None to drop it."""
        if b'"usage"' in event:
            if self.strip_injected_usage:
                event = _strip_null_usage(event)
                carries = b'"usage"' in event
            else:
                carries = _may_carry_usage(event)
            if carries:
                payload = _load_data(event)
                usage = StreamUsage.from_payload(payload)
                if usage is not None:
                    self.usage = usage
                    if self.strip_injected_usage and _is_usage_only(payload):
                        return None
        if self._is_terminal(event):
            self.done = True
        return event

    def _is_error(self, event: bytes) -> bool:
        """An upstream's error event: ``{"error": {...}}`` (chat, completions), or a Responses API event of
        type ``error``."""
        payload = _load_data(event)
        if not isinstance(payload, dict):
            return False
        return isinstance(payload.get("error"), dict) or (
            self.terminal == "responses" and payload.get("type") == "error"
        )

    def _is_terminal(self, event: bytes) -> bool:
        if b"[DONE]" in event and data_of(event) == b"[DONE]":
            return True
        if self.terminal == "responses" and any(name in event for name in _RESPONSES_TERMINAL):
            payload = _load_data(event)
            kind = payload.get("type") if isinstance(payload, dict) else None
            return kind in ("response.completed", "response.failed", "response.incomplete")
        return False


def _load_data(event: bytes) -> Any:
    data = data_of(event)
    if data is None:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _may_carry_usage(event: bytes) -> bool:
    """Cheap pre-check: some ``"usage"`` in the event is not a ``"usage": null`` member."""
    return event.count(b'"usage"') > len(_NULL_USAGE.findall(event))


def _is_usage_only(payload: Any) -> bool:
    return payload.get("choices") == [] and isinstance(payload.get("usage"), dict)


def _strip_null_usage(event: bytes) -> bytes:
    """Cut top-level ``"usage": null`` members out of the event's data lines; the same object if none."""
    if b"\n" not in event:
        return _strip_line(event)
    if event.find(b"\n") == len(event) - 2:  # one line and the blank line, the common case
        only = event[:-2]
        cut = _strip_line(only)
        return event if cut is only else cut + b"\n\n"
    lines = event.split(b"\n")
    stripped = [_strip_line(line) if b'"usage"' in line else line for line in lines]
    return event if stripped == lines else b"\n".join(stripped)


def _strip_line(line: bytes) -> bytes:
    value = data_value(line)
    if value is None:
        return line
    cut = _cut_null_usage(value)
    return line if cut is value else line[: len(line) - len(value)] + cut


def _cut_null_usage(payload: bytes) -> bytes:
    """Remove each top-level ``"usage": null`` member with the separator on one side, leaving every
    other byte as it was.

    A member after another goes with the separator before it (``A , "usage": null`` leaves ``A``); the
    first member goes with the separator after it (``{"usage": null, B`` leaves ``{B``); an only member
    leaves ``{}``. So ``{A, "usage": null, B}`` becomes ``{A, B}`` whatever the separator's spacing.
    """
    pos = 0
    while (match := _NULL_USAGE.search(payload, pos)) is not None:
        start, null_end, follow = match.start(), match.end(1), match.start(2)
        before = _blanks_before(payload, start) - 1
        if before < 0 or payload[before] not in b",{" or not _is_top_level(payload, start, follow):
            pos = match.end()
            continue
        if payload[before] == 0x2C:  # ","
            cut_from, cut_to = _blanks_before(payload, before), null_end
        elif payload[follow] == 0x2C:
            cut_from, cut_to = start, len(payload) - len(payload[follow + 1 :].lstrip(_BLANKS))
        else:
            cut_from, cut_to = start, null_end
        payload, pos = payload[:cut_from] + payload[cut_to:], cut_from
    return payload


def _blanks_before(payload: bytes, pos: int) -> int:
    """The start of the run of spaces and tabs that ends at ``pos``."""
    while pos > 0 and payload[pos - 1] in _BLANKS:
        pos -= 1
    return pos


def _is_top_level(payload: bytes, start: int, end: int) -> bool:
    """Whether ``payload[start:end]`` sits directly in the outermost object: count the brackets outside
    strings on the shorter side of it."""
    if start < len(payload) - end:
        side = _JSON_STRING.sub(b"", payload[:start])
        return side.count(b"{") + side.count(b"[") - side.count(b"}") - side.count(b"]") == 1
    side = _JSON_STRING.sub(b"", payload[end:])
    return side.count(b"}") + side.count(b"]") - side.count(b"{") - side.count(b"[") == 1
