"""The one error tree of VoidLLM.

Every error the gateway raises on purpose derives from :class:`GatewayError`. Foreign errors (SQLAlchemy,
httpx, cattrs) are translated at their boundary with ``raise Ours(...) from exc``; the web layer maps each
class to an HTTP status and a machine code in one table (``voidllm.web.errors``).

::

    GatewayError
    ├── ClientRequestError            the client's mistake; 4xx
    │   ├── BadRequestError           400 bad_request
    │   ├── AuthenticationError       401 unauthorized
    │   ├── PermissionDeniedError     403 forbidden
    │   │   └── ContentBlockedError   403 content_blocked: the prompt guard found a kind set to block
    │   ├── NotFoundError             404 not_found
    │   ├── MethodNotAllowedError     405 method_not_allowed (with ``Allow``)
    │   ├── ConflictError             409 conflict
    │   ├── RequestTimeoutError       408 request_timeout: the body did not arrive in time
    │   ├── GoneError                 410 gone
    │   ├── RequestTooLargeError      413 request_too_large
    │   └── TooManyRequestsError      429 too_many_requests (rate_limit_exceeded, token_limit_exceeded)
    ├── ServiceUnavailableError       503 service_unavailable (draining, not ready)
    │   └── CircuitOpenError          503 circuit_open: every candidate's breaker refused
    ├── BadGatewayError               502 upstream_unavailable: no usable answer from any upstream
    │   └── UpstreamResponseTooLargeError  502 upstream_response_too_large
    ├── GatewayTimeoutError           504 upstream_timeout: the request's deadline passed before an answer
    ├── StoreError                    the database failed us
    │   ├── StoreUnavailableError     could not reach it at all (connection refused, locked, timed out)
    │   └── StoreIntegrityError       a constraint refused the write (voidllm.store.errors; 409 conflict)
    └── CryptoError                   a key or ciphertext is invalid (voidllm.crypto)

Messages never carry request or response content: they name what was wrong, not what was sent. An error
about one field of the request names it in ``param`` (``model``, ``messages``), as OpenAI's errors do.

Beside its ``code``, the envelope carries the error's ``type`` in OpenAI's vocabulary, chosen from the status
by :func:`error_type` (``invalid_request_error``, ``authentication_error``, ``permission_error``,
``not_found_error``, ``rate_limit_error``, ``server_error``), so clients written for OpenAI can act on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class GatewayError(Exception):
    """Base class of every error VoidLLM raises on purpose."""

    status = 500
    code = "internal_error"

    headers: tuple[tuple[str, str], ...] = ()
    """Extra response headers (``Retry-After``, ``X-RateLimit-*``), lowercase names."""

    param: str | None = None
    """The request field the error is about (OpenAI's ``param``), or None."""

    extra: Mapping[str, Any] = MappingProxyType({})
    """Extra fields of the envelope's error object besides code, message and request id (e.g. the
    ``organizations`` a sign-in may choose from); JSON values, never request content."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        extra: Mapping[str, Any] | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if param is not None:
            self.param = param
        if headers:
            self.headers = headers
        if extra:
            self.extra = extra


_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def error_type(status: int) -> str:
    """OpenAI's error ``type`` for an HTTP status: one per class of client error the SDKs tell apart,
    ``invalid_request_error`` for the other 4xx, ``server_error`` for 5xx."""
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "server_error"


class ClientRequestError(GatewayError):
    """The request cannot be served as sent; retrying it unchanged will fail again."""

    status = 400
    code = "bad_request"


class BadRequestError(ClientRequestError):
    status = 400
    code = "bad_request"


class AuthenticationError(ClientRequestError):
    status = 401
    code = "unauthorized"


class PermissionDeniedError(ClientRequestError):
    status = 403
    code = "forbidden"


class ContentBlockedError(PermissionDeniedError):
    """The prompt guard refused the request: it holds a finding kind whose mode is ``block``.

    The message names the kinds found (``email``, ``openai_key``), never what matched; ``kinds`` holds them.
    """

    code = "content_blocked"

    def __init__(self, kinds: tuple[str, ...]) -> None:
        super().__init__(f"the request was blocked by the prompt guard: it contains {', '.join(kinds)}")
        self.kinds = kinds


class NotFoundError(ClientRequestError):
    status = 404
    code = "not_found"


class MethodNotAllowedError(ClientRequestError):
    """A known path asked with a method it does not serve; build it with :meth:`allowing`."""

    status = 405
    code = "method_not_allowed"

    @classmethod
    def allowing(cls, *methods: str) -> MethodNotAllowedError:
        allowed = ", ".join(methods)
        return cls(f"this endpoint takes {allowed}", headers=(("allow", allowed),))


def model_not_found(name: str) -> NotFoundError:
    """404 ``model_not_found`` naming the model asked for (clipped, quoted: it is the client's own string)."""
    shown = name if len(name) <= 128 else name[:128] + "…"
    return NotFoundError(
        f"model {shown!r} not found: GET /v1/models lists the models this key may use", code="model_not_found"
    )


class ConflictError(ClientRequestError):
    status = 409
    code = "conflict"


class RequestTimeoutError(ClientRequestError):
    """The client did not send its request body within ``server.proxy.read_timeout``."""

    status = 408
    code = "request_timeout"


class GoneError(ClientRequestError):
    """The thing existed but is no longer usable (a redeemed or expired invite)."""

    status = 410
    code = "gone"


class RequestTooLargeError(ClientRequestError):
    status = 413
    code = "request_too_large"


class TooManyRequestsError(ClientRequestError):
    """A limit refused the request; ``headers`` say when to come back."""

    status = 429
    code = "too_many_requests"


class ServiceUnavailableError(GatewayError):
    status = 503
    code = "service_unavailable"


class CircuitOpenError(ServiceUnavailableError):
    """Every upstream of the model is refused by its circuit breaker."""

    code = "circuit_open"


class BadGatewayError(GatewayError):
    """No upstream gave a usable answer."""

    status = 502
    code = "upstream_unavailable"


class UpstreamResponseTooLargeError(BadGatewayError):
    status = 502
    code = "upstream_response_too_large"


class GatewayTimeoutError(GatewayError):
    """The request's deadline passed before the upstream answered."""

    status = 504
    code = "upstream_timeout"


class StoreError(GatewayError):
    """A database operation failed."""

    status = 500
    code = "internal_error"


class StoreUnavailableError(StoreError):
    """The database could not be reached or is locked; the operation may succeed later."""

    status = 503
    code = "store_unavailable"
