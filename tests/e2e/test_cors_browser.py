"""A web page of another origin calls the gateway from headless Chromium (issue 18 point 2, CORS).

A tiny page is served from a second local origin (its own port) that ``server.cors.allowed_origins`` lists;
in it, ``fetch`` calls the gateway with an ``Authorization`` header, so Chromium sends a real preflight first.
The page reads a chat completion, a stream, a 401 (status, body and ``X-Request-Id``), and an MCP session
(``Mcp-Session-Id`` read, then sent back with ``MCP-Protocol-Version`` on ``tools/list`` and ``DELETE``).
The same page served from an origin not listed (``localhost`` instead of ``127.0.0.1``) gets nothing: the
browser refuses every answer.

It needs no UI build: the gateway runs without one, and the test makes its own browser contexts.
"""

from __future__ import annotations

import http.server
import threading
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.servers import DEMO_MODEL, Gateway, start_gateway, stop_gateway

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

PAGE = b"<!doctype html><html lang=en><title>Another origin</title><p>A page that calls the gateway.</p>"

CALLS = """async ([gateway, key, model]) => {
    const auth = { Authorization: "Bearer " + key, "Content-Type": "application/json" };
    const chatBody = { model, messages: [{ role: "user", content: "hello" }] };
    const out = {};
    const chat = await fetch(gateway + "/v1/chat/completions",
        { method: "POST", headers: auth, body: JSON.stringify(chatBody) });
    out.chat = { status: chat.status, requestId: chat.headers.get("x-request-id"), body: await chat.json() };

    const stream = await fetch(gateway + "/v1/chat/completions",
        { method: "POST", headers: auth, body: JSON.stringify({ ...chatBody, stream: true }) });
    const reader = stream.body.getReader();
    let text = "";
    for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
    }
    out.stream = { status: stream.status, type: stream.headers.get("content-type"), text };

    const refused = await fetch(gateway + "/v1/chat/completions", { method: "POST",
        headers: { ...auth, Authorization: "Bearer vl_uk_wrong" }, body: JSON.stringify(chatBody) });
    out.refused = { status: refused.status, requestId: refused.headers.get("x-request-id"),
                    body: await refused.json() };

    const models = await fetch(gateway + "/v1/models", { headers: { Authorization: "Bearer " + key } });
    out.models = { status: models.status, body: await models.json() };

    const mcpHeaders = { ...auth, Accept: "application/json, text/event-stream" };
    const mcpUrl = gateway + "/api/v1/mcp/voidllm";
    const clientInfo = { name: "page", version: "1" };
    const init = await fetch(mcpUrl, { method: "POST", headers: mcpHeaders, body: JSON.stringify({
        jsonrpc: "2.0", id: 1, method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo },
    }) });
    const session = init.headers.get("mcp-session-id");
    const initBody = await init.json();
    const inSession = { ...mcpHeaders, "Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-06-18" };
    const tools = await fetch(mcpUrl, { method: "POST", headers: inSession,
        body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }) });
    const toolsBody = await tools.json();
    const ended = await fetch(mcpUrl, { method: "DELETE", headers: inSession });
    out.mcp = { status: init.status, session, version: initBody.result.protocolVersion,
                tools: tools.status, toolCount: toolsBody.result.tools.length, deleted: ended.status };
    return out;
}"""

BLOCKED = """async ([gateway, key, model]) => {
    const tries = {
        chat: () => fetch(gateway + "/v1/chat/completions", { method: "POST",
            headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
            body: JSON.stringify({ model, messages: [{ role: "user", content: "hello" }] }) }),
        models: () => fetch(gateway + "/v1/models", { headers: { Authorization: "Bearer " + key } }),
        mcp: () => fetch(gateway + "/api/v1/mcp/voidllm", { method: "POST",
            headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" }, body: "{}" }),
    };
    const out = {};
    for (const [name, call] of Object.entries(tries)) {
        try { out[name] = "answered " + (await call()).status; } catch (error) { out[name] = error.name; }
    }
    return out;
}"""


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_port() -> Iterator[int]:
    """A second local origin serving :data:`PAGE`: ``http://127.0.0.1:<port>`` (and ``localhost``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def cors_gateway(tmp_path_factory: pytest.TempPathFactory, page_port: int) -> Iterator[Gateway]:
    """A gateway that lets pages of ``http://127.0.0.1:<page_port>`` call it."""
    server_yaml = f'  cors:\n    allowed_origins: ["http://127.0.0.1:{page_port}"]\n'
    directory = tmp_path_factory.mktemp("cors-gateway")
    running = start_gateway(directory, "http://127.0.0.1:9", server_yaml=server_yaml)
    yield running
    stop_gateway(running)


def open_page(browser: Browser, url: str, console: list[str]) -> Page:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    context.on("console", lambda msg: console.append(msg.text) if msg.type == "error" else None)
    page = context.new_page()
    page.goto(url)
    return page


def test_a_page_of_a_listed_origin_reads_every_answer(
    browser: Browser, cors_gateway: Gateway, page_port: int
) -> None:
    console: list[str] = []
    page = open_page(browser, f"http://127.0.0.1:{page_port}/", console)
    out = page.evaluate(CALLS, [cors_gateway.url, cors_gateway.api_key, DEMO_MODEL])
    page.context.close()

    assert out["chat"]["status"] == 200
    assert out["chat"]["requestId"]
    assert out["chat"]["body"]["choices"][0]["message"]["content"]
    assert out["stream"]["status"] == 200
    assert out["stream"]["type"].startswith("text/event-stream")
    assert "data: [DONE]" in out["stream"]["text"]
    assert out["refused"]["status"] == 401
    assert out["refused"]["body"]["error"]["request_id"] == out["refused"]["requestId"]
    assert out["models"]["status"] == 200
    assert DEMO_MODEL in [model["id"] for model in out["models"]["body"]["data"]]
    mcp = out["mcp"]
    assert (mcp["status"], mcp["version"], mcp["tools"], mcp["deleted"]) == (200, "2025-06-18", 200, 204)
    assert mcp["session"]
    assert mcp["toolCount"] > 0
    assert [line for line in console if "CORS" in line] == []
    assert [line for line in console if "status of" in line and "401" not in line] == []


def test_a_page_of_another_origin_reads_nothing(
    browser: Browser, cors_gateway: Gateway, page_port: int
) -> None:
    console: list[str] = []
    page = open_page(browser, f"http://localhost:{page_port}/", console)
    out = page.evaluate(BLOCKED, [cors_gateway.url, cors_gateway.api_key, DEMO_MODEL])
    page.context.close()
    assert out == {"chat": "TypeError", "models": "TypeError", "mcp": "TypeError"}
    assert len([line for line in console if "blocked by CORS policy" in line]) == 3, console
