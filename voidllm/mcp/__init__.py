"""MCP: the catalogue of upstream MCP servers (this package), their client below it, the gateway above.

The package is split by layer (``ARCHITECTURE.md`` section 2):

- :mod:`voidllm.mcp.upstream` (infrastructure): JSON-RPC messages, the upstream client, OAuth tokens and the
  one URL policy. It knows nothing of keys, teams or the registry.
- This package itself (domain, beside ``voidllm.routing``): what the admin use cases and the gateway share.

  - :mod:`voidllm.mcp.registry`: MCP servers and access lists in memory (team > org > global shadowing).
  - :mod:`voidllm.mcp.tools_cache`: the cached tool list per server.
  - :mod:`voidllm.mcp.health`: health probes of the registered servers.
  - :mod:`voidllm.mcp.usage`: ``mcp_tool_calls`` rows (batched) and the tool call metrics.

- :mod:`voidllm.mcp.gateway` (above the admin use cases): the streamable HTTP server transport, sealed
  sessions, the backend that proxies to an upstream server and the built-in ``voidllm`` tools.
"""
