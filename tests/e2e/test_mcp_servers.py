"""The MCP Servers pages against a real MCP server (issue 19 points 6 and 10).

The module's gateway allows private upstream URLs and runs Code Mode. Its MCP servers are the ``mcp`` SDK's
server side (:func:`voidllm.testing.mock_mcp.open_mock_mcp`, which accepts only ``Authorization: Bearer
s3cret``) and a server of the deprecated HTTP+SSE transport, both served by their own trio loop in a thread
(:class:`McpServers`). As the bootstrap system admin, in the browser: register the SDK server with bearer
auth, test it and see its tools, block one for Code Mode (after which Code Mode's ``search_tools`` no longer
shows it), refresh the tool list and see the cooldown, copy the IDE configuration from the page and use it
with the ``mcp`` SDK client, and find these actions in the audit log; register the legacy server and see its
test name it as such. Both pages pass axe-core in light and dark, and their screenshots are kept; the
server's page does not scroll sideways 375 px wide.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import httpx2
import orjson
import pytest
import trio
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from playwright.sync_api import expect

from tests.e2e.browsing import (
    assert_accessible,
    choose,
    horizontal_overflow,
    screenshot,
    wider_than_viewport,
)
from tests.e2e.servers import (
    Gateway,
    eventually,
    session_state,
    start_gateway,
    stop_gateway,
    ui_build_current,
)
from voidllm.testing.mock_mcp import MockMcp, open_legacy_sse_server, open_mock_mcp

if TYPE_CHECKING:
    from tests.e2e.conftest import NewContext
    from tests.e2e.servers import GatedUpstream

pytestmark = pytest.mark.slow

T = TypeVar("T")

TOKEN = "s3cret"
PLACEHOLDER = "${VOIDLLM_API_KEY}"
WIDE = {"width": 1280, "height": 900}
SETTINGS = """  mcp:
    allow_private_urls: true
    code_mode:
      enabled: true
"""


@attrs.define(eq=False)
class McpServers:
    """The SDK's MCP server (bearer ``s3cret`` required) and a legacy HTTP+SSE server, served by a trio loop
    in a thread of their own until :meth:`stop`."""

    mock: MockMcp | None = None
    legacy_url: str = ""
    _token: trio.lowlevel.TrioToken | None = None
    _stop: trio.Event | None = None
    _thread: threading.Thread | None = None

    def start(self) -> McpServers:
        ready = threading.Event()

        async def serve() -> None:
            self._stop = trio.Event()
            self._token = trio.lowlevel.current_trio_token()
            async with (
                open_mock_mcp(require_header=("Authorization", f"Bearer {TOKEN}")) as mock,
                open_legacy_sse_server() as legacy,
            ):
                self.mock, self.legacy_url = mock, legacy
                ready.set()
                await self._stop.wait()

        self._thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
        self._thread.start()
        assert ready.wait(30), "the MCP servers did not start"
        return self

    @property
    def url(self) -> str:
        assert self.mock is not None
        return self.mock.url

    def stop(self) -> None:
        if self._stop is not None and self._token is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        if self._thread is not None:
            self._thread.join(10)


def in_trio(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn`` in a trio loop of its own thread (Playwright's sync API holds this one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(trio.run, fn).result(timeout=60)


def sdk_client(url: str, headers: dict[str, str]) -> Client:
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    return Client(streamable_http_client(url, http_client=http), raise_exceptions=True)


def text_of(result: Any) -> str:
    return "\n".join(item.text for item in result.content)


def search_tools(gateway: Gateway, query: str) -> str:
    """Code Mode's ``search_tools`` answer for ``query``, asked with the admin's key through the SDK."""

    async def ask() -> str:
        headers = {"Authorization": f"Bearer {gateway.api_key}"}
        async with sdk_client(f"{gateway.url}/api/v1/mcp", headers) as client:
            return text_of(await client.call_tool("search_tools", {"query": query}))

    return in_trio(ask)


@pytest.fixture(scope="module")
def mcp_servers() -> Iterator[McpServers]:
    servers = McpServers().start()
    yield servers
    servers.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: GatedUpstream) -> Iterator[Gateway]:
    """The module's gateway: private MCP URLs allowed (the servers are on 127.0.0.1), Code Mode on."""
    problem = ui_build_current()
    if problem:
        pytest.fail(problem)
    running = start_gateway(tmp_path_factory.mktemp("gateway"), upstream.url, settings_yaml=SETTINGS)
    yield running
    stop_gateway(running)


