"""Fake Anthropic, Gemini / Vertex AI and Azure OpenAI upstreams: real HTTP/1.1 servers on trio + h11 (the
server loop is :mod:`voidllm.testing.h11server`'s).

The end-to-end tests of the translating adapters point the gateway at these servers. Each one listens on an
ephemeral port of ``127.0.0.1``, keeps connections alive, reads every request body in full, records every
request it gets (:class:`~voidllm.testing.mock_openai.ReceivedRequest`: method, path *with* the query string,
lowercased headers, raw body with ``.json()``), and answers in its provider's own shapes:

Anthropic (:func:`open_mock_anthropic`; ``base_url`` is the API root, the adapter adds ``/v1/messages``):

- ``POST /v1/messages``: a ``message`` with ``text`` and (``tool_call``) ``tool_use`` content blocks,
  ``stop_reason`` (``end_turn``, ``tool_use``, or ``stop`` to override) and ``usage`` with cache tokens; with
  ``"stream": true`` the documented event sequence with ``event:`` lines: ``message_start``,
  ``content_block_start``, ``ping``, ``content_block_delta`` (``text_delta``; ``input_json_delta`` for
  tools, the first fragment empty as Anthropic sends it), ``content_block_stop``, ``message_delta`` (stop
  reason, output tokens), ``message_stop``.
- ``POST /v1/messages/count_tokens``: ``{"input_tokens": prompt_tokens}``.
- ``x-api-key`` and ``anthropic-version`` must be present (else 401). The body is checked the way the API
  checks it, so a translation bug shows as a 400: required ``model``/``max_tokens``/``messages``, no
  unknown top-level field, non-empty text blocks, every ``tool_use`` answered by a ``tool_result`` in the
  next user turn (results first) and every ``tool_result`` answering the previous turn, ``tool_choice``
  naming a declared tool.
- Errors: ``{"type": "error", "error": {"type", "message"}}`` with ``request-id``.

Gemini (:func:`open_mock_gemini`) and Vertex AI (``open_mock_gemini(vertex=True)``); ``base_url`` is the root:

- Gemini ``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse`` with
  ``x-goog-api-key``; Vertex ``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:...``
  with ``Authorization: Bearer <token>``; a missing credential is a 401 ``UNAUTHENTICATED``.
- Answers: ``candidates`` (one, ``index`` 0) with ``text`` and (``tool_call``) ``functionCall`` parts,
  ``finishReason`` (``STOP``, or ``stop``), ``usageMetadata`` and ``responseId``/``modelVersion``. Streams
  are ``data: {...}`` events separated by ``\\r\\n\\r\\n`` as Google sends them, ``finishReason`` and
  ``usageMetadata`` on the last one; without ``alt=sse`` a stream is one JSON array.
- The body is checked: ``contents`` with roles ``user``/``model`` and non-empty ``parts`` of one known kind
  each, no unknown top-level or ``generationConfig`` field, a known ``functionCallingConfig.mode``.
- Errors: ``{"error": {"code", "message", "status"}}``.

Azure OpenAI (:func:`open_mock_azure`; ``base_url`` is the resource root):

- ``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` (no ``api-version``: 400) and
  the version-less ``POST /openai/v1/chat/completions``; ``api-key`` must be present (else 401).
- Answers OpenAI's shapes with Azure's content-filter annotations: ``chat.completion`` with text or
  ``tool_calls``; streams begin with Azure's ``prompt_filter_results`` chunk (``choices: []``, no usage) and,
  like OpenAI, carry usage (``"usage": null`` on every chunk, then one usage chunk) only when the request
  asked for ``stream_options.include_usage``; then ``data: [DONE]``.
- Errors: ``{"error": {"code": "<status>", "message"}}``.

Behaviour is a mutable :class:`ProviderBehaviour` (status, texts, tool calls, token counts, stop reason,
failure modes); tests change it while the server runs. ``fail`` is one of :data:`FAIL_MODES` and applies to
streams: ``malformed_event`` sends an event whose data is not valid JSON after the first text delta (and
then the rest), ``error_event`` sends the provider's in-stream error instead of the rest (Anthropic's
``event: error``, Gemini's ``error`` object), ``drop_mid_stream`` closes the connection halfway.

Deliberately left out: thinking blocks, citations, server tools, multiple candidates, logprobs, image
output, any check of the credential's value (only its presence), and noticing a client that goes away.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import orjson
import trio

from voidllm.testing.h11server import H11Connection, Request, converse, open_listener
from voidllm.testing.mock_openai import ReceivedRequest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping
    from contextlib import AbstractAsyncContextManager

__all__ = [
    "AZURE_MODEL",
    "FAIL_MODES",
    "MockProvider",
    "ProviderBehaviour",
    "ProviderKind",
    "open_mock_anthropic",
    "open_mock_azure",
    "open_mock_gemini",
    "split_text",
]

ProviderKind = Literal["anthropic", "gemini", "vertex", "azure"]
FAIL_MODES: Final = frozenset({"malformed_event", "error_event", "drop_mid_stream"})
AZURE_MODEL: Final = "gpt-4o-2024-08-06"  # what Azure reports as ``model``, whatever the deployment's name

_JSON: Final = b"application/json"
_SSE: Final = b"text/event-stream; charset=utf-8"
_CREATED: Final = 1_700_000_000
_optional_fail_mode: Final = attrs.validators.optional(attrs.validators.in_(FAIL_MODES))
_MALFORMED: Final = b'{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "te'


def split_text(text: str, parts: int) -> list[str]:
    """``text`` in ``parts`` (at least one) pieces of nearly equal length, as the mocks stream it."""
    parts = max(1, parts)
    size = len(text)
    return [text[i * size // parts : (i + 1) * size // parts] for i in range(parts)]


@attrs.define
class ProviderBehaviour:
    """How a mock answers. Mutable on purpose: a test may change it while the server runs.

    ``status`` outside 2xx answers with the provider's error shape (``error_message``; ``retry_after`` as
    the ``retry-after`` header). ``tool_call`` answers with ``tool_preamble`` text (when not empty) and one
    call of ``tool_name`` with ``tool_arguments`` instead of ``text``. ``stop`` replaces the provider's
    native stop reason (Anthropic ``stop_reason``, Gemini ``finishReason``, Azure ``finish_reason``).
    ``cache_creation_tokens`` / ``cache_read_tokens`` are Anthropic's cache counters (Gemini reports
    ``cache_read_tokens`` as ``cachedContentTokenCount``; Azure as ``cached_tokens``); ``prompt_tokens``
    excludes them for Anthropic and includes them elsewhere, as each provider counts.
    """

    status: int = 200
    error_message: str = "The mock provider refused the request."
    retry_after: str | None = None
    text: str = "Hello from the mock."
    stream_chunks: int = 3
    chunk_interval: float = 0.0
    tool_call: bool = False
    tool_preamble: str = "Let me check."
    tool_name: str = "get_weather"
    tool_arguments: dict[str, Any] = attrs.Factory(lambda: {"city": "Paris", "unit": "celsius"})
    prompt_tokens: int = 10
    completion_tokens: int = 8
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    stop: str | None = None
    fail: str | None = attrs.field(default=None, validator=_optional_fail_mode)

    def pieces(self) -> list[str]:
        """The text deltas a stream carries, in order (the preamble when answering with a tool call)."""
        text = self.tool_preamble if self.tool_call else self.text
        return [piece for piece in split_text(text, self.stream_chunks) if piece] if text else []

    @property
    def arguments_json(self) -> str:
        """The tool call's arguments as the JSON string the client should get."""
        return orjson.dumps(self.tool_arguments).decode()


