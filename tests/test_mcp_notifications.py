"""Issue 18 point 5: progress and log notifications of an upstream MCP server reach the client through the
proxy (/api/v1/mcp/<alias>), event by event, before the result.

The upstream is the SDK-built mock (``voidllm.testing.mock_mcp``) with its ``progress`` tool, which sends a
progress notification and a log message per step; with ``pacing.paced`` each step waits until the test
releases it. Checked: the official ``mcp`` SDK client with a progress callback (both protocol eras, both
kinds of upstream) sees every notification in order before the result; over raw HTTP each event reaches the
client while the upstream is still held at its next step (so nothing is buffered); a client that accepts
only JSON gets the result alone; an upstream that stops answering after a notification ends the stream
with an error response; and the tool call is one usage row, with no notification content in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
import httpx
import httpx2
import orjson
import pytest
import sqlalchemy as sa
import trio
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import LoggingMessageNotificationParams

from tests.gateway import RunningGateway
from tests.mcp_calls import STATELESS, stateless_meta, tools_gateway
from tests.polling import poll_until
from voidllm.sse import EventFramer, parse_event
from voidllm.store import tables as t
from voidllm.testing.mock_mcp import MockMcp
from voidllm.web.mcp import mount_mcp

PATH = "/api/v1/mcp/tools"
SETTINGS = """
mcp:
  allow_private_urls: true
  call_timeout: 1s
  health:
    enabled: false
usage:
  flush_interval: 0.05s
"""
TOKEN = "progress-token-7f"
STEPS = 3


def _proxied(dsn: str, **mock_options: Any) -> AbstractAsyncContextManager[tuple[RunningGateway, MockMcp]]:
    return tools_gateway(dsn, SETTINGS, chatty=True, **mock_options)


def _headers(key: str, accept: str, session: str | None = None) -> dict[str, str]:
    headers = {"authorization": f"Bearer {key}", "accept": accept, "content-type": "application/json"}
    if session is not None:
        headers["mcp-session-id"] = session
    return headers


async def _session(gw: RunningGateway) -> str:
    client = {"name": "t", "version": "1"}
    params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client}
    opened = await gw.client.post(
        PATH,
        headers=_headers(gw.api_key(), "application/json"),
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params},
    )
    assert opened.status_code == 200, opened.text
    return opened.headers["mcp-session-id"]


def _progress_call(id: int, token: str | None = TOKEN, steps: int = STEPS) -> dict[str, Any]:
    params: dict[str, Any] = {"name": "progress", "arguments": {"steps": steps}}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}


def _progress(step: int) -> dict[str, Any]:
    params = {"progressToken": TOKEN, "progress": step, "total": STEPS}
    return {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}


def _log(step: int) -> dict[str, Any]:
    params = {"level": "info", "data": f"step {step} of {STEPS}"}
    return {"jsonrpc": "2.0", "method": "notifications/message", "params": params}


def _result(id: int) -> dict[str, Any]:
    text = f"{STEPS} steps done"
    result = {
        "content": [{"type": "text", "text": text}],
        "structuredContent": {"result": text},
        "isError": False,
    }
    return {"jsonrpc": "2.0", "id": id, "result": result}


async def _messages(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Each JSON-RPC message of an SSE answer, as soon as its event is complete."""
    framer = EventFramer()
    async for chunk in response.aiter_bytes():
        for raw in framer.feed(chunk):
            event = parse_event(raw)
            assert event is not None, raw
            assert event.type == b"message", raw
            yield orjson.loads(event.data)


async def _tool_calls(gw: RunningGateway) -> list[Any]:
    c = t.mcp_tool_calls
    rows = await gw.state.services.store.run(
        lambda conn: conn.execute(sa.select(c).order_by(c.c.id)).mappings().all()
    )
    return list(rows)


