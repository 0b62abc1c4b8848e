"""Which adapter serves an upstream, and the upstream request it builds (URL, headers, body).

OpenAI-shaped providers (openai, vllm, ollama, custom, and azure with its own URL and ``api-key`` header)
get the client's body (model rewritten, stream usage injected where needed) and their answers are relayed
as they are. Translated providers (anthropic, gemini, vertex) get a body in their own API, and their answers
and streams are translated back to the OpenAI shape by their adapter.
"""

from __future__ import annotations

from typing import Any

from voidllm.providers.anthropic import AnthropicAdapter
from voidllm.providers.azure import AzureAdapter
from voidllm.providers.base import Adapter, Target, TranslationError
from voidllm.providers.gemini import GeminiAdapter
from voidllm.proxy.endpoints import Endpoint
from voidllm.proxy.headers import Headers, upstream_request_headers
from voidllm.proxy.jsonbody import JsonRequest
from voidllm.routing.registry import Upstream

PASSTHROUGH = frozenset({"openai", "vllm", "ollama", "custom", "mock"})
TRANSLATED: dict[str, Adapter] = {
    "anthropic": AnthropicAdapter(),
    "gemini": GeminiAdapter(),
    "vertex": GeminiAdapter(vertex=True),
}
AZURE = AzureAdapter()


def is_translated(provider: str) -> bool:
    """Whether answers from ``provider`` must be translated back to the OpenAI shape."""
    return provider in TRANSLATED


def target_of(upstream: Upstream, model_name: str) -> Target:
    return Target(
        base_url=upstream.base_url,
        api_key=upstream.api_key,
        model=model_name,
        azure_deployment=upstream.azure_deployment,
        azure_api_version=upstream.azure_api_version,
        gcp_project=upstream.gcp_project,
        gcp_location=upstream.gcp_location,
    )


def build_call(
    upstream: Upstream,
    *,
    model_name: str,
    endpoint: Endpoint,
    request: JsonRequest | None,
    body: Any,
    client_headers: Headers,
    request_id: str,
) -> tuple[str, Headers, Any]:
    """``(url, headers, body)`` of the upstream request.

    ``body`` is what an OpenAI-shaped upstream gets (already rewritten); ``request`` is the parsed JSON body
    adapters translate (``None`` for multipart bodies, which only OpenAI-shaped providers accept).

    Raises:
        TranslationError: the provider cannot express the request (a 400 that says why).
    """
    provider = upstream.provider
    if provider in PASSTHROUGH:
        headers = upstream_request_headers(client_headers, request_id=request_id, api_key=upstream.api_key)
        return upstream.url(endpoint.upstream_path), headers, body
    if request is None:
        if provider == "azure":
            headers = upstream_request_headers(client_headers, request_id=request_id, api_key="")
            headers.append((b"api-key", upstream.api_key.encode()))
            return AZURE.url(endpoint.upstream_path, target_of(upstream, model_name)), headers, body
        raise TranslationError(f"multipart requests are not supported by the {provider} provider")
    payload = request.upstream_payload(canonical_model=model_name, inject_usage=endpoint.usage_option)
    adapter = AZURE if provider == "azure" else TRANSLATED[provider]
    call = adapter.build_call(
        endpoint.upstream_path, payload, target_of(upstream, model_name), stream=request.stream
    )
    headers = upstream_request_headers(
        [(k, v) for k, v in client_headers if k.lower() != b"content-type"], request_id=request_id, api_key=""
    )
    own = {name for name, _ in call.headers}
    return call.url, [h for h in headers if h[0] not in own] + call.headers, call.body
