"""The built-in ``voidllm`` MCP server through the official ``mcp`` SDK client, over a real gateway socket:
both protocol eras (``mode="auto"`` negotiates the stateless 2026-07-28 revision; ``mode="legacy"`` the
initialize handshake with a session), every tool, and RBAC identical to the REST API."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.admin_tenancy import add_user, bearer, default_org, user_key
from tests.gateway import make_config, run_gateway
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow

MODELS = """
models:
  - name: gpt-4o
    provider: openai
    base_url: http://127.0.0.1:9/v1
    aliases: [smart]
  - name: embed-small
    provider: vllm
    type: embedding
    base_url: http://127.0.0.1:9/v1
"""

PATH = "/api/v1/mcp/voidllm"


def _client(url: str, key: str, mode: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return Client(streamable_http_client(url + PATH, http_client=http), mode=mode, raise_exceptions=True)


def _json(result: Any) -> Any:
    assert result.content[0].type == "text"
    return json.loads(result.content[0].text)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_sdk_lists_and_calls_tools_as_system_admin(sqlite_dsn: str, mode: str) -> None:
    async with run_gateway(make_config(sqlite_dsn, MODELS)) as gw:
        async with _client(gw.url, gw.api_key(), mode) as client:
            assert client.server_info is not None
            assert client.server_info.name == "voidllm"
            tools = await client.list_tools()
            assert [tool.name for tool in tools.tools] == [
                "list_models",
                "get_model_health",
                "get_usage",
                "list_keys",
                "create_key",
                "list_deployments",
            ]
            models = _json(await client.call_tool("list_models", {}))
            assert [m["name"] for m in models] == ["embed-small", "gpt-4o"]
            assert models[1]["aliases"] == ["smart"]
            assert models[1]["provider"] == "openai"


def _usage(key_id: str, org_id: str, user_id: str | None, model: str, tokens: int, at: Any) -> dict[str, Any]:
    return {
        "id": new_id(),
        "request_id": None,
        "key_id": key_id,
        "key_type": "user_key",
        "org_id": org_id,
        "team_id": None,
        "user_id": user_id,
        "service_account_id": None,
        "model_name": model,
        "requested_model_name": model,
        "deployment_name": None,
        "provider": "openai",
        "prompt_tokens": tokens,
        "completion_tokens": 1,
        "total_tokens": tokens + 1,
        "cost_estimate": None,
        "request_duration_ms": 10,
        "ttft_ms": None,
        "tokens_per_second": None,
        "status_code": 200,
        "status": "ok",
        "stream": False,
        "source": None,
        "project": None,
        "created_at": at,
    }


async def _key_id(gw: Any, plaintext: str) -> str:
    return str(gw.state.keys.authenticate(f"Bearer {plaintext}").key_id)


async def test_every_tool_with_the_rest_api_permissions(sqlite_dsn: str) -> None:
    from mcp.shared.exceptions import MCPError

    async with run_gateway(make_config(sqlite_dsn, MODELS)) as gw:
        admin_key = gw.api_key()
        org = await default_org(gw)
        member_id = await add_user(gw, org, "member@example.com")
        member_key = await user_key(gw, org, member_id, name="member-key")
        admin_identity = gw.state.keys.authenticate(f"Bearer {admin_key}")
        member_key_id = await _key_id(gw, member_key)
        now = utcnow()
        rows = [
            _usage(
                admin_identity.key_id, org, admin_identity.user_id, "gpt-4o", 10, now - timedelta(hours=1)
            ),
            _usage(member_key_id, org, member_id, "gpt-4o", 20, now - timedelta(hours=2)),
            _usage(
                member_key_id, org, member_id, "embed-small", 30, now - timedelta(days=40)
            ),  # outside default
            _usage("k-other", "other-org", None, "gpt-4o", 99, now - timedelta(hours=1)),
        ]
        await gw.state.services.store.run(lambda conn: conn.execute(t.usage_events.insert(), rows))
        models = (await gw.client.get("/api/v1/models", headers=bearer(admin_key))).json()["data"]
        model_id = next(m["id"] for m in models if m["name"] == "gpt-4o")

        async with (
            _client(gw.url, member_key, "auto") as member,
            _client(gw.url, admin_key, "legacy") as admin,
        ):
            # list_models: members see names and types of the models they can use
            assert _json(await member.call_tool("list_models", {})) == [
                {"name": "embed-small", "type": "embedding"},
                {"name": "gpt-4o", "type": "chat"},
            ]
            health = _json(await admin.call_tool("get_model_health", {"model": "gpt-4o"}))
            assert health["name"] == "gpt-4o"
            assert health["status"] == "unknown"
            missing = await member.call_tool("get_model_health", {"model": "nope"})
            assert missing.is_error
            assert "not found" in missing.content[0].text

            # get_usage: org admins see the organisation, members their own, last 30 days by default
            org_usage = _json(await admin.call_tool("get_usage", {"group_by": "model"}))
            assert org_usage["org_id"] == org
            assert [(p["group_key"], p["total_requests"], p["total_tokens"]) for p in org_usage["data"]] == [
                ("gpt-4o", 2, 32),
            ]
            mine = _json(
                await member.call_tool("get_usage", {"from": (now - timedelta(days=60)).isoformat()})
            )
            assert [(p["total_requests"], p["prompt_tokens"]) for p in mine["data"]] == [(2, 50)]
            bad_range = await member.call_tool("get_usage", {"from": now.isoformat(), "to": now.isoformat()})
            assert bad_range.is_error

            # list_keys: admins the organisation's keys, members only their own
            admin_keys = {k["name"] for k in _json(await admin.call_tool("list_keys", {}))}
            assert "member-key" in admin_keys
            assert len(admin_keys) >= 2
            member_keys = _json(await member.call_tool("list_keys", {}))
            assert [k["name"] for k in member_keys] == ["member-key"]
            assert set(member_keys[0]) == {"id", "key_hint", "key_type", "name", "created_at"}

            # create_key: a personal key that works at once
            created = await member.call_tool("create_key", {"name": "from-mcp", "expires_in": "24h"})
            assert created.structured_content is not None
            new = _json(created)
            assert new["name"] == "from-mcp"
            assert new["key"].startswith("vl_uk_")
            assert new["expires_at"]
            assert (await gw.client.get("/v1/models", headers=bearer(new["key"]))).status_code == 200
            listed = await gw.client.get(f"/api/v1/orgs/{org}/keys/{new['id']}", headers=bearer(admin_key))
            assert listed.json()["user_id"] == member_id

            # list_deployments: system admins only; a refusal is a tool error, not a protocol error
            denied = await member.call_tool("list_deployments", {"model_id": model_id})
            assert denied.is_error
            assert denied.content[0].text == "insufficient permissions"
            deployments = await admin.call_tool("list_deployments", {"model_id": model_id})
            assert not deployments.is_error
            assert _json(deployments) == []
            unknown_model = await admin.call_tool("list_deployments", {"model_id": "nope"})
            assert unknown_model.is_error

            # protocol errors: unknown tool, missing/extra/ill-typed arguments
            for name, args in [
                ("nope", {}),
                ("create_key", {}),
                ("list_keys", {"x": 1}),
                ("create_key", {"name": "x", "expires_in": "1d"}),
                ("get_usage", {"from": "soon"}),
                ("get_usage", {"from": "0001-01-01T00:00:00+14:00"}),  # overflowed to a 500 once
                ("get_usage", {"to": "1970-01-01T00:00:00"}),  # no offset
            ]:
                with pytest.raises(MCPError) as caught:
                    await member.call_tool(name, args)
                assert caught.value.code == -32602
