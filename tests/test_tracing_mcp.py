"""Traces of MCP calls: a proxied ``tools/call`` is an ``execute_tool`` span under its request's, a Code Mode
execution an ``execute_tool execute_code`` span with its tool calls as children (their tasks are started from
the sandbox's worker thread), each upstream MCP request carries its tool call's ``traceparent``; and no span
holds the code, the arguments or the results."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson
import trio

from tests.gateway import RunningGateway
from tests.mcp_calls import stateless_headers, stateless_request, tools_gateway
from tests.otlp_receiver import OtlpSink, ReceivedSpan, children, otel_settings, receiver, trace_of
from voidllm.testing.mock_mcp import MockMcp

__all__ = ["receiver"]

SETTINGS = """
mcp:
  allow_private_urls: true
  call_timeout: 5s
  health:
    enabled: false
  code_mode:
    enabled: true
    timeout: 5s
"""


def gateway(dsn: str, receiver: OtlpSink) -> AbstractAsyncContextManager[tuple[RunningGateway, MockMcp]]:
    return tools_gateway(dsn, SETTINGS + otel_settings(receiver.url))


async def call(
    gw: RunningGateway, path: str, tool: str, arguments: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    headers = {"authorization": f"Bearer {gw.api_key()}", **stateless_headers("tools/call", tool)}
    body = stateless_request("tools/call", 1, name=tool, arguments=arguments)
    response = await gw.client.post(path, headers=headers, json=body)
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"], dict(response.json())


async def wait_trace(receiver: OtlpSink, request_id: str, count: int) -> list[ReceivedSpan]:
    def done(spans: list[ReceivedSpan]) -> bool:
        try:
            return len(trace_of(spans, request_id)) >= count
        except StopIteration:
            return False

    with trio.fail_after(10):
        await receiver.wait_spans(done)
    return trace_of(receiver.spans, request_id)


def traceparents(mock: MockMcp) -> list[str]:
    return [r.headers.get("traceparent", "") for r in mock.received if r.rpc_method == "tools/call"]


async def test_a_code_mode_execution_has_its_two_tool_calls_as_children(
    sqlite_dsn: str, receiver: OtlpSink
) -> None:
    marker = f"zk-{uuid.uuid4().hex}"
    code = (
        f'const a = await tools.tools.echo({{text: "{marker}-1"}});\n'
        f'const b = await tools.tools.echo({{text: "{marker}-2"}});\n'
        f'return [a, b, "{marker}-3"];'
    )
    async with gateway(sqlite_dsn, receiver) as (gw, mock):
        request_id, answer = await call(gw, "/api/v1/mcp", "execute_code", {"code": code})
        assert marker in orjson.dumps(answer).decode()
        assert "isError" not in answer["result"] or answer["result"]["isError"] is False
        spans = await wait_trace(receiver, request_id, 4)
        sent = traceparents(mock)
    (server,) = [s for s in spans if s.kind == "SERVER"]
    assert server.attributes["url.path"] == "/api/v1/mcp"
    (execution,) = children(spans, server)
    assert (execution.name, execution.kind) == ("execute_tool execute_code", "INTERNAL")
    assert execution.attributes["gen_ai.operation.name"] == "execute_tool"
    assert execution.attributes["gen_ai.tool.name"] == "execute_code"
    assert execution.attributes["voidllm.outcome"] == "success"
    assert execution.attributes["voidllm.code_mode.tool_calls"] == 2
    tool_calls = children(spans, execution)
    assert [(s.name, s.kind) for s in tool_calls] == [("execute_tool echo", "INTERNAL")] * 2
    for span in tool_calls:
        assert span.attributes["gen_ai.tool.name"] == "echo"
        assert span.attributes["mcp.method.name"] == "tools/call"
        assert span.attributes["voidllm.mcp.server"] == "tools"
        assert span.attributes["voidllm.outcome"] == "success"
    assert sorted(p.rsplit("-", 1)[0] for p in sent) == sorted(
        f"00-{s.trace_id}-{s.span_id}" for s in tool_calls
    )
    assert all(marker.encode() not in body for body in receiver.bodies)


async def test_a_proxied_tool_call_is_an_execute_tool_span(sqlite_dsn: str, receiver: OtlpSink) -> None:
    marker = f"zk-{uuid.uuid4().hex}"
    async with gateway(sqlite_dsn, receiver) as (gw, mock):
        request_id, answer = await call(gw, "/api/v1/mcp/tools", "echo", {"text": marker})
        assert marker in orjson.dumps(answer).decode()
        spans = await wait_trace(receiver, request_id, 2)
        unknown_id, _ = await call(gw, "/api/v1/mcp/tools", f"no_such_{marker}", {})
        unknown = await wait_trace(receiver, unknown_id, 2)
        (sent,) = traceparents(mock)[:1]
    (server,) = [s for s in spans if s.kind == "SERVER"]
    (tool,) = children(spans, server)
    assert (tool.name, tool.kind) == ("execute_tool echo", "CLIENT")
    assert tool.attributes["gen_ai.tool.name"] == "echo"
    assert tool.attributes["voidllm.mcp.server"] == "tools"
    assert sent.rsplit("-", 1)[0] == f"00-{tool.trace_id}-{tool.span_id}"
    (refused,) = [s for s in unknown if s.kind != "SERVER"]
    assert refused.name == "execute_tool"  # a name no server has stays out of the trace
    assert "gen_ai.tool.name" not in refused.attributes
    assert refused.status == "ERROR"
    assert all(marker.encode() not in body for body in receiver.bodies)
