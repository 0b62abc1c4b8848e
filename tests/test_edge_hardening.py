"""The ASGI edge against hostile or failing requests (issue 12 point 4), on a real gateway and real sockets.

- A WebSocket upgrade, on any path and before authentication, is refused with 400 in the error envelope, and
  leaves nothing in the log (it used to answer 500 after two tracebacks).
- An exception that escapes a route (the proxy, an MCP endpoint, the admin API, Quart's own error handling,
  exception groups) is answered 500 ``internal_error`` in the envelope with the request id, and leaves one
  log line naming its type and path, never its message; once the response has started, the connection is
  closed instead.
- Header values sent as raw non-ASCII bytes get a 4xx (or are ignored), never a 500.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
import trio

from tests.gateway import RunningGateway, make_config, run_gateway
from voidllm.admin import export, orgs
from voidllm.mcp.gateway.server import McpEndpoint
from voidllm.proxy.handler import Proxy
from voidllm.web import errors

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

SECRET = "content-marker-7f3a9c"  # what an exception message could carry; must never reach a log line
MCP_PATH = "/api/v1/mcp/voidllm"
WEBSOCKET = (
    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


@pytest.fixture
async def gw(sqlite_dsn: str) -> AsyncIterator[RunningGateway]:
    async with run_gateway(make_config(sqlite_dsn)) as running:
        yield running


async def exchange(gw: RunningGateway, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """Send raw bytes, read one response with a Content-Length body: status, headers, body."""
    host, port = gw.url.removeprefix("http://").split(":")
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some()
            assert chunk, f"connection closed before a response: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *lines = head.split(b"\r\n")
        fields = (line.partition(b":") for line in lines)
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        while len(body) < int(headers.get(b"content-length", b"0")):
            chunk = await stream.receive_some()
            assert chunk, "connection closed before the end of the body"
            body += chunk
        await stream.aclose()
    return int(status_line.split()[1]), headers, body


def envelope(body: bytes, headers: dict[bytes, bytes] | httpx.Headers) -> dict[str, Any]:
    """The error object, checked to be the whole body and to carry the response's request id."""
    document = orjson.loads(body)
    assert set(document) == {"error"}, document
    error: dict[str, Any] = document["error"]
    request_id = headers[b"x-request-id"] if isinstance(headers, dict) else headers["x-request-id"]
    assert error["request_id"] == (request_id.decode() if isinstance(request_id, bytes) else request_id)
    return error


def unhandled_lines(logs: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in logs.records if r.getMessage() == "unhandled error"]


def assert_one_quiet_line(logs: pytest.LogCaptureFixture, error_type: str, path: str) -> None:
    """One ``unhandled error`` line with the type and path, no traceback and no exception text anywhere."""
    (line,) = unhandled_lines(logs)
    assert (line.levelno, line.error_type, line.path) == (logging.ERROR, error_type, path)  # type: ignore[attr-defined]
    assert not [r for r in logs.records if r.exc_info], "a traceback was logged"
    assert SECRET not in logs.text
    assert "Traceback" not in logs.text


def assert_quiet(logs: pytest.LogCaptureFixture) -> None:
    assert not unhandled_lines(logs)
    assert "Traceback" not in logs.text


# -- WebSocket upgrades ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/v1/chat/completions", MCP_PATH, "/api/v1/orgs"])
async def test_websocket_upgrade_is_refused_with_400_and_no_traceback(
    gw: RunningGateway, logs: pytest.LogCaptureFixture, path: str
) -> None:
    request = b"GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (path.encode(), WEBSOCKET)
    status, headers, body = await exchange(gw, request)
    assert status == 400
    error = envelope(body, headers)
    assert (error["code"], error["message"]) == ("bad_request", "WebSocket upgrades are not supported")
    assert not [r for r in logs.records if r.levelno >= logging.WARNING], logs.text
    health = await gw.client.get("/healthz")
    assert health.status_code == 200, "the gateway still serves"


