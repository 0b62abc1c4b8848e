"""OpenAI ``chat.completion.chunk`` stream -> Anthropic Messages stream (ingress), event by event.

:class:`OpenAIToMessagesStream` is fed raw upstream bytes and returns Anthropic SSE events (an ``event:``
line and a ``data:`` line each). Every complete ``data:`` line is translated at once:

- the first chunk opens the message: ``message_start`` with ``id`` ``msg_<chunk id>``, the requested
  model, empty content and ``usage`` of 0 input and 0 output tokens (OpenAI reports usage only at the end;
  the real counts follow in ``message_delta``, which Anthropic's SDKs merge into the message);
- content text (and refusal text) -> a text block: ``content_block_start``, then one ``text_delta`` per
  chunk;
- each new tool call (a new ``index``) closes the open block and opens a ``tool_use`` block with its id and
  name; argument fragments -> ``input_json_delta``;
- ``finish_reason`` closes the open block (``content_block_stop``) and is remembered;
- ``data: [DONE]`` -> ``message_delta`` (stop reason, and the usage of the usage-only chunk that
  ``stream_options.include_usage`` makes the upstream send before ``[DONE]``) and ``message_stop``;
  :attr:`done` becomes true. The message_delta waits for ``[DONE]`` because the usage comes after the
  finish reason.

An ``error`` payload raises :class:`UpstreamStreamError` (its type kept when it is a known one, with the
status it stands for: ``rate_limit_error`` 429); invalid JSON, a chunk without a ``choices`` list, content
after the finish reason, arguments for a tool call whose block is already closed (interleaved calls, which
Anthropic's block model cannot express), a new tool call without id or name, or ``[DONE]`` before any
finish reason raises :class:`StreamTranslationError`; the route then ends the stream with one Anthropic
``error`` event (``anthropic_stream_error``; for an upstream's error, the type of its status).
:meth:`finish` at EOF returns nothing. Deliberately left out: choices other than index 0, logprobs and
non-standard ``reasoning_content`` deltas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs
import orjson

from voidllm.providers.anthropic._mapping import anthropic_usage, stop_reason, usage_from_openai
from voidllm.providers.anthropic._sse import anthropic_event
from voidllm.providers.base import StreamTranslationError, UpstreamStreamError, Usage, sse_fields
from voidllm.sse import FieldReader

Phase = Literal["start", "message", "done"]
_NO_BLOCK = -1
_TEXT_BLOCK = -2  # the open block is text; a value >= 0 is the OpenAI index of the open tool call


@attrs.define(eq=False)
class OpenAIToMessagesStream:
    """Translates one OpenAI chunk stream into Anthropic stream events; see the module docstring."""

    model: str
    usage: Usage | None = attrs.field(default=None, init=False)
    done: bool = attrs.field(default=False, init=False)
    _lines: FieldReader = attrs.field(factory=FieldReader, init=False)
    _phase: Phase = attrs.field(default="start", init=False)
    _open: int = attrs.field(default=_NO_BLOCK, init=False)
    _blocks: int = attrs.field(default=0, init=False)
    _tools_seen: set[int] = attrs.field(factory=set, init=False)
    _stop: str | None = attrs.field(default=None, init=False)
    _raw_usage: Mapping[str, Any] = attrs.field(factory=dict, init=False)

    def feed(self, data: bytes) -> bytes:
        """Translate the chunks ``data`` completes.

        Raises:
            StreamTranslationError: the stream is malformed, out of order, or reports an error.
        """
        out: list[bytes] = []
        for field, value in sse_fields(self._lines, data):
            if field == b"data":
                out.extend(self._on_data(value))
        return b"".join(out)

    def finish(self) -> bytes:
        """End of the upstream body: nothing more to emit (an unfinished stream shows as ``done`` false)."""
        return b""

    def _on_data(self, data: bytes) -> list[bytes]:
        if data.strip() == b"[DONE]":
            return [] if self.done else self._on_done()
        if self.done:
            raise StreamTranslationError("openai stream: chunk after the end of the message")
        chunk = _load_chunk(data)
        out = self._start(chunk) if self._phase == "start" else []
        self._capture_usage(chunk.get("usage"))
        for choice in chunk["choices"]:
            if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
                out.extend(self._on_choice(choice))
        return out

    def _start(self, chunk: Mapping[str, Any]) -> list[bytes]:
        self._phase = "message"
        message: dict[str, Any] = {
            "id": f"msg_{chunk.get('id') or 'unknown'}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [anthropic_event({"type": "message_start", "message": message})]

    def _on_choice(self, choice: Mapping[str, Any]) -> list[bytes]:
        delta = choice.get("delta")
        out: list[bytes] = []
        if isinstance(delta, Mapping):
            out.extend(self._on_text(delta.get("content")))
            out.extend(self._on_text(delta.get("refusal")))
            calls = delta.get("tool_calls")
            for position, call in enumerate(calls if isinstance(calls, list) else []):
                out.extend(self._on_tool_call(call, position))
        reason = choice.get("finish_reason")
        if isinstance(reason, str):
            out.extend(self._close())
            self._stop = stop_reason(reason)
        return out

    def _on_text(self, text: object) -> list[bytes]:
        if not isinstance(text, str) or not text:
            return []
        self._check_unfinished()
        out = []
        if self._open != _TEXT_BLOCK:
            out = [*self._close(), self._open_block(_TEXT_BLOCK, {"type": "text", "text": ""})]
        delta = {"type": "text_delta", "text": text}
        return [
            *out,
            anthropic_event({"type": "content_block_delta", "index": self._blocks - 1, "delta": delta}),
        ]

    def _on_tool_call(self, call: object, position: int) -> list[bytes]:
        if not isinstance(call, Mapping):
            raise StreamTranslationError("openai stream: tool call delta is not an object")
        self._check_unfinished()
        index = call.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise StreamTranslationError("openai stream: a tool call delta lacks a valid index")
        function = call.get("function")
        arguments = function.get("arguments") if isinstance(function, Mapping) else None
        out = [] if index == self._open else self._new_tool(call, index)
        if not isinstance(arguments, str) or not arguments:
            return out
        delta = {"type": "input_json_delta", "partial_json": arguments}
        return [
            *out,
            anthropic_event({"type": "content_block_delta", "index": self._blocks - 1, "delta": delta}),
        ]

    def _new_tool(self, call: Mapping[str, Any], index: int) -> list[bytes]:
        if index in self._tools_seen:
            raise StreamTranslationError("openai stream: tool call deltas are interleaved")
        function = call.get("function")
        call_id, name = call.get("id"), function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
            raise StreamTranslationError("openai stream: a new tool call lacks its id or name")
        self._tools_seen.add(index)
        block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        return [*self._close(), self._open_block(index, block)]

    def _open_block(self, marker: int, block: dict[str, Any]) -> bytes:
        self._open = marker
        self._blocks += 1
        return anthropic_event(
            {"type": "content_block_start", "index": self._blocks - 1, "content_block": block}
        )

    def _close(self) -> list[bytes]:
        if self._open == _NO_BLOCK:
            return []
        self._open = _NO_BLOCK
        return [anthropic_event({"type": "content_block_stop", "index": self._blocks - 1})]

    def _check_unfinished(self) -> None:
        if self._stop is not None:
            raise StreamTranslationError("openai stream: content after the finish reason")

    def _capture_usage(self, usage: object) -> None:
        if isinstance(usage, Mapping):
            self._raw_usage = usage
            self.usage = usage_from_openai(usage)

    def _on_done(self) -> list[bytes]:
        if self._stop is None:
            raise StreamTranslationError("openai stream: [DONE] before a finish reason")
        self._phase = "done"
        self.done = True
        usage: dict[str, int] = {"output_tokens": 0}
        if self._raw_usage:
            usage = anthropic_usage(self._raw_usage)
        delta = {"stop_reason": self._stop, "stop_sequence": None}
        return [
            anthropic_event({"type": "message_delta", "delta": delta, "usage": usage}),
            anthropic_event({"type": "message_stop"}),
        ]


def _load_chunk(data: bytes) -> dict[str, Any]:
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise StreamTranslationError("openai stream: chunk is not valid JSON") from None
    if not isinstance(chunk, dict):
        raise StreamTranslationError("openai stream: chunk is not a JSON object")
    if "error" in chunk:
        error = chunk["error"]
        raise UpstreamStreamError.reported(error.get("type") if isinstance(error, Mapping) else None)
    if not isinstance(chunk.get("choices"), list):
        raise StreamTranslationError("openai stream: chunk has no choices list")
    return chunk
