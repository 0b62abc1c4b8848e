"""Every request the gateway makes on its own carries the provider's credential the way the proxy does.

The upstream health probes once sent a Gemini key as ``Authorization: Bearer`` while the admin connection
test sent ``x-goog-api-key``: both now use :func:`voidllm.providers.registry.credential_headers`. For each
provider, the headers a real mock upstream receives from the health probes (every probe kind) and from
``POST /models/test-connection`` are the table's, and the proxy's own request to that provider carries the
same credential headers.
"""

from __future__ import annotations

import functools

import httpx
import pytest
import trio

from tests.gateway import make_config, run_gateway
from tests.test_admin_models import admin
from voidllm.config.settings import (
    FunctionalProbeConfig,
    HealthCheckConfig,
    HealthProbeConfig,
    ModelsProbeConfig,
)
from voidllm.providers.credentials import CREDENTIAL_HEADERS
from voidllm.providers.registry import credential_headers
from voidllm.proxy.calls import build_call
from voidllm.proxy.endpoints import ENDPOINTS
from voidllm.proxy.jsonbody import JsonRequest
from voidllm.routing.health import HealthBoard, serve_health_probes
from voidllm.routing.registry import Model, Upstream
from voidllm.testing.mock_openai import ReceivedRequest, open_mock_upstream

BEARER = {"authorization": "Bearer key-0042"}
EXPECTED: dict[str, dict[str, str]] = {
    "openai": BEARER,
    "azure": {"api-key": "key-0042"},
    "anthropic": {"x-api-key": "key-0042", "anthropic-version": "2023-06-01"},
    "gemini": {"x-goog-api-key": "key-0042"},
    "vertex": BEARER,  # an OAuth access token
    "ollama": BEARER,
    "vllm": BEARER,
    "custom": BEARER,
}
PROVIDERS = sorted(EXPECTED)


def credentials_of(request: ReceivedRequest) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers if name.lower() in CREDENTIAL_HEADERS}


def upstream(provider: str, base_url: str, api_key: str = "key-0042") -> Upstream:
    return Upstream(
        f"probe-{provider}",
        provider,
        base_url,
        api_key,
        azure_deployment="dep",
        gcp_project="proj",
        gcp_location="europe-west4",
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_table(provider: str) -> None:
    assert {k.lower(): v for k, v in credential_headers(provider, "key-0042").items()} == EXPECTED[provider]
    assert credential_headers(provider, "") == {}


async def probe_once(up: Upstream) -> None:
    """Run every probe kind of ``up`` once, with a real client and clock, until the service is ready."""
    every_kind = HealthCheckConfig(
        HealthProbeConfig(True, 30.0), ModelsProbeConfig(True, 60.0), FunctionalProbeConfig(True, 300.0)
    )
    model = Model(up.name, "chat", (), (up,))
    with trio.fail_after(10):
        async with httpx.AsyncClient(trust_env=False) as client, trio.open_nursery() as nursery:
            service = functools.partial(
                serve_health_probes, models=[model], settings=every_kind, client=client, board=HealthBoard()
            )
            await nursery.start(service)
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_health_probes_send_the_providers_credential(provider: str) -> None:
    async with open_mock_upstream() as mock:
        assert mock.base_url is not None
        await probe_once(upstream(provider, mock.base_url))
        paths = sorted(r.path for r in mock.requests)
        assert paths == ["/", "/v1/chat/completions", "/v1/models"]
        assert [credentials_of(r) for r in mock.requests] == [EXPECTED[provider]] * 3


async def test_health_probes_send_no_credential_without_a_key() -> None:
    async with open_mock_upstream() as mock:
        assert mock.base_url is not None
        for provider in PROVIDERS:
            await probe_once(upstream(provider, mock.base_url, api_key=""))
        assert len(mock.requests) == 3 * len(PROVIDERS)
        assert [credentials_of(r) for r in mock.requests] == [{}] * len(mock.requests)


async def test_the_connection_test_sends_the_providers_credential(sqlite_dsn: str) -> None:
    async with open_mock_upstream() as mock, run_gateway(make_config(sqlite_dsn)) as gw:
        assert mock.base_url is not None
        for provider in PROVIDERS:
            body = {"provider": provider, "base_url": mock.base_url, "api_key": "key-0042"}
            answer = await gw.client.post("/api/v1/models/test-connection", headers=admin(gw), json=body)
            assert answer.status_code == 200, provider
            assert answer.json()["success"] is True, provider
            sent = mock.requests[-1]
            assert (sent.method, sent.path) == ("GET", "/v1/models")
            assert credentials_of(sent) == EXPECTED[provider], provider
        without = {"provider": "gemini", "base_url": mock.base_url}
        answer = await gw.client.post("/api/v1/models/test-connection", headers=admin(gw), json=without)
        assert answer.json()["success"] is True
        assert credentials_of(mock.requests[-1]) == {}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_proxied_requests_carry_the_same_credential(provider: str) -> None:
    request = JsonRequest.parse(b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')
    chat = ENDPOINTS["/v1/chat/completions"]
    _url, headers, _body = build_call(
        upstream(provider, "http://upstream.test/v1"),
        model_name="m",
        endpoint=chat,
        request=request,
        body=b"",
        client_headers=[],
        request_id="rid",
    )
    sent = {name.decode().lower(): value.decode() for name, value in headers}
    assert {name: value for name, value in sent.items() if name in CREDENTIAL_HEADERS} == EXPECTED[provider]
