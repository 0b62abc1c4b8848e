"""The built-in ``voidllm`` MCP server through the official ``mcp`` SDK client, over a real gateway socket:
both protocol eras (``mode="auto"`` negotiates the stateless 2026-07-28 revision; ``mode="legacy"`` the
initialize handshake with a session), every tool, and RBAC identical to the REST API."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import httpx2
import pytest
import sqlalchemy as sa
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
            assert client.server_info is not None and client.server_info.name == "voidllm"
            tools = await client.list_tools()
            assert [tool.name for tool in tools.tools] == [
                "list_models", "get_model_health", "get_usage", "list_keys", "create_key", "list_deployments",
            ]
            models = _json(await client.call_tool("list_models", {}))
            assert [m["name"] for m in models] == ["embed-small", "gpt-4o"]
            assert models[1]["aliases"] == ["smart"] and models[1]["provider"] == "openai"
