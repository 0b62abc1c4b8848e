"""How each provider takes an upstream's API key: the headers of a request that carries it.

One function for every request the gateway makes on its own (the upstream health probes of
:mod:`voidllm.routing.health` and the connection test of :mod:`voidllm.admin.probes`), matching what the
adapters send on proxied requests:

========================================  ============================================================
provider                                  headers
========================================  ============================================================
``anthropic``                             ``x-api-key: <key>`` and ``anthropic-version: 2023-06-01``
``azure``                                 ``api-key: <key>`` (never ``Authorization``)
``gemini``                                ``x-goog-api-key: <key>``
``vertex`` (an OAuth access token)        ``Authorization: Bearer <key>``
``openai``, ``vllm``, ``ollama``,         ``Authorization: Bearer <key>``
``custom``, ``mock``
========================================  ============================================================

Without a key there is no credential header at all (a local ``ollama`` or ``vllm`` needs none).
"""

from __future__ import annotations

from voidllm.providers.anthropic import ANTHROPIC_VERSION

__all__ = ["CREDENTIAL_HEADERS", "credential_headers"]

CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-api-key", "anthropic-version", "api-key", "x-goog-api-key"}
)
"""Every header name :func:`credential_headers` may return, lowercase."""


def credential_headers(provider: str, api_key: str) -> dict[str, str]:
    """The headers that carry ``api_key`` to an upstream of ``provider`` (see the module docstring)."""
    if not api_key:
        return {}
    if provider == "anthropic":
        return {"x-api-key": api_key, "anthropic-version": ANTHROPIC_VERSION}
    if provider == "azure":
        return {"api-key": api_key}
    if provider == "gemini":
        return {"x-goog-api-key": api_key}
    return {"Authorization": f"Bearer {api_key}"}
