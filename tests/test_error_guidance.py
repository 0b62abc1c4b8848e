"""Issue 13 point 6: errors that say what to do — methods, empty answers.

(Authentication hints and ``model_not_found`` are checked in tests/test_server.py and tests/test_key_cache.py;
the port in use in tests/test_first_run.py; private MCP URLs in tests/test_admin_mcp_servers.py.)
"""

from __future__ import annotations

import pytest

from tests.admin_tenancy import admin, create_key, default_org, open_gateway
from tests.gateway import RunningGateway

API = "/api/v1"


@pytest.fixture
async def gw(sqlite_dsn: str):  # type: ignore[no-untyped-def]
    async with open_gateway(sqlite_dsn) as gateway:
        yield gateway


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("PUT", "/v1/embeddings", "POST"),
        ("DELETE", "/v1/models", "GET"),
        ("POST", "/v1/models/gpt-test", "GET"),
        ("PUT", f"{API}/users", "GET, POST"),
        ("DELETE", f"{API}/orgs", "GET, POST"),
        ("PUT", f"{API}/mcp/voidllm", "POST, DELETE"),
        ("POST", "/healthz", "GET"),
    ],
)
async def test_a_wrong_method_on_a_known_route_is_405_with_allow(
    gw: RunningGateway, method: str, path: str, allow: str
) -> None:
    response = await gw.client.request(method, path, headers=admin(gw))
    assert response.status_code == 405, response.text
    methods = set(response.headers["allow"].replace(" ", "").split(",")) - {"HEAD", "OPTIONS"}
    assert methods == set(allow.replace(" ", "").split(","))


async def test_an_unknown_v1_endpoint_stays_400(gw: RunningGateway) -> None:
    response = await gw.client.post("/v1/unknown/thing", headers=admin(gw))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "unsupported API endpoint"


async def test_a_204_carries_no_content_type_and_no_length(gw: RunningGateway) -> None:
    org = await default_org(gw)
    me = (await gw.client.get(f"{API}/me", headers=admin(gw))).json()["id"]
    key = await create_key(gw, org, user_id=me)
    response = await gw.client.delete(f"{API}/orgs/{org}/keys/{key['id']}", headers=admin(gw))
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    assert "content-length" not in response.headers


async def test_usage_ranges_take_dates_and_costs_are_rounded_decimals(gw: RunningGateway) -> None:
    """Dates are midnight UTC; a sum of float estimates reaches the client without float noise."""
    from datetime import UTC, datetime

    from tests.test_usage_export import event, insert

    org = await default_org(gw)
    key = gw.state.keys.authenticate(f"Bearer {gw.api_key()}")
    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    await insert(gw, [event(org, key.key_id, at, cost_estimate=0.1) for _ in range(3)])  # 0.1 * 3 in floats
    assert 0.1 + 0.1 + 0.1 != 0.3
    report = await gw.client.get(
        f"{API}/orgs/{org}/usage/cost-report",
        headers=admin(gw),
        params={"from": "2026-03-02", "to": "2026-03-03"},
    )
    assert report.status_code == 200, report.text
    assert report.json()["totals"]["cost"] == 0.3
    assert b"0.30000000000000004" not in report.content
    naive = await gw.client.get(
        f"{API}/orgs/{org}/usage/cost-report",
        headers=admin(gw),
        params={"from": "2026-03-02T00:00:00", "to": "2026-03-03"},
    )
    assert naive.status_code == 400
    assert "UTC offset" in naive.json()["error"]["message"]
