"""The proxied OpenAI-compatible endpoints and what the proxy needs to know about each."""

from __future__ import annotations

from typing import Literal

import attrs


@attrs.frozen
class Endpoint:
    """One proxied route.

    ``upstream_path`` is appended to the upstream's ``base_url`` (which includes ``/v1``). ``multipart``
    endpoints take ``multipart/form-data`` with a ``model`` field; the others a JSON object. ``usage_option``
    endpoints accept ``stream_options.include_usage``, which the proxy injects into streamed requests so usage
    is always captured. ``terminal`` is how a stream of this endpoint ends: ``data: [DONE]``, or the Responses
    API's typed terminal events.
    """

    upstream_path: str
    multipart: bool = False
    usage_option: bool = False
    terminal: Literal["done", "responses"] = "done"
    dialect: Literal["openai", "anthropic"] = "openai"  # the API the client speaks (and gets errors in)
    count_tokens: bool = False  # Anthropic's count_tokens: passed through, or estimated (proxy/tokencount.py)


ENDPOINTS: dict[str, Endpoint] = {
    "/v1/chat/completions": Endpoint("chat/completions", usage_option=True),
    "/v1/completions": Endpoint("completions", usage_option=True),
    "/v1/embeddings": Endpoint("embeddings"),
    "/v1/responses": Endpoint("responses", terminal="responses"),
    "/v1/moderations": Endpoint("moderations"),
    "/v1/rerank": Endpoint("rerank"),
    "/v1/images/generations": Endpoint("images/generations"),
    "/v1/images/edits": Endpoint("images/edits", multipart=True),
    "/v1/images/variations": Endpoint("images/variations", multipart=True),
    "/v1/audio/speech": Endpoint("audio/speech"),
    "/v1/audio/transcriptions": Endpoint("audio/transcriptions", multipart=True),
    "/v1/audio/translations": Endpoint("audio/translations", multipart=True),
    "/v1/messages": Endpoint("chat/completions", usage_option=True, dialect="anthropic"),
    "/v1/messages/count_tokens": Endpoint("messages/count_tokens", dialect="anthropic", count_tokens=True),
}
