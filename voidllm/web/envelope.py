"""The error envelope and request id, re-exported from :mod:`voidllm.asgi` (where they live now) for the
modules of ``voidllm/web`` that still import them from here; import them from :mod:`voidllm.asgi`."""

from voidllm.asgi import REQUEST_ID_HEADER, SCOPE_KEY, error_body, request_id_from, send_error

__all__ = ["REQUEST_ID_HEADER", "SCOPE_KEY", "error_body", "request_id_from", "send_error"]
