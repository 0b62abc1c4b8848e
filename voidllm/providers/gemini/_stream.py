"""Gemini ``streamGenerateContent?alt=sse`` -> OpenAI ``chat.completion.chunk`` events (a sans-IO state
machine).

Each upstream event (``data: {GenerateContentResponse}``) is translated as soon as its blank line arrives,
into zero or more OpenAI events, in this order per candidate: a role chunk the first time the candidate
appears, one content chunk per non-empty text part, one ``tool_calls`` chunk per ``functionCall`` part
(index, synthetic id ``call_g<n>``, name and the whole arguments at once), and a ``finish_reason`` chunk when
the event carries a ``finishReason``. A prompt blocked before any candidate (``promptFeedback.blockReason``)
becomes a role chunk and a ``content_filter`` finish. ``usageMetadata`` is remembered (the last object with
counters wins).

Gemini has no terminal event: the stream simply ends. So :meth:`GeminiStreamTranslator.finish`, called at
upstream EOF, emits the optional usage chunk (``include_usage``) and ``data: [DONE]``, but only when every
candidate seen has finished; ``done`` turns true there, so keep feeding until EOF (a last usage-only event
may follow the finish). Otherwise it emits nothing and ``done`` stays false (the proxy then ends the stream
with its ``stream_incomplete`` event). An unfinished last event (no blank line before EOF) is translated if
it is valid JSON and ignored as truncated otherwise.

An event that is not a JSON object or has the wrong shape raises :class:`StreamTranslationError`, an
``error`` object :class:`UpstreamStreamError` (its HTTP code and the matching error type, e.g. 429
``rate_limit_error``; content-free); the translator is then closed and returns nothing more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import orjson

from voidllm.providers.base import StreamTranslationError, Usage, sse_events
from voidllm.providers.gemini import _response as r
from voidllm.providers.passthrough import new_framer
from voidllm.sse import EventFramer, data_of

if TYPE_CHECKING:
    from collections.abc import Mapping

_DONE = b"data: [DONE]\n\n"


@attrs.define(eq=False)
class GeminiStreamTranslator:
    """Translates one Gemini stream; see the module docstring.

    Feed upstream bytes to :meth:`feed` and relay what it returns; call :meth:`finish` at upstream EOF.
    ``usage`` is the last usage reported (kept when the stream breaks off); ``done`` is true once ``[DONE]``
    has been emitted.
    """

    model: str
    created: int
    fallback_id: str
    include_usage: bool = False
    usage: Usage | None = attrs.field(default=None, init=False)
    done: bool = attrs.field(default=False, init=False)
    _framer: EventFramer = attrs.field(factory=new_framer, init=False, repr=False)
    _usage_json: dict[str, Any] | None = attrs.field(default=None, init=False, repr=False)
    _id: str | None = attrs.field(default=None, init=False, repr=False)
    _started: set[int] = attrs.field(factory=set, init=False, repr=False)
    _finished: set[int] = attrs.field(factory=set, init=False, repr=False)
    _tool_counts: dict[int, int] = attrs.field(factory=dict, init=False, repr=False)
    _next_call: int = attrs.field(default=0, init=False, repr=False)
    _closed: bool = attrs.field(default=False, init=False, repr=False)

    def feed(self, data: bytes) -> bytes:
        """Translate the events completed by ``data``.

        Raises:
            StreamTranslationError: an event is malformed or reports an error; the stream must be aborted.
        """
        if self._closed:
            return b""
        try:
            return b"".join([self._event(event) for event in sse_events(self._framer, data)])
        except StreamTranslationError:
            self._closed = True
            raise

    def finish(self) -> bytes:
        """Upstream EOF: the unfinished last event, then the usage chunk and ``[DONE]`` if the stream ended.

        Raises:
            StreamTranslationError: the unfinished last event is valid JSON but malformed or an error.
        """
        if self._closed:
            return b""
        self._closed = True
        out = [self._tail(self._framer.tail())]
        if self._finished and self._started <= self._finished:
            if self.include_usage and self._usage_json is not None:
                out.append(self._sse({"choices": [], "usage": self._usage_json}))
            out.append(_DONE)
            self.done = True
        return b"".join(out)

    def _tail(self, tail: bytes) -> bytes:
        data = data_of(tail) if tail else None
        if data is None:
            return b""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b""  # cut off mid-event: the stream is incomplete, not malformed
        return self._payload(payload)

    def _event(self, event: bytes) -> bytes:
        data = data_of(event)
        if data is None:
            return b""  # comments and fields without data
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise StreamTranslationError("a stream event is not valid JSON") from None
        return self._payload(payload)

    def _payload(self, payload: object) -> bytes:
        if not isinstance(payload, dict):
            raise StreamTranslationError("a stream event is not a JSON object")
        if "error" in payload:
            raise r.stream_error(payload["error"])
        if self._id is None:
            self._id = r.response_id(payload, self.fallback_id)
        if (usage := r.usage_of(payload.get("usageMetadata"))) is not None:
            self.usage, self._usage_json = usage
        found = r.candidates(payload)
        if not found and r.prompt_blocked(payload):
            return self._blocked()
        return b"".join([self._candidate(candidate, position) for position, candidate in enumerate(found)])

    def _candidate(self, candidate: Mapping[str, Any], position: int) -> bytes:
        index = r.candidate_index(candidate, position)
        out = [self._start(index)]
        for part in r.parts(candidate):
            if text := r.part_text(part):
                out.append(self._chunk(index, {"content": text}))
            if (call := r.part_call(part)) is not None:
                out.append(self._chunk(index, {"tool_calls": [self._tool_call(index, *call)]}))
        reason = candidate.get("finishReason")
        if reason is not None and index not in self._finished:
            self._finished.add(index)
            has_calls = index in self._tool_counts
            out.append(self._chunk(index, {}, r.finish_reason(reason, tool_calls=has_calls)))
        return b"".join(out)

    def _blocked(self) -> bytes:
        self._finished.add(0)
        return self._start(0) + self._chunk(0, {}, "content_filter")

    def _start(self, index: int) -> bytes:
        if index in self._started:
            return b""
        self._started.add(index)
        return self._chunk(index, {"role": "assistant", "content": ""})

    def _tool_call(self, index: int, name: str, arguments: str) -> dict[str, Any]:
        position = self._tool_counts.get(index, 0)
        self._tool_counts[index] = position + 1
        number, self._next_call = self._next_call, self._next_call + 1
        return {"index": position, **r.tool_call(number, name, arguments)}

    def _chunk(self, index: int, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return self._sse({"choices": [{"index": index, "delta": delta, "finish_reason": finish_reason}]})

    def _sse(self, fields: dict[str, Any]) -> bytes:
        chunk = {
            "id": self._id or self.fallback_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            **fields,
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"
