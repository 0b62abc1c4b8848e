"""Regression test of issue 12 point 3: a parallel burst of wrong-password logins for one email cannot outrun
the lockout.

150 logins for one email are sent at once, each from its own loopback source address (client sockets bound
to 127.0.0.2 ... 127.0.0.151, so the per-IP limit never applies): exactly 5 are evaluated (401) and 145 are
refused (429); then the right password is refused while the email is locked. An unknown email behaves the
same. Once in one gateway process (the throttle in memory), once over two ``voidllm serve`` processes sharing
the real Redis, the burst split between them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest
import trio

from tests.gateway import RunningGateway, make_config, run_gateway
from tests.process import delete_prefix, spawn_gateway, write_config
from voidllm.redis.client import open_redis

BURST = 150
LOCKED = "too many login attempts, try again later"
PASSWORD = "the-right-password"
TLS = httpx.create_ssl_context()
"""httpx's default TLS context, made once: each client would load the CA bundle again (about 25 ms of CPU,
four of the five seconds of a burst), though every login here is plain HTTP."""


async def login_from(url: str, source: str, email: str, password: str) -> httpx.Response:
    """One login whose TCP connection comes from the loopback address ``source``."""
    transport = httpx.AsyncHTTPTransport(local_address=source, verify=TLS)
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=60) as client:
        return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def burst(urls: Sequence[str], email: str, password: str) -> list[httpx.Response]:
    """:data:`BURST` concurrent logins from distinct source addresses, spread over ``urls``."""
    responses: list[httpx.Response] = []

    async def one(n: int) -> None:
        responses.append(await login_from(urls[n % len(urls)], f"127.0.0.{n + 2}", email, password))

    async with trio.open_nursery() as nursery:
        for n in range(BURST):
            nursery.start_soon(one, n)
    return responses


def assert_five_evaluated(responses: list[httpx.Response]) -> None:
    statuses = [r.status_code for r in responses]
    assert (statuses.count(401), statuses.count(429)) == (5, BURST - 5), statuses
    for response in responses:
        error = response.json()["error"]
        expected = "invalid email or password" if response.status_code == 401 else LOCKED
        assert error["message"] == expected
        if response.status_code == 429:
            assert 890 <= int(response.headers["retry-after"]) <= 900


def assert_locked(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["message"] == LOCKED


@pytest.fixture
async def gw(sqlite_dsn: str) -> AsyncIterator[RunningGateway]:
    async with run_gateway(make_config(sqlite_dsn)) as gateway:
        yield gateway


def admin_password(banner: str) -> str:
    for line in banner.splitlines():
        if "Password:" in line:
            return line.split("Password:")[1].strip()
    raise AssertionError("no bootstrap banner")


async def test_a_burst_of_150_gets_five_evaluated_then_the_right_password_is_refused(
    gw: RunningGateway,
) -> None:
    assert_five_evaluated(await burst([gw.url], "admin@voidllm.local", "wrong-password"))
    throttle = gw.state.services.throttle
    assert throttle.statistics().ips == 5  # the gateway saw five distinct source addresses admitted
    right = admin_password(gw.banner.getvalue())
    assert_locked(await login_from(gw.url, "127.0.0.200", "admin@voidllm.local", right))
    assert_locked(await login_from(gw.url, "127.0.0.201", " ADMIN@voidllm.local", right))


async def test_an_unknown_email_is_throttled_the_same(gw: RunningGateway) -> None:
    assert_five_evaluated(await burst([gw.url], "nobody@voidllm.local", "wrong-password"))
    assert_locked(await login_from(gw.url, "127.0.0.200", "nobody@voidllm.local", "wrong-password"))
    right = admin_password(gw.banner.getvalue())
    other = await login_from(gw.url, "127.0.0.201", "admin@voidllm.local", right)
    assert other.status_code == 200  # other emails are not affected


@pytest.mark.slow
@pytest.mark.redis
async def test_two_gateway_processes_sharing_redis_evaluate_five_of_a_burst(
    tmp_path: Path, redis_url: str
) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    config = write_config(
        tmp_path,
        f"""
redis:
  enabled: true
  url: {redis_url}
  key_prefix: "{prefix}"
""",
    )
    async with open_redis(redis_url) as redis:
        try:
            async with spawn_gateway(config) as a, spawn_gateway(config, expect_banner=False) as b:
                async with httpx.AsyncClient(base_url=a.url, timeout=30) as admin:
                    created = await admin.post(
                        "/api/v1/users",
                        headers={"Authorization": f"Bearer {a.api_key}"},
                        json={"email": "victim@example.com", "password": PASSWORD},
                    )
                    assert created.status_code == 201, created.text
                assert_five_evaluated(await burst([a.url, b.url], "victim@example.com", "wrong-password"))
                for n, url in enumerate((a.url, b.url)):  # locked on both processes
                    assert_locked(await login_from(url, f"127.0.0.{200 + n}", "victim@example.com", PASSWORD))
                assert_five_evaluated(await burst([a.url, b.url], "nobody@example.com", "wrong-password"))
        finally:
            await delete_prefix(redis, prefix)
