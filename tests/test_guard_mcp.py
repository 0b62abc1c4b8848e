"""The prompt guard on MCP tool calls: the proxy (``/api/v1/mcp/<alias>``, the ``mcp`` SDK client and raw
JSON-RPC) and Code Mode's tool calls (``/api/v1/mcp``), in each mode; results redacted with ``responses``.
The mock MCP server's ``echo`` answers what it received, so its answer shows what left the gateway."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx2
import orjson
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.gateway import RunningGateway, metric_sample
from tests.guard_samples import SAMPLES
from tests.mcp_calls import tools_gateway
from voidllm.guard import kinds
from voidllm.testing.mock_mcp import MockMcp

EMAIL = SAMPLES[kinds.EMAIL][1]
CARD = SAMPLES[kinds.CREDIT_CARD][1]
SLACK = SAMPLES[kinds.SLACK_TOKEN][1]
SETTINGS = """
mcp:
  allow_private_urls: true
  call_timeout: 5s
  health:
    enabled: false
  code_mode:
    enabled: true
    timeout: 2s
usage:
  flush_interval: 0.05s
"""


def guard(detectors: str, *, responses: bool = False) -> str:
    return SETTINGS + f"guard:\n  detectors: {detectors}\n  responses: {'true' if responses else 'false'}\n"


def gateway(dsn: str, settings: str) -> AbstractAsyncContextManager[tuple[RunningGateway, MockMcp]]:
    return tools_gateway(dsn, settings, reverse=True)


def client(gw: RunningGateway, path: str = "/api/v1/mcp/tools") -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {gw.api_key()}"}, timeout=10)
    return Client(streamable_http_client(gw.url + path, http_client=http), mode="auto", raise_exceptions=True)


async def echo(mcp: Client, text: str, tool: str = "echo") -> Any:
    result = await mcp.call_tool(tool, {"text": text})
    assert not result.is_error
    return result.structured_content


@pytest.mark.parametrize(
    ("detectors", "expected"),
    [
        ("{}", f"mail {EMAIL}, card {CARD}"),
        ("{pii: flag}", f"mail {EMAIL}, card {CARD}"),
        ("{pii: redact}", "mail [EMAIL_1], card [CREDIT_CARD_1]"),
        ("{email: redact, credit_card: flag}", f"mail [EMAIL_1], card {CARD}"),
    ],
)
async def test_proxied_tool_arguments_in_each_mode(sqlite_dsn: str, detectors: str, expected: str) -> None:
    async with gateway(sqlite_dsn, guard(detectors)) as (gw, _mock), client(gw) as mcp:
        assert await echo(mcp, f"mail {EMAIL}, card {CARD}") == {"text": expected}


async def test_proxied_block_is_a_json_rpc_error_and_nothing_leaves(sqlite_dsn: str) -> None:
    before = metric_sample("voidllm_guard_blocked_total", route="mcp")
    async with gateway(sqlite_dsn, guard("{credentials: block, pii: redact}")) as (gw, mock):
        async with client(gw) as mcp:
            with pytest.raises(MCPError) as refused:
                await mcp.call_tool("echo", {"text": f"token {SLACK} for {EMAIL}"})
            assert refused.value.error.code == -32602
            assert "content_blocked" not in refused.value.error.message
            assert refused.value.error.message.endswith("it contains slack_token")
            assert refused.value.error.data == {"code": "content_blocked", "kinds": ["slack_token"]}
            assert SLACK not in str(refused.value.error)
        assert mock.rpc("tools/call") == []
        # raw JSON-RPC: the error answers the request's id, with HTTP 200
        headers = {
            "authorization": f"Bearer {gw.api_key()}",
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
        }
        init = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        }
        opened = await gw.client.post(
            "/api/v1/mcp/tools",
            headers=headers,
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init},
        )
        headers["mcp-session-id"] = opened.headers["mcp-session-id"]
        headers["accept"] = "application/json"
        call = {"name": "echo", "arguments": {"nested": [{"text": SLACK}]}}
        raw = await gw.client.post(
            "/api/v1/mcp/tools",
            headers=headers,
            json={"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": call},
        )
        assert raw.status_code == 200
        assert raw.json()["id"] == 7
        assert raw.json()["error"]["data"] == {"code": "content_blocked", "kinds": ["slack_token"]}
        assert SLACK.encode() not in raw.content
        assert mock.rpc("tools/call") == []
    assert metric_sample("voidllm_guard_blocked_total", route="mcp") - before == 2
    assert (
        metric_sample("voidllm_guard_findings_total", kind="slack_token", action="block", direction="request")
        >= 2
    )


async def test_proxied_results_are_redacted_with_responses(sqlite_dsn: str) -> None:
    redacted = metric_sample(
        "voidllm_guard_findings_total", kind="email", action="redact", direction="response"
    )
    async with gateway(sqlite_dsn, guard("{email: redact}", responses=True)) as (gw, _mock):
        async with client(gw) as mcp:
            result = await mcp.call_tool("reverse", {"text": EMAIL[::-1] + " :ot etirw"})
            assert result.structured_content == {"text": "write to: [EMAIL_1]"}
            assert EMAIL not in orjson.dumps(result.model_dump()).decode()
    after = metric_sample("voidllm_guard_findings_total", kind="email", action="redact", direction="response")
    assert after - redacted == 2  # the text content and the structured content


async def test_results_are_untouched_without_responses(sqlite_dsn: str) -> None:
    async with gateway(sqlite_dsn, guard("{email: redact}")) as (gw, _mock), client(gw) as mcp:
        assert await echo(mcp, EMAIL[::-1], tool="reverse") == {"text": EMAIL}


def execute(code: str) -> dict[str, Any]:
    return {"code": code}


async def run(mcp: Client, code: str) -> tuple[bool, Any]:
    result = await mcp.call_tool("execute_code", {"code": code})
    text = result.content[0].text  # type: ignore[union-attr]
    return bool(result.is_error), (text if result.is_error else orjson.loads(text))


async def test_code_mode_tool_calls_are_guarded(sqlite_dsn: str) -> None:
    settings = guard("{email: redact, slack_token: block}", responses=True)
    async with gateway(sqlite_dsn, settings) as (gw, mock), client(gw, "/api/v1/mcp") as mcp:
        code = f"""
            const a = await tools.tools.echo({{text: "to {EMAIL}"}});
            const b = await tools.tools.reverse({{text: "{EMAIL[::-1]}"}});
            return [a.text, b.text];
        """
        failed, answer = await run(mcp, code)
        assert not failed, answer
        assert answer["result"] == ["to [EMAIL_1]", "[EMAIL_1]"]
        calls = len(mock.rpc("tools/call"))
        blocked = f"""
            try {{ await tools.tools.echo({{text: "{SLACK}"}}); }} catch (e) {{ return String(e.message); }}
        """
        failed, answer = await run(mcp, blocked)
        assert not failed, answer
        assert answer["result"] == (
            "tools/echo: the request was blocked by the prompt guard: it contains slack_token"
        )
        assert SLACK not in orjson.dumps(answer).decode()
        assert len(mock.rpc("tools/call")) == calls


@pytest.mark.parametrize("detectors", ["{}", "{pii: flag}"], ids=["off", "flag"])
async def test_code_mode_tool_arguments_leave_as_written_when_off_or_flagged(
    sqlite_dsn: str, detectors: str
) -> None:
    """The echo answers what reached the upstream: the values as the script wrote them; flag counts them."""
    labels = {"action": "flag", "direction": "request"}
    before = {
        kind: metric_sample("voidllm_guard_findings_total", kind=kind, **labels)
        for kind in ("email", "credit_card")
    }
    text = f"mail {EMAIL}, card {CARD}, again {EMAIL}"
    code = f"return (await tools.tools.echo({{text: {orjson.dumps(text).decode()}}})).text;"
    async with gateway(sqlite_dsn, guard(detectors)) as (gw, mock), client(gw, "/api/v1/mcp") as mcp:
        failed, answer = await run(mcp, code)
        assert not failed, answer
        assert answer["result"] == text
        assert len(mock.rpc("tools/call")) == 1
    counted = {
        kind: metric_sample("voidllm_guard_findings_total", kind=kind, **labels) - n
        for kind, n in before.items()
    }
    assert counted == (
        {"email": 0, "credit_card": 0} if detectors == "{}" else {"email": 2, "credit_card": 1}
    )
