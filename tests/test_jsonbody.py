"""Request sniffing: one parse, and the body forwarded byte for byte unless it must change."""

from __future__ import annotations

import orjson
import pytest

from voidllm.errors import BadRequestError
from voidllm.proxy.jsonbody import JsonRequest


def test_unchanged_body_is_forwarded_as_the_same_bytes() -> None:
    raw = b'{"model": "gpt",   "messages": [{"role":"user","content":"hi"}], "temperature": 0.10}'
    request = JsonRequest.parse(raw)
    assert (request.model, request.stream, request.client_wants_usage) == ("gpt", False, False)
    assert request.upstream_body(raw, canonical_model="gpt", inject_usage=True) is raw


def test_alias_is_rewritten_to_the_canonical_name() -> None:
    raw = b'{"model":"fast","messages":[]}'
    out = JsonRequest.parse(raw).upstream_body(raw, canonical_model="gpt-4o", inject_usage=False)
    assert orjson.loads(out) == {"model": "gpt-4o", "messages": []}


def test_usage_is_injected_into_streams_keeping_other_options() -> None:
    raw = b'{"model":"gpt","stream":true,"stream_options":{"include_obfuscation":false}}'
    request = JsonRequest.parse(raw)
    assert request.stream
    assert not request.client_wants_usage
    out = orjson.loads(request.upstream_body(raw, canonical_model="gpt", inject_usage=True))
    assert out["stream_options"] == {"include_obfuscation": False, "include_usage": True}


def test_client_that_asked_for_usage_is_left_alone() -> None:
    raw = b'{"model":"gpt","stream":true,"stream_options":{"include_usage":true}}'
    request = JsonRequest.parse(raw)
    assert request.client_wants_usage
    assert request.upstream_body(raw, canonical_model="gpt", inject_usage=True) is raw


def test_non_streams_and_endpoints_without_the_option_get_no_injection() -> None:
    raw = b'{"model":"gpt","stream":false}'
    assert JsonRequest.parse(raw).upstream_body(raw, canonical_model="gpt", inject_usage=True) is raw
    streamed = b'{"model":"gpt","stream":true}'
    assert (
        JsonRequest.parse(streamed).upstream_body(streamed, canonical_model="gpt", inject_usage=False)
        is streamed
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "request body must be valid JSON"),
        (b"{not json", "request body must be valid JSON"),
        (b"[1,2]", "request body must be a JSON object"),
        (b"{}", "model field is required"),
        (b'{"model": ""}', "model field is required"),
        (b'{"model": 42}', "model field is required"),
    ],
)
def test_bad_bodies_are_client_errors_that_do_not_echo_content(raw: bytes, message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        JsonRequest.parse(raw)
    assert caught.value.message == message
