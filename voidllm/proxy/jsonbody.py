"""Sniffing and minimal mutation of JSON request bodies (sans-IO).

The proxy parses a request body once, reads ``model`` and ``stream``, and re-serialises only when it must
change something: the ``model`` value when the client used an alias, and ``stream_options.include_usage``
when a streamed request did not ask for usage (so usage is always captured; the relay later removes what the
client did not ask for). Otherwise the client's bytes are forwarded unchanged. Error messages name the
problem, never the content.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from voidllm.errors import BadRequestError


@attrs.frozen
class JsonRequest:
    """A parsed request body: the fields the proxy routes on, and the parsed object."""

    model: str
    stream: bool
    client_wants_usage: bool
    payload: dict[str, Any] = attrs.field(repr=False)

    @classmethod
    def parse(cls, body: bytes) -> JsonRequest:
        """Parse a request body.

        Raises:
            BadRequestError: not a JSON object, or no non-empty string ``model``.
        """
        payload, model = parse_object_with_model(body)
        options = payload.get("stream_options")
        wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        return cls(
            model=model, stream=payload.get("stream") is True, client_wants_usage=wants_usage, payload=payload
        )

    def upstream_body(self, original: bytes, *, canonical_model: str, inject_usage: bool) -> bytes:
        """The body to send upstream: ``original`` unless the model or the usage option must change."""
        rewrite_model = canonical_model != self.model
        inject = inject_usage and self.stream and not self.client_wants_usage
        if not rewrite_model and not inject:
            return original
        return orjson.dumps(self.upstream_payload(canonical_model=canonical_model, inject_usage=inject_usage))

    def upstream_payload(self, *, canonical_model: str, inject_usage: bool) -> dict[str, Any]:
        """The request as a dict with the canonical model and, for streams that did not ask, usage
        injected."""
        payload = dict(self.payload)
        payload["model"] = canonical_model
        if inject_usage and self.stream and not self.client_wants_usage:
            options = payload.get("stream_options")
            payload["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        return payload


def parse_object_with_model(body: bytes) -> tuple[dict[str, Any], str]:
    """A JSON object body and its non-empty string ``model`` (every dialect routes on it).

    Raises:
        BadRequestError: not valid JSON, not an object, or no model; the message never quotes the body.
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequestError("request body must be valid JSON") from None
    if not isinstance(payload, dict):
        raise BadRequestError("request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequestError("model field is required", param="model")
    return payload, model