# -- the last-resort handler -----------------------------------------------------------------------------


def failing(exc: BaseException) -> Any:
    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fail


def auth(gw: RunningGateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.api_key()}"}


@pytest.mark.parametrize(
    ("exc", "error_type"),
    [
        (RuntimeError(SECRET), "RuntimeError"),
        (
            ExceptionGroup("tasks", [ValueError(SECRET), KeyError(SECRET)]),
            "ExceptionGroup[KeyError, ValueError]",
        ),
    ],
)
async def test_proxy_failure_is_a_500_envelope_and_one_line(
    gw: RunningGateway,
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    exc: Exception,
    error_type: str,
) -> None:
    monkeypatch.setattr(Proxy, "_serve", failing(exc))
    response = await gw.client.post("/v1/chat/completions", headers=auth(gw), content=CHAT)
    assert response.status_code == 500
    error = envelope(response.content, response.headers)
    assert (error["code"], error["message"]) == ("internal_error", "internal server error")
    assert_one_quiet_line(logs, error_type, "/v1/chat/completions")
    (line,) = unhandled_lines(logs)
    assert line.request_id == response.headers["x-request-id"]  # type: ignore[attr-defined]


async def test_mcp_failure_is_a_500_envelope_and_one_line(
    gw: RunningGateway, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def version(self: McpEndpoint, scope: Any) -> str:
        raise LookupError(SECRET)

    monkeypatch.setattr(McpEndpoint, "_version", version)
    response = await gw.client.post(
        MCP_PATH,
        headers={**auth(gw), "Accept": "application/json, text/event-stream"},
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
    )
    assert response.status_code == 500
    document = response.json()  # the MCP endpoints answer in JSON-RPC, with the request id in the data
    assert (document["jsonrpc"], document["id"], document["error"]["code"]) == ("2.0", None, -32603)
    assert document["error"]["data"] == {"request_id": response.headers["x-request-id"]}
    assert_one_quiet_line(logs, "LookupError", MCP_PATH)


async def test_messages_failure_is_a_500_in_anthropics_shape(
    gw: RunningGateway, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Proxy, "_serve", failing(RuntimeError(SECRET)))
    response = await gw.client.post("/v1/messages", headers=auth(gw), content=CHAT)
    assert response.status_code == 500
    assert response.json() == {
        "type": "error",
        "error": {"type": "api_error", "message": "internal server error"},
        "request_id": response.headers["x-request-id"],
    }
    assert_one_quiet_line(logs, "RuntimeError", "/v1/messages")


async def test_admin_failure_is_a_500_envelope_and_one_line(
    gw: RunningGateway, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orgs, "list_orgs", failing(KeyError(SECRET)))
    response = await gw.client.get("/api/v1/orgs", headers=auth(gw))
    assert response.status_code == 500
    assert envelope(response.content, response.headers)["code"] == "internal_error"
    assert_one_quiet_line(logs, "KeyError", "/api/v1/orgs")


async def test_failure_in_quarts_error_handling_reaches_the_edge(
    sqlite_dsn: str, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error handler itself fails: Quart would log the traceback and answer its own 500 page."""
    monkeypatch.setattr(orgs, "list_orgs", failing(KeyError(SECRET)))
    monkeypatch.setattr(errors, "_unexpected", failing(LookupError(SECRET)))  # registered at app assembly
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        response = await gw.client.get("/api/v1/orgs", headers=auth(gw))
    assert response.status_code == 500
    assert envelope(response.content, response.headers)["code"] == "internal_error"
    assert_one_quiet_line(logs, "ExceptionGroup[LookupError]", "/api/v1/orgs")


async def test_failure_after_the_response_started_closes_the_connection(
    gw: RunningGateway, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_export(*args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"created_at,model\r\n"
            raise OSError(SECRET)

        return chunks()

    monkeypatch.setattr(export, "export_usage", broken_export)
    org_id = (await gw.client.get("/api/v1/orgs", headers=auth(gw))).json()["data"][0]["id"]
    url = f"/api/v1/orgs/{org_id}/usage/export?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"
    async with gw.client.stream("GET", url, headers=auth(gw)) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            await response.aread()
    assert_one_quiet_line(logs, "ExceptionGroup[OSError]", f"/api/v1/orgs/{org_id}/usage/export")
    assert (await gw.client.get("/healthz")).status_code == 200


# -- header values that are not ASCII --------------------------------------------------------------------

NON_ASCII = "é€".encode()


def raw_request(method: bytes, path: str, headers: dict[bytes, bytes], body: bytes = b"") -> bytes:
    lines = b"".join(b"%s: %s\r\n" % item for item in {b"Host": b"t", **headers}.items())
    return b"%s %s HTTP/1.1\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (
        method,
        path.encode(),
        lines,
        len(body),
        body,
    )


CHAT = b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}'
PING = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
JSON = {b"Content-Type": b"application/json", b"Accept": b"application/json, text/event-stream"}


async def test_non_ascii_credentials_are_401_in_each_envelope(
    gw: RunningGateway, logs: pytest.LogCaptureFixture
) -> None:
    key = gw.api_key().encode()
    for value in (b"Bearer " + key + NON_ASCII, b"Bearer " + NON_ASCII, NON_ASCII):
        bad = {**JSON, b"Authorization": value}
        status, headers, body = await exchange(gw, raw_request(b"POST", "/v1/chat/completions", bad, CHAT))
        assert (status, envelope(body, headers)["code"]) == (401, "unauthorized")
        status, headers, body = await exchange(gw, raw_request(b"GET", "/api/v1/orgs", bad))
        assert (status, envelope(body, headers)["code"]) == (401, "unauthorized")
        status, headers, body = await exchange(gw, raw_request(b"POST", MCP_PATH, bad, PING))
        assert (status, orjson.loads(body)["error"]["code"]) == (401, -32600)
    anthropic = {**JSON, b"x-api-key": key + NON_ASCII}
    status, _, body = await exchange(gw, raw_request(b"POST", "/v1/messages", anthropic, CHAT))
    assert (status, orjson.loads(body)["error"]["type"]) == (401, "authentication_error")
    assert_quiet(logs)


async def test_non_ascii_request_id_and_mcp_headers_are_never_a_500(
    gw: RunningGateway, logs: pytest.LogCaptureFixture
) -> None:
    key = b"Bearer " + gw.api_key().encode()
    anonymous = raw_request(b"GET", "/api/v1/orgs", {b"X-Request-Id": NON_ASCII})
    status, headers, body = await exchange(gw, anonymous)
    assert (status, envelope(body, headers)["code"]) == (401, "unauthorized")  # a fresh request id instead
    assert NON_ASCII not in headers[b"x-request-id"]
    status, headers, _ = await exchange(
        gw, raw_request(b"GET", "/api/v1/orgs", {b"Authorization": key, b"X-Request-Id": NON_ASCII})
    )
    assert status == 200
    mcp = {**JSON, b"Authorization": key}
    for name, value, expected in [
        (b"Mcp-Session-Id", NON_ASCII, 404),
        (b"MCP-Protocol-Version", NON_ASCII, 400),
        (b"Origin", b"http://" + NON_ASCII, 403),
        (b"Accept", NON_ASCII, 406),
    ]:
        status, _, body = await exchange(gw, raw_request(b"POST", MCP_PATH, {**mcp, name: value}, PING))
        assert status == expected, (name, status, body)
        assert "error" in orjson.loads(body)
    stateless = {**mcp, b"MCP-Protocol-Version": b"2026-07-28", b"Mcp-Method": NON_ASCII}
    stateless[b"Mcp-Name"] = NON_ASCII
    status, _, _ = await exchange(gw, raw_request(b"POST", MCP_PATH, stateless, PING))
    assert status == 400
    assert_quiet(logs)
