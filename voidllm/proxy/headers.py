"""Header policy between client, gateway and upstream (docs/reference/behaviour.md 1.3), as pure functions
over ASGI header lists.

Upstream gets only ``Content-Type``, ``Accept`` and ``Accept-Language`` from the client, our request id, our
``User-Agent``, and the upstream's own credentials; the client's ``Authorization`` never leaves the gateway
and ``Accept-Encoding`` is not forwarded (bodies stay uncompressed so they can be relayed and inspected for
usage). The client gets back only ``Content-Type``, ``X-RateLimit-*`` and ``Retry-After``/``retry-after-ms``
headers from the upstream (the last so that SDKs can honour a provider's back-off); hop-by-hop headers never
cross.
"""

from __future__ import annotations

from collections.abc import Iterable

from voidllm import __version__

Headers = list[tuple[bytes, bytes]]

_FROM_CLIENT = frozenset({b"content-type", b"accept", b"accept-language"})
_TO_CLIENT = frozenset({b"content-type", b"retry-after", b"retry-after-ms"})
_USER_AGENT = (b"user-agent", f"VoidLLM/{__version__}".encode())
SSE_HEADERS: Headers = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


def upstream_request_headers(
    client: Iterable[tuple[bytes, bytes]], *, request_id: str, api_key: str
) -> Headers:
    """Headers for the upstream request (the transport adds ``Host`` and the body's length or chunking)."""
    out: Headers = [(name, value) for name, value in client if name.lower() in _FROM_CLIENT]
    out.append((b"x-request-id", request_id.encode()))
    out.append(_USER_AGENT)
    if api_key:
        out.append((b"authorization", b"Bearer " + api_key.encode()))
    return out


def client_response_headers(upstream: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The upstream response headers the client may see."""
    out: Headers = []
    for name, value in upstream:
        lowered = name.lower()
        if lowered in _TO_CLIENT or lowered.startswith(b"x-ratelimit-"):
            out.append((lowered, value))
    return out


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of ``name`` (lowercase) in an ASGI header list."""
    for key, value in headers:
        if key == name:
            return value
    return None
