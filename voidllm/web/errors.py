"""One table from exception class to HTTP status and error envelope, registered on the app.

Anything else a route raises is answered 500 ``internal_error`` and logged in one line without its message
(:func:`voidllm.web.edge.log_unhandled`). What escapes even that (an error handler that fails) is not logged
by Quart with its traceback: ``PROPAGATE_EXCEPTIONS`` hands it to the edge's last-resort handler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from voidllm.asgi import SCOPE_KEY, error_body
from voidllm.errors import GatewayError
from voidllm.web.edge import log_unhandled

if TYPE_CHECKING:
    from collections.abc import Mapping

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    410: "gone",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: tuple[tuple[str, str], ...] = (),
    extra: Mapping[str, Any] | None = None,
    *,
    param: str | None = None,
) -> Response:
    """An error envelope response for the current request (``param``: the request field it is about;
    ``extra``: more fields of the error object)."""
    request_id = request.scope.get(SCOPE_KEY)
    body = error_body(
        status, code, message, request_id if isinstance(request_id, str) else None, extra, param=param
    )
    response = Response(body, status=status, content_type="application/json")
    for name, value in headers:
        response.headers[name] = value
    return response


async def _gateway_error(exc: GatewayError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.headers, exc.extra, param=exc.param)


async def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status == 404 and request.path.startswith("/v1/"):
        return error_response(400, "bad_request", "unsupported API endpoint")
    message = (exc.description or exc.name or "error").rstrip(".")
    headers: tuple[tuple[str, str], ...] = ()
    valid = getattr(exc, "valid_methods", None)
    if status == 405 and valid:  # say which methods the route takes (RFC 9110: Allow is required)
        allowed = ", ".join(sorted(set(valid) - {"HEAD", "OPTIONS"}))
        headers, message = (("allow", allowed),), f"this endpoint takes {allowed}"
    return error_response(status, _HTTP_CODES.get(status, "error"), message, headers)


async def _unexpected(exc: Exception) -> Response:
    log_unhandled(exc, request.scope)
    return error_response(500, "internal_error", "internal server error")


def register_error_handlers(app: Quart) -> None:
    """Map every error to the envelope: ours by class, HTTP ones by status, anything else to a bare 500."""
    app.config["PROPAGATE_EXCEPTIONS"] = True  # to the edge, see the module docstring
    app.register_error_handler(GatewayError, _gateway_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
