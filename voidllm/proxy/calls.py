"""The upstream request (URL, headers, body) an upstream's provider adapter builds.

Which provider has which adapter is :mod:`voidllm.providers.registry`'s. OpenAI-shaped providers (no adapter,
and azure with its own URL and ``api-key`` header) get the client's body (model rewritten, stream usage
injected where needed) and their answers are relayed as they are. Translated providers (anthropic, gemini,
vertex) get a body in their own API, and their answers and streams are translated back to the OpenAI shape
by their adapter.
"""

from __future__ import annotations

from typing import Any

from voidllm.providers.base import Target, TranslationError
from voidllm.providers.registry import PROVIDERS, credential_headers
from voidllm.proxy.endpoints import Endpoint
from voidllm.proxy.headers import Headers, upstream_request_headers
from voidllm.proxy.jsonbody import JsonRequest
from voidllm.routing.registry import Upstream


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
    provider = PROVIDERS[upstream.provider]
    adapter = provider.adapter
    if adapter is None:
        headers = upstream_request_headers(client_headers, request_id=request_id, api_key=upstream.api_key)
        return upstream.url(endpoint.upstream_path), headers, body
    if request is None:
        if provider.multipart_url is None:
            raise TranslationError(f"multipart requests are not supported by the {provider.name} provider")
        headers = upstream_request_headers(client_headers, request_id=request_id, api_key="")
        credentials = credential_headers(provider.name, upstream.api_key)  # none without a key
        headers += [(k.encode(), v.encode()) for k, v in credentials.items()]
        return provider.multipart_url(endpoint.upstream_path, target_of(upstream, model_name)), headers, body
    payload = request.upstream_payload(canonical_model=model_name, inject_usage=endpoint.usage_option)
    call = adapter.build_call(
        endpoint.upstream_path, payload, target_of(upstream, model_name), stream=request.stream
    )
    headers = upstream_request_headers(
        [(k, v) for k, v in client_headers if k.lower() != b"content-type"], request_id=request_id, api_key=""
    )
    own = {name for name, _ in call.headers}
    return call.url, [h for h in headers if h[0] not in own] + call.headers, call.body
