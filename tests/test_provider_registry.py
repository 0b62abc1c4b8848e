"""The provider registry is complete and consistent: every name has a whole, coherent record.

:mod:`voidllm.providers.registry` is the one place that says what each provider is and can do; the config
and admin checks, the probes and the proxy only ask it. So each record must hold together: credentials in
the headers of :data:`~voidllm.providers.credentials.CREDENTIAL_HEADERS` carrying the key, an adapter or
OpenAI-shaped passthrough, flags that fit the adapter, required fields that exist on every target, and the
proxy's own request carrying the same credential headers as the probes.
"""

from __future__ import annotations

import functools

import attrs
import pytest

from voidllm.config.upstreams import DeploymentConfig, ModelConfig
from voidllm.providers.base import Target, TranslationError
from voidllm.providers.credentials import CREDENTIAL_HEADERS
from voidllm.providers.registry import NAMES, PROVIDERS, Provider, credential_headers
from voidllm.proxy.calls import build_call
from voidllm.proxy.endpoints import ENDPOINTS
from voidllm.proxy.jsonbody import JsonRequest
from voidllm.routing.registry import Upstream

KEY = "key-0042"


def test_names_are_the_registry_in_order() -> None:
    assert NAMES == tuple(PROVIDERS)
    assert NAMES[0] == "openai"  # configuration errors list the common one first
    assert all(provider.name == name for name, provider in PROVIDERS.items())
    assert len(set(NAMES)) == len(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_credentials_are_credential_headers_that_carry_the_key(name: str) -> None:
    headers = credential_headers(name, KEY)
    assert headers
    assert {header.lower() for header in headers} <= CREDENTIAL_HEADERS
    assert sum(KEY in value for value in headers.values()) == 1
    assert credential_headers(name, "") == {}


@pytest.mark.parametrize("name", NAMES)
def test_adapter_and_flags_fit_together(name: str) -> None:
    provider = PROVIDERS[name]
    adapter = provider.adapter
    if adapter is not None:
        assert callable(adapter.build_call)
        assert callable(adapter.translate_response)
        assert callable(adapter.stream_translator)
    assert provider.translator is (adapter if provider.translated else None)
    if provider.translated:
        assert adapter is not None, "translated answers need an adapter"
    if provider.multipart_url is not None:
        assert adapter is not None
        assert not provider.translated, "multipart bodies go as they are: OpenAI-shaped"
    assert provider.accepts_multipart == (adapter is None or provider.multipart_url is not None)
    if provider.native_messages:
        assert provider.translated, "a native /v1/messages provider also serves OpenAI clients, translated"
    if provider.builtin_demo:
        assert adapter is None, "the demo provider answers in the OpenAI shape"


def test_exactly_one_builtin_demo_and_one_native_messages_provider() -> None:
    assert [p.name for p in PROVIDERS.values() if p.builtin_demo] == ["mock"]
    assert [p.name for p in PROVIDERS.values() if p.native_messages] == ["anthropic"]


@pytest.mark.parametrize("name", NAMES)
def test_required_fields_exist_on_every_target(name: str) -> None:
    for field in PROVIDERS[name].required_fields:
        for cls in (ModelConfig, DeploymentConfig, Target, Upstream):
            assert field in attrs.fields_dict(cls), (cls.__name__, field)


def upstream(provider: Provider, api_key: str = KEY) -> Upstream:
    return Upstream(
        f"u-{provider.name}",
        provider.name,
        "http://upstream.test/v1",
        api_key,
        azure_deployment="dep",
        gcp_project="proj",
        gcp_location="europe-west4",
    )


@pytest.mark.parametrize("name", NAMES)
def test_the_proxy_sends_the_registry_credentials(name: str) -> None:
    provider = PROVIDERS[name]
    request = JsonRequest.parse(b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')
    _url, headers, _body = build_call(
        upstream(provider),
        model_name="m",
        endpoint=ENDPOINTS["/v1/chat/completions"],
        request=request,
        body=b"",
        client_headers=[],
        request_id="rid",
    )
    sent = {k.decode().lower(): v.decode() for k, v in headers if k.decode().lower() in CREDENTIAL_HEADERS}
    assert sent == {k.lower(): v for k, v in credential_headers(name, KEY).items()}


@pytest.mark.parametrize("name", NAMES)
def test_multipart_bodies_go_only_where_accepted(name: str) -> None:
    provider = PROVIDERS[name]
    call = functools.partial(
        build_call,
        upstream(provider),
        model_name="m",
        endpoint=ENDPOINTS["/v1/audio/transcriptions"],
        request=None,
        body=b"multipart",
        client_headers=[],
        request_id="rid",
    )
    if not provider.accepts_multipart:
        with pytest.raises(TranslationError, match=f"not supported by the {name} provider"):
            call()
        return
    _url, headers, body = call()
    assert body == b"multipart"
    sent = {k.decode().lower(): v.decode() for k, v in headers if k.decode().lower() in CREDENTIAL_HEADERS}
    assert sent == {k.lower(): v for k, v in credential_headers(name, KEY).items()}


@pytest.mark.parametrize("name", [name for name in NAMES if PROVIDERS[name].accepts_multipart])
def test_multipart_without_a_key_sends_no_credential_header(name: str) -> None:
    _url, headers, _body = build_call(
        upstream(PROVIDERS[name], api_key=""),
        model_name="m",
        endpoint=ENDPOINTS["/v1/audio/transcriptions"],
        request=None,
        body=b"multipart",
        client_headers=[],
        request_id="rid",
    )
    assert [k for k, _ in headers if k.decode().lower() in CREDENTIAL_HEADERS] == []
