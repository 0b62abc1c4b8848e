"""Issue 8 points 1, 4, 6 and 7: /api/v1/mcp/<alias> proxies to an upstream MCP server (the SDK-built mock).

The official ``mcp`` SDK client in its default (2026-07-28) and legacy (session) modes, raw httpx for the
HTTP statuses of docs/reference/behaviour.md 1.7, upstream session expiry, access per scope, one client
session served by two gateway processes on the same store and encryption key, and the ``mcp_tool_calls`` rows
and metrics.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import sqlalchemy as sa
import trio
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client import generate_latest

from tests.admin_tenancy import add_user, bearer, default_org, user_key
from tests.gateway import RunningGateway, make_config, metric_sample, run_gateway
from voidllm.metrics import REGISTRY
from voidllm.store import tables as t
from voidllm.testing.mock_mcp import MockMcp, open_mock_mcp

API = "/api/v1"
PATH = "/api/v1/mcp/tools"
JSON_AND_SSE = "application/json, text/event-stream"
SETTINGS = """
mcp:
  allow_private_urls: true
  call_timeout: 1s
  health:
    enabled: false
usage:
  flush_interval: 0.05s
"""


def _client(url: str, key: str, mode: str, path: str = PATH) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return Client(streamable_http_client(url + path, http_client=http), mode=mode, raise_exceptions=True)


async def _register(
    gw: RunningGateway, mock: MockMcp, alias: str = "tools", path: str = "/mcp-servers"
) -> str:
    body = {"name": alias.title(), "alias": alias, "url": mock.url}
    response = await gw.client.post(f"{API}{path}", headers=bearer(gw.api_key()), json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@asynccontextmanager
async def _proxied(dsn: str, **mock_options: Any) -> AsyncIterator[tuple[RunningGateway, MockMcp]]:
    async with open_mock_mcp(**mock_options) as mock, run_gateway(make_config(dsn, settings=SETTINGS)) as gw:
        await _register(gw, mock)
        yield gw, mock


def _headers(key: str, **extra: str) -> dict[str, str]:
    headers = {"authorization": f"Bearer {key}", "accept": JSON_AND_SSE, "content-type": "application/json"}
    headers.update({k.replace("_", "-").lower(): v for k, v in extra.items()})
    return headers


def _rpc(method: str, id: int = 1, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": params}


def _init() -> dict[str, Any]:
    client = {"name": "t", "version": "1"}
    return _rpc("initialize", protocolVersion="2025-06-18", capabilities={}, clientInfo=client)


def _call(name: str, id: int = 2, **arguments: Any) -> dict[str, Any]:
    return _rpc("tools/call", id, name=name, arguments=arguments)


async def _session(client: httpx.AsyncClient, key: str, path: str = PATH) -> str:
    response = await client.post(path, headers=_headers(key, accept="application/json"), json=_init())
    assert response.status_code == 200, response.text
    return response.headers["mcp-session-id"]


def _refused(response: httpx.Response, status: int, code: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}


async def _tool_calls(gw: RunningGateway) -> list[Any]:
    c = t.mcp_tool_calls
    return list(
        await gw.state.services.store.run(
            lambda conn: conn.execute(sa.select(c).order_by(c.c.id)).mappings().all()
        )
    )


@pytest.mark.parametrize("modern_upstream", [False, True], ids=["session-upstream", "modern-upstream"])
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_sdk_client_through_the_proxy(sqlite_dsn: str, mode: str, modern_upstream: bool) -> None:
    async with _proxied(sqlite_dsn, modern=modern_upstream) as (gw, mock):
        async with _client(gw.url, gw.api_key(), mode) as client:
            tools = await client.list_tools()
            assert {tool.name for tool in tools.tools} == {"echo", "fail", "slow", "big"}
            echoed = await client.call_tool("echo", {"text": "hello"})
            assert echoed.structured_content == {"text": "hello"}
            assert not echoed.is_error
            failed = await client.call_tool("fail", {"reason": "broken on purpose"})
            assert failed.is_error
            assert "broken on purpose" in failed.content[0].text
        assert mock.rpc("tools/call"), "the calls reached the upstream"
        # one upstream session carried all the calls (sealed in the client's token, or kept per key)
        assert len({r.session_id for r in mock.rpc("tools/call")}) == 1


async def test_tool_call_errors_and_timeouts_raw(sqlite_dsn: str) -> None:
    async with _proxied(sqlite_dsn) as (gw, mock):
        key, c = gw.api_key(), gw.client
        token = await _session(c, key)
        h = _headers(key, mcp_session_id=token, accept="application/json")
        # an unknown tool: the upstream's answer passes through (the SDK reports it as a tool error result)
        unknown = await c.post(PATH, headers=h, json=_call("nope"))
        assert unknown.status_code == 200
        assert unknown.json()["id"] == 2
        # the slow tool against settings.mcp.call_timeout (1 s): 502 without id, the session still works
        slow = await c.post(PATH, headers=h, json=_call("slow", seconds=30))
        _refused(slow, 502, -32603, "upstream MCP server unavailable")
        assert mock.rpc("notifications/cancelled")
        echoed = await c.post(PATH, headers=h, json=_call("echo", 5, text="again"))
        assert echoed.json()["result"]["structuredContent"] == {"text": "again"}
        # the SSE answer carries the same message
        sse = await c.post(
            PATH,
            headers=_headers(key, mcp_session_id=token, accept="text/event-stream"),
            json=_call("echo", 6, text="streamed"),
        )
        assert sse.headers["content-type"].startswith("text/event-stream")
        assert b'"streamed"' in sse.content
        # GET offers no stream
        assert (await c.get(PATH, headers=_headers(key, mcp_session_id=token))).status_code == 405
        # DELETE ends the upstream session too
        assert (await c.delete(PATH, headers=_headers(key, mcp_session_id=token))).status_code == 204
        assert any(r.http_method == "DELETE" for r in mock.received)


async def test_upstream_session_expiry_is_transparent(sqlite_dsn: str) -> None:
    async with _proxied(sqlite_dsn) as (gw, mock):
        async with _client(gw.url, gw.api_key(), "legacy") as client:
            assert (await client.call_tool("echo", {"text": "one"})).structured_content == {"text": "one"}
            mock.expire_sessions()
            assert (await client.call_tool("echo", {"text": "two"})).structured_content == {"text": "two"}
            # the renewed upstream session is remembered: no third initialize
            assert (await client.call_tool("echo", {"text": "three"})).structured_content == {"text": "three"}
        sids = [r.session_id for r in mock.rpc("tools/call")]
        old, new = sids[0], sids[-1]
        assert sids == [old, old, new, new]
        assert old != new


async def test_resolution_and_access_statuses(sqlite_dsn: str) -> None:
    async with _proxied(sqlite_dsn) as (gw, _mock):
        org = await default_org(gw)
        member = await user_key(gw, org, await add_user(gw, org, "member@example.com"))
        c, admin_key = gw.client, gw.api_key()
        # unknown alias: 404, also for the stateless era
        _refused(
            await c.post(f"{API}/mcp/nothing", headers=_headers(member), json=_init()),
            404,
            -32600,
            "unknown MCP server",
        )
        # a global server without the org's grant: 403 (the system admin passes)
        denied = "access denied to MCP server"
        _refused(await c.post(PATH, headers=_headers(member), json=_init()), 403, -32600, denied)
        server_id = gw.state.services.mcp.registry.servers[0].id
        grants = f"{API}/orgs/{org}/mcp-access"
        granted = await c.put(grants, headers=bearer(admin_key), json={"servers": [server_id]})
        assert granted.status_code == 200, granted.text
        token = await _session(c, member)
        in_session = _headers(member, mcp_session_id=token)
        listed = await c.post(PATH, headers=in_session, json=_rpc("tools/list", 3))
        assert listed.status_code == 200
        assert len(listed.json()["result"]["tools"]) == 4
        # an open session loses access at once when the grant goes
        await c.put(grants, headers=bearer(admin_key), json={"servers": []})
        _refused(await c.post(PATH, headers=in_session, json=_rpc("tools/list", 4)), 403, -32600, denied)
        # disabled: 503
        off = await c.patch(f"{API}/mcp-servers/{server_id}/deactivate", headers=bearer(admin_key))
        assert off.status_code == 200, off.text
        disabled = await c.post(PATH, headers=_headers(admin_key), json=_init())
        _refused(disabled, 503, -32603, "MCP server is disabled")
        # an org server of the same alias shadows the global one for that org, without a grant
        async with open_mock_mcp() as other:
            await _register(gw, other, "tools", f"/orgs/{org}/mcp-servers")
            token = await _session(c, member)
            in_session = _headers(member, mcp_session_id=token)
            echoed = await c.post(PATH, headers=in_session, json=_call("echo", text="org"))
            assert echoed.status_code == 200, echoed.text
            assert len(other.rpc("tools/call")) == 1
        # the built-in server is not reachable through the proxy path shape of another alias
        assert (await c.post(f"{API}/mcp/a/b", headers=_headers(member), json=_init())).status_code == 404


async def test_one_session_served_by_two_gateway_processes(sqlite_dsn: str) -> None:
    config = make_config(sqlite_dsn, settings=SETTINGS)
    async with open_mock_mcp() as mock, run_gateway(config) as a:
        await _register(a, mock)
        key = a.api_key()
        async with run_gateway(config) as b:
            token = await _session(a.client, key)
            h = _headers(key, mcp_session_id=token, accept="application/json")
            for gw, text in ((b, "on b"), (a, "on a"), (b, "b again")):
                answer = await gw.client.post(PATH, headers=h, json=_call("echo", text=text))
                assert answer.status_code == 200, answer.text
                assert answer.json()["result"]["structuredContent"] == {"text": text}
            # one upstream session across both processes
            assert len({r.session_id for r in mock.rpc("tools/call")}) == 1
            # after the upstream session expires, A renews it and B renews once on its own (it cannot know
            # A's renewal: the client's token still names the old session); both then keep their renewal
            mock.expire_sessions()
            for gw in (a, b, a, b):
                answer = await gw.client.post(PATH, headers=h, json=_call("echo", text="x"))
                assert answer.json()["result"]["structuredContent"] == {"text": "x"}
            calls = [r.session_id for r in mock.rpc("tools/call")][3:]
            answered = [sid for sid in calls if sid not in mock.expired]
            a_sid, b_sid, a_again, b_again = answered
            assert a_sid == a_again
            assert b_sid == b_again
            assert a_sid != b_sid


async def test_usage_rows_and_metrics(sqlite_dsn: str) -> None:
    async with _proxied(sqlite_dsn) as (gw, _mock):
        counted = [
            ("voidllm_mcp_tool_calls_total", {"server": "tools", "tool": "echo", "status": "success"}),
            ("voidllm_mcp_tool_calls_total", {"server": "tools", "tool": "fail", "status": "error"}),
            ("voidllm_mcp_tool_calls_total", {"server": "tools", "tool": "slow", "status": "timeout"}),
            ("voidllm_mcp_transport_errors_total", {"server": "tools", "error_type": "timeout"}),
        ]
        before = [metric_sample(name, **labels) for name, labels in counted]
        key = gw.api_key()
        token = await _session(gw.client, key)
        h = _headers(key, mcp_session_id=token, accept="application/json")
        secret = "argument-text-never-stored"
        for body in (
            _call("echo", text=secret),
            _call("fail", reason=secret),
            _call("slow", seconds=30),
            _rpc("tools/list"),
        ):
            await gw.client.post(PATH, headers=h, json=body)
        assert [metric_sample(name, **labels) for name, labels in counted] == [b + 1 for b in before]
        assert metric_sample("voidllm_mcp_tool_call_duration_seconds_count", server="tools", tool="slow") >= 1
        rows: list[Any] = []
        for _ in range(200):  # the writer flushes every 50 ms
            rows = await _tool_calls(gw)
            if len(rows) == 3:
                break
            await trio.sleep(0.02)
        assert [(r["tool_name"], r["status"]) for r in rows] == [
            ("echo", "success"),
            ("fail", "error"),
            ("slow", "timeout"),
        ]
        identity = gw.state.keys.authenticate(f"Bearer {key}")
        for row in rows:
            who = (identity.key_id, identity.org_id, identity.user_id)
            assert (row["key_id"], row["org_id"], row["user_id"]) == who
            assert row["server_alias"] == "tools"
            assert row["code_mode"] is False
            assert secret not in repr(dict(row))
        assert rows[2]["duration_ms"] >= 900
        assert secret.encode() not in generate_latest(REGISTRY)


async def test_a_yaml_server_is_proxied(sqlite_dsn: str) -> None:
    async with open_mock_mcp() as mock:
        servers = f"mcp_servers:\n  - {{name: Files, alias: files, url: '{mock.url}'}}\n"
        async with run_gateway(make_config(sqlite_dsn, servers, settings=SETTINGS)) as gw:
            async with _client(gw.url, gw.api_key(), "legacy", f"{API}/mcp/files") as client:
                echoed = await client.call_tool("echo", {"text": "from yaml"})
                assert echoed.structured_content == {"text": "from yaml"}
    assert len(mock.rpc("tools/call")) == 1


EXAMPLES = Path(__file__).parent.parent / "examples" / "mcp"


def test_ide_config_example_points_at_the_builtin_server() -> None:
    servers = json.loads((EXAMPLES / "ide-config.json").read_text())["mcpServers"]
    assert servers["voidllm"]["url"] == "http://127.0.0.1:8080/api/v1/mcp/voidllm"
    assert all(s["headers"]["Authorization"].startswith("Bearer ") for s in servers.values())


async def test_every_entry_of_the_ide_config_works(sqlite_dsn: str) -> None:
    """Issue 13 point 7: each server of the example, pointed at a real gateway with a real key, lists
    tools."""
    servers = json.loads((EXAMPLES / "ide-config.json").read_text())["mcpServers"]
    assert servers["voidllm-code-mode"]["url"] == "http://127.0.0.1:8080/api/v1/mcp"
    async with run_gateway(make_config(sqlite_dsn, settings="mcp:\n  code_mode:\n    enabled: true")) as gw:
        for name, server in servers.items():
            url = server["url"].replace("http://127.0.0.1:8080", gw.url)
            headers = {k: v.replace("${VOIDLLM_API_KEY}", gw.api_key()) for k, v in server["headers"].items()}
            http = httpx2.AsyncClient(headers=headers, timeout=10)
            async with Client(streamable_http_client(url, http_client=http), raise_exceptions=True) as client:
                assert (await client.list_tools()).tools, name


@pytest.mark.slow
async def test_client_example_explains_failures_without_a_traceback(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        cases = [
            ("vl_uk_" + "a" * 48, gw.url + "/api/v1/mcp/voidllm", "refused the request: invalid API key"),
            (gw.api_key(), "http://127.0.0.1:9/api/v1/mcp/voidllm", "cannot connect to"),
        ]
        for key, url, expected in cases:
            argv = [sys.executable, str(EXAMPLES / "client.py"), key, url]
            result = await trio.to_thread.run_sync(
                partial(subprocess.run, argv, capture_output=True, text=True, timeout=60, check=False)
            )
            assert result.returncode == 1, result.stderr
            assert expected in result.stderr, result.stderr
            assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("legacy", [False, True], ids=["auto", "legacy"])
@pytest.mark.parametrize("path", ["/api/v1/mcp/voidllm", "/api/v1/mcp"], ids=["builtin", "code-mode"])
async def test_client_example_lists_tools_and_models(sqlite_dsn: str, legacy: bool, path: str) -> None:
    models = "models:\n  - {name: gpt-4o, provider: openai, base_url: 'http://127.0.0.1:9/v1'}\n"
    config = make_config(sqlite_dsn, models, settings="mcp:\n  code_mode:\n    enabled: true")
    async with run_gateway(config) as gw:
        argv = [sys.executable, str(EXAMPLES / "client.py"), gw.api_key(), gw.url + path]
        result = await trio.to_thread.run_sync(
            lambda: subprocess.run(
                argv + (["--legacy"] if legacy else []),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        )
    assert result.returncode == 0, result.stderr
    first = "list_models, " if path.endswith("voidllm") else "list_servers, search_tools, execute_code"
    assert result.stdout.startswith("tools: " + first)
    assert '"gpt-4o"' in result.stdout
