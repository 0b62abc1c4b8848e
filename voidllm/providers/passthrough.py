"""Adapter for OpenAI-compatible upstreams (``openai``, ``vllm``, ``ollama``, ``custom``), and the
event-stream framing the translating adapters share.

What is translated. Nothing in the body: the proxy has already rewritten it (canonical ``model``, injected
``stream_options``), so :meth:`PassthroughAdapter.build_call` only serialises it and adds the URL
(``<base_url>/<path>``, ``base_url`` including ``/v1``, a trailing ``/`` trimmed) and, when a key is
configured, ``Authorization: Bearer <key>``. :meth:`~PassthroughAdapter.translate_response` hands the body
back unchanged with the usage it reports (``usage``: ``prompt/completion_tokens`` or the Responses API's
``input/output_tokens``).

Streams. The proxy relays passthrough streams with its own :class:`voidllm.proxy.sse.SSERelay` (which also
strips a gateway-injected usage chunk); :class:`IdentityStreamTranslator` exists so that every adapter offers
the same :class:`~voidllm.providers.base.StreamTranslator`. It relays each complete event as soon as its blank
line arrives (line endings normalised to ``\\n``), remembers the last usage object, and turns ``done`` at
``data: [DONE]`` or at a Responses API terminal event (``response.completed``/``.failed``/``.incomplete``);
nothing after the terminal event is relayed.

Framing. :class:`EventSplitter` cuts an event stream into events (sans-IO; also used by the Gemini adapter):
``\\r\\n`` and lone ``\\r`` become ``\\n`` (also across chunk boundaries), events end at a blank line, and
an unfinished event longer than ``max_event`` bytes raises :class:`StreamTranslationError`. The buffer is
searched only from where the previous search stopped, so feeding one byte at a time stays linear.

Deliberately left out: the body is re-serialised from the parsed mapping (same JSON value, not necessarily the
same bytes); usage-chunk stripping is the relay's job; data lines are not validated as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from voidllm.providers.base import StreamTranslationError, Target, UpstreamCall, Usage

__all__ = [
    "DEFAULT_MAX_EVENT",
    "JSON_CONTENT_TYPE",
    "EventSplitter",
    "IdentityStreamTranslator",
    "PassthroughAdapter",
    "data_of",
    "join_url",
    "openai_usage",
    "response_usage",
]

DEFAULT_MAX_EVENT = 4 * 1024 * 1024
JSON_CONTENT_TYPE = (b"content-type", b"application/json")

_INT64_MAX = 2**63 - 1
_RESPONSES_TERMINAL = frozenset({"response.completed", "response.failed", "response.incomplete"})


def join_url(base_url: str, path: str) -> str:
    """``base_url`` without its trailing ``/``, then ``/``, then ``path`` without its leading ``/``."""
    return f"{base_url.rstrip('/')}/{path.lstrip('/')}"


def openai_usage(usage: object) -> Usage | None:
    """Read an OpenAI usage object: ``prompt/completion_tokens`` or ``input/output_tokens``, and
    ``total_tokens``.

    Taken only if every counter present is an integer in ``[0, 2**63)``; an absent counter is 0 and the total
    is never below prompt + completion. Anything else is ``None``. Never raises.
    """
    if not isinstance(usage, Mapping):
        return None
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        names = ("prompt_tokens", "completion_tokens", "total_tokens")
    elif "input_tokens" in usage or "output_tokens" in usage:
        names = ("input_tokens", "output_tokens", "total_tokens")
    else:
        return None
    prompt, completion, total = (usage.get(name, 0) for name in names)
    if not all(_is_count(value) for value in (prompt, completion, total)):
        return None
    return Usage(prompt, completion, max(total, prompt + completion))


def _is_count(value: object) -> bool:
    return type(value) is int and 0 <= value <= _INT64_MAX


def _payload_usage(payload: object) -> Usage | None:
    """The usage of a chat body or chunk (``usage``) or of a Responses API event (``response.usage``)."""
    if not isinstance(payload, Mapping):
        return None
    usage = payload.get("usage")
    if usage is None and isinstance(response := payload.get("response"), Mapping):
        usage = response.get("usage")
    return openai_usage(usage)


def data_of(event: bytes) -> bytes | None:
    """The data of one event (its ``data:`` lines joined by ``\\n``, one leading space removed); ``None``
    if it has no data line. ``event`` has ``\\n`` line endings and no trailing blank line."""
    values = [value for line in event.split(b"\n") if (value := _data_value(line)) is not None]
    return b"\n".join(values) if values else None


def _data_value(line: bytes) -> bytes | None:
    if line.startswith(b"data:"):
        return line[6:] if line.startswith(b"data: ") else line[5:]
    return b"" if line == b"data" else None


@attrs.define(eq=False)
class EventSplitter:
    """Cuts a byte stream into server-sent events; see the module docstring."""

    max_event: int = attrs.field(default=DEFAULT_MAX_EVENT, validator=attrs.validators.gt(0))
    _buffer: bytearray = attrs.field(factory=bytearray, init=False, repr=False)
    _searched: int = attrs.field(default=0, init=False, repr=False)
    _cr_pending: bool = attrs.field(default=False, init=False, repr=False)

    def feed(self, data: bytes) -> list[bytes]:
        """Take stream bytes; return the events completed by them (``\\n`` line endings, no blank line).

        Raises:
            StreamTranslationError: the unfinished event has grown beyond ``max_event`` bytes.
        """
        buffer = self._buffer
        buffer += self._normalise(data)
        events: list[bytes] = []
        start = 0
        end = buffer.find(b"\n\n", max(self._searched - 1, 0))
        while end >= 0:
            event = bytes(buffer[start:end]).strip(b"\n")
            if event:
                events.append(event)
            start = end + 2
            end = buffer.find(b"\n\n", start)
        del buffer[:start]
        self._searched = len(buffer)
        if len(buffer) > self.max_event:
            raise StreamTranslationError(f"a stream event is longer than {self.max_event} bytes")
        return events

    def tail(self) -> bytes:
        """At EOF: the unfinished last event (no blank line after it), or ``b""``; the buffer is emptied."""
        tail = bytes(self._buffer).strip(b"\n")
        self._buffer.clear()
        self._searched = 0
        return tail

    def _normalise(self, data: bytes) -> bytes:
        if self._cr_pending:
            self._cr_pending = False
            if data.startswith(b"\n"):
                data = data[1:]
        if b"\r" in data:
            self._cr_pending = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return data


@attrs.define(eq=False)
class IdentityStreamTranslator:
    """Relays an OpenAI-style stream event by event, capturing usage and the terminal event."""

    usage: Usage | None = attrs.field(default=None, init=False)
    done: bool = attrs.field(default=False, init=False)
    _splitter: EventSplitter = attrs.field(factory=EventSplitter, init=False, repr=False)

    def feed(self, data: bytes) -> bytes:
        """The events completed by ``data``, each followed by a blank line; ``b""`` after the terminal."""
        if self.done:
            return b""
        out: list[bytes] = []
        for event in self._splitter.feed(data):
            self._inspect(event)
            out.append(event + b"\n\n")
            if self.done:
                break
        return b"".join(out)

    def finish(self) -> bytes:
        """Upstream EOF: relay an unfinished last event only if it is the terminal one (``data: [DONE]``)."""
        tail = self._splitter.tail()
        if self.done or not tail:
            return b""
        self._inspect(tail)
        return tail + b"\n\n" if self.done else b""

    def _inspect(self, event: bytes) -> None:
        data = data_of(event)
        if data is None:
            return
        if data == b"[DONE]":
            self.done = True
            return
        if b'"usage"' not in data and b'"response.' not in data:
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        usage = _payload_usage(payload)
        if usage is not None:
            self.usage = usage
        kind = payload.get("type") if isinstance(payload, dict) else None
        if isinstance(kind, str) and kind in _RESPONSES_TERMINAL:
            self.done = True


@attrs.frozen
class PassthroughAdapter:
    """The adapter of OpenAI-compatible providers: URL and bearer key only; see the module docstring."""

    def build_call(
        self, path: str, payload: Mapping[str, Any], target: Target, *, stream: bool
    ) -> UpstreamCall:
        """``POST <base_url>/<path>``, the body as given, ``Authorization: Bearer`` when a key is set."""
        headers = [JSON_CONTENT_TYPE]
        if target.api_key:
            headers.append((b"authorization", b"Bearer " + target.api_key.encode()))
        return UpstreamCall(join_url(target.base_url, path), headers, orjson.dumps(dict(payload)))

    def translate_response(self, body: bytes, *, model: str) -> tuple[bytes, Usage | None]:
        """The body unchanged, and the usage it reports (``None`` if it is not JSON or has none)."""
        return body, response_usage(body)

    def stream_translator(self, *, model: str) -> IdentityStreamTranslator:
        return IdentityStreamTranslator()


def response_usage(body: bytes) -> Usage | None:
    """The usage reported by an OpenAI-shaped JSON body; ``None`` for anything else. Never raises."""
    if body.lstrip()[:1] != b"{":
        return None
    try:
        return _payload_usage(orjson.loads(body))
    except orjson.JSONDecodeError:
        return None
