"""Issue 6 point 5: a store outage does not turn cached valid keys into 401s; admin writes fail with 503 in
the envelope while the store is down and succeed once it is back.

The gateway talks to this machine's PostgreSQL through a TCP forwarder; cutting the forwarder is a real
outage for the gateway (connections die, new ones are refused) while the server keeps running.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.gateway import make_config, model_yaml, run_gateway
from tests.tcpforward import forward
from voidllm.auth.cache import reload_key_cache
from voidllm.errors import StoreUnavailableError
from voidllm.testing.mock_openai import open_mock_upstream

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


async def test_store_outage_keeps_keys_valid_and_refuses_admin_writes_until_it_is_back(pg_dsn: str) -> None:
    parts = urlsplit(pg_dsn)
    async with (
        forward(parts.hostname or "127.0.0.1", parts.port or 5432) as db,
        open_mock_upstream() as upstream,
    ):
        dsn = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{db.port}"))
        config = make_config(dsn, "models:" + model_yaml("m", upstream.base_url), driver="postgres")
        async with run_gateway(config) as gw:
            auth = {"Authorization": f"Bearer {gw.api_key()}"}
            assert (await gw.client.post("/v1/chat/completions", json=CHAT, headers=auth)).status_code == 200

            db.down()
            with pytest.raises(StoreUnavailableError):  # the periodic reload fails ...
                await reload_key_cache(gw.state.keys, gw.state.store)
            # ... and the cached key keeps working, for the proxy and for admin reads that need no store
            for _ in range(3):
                response = await gw.client.post("/v1/chat/completions", json=CHAT, headers=auth)
                assert response.status_code == 200
            assert (await gw.client.get("/readyz")).status_code == 503
            write = await gw.client.post(
                "/api/v1/orgs", json={"name": "During outage", "slug": "during-outage"}, headers=auth
            )
            assert write.status_code == 503
            assert write.json()["error"]["code"] == "store_unavailable"
            assert write.json()["error"]["request_id"] == write.headers["x-request-id"]

            db.up()
            await reload_key_cache(gw.state.keys, gw.state.store)
            assert (await gw.client.get("/readyz")).status_code == 200
            write = await gw.client.post(
                "/api/v1/orgs", json={"name": "After outage", "slug": "after-outage"}, headers=auth
            )
            assert write.status_code == 201, write.text
            assert (await gw.client.post("/v1/chat/completions", json=CHAT, headers=auth)).status_code == 200
