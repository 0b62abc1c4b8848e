"""The ways an upstream takes its API key: one function per header scheme, and every header name they use.

Each scheme turns a non-empty key into the headers that carry it; which provider uses which scheme is
:mod:`voidllm.providers.registry`'s (``Provider.credentials``, applied by
:func:`voidllm.providers.registry.credential_headers`, which sends nothing without a key):

=====================  ===============================================================  ===================
scheme                 headers                                                          providers
=====================  ===============================================================  ===================
:func:`bearer`         ``Authorization: Bearer <key>``                                  OpenAI-shaped ones,
                                                                                        ``vertex`` (an
                                                                                        OAuth access token)
:func:`anthropic_key`  ``x-api-key: <key>`` and ``anthropic-version: 2023-06-01``       ``anthropic``
:func:`azure_key`      ``api-key: <key>`` (never ``Authorization``)                     ``azure``
:func:`google_key`     ``x-goog-api-key: <key>``                                        ``gemini``
=====================  ===============================================================  ===================
"""

from __future__ import annotations

from voidllm.providers.anthropic import ANTHROPIC_VERSION

__all__ = ["CREDENTIAL_HEADERS", "anthropic_key", "azure_key", "bearer", "google_key"]

CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-api-key", "anthropic-version", "api-key", "x-goog-api-key"}
)
"""Every header name a scheme may return, lowercase."""


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def anthropic_key(api_key: str) -> dict[str, str]:
    return {"x-api-key": api_key, "anthropic-version": ANTHROPIC_VERSION}


def azure_key(api_key: str) -> dict[str, str]:
    return {"api-key": api_key}


def google_key(api_key: str) -> dict[str, str]:
    return {"x-goog-api-key": api_key}
