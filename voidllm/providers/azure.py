"""Adapter for Azure OpenAI: Azure's URL scheme and key header around unchanged OpenAI bodies and streams.

What is translated. Only the address and the credential:

- dated API versions (the default):
  ``<base_url>/openai/deployments/<azure_deployment>/<path>?api-version=<v>``, ``v`` being
  ``azure_api_version`` or ``2024-10-21`` (the GA version the reference uses);
- ``azure_api_version: v1``: Azure's version-less v1 API, ``<base_url>/openai/v1/<path>``. There the
  deployment is named by the body's ``model``, so ``model`` is set to ``azure_deployment``; nothing else
  changes. Use it for the Responses API, which the dated scheme does not serve under ``/deployments/``.

The key travels in ``api-key`` (never ``Authorization``; Entra ID bearer tokens are not supported). Bodies,
responses and streams have OpenAI's shapes and go through the passthrough adapter's functions, usage included.
The deployment name and version are percent-encoded into the URL. Azure's content-filter annotations
(``prompt_filter_results``, ``content_filter_results``, the first chunk with empty ``choices``) pass through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs
import orjson

from voidllm.providers.base import Target, UpstreamCall, Usage
from voidllm.providers.passthrough import (
    JSON_CONTENT_TYPE,
    IdentityStreamTranslator,
    join_url,
    response_usage,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DEFAULT_API_VERSION", "V1_API_VERSION", "AzureAdapter"]

DEFAULT_API_VERSION = "2024-10-21"
V1_API_VERSION = "v1"


@attrs.frozen
class AzureAdapter:
    """The Azure OpenAI adapter; see the module docstring."""

    def build_call(
        self, path: str, payload: Mapping[str, Any], target: Target, *, stream: bool
    ) -> UpstreamCall:
        """The deployment (or v1) URL, the ``api-key`` header, and the body (``model`` set to the deployment
        for v1).

        Raises:
            ValueError: ``azure_deployment`` is empty (configuration validation requires it).
        """
        if not target.azure_deployment:
            raise ValueError("azure_deployment is required for provider 'azure'")
        headers = [JSON_CONTENT_TYPE]
        if target.api_key:
            headers.append((b"api-key", target.api_key.encode()))
        if target.azure_api_version == V1_API_VERSION:
            url = join_url(f"{target.base_url.rstrip('/')}/openai/v1", path)
            body = {**payload, "model": target.azure_deployment}
        else:
            url = _deployment_url(target, path)
            body = dict(payload)
        return UpstreamCall(url, headers, orjson.dumps(body))

    def url(self, path: str, target: Target) -> str:
        """The URL of ``path`` on the target deployment (for bodies sent as they are, such as multipart)."""
        if target.azure_api_version == V1_API_VERSION:
            return join_url(f"{target.base_url.rstrip('/')}/openai/v1", path)
        return _deployment_url(target, path)

    def translate_response(self, body: bytes, *, model: str) -> tuple[bytes, Usage | None]:
        """The body unchanged, and the usage it reports."""
        return body, response_usage(body)

    def stream_translator(self, *, model: str, include_usage: bool = False) -> IdentityStreamTranslator:
        return IdentityStreamTranslator()


def _deployment_url(target: Target, path: str) -> str:
    deployment = quote(target.azure_deployment, safe="")
    version = quote(target.azure_api_version or DEFAULT_API_VERSION, safe="")
    base = f"{target.base_url.rstrip('/')}/openai/deployments/{deployment}"
    return f"{join_url(base, path)}?api-version={version}"
