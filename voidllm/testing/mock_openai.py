"""A fake OpenAI-compatible LLM provider: a real HTTP/1.1 server on trio + h11 (the server loop is
:mod:`voidllm.testing.h11server`'s; the failure modes and the watch for a client's early close are here).

The gateway's end-to-end tests, ``scripts/bench`` (as the baseline it measures directly) and
``examples/`` all use this module as "the upstream". It listens on a real socket (an ephemeral port by
default), keeps connections alive, reads every request body in full (Content-Length or chunked, as an
upstream must) and answers in the shapes of OpenAI's API:

- ``POST /v1/chat/completions``: ``chat.completion``; with ``stream: true``, SSE chunks then ``[DONE]``;
- ``POST /v1/completions``: ``text_completion``, streaming too;
- ``POST /v1/embeddings``: one embedding per input, ``encoding_format`` float or base64;
- ``POST /v1/responses``: a Responses API object; streaming gives typed ``event:`` lines;
- ``POST /v1/moderations``: nothing flagged;
- ``POST /v1/rerank``: Cohere/Jina style ``results: [{index, relevance_score}]``;
- ``POST /v1/images/generations`` and ``/v1/images/edits`` (multipart): ``b64_json`` of a 1x1 PNG;
- ``POST /v1/audio/transcriptions`` and ``/v1/audio/translations`` (multipart): ``{"text": ...}``;
- ``POST /v1/audio/speech``: ``audio/mpeg`` bytes, streamed in chunks;
- ``GET /v1/models`` and ``/v1/models/{id}``: ``mock-model`` plus the keys of ``by_model``.

Unknown paths answer 404 and unparsable bodies 400, both in OpenAI's error envelope. A streamed chat or
text completion carries usage only when the request asked for ``stream_options.include_usage``, exactly
like OpenAI: then every chunk has ``"usage":null`` and one extra chunk with ``"choices":[]`` carries it.

How it answers is a mutable :class:`Behaviour` (latency, status, chunking, token counts and failure
modes such as ``hang`` or ``drop_mid_stream``), optionally per requested model (``by_model``); tests
may change it while the server runs. Every request is recorded as a :class:`ReceivedRequest`, and every
connection the client closed before its response finished as a :class:`ClosedConnection`, so a test
can await "the gateway gave up on the upstream"::

    async with open_mock_upstream(Behaviour(stream_chunks=3)) as mock:
        client = openai.AsyncOpenAI(base_url=mock.base_url, api_key="sk-test")
        ...
        with trio.fail_after(2):
            await mock.wait_client_closed()

From a shell (the benchmark runs it this way, in its own pinned process)::

    python -m voidllm.testing.mock_openai --port 0 --latency 10ms --stream-chunks 20 --chunk-interval 5ms

prints ``listening http://127.0.0.1:PORT`` once bound and serves until SIGINT or SIGTERM.

Speed: each answer is written with one ``send_all`` when it is not streamed, and the bodies for the hot
paths (chat and text completions) are serialised once per (model, behaviour) and cached. Responses never
vary per request apart from the model name, the request id header and what the request asks for: ids
and ``created`` are fixed. Answers that wait (latency, streams, ``hang``, ``stall_body``) run beside a
task that reads the socket, which is how a client's early close is noticed; immediate answers skip it.
Measured on one core with 32 keep-alive connections: about 9,000-10,000 non-streamed chat completions
per second, most of it spent in h11. Deliberately left out: tool calls (but for one Responses API function
call on request, ``Behaviour.response_function_call``), logprobs, ``n > 1`` choices, audio
streaming transcriptions, and any authentication (the ``Authorization`` header is only recorded).
"""

from __future__ import annotations

import argparse
import base64
import functools
import re
import signal
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, NoReturn

import attrs
import h11
import orjson
import trio

from voidllm.testing.h11server import H11Connection, Headers, Request, converse, open_listener

__all__ = [
    "DEFAULT_MODEL",
    "FAIL_MODES",
    "Behaviour",
    "ClosedConnection",
    "MockUpstream",
    "ReceivedRequest",
    "Reply",
    "answer_in_memory",
    "main",
    "open_mock_upstream",
]

FAIL_MODES: Final = frozenset(
    {
        "hang",
        "reset",
        "drop_mid_stream",
        "echo_400",
        "echo_500",
        "stall_body",
        "close_before_headers",
        "close_mid_headers",
        "garbage",
        "wrong_length",
    }
)
DEFAULT_MODEL: Final = "mock-model"

