"""Adapter for Google Gemini (``generativelanguage``) and Vertex AI: OpenAI chat <-> ``generateContent``.

Only ``chat/completions`` is translated; any other endpoint is a 400 that names it (embeddings would need
``embedContent``/``:predict``, which are not mapped). The request path is otherwise ignored.

URL and credentials. Gemini: ``<base>/v1beta/models/<model>:generateContent`` with ``x-goog-api-key``. Vertex:
``<base>/v1/projects/<gcp_project>/locations/<gcp_location>/publishers/google/models/<model>:generateContent``
with ``Authorization: Bearer <key>`` (an access token; refreshing it is not the adapter's job). Streams use
``:streamGenerateContent?alt=sse``. ``<model>`` is the target's model (else the body's), ``models/`` removed,
percent-encoded.

Request (``_request``; message parts in ``_content``, tools in ``_tools``):

- ``system``/``developer`` messages -> ``systemInstruction.parts`` (all of them, wherever they stand);
- ``user`` -> role ``user``: text; ``image_url`` with a ``data:`` URL -> ``inlineData``, with an
  ``http(s):``/``gs:`` URL -> ``fileData`` whose ``mimeType`` comes from the file extension (400 when it has
  none we know); ``input_audio`` (wav, mp3) -> ``inlineData``; ``file`` with ``file_data`` -> ``inlineData``;
- ``assistant`` -> role ``model``: text (and refusal) parts, ``tool_calls`` -> ``functionCall`` parts (ids
  required, arguments must be a JSON object). Each carries Google's documented placeholder
  ``thoughtSignature`` (:data:`THOUGHT_SIGNATURE_SENTINEL`): Gemini 3 refuses replayed function calls
  without a signature, and the real one cannot survive the OpenAI format (a stateless, content-free gateway
  cannot keep it either). The cost is that the model does not get its earlier reasoning back;
- ``tool`` -> a ``functionResponse`` part named after the function of the earlier assistant tool call with the
  same id (the latest one, since ``call_g<n>`` ids repeat across turns; unknown id -> 400); the result is
  passed as Gemini's ``response`` object: a JSON object as is, anything else as ``{"output": ...}``;
- adjacent turns of the same role are merged (parallel tool results form one turn), empty texts dropped;
- ``tools`` -> one ``functionDeclarations`` group; ``parameters`` cleaned by ``_schema`` (drops ``$schema``,
  ``$id``, ``$comment``, ``additionalProperties``) and left out when the schema declares no property;
- ``tool_choice``: auto -> AUTO, none -> NONE, required -> ANY, a named function -> ANY with
  ``allowedFunctionNames``; ``allowed_tools`` required -> ANY with the names, auto -> AUTO over only those
  declarations;
- ``generationConfig``: temperature, top_p (topP), top_k (topK), presence/frequency_penalty, seed, n
  (candidateCount), max_completion_tokens or max_tokens (maxOutputTokens), stop (stopSequences),
  response_format json_object -> ``responseMimeType: application/json``, json_schema -> that plus
  ``responseSchema`` (cleaned).

Refused with a 400 that says why: legacy ``functions``/``function_call``, ``logprobs``/``top_logprobs``,
``logit_bias``, audio output (``audio``, ``modalities`` other than text), ``web_search_options``, non-function
tools, ``file_id`` file parts. Every other field is ignored, notably ``user``, ``store``, ``metadata``,
``service_tier``, ``parallel_tool_calls``, ``reasoning_effort``, ``prediction``, ``stream``/``stream_options``
(the URL decides) and message ``name`` fields. Deliberately not mapped: thinking configuration, safety
settings, context caching, grounding and code-execution tools, embeddings.

Response (``_response``): candidates -> choices by ``index``; visible text parts concatenated (thought
summaries, inline data and code-execution parts dropped); ``functionCall`` parts -> ``tool_calls`` with ids
``call_g<n>`` numbered across the response and JSON-string arguments; ``finishReason`` STOP -> stop (or
tool_calls when the candidate called functions), MAX_TOKENS -> length, SAFETY, RECITATION, BLOCKLIST,
PROHIBITED_CONTENT, SPII, IMAGE_SAFETY -> content_filter, anything else -> stop; a prompt blocked before any
candidate -> one empty choice with content_filter. id = ``chatcmpl-<responseId>``, model = the requested name.
Usage from ``usageMetadata``: prompt = promptTokenCount + toolUsePromptTokenCount, completion =
candidatesTokenCount + thoughtsTokenCount (thinking is billed as output; also reported as
``completion_tokens_details.reasoning_tokens``), total = totalTokenCount. A Gemini ``error`` body becomes
OpenAI's error shape. Stream: see ``_stream``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs
import orjson

from voidllm.providers.base import Target, TranslationError, UpstreamCall, Usage
from voidllm.providers.gemini._request import THOUGHT_SIGNATURE_SENTINEL, build_request
from voidllm.providers.gemini._response import FINISH_REASONS, translate_response
from voidllm.providers.gemini._schema import clean_schema
from voidllm.providers.gemini._stream import GeminiStreamTranslator
from voidllm.providers.passthrough import JSON_CONTENT_TYPE

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "FINISH_REASONS",
    "THOUGHT_SIGNATURE_SENTINEL",
    "GeminiAdapter",
    "GeminiStreamTranslator",
    "build_request",
    "clean_schema",
]

_CHAT = "chat/completions"


@attrs.frozen
class GeminiAdapter:
    """The Gemini (``vertex=False``) or Vertex AI (``vertex=True``) adapter; see the package docstring.

    ``clock`` gives the ``created`` timestamp of translated answers (and their id when Gemini sends no
    ``responseId``); tests pass a fixed one.
    """

    vertex: bool = False
    clock: Callable[[], float] = attrs.field(default=time.time, repr=False)

    @property
    def provider(self) -> str:
        return "vertex" if self.vertex else "gemini"

    def build_call(
        self, path: str, payload: Mapping[str, Any], target: Target, *, stream: bool
    ) -> UpstreamCall:
        """The ``generateContent`` (or streaming) call for an OpenAI chat request.

        Raises:
            TranslationError: ``path`` is not chat/completions, or Gemini cannot express the request.
            ValueError: Vertex without ``gcp_project``/``gcp_location`` (config validation requires them).
        """
        if path.strip("/") != _CHAT:
            raise TranslationError(
                f"the {self.provider} adapter serves only /v1/{_CHAT}, not /v1/{path.strip('/')}"
            )
        body = build_request(payload)
        url = self._url(target, _model(payload, target), stream=stream)
        return UpstreamCall(url, self._headers(target), orjson.dumps(body))

    def translate_response(self, body: bytes, *, model: str) -> tuple[bytes, Usage | None]:
        """A ``generateContent`` answer as an OpenAI ``chat.completion`` (an error body as OpenAI's error).

        Raises:
            BadGatewayError: the body is neither a GenerateContentResponse nor an error object.
        """
        now = self.clock()
        return translate_response(body, model=model, created=int(now), fallback_id=_fallback_id(now))

    def stream_translator(self, *, model: str, include_usage: bool = False) -> GeminiStreamTranslator:
        """A translator for one ``streamGenerateContent?alt=sse`` stream; ``include_usage`` adds OpenAI's
        final usage chunk before ``[DONE]`` (set it when the client asked for
        ``stream_options.include_usage``)."""
        now = self.clock()
        return GeminiStreamTranslator(model, int(now), _fallback_id(now), include_usage)

    def _url(self, target: Target, model: str, *, stream: bool) -> str:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        base = target.base_url.rstrip("/")
        if not self.vertex:
            return f"{base}/v1beta/models/{model}:{method}"
        if not target.gcp_project or not target.gcp_location:
            raise ValueError("gcp_project and gcp_location are required for provider 'vertex'")
        project, location = quote(target.gcp_project, safe=""), quote(target.gcp_location, safe="")
        return f"{base}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}"

    def _headers(self, target: Target) -> list[tuple[bytes, bytes]]:
        if not target.api_key:
            return [JSON_CONTENT_TYPE]
        if self.vertex:
            return [JSON_CONTENT_TYPE, (b"authorization", b"Bearer " + target.api_key.encode())]
        return [JSON_CONTENT_TYPE, (b"x-goog-api-key", target.api_key.encode())]


def _model(payload: Mapping[str, Any], target: Target) -> str:
    model = target.model or payload.get("model")
    if not isinstance(model, str) or not model:
        raise TranslationError("model must be a non-empty string")
    return quote(model.removeprefix("models/"), safe="")


def _fallback_id(now: float) -> str:
    return f"chatcmpl-{int(now * 1_000_000_000)}"