@attrs.frozen
class _Reply:
    """A whole body (Content-Length), or ``events`` with chunked encoding, cut after ``cut_after`` of them."""

    status: int
    body: bytes = b""
    events: tuple[bytes, ...] | None = None
    content_type: bytes = _JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()
    cut_after: int | None = None


@attrs.frozen
class _Request:
    method: str
    target: str
    headers: Mapping[str, str]

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.target).path)

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)


@attrs.define(eq=False)
class MockProvider:
    """One mock provider server; see the module docstring.

    ``requests`` lists every request received (also the ones answered with an error); ``base_url`` and
    ``port`` are set once :meth:`serve` has bound its socket.
    """

    kind: ProviderKind
    behaviour: ProviderBehaviour = attrs.Factory(ProviderBehaviour)
    requests: list[ReceivedRequest] = attrs.field(factory=list, init=False)
    port: int | None = attrs.field(default=None, init=False)
    base_url: str = attrs.field(default="", init=False)

    @property
    def last(self) -> ReceivedRequest:
        """The most recent request (AssertionError when there is none)."""
        assert self.requests, f"the mock {self.kind} upstream received no request"
        return self.requests[-1]

    def clear(self) -> None:
        self.requests.clear()

    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen, report the bound port to ``task_status``, and serve until cancelled."""
        listener, self.port = await open_listener(host, port)
        self.base_url = f"http://{host}:{self.port}"
        task_status.started(self.port)
        await trio.serve_listeners(self._connection, [listener])

    # --- HTTP ---------------------------------------------------------------------------------------------

    async def _connection(self, stream: trio.SocketStream) -> None:
        http = H11Connection(stream)

        async def answer(request: Request) -> bool:
            return await self._write(http, self._handle(request))

        await converse(http, answer)

    async def _write(self, http: H11Connection, reply: _Reply) -> bool:
        headers = [(b"content-type", reply.content_type), *reply.headers]
        if reply.events is None:
            headers.append((b"content-length", b"%d" % len(reply.body)))
            await http.stream.send_all(http.whole(reply.status, headers, reply.body))
            return True
        interval = self.behaviour.chunk_interval
        return await http.send_events(
            reply.status, headers, reply.events, interval=interval, stop_after=reply.cut_after
        )

    def _handle(self, request: Request) -> _Reply:
        headers = [
            (name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in request.headers
        ]
        method, target, body = request.method, request.target, request.body
        self.requests.append(ReceivedRequest(method, target, headers, body, trio.current_time()))
        answer = {"anthropic": self._anthropic, "azure": self._azure}.get(self.kind, self._gemini)
        return answer(_Request(method, target, dict(headers)), body)

    # --- Anthropic ----------------------------------------------------------------------------------------

    def _anthropic(self, request: _Request, body: bytes) -> _Reply:
        if request.method != "POST" or request.path not in ("/v1/messages", "/v1/messages/count_tokens"):
            return _anthropic_error(404, "not_found_error", "Not found")
        for name in ("x-api-key", "anthropic-version"):
            if not request.headers.get(name):
                return _anthropic_error(401, "authentication_error", f"{name} header is required")
        payload = _json_object(body)
        if payload is None:
            return _anthropic_error(400, "invalid_request_error", "The body is not a valid JSON object")
        behaviour = self.behaviour
        if not 200 <= behaviour.status < 300:
            kind = _ANTHROPIC_ERRORS.get(behaviour.status, "api_error")
            return _anthropic_error(behaviour.status, kind, behaviour.error_message, behaviour.retry_after)
        counting = request.path.endswith("/count_tokens")
        problem = _anthropic_problem(payload, counting=counting)
        if problem is not None:
            return _anthropic_error(400, "invalid_request_error", problem)
        if counting:
            return _json_reply({"input_tokens": behaviour.prompt_tokens})
        if payload.get("stream") is True:
            return _anthropic_stream(payload["model"], behaviour)
        return _json_reply(_anthropic_message(payload["model"], behaviour), _ANTHROPIC_HEADERS)

    # --- Gemini / Vertex ----------------------------------------------------------------------------------

    def _gemini(self, request: _Request, body: bytes) -> _Reply:
        route = _gemini_route(request.path, vertex=self.kind == "vertex")
        if request.method != "POST" or route is None:
            return _gemini_error(404, f"The requested URL {request.path} was not found on this server.")
        model, method = route
        if self.kind == "vertex":
            token = request.headers.get("authorization", "")
            authorised = token.startswith("Bearer ") and len(token) > len("Bearer ")
        else:
            authorised = bool(request.headers.get("x-goog-api-key") or request.query.get("key"))
        if not authorised:
            return _gemini_error(401, "Request is missing required authentication credential.")
        payload = _json_object(body)
        if payload is None:
            return _gemini_error(400, "Invalid JSON payload received.")
        behaviour = self.behaviour
        if not 200 <= behaviour.status < 300:
            return _gemini_error(behaviour.status, behaviour.error_message, behaviour.retry_after)
        problem = _gemini_problem(payload)
        if problem is not None:
            return _gemini_error(400, problem)
        if method == "generateContent":
            return _json_reply(_gemini_response(model, behaviour, final=True, parts=_gemini_parts(behaviour)))
        chunks = _gemini_chunks(model, behaviour)
        if request.query.get("alt") != ["sse"]:
            return _json_reply(chunks)
        return _gemini_stream(chunks, behaviour)

    # --- Azure --------------------------------------------------------------------------------------------

    def _azure(self, request: _Request, body: bytes) -> _Reply:
        path = request.path
        dated = path.startswith("/openai/deployments/") and path.endswith("/chat/completions")
        if request.method != "POST" or not (dated or path == "/openai/v1/chat/completions"):
            return _azure_error(404, "Resource not found")
        if not request.headers.get("api-key"):
            return _azure_error(401, _AZURE_DENIED)
        if dated and not request.query.get("api-version"):
            return _azure_error(400, "Missing required query parameter: api-version")
        payload = _json_object(body)
        if payload is None:
            return _azure_error(400, "We could not parse the JSON body of your request.")
        behaviour = self.behaviour
        if not 200 <= behaviour.status < 300:
            return _azure_error(behaviour.status, behaviour.error_message, behaviour.retry_after)
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            return _azure_error(400, "'messages' is a required property and must be a non-empty array")
        if payload.get("stream") is True:
            options = payload.get("stream_options")
            with_usage = isinstance(options, dict) and options.get("include_usage") is True
            return _azure_stream(behaviour, with_usage)
        return _json_reply(_azure_completion(behaviour))


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


def _json_reply(obj: object, headers: tuple[tuple[bytes, bytes], ...] = ()) -> _Reply:
    return _Reply(200, orjson.dumps(obj), headers=headers)


def _retry_headers(retry_after: str | None) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"retry-after", retry_after.encode()),) if retry_after else ()


# ------------------------------------------------------------------------------------------- Anthropic


_ANTHROPIC_HEADERS: Final = ((b"request-id", b"req_mock01"),)
_ANTHROPIC_ERRORS: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_COUNT_FIELDS: Final = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"}
)
_ANTHROPIC_FIELDS: Final = _COUNT_FIELDS | {
    "max_tokens",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "service_tier",
    "container",
    "context_management",
}
_ANTHROPIC_BLOCKS: Final = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "search_result"}
)


def _anthropic_error(status: int, kind: str, message: str, retry_after: str | None = None) -> _Reply:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock01"}
    return _Reply(status, orjson.dumps(body), headers=_ANTHROPIC_HEADERS + _retry_headers(retry_after))


def _anthropic_problem(payload: dict[str, Any], *, counting: bool) -> str | None:
    """Why the Messages API would refuse this body (as its 400 says), or None."""
    allowed = _COUNT_FIELDS if counting else _ANTHROPIC_FIELDS
    for field in payload:
        if field not in allowed:
            return f"{field}: Extra inputs are not permitted"
    if not isinstance(payload.get("model"), str) or not payload["model"]:
        return "model: Field required"
    if not counting:
        max_tokens = payload.get("max_tokens")
        if type(max_tokens) is not int or max_tokens < 1:
            return "max_tokens: Field required (a positive integer)"
    system = payload.get("system")
    if system is not None and not isinstance(system, str | list):
        return "system: Input should be a valid string or list of text blocks"
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    pending: set[str] = set()  # tool_use ids the next user turn must answer
    for position, message in enumerate(messages):
        problem = _anthropic_turn_problem(message, position, pending)
        if problem is not None:
            return problem
    return _anthropic_tools_problem(payload)


def _anthropic_turn_problem(message: object, position: int, pending: set[str]) -> str | None:
    where = f"messages.{position}"
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        return f"{where}.role: Input should be 'user' or 'assistant'"
    content = message.get("content")
    if isinstance(content, str):
        blocks = [{"type": "text", "text": content}]
    elif isinstance(content, list) and content:
        blocks = content
    else:
        return f"{where}.content: must be a string or a non-empty list of content blocks"
    kinds = []
    for index, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in _ANTHROPIC_BLOCKS:
            return f"{where}.content.{index}: unknown content block type"
        if kind == "text" and not block.get("text"):
            return f"{where}.content.{index}: text content blocks must be non-empty"
        if kind == "image" and not isinstance(block.get("source"), dict):
            return f"{where}.content.{index}.source: Field required"
        kinds.append(kind)
    results = [block.get("tool_use_id") for block in blocks if block.get("type") == "tool_result"]
    uses = [block.get("id") for block in blocks if block.get("type") == "tool_use"]
    if message["role"] == "user":
        if pending - set(results):
            return f"{where}: tool_use ids were found without tool_result blocks immediately after"
        if set(results) - pending:
            return f"{where}: unexpected tool_use_id found in tool_result blocks"
        if results and kinds[: len(results)] != ["tool_result"] * len(results):
            return f"{where}: tool_result blocks must come first in the user turn"
        pending.clear()
    else:
        if pending:
            return f"{where}: tool_use ids were found without tool_result blocks immediately after"
        if results:
            return f"{where}: tool_result blocks are only allowed in user turns"
        if not all(isinstance(use, str) and use for use in uses):
            return f"{where}: tool_use blocks need an id"
        pending.update(use for use in uses if isinstance(use, str))  # all are, checked above
    return None


def _anthropic_tools_problem(payload: dict[str, Any]) -> str | None:
    tools = payload.get("tools", [])
    if not isinstance(tools, list):
        return "tools: Input should be a valid list"
    names = set()
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            return f"tools.{index}.name: Field required"
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return f"tools.{index}.input_schema: must be a JSON schema of type object"
        names.add(tool["name"])
    choice = payload.get("tool_choice")
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        return "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
    if not tools:
        return "tool_choice may only be specified while providing tools"
    if choice["type"] == "tool" and choice.get("name") not in names:
        return "tool_choice.name: names a tool that is not among the tools"
    return None


def _anthropic_usage(behaviour: ProviderBehaviour, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": behaviour.prompt_tokens,
        "cache_creation_input_tokens": behaviour.cache_creation_tokens,
        "cache_read_input_tokens": behaviour.cache_read_tokens,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _anthropic_stop(behaviour: ProviderBehaviour) -> str:
    return behaviour.stop or ("tool_use" if behaviour.tool_call else "end_turn")


def _anthropic_message(model: str, behaviour: ProviderBehaviour) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    text = behaviour.tool_preamble if behaviour.tool_call else behaviour.text
    if text:
        content.append({"type": "text", "text": text})
    if behaviour.tool_call:
        content.append(
            {
                "type": "tool_use",
                "id": "toolu_mock01",
                "name": behaviour.tool_name,
                "input": behaviour.tool_arguments,
            }
        )
    return {
        "id": "msg_mock01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _anthropic_stop(behaviour),
        "stop_sequence": None,
        "usage": _anthropic_usage(behaviour, behaviour.completion_tokens),
    }


def _anthropic_event(payload: dict[str, Any]) -> bytes:
    kind: str = payload["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _anthropic_stream(model: str, behaviour: ProviderBehaviour) -> _Reply:
    message = {
        **_anthropic_message(model, behaviour),
        "content": [],
        "stop_reason": None,
        "usage": _anthropic_usage(behaviour, 1),
    }
    events = [_anthropic_event({"type": "message_start", "message": message})]
    index = 0
    malformed_at = None
    if pieces := behaviour.pieces():
        events.append(
            _anthropic_event(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
            )
        )
        events.append(_anthropic_event({"type": "ping"}))
        for piece in pieces:
            delta = {"type": "text_delta", "text": piece}
            events.append(_anthropic_event({"type": "content_block_delta", "index": 0, "delta": delta}))
            if malformed_at is None:
                malformed_at = len(events)
        events.append(_anthropic_event({"type": "content_block_stop", "index": 0}))
        index = 1
    if behaviour.tool_call:
        block = {"type": "tool_use", "id": "toolu_mock01", "name": behaviour.tool_name, "input": {}}
        start = {"type": "content_block_start", "index": index, "content_block": block}
        events.append(_anthropic_event(start))
        for fragment in ["", *split_text(behaviour.arguments_json, 3)]:
            delta = {"type": "input_json_delta", "partial_json": fragment}
            events.append(_anthropic_event({"type": "content_block_delta", "index": index, "delta": delta}))
        events.append(_anthropic_event({"type": "content_block_stop", "index": index}))
    stop = {"stop_reason": _anthropic_stop(behaviour), "stop_sequence": None}
    usage = {"output_tokens": behaviour.completion_tokens}
    events.append(_anthropic_event({"type": "message_delta", "delta": stop, "usage": usage}))
    events.append(_anthropic_event({"type": "message_stop"}))
    position = malformed_at if malformed_at is not None else 1
    if behaviour.fail == "malformed_event":
        events.insert(position, b"event: content_block_delta\ndata: " + _MALFORMED + b"\n\n")
    elif behaviour.fail == "error_event":
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        events[position:] = [_anthropic_event(error)]
    cut = len(events) // 2 if behaviour.fail == "drop_mid_stream" else None
    return _Reply(200, events=tuple(events), content_type=_SSE, headers=_ANTHROPIC_HEADERS, cut_after=cut)


# ---------------------------------------------------------------------------------------- Gemini / Vertex


_GEMINI_STATUS: Final = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_GEMINI_FIELDS: Final = frozenset(
    {
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
        "safetySettings",
        "cachedContent",
        "labels",
    }
)
_GENERATION_FIELDS: Final = frozenset(
    {
        "temperature",
        "topP",
        "topK",
        "candidateCount",
        "maxOutputTokens",
        "stopSequences",
        "presencePenalty",
        "frequencyPenalty",
        "seed",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseLogprobs",
        "logprobs",
        "thinkingConfig",
        "responseModalities",
        "speechConfig",
        "mediaResolution",
    }
)
_PART_KINDS: Final = frozenset(
    {
        "text",
        "inlineData",
        "fileData",
        "functionCall",
        "functionResponse",
        "executableCode",
        "codeExecutionResult",
    }
)
_PART_EXTRAS: Final = frozenset({"thought", "thoughtSignature", "videoMetadata"})
_GEMINI_METHODS: Final = ("generateContent", "streamGenerateContent")


def _gemini_route(path: str, *, vertex: bool) -> tuple[str, str] | None:
    """``(model, method)`` of a generateContent path of this flavour, else None."""
    if vertex:
        # "", "v1", "projects", p, "locations", l, "publishers", "google", "models", "<model>:<method>"
        segments = path.split("/")
        if (
            len(segments) != 10
            or segments[1] not in ("v1", "v1beta1")
            or segments[2] != "projects"
            or segments[4] != "locations"
            or segments[6:9] != ["publishers", "google", "models"]
            or not segments[3]
            or not segments[5]
        ):
            return None
        last = segments[9]
    else:
        prefix = "/v1beta/models/"
        if not path.startswith(prefix):
            return None
        last = path[len(prefix) :]
    model, colon, method = last.rpartition(":")
    if not colon or not model or "/" in model or method not in _GEMINI_METHODS:
        return None
    return model, method


def _gemini_error(status: int, message: str, retry_after: str | None = None) -> _Reply:
    body = {"error": {"code": status, "message": message, "status": _GEMINI_STATUS.get(status, "UNKNOWN")}}
    return _Reply(status, orjson.dumps(body), headers=_retry_headers(retry_after))


def _gemini_problem(payload: dict[str, Any]) -> str | None:
    """Why generateContent would refuse this body (as its 400 says), or None."""
    for field in payload:
        if field not in _GEMINI_FIELDS:
            return f'Invalid JSON payload received. Unknown name "{field}": Cannot find field.'
    contents = payload.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for position, content in enumerate(contents):
        if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
            return f"* GenerateContentRequest.contents[{position}].role: must be user or model"
        problem = _parts_problem(content.get("parts"), f"contents[{position}]")
        if problem is not None:
            return problem
    system = payload.get("systemInstruction")
    if system is not None:
        parts = system.get("parts") if isinstance(system, dict) else None
        problem = _parts_problem(parts, "systemInstruction")
        if problem is not None:
            return problem
    config = payload.get("generationConfig", {})
    if not isinstance(config, dict):
        return "generationConfig must be an object"
    for field in config:
        if field not in _GENERATION_FIELDS:
            return f"Invalid JSON payload received. Unknown name \"{field}\" at 'generation_config'"
    return _gemini_tools_problem(payload)


def _parts_problem(parts: object, where: str) -> str | None:
    if not isinstance(parts, list) or not parts:
        return f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty."
    for index, part in enumerate(parts):
        if not isinstance(part, dict):
            return f"* GenerateContentRequest.{where}.parts[{index}]: must be an object"
        kinds = [key for key in part if key in _PART_KINDS]
        unknown = [key for key in part if key not in _PART_KINDS and key not in _PART_EXTRAS]
        if unknown:
            return f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at '{where}.parts[{index}]'"
        if len(kinds) != 1:
            return f"* GenerateContentRequest.{where}.parts[{index}]: oneof field 'data' must be set once"
        response = part.get("functionResponse", {"response": {}})
        if not isinstance(response, dict) or not isinstance(response.get("response"), dict):
            return f"* GenerateContentRequest.{where}.parts[{index}]: functionResponse.response not an object"
    return None


def _gemini_tools_problem(payload: dict[str, Any]) -> str | None:
    tools = payload.get("tools", [])
    names = set()
    for index, tool in enumerate(tools if isinstance(tools, list) else [None]):
        declarations = tool.get("functionDeclarations") if isinstance(tool, dict) else None
        if not isinstance(declarations, list):
            return f"* GenerateContentRequest.tools[{index}]: a tool must declare functions"
        for declaration in declarations:
            if not isinstance(declaration, dict) or not declaration.get("name"):
                return f"* GenerateContentRequest.tools[{index}].function_declarations: name is required"
            names.add(declaration["name"])
    config = payload.get("toolConfig")
    if config is None:
        return None
    calling = config.get("functionCallingConfig") if isinstance(config, dict) else None
    if not isinstance(calling, dict) or calling.get("mode") not in ("AUTO", "ANY", "NONE", "VALIDATED"):
        return "* GenerateContentRequest.tool_config.function_calling_config.mode: invalid mode"
    allowed = calling.get("allowedFunctionNames", [])
    if allowed and (calling["mode"] != "ANY" or not set(allowed) <= names):
        return "* GenerateContentRequest.tool_config: allowed_function_names must name declared functions"
    return None


def _gemini_parts(behaviour: ProviderBehaviour) -> list[dict[str, Any]]:
    text = behaviour.tool_preamble if behaviour.tool_call else behaviour.text
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    if behaviour.tool_call:
        parts.append(
            {
                "functionCall": {"name": behaviour.tool_name, "args": behaviour.tool_arguments},
                "thoughtSignature": "c2lnbmF0dXJl",
            }
        )
    return parts


def _gemini_response(
    model: str, behaviour: ProviderBehaviour, *, final: bool, parts: list[dict[str, Any]]
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    out: dict[str, Any] = {"candidates": [candidate]}
    if final:
        candidate["finishReason"] = behaviour.stop or "STOP"
        prompt, completion = behaviour.prompt_tokens, behaviour.completion_tokens
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": completion,
            "totalTokenCount": prompt + completion,
        }
        if behaviour.cache_read_tokens:
            usage["cachedContentTokenCount"] = behaviour.cache_read_tokens
        out["usageMetadata"] = usage
    out["modelVersion"] = model
    out["responseId"] = "mockResponse01"
    return out


def _gemini_chunks(model: str, behaviour: ProviderBehaviour) -> list[dict[str, Any]]:
    pieces = [[{"text": piece}] for piece in behaviour.pieces()]
    if behaviour.tool_call:
        pieces.append(_gemini_parts(behaviour)[-1:])
    pieces = pieces or [[{"text": ""}]]
    last = len(pieces) - 1
    return [_gemini_response(model, behaviour, final=n == last, parts=p) for n, p in enumerate(pieces)]


def _gemini_stream(chunks: list[dict[str, Any]], behaviour: ProviderBehaviour) -> _Reply:
    events = [b"data: " + orjson.dumps(chunk) + b"\r\n\r\n" for chunk in chunks]
    position = min(1, len(events))
    if behaviour.fail == "malformed_event":
        events.insert(position, b'data: {"candidates": [{"content": {"parts": [{"te\r\n\r\n')
    elif behaviour.fail == "error_event":
        error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
        events[position:] = [b"data: " + orjson.dumps(error) + b"\r\n\r\n"]
    cut = len(events) // 2 if behaviour.fail == "drop_mid_stream" else None
    return _Reply(200, events=tuple(events), content_type=b"text/event-stream", cut_after=cut)


# ------------------------------------------------------------------------------------------------ Azure


_AZURE_DENIED: Final = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource."
)
_FILTERS: Final = {
    category: {"filtered": False, "severity": "safe"}
    for category in ("hate", "self_harm", "sexual", "violence")
}
_PROMPT_FILTERS: Final = [{"prompt_index": 0, "content_filter_results": _FILTERS}]


def _azure_error(status: int, message: str, retry_after: str | None = None) -> _Reply:
    return _Reply(
        status,
        orjson.dumps({"error": {"code": str(status), "message": message}}),
        headers=_retry_headers(retry_after),
    )


def _azure_usage(behaviour: ProviderBehaviour) -> dict[str, Any]:
    prompt, completion = behaviour.prompt_tokens, behaviour.completion_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": behaviour.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _azure_finish(behaviour: ProviderBehaviour) -> str:
    return behaviour.stop or ("tool_calls" if behaviour.tool_call else "stop")


def _azure_envelope(kind: str, choices: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-azuremock",
        "object": kind,
        "created": _CREATED,
        "model": AZURE_MODEL,
        "system_fingerprint": "fp_azuremock",
        "choices": choices,
        **extra,
    }


def _azure_call(behaviour: ProviderBehaviour, arguments: str) -> dict[str, Any]:
    function = {"name": behaviour.tool_name, "arguments": arguments}
    return {"id": "call_mock01", "type": "function", "function": function}


def _azure_completion(behaviour: ProviderBehaviour) -> dict[str, Any]:
    content = None if behaviour.tool_call else behaviour.text
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if behaviour.tool_call:
        message["tool_calls"] = [_azure_call(behaviour, behaviour.arguments_json)]
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": _azure_finish(behaviour),
        "content_filter_results": _FILTERS,
    }
    return _azure_envelope(
        "chat.completion", [choice], usage=_azure_usage(behaviour), prompt_filter_results=_PROMPT_FILTERS
    )


def _azure_stream(behaviour: ProviderBehaviour, with_usage: bool) -> _Reply:
    extra = {"usage": None} if with_usage else {}

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish,
            "content_filter_results": {} if finish else _FILTERS,
        }
        return _sse(_azure_envelope("chat.completion.chunk", [choice], **extra))

    first = {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [],
        "prompt_filter_results": _PROMPT_FILTERS,
    }
    events = [_sse(first)]
    if behaviour.tool_call:
        header = {**_azure_call(behaviour, ""), "index": 0}
        events.append(event({"role": "assistant", "content": None, "tool_calls": [header]}))
        for fragment in split_text(behaviour.arguments_json, 3):
            events.append(event({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}))
    else:
        events.append(event({"role": "assistant", "content": "", "refusal": None}))
        events.extend(event({"content": piece}) for piece in behaviour.pieces())
    events.append(event({}, _azure_finish(behaviour)))
    if with_usage:
        events.append(_sse(_azure_envelope("chat.completion.chunk", [], usage=_azure_usage(behaviour))))
    events.append(b"data: [DONE]\n\n")
    if behaviour.fail == "malformed_event":
        events.insert(2, b'data: {"choices": [{"delta": {"conte\n\n')
    cut = len(events) // 2 if behaviour.fail == "drop_mid_stream" else None
    return _Reply(200, events=tuple(events), content_type=_SSE, cut_after=cut)


def _sse(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


# ------------------------------------------------------------------------------------------- entry points


@asynccontextmanager
async def _open(kind: ProviderKind, behaviour: ProviderBehaviour | None) -> AsyncIterator[MockProvider]:
    mock = MockProvider(kind, behaviour if behaviour is not None else ProviderBehaviour())
    async with trio.open_nursery() as nursery:
        await nursery.start(mock.serve)
        yield mock
        nursery.cancel_scope.cancel()


def open_mock_anthropic(
    behaviour: ProviderBehaviour | None = None,
) -> AbstractAsyncContextManager[MockProvider]:
    """Serve a mock Anthropic Messages API for the block; yields the :class:`MockProvider`."""
    return _open("anthropic", behaviour)


def open_mock_gemini(
    behaviour: ProviderBehaviour | None = None, *, vertex: bool = False
) -> AbstractAsyncContextManager[MockProvider]:
    """Serve a mock Gemini API (with ``vertex``: Vertex AI) for the block; yields its ``MockProvider``."""
    return _open("vertex" if vertex else "gemini", behaviour)


def open_mock_azure(
    behaviour: ProviderBehaviour | None = None,
) -> AbstractAsyncContextManager[MockProvider]:
    """Serve a mock Azure OpenAI resource for the block; yields the :class:`MockProvider`."""
    return _open("azure", behaviour)
