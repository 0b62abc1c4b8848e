"""The built-in demo provider (``provider: mock``): an OpenAI-compatible model served inside the gateway.

A fresh install has a model that answers at once, with no network and no account: ``config.example.yaml``
ships ``demo`` (alias ``default``) on it. Users' own test suites can use it the same way, as a model in their
``voidllm.yaml`` that answers deterministically: chat and text completions (streamed too, usage included when
asked), embeddings (a fixed vector per input), responses, moderations, rerank, image generation and speech,
with the shapes of :mod:`voidllm.testing.mock_openai`, whose sans-IO replies it reuses (that module also runs
as a separate server for tests that need failures on the wire). Every answer says what it is: the text names
the demo, ``system_fingerprint`` is ``voidllm-demo``, and ``/v1/models`` lists such models as owned by
``voidllm-demo``.

How: such upstreams point at :data:`~voidllm.config.upstreams.DEMO_BASE_URL` (``.invalid``, never resolved)
and :class:`DemoTransport`, wrapped around the real transport, answers requests for that URL in process;
every other request goes to the real transport untouched. Token counts are estimates (a quarter of the
request's bytes; the answer's words), so limits and usage rows behave as with a real provider. It is a
:class:`~voidllm.transport.base.Transport`, so it lives with the transports, above the sans-IO providers.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs
import trio

from voidllm.config.upstreams import DEMO_BASE_URL
from voidllm.transport.base import ResponseContext, Transport, UpstreamResponse

if TYPE_CHECKING:
    from voidllm.testing.mock_openai import Behaviour

__all__ = ["DEMO_FINGERPRINT", "DEMO_TEXT", "DemoTransport"]

DEMO_FINGERPRINT = "voidllm-demo"
DEMO_TEXT = (
    "Hello from the VoidLLM demo model. It answers inside the gateway, without any provider; "
    "point the model 'default' at a real provider in voidllm.yaml to get real answers."
)
_DEMO_PREFIX = DEMO_BASE_URL.removesuffix("/v1")
_STREAM_CHUNKS = 8


@functools.cache
def _demo_behaviour() -> Behaviour:
    """The demo's answers; the mock's module is loaded with the first demo request (a gateway without a demo
    model never loads it: about 5 ms of every start)."""
    from voidllm.testing.mock_openai import Behaviour

    return Behaviour(
        completion_text=DEMO_TEXT,
        completion_tokens=len(DEMO_TEXT.split()),
        stream_chunks=_STREAM_CHUNKS,
        system_fingerprint=DEMO_FINGERPRINT,
    )


@attrs.define(eq=False)
class _DemoResponse:
    """A whole reply handed out as an upstream response: one body chunk, or one chunk per stream event."""

    status: int
    headers: list[tuple[bytes, bytes]]
    chunks: tuple[bytes, ...]
    http_version: bytes = b"1.1"
    _closed: bool = False
    _next: int = 0

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The chunks in order; an iterator, not an async generator: leaving it early leaves nothing open."""
        return self

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._next == len(self.chunks):
            raise StopAsyncIteration
        await trio.lowlevel.checkpoint()  # a stream yields between events, as one from a socket would
        if self._closed:
            raise trio.ClosedResourceError("response closed")
        self._next += 1
        return self.chunks[self._next - 1]

    def body_at_hand(self) -> bool:
        return self._next < len(self.chunks)  # the whole reply is made at once

    async def aclose(self) -> None:
        self._closed = True


@attrs.define(eq=False)
class DemoTransport:
    """A :class:`~voidllm.transport.base.Transport` that answers demo URLs in process and hands every other
    request to ``inner``."""

    inner: Transport

    def request(
        self,
        method: bytes,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterable[bytes],
        *,
        content_length: int | None = None,
    ) -> AbstractAsyncContextManager[UpstreamResponse]:
        if not url.startswith(_DEMO_PREFIX):
            return self.inner.request(method, url, headers, body, content_length=content_length)
        return ResponseContext(_answer, method, url, headers, body)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _answer(
    method: bytes, url: str, headers: list[tuple[bytes, bytes]], body: bytes | AsyncIterable[bytes]
) -> UpstreamResponse:
    raw = body if isinstance(body, bytes) else b"".join([chunk async for chunk in body])
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lowered = [(name.lower(), value) for name, value in headers]
    from voidllm.testing.mock_openai import answer_in_memory

    behaviour = attrs.evolve(_demo_behaviour(), prompt_tokens=max(1, len(raw) // 4))
    reply = answer_in_memory(method.decode("ascii"), target, lowered, raw, behaviour)
    response_headers = [(b"content-type", reply.content_type)]
    chunks: tuple[bytes, ...]
    if reply.events is None:
        response_headers.append((b"content-length", b"%d" % len(reply.body)))
        chunks = (reply.body,) if reply.body else ()
    else:
        response_headers.append((b"cache-control", b"no-cache"))
        chunks = reply.events
    return _DemoResponse(reply.status, response_headers, chunks)
