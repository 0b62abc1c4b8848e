"""Redacting a streamed answer event by event: :class:`GuardedStream` (sans-IO, STYLE P11).

It wraps the stream relay's :class:`~voidllm.proxy.relay.EventStream` (the SSE relay, or a provider's
translator) when the request's guard policy has ``responses`` on, and rewrites the events that stream emits
before they go to the client. Each piece of streamed text has its own
:class:`voidllm.guard.StreamRedactor`, keyed by where it sits, so a finding split across two chunks is still
found and at most a bounded tail is held back:

- OpenAI chunks (``/v1`` chat and text completions, and translated providers): each choice's
  ``delta.content`` or ``text``, and each ``delta.tool_calls[j].function.arguments``. When a choice gets its
  ``finish_reason``, its held tails are appended to that chunk's text; tails still held at the end of the
  stream go out in a chunk of their own, made like the last one.
- Anthropic events (``/v1/messages``): each content block's ``text_delta`` and ``input_json_delta``; a
  block's held tail goes out as one more ``content_block_delta`` right before its ``content_block_stop``.
- Responses API events: ``response.output_text.delta`` per output item and content part, and
  ``response.function_call_arguments.delta`` per output item (a function call's arguments); an item's held
  tail goes out as one more delta event, made like its last one, right before the item's
  ``response.output_text.done`` or ``response.function_call_arguments.done``. The full texts the ``.done``
  events and the final response repeat are redacted whole with the same placeholders.

Whatever is still held when the stream ends (its terminal event, the upstream's end, an abort) goes out,
redacted, before the last event. An event is re-serialised only when the guard changed it or holds part of
it; every other event goes out as the same bytes. Events are told apart again by their blank line; what the
wrapped stream emits without one yet (Anthropic's passthrough relays bytes as they arrive) is held until it
comes, or until the end.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

import attrs
import orjson

from voidllm.guard import RequestGuard, StreamRedactor, find

if TYPE_CHECKING:
    from voidllm.providers.base import UpstreamStreamError
    from voidllm.proxy.relay import EventStream

Dialect = Literal["openai", "anthropic", "responses"]
_TEXT_KEYS = frozenset(("text", "delta", "arguments", "content"))
_RESPONSE_ENDS = frozenset(("response.completed", "response.incomplete", "response.failed"))
_RESPONSE_DELTAS = {  # Responses API: a text's delta event, its done event, and the key of its redactor
    "response.output_text.delta": "r",
    "response.function_call_arguments.delta": "a",
}
_RESPONSE_DONE = {
    "response.output_text.done": "r",
    "response.function_call_arguments.done": "a",
}
_RESPONSE_DELTA_TYPE = {key: kind for kind, key in _RESPONSE_DELTAS.items()}
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


@attrs.define(eq=False, repr=False)
class GuardedStream:
    """An :class:`~voidllm.proxy.relay.EventStream` whose text the guard redacts; see the module docstring."""

    inner: EventStream
    guard: RequestGuard
    dialect: Dialect = "openai"
    _redactors: dict[tuple[Any, ...], StreamRedactor] = attrs.field(init=False, factory=dict)
    _template: dict[str, Any] | None = attrs.field(init=False, default=None)
    _deltas: dict[tuple[Any, ...], dict[str, Any]] = attrs.field(init=False, factory=dict)
    """Responses API: the last delta event of each output text, less its delta (for the tail's event)."""
    _partial: bytes = attrs.field(init=False, default=b"")
    """The start of an event whose blank line has not arrived (a passthrough relays bytes as they come)."""

    def __repr__(self) -> str:
        return f"<GuardedStream dialect={self.dialect} held={len(self._redactors)}>"

    @property
    def done(self) -> bool:
        return self.inner.done

    @property
    def aborted(self) -> bool:
        return self.inner.aborted

    @property
    def saw_data(self) -> bool:
        return self.inner.saw_data

    @property
    def usage(self) -> Any:
        return self.inner.usage

    def feed(self, data: bytes) -> bytes:
        return self._filter(self.inner.feed(data))

    def finish(self) -> bytes:
        out = self._filter(self.inner.finish(), end=True)
        return out if not self._redactors else self._flush_all() + out

    def abort(self, code: str, reported: UpstreamStreamError | None = None) -> bytes:
        rest = self._filter(b"", end=True)
        return rest + self._flush_all() + self.inner.abort(code, reported)

    # events ---------------------------------------------------------------------------------------------

    def _filter(self, out: bytes, *, end: bool = False) -> bytes:
        """The complete events of ``out`` (after what was held of an earlier one), each rewritten; at the
        ``end`` also what is left of an event that never got its blank line."""
        data = self._partial + out if self._partial else out
        if not data:
            return data
        parts: list[bytes] = []
        position = 0
        for match in _EVENT_END.finditer(data):
            parts.append(self._event(data[position : match.end()]))
            position = match.end()
        self._partial = data[position:]
        if end and self._partial:
            parts.append(self._event(self._partial))
            self._partial = b""
        return b"".join(parts)

    def _event(self, event: bytes) -> bytes:
        lines = event.split(b"\n")
        index = next((i for i, line in enumerate(lines) if line.startswith(b"data:")), None)
        if index is None:
            return event
        data = lines[index][5:].strip(b" \r")
        if data == b"[DONE]":
            return self._flush_all() + event
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return event
        if not isinstance(payload, dict):
            return event
        before, changed = self._rewrite(payload)
        if not changed:
            return before + event
        ending = b"\r" if lines[index].endswith(b"\r") else b""
        lines[index] = b"data: " + orjson.dumps(payload) + ending
        return before + b"\n".join(lines)

    def _rewrite(self, payload: dict[str, Any]) -> tuple[bytes, bool]:
        """Redact one event's payload in place: (events to send before it, whether it changed)."""
        if self.dialect == "anthropic":
            return self._anthropic(payload)
        if self.dialect == "responses":
            return self._responses(payload)
        return self._openai(payload)

    def _feed(self, key: tuple[Any, ...], text: str) -> str:
        redactor = self._redactors.get(key)
        if redactor is None:
            redactor = self._redactors[key] = StreamRedactor(self.guard)
        return redactor.feed(text)

    def _tail(self, key: tuple[Any, ...]) -> str:
        redactor = self._redactors.pop(key, None)
        return redactor.finish() if redactor is not None else ""

    # OpenAI chunks --------------------------------------------------------------------------------------

    def _openai(self, payload: dict[str, Any]) -> tuple[bytes, bool]:
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices:
            return (self._flush_all() if payload.get("usage") else b""), False
        self._template = {k: v for k, v in payload.items() if k not in ("choices", "usage")}
        changed = False
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            delta = choice.get("delta")
            if isinstance(choice.get("text"), str):
                changed |= _swap(choice, "text", self._feed(("c", index), choice["text"]))
            if isinstance(delta, dict):
                if isinstance(delta.get("content"), str):
                    changed |= _swap(delta, "content", self._feed(("c", index), delta["content"]))
                for call in delta.get("tool_calls") or ():
                    function = call.get("function") if isinstance(call, dict) else None
                    if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                        key = ("t", index, call.get("index", 0))
                        changed |= _swap(function, "arguments", self._feed(key, function["arguments"]))
            if choice.get("finish_reason") is not None:
                changed |= self._tails_into(choice, index)
        return b"", changed

    def _tails_into(self, choice: dict[str, Any], index: Any) -> bool:
        """A choice's last chunk (it has its ``finish_reason``): the held tails appended to its text."""
        changed = False
        content = self._tail(("c", index))
        if content:
            if isinstance(choice.get("text"), str):
                choice["text"] += content
            else:
                delta = choice.setdefault("delta", {})
                delta["content"] = (delta.get("content") or "") + content
            changed = True
        for key in sorted((k for k in self._redactors if k[0] == "t" and k[1] == index), key=repr):
            tail = self._tail(key)
            if not tail:
                continue
            calls = choice.setdefault("delta", {}).setdefault("tool_calls", [])
            call = next((c for c in calls if isinstance(c, dict) and c.get("index", 0) == key[2]), None)
            if call is None:
                calls.append({"index": key[2], "function": {"arguments": tail}})
            else:
                function = call.setdefault("function", {})
                function["arguments"] = (function.get("arguments") or "") + tail
            changed = True
        return changed

    def _flush_choice(self, index: Any, *, text: bool = False) -> bytes:
        """The held tails of one OpenAI choice, as a chunk of their own (``b""`` when none is held)."""
        content = self._tail(("c", index))
        calls = [
            {"index": key[2], "function": {"arguments": tail}}
            for key in sorted((k for k in self._redactors if k[0] == "t" and k[1] == index), key=repr)
            if (tail := self._tail(key))
        ]
        if not content and not calls:
            return b""
        choice: dict[str, Any] = {"index": index, "finish_reason": None}
        if text:
            choice["text"] = content
        else:
            delta: dict[str, Any] = {}
            if content:
                delta["content"] = content
            if calls:
                delta["tool_calls"] = calls
            choice["delta"] = delta
        return b"data: " + orjson.dumps({**(self._template or {}), "choices": [choice]}) + b"\n\n"

    # Anthropic events -----------------------------------------------------------------------------------

    def _anthropic(self, payload: dict[str, Any]) -> tuple[bytes, bool]:
        kind = payload.get("type")
        index = payload.get("index")
        if kind == "content_block_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict):
                for name in ("text", "partial_json"):
                    if isinstance(delta.get(name), str):
                        return b"", _swap(delta, name, self._feed(("b", index, name), delta[name]))
        elif kind == "content_block_stop":
            return self._flush_block(index), False
        elif kind in ("message_delta", "message_stop"):
            return self._flush_all(), False
        return b"", False

    def _flush_block(self, index: Any) -> bytes:
        out = []
        for name, delta_type in (("text", "text_delta"), ("partial_json", "input_json_delta")):
            tail = self._tail(("b", index, name))
            if tail:
                delta = {"type": delta_type, name: tail}
                event = {"type": "content_block_delta", "index": index, "delta": delta}
                out.append(b"event: content_block_delta\ndata: " + orjson.dumps(event) + b"\n\n")
        return b"".join(out)

    # Responses API events -------------------------------------------------------------------------------

    def _responses(self, payload: dict[str, Any]) -> tuple[bytes, bool]:
        kind = payload.get("type")
        text = _RESPONSE_DELTAS.get(kind) if isinstance(kind, str) else None
        if text is not None and isinstance(payload.get("delta"), str):
            key = self._response_key(text, payload)
            self._deltas[key] = {k: v for k, v in payload.items() if k != "delta"}
            return b"", _swap(payload, "delta", self._feed(key, payload["delta"]))
        before = b""
        done = _RESPONSE_DONE.get(kind) if isinstance(kind, str) else None
        if done is not None:
            before = self._flush_text(self._response_key(done, payload))
        elif kind in _RESPONSE_ENDS:
            before = self._flush_all()
        return before, self._repeat(payload)

    @staticmethod
    def _response_key(text: str, payload: dict[str, Any]) -> tuple[Any, ...]:
        """Where a Responses API text sits: an output text by item and content part, arguments by item."""
        if text == "a":
            return ("a", payload.get("output_index"))
        return ("r", payload.get("output_index"), payload.get("content_index"))

    def _flush_text(self, key: tuple[Any, ...]) -> bytes:
        """The held tail of one output text or function call's arguments, as one more delta event made like
        its last one."""
        tail, last = self._tail(key), self._deltas.pop(key, None)
        if not tail:
            return b""
        kind = _RESPONSE_DELTA_TYPE[key[0]]
        made = {**(last or {"type": kind}), "delta": tail}
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(made) + b"\n\n"

    def _repeat(self, value: Any, text: bool = False) -> bool:
        """Redact in place the full texts an event repeats (already counted as they streamed)."""
        changed = False
        if isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, str):
                    if (text or name in _TEXT_KEYS) and name != "delta":
                        changed |= _swap(value, name, self._redact_whole(item))
                elif name not in ("usage", "type", "id"):
                    changed |= self._repeat(item, text or name in _TEXT_KEYS)
        elif isinstance(value, list):
            for item in value:
                changed |= self._repeat(item, text)
        return changed

    def _redact_whole(self, text: str) -> str:
        findings = find(text, self.guard.response_kinds)
        return self.guard.replace(text, findings) if findings else text

    # the end --------------------------------------------------------------------------------------------

    def _flush_all(self) -> bytes:
        """Every held tail, as events of the stream's dialect."""
        if not self._redactors:
            return b""
        if self.dialect == "anthropic":
            return b"".join(self._flush_block(i) for i in sorted({k[1] for k in self._redactors}, key=repr))
        if self.dialect == "responses":
            return b"".join(self._flush_text(key) for key in list(self._redactors))
        indexes = sorted({k[1] for k in self._redactors}, key=repr)
        return b"".join(self._flush_choice(index, text=self._text_choices) for index in indexes)

    @property
    def _text_choices(self) -> bool:
        """Text completions (``choices[].text``) rather than chat chunks."""
        return (self._template or {}).get("object") == "text_completion"


def _swap(holder: dict[str, Any], key: str, value: str) -> bool:
    """Set ``holder[key]``; whether that changed it."""
    if holder[key] == value:
        return False
    holder[key] = value
    return True
