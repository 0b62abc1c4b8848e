"""The Azure OpenAI adapter: deployment URLs with ``api-version``, the v1 API, the ``api-key`` header, and
unchanged OpenAI bodies and streams (Azure's content-filter annotations included)."""

from __future__ import annotations

import random

import orjson
import pytest

from voidllm.providers.azure import DEFAULT_API_VERSION, AzureAdapter
from voidllm.providers.base import Adapter, Target, Usage

RESOURCE = "https://my-res.openai.azure.com/"
TARGET = Target(RESOURCE, api_key="az-key", model="gpt-4o", azure_deployment="gpt4o-prod")
PAYLOAD = {
    "model": "gpt-4o",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}

# An Azure OpenAI chat stream as documented: the prompt-filter chunk with empty choices comes first, content
# chunks carry content_filter_results, and with include_usage a usage chunk precedes [DONE].
AZURE_STREAM = (
    b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":'
    b'[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}\r\n\r\n'
    b'data: {"choices":[{"content_filter_results":{},"delta":{"content":"","role":"assistant"},'
    b'"finish_reason":null,"index":0}],"created":1718000000,"id":"chatcmpl-9","model":"gpt-4o-2024-05-13",'
    b'"object":"chat.completion.chunk","system_fingerprint":"fp_1","usage":null}\r\n\r\n'
    b'data: {"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},'
    b'"delta":{"content":"Hi"},"finish_reason":null,"index":0}],"created":1718000000,"id":"chatcmpl-9",'
    b'"model":"gpt-4o-2024-05-13","object":"chat.completion.chunk","usage":null}\r\n\r\n'
    b'data: {"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0}],'
    b'"created":1718000000,"id":"chatcmpl-9","model":"gpt-4o-2024-05-13","object":"chat.completion.chunk",'
    b'"usage":null}\r\n\r\n'
    b'data: {"choices":[],"created":1718000000,"id":"chatcmpl-9","model":"gpt-4o-2024-05-13",'
    b'"object":"chat.completion.chunk","usage":{"completion_tokens":1,"prompt_tokens":8,"total_tokens":9}}\r\n\r\n'
    b"data: [DONE]\r\n\r\n"
)


@pytest.mark.parametrize(
    ("path", "version", "url"),
    [
        (
            "chat/completions",
            "",
            f"https://my-res.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version={DEFAULT_API_VERSION}",
        ),
        (
            "/embeddings",
            "2025-04-01-preview",
            "https://my-res.openai.azure.com/openai/deployments/gpt4o-prod/embeddings?api-version=2025-04-01-preview",
        ),
        (
            "audio/transcriptions",
            "2024-06-01",
            "https://my-res.openai.azure.com/openai/deployments/gpt4o-prod/audio/transcriptions?api-version=2024-06-01",
        ),
    ],
)
def test_deployment_url(path: str, version: str, url: str) -> None:
    target = Target(RESOURCE, api_key="k", azure_deployment="gpt4o-prod", azure_api_version=version)
    assert AzureAdapter().build_call(path, PAYLOAD, target, stream=True).url == url
    assert DEFAULT_API_VERSION == "2024-10-21"


def test_deployment_and_version_are_percent_encoded() -> None:
    target = Target("https://r.example", azure_deployment="a/b c", azure_api_version="x&y=z")
    url = AzureAdapter().build_call("chat/completions", PAYLOAD, target, stream=False).url
    assert url == "https://r.example/openai/deployments/a%2Fb%20c/chat/completions?api-version=x%26y%3Dz"


def test_api_key_header_and_no_authorization() -> None:
    built = AzureAdapter().build_call("chat/completions", PAYLOAD, TARGET, stream=True)
    assert built.headers == [(b"content-type", b"application/json"), (b"api-key", b"az-key")]
    keyless = AzureAdapter().build_call(
        "chat/completions", PAYLOAD, Target(RESOURCE, azure_deployment="d"), stream=True
    )
    assert keyless.headers == [(b"content-type", b"application/json")]


def test_body_is_unchanged_for_dated_versions() -> None:
    assert (
        orjson.loads(AzureAdapter().build_call("chat/completions", PAYLOAD, TARGET, stream=True).body)
        == PAYLOAD
    )


def test_v1_api_names_the_deployment_in_the_body() -> None:
    target = Target(
        RESOURCE, api_key="k", model="gpt-4o", azure_deployment="gpt4o-prod", azure_api_version="v1"
    )
    built = AzureAdapter().build_call("responses", PAYLOAD, target, stream=False)
    assert built.url == "https://my-res.openai.azure.com/openai/v1/responses"
    assert orjson.loads(built.body) == {**PAYLOAD, "model": "gpt4o-prod"}
    assert PAYLOAD["model"] == "gpt-4o"  # the caller's mapping is not changed
    assert (b"api-key", b"k") in built.headers


def test_missing_deployment_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="azure_deployment"):
        AzureAdapter().build_call("chat/completions", PAYLOAD, Target(RESOURCE, api_key="k"), stream=False)


def test_response_is_unchanged_with_openai_usage() -> None:
    body = (
        b'{"id":"chatcmpl-9","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},'
        b'"finish_reason":"stop","content_filter_results":{}}],"prompt_filter_results":[],'
        b'"usage":{"completion_tokens":1,"prompt_tokens":8,"total_tokens":9}}'
    )
    out, usage = AzureAdapter().translate_response(body, model="gpt-4o")
    assert out is body
    assert usage == Usage(8, 1, 9)
    error = (
        b'{"error":{"code":"DeploymentNotFound",'
        b'"message":"The API deployment for this resource does not exist."}}'
    )
    assert AzureAdapter().translate_response(error, model="gpt-4o") == (error, None)


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_stream_is_relayed_with_usage_and_done(seed: int | None) -> None:
    translator = AzureAdapter().stream_translator(model="gpt-4o")
    if seed is None:
        pieces = [AZURE_STREAM[i : i + 1] for i in range(len(AZURE_STREAM))]
    else:
        rng, pieces, pos = random.Random(seed), [], 0
        while pos < len(AZURE_STREAM):
            size = rng.randint(1, 50)
            pieces.append(AZURE_STREAM[pos : pos + size])
            pos += size
    out = b"".join([translator.feed(piece) for piece in pieces]) + translator.finish()
    assert out == AZURE_STREAM.replace(b"\r\n", b"\n")
    assert translator.done
    assert translator.usage == Usage(8, 1, 9)


def test_conforms_to_the_adapter_protocol() -> None:
    adapter: Adapter = AzureAdapter()
    assert adapter.stream_translator(model="m").done is False
