"""Issue 6 point 4, second half: key revocation and registry changes made through the admin API of one gateway
take effect in another gateway on the same store within 1 s: with Redis through pub/sub change notices,
without Redis through the store's ``change_notices`` (issue 13 point 5), which also carries what the CLI
changes.

The two gateways run in this process but share nothing except the store and Redis, exactly like two
processes: each has its own key cache, catalog and Redis connections.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from tests.admin_tenancy import admin, bearer, create_key, default_org
from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway
from tests.mcp_calls import initialize_request
from tests.polling import poll_until
from tests.process import delete_prefix, write_config
from tests.test_admin_auth import admin_password
from tests.test_cli_manage import gateway_config, voidllm
from voidllm import server
from voidllm.crypto import KeyKind, generate_key
from voidllm.redis.client import open_redis
from voidllm.testing.mock_openai import open_mock_upstream
from voidllm.web.browser import SESSION_COOKIE

API = "/api/v1"
PROBE_SLACK = 10.0
"""Room for the last probe's own request on a busy machine (it is not counted in the measured time)."""


async def chat_status(gw: RunningGateway, key: str, model: str) -> int:
    response = await gw.client.post(
        "/v1/chat/completions",
        headers=bearer(key),
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
    )
    return response.status_code


async def within(seconds: float, probe: Callable[[], Awaitable[Any]], expected: Any) -> float:
    """Poll ``probe`` until it returns ``expected``; fail unless the probe that saw it had started within
    ``seconds``. Returns that time.

    What is measured is how long the change took to reach the other gateway: that gateway already had the
    change when the successful probe began (auth and model resolution come first in a request), so the time
    that probe's own request took to finish (long on a busy machine) is not counted.
    The polling as a whole is bounded too, with room for that request."""
    began = trio.current_time()
    seen_at: list[float] = []

    async def answered() -> bool:
        started = trio.current_time()
        if await probe() == expected:
            seen_at.append(started)
            return True
        return False

    with trio.fail_after(seconds + PROBE_SLACK):
        await poll_until(answered)
    took = seen_at[0] - began
    assert took <= seconds, f"the change took {took:.2f} s to arrive (limit {seconds} s)"
    return took


async def check_changes_cross(a: RunningGateway, b: RunningGateway, upstream_url: str, limit: float) -> None:
    """Through ``a``'s admin API: revoke a key, add / deactivate a model and restrict access; ``b`` follows
    within ``limit`` seconds each time."""
    org = await default_org(a)
    sys = admin(a)
    me = (await a.client.get(f"{API}/me", headers=sys)).json()["id"]
    member = await create_key(a, org, name="member", user_id=me)
    spare = await create_key(a, org, name="spare", user_id=me)
    await within(limit, lambda: chat_status(b, spare["key"], "seed"), 200)  # b knows the new keys

    revoked = await a.client.delete(f"{API}/orgs/{org}/keys/{spare['id']}", headers=sys)
    assert revoked.status_code == 204
    await within(limit, lambda: chat_status(b, spare["key"], "seed"), 401)

    created = await a.client.post(
        f"{API}/models",
        headers=sys,
        json={"name": "fresh", "provider": "openai", "base_url": upstream_url, "api_key": "sk-fresh"},
    )
    assert created.status_code == 201, created.text
    await within(limit, lambda: chat_status(b, member["key"], "fresh"), 200)

    path = f"{API}/orgs/{org}/keys/{member['id']}/model-access"
    assert (await a.client.put(path, headers=sys, json={"models": ["seed"]})).status_code == 200
    await within(limit, lambda: chat_status(b, member["key"], "fresh"), 403)
    assert (await a.client.put(path, headers=sys, json={"models": []})).status_code == 200
    await within(limit, lambda: chat_status(b, member["key"], "fresh"), 200)

    model_id = created.json()["id"]
    assert (await a.client.patch(f"{API}/models/{model_id}/deactivate", headers=sys)).status_code == 200
    await within(limit, lambda: chat_status(b, member["key"], "fresh"), 404)


