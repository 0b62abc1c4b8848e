"""JSON-RPC 2.0 messages as MCP uses them: parsing, serialising, error codes.

Both sides of the gateway use this module: the server transport (:mod:`voidllm.mcp.gateway.server`) parses
what clients send, and the upstream client parses what MCP servers answer. It knows nothing about HTTP.

A message is one of four kinds (:class:`Request`, :class:`Notification`, :class:`Response`,
:class:`ErrorResponse`); :func:`parse_message` classifies a decoded JSON value and raises
:class:`JsonRpcError` (``INVALID_REQUEST``) for anything else. :func:`parse_body` decodes bytes first
(``PARSE_ERROR`` for invalid JSON) and returns a list when the body is a batch array, so the caller decides
whether batches are allowed (2025-03-26 only).

Error messages never contain request content: they name the problem, not the offending value.
"""

from __future__ import annotations

from typing import Any, TypeAlias, TypeGuard

import attrs
import orjson

__all__ = [
    "HEADER_MISMATCH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "ErrorResponse",
    "JsonRpcError",
    "Message",
    "Notification",
    "Request",
    "RequestId",
    "Response",
    "dumps",
    "error_object",
    "parse_body",
    "parse_message",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# MCP 2026-07-28: request headers (Mcp-Method, Mcp-Name, ...) disagree with the body.
HEADER_MISMATCH = -32020
# MCP 2026-07-28: UnsupportedProtocolVersionError; ``data.supported`` lists the versions.
UNSUPPORTED_PROTOCOL_VERSION = -32022

RequestId: TypeAlias = "str | int"


class JsonRpcError(Exception):
    """A JSON-RPC error: raise it from a handler to answer with an error object.

    ``message`` must not contain request content or secrets. ``data`` is optional structured detail.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_object(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out

    def __repr__(self) -> str:
        return f"JsonRpcError({self.code}, {self.message!r})"


@attrs.frozen
class Request:
    id: RequestId
    method: str
    params: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"jsonrpc": "2.0", "id": self.id, "method": self.method}
        if self.params is not None:
            out["params"] = self.params
        return out


@attrs.frozen
class Notification:
    method: str
    params: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"jsonrpc": "2.0", "method": self.method}
        if self.params is not None:
            out["params"] = self.params
        return out


@attrs.frozen
class Response:
    id: RequestId
    result: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": self.id, "result": self.result}


@attrs.frozen
class ErrorResponse:
    id: RequestId | None
    error: JsonRpcError = attrs.field(eq=False)

    def to_json(self) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": self.id, "error": self.error.to_object()}


Message: TypeAlias = "Request | Notification | Response | ErrorResponse"


def error_object(error: JsonRpcError, id: RequestId | None = None) -> dict[str, Any]:
    """The whole error message ``{"jsonrpc":"2.0","id":…,"error":{…}}``."""
    return ErrorResponse(id, error).to_json()


def dumps(message: Message | dict[str, Any] | list[Any]) -> bytes:
    """Serialise a message (or an already built JSON value) to compact UTF-8 JSON."""
    if isinstance(message, (Request, Notification, Response, ErrorResponse)):
        message = message.to_json()
    return orjson.dumps(message)


def parse_body(body: bytes) -> Message | list[Message | JsonRpcError]:
    """Decode one HTTP body: a single message, or a list for a batch array.

    Raises ``PARSE_ERROR`` for an empty body or invalid JSON, ``INVALID_REQUEST`` for an empty batch or a
    single value that is not a message. In a batch, an invalid element becomes a :class:`JsonRpcError`
    in the list (JSON-RPC answers it individually) instead of failing the whole batch.
    """
    if not body.strip():
        raise JsonRpcError(PARSE_ERROR, "empty request body")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise JsonRpcError(PARSE_ERROR, "parse error") from None
    if isinstance(value, list):
        if not value:
            raise JsonRpcError(INVALID_REQUEST, "empty batch")
        out: list[Message | JsonRpcError] = []
        for item in value:
            try:
                out.append(parse_message(item))
            except JsonRpcError as exc:
                out.append(exc)
        return out
    return parse_message(value)


def _valid_id(value: Any) -> TypeGuard[str | int]:
    # JSON-RPC allows string or number ids; MCP forbids null; bool is an int in Python but not in JSON.
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def parse_message(value: Any) -> Message:
    """Classify one decoded JSON value as a JSON-RPC 2.0 message (``INVALID_REQUEST`` otherwise)."""
    if not isinstance(value, dict) or value.get("jsonrpc") != "2.0":
        raise JsonRpcError(INVALID_REQUEST, "invalid request: not a JSON-RPC 2.0 message")
    if "method" in value:
        method = value["method"]
        if not isinstance(method, str) or not method:
            raise JsonRpcError(INVALID_REQUEST, "invalid request: method must be a non-empty string")
        params = value.get("params")
        if params is not None and not isinstance(params, dict):
            raise JsonRpcError(INVALID_REQUEST, "invalid request: params must be an object")
        if "id" not in value:
            return Notification(method, params)
        if not _valid_id(value["id"]):
            raise JsonRpcError(INVALID_REQUEST, "invalid request: id must be a string or an integer")
        return Request(value["id"], method, params)
    msg_id = value.get("id")
    if "result" in value:
        result = value["result"]
        if not _valid_id(msg_id) or not isinstance(result, dict):
            raise JsonRpcError(INVALID_REQUEST, "invalid response")
        return Response(msg_id, result)
    if "error" in value:
        err = value["error"]
        if (
            not isinstance(err, dict)
            or not isinstance(err.get("code"), int)
            or isinstance(err.get("code"), bool)
        ):
            raise JsonRpcError(INVALID_REQUEST, "invalid error response")
        if msg_id is not None and not _valid_id(msg_id):
            raise JsonRpcError(INVALID_REQUEST, "invalid error response")
        message = err.get("message")
        return ErrorResponse(
            msg_id, JsonRpcError(err["code"], message if isinstance(message, str) else "", err.get("data"))
        )
    raise JsonRpcError(INVALID_REQUEST, "invalid request: neither a request, a notification nor a response")
