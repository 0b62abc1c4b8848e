"""The bottom of the ASGI stack, shared by the edge, the proxy and the MCP server: the JSON error envelope of
every non-MCP API, the request id every response carries, and header lookup in a scope.

``{"error": {"code": "<machine_code>", "message": "<human text>", "request_id": "<uuid>"}}``
(docs/reference/behaviour.md 1.1). Messages come from our own error classes and never contain request or
response content.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import orjson
import uuid_utils

REQUEST_ID_HEADER = b"x-request-id"
SCOPE_KEY = "voidllm.request_id"


def error_body(
    code: str, message: str, request_id: str | None, extra: Mapping[str, Any] | None = None
) -> bytes:
    """Serialise the error envelope; ``extra`` adds fields to the error object (never code, message or id)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if request_id:
        error["request_id"] = request_id
    for name, value in (extra or {}).items():
        error.setdefault(name, value)
    return orjson.dumps({"error": error})


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The first value of header ``name`` (lowercase bytes; ASGI servers lowercase header names) in an ASGI
    scope, decoded as latin-1."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-Id`` when it is a UUID (normalised), otherwise a new UUIDv7."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            try:
                return str(uuid.UUID(value.decode("latin-1")))
            except ValueError:
                break
    return str(uuid_utils.uuid7())


async def send_error(
    send: Callable[[dict[str, Any]], Awaitable[None]],
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    """Send a complete error-envelope response over raw ASGI, with ``headers`` (e.g. ``Retry-After``) added."""
    body = error_body(code, message, request_id)
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers)
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
