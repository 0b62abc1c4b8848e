"""MCP requests as the tests send them over HTTP: the session era's ``initialize``, and stateless requests
(the 2026-07-28 era).

A stateless request has no session and no handshake: its method (and, for ``tools/call``, the tool) travels in
headers, and the client's protocol version, capabilities and name in ``params._meta``. Several test modules
speak both eras to the gateway; building those shapes here keeps each test down to the call it makes.
"""

from __future__ import annotations

from typing import Any

STATELESS = "2026-07-28"


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
