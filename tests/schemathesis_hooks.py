"""Schemathesis hooks for ``tests/test_schemathesis.py``, loaded by ``st run`` through ``SCHEMATHESIS_HOOKS``.

- ``no_server_error`` (a check): no answer of 500 or more, except 502/503/504 from the operations whose job
  is to call an upstream server (:data:`UPSTREAM_CALLS`: test a model or an MCP server, refresh its tools):
  for them "the upstream failed or timed out" is the correct answer, and the fuzzer points them at servers
  that do not exist.
- ``error_envelope`` (a check): every answer of 400 or more is exactly the error envelope
  ``{"error": {"code", "message", "type", "request_id"}}``, and its ``request_id`` is the ``X-Request-Id``
  header.
- Unknown fields: the fuzzer's copy of the document closes every object schema (``additionalProperties:
  false``), so the negative phases also send bodies with fields the API does not know (which it may ignore
  or refuse with 400, never answer with a 5xx).
- Real identifiers: three requests in four get, for each path parameter named in the JSON object in
  ``VOIDLLM_FUZZ_IDS`` (``{"org_id": "...", ...}``), the id of a resource that exists, so the fuzzed bodies
  and queries reach the use cases instead of stopping at a 404. Which requests is decided by a hash of the
  generated values, so a run stays reproducible under its seed.
- Hostile values whatever the document declares: of the JSON object bodies, one in eight is sent with every
  integer field set to 2^63 (the driver's ``OverflowError`` of issue 12), another with every string field
  replaced by :data:`HOSTILE_TEXT` (non-ASCII, past every length bound), chosen by the same kind of hash.
"""

from __future__ import annotations

import json
import os
import zlib
from typing import Any

import schemathesis

IDS_ENV = "VOIDLLM_FUZZ_IDS"
_IDS: dict[str, str] = json.loads(os.environ.get(IDS_ENV) or "{}")
HOSTILE_INTEGER = 2**63
HOSTILE_TEXT = "é€😀\u202e" * 1100
UPSTREAM_CALLS = ("/test", "/test-connection", "/refresh-tools")
UPSTREAM_STATUSES = (502, 503, 504)


@schemathesis.check
def no_server_error(ctx: Any, response: Any, case: Any) -> None:
    """No 5xx, but for an upstream's failure reported by an operation that calls one."""
    status = response.status_code
    if status < 500:
        return
    if status in UPSTREAM_STATUSES and case.operation.path.endswith(UPSTREAM_CALLS):
        return
    raise AssertionError(f"server error {status}")


@schemathesis.check
def error_envelope(ctx: Any, response: Any, case: Any) -> None:
    """Every error answer is the envelope, with the response's request id."""
    if response.status_code < 400:
        return
    request_id = (response.headers.get("x-request-id") or [None])[0]
    try:
        document = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} without a JSON body") from None
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict) or set(document) != {"error"}:
        raise AssertionError(f"{response.status_code} without the error envelope")
    if not all(isinstance(error.get(name), str) for name in ("code", "message", "type")):
        raise AssertionError(f"{response.status_code}: the envelope lacks a code, a message or a type")
    if not request_id or error.get("request_id") != request_id:
        raise AssertionError(f"{response.status_code}: the envelope's request_id is not X-Request-Id")


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    for schema in raw_schema.get("components", {}).get("schemas", {}).values():
        _close(schema)


def _close(schema: Any) -> None:
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _close(value)
    elif isinstance(schema, list):
        for value in schema:
            _close(value)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    parameters = case.path_parameters
    if parameters and _bucket(parameters, 4) != 0:
        for name in parameters:
            if name in _IDS:
                parameters[name] = _IDS[name]
    if isinstance(case.body, dict) and case.body:
        bucket = _bucket(case.body, 8)
        if bucket == 1:
            case.body = {k: HOSTILE_INTEGER if type(v) is int else v for k, v in case.body.items()}
        elif bucket == 2:
            case.body = {k: HOSTILE_TEXT if isinstance(v, str) else v for k, v in case.body.items()}


def _bucket(values: dict[str, Any], buckets: int) -> int:
    """A stable hash of the generated values (``hash()`` of a str changes from one process to the next)."""
    return zlib.crc32(repr(sorted(values.items(), key=lambda item: str(item[0]))).encode()) % buckets
