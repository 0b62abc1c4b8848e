"""MCP requests as the tests send them over HTTP: the session era's ``initialize``, and stateless requests
(the 2026-07-28 era).

A stateless request has no session and no handshake: its method (and, for ``tools/call``, the tool) travels in
headers, and the client's protocol version, capabilities and name in ``params._meta``. Several test modules
speak both eras to the gateway; building those shapes here keeps each test down to the call it makes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tests.admin_tenancy import bearer
from tests.gateway import RunningGateway, make_config, run_gateway
from voidllm.testing.mock_mcp import MockMcp, open_mock_mcp

STATELESS = "2026-07-28"


@asynccontextmanager
async def tools_gateway(
    dsn: str, settings: str, **mock_options: Any
) -> AsyncIterator[tuple[RunningGateway, MockMcp]]:
    """A gateway with ``settings`` and a mock MCP server (``mock_options`` are :func:`open_mock_mcp`'s)
    registered on it as the global server ``tools``."""
    async with open_mock_mcp(**mock_options) as mock, run_gateway(make_config(dsn, settings=settings)) as gw:
        body = {"name": "Tools", "alias": "tools", "url": mock.url}
        created = await gw.client.post("/api/v1/mcp-servers", headers=bearer(gw.api_key()), json=body)
        assert created.status_code == 201, created.text
        yield gw, mock


def initialize_request(version: str = "2025-06-18", client: str = "t") -> dict[str, Any]:
    """The ``initialize`` that opens a session of protocol ``version`` for the client named ``client``."""
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": client, "version": "1"}}
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}


def stateless_meta(client: str = "t") -> dict[str, Any]:
    """The ``params._meta`` of a stateless request from the client named ``client``."""
    return {
        "io.modelcontextprotocol/protocolVersion": STATELESS,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": client, "version": "1"},
    }


def stateless_headers(
    method: str, name: str | None = None, *, accept: str = "application/json"
) -> dict[str, str]:
    """The headers of a stateless request for ``method`` (and the tool ``name``) with a JSON body, accepting
    ``accept``; authorization is the caller's."""
    headers = {
        "accept": accept,
        "content-type": "application/json",
        "mcp-protocol-version": STATELESS,
        "mcp-method": method,
    }
    if name is not None:
        headers["mcp-name"] = name
    return headers


def stateless_request(method: str, id: int = 1, *, client: str = "t", **params: Any) -> dict[str, Any]:
    """A JSON-RPC request for ``method`` whose ``params`` carry the stateless ``_meta`` of ``client``."""
    return {
        "jsonrpc": "2.0",
        "id": id,
        "method": method,
        "params": {**params, "_meta": stateless_meta(client)},
    }
