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

Framing is :class:`voidllm.sse.EventFramer`'s (:func:`new_framer`, also used by the Gemini adapter): line
ends become ``\\n`` (also across chunk boundaries), events end at a blank line, and a line or an unfinished
event longer than ``DEFAULT_MAX_EVENT`` (4 MiB) raises
:class:`~voidllm.providers.base.StreamTranslationError`.

Deliberately left out: the body is re-serialised from the parsed mapping (same JSON value, not necessarily the
same bytes); usage-chunk stripping is the relay's job; data lines are not validated as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from voidllm.providers.base import Target, UpstreamCall, Usage, sse_events
from voidllm.sse import EventFramer, data_of

__all__ = [
    "DEFAULT_MAX_EVENT",
    "JSON_CONTENT_TYPE",
    "IdentityStreamTranslator",
    "PassthroughAdapter",
    "join_url",
    "new_framer",
    "openai_usage",
    "response_usage",
]

DEFAULT_MAX_EVENT = 4 * 1024 * 1024
JSON_CONTENT_TYPE = (b"content-type", b"application/json")

_INT64_MAX = 2**63 - 1
_RESPONSES_TERMINAL = frozenset({"response.completed", "response.failed", "response.incomplete"})


def new_framer() -> EventFramer:
    """The event framer of a translated stream: lines and each unfinished event bounded at 4 MiB."""
    return EventFramer(max_line=DEFAULT_MAX_EVENT, max_event=DEFAULT_MAX_EVENT)


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


@attrs.define(eq=False)
class IdentityStreamTranslator:
    """Relays an OpenAI-style stream event by event, capturing usage and the terminal event."""

    usage: Usage | None = attrs.field(default=None, init=False)
    done: bool = attrs.field(default=False, init=False)
    _framer: EventFramer = attrs.field(factory=new_framer, init=False, repr=False)

    def feed(self, data: bytes) -> bytes:
        """The events completed by ``data``, each followed by a blank line; ``b""`` after the terminal.

        Raises:
            StreamTranslationError: a line or the unfinished event is over its size bound.
        """
        if self.done:
            return b""
        out: list[bytes] = []
        for event in sse_events(self._framer, data):
            self._inspect(event)
            out.append(event)
            if self.done:
                break
        return b"".join(out)

    def finish(self) -> bytes:
        """Upstream EOF: relay an unfinished last event only if it is the terminal one (``data: [DONE]``)."""
        tail = self._framer.tail()
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

    def stream_translator(self, *, model: str, include_usage: bool = False) -> IdentityStreamTranslator:
        return IdentityStreamTranslator()


def response_usage(body: bytes) -> Usage | None:
    """The usage reported by an OpenAI-shaped JSON body; ``None`` for anything else. Never raises."""
    if body.lstrip()[:1] != b"{":
        return None
    try:
        return _payload_usage(orjson.loads(body))
    except orjson.JSONDecodeError:
        return None
