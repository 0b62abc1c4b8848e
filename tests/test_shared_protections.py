"""Issue 20 point 2: with Redis, the login throttle (per IP and per email) and the MCP tool-refresh cooldown
count across processes, so N workers x M instances do not multiply them.

Two real ``voidllm serve`` processes share one store and the real Redis (a key prefix of their own); every
check alternates between them: the 11th attempt from one address within a minute is refused, an email locked
through one process is locked on the other, and a tool refresh on one process makes the other answer 429
within the 60 s cooldown. Beside them, the Redis cooldown itself on the real Redis and its per-process
fallback while Redis cannot be reached.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.process import GatewayProcess, delete_prefix, free_port, redis_yaml, spawn_gateway, write_config
from tests.test_login_burst import LOCKED, login_from
from voidllm.redis.client import open_redis
from voidllm.redis.cooldown import RedisCooldowns
from voidllm.testing.mock_mcp import open_mock_mcp

API = "/api/v1"
PASSWORD = "the-right-password"


async def check_per_ip(a: GatewayProcess, b: GatewayProcess) -> None:
    """Ten attempts from one address (each for another email) are evaluated, the 11th is refused."""
    statuses = []
    for n in range(11):
        url = (a.url, b.url)[n % 2]
        response = await login_from(url, "127.0.0.61", f"nobody{n}@example.com", "wrong-password")
        statuses.append(response.status_code)
    assert statuses == [401] * 10 + [429], statuses
    assert (await login_from(a.url, "127.0.0.62", "nobody@example.com", "wrong")).status_code == 401


async def check_email_lockout(a: GatewayProcess, b: GatewayProcess, admin: httpx.AsyncClient) -> None:
    """Five wrong passwords, alternating processes and addresses, lock the email on both processes."""
    created = await admin.post(f"{API}/users", json={"email": "victim@example.com", "password": PASSWORD})
    assert created.status_code == 201, created.text
    for n in range(5):
        url = (a.url, b.url)[n % 2]
        wrong = await login_from(url, f"127.0.0.{70 + n}", "victim@example.com", "wrong-password")
        assert wrong.status_code == 401, wrong.text
    for n, url in enumerate((a.url, b.url)):
        locked = await login_from(url, f"127.0.0.{80 + n}", "victim@example.com", PASSWORD)
        assert locked.status_code == 429, locked.text
        assert locked.json()["error"]["message"] == LOCKED


async def check_refresh_cooldown(a: GatewayProcess, b: GatewayProcess, admin: httpx.AsyncClient) -> None:
    """A tool refresh through ``a`` makes ``b`` answer 429 ``refresh_too_soon`` for the same server."""
    async with open_mock_mcp() as mock:
        orgs = (await admin.get(f"{API}/orgs")).json()["data"]
        org = next(o["id"] for o in orgs if o["slug"] == "default")
        made = await admin.post(
            f"{API}/orgs/{org}/mcp-servers", json={"name": "Mock", "alias": "mock", "url": mock.url}
        )
        assert made.status_code == 201, made.text
        path = f"{API}/mcp-servers/{made.json()['id']}/refresh-tools"
        refreshed = await admin.post(a.url + path)
        assert refreshed.status_code == 200, refreshed.text
        too_soon = await admin.post(b.url + path)
        assert too_soon.status_code == 429, too_soon.text
        assert too_soon.json()["error"]["code"] == "refresh_too_soon"
        assert 1 <= int(too_soon.headers["retry-after"]) <= 60
        assert (await admin.post(a.url + path)).status_code == 429


@pytest.mark.redis
async def test_redis_cooldown_one_claim_per_period(redis_url: str) -> None:
    async with open_redis(redis_url) as client:
        cooldowns = RedisCooldowns(client, f"test:{uuid.uuid4().hex[:12]}:")
        try:
            assert await cooldowns.claim("mcp-refresh:a", 60) is None
            left = await cooldowns.claim("mcp-refresh:a", 60)
            assert left is not None
            assert 59 < left <= 60
            assert await RedisCooldowns(client, cooldowns.prefix).claim("mcp-refresh:a", 60) is not None
            assert await cooldowns.claim("mcp-refresh:b", 60) is None  # other keys are independent
        finally:
            await client.execute("DEL", cooldowns.key("mcp-refresh:a"), cooldowns.key("mcp-refresh:b"))


async def test_without_redis_the_cooldown_counts_in_this_process() -> None:
    async with open_redis(f"redis://127.0.0.1:{free_port()}/0", command_timeout=1) as client:
        cooldowns = RedisCooldowns(client, "test:")
        assert await cooldowns.claim("mcp-refresh:a", 60) is None
        assert await cooldowns.claim("mcp-refresh:a", 60) is not None


@pytest.mark.slow
@pytest.mark.redis
async def test_two_processes_share_the_login_throttle_and_the_refresh_cooldown(
    tmp_path: Path, redis_url: str
) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    config = write_config(
        tmp_path, redis_yaml(redis_url, prefix), settings="mcp:\n  allow_private_urls: true"
    )
    async with open_redis(redis_url) as redis:
        try:
            async with spawn_gateway(config) as a, spawn_gateway(config, expect_banner=False) as b:
                headers = {"Authorization": f"Bearer {a.api_key}"}
                async with httpx.AsyncClient(base_url=a.url, headers=headers, timeout=30) as admin:
                    await check_per_ip(a, b)
                    await check_email_lockout(a, b, admin)
                    await check_refresh_cooldown(a, b, admin)
        finally:
            await delete_prefix(redis, prefix)