@pytest.mark.redis
async def test_changes_through_one_gateway_reach_the_other_within_a_second_over_redis(
    sqlite_dsn: str, redis_url: str
) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    async with open_mock_upstream() as upstream, open_redis(redis_url) as redis:
        yaml = (
            "models:"
            + model_yaml("seed", upstream.base_url)
            + (f"\nredis:\n  enabled: true\n  url: {redis_url}\n  key_prefix: '{prefix}'\n")
        )
        config = make_config(sqlite_dsn, yaml)
        slow = attrs.evolve(config.cache, key_ttl=3600.0, model_ttl=3600.0)  # only the notices can help
        config = attrs.evolve(config, cache=slow)
        try:
            async with run_gateway(config) as a, run_gateway(config) as b:
                await check_changes_cross(a, b, upstream.base_url, limit=1.0)
        finally:
            await delete_prefix(redis, prefix)


async def test_without_redis_changes_reach_the_other_gateway_within_a_second_through_the_store(
    db_target: tuple[str, str],
) -> None:
    """Issue 13 point 5: the store's change notices, on SQLite and PostgreSQL; the periodic reloads are an
    hour away, so only the notices can help."""
    driver, dsn = db_target
    async with open_mock_upstream() as upstream:
        config = make_config(dsn, "models:" + model_yaml("seed", upstream.base_url), driver=driver)
        config = attrs.evolve(config, cache=attrs.evolve(config.cache, key_ttl=3600.0, model_ttl=3600.0))
        async with run_gateway(config) as a, run_gateway(config) as b:
            await check_changes_cross(a, b, upstream.base_url, limit=1.0)


@pytest.mark.slow
async def test_a_key_revoked_by_the_cli_is_refused_by_a_running_gateway_within_a_second(
    tmp_path: Path,
) -> None:
    config_path = write_config(tmp_path)
    async with run_gateway(
        attrs.evolve(
            gateway_config(config_path), cache=attrs.evolve(gateway_config(config_path).cache, key_ttl=3600.0)
        )
    ) as gw:
        org = await default_org(gw)
        me = (await gw.client.get(f"{API}/me", headers=admin(gw))).json()["id"]
        key = await create_key(gw, org, name="cli-target", user_id=me)
        assert (await gw.client.get("/v1/models", headers=bearer(key["key"]))).status_code == 200
        await voidllm(config_path, "keys", "revoke", key["id"])
        await within(1.0, lambda: models_status(gw, key["key"]), 401)


async def models_status(gw: RunningGateway, key: str) -> int:
    return (await gw.client.get("/v1/models", headers=bearer(key))).status_code


async def test_a_key_created_through_one_gateway_works_on_the_other_before_any_notice(
    sqlite_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache of ``b`` misses the new key (no notice reaches it and its reload is an hour away): ``b``
    asks the store for that key, on every route that takes one, and for a session made by signing in on
    ``a`` too. A key the store does not know is still refused."""
    monkeypatch.setattr(server, "serve_store_notices", partial(server.serve_store_notices, interval=3600.0))
    async with open_mock_upstream() as upstream:
        config = make_config(sqlite_dsn, "models:" + model_yaml("seed", upstream.base_url))
        config = attrs.evolve(config, cache=attrs.evolve(config.cache, key_ttl=3600.0, model_ttl=3600.0))
        async with run_gateway(config) as a, run_gateway(config) as b:
            org = await default_org(a)
            me = (await a.client.get(f"{API}/me", headers=admin(a))).json()["id"]
            key = (await create_key(a, org, name="fresh", user_id=me))["key"]
            assert await chat_status(b, key, "seed") == 200
            assert await models_status(b, key) == 200
            assert (await b.client.get(f"{API}/me", headers=bearer(key))).status_code == 200
            mcp = await b.client.post(
                f"{API}/mcp/voidllm",  # the built-in MCP server
                headers={**bearer(key), "accept": "application/json, text/event-stream"},
                json=initialize_request(),
            )
            assert mcp.status_code == 200, mcp.text

            signed_in = await a.client.post(
                f"{API}/auth/login", json={"email": "admin@voidllm.local", "password": admin_password(a)}
            )
            assert signed_in.status_code == 200, signed_in.text
            cookie = {"cookie": f"{SESSION_COOKIE}={signed_in.json()['token']}"}
            assert (await b.client.get(f"{API}/me", headers=cookie)).status_code == 200

            unknown = generate_key(KeyKind.USER)
            assert await chat_status(b, unknown, "seed") == 401