async def _one_tool_call(gw: RunningGateway) -> Any:
    async def written() -> bool:
        return bool(await _tool_calls(gw))

    with trio.fail_after(10):
        await poll_until(written)  # the usage writer flushes every 50 ms
    rows = await _tool_calls(gw)
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize("modern_upstream", [False, True], ids=["session-upstream", "modern-upstream"])
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_sdk_client_gets_every_notification_before_the_result(
    sqlite_dsn: str, mode: str, modern_upstream: bool
) -> None:
    seen: list[tuple[Any, ...]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(("progress", progress, total))

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        seen.append(("log", params.level, params.data))

    async with _proxied(sqlite_dsn, modern=modern_upstream) as (gw, _mock):
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {gw.api_key()}"}, timeout=10)
        transport = streamable_http_client(gw.url + PATH, http_client=http)
        client = Client(
            transport, mode=mode, raise_exceptions=True, logging_callback=on_log, log_level="info"
        )
        async with client:
            result = await client.call_tool("progress", {"steps": STEPS}, progress_callback=on_progress)
            seen.append(("result", result.content[0].text))

    # A 2025 client's log messages come from a session-era upstream (logging/setLevel decides there); a
    # 2026-07-28 upstream sends them only to a request whose _meta opts in, which a 2025 client never sends.
    logs = not (mode == "legacy" and modern_upstream)
    expected: list[tuple[Any, ...]] = []
    for step in range(1, STEPS + 1):
        expected.append(("progress", step, STEPS))
        if logs:
            expected.append(("log", "info", f"step {step} of {STEPS}"))
    assert seen == [*expected, ("result", f"{STEPS} steps done")]


async def test_each_event_is_relayed_as_the_upstream_sends_it(sqlite_dsn: str) -> None:
    """Step N+1 is released only once the client has read step N's events: a relay that held them back
    until the result would never see step N+1 (and fail on the deadline)."""
    async with _proxied(sqlite_dsn) as (gw, mock):
        mock.pacing.paced = True
        key, session = gw.api_key(), await _session(gw)
        mock.pacing.release(1)  # the answer's headers go out with the first notification
        with trio.fail_after(10):
            async with gw.client.stream(
                "POST",
                PATH,
                headers=_headers(key, "application/json, text/event-stream", session),
                json=_progress_call(7),
            ) as response:
                assert response.status_code == 200
                assert response.headers["content-type"] == "text/event-stream"
                assert response.headers["cache-control"] == "no-cache"
                assert response.headers["x-accel-buffering"] == "no"
                messages = _messages(response)
                for step in range(1, STEPS + 1):
                    # the progress token went upstream unchanged: the upstream's notification carries it
                    assert await anext(messages) == _progress(step)
                    assert await anext(messages) == _log(step)
                    if step < STEPS:
                        mock.pacing.release(step + 1)
                assert await anext(messages) == _result(7)
                assert [m async for m in messages] == []  # the stream ends after the response
        row = await _one_tool_call(gw)
        assert (row["tool_name"], row["status"]) == ("progress", "success")
        assert "step" not in repr(dict(row))  # notifications are content: never stored


async def test_a_json_only_client_gets_the_result_alone(sqlite_dsn: str) -> None:
    async with _proxied(sqlite_dsn) as (gw, mock):
        key, session = gw.api_key(), await _session(gw)
        answer = await gw.client.post(
            PATH, headers=_headers(key, "application/json", session), json=_progress_call(8)
        )
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == _result(8)
        assert len(mock.rpc("tools/call")) == 1  # the upstream did run the tool (and notified)
        row = await _one_tool_call(gw)
        assert (row["tool_name"], row["status"]) == ("progress", "success")


async def test_progress_only_for_the_clients_own_token(sqlite_dsn: str) -> None:
    """Without a progressToken the client gets no progress (the upstream sends none either), only logs."""
    async with _proxied(sqlite_dsn) as (gw, _mock):
        key, session = gw.api_key(), await _session(gw)
        answer = await gw.client.post(
            PATH,
            headers=_headers(key, "application/json, text/event-stream", session),
            json=_progress_call(9, token=None),
        )
        assert answer.headers["content-type"] == "text/event-stream"
        messages = [orjson.loads(e.data) for e in _events(answer.content)]
        assert messages == [*(_log(step) for step in range(1, STEPS + 1)), _result(9)]


@pytest.mark.parametrize(("log_level", "logs"), [(None, False), ("warning", False), ("info", True)])
async def test_a_stateless_client_gets_log_messages_only_when_it_opted_in(
    sqlite_dsn: str, log_level: str | None, logs: bool
) -> None:
    """2026-07-28: log messages go only to a request whose _meta asks for them, at or above its level (the
    session-era upstream sends them regardless, so the gateway filters)."""
    async with _proxied(sqlite_dsn) as (gw, _mock):
        call = _progress_call(11)
        call["params"]["_meta"] |= stateless_meta()
        if log_level is not None:
            call["params"]["_meta"]["io.modelcontextprotocol/logLevel"] = log_level
        headers = _headers(gw.api_key(), "application/json, text/event-stream")
        headers |= {"mcp-protocol-version": STATELESS, "mcp-method": "tools/call", "mcp-name": "progress"}
        answer = await gw.client.post(PATH, headers=headers, json=call)
        assert answer.headers["content-type"] == "text/event-stream", answer.text
        messages = [orjson.loads(e.data) for e in _events(answer.content)]
        expected = [
            m
            for step in range(1, STEPS + 1)
            for m in (_progress(step), _log(step))
            if logs or m["method"] != "notifications/message"
        ]
        result = _result(11)
        result["result"]["resultType"] = "complete"
        assert messages == [*expected, result]


async def test_an_upstream_that_stops_after_a_notification_ends_the_stream_with_an_error(
    sqlite_dsn: str,
) -> None:
    """The HTTP status went out with the first event, so the timeout (call_timeout, 1 s) is the response."""
    async with _proxied(sqlite_dsn) as (gw, mock):
        mock.pacing.paced = True
        key, session = gw.api_key(), await _session(gw)
        mock.pacing.release(1)  # step 2 is never released
        with trio.fail_after(10):
            answer = await gw.client.post(
                PATH,
                headers=_headers(key, "application/json, text/event-stream", session),
                json=_progress_call(10),
            )
        assert answer.status_code == 200
        messages = [orjson.loads(e.data) for e in _events(answer.content)]
        error = {"code": -32603, "message": "upstream MCP server unavailable"}
        assert messages == [_progress(1), _log(1), {"jsonrpc": "2.0", "id": 10, "error": error}]
        row = await _one_tool_call(gw)
        assert (row["tool_name"], row["status"]) == ("progress", "timeout")


def _events(body: bytes) -> list[Any]:
    framer = EventFramer()
    events = [parse_event(raw) for raw in framer.feed(body)]
    assert framer.tail() == b""
    return [event for event in events if event is not None]


async def test_a_client_that_stops_reading_does_not_make_the_upstream_call_time_out(
    sqlite_dsn: str,
) -> None:
    """The client takes the answer's head, then reads nothing (its send never returns). The upstream's
    notifications are queued, not waited on, so the call completes (usage: success, not timeout) and the
    request ends once ``write_timeout`` after it has passed, without the response having gone out."""
    async with _proxied(sqlite_dsn) as (gw, mock):
        endpoint = mount_mcp(None, gw.state).resolvers[-1](PATH)
        assert endpoint is not None
        endpoint = attrs.evolve(endpoint, write_timeout=1.0)
        call = _progress_call(12)
        call["params"]["_meta"] |= stateless_meta()
        body = orjson.dumps(call)
        headers = _headers(gw.api_key(), "application/json, text/event-stream")
        headers |= {
            "mcp-protocol-version": STATELESS,
            "mcp-method": "tools/call",
            "mcp-name": "progress",
            "content-length": str(len(body)),
        }
        scope = {
            "type": "http",
            "method": "POST",
            "path": PATH,
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        }
        received = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict[str, Any]] = []
        cut_off = trio.Event()

        async def receive() -> dict[str, Any]:
            if received:
                return received.pop(0)
            await trio.sleep_forever()  # still connected: it only stopped reading
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body":
                try:
                    await trio.sleep_forever()  # the client's receive window is full
                finally:
                    cut_off.set()

        with trio.fail_after(10):
            await endpoint(scope, receive, send)
        assert cut_off.is_set()
        assert len(mock.rpc("tools/call")) == 1
        assert (sent[0]["type"], sent[0]["status"]) == ("http.response.start", 200)
        assert all(m.get("more_body", False) for m in sent[1:])  # the stream was never ended
        row = await _one_tool_call(gw)
        assert (row["tool_name"], row["status"]) == ("progress", "success")