_BROKEN_REPLIES: Final = frozenset({"close_before_headers", "close_mid_headers", "garbage", "wrong_length"})
_READ_SIZE: Final = 65536  # what the peer watcher reads at a time
_STALL_MISSING: Final = 4096  # bytes promised by Content-Length but never sent in "stall_body"
_FIELD_LIMIT: Final = 1 << 20  # bytes kept of one non-file multipart field
_CREATED: Final = int(time.time())
_JSON: Final = b"application/json"
_SSE: Final = b"text/event-stream; charset=utf-8"
_RATELIMIT: Final = (b"x-ratelimit-remaining-requests", b"99")
_NO_CACHE: Final = (b"cache-control", b"no-cache")
_DONE: Final = b"data: [DONE]\n\n"
# A valid 1x1 transparent PNG.
_PNG_B64: Final = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
# Fake MP3 bytes: an ID3v2 header, then a fixed pattern (32 KiB in all).
_SPEECH: Final = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 128
_AUDIO_TYPES: Final = {
    "mp3": b"audio/mpeg",
    "opus": b"audio/opus",
    "aac": b"audio/aac",
    "flac": b"audio/flac",
    "wav": b"audio/wav",
    "pcm": b"audio/pcm",
}
_MODERATION_CATEGORIES: Final = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
_BAD_JSON: Final = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)
# status -> (message, type, code) for errors answered because Behaviour.status says so.
_STATUS_ERRORS: Final[dict[int, tuple[str, str, str | None]]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to access this resource.", "permission_error", None),
    404: ("The model does not exist or you cannot access it.", "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


# --------------------------------------------------------------------------------------------- values


_optional_fail_mode: Final = attrs.validators.optional(attrs.validators.in_(FAIL_MODES))


@attrs.define
class Behaviour:
    """How the mock answers. Mutable on purpose: a test may change it while the server runs.

    ``latency`` delays the response headers; ``chunk_interval`` separates consecutive streamed events. With
    ``first_event_gate`` a stream's head goes alone and its events wait until the gate is set (a model's
    time to its first token, under a test's control); without it the first event goes with the head.
    A ``status`` outside 2xx answers with OpenAI's error envelope (and ``retry_after`` /
    ``retry_after_ms`` as ``retry-after`` / ``retry-after-ms`` headers); another 2xx status keeps the
    normal body. ``fail`` is one of :data:`FAIL_MODES`:

    - ``"hang"``: never answer; hold the connection until the client goes away.
    - ``"reset"``: close the connection with a TCP reset and no response.
    - ``"drop_mid_stream"``: send the headers and half the events (half the body when not streaming),
      then close without ``[DONE]`` or the end of the chunked body.
    - ``"echo_400"``: answer 400 with an error whose message is the whole request body, as text.
    - ``"echo_500"``: the same as a 500 (an upstream failure whose error body quotes the request).
    - ``"stall_body"``: send the headers of an error status (``status`` if it is >= 400, else 500) with a
      Content-Length larger than the body that follows, then stall.
    - ``"close_before_headers"``: read the request, then close the connection (FIN) without a byte.
    - ``"close_mid_headers"``: send half of the response head, then close.
    - ``"garbage"``: answer with bytes that are not HTTP, then close.
    - ``"wrong_length"``: send the whole body under a Content-Length larger than it, then close.
    """

    latency: float = 0.0
    status: int = 200
    stream_chunks: int = 5
    chunk_interval: float = 0.0
    completion_text: str = "Hello from the mock."
    prompt_tokens: int = 10
    completion_tokens: int = 8
    fail: str | None = attrs.field(default=None, validator=_optional_fail_mode)
    retry_after: str | None = None
    retry_after_ms: str | None = None
    extra_headers: dict[str, str] = attrs.Factory(dict)
    system_fingerprint: str = "fp_mock"
    first_event_gate: trio.Event | None = attrs.field(default=None, eq=False, repr=False)
    response_function_call: str | None = None
    """Responses API: when set, the answer also has a ``function_call`` output item (``lookup``, after the
    message) with these arguments, streamed as ``stream_chunks`` ``response.function_call_arguments.delta``
    events and a ``.done``."""


@attrs.frozen
class ReceivedRequest:
    """One request as the mock received it (``path`` includes the query string).

    For multipart bodies, ``form`` holds the non-file fields, ``file_fields`` the names of the file
    fields and ``file_bytes`` the total size of the files' contents.
    """

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    received_at: float
    form: dict[str, str] = attrs.Factory(dict)
    file_fields: tuple[str, ...] = ()
    file_bytes: int = 0

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def json(self) -> Any:
        """The body decoded as JSON."""
        return orjson.loads(self.body)


@attrs.frozen
class ClosedConnection:
    """A connection the client closed before its response finished, and when (``trio.current_time()``)."""

    path: str
    at: float


# ------------------------------------------------------------------------------- multipart (sans-IO)


class _MultipartParser:
    """Incremental ``multipart/form-data`` parser: keeps the text fields, counts the file bytes.

    Fed the body in pieces of any size, it holds back at most one delimiter's length of unparsed bytes,
    so a large upload costs no more memory than the pieces themselves.
    """

    __slots__ = (
        "_buffer",
        "_delimiter",
        "_is_file",
        "_name",
        "_state",
        "_value",
        "complete",
        "error",
        "fields",
        "file_bytes",
        "file_fields",
    )

    def __init__(self, boundary: bytes) -> None:
        self._delimiter = b"\r\n--" + boundary
        self._buffer = bytearray(b"\r\n")  # so the first delimiter looks like every other one
        self._state = self._preamble
        self._name = ""
        self._is_file = False
        self._value = bytearray()
        self.fields: dict[str, str] = {}
        self.file_fields: list[str] = []
        self.file_bytes = 0
        self.complete = False
        self.error: str | None = None

    def feed(self, data: bytes) -> None:
        if self.complete or self.error:
            return
        self._buffer += data
        while self._state():
            pass

    def _preamble(self) -> bool:
        found = self._buffer.find(self._delimiter)
        if found < 0:
            del self._buffer[: max(0, len(self._buffer) - len(self._delimiter) + 1)]
            return False
        del self._buffer[: found + len(self._delimiter)]
        self._state = self._after_delimiter
        return True

    def _after_delimiter(self) -> bool:
        if len(self._buffer) < 2:
            return False
        if self._buffer.startswith(b"--"):
            self.complete = True
            return False
        if not self._buffer.startswith(b"\r\n"):
            self.error = "malformed multipart delimiter"
            return False
        del self._buffer[:2]
        self._state = self._headers
        return True

    def _headers(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > 16384:
                self.error = "multipart part headers too large"
            return False
        self._start_part(bytes(self._buffer[:end]))
        del self._buffer[: end + 4]
        self._state = self._content
        return True

    def _start_part(self, block: bytes) -> None:
        lines = block.split(b"\r\n")
        disposition = next((line for line in lines if line.lower().startswith(b"content-disposition:")), b"")
        name = re.search(rb'\bname="([^"]*)"', disposition)
        self._name = name.group(1).decode("utf-8", "replace") if name else ""
        self._is_file = re.search(rb"\bfilename\*?=", disposition) is not None
        self._value = bytearray()

    def _content(self) -> bool:
        found = self._buffer.find(self._delimiter)
        if found < 0:
            safe = len(self._buffer) - len(self._delimiter) + 1
            if safe > 0:
                self._take(self._buffer[:safe])
                del self._buffer[:safe]
            return False
        self._take(self._buffer[:found])
        self._end_part()
        del self._buffer[: found + len(self._delimiter)]
        self._state = self._after_delimiter
        return True

    def _take(self, data: bytearray) -> None:
        if self._is_file:
            self.file_bytes += len(data)
        elif len(self._value) < _FIELD_LIMIT:
            self._value += data[: _FIELD_LIMIT - len(self._value)]

    def _end_part(self) -> None:
        if self._is_file:
            self.file_fields.append(self._name)
        else:
            self.fields[self._name] = self._value.decode("utf-8", "replace")


def _boundary(content_type: bytes) -> bytes | None:
    """The boundary of a ``multipart/form-data`` content type, else None."""
    if not content_type.lower().startswith(b"multipart/form-data"):
        return None
    found = re.search(rb'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    return found.group(1) if found else None


# -------------------------------------------------------------------------- requests being handled


@attrs.define(eq=False)
class _Incoming:
    """A request while its body arrives."""

    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    request_id: bytes | None
    multipart: _MultipartParser | None
    chunks: list[bytes] = attrs.Factory(list)

    @classmethod
    def from_parts(cls, method: str, target: str, headers: list[tuple[bytes, bytes]]) -> _Incoming:
        """``headers`` with lowercased names."""
        request_id = None
        parser = None
        for name, value in headers:
            if name == b"x-request-id":
                request_id = value
            elif name == b"content-type" and (boundary := _boundary(value)) is not None:
                parser = _MultipartParser(boundary)
        return cls(method, target, headers, request_id, parser)

    def feed(self, data: bytes) -> None:
        self.chunks.append(data)
        if self.multipart is not None:
            self.multipart.feed(data)

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]


@attrs.frozen
class _Parsed:
    """A fully received request, its body decoded as its route expects."""

    method: str
    target: str
    path: str
    headers: list[tuple[bytes, bytes]]
    request_id: bytes | None
    body: bytes
    payload: dict[str, Any]
    form: dict[str, str]
    file_fields: tuple[str, ...]
    file_bytes: int
    problem: str | None  # why the body is unusable (answered with 400)

    @property
    def model(self) -> str | None:
        model = self.form.get("model") if self.form else self.payload.get("model")
        return model if isinstance(model, str) else None

    def received(self, at: float) -> ReceivedRequest:
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in self.headers]
        return ReceivedRequest(
            self.method, self.target, headers, self.body, at, self.form, self.file_fields, self.file_bytes
        )


def _parse(incoming: _Incoming, kind: str) -> _Parsed:
    """Decode the body of ``incoming`` as ``kind`` ("json", "form" or "none")."""
    body = b"".join(incoming.chunks)
    payload: dict[str, Any] = {}
    form: dict[str, str] = {}
    files: tuple[str, ...] = ()
    file_bytes = 0
    problem = None
    if kind == "json":
        payload, problem = _decode_json(body)
    elif kind == "form":
        parser = incoming.multipart
        if parser is None or not parser.complete:
            problem = (parser and parser.error) or "Expected a complete multipart/form-data body."
        else:
            form, files, file_bytes = parser.fields, tuple(parser.file_fields), parser.file_bytes
    return _Parsed(
        incoming.method,
        incoming.target,
        incoming.path,
        incoming.headers,
        incoming.request_id,
        body,
        payload,
        form,
        files,
        file_bytes,
        problem,
    )


def _decode_json(body: bytes) -> tuple[dict[str, Any], str | None]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}, _BAD_JSON
    if not isinstance(payload, dict):
        return {}, "The request body must be a JSON object."
    return payload, None


# -------------------------------------------------------------------------- replies (sans-IO)


@attrs.frozen
class _Reply:
    """What to answer: a whole body (Content-Length) or ``events`` streamed with chunked encoding."""

    status: int
    content_type: bytes
    body: bytes = b""
    events: tuple[bytes, ...] | None = None


_Handler = Callable[[_Parsed, Behaviour], _Reply]


def _json_reply(obj: object) -> _Reply:
    return _Reply(200, _JSON, orjson.dumps(obj))


def _error_reply(status: int, message: str, kind: str | None = None, code: str | None = None) -> _Reply:
    kind = kind or ("server_error" if status >= 500 else "invalid_request_error")
    error = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return _Reply(status, _JSON, orjson.dumps(error))


@functools.lru_cache(maxsize=64)
def _status_error(status: int) -> _Reply:
    """The error answered when ``Behaviour.status`` is not 2xx."""
    message, kind, code = _STATUS_ERRORS.get(status, (f"Mock upstream answered {status}.", None, None))
    return _error_reply(status, message, kind, code)


def _sse(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _typed_sse(obj: dict[str, Any]) -> bytes:
    kind: str = obj["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


def _split_text(text: str, parts: int) -> list[str]:
    """``text`` split into ``parts`` pieces of (nearly) equal length."""
    size = len(text)
    return [text[i * size // parts : (i + 1) * size // parts] for i in range(parts)]


def _streams(payload: dict[str, Any]) -> tuple[bool, bool]:
    """Whether the request asks for a stream, and for usage in it (``stream_options.include_usage``)."""
    if payload.get("stream") is not True:
        return False, False
    options = payload.get("stream_options")
    return True, isinstance(options, dict) and options.get("include_usage") is True


def _model(parsed: _Parsed) -> str:
    return parsed.model or DEFAULT_MODEL


def _count_inputs(value: object) -> int:
    """How many inputs an ``input`` field holds: a string or token list is one, a list of them many."""
    if isinstance(value, list) and not (value and isinstance(value[0], int)):
        return len(value)
    return 1


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chat_usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        **_usage(prompt, completion),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


# Chat completions ----------------------------------------------------------------------------------


def _chat(parsed: _Parsed, behaviour: Behaviour) -> _Reply:
    stream, with_usage = _streams(parsed.payload)
    chunks = max(0, behaviour.stream_chunks) if stream else None
    return _chat_reply(
        _model(parsed),
        behaviour.completion_text,
        behaviour.prompt_tokens,
        behaviour.completion_tokens,
        chunks,
        with_usage,
        behaviour.system_fingerprint,
    )


@functools.lru_cache(maxsize=256)
def _chat_reply(
    model: str,
    text: str,
    prompt: int,
    completion: int,
    chunks: int | None,
    with_usage: bool,
    fingerprint: str,
) -> _Reply:
    """A chat completion; streamed in ``chunks`` content chunks unless ``chunks`` is None."""
    usage = _chat_usage(prompt, completion)
    if chunks is None:
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        return _json_reply(_chat_envelope("chat.completion", model, fingerprint, [choice], usage=usage))
    return _Reply(200, _SSE, events=_chat_events(model, text, usage, chunks, with_usage, fingerprint))


def _chat_envelope(
    kind: str, model: str, fingerprint: str, choices: list[Any], **extra: Any
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-mock",
        "object": kind,
        "created": _CREATED,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": choices,
        **extra,
    }


def _chat_events(
    model: str, text: str, usage: dict[str, Any], chunks: int, with_usage: bool, fingerprint: str
) -> tuple[bytes, ...]:
    extra = {"usage": None} if with_usage else {}

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse(_chat_envelope("chat.completion.chunk", model, fingerprint, [choice], **extra))

    events = [event({"role": "assistant", "content": "", "refusal": None})]
    events += [event({"content": piece}) for piece in _split_text(text, chunks)]
    events.append(event({}, "stop"))
    if with_usage:
        events.append(_sse(_chat_envelope("chat.completion.chunk", model, fingerprint, [], usage=usage)))
    events.append(_DONE)
    return tuple(events)


# Text completions ----------------------------------------------------------------------------------


def _completions(parsed: _Parsed, behaviour: Behaviour) -> _Reply:
    stream, with_usage = _streams(parsed.payload)
    chunks = max(0, behaviour.stream_chunks) if stream else None
    return _completion_reply(
        _model(parsed),
        behaviour.completion_text,
        behaviour.prompt_tokens,
        behaviour.completion_tokens,
        chunks,
        with_usage,
        behaviour.system_fingerprint,
    )


@functools.lru_cache(maxsize=256)
def _completion_reply(
    model: str,
    text: str,
    prompt: int,
    completion: int,
    chunks: int | None,
    with_usage: bool,
    fingerprint: str,
) -> _Reply:
    """A text completion; streamed in ``chunks`` chunks unless ``chunks`` is None."""
    usage = _usage(prompt, completion)
    if chunks is None:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
        return _json_reply(_completion_envelope(model, fingerprint, [choice], usage=usage))
    extra = {"usage": None} if with_usage else {}

    def event(piece: str, finish: str | None = None) -> bytes:
        choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}
        return _sse(_completion_envelope(model, fingerprint, [choice], **extra))

    events = [event(piece) for piece in _split_text(text, chunks)]
    events.append(event("", "stop"))
    if with_usage:
        events.append(_sse(_completion_envelope(model, fingerprint, [], usage=usage)))
    events.append(_DONE)
    return _Reply(200, _SSE, events=tuple(events))


def _completion_envelope(model: str, fingerprint: str, choices: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "cmpl-mock",
        "object": "text_completion",
        "created": _CREATED,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": choices,
        **extra,
    }


# Embeddings, moderations, rerank -------------------------------------------------------------------


def _embeddings(parsed: _Parsed, behaviour: Behaviour) -> _Reply:
    dimensions = parsed.payload.get("dimensions")
    size = dimensions if isinstance(dimensions, int) and 0 < dimensions <= 4096 else 8
    vector = _embedding_vector(size, parsed.payload.get("encoding_format") == "base64")
    count = _count_inputs(parsed.payload.get("input"))
    data = [{"object": "embedding", "index": index, "embedding": vector} for index in range(count)]
    usage = {"prompt_tokens": behaviour.prompt_tokens, "total_tokens": behaviour.prompt_tokens}
    return _json_reply({"object": "list", "data": data, "model": _model(parsed), "usage": usage})


@functools.lru_cache(maxsize=16)
def _embedding_vector(size: int, as_base64: bool) -> list[float] | str:
    """A fixed vector of ``size`` floats exact in float32 (k/64), or its little-endian float32 base64."""
    vector = [(index % 8 + 1) / 64 for index in range(size)]
    if as_base64:
        return base64.b64encode(struct.pack(f"<{size}f", *vector)).decode("ascii")
    return vector


def _moderations(parsed: _Parsed, behaviour: Behaviour) -> _Reply:
    result = {
        "flagged": False,
        "categories": dict.fromkeys(_MODERATION_CATEGORIES, False),
        "category_scores": dict.fromkeys(_MODERATION_CATEGORIES, 0.0),
    }
    results = [result] * _count_inputs(parsed.payload.get("input"))
    model = parsed.model or "omni-moderation-latest"
    return _json_reply({"id": "modr-mock", "model": model, "results": results})


def _rerank(parsed: _Parsed, behaviour: Behaviour) -> _Reply:
    documents = parsed.payload.get("documents")
    documents = documents if isinstance(documents, list) else []
    top_n = parsed.payload.get("top_n")
    keep = top_n if isinstance(top_n, int) and top_n >= 0 else len(documents)
    with_documents = parsed.payload.get("return_documents") is True
    results = [
        _rerank_result(index, document, len(documents), with_documents)
        for index, document in enumerate(documents[:keep])
    ]
    return _json_reply(
        {
            "id": "rerank-mock",
            "model": _model(parsed),
            "results": results,
            "usage": {"total_tokens": behaviour.prompt_tokens},
            "meta": {"billed_units": {"search_units": 1}},
        }
    )


def _rerank_result(index: int, document: object, total: int, with_document: bool) -> dict[str, Any]:
    """Documents keep their order; the scores fall from 1.0 so the order is also the ranking."""
    result: dict[str, Any] = {"index": index, "relevance_score": 1.0 - index / (total + 1)}
    if with_document:
        result["document"] = {"text": document} if isinstance(document, str) else document
    return result


# Responses API ------------------------------------------------------------------------------------


def _responses(parsed: _Parsed, behaviour: Behaviour) -> _Reply:
    model = _model(parsed)
    if parsed.payload.get("stream") is not True:
        return _json_reply(_response_object(model, behaviour, done=True))
    created = _response_object(model, behaviour, done=False)
    pieces = _split_text(behaviour.completion_text, max(0, behaviour.stream_chunks))
    events: list[dict[str, Any]] = [{"type": "response.created", "response": created}]
    events += [
        {
            "type": "response.output_text.delta",
            "item_id": "msg_mock",
            "output_index": 0,
            "content_index": 0,
            "delta": piece,
            "logprobs": [],
        }
        for piece in pieces
    ]
    if behaviour.response_function_call is not None:
        arguments = behaviour.response_function_call
        call = {"item_id": "fc_mock", "output_index": 1}
        events += [
            {"type": "response.function_call_arguments.delta", **call, "delta": piece}
            for piece in _split_text(arguments, max(0, behaviour.stream_chunks))
        ]
        events.append({"type": "response.function_call_arguments.done", **call, "arguments": arguments})
    events.append({"type": "response.completed", "response": _response_object(model, behaviour, done=True)})
    encoded = tuple(_typed_sse({**event, "sequence_number": number}) for number, event in enumerate(events))
    return _Reply(200, _SSE, events=encoded)


def _response_object(model: str, behaviour: Behaviour, *, done: bool) -> dict[str, Any]:
    content = {"type": "output_text", "text": behaviour.completion_text, "annotations": [], "logprobs": []}
    message = {
        "type": "message",
        "id": "msg_mock",
        "status": "completed",
        "role": "assistant",
        "content": [content],
    }
    usage = {
        "input_tokens": behaviour.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": behaviour.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": behaviour.prompt_tokens + behaviour.completion_tokens,
    }
    output: list[dict[str, Any]] = [message]
    if behaviour.response_function_call is not None:
        call = {
            "type": "function_call",
            "id": "fc_mock",
            "call_id": "call_mock",
            "name": "lookup",
            "arguments": behaviour.response_function_call,
            "status": "completed",
        }
        output.append(call)
    return {
        "id": "resp_mock",
        "object": "response",
        "created_at": _CREATED,
        "status": "completed" if done else "in_progress",
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "metadata": {},
        "usage": usage if done else None,
    }


# Images and audio ---------------------------------------------------------------------------------


def _images(count: object, behaviour: Behaviour) -> _Reply:
    number = count if isinstance(count, int) and 0 < count <= 10 else 1
    usage = {
        "input_tokens": behaviour.prompt_tokens,
        "input_tokens_details": {"text_tokens": behaviour.prompt_tokens, "image_tokens": 0},
        "output_tokens": behaviour.completion_tokens,
        "total_tokens": behaviour.prompt_tokens + behaviour.completion_tokens,
    }
    return _json_reply({"created": _CREATED, "data": [{"b64_json": _PNG_B64}] * number, "usage": usage})


def _image_generations(parsed: _Parsed, behaviour: Behaviour) -> _Reply:
    return _images(parsed.payload.get("n"), behaviour)


def _image_edits(parsed: _Parsed, behaviour: Behaviour) -> _Reply:
    count = parsed.form.get("n", "1")
    return _images(int(count) if count.isdigit() else 1, behaviour)


def _transcriptions(parsed: _Parsed, behaviour: Behaviour) -> _Reply:
    text = behaviour.completion_text
    if parsed.form.get("response_format") in ("text", "srt", "vtt"):
        return _Reply(200, b"text/plain; charset=utf-8", text.encode())
    usage = {
        "type": "tokens",
        "input_tokens": behaviour.prompt_tokens,
        "output_tokens": behaviour.completion_tokens,
        "total_tokens": behaviour.prompt_tokens + behaviour.completion_tokens,
    }
    return _json_reply({"text": text, "usage": usage})


def _speech(parsed: _Parsed, behaviour: Behaviour) -> _Reply:
    audio_format = parsed.payload.get("response_format")
    content_type = _AUDIO_TYPES.get(audio_format if isinstance(audio_format, str) else "mp3", b"audio/mpeg")
    return _Reply(200, content_type, events=_speech_chunks(max(1, behaviour.stream_chunks)))


@functools.lru_cache(maxsize=16)
def _speech_chunks(parts: int) -> tuple[bytes, ...]:
    size = len(_SPEECH)
    return tuple(_SPEECH[i * size // parts : (i + 1) * size // parts] for i in range(parts))


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": _CREATED, "owned_by": "mock"}


def _models_reply(ids: Sequence[str]) -> _Reply:
    return _json_reply({"object": "list", "data": [_model_object(model) for model in ids]})


@attrs.frozen
class _Route:
    handler: _Handler
    body: str  # "json", "form" or "none"


_ROUTES: Final[dict[tuple[str, str], _Route]] = {
    ("POST", "/v1/chat/completions"): _Route(_chat, "json"),
    ("POST", "/v1/completions"): _Route(_completions, "json"),
    ("POST", "/v1/embeddings"): _Route(_embeddings, "json"),
    ("POST", "/v1/responses"): _Route(_responses, "json"),
    ("POST", "/v1/moderations"): _Route(_moderations, "json"),
    ("POST", "/v1/rerank"): _Route(_rerank, "json"),
    ("POST", "/v1/images/generations"): _Route(_image_generations, "json"),
    ("POST", "/v1/images/edits"): _Route(_image_edits, "form"),
    ("POST", "/v1/audio/transcriptions"): _Route(_transcriptions, "form"),
    ("POST", "/v1/audio/translations"): _Route(_transcriptions, "form"),
    ("POST", "/v1/audio/speech"): _Route(_speech, "json"),
}


def _plan(parsed: _Parsed, route: _Route | None, behaviour: Behaviour) -> _Reply:
    """The reply for ``parsed`` under ``behaviour`` (failure modes that are not replies aside)."""
    if behaviour.fail in ("echo_400", "echo_500"):
        return _error_reply(int(behaviour.fail[-3:]), parsed.body.decode("utf-8", "replace"))
    if route is None:
        return _error_reply(404, f"Invalid URL ({parsed.method} {parsed.path})")
    if parsed.problem is not None:
        return _error_reply(400, parsed.problem)
    if not 200 <= behaviour.status < 300:
        return _status_error(behaviour.status)
    reply = route.handler(parsed, behaviour)
    return reply if behaviour.status == 200 else attrs.evolve(reply, status=behaviour.status)


Reply = _Reply
"""A reply as :func:`answer_in_memory` returns it: ``status``, ``content_type``, and ``body`` or
``events``."""


def answer_in_memory(
    method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes, behaviour: Behaviour
) -> Reply:
    """The reply to one whole request, without a socket: what the server would send, for in-process use
    (the gateway's ``provider: mock``). Failure modes that are not replies (``hang``, ``reset``, drops,
    stalls) and ``latency`` are the caller's business."""
    incoming = _Incoming.from_parts(method, target, headers)
    incoming.feed(body)
    route = _ROUTES.get((method, incoming.path))
    return _plan(_parse(incoming, route.body if route else "none"), route, behaviour)


@attrs.frozen
class _Answer:
    """A reply with what decides how it goes out: the behaviour, the request id to echo, the path."""

    reply: _Reply
    behaviour: Behaviour
    request_id: bytes | None
    path: str

    @property
    def quick(self) -> bool:
        """Whether it goes out at once, with nothing to wait for (no latency, stream, hang or stall)."""
        waits = self.behaviour.latency > 0 or self.behaviour.fail in ("hang", "stall_body")
        return self.reply.events is None and not waits

    def headers(self, length: int | None, reply: _Reply | None = None) -> list[tuple[bytes, bytes]]:
        """Headers for ``reply`` (default: ours): Content-Length if ``length`` is given, else a stream's."""
        reply = reply or self.reply
        headers = [(b"content-type", reply.content_type), _RATELIMIT]
        headers.append((b"content-length", b"%d" % length) if length is not None else _NO_CACHE)
        if self.request_id is not None:
            headers.append((b"x-request-id", self.request_id))
        if not 200 <= reply.status < 300:
            headers += self._retry_headers()
        headers += [(name.encode(), value.encode()) for name, value in self.behaviour.extra_headers.items()]
        return headers

    def _retry_headers(self) -> list[tuple[bytes, bytes]]:
        behaviour = self.behaviour
        pairs = ((b"retry-after", behaviour.retry_after), (b"retry-after-ms", behaviour.retry_after_ms))
        return [(name, value.encode()) for name, value in pairs if value is not None]


# ------------------------------------------------------------------------------------------ server


@attrs.define(eq=False)
class _Connection:
    """How answers go out on one client connection, and whom to tell about an early close.

    ``on_client_closed(path)`` is called at most once per request, when the client goes away before the
    response finished: noticed by a failed write, or, while the answer waits (latency, chunk interval,
    hang, stall), by a watcher task reading the socket.
    """

    http: H11Connection
    on_client_closed: Callable[[str], None]
    _closed_noted: bool = False
    _peer_gone: bool = False

    async def answer(self, answer: _Answer) -> bool:
        """Send ``answer``; return whether the connection may carry another request."""
        self._closed_noted = self._peer_gone = False
        if answer.quick:
            return await self._deliver_noting_breaks(answer)
        keep = False  # stays so when the watcher cancels the delivery
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_peer, nursery.cancel_scope, answer.path)
            keep = await self._deliver_noting_breaks(answer)
            nursery.cancel_scope.cancel()
        return keep and not self._peer_gone

    async def _watch_peer(self, scope: trio.CancelScope, path: str) -> None:
        """Read until the client goes away, then abandon the answer (noting it if unfinished)."""
        try:
            while data := await self.http.stream.receive_some(_READ_SIZE):
                self.http.conn.receive_data(data)  # a pipelined request: h11 keeps it for the next cycle
        except trio.BrokenResourceError:
            pass
        except trio.ClosedResourceError:  # we closed it ourselves ("reset")
            return
        self._peer_gone = True
        if self.http.conn.our_state not in (h11.DONE, h11.MUST_CLOSE):
            self._note_closed(path)
        scope.cancel()

    async def _deliver_noting_breaks(self, answer: _Answer) -> bool:
        try:
            return await self._deliver(answer)
        except trio.BrokenResourceError:
            self._note_closed(answer.path)
            return False

    def _note_closed(self, path: str) -> None:
        if not self._closed_noted:
            self._closed_noted = True
            self.on_client_closed(path)

    async def _deliver(self, answer: _Answer) -> bool:
        behaviour = answer.behaviour
        if behaviour.latency > 0:
            await trio.sleep(behaviour.latency)
        if behaviour.fail == "hang":
            await trio.sleep_forever()
        if behaviour.fail == "reset":
            await self._reset()
            return False
        if behaviour.fail == "stall_body":
            await self._stall(answer)
        if behaviour.fail in _BROKEN_REPLIES:
            await self._break(answer, behaviour.fail)
            return False
        drop = behaviour.fail == "drop_mid_stream"
        reply = answer.reply
        if reply.events is None:
            return await self._send_whole(answer, drop=drop)
        stop_after = len(reply.events) // 2 if drop else None
        headers = answer.headers(None)
        interval = behaviour.chunk_interval
        return await self.http.send_events(
            reply.status,
            headers,
            reply.events,
            interval=interval,
            stop_after=stop_after,
            gate=behaviour.first_event_gate,
        )

    async def _send_whole(self, answer: _Answer, *, drop: bool) -> bool:
        reply = answer.reply
        headers = answer.headers(len(reply.body))
        if drop:
            head = self.http.head(reply.status, headers)  # h11 must see the head before any body data
            await self.http.stream.send_all(
                head + self.http.send(h11.Data(data=reply.body[: len(reply.body) // 2]))
            )
            return False
        await self.http.stream.send_all(self.http.whole(reply.status, headers, reply.body))
        return True

    async def _stall(self, answer: _Answer) -> NoReturn:
        """Send an error's head promising more body than follows, send the body, then wait forever."""
        reply = _status_error(answer.behaviour.status if answer.behaviour.status >= 400 else 500)
        head = self.http.head(reply.status, answer.headers(len(reply.body) + _STALL_MISSING, reply))
        await self.http.stream.send_all(head + self.http.send(h11.Data(data=reply.body)))
        await trio.sleep_forever()

    async def _break(self, answer: _Answer, mode: str) -> None:
        """Send the broken reply of ``mode`` (one of :data:`_BROKEN_REPLIES`), then close the connection."""
        reply = answer.reply
        body = reply.body or b"".join(reply.events or ())
        stream = self.http.stream
        if mode == "close_mid_headers":
            head = self.http.head(reply.status, answer.headers(len(body)))
            await stream.send_all(head[: len(head) // 2])
        elif mode == "garbage":
            await stream.send_all(b"\x00\xff\x13 not HTTP at all \xfe\r\n\r\n")
        elif mode == "wrong_length":
            head = self.http.head(reply.status, answer.headers(len(body) + 100))
            await stream.send_all(head + self.http.send(h11.Data(data=body)))
        await stream.aclose()

    async def _reset(self) -> None:
        """Close the connection with a TCP RST instead of a FIN."""
        self.http.stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await self.http.stream.aclose()


def _malformed(error: h11.RemoteProtocolError) -> tuple[int, Headers, bytes]:
    """The answer to a malformed request: 400 in OpenAI's envelope, and the connection closes."""
    reply = _error_reply(400, f"Malformed HTTP request: {error}")
    length = b"%d" % len(reply.body)
    return 400, [(b"content-type", _JSON), (b"content-length", length), (b"connection", b"close")], reply.body


@attrs.define(eq=False)
class MockUpstream:
    """The mock provider: its behaviour, what it received, and the server that answers.

    ``behaviour`` applies unless the request body's ``model`` is a key of ``by_model``. With ``record``
    (the default), every request is appended to ``requests``. ``client_closed`` lists the connections
    the client closed before their response finished; ``open_connections`` counts the connections open
    now. ``port`` and ``base_url`` are set once :meth:`serve` has bound its socket.
    """

    behaviour: Behaviour = attrs.Factory(Behaviour)
    by_model: dict[str, Behaviour] = attrs.Factory(dict)
    record: bool = True
    requests: list[ReceivedRequest] = attrs.field(factory=list, init=False)
    client_closed: list[ClosedConnection] = attrs.field(factory=list, init=False)
    open_connections: int = attrs.field(default=0, init=False)
    port: int | None = attrs.field(default=None, init=False)
    base_url: str | None = attrs.field(default=None, init=False)
    _changed: trio.Event = attrs.field(factory=trio.Event, init=False, repr=False)

    def behaviour_for(self, model: str | None) -> Behaviour:
        """The behaviour that applies to a request for ``model``."""
        return self.by_model.get(model, self.behaviour) if model is not None else self.behaviour

    def clear(self) -> None:
        """Forget the recorded requests and closed connections."""
        self.requests.clear()
        self.client_closed.clear()

    async def wait_client_closed(self, count: int = 1) -> ClosedConnection:
        """Block until ``count`` connections were closed by the client mid-response; return that one."""
        while len(self.client_closed) < count:
            await self._changed.wait()
        return self.client_closed[count - 1]

    async def wait_requests(self, count: int = 1) -> None:
        """Block until ``requests`` holds at least ``count`` requests (``record`` must be on)."""
        while len(self.requests) < count:
            await self._changed.wait()

    async def wait_no_connections(self) -> None:
        """Block until no connection is open (``open_connections`` is 0)."""
        while self.open_connections:
            await self._changed.wait()

    def _notify(self) -> None:
        """Wake every ``wait_*`` call: what they wait for may have changed."""
        self._changed.set()
        self._changed = trio.Event()

    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Listen on ``host``:``port``, report the bound port to ``task_status``, serve until cancelled.

        Each connection runs in its own task, in a nursery that lives inside this call; cancelling
        ``serve`` closes the listener and every connection.
        """
        listener, bound = await open_listener(host, port)
        self.port = bound
        self.base_url = f"http://{f'[{host}]' if ':' in host else host}:{bound}/v1"
        task_status.started(bound)
        await trio.serve_listeners(self._handle_connection, [listener])

    async def _handle_connection(self, stream: trio.SocketStream) -> None:
        self.open_connections += 1
        http = H11Connection(stream)
        connection = _Connection(http, self._note_client_closed)

        async def answer(request: Request) -> bool:
            return await connection.answer(self._prepare(request))

        try:
            await converse(http, answer, malformed=_malformed, gone=self._note_client_closed)
        finally:
            self.open_connections -= 1
            self._notify()

    def _prepare(self, request: Request) -> _Answer:
        """Route, decode and record a request, and decide the answer."""
        incoming = _Incoming.from_parts(request.method, request.target, request.headers)
        incoming.feed(request.body)
        route = _ROUTES.get((incoming.method, incoming.path)) or self._models_route(incoming)
        parsed = _parse(incoming, route.body if route else "none")
        behaviour = self.behaviour_for(parsed.model)
        if self.record:
            self.requests.append(parsed.received(trio.current_time()))
            self._notify()
        return _Answer(_plan(parsed, route, behaviour), behaviour, parsed.request_id, parsed.target)

    def _models_route(self, incoming: _Incoming) -> _Route | None:
        if incoming.method != "GET":
            return None
        ids = [DEFAULT_MODEL, *(model for model in self.by_model if model != DEFAULT_MODEL)]
        if incoming.path == "/v1/models":
            return _Route(lambda parsed, behaviour: _models_reply(ids), "none")
        model = incoming.path.removeprefix("/v1/models/")
        if model != incoming.path and model in ids:
            return _Route(lambda parsed, behaviour: _json_reply(_model_object(model)), "none")
        return None

    def _note_client_closed(self, path: str) -> None:
        self.client_closed.append(ClosedConnection(path, trio.current_time()))
        self._notify()


@asynccontextmanager
async def open_mock_upstream(
    behaviour: Behaviour | None = None, *, host: str = "127.0.0.1", port: int = 0, **kw: Any
) -> AsyncIterator[MockUpstream]:
    """Run a :class:`MockUpstream` (``kw`` are its other fields) for the duration of the block.

    On entry the server is listening and ``.port`` / ``.base_url`` are set; on exit it is cancelled,
    which closes its listener and every connection.
    """
    upstream = MockUpstream(behaviour if behaviour is not None else Behaviour(), **kw)
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(upstream.serve, host=host, port=port))
        yield upstream
        nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------------------------- CLI


_CLI_HELP: Final = "Serve a mock OpenAI-compatible upstream until SIGINT or SIGTERM."


def _duration(text: str) -> float:
    """Seconds from ``"10ms"``, ``"1.5s"`` or a plain number of seconds."""
    text = text.strip().lower()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    return float(text.removesuffix("s"))


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m voidllm.testing.mock_openai", description=_CLI_HELP)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=_duration, default=0.0, help="before response headers (10ms, 1s)")
    parser.add_argument("--stream-chunks", type=int, default=5)
    parser.add_argument("--chunk-interval", type=_duration, default=0.0, help="between streamed events")
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--fail", choices=sorted(FAIL_MODES))
    parser.add_argument("--completion-text", default=Behaviour().completion_text)
    return parser.parse_args(argv)


async def _serve_until_signalled(args: argparse.Namespace) -> None:
    behaviour = Behaviour(
        latency=args.latency,
        status=args.status,
        stream_chunks=args.stream_chunks,
        chunk_interval=args.chunk_interval,
        completion_text=args.completion_text,
        fail=args.fail,
    )
    upstream = MockUpstream(behaviour, record=False)  # a benchmark sends millions of requests
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(functools.partial(upstream.serve, host=args.host, port=args.port))
            print(f"listening http://{args.host}:{port}", flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the mock from the command line until SIGINT or SIGTERM."""
    trio.run(_serve_until_signalled, _arguments(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
