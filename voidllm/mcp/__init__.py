"""The MCP gateway: JSON-RPC messages, the streamable HTTP server transport, sealed sessions, upstream servers.

- :mod:`voidllm.mcp.jsonrpc`: JSON-RPC 2.0 messages and error codes (shared by server and upstream client).
- :mod:`voidllm.mcp.server`: the streamable HTTP transport, both protocol eras, generic over an
  :class:`~voidllm.mcp.server.McpBackend`.
- :mod:`voidllm.mcp.sessions`: ``Mcp-Session-Id`` as an AES-GCM sealed token.
- :mod:`voidllm.mcp.proxy`: ``/api/v1/mcp/<alias>``, the backend that forwards to an upstream MCP server.
- :mod:`voidllm.mcp.usage`: ``mcp_tool_calls`` rows (batched) and the tool call metrics.
- :mod:`voidllm.mcp.client`: the upstream client (pooled per server, both eras, sessions, re-init on 404).
- :mod:`voidllm.mcp.oauth`: OAuth client-credentials tokens for upstream servers, cached until near expiry.
- :mod:`voidllm.mcp.ssrf`: the private-address guard applied when connecting to an upstream.
- :mod:`voidllm.mcp.registry`: MCP servers and access lists in memory (team > org > global shadowing).
- :mod:`voidllm.mcp.health`, :mod:`voidllm.mcp.tools_cache`: health probes and the cached tool list per server.

The built-in ``voidllm`` server's management tools call the admin use cases, which import this package, so
they live above both, in :mod:`voidllm.web.mcp_builtin`.
"""