@pytest.fixture(scope="module")
def admin_state(gateway: Gateway) -> dict[str, Any]:
    return session_state(gateway.url, gateway.email, gateway.password)


def add_server(tab: Any, name: str, alias: str, url: str, auth: str | None = None) -> None:
    """Register a server of the organization through the ``Add MCP server`` dialog (the page's button; an
    empty list has a second one)."""
    tab.wait_for_load_state("networkidle")
    tab.get_by_role("button", name="Add MCP server").first.click()
    dialog = tab.get_by_role("dialog", name="Add MCP server")
    choose(tab, "Scope", "Organization")
    dialog.get_by_role("textbox", name="Name", exact=True).fill(name)
    dialog.get_by_role("textbox", name="Alias", exact=True).fill(alias)
    dialog.get_by_role("textbox", name="URL", exact=True).fill(url)
    if auth is not None:
        choose(tab, "Authentication", "Bearer token")
        expect(dialog.get_by_role("note")).to_contain_text("Shared credentials")
        dialog.get_by_label("Bearer token").fill(auth)
    dialog.get_by_role("button", name="Add server").click()
    expect(dialog).to_have_count(0)


def test_a_server_with_bearer_auth_its_tools_a_blocked_tool_and_the_ide_config(
    new_context: NewContext, gateway: Gateway, mcp_servers: McpServers, admin_state: dict[str, Any]
) -> None:
    context = new_context(storage_state=admin_state, viewport=WIDE)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway.url)
    tab = context.new_page()
    tab.goto(f"{gateway.url}/mcp-servers")
    expect(tab.get_by_role("heading", level=1, name="MCP Servers")).to_be_visible()

    add_server(tab, "Mock tools", "mock", mcp_servers.url, auth=TOKEN)
    table = tab.get_by_role("table", name="MCP servers")
    row = table.get_by_role("row").filter(has=tab.get_by_role("link", name="Mock tools"))
    expect(row).to_contain_text("Organization")
    expect(row).to_contain_text("Active")

    row.get_by_role("link", name="Mock tools").click()
    expect(tab.get_by_role("heading", level=1, name="Mock tools")).to_be_visible()
    server_id = tab.url.rsplit("/", 1)[-1]  # the page of a server is /mcp-servers/<id>
    expect(tab.get_by_text("Bearer token · secret stored")).to_be_visible()
    tab.get_by_role("button", name="Test connection").click()
    expect(tab.get_by_role("status").filter(has_text="Connection works")).to_contain_text("4 tools")
    tools = tab.get_by_role("table", name="Tools of Mock tools")
    for name in ("echo", "fail", "slow", "big"):
        expect(tools.get_by_role("cell", name=name, exact=True)).to_be_visible()
    assert mcp_servers.mock is not None
    sent = [r.headers.get("authorization") for r in mcp_servers.mock.received if r.rpc_method == "tools/list"]
    assert sent, "the gateway never listed the tools"
    assert set(sent) == {f"Bearer {TOKEN}"}

    assert "function slow(" in search_tools(gateway, "slow")
    tools.get_by_role("button", name="Block slow").click()
    dialog = tab.get_by_role("dialog", name="Block slow?")
    dialog.get_by_label("Reason").fill("too slow for scripts")
    dialog.get_by_role("button", name="Block").click()
    expect(dialog).to_have_count(0)
    blocked = tools.get_by_role("row").filter(has=tab.get_by_role("cell", name="slow", exact=True))
    expect(blocked).to_contain_text("Blocked")
    expect(blocked).to_contain_text("too slow for scripts")
    eventually(
        lambda: search_tools(gateway, "slow").startswith("No tools found"),
        what="search_tools to stop showing the blocked tool",
    )
    assert "function echo(" in search_tools(gateway, "echo")

    tab.get_by_role("button", name="Refresh tools").click()
    expect(tab.get_by_text("can be refreshed once a minute")).to_be_visible()
    expect(tab.get_by_role("button", name="Refresh tools")).to_be_disabled()

    for scheme in ("light", "dark"):
        tab.emulate_media(color_scheme=scheme)
        screenshot(tab, "mcp-server", scheme)
        assert_accessible(tab, f"MCP server page ({scheme})")

    tab.emulate_media(color_scheme="light")
    tab.set_viewport_size({"width": 375, "height": 812})
    assert horizontal_overflow(tab) == 0, f"the page scrolls sideways at 375 px: {wider_than_viewport(tab)}"
    screenshot(tab, "mcp-server-375px", "light")
    tab.set_viewport_size(WIDE)

    tab.get_by_role("button", name="Copy IDE config").click()
    expect(tab.get_by_role("button", name="Copied")).to_be_visible()
    config = orjson.loads(tab.evaluate("() => navigator.clipboard.readText()"))
    entries = config["mcpServers"]
    assert set(entries) == {"mock", "voidllm-code-mode"}
    assert entries["mock"]["url"] == f"{gateway.url}/api/v1/mcp/mock"
    assert entries["voidllm-code-mode"]["url"] == f"{gateway.url}/api/v1/mcp"
    assert entries["mock"]["headers"] == {"Authorization": f"Bearer {PLACEHOLDER}"}

    def connect(entry: dict[str, Any]) -> Client:
        headers = {k: v.replace(PLACEHOLDER, gateway.api_key) for k, v in entry["headers"].items()}
        return sdk_client(entry["url"], headers)

    async def use_config() -> tuple[list[str], str, str]:
        async with connect(entries["mock"]) as client:
            listed = [tool.name for tool in (await client.list_tools()).tools]
            echoed = text_of(await client.call_tool("echo", {"text": "through the gateway"}))
        async with connect(entries["voidllm-code-mode"]) as client:
            found = text_of(await client.call_tool("search_tools", {"query": "slow"}))
        return listed, echoed, found

    listed, echoed, found = in_trio(use_config)
    assert {"echo", "fail", "slow", "big"} <= set(listed)
    assert "through the gateway" in echoed
    assert found.startswith("No tools found")

    tab.get_by_role("link", name="MCP usage of this server").click()
    expect(tab.get_by_role("heading", level=1, name="Usage")).to_be_visible()
    expect(tab.get_by_role("tab", name="MCP")).to_have_attribute("aria-selected", "true")
    expect(tab).to_have_url(f"{gateway.url}/usage/mcp?group=server&q=mock")
    tab.go_back()
    tab.get_by_role("link", name="All MCP servers").click()
    expect(tab.get_by_role("heading", level=1, name="MCP Servers")).to_be_visible()
    tab.wait_for_load_state("networkidle")
    for scheme in ("light", "dark"):
        tab.emulate_media(color_scheme=scheme)
        screenshot(tab, "mcp-servers", scheme)
        assert_accessible(tab, f"MCP Servers ({scheme})")

    # the audit log shows what was done here: the server registered and tested, its tool blocked
    done = [("create", "mcp_server"), ("test", "mcp_server"), ("create", "mcp_tool_blocklist")]

    def recorded() -> bool:
        with gateway.api() as api:
            found = api.get("/api/v1/audit-logs", params={"limit": 100}).raise_for_status().json()["data"]
        return set(done) <= {(entry["action"], entry["resource_type"]) for entry in found}

    eventually(recorded, what="the MCP server's audit log entries")
    for action, resource in done:
        tab.goto(f"{gateway.url}/audit-log?action={action}&resource={resource}")
        entries = tab.get_by_role("table", name="Audit log entries")
        label = f"Details of {action} {resource.replace('_', ' ').replace('mcp', 'MCP')}"
        if resource == "mcp_server":
            label += f" {server_id}"
        expect(entries.get_by_role("button", name=label)).to_have_count(1)


def test_a_legacy_sse_server_is_shown_as_such(
    new_context: NewContext, gateway: Gateway, mcp_servers: McpServers, admin_state: dict[str, Any]
) -> None:
    tab = new_context(storage_state=admin_state, viewport=WIDE).new_page()
    tab.goto(f"{gateway.url}/mcp-servers")
    add_server(tab, "Old server", "old", mcp_servers.legacy_url)
    tab.get_by_role("link", name="Old server").click()
    expect(tab.get_by_role("heading", level=1, name="Old server")).to_be_visible()
    tab.get_by_role("button", name="Test connection").click()
    outcome = tab.get_by_role("status").filter(has_text="Connection failed")
    expect(outcome).to_contain_text("Legacy SSE server")
    expect(outcome).to_contain_text("deprecated HTTP+SSE transport")
