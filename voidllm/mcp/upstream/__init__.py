"""Upstream MCP servers as infrastructure: the wire format, the client, its credentials and the URL policy.

- :mod:`voidllm.mcp.upstream.jsonrpc`: JSON-RPC 2.0 messages and error codes (shared by the gateway's server
  transport and the upstream client).
- :mod:`voidllm.mcp.upstream.client`: the upstream client (pooled per server, both eras, sessions, re-init on
  404).
- :mod:`voidllm.mcp.upstream.oauth`: OAuth client-credentials tokens for upstream servers, cached until near
  expiry.
- :mod:`voidllm.mcp.upstream.ssrf`: the one URL policy (private addresses and names), checked when a URL is
  stored and again when connecting.

Nothing here imports the registry, the admin use cases or the gateway.
"""
