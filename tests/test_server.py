"""A real gateway in-process on an ephemeral port: health, readiness, metrics, auth, request ids,
bootstrap."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.gateway import make_config, run_gateway

MODELS = """
models:
  - name: gpt-4o
    provider: openai
    base_url: https://api.openai.com/v1
    aliases: [smart]
  - name: embed-small
    provider: vllm
    type: embedding
    base_url: http://127.0.0.1:9/v1
"""


def _envelope(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body["error"]


async def test_health_ready_and_metrics(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        health = await gw.client.get("/healthz")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "ok"
        assert body["version"]
        assert isinstance(body["uptime_seconds"], int)
        assert (await gw.client.get("/health")).json()["status"] == "ok"

        ready = await gw.client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ok", "database": "ok"})

        metrics = await gw.client.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "process_resident_memory_bytes" in metrics.text
        assert 'voidllm_service_up{service="key-cache"} 1.0' in metrics.text


async def test_bootstrap_key_authenticates_and_wrong_keys_get_401(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn, MODELS)) as gw:
        key = gw.api_key()
        models = await gw.client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert models.status_code == 200
        assert models.json() == {
            "object": "list",
            "data": [
                {"id": "embed-small", "object": "model", "created": 0, "owned_by": "voidllm", "aliases": []},
                {
                    "id": "gpt-4o",
                    "object": "model",
                    "created": 0,
                    "owned_by": "voidllm",
                    "aliases": ["smart"],
                },
            ],
        }
        one = await gw.client.get("/v1/models/smart", headers={"Authorization": f"Bearer {key}"})
        assert one.json()["id"] == "gpt-4o"
        missing = await gw.client.get("/v1/models/nope", headers={"Authorization": f"Bearer {key}"})
        assert missing.status_code == 404
        assert _envelope(missing)["code"] == "model_not_found"
        assert _envelope(missing)["message"].startswith("model 'nope' not found")

        wrong = await gw.client.get("/v1/models", headers={"Authorization": "Bearer vl_uk_" + "0" * 48})
        assert wrong.status_code == 401
        assert _envelope(wrong) | {"request_id": None} == {
            "code": "unauthorized",
            "message": "invalid API key",
            "type": "authentication_error",
            "request_id": None,
        }
        bare = await gw.client.get("/v1/models")
        assert bare.status_code == 401
        assert _envelope(bare)["message"] == "missing API key: send the header Authorization: Bearer <key>"
        unprefixed = await gw.client.get("/v1/models", headers={"Authorization": key})
        assert (
            _envelope(unprefixed)["message"]
            == "the Bearer prefix is missing: use Authorization: Bearer <key>"
        )
        malformed = await gw.client.get("/v1/models", headers={"Authorization": f"Bearer {key[:-1]}"})
        assert _envelope(malformed)["message"] == "invalid API key format"


async def test_bootstrap_happens_only_on_the_first_start(sqlite_dsn: str) -> None:
    config = make_config(sqlite_dsn)
    async with run_gateway(config) as first:
        key = first.api_key()
    async with run_gateway(config) as second:
        assert second.banner.getvalue() == ""
        still = await second.client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert still.status_code == 200


async def test_request_ids(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        mine = str(uuid.uuid4())
        echoed = await gw.client.get("/healthz", headers={"X-Request-Id": mine})
        assert echoed.headers["x-request-id"] == mine
        replaced = await gw.client.get("/healthz", headers={"X-Request-Id": "not-a-uuid; DROP TABLE"})
        fresh = replaced.headers["x-request-id"]
        assert uuid.UUID(fresh).version == 7
        other = await gw.client.get("/healthz")
        assert other.headers["x-request-id"] != fresh


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/nowhere", 404, "not_found"),
        ("POST", "/healthz", 405, "method_not_allowed"),
        ("POST", "/v1/no/such/endpoint", 400, "bad_request"),
        ("DELETE", "/v1/models", 405, "method_not_allowed"),  # a known endpoint: Allow says GET
    ],
)
async def test_errors_are_enveloped(sqlite_dsn: str, method: str, path: str, status: int, code: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        headers = {"Authorization": f"Bearer {gw.api_key()}"}
        response = await gw.client.request(method, path, headers=headers)
        assert response.status_code == status
        assert _envelope(response)["code"] == code


async def test_draining_refuses_new_requests_and_readyz_says_so(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        gw.state.drain.start_draining()
        ready = await gw.client.get("/readyz")
        assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
        refused = await gw.client.get("/v1/models", headers={"Authorization": f"Bearer {gw.api_key()}"})
        assert refused.status_code == 503
        assert _envelope(refused)["code"] == "service_unavailable"
        assert (await gw.client.get("/healthz")).status_code == 200
