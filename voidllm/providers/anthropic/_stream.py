"""Anthropic Messages stream -> OpenAI ``chat.completion.chunk`` stream (egress), event by event.

:class:`AnthropicStreamTranslator` is a state machine fed raw upstream bytes. Every complete ``data:`` line
is translated at once; only a partial line is held between feeds. Per event:

- ``message_start``: a role chunk (``{"role": "assistant", "content": ""}``); the input and cache token
  counts are captured. The chunk id is ``chatcmpl-<message id>``, ``model`` the name the client asked for.
- ``content_block_start``: for ``tool_use`` a tool-call header chunk (sequential tool ``index``, id, name,
  empty arguments); for ``text`` nothing unless the block starts with text.
- ``content_block_delta``: ``text_delta`` -> a content chunk; ``input_json_delta`` -> an arguments
  fragment for that block's tool index.
- ``message_delta``: a finish_reason chunk; the output (and, when present, input) counts are updated.
- ``message_stop``: a usage chunk (``"choices": []``) only when the client asked for
  ``stream_options.include_usage``, then ``data: [DONE]``; :attr:`done` becomes true.
- ``ping``, ``content_block_stop`` and unknown event types (Anthropic may add some) produce nothing.

Order is checked: ``message_start`` comes first and once, content blocks open in index order and get deltas
only while open, ``message_delta`` comes after every block is closed, ``message_stop`` after the stop reason.
An ``error`` event raises :class:`UpstreamStreamError` with its type (``overloaded_error``) and the status
it stands for (529), which the client's error event keeps; invalid JSON, an ``event:`` name that disagrees
with the data's ``type``, a delta kind that contradicts its block, or a broken order raises
:class:`StreamTranslationError`; the proxy then ends the client's stream with one abort event. Anything
after ``message_stop`` is ignored (the proxy stops reading at :attr:`done`).
:meth:`finish` at EOF returns nothing: the proxy tells an incomplete stream by :attr:`done`.

Deliberately left out: ``thinking``/``redacted_thinking`` blocks and their ``thinking_delta`` and
``signature_delta`` events (OpenAI's chunk has no place for them), server tool blocks, and
``citations_delta``. :attr:`usage` is set from ``message_start`` on, so a stream cut short still reports the
tokens seen so far.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs
import orjson

from voidllm.providers.anthropic._mapping import (
    ERROR_TYPES,
    finish_reason,
    openai_usage,
    token_count,
    usage_from_anthropic,
)
from voidllm.providers.anthropic._sse import OPENAI_DONE
from voidllm.providers.base import StreamTranslationError, UpstreamStreamError, Usage, sse_fields
from voidllm.sse import END, FieldReader

Phase = Literal["start", "message", "stopped", "done"]
BlockKind = Literal["text", "tool", "other"]
_USAGE_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")


@attrs.define(eq=False)
class AnthropicStreamTranslator:
    """Translates one Anthropic stream into OpenAI chunk events; see the module docstring."""

    model: str
    created: int
    include_usage: bool = False
    usage: Usage | None = attrs.field(default=None, init=False)
    done: bool = attrs.field(default=False, init=False)
    _lines: FieldReader = attrs.field(factory=FieldReader, init=False)
    _event: bytes = attrs.field(default=b"", init=False)
    _phase: Phase = attrs.field(default="start", init=False)
    _head: bytes = attrs.field(default=b"", init=False)
    _open: dict[int, tuple[BlockKind, int]] = attrs.field(factory=dict, init=False)
    _next_block: int = attrs.field(default=0, init=False)
    _tools: int = attrs.field(default=0, init=False)
    _counts: dict[str, int] = attrs.field(factory=dict, init=False)

    def feed(self, data: bytes) -> bytes:
        """Translate the events ``data`` completes.

        Raises:
            StreamTranslationError: the stream is malformed, out of order, or reports an error.
        """
        out: list[bytes] = []
        for field, value in sse_fields(self._lines, data):
            if (field, value) == END:
                self._event = b""
            elif field == b"event":
                self._event = value
            elif field == b"data":
                out.extend(self._on_data(value))
        return b"".join(out)

    def finish(self) -> bytes:
        """End of the upstream body: nothing more to emit (an unfinished stream shows as ``done`` false)."""
        return b""

    def _on_data(self, data: bytes) -> list[bytes]:
        if self.done:
            return []
        event = _load_event(data)
        kind = event["type"]
        if self._event and self._event != kind.encode():
            raise StreamTranslationError("anthropic stream: event name and data type disagree")
        handler = _HANDLERS.get(kind)
        return handler(self, event) if handler is not None else []

    def _require(self, *phases: Phase) -> None:
        if self._phase not in phases:
            raise StreamTranslationError("anthropic stream: events out of order")

    # --- handlers, one per event type ---------------------------------------------------------------------

    def _message_start(self, event: dict[str, Any]) -> list[bytes]:
        self._require("start")
        message = _member(event, "message", dict)
        message_id = _member(message, "id", str)
        self._count(message.get("usage"))
        self._head = b"".join(
            (
                b'data: {"id":',
                orjson.dumps(f"chatcmpl-{message_id}"),
                b',"object":"chat.completion.chunk","created":',
                str(self.created).encode(),
                b',"model":',
                orjson.dumps(self.model),
                b',"choices":[',
            )
        )
        self._phase = "message"
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, event: dict[str, Any]) -> list[bytes]:
        self._require("message")
        index = _member(event, "index", int)
        block = _member(event, "content_block", dict)
        if index != self._next_block:
            raise StreamTranslationError("anthropic stream: content blocks out of order")
        self._next_block += 1
        kind = block.get("type")
        if kind == "text":
            self._open[index] = ("text", -1)
            text = block.get("text")
            return [self._chunk({"content": text})] if isinstance(text, str) and text else []
        if kind == "tool_use":
            return [self._tool_header(index, block)]
        self._open[index] = ("other", -1)
        return []

    def _tool_header(self, index: int, block: dict[str, Any]) -> bytes:
        call_id, name, tool = _member(block, "id", str), _member(block, "name", str), self._tools
        self._tools += 1
        self._open[index] = ("tool", tool)
        prefilled = block.get("input")  # empty when streamed; the arguments follow as input_json_delta
        arguments = orjson.dumps(prefilled).decode() if isinstance(prefilled, dict) and prefilled else ""
        function = {"name": name, "arguments": arguments}
        return self._chunk(
            {"tool_calls": [{"index": tool, "id": call_id, "type": "function", "function": function}]}
        )

    def _block_delta(self, event: dict[str, Any]) -> list[bytes]:
        kind, tool = self._open_block(event)
        delta = _member(event, "delta", dict)
        delta_type = _member(delta, "type", str)
        if kind == "text" and delta_type == "text_delta":
            text = _member(delta, "text", str)
            return [self._chunk({"content": text})] if text else []
        if kind == "tool" and delta_type == "input_json_delta":
            fragment = _member(delta, "partial_json", str)
            call = {"index": tool, "function": {"arguments": fragment}}
            return [self._chunk({"tool_calls": [call]})] if fragment else []
        if kind != "other" and delta_type in ("text_delta", "input_json_delta"):
            raise StreamTranslationError("anthropic stream: delta does not match its content block")
        return []

    def _block_stop(self, event: dict[str, Any]) -> list[bytes]:
        self._open_block(event)
        del self._open[event["index"]]
        return []

    def _open_block(self, event: dict[str, Any]) -> tuple[BlockKind, int]:
        self._require("message")
        block = self._open.get(_member(event, "index", int))
        if block is None:
            raise StreamTranslationError("anthropic stream: event for a content block that is not open")
        return block

    def _message_delta(self, event: dict[str, Any]) -> list[bytes]:
        self._require("message", "stopped")
        if self._open:
            raise StreamTranslationError("anthropic stream: message_delta while a content block is open")
        delta = _member(event, "delta", dict)
        self._count(event.get("usage"))
        reason = delta.get("stop_reason")
        if reason is None:
            return []
        _expect(isinstance(reason, str) and self._phase == "message")
        self._phase = "stopped"
        return [self._chunk({}, finish_reason(reason))]

    def _message_stop(self, event: dict[str, Any]) -> list[bytes]:
        self._require("stopped")
        self._phase = "done"
        self.done = True
        if not self.include_usage or self.usage is None:
            return [OPENAI_DONE]
        usage = openai_usage(self.usage, cached_tokens=self._counts.get("cache_read_input_tokens", 0))
        return [self._head + b'],"usage":' + orjson.dumps(usage) + b"}\n\n", OPENAI_DONE]

    def _ping(self, event: dict[str, Any]) -> list[bytes]:
        return []

    def _error(self, event: dict[str, Any]) -> list[bytes]:
        error = event.get("error")
        kind = error.get("type") if isinstance(error, dict) else None
        raise UpstreamStreamError.reported(kind if kind in ERROR_TYPES else "api_error")

    # --- helpers -------------------------------------------------------------------------------------------

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return self._head + orjson.dumps({"index": 0, "delta": delta, "finish_reason": finish}) + b"]}\n\n"

    def _count(self, usage: object) -> None:
        """Record the cumulative counts a usage object carries and refresh :attr:`usage`."""
        if not isinstance(usage, dict):
            return
        self._counts.update({key: token_count(usage, key) for key in _USAGE_KEYS if key in usage})
        self.usage = usage_from_anthropic(self._counts)


def _load_event(data: bytes) -> dict[str, Any]:
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise StreamTranslationError("anthropic stream: event data is not valid JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise StreamTranslationError("anthropic stream: event data has no type")
    return event


def _member(obj: dict[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise StreamTranslationError(f"anthropic stream: event lacks a valid {key}")
    return value


def _expect(condition: bool) -> None:
    if not condition:
        raise StreamTranslationError("anthropic stream: events out of order")


_Handler = Callable[[AnthropicStreamTranslator, dict[str, Any]], list[bytes]]
_HANDLERS: dict[str, _Handler] = {
    "message_start": AnthropicStreamTranslator._message_start,
    "content_block_start": AnthropicStreamTranslator._block_start,
    "content_block_delta": AnthropicStreamTranslator._block_delta,
    "content_block_stop": AnthropicStreamTranslator._block_stop,
    "message_delta": AnthropicStreamTranslator._message_delta,
    "message_stop": AnthropicStreamTranslator._message_stop,
    "ping": AnthropicStreamTranslator._ping,
    "error": AnthropicStreamTranslator._error,
}
