"""The MCP gateway: the endpoints clients talk to, above the admin use cases.

- :mod:`voidllm.mcp.gateway.server`: the streamable HTTP transport, both protocol eras, generic over an
  :class:`~voidllm.mcp.gateway.server.McpBackend`.
- :mod:`voidllm.mcp.gateway.sessions`: ``Mcp-Session-Id`` as an AES-GCM sealed token.
- :mod:`voidllm.mcp.gateway.proxy`: ``/api/v1/mcp/<alias>``, the backend that forwards to an upstream MCP
  server.
- :mod:`voidllm.mcp.gateway.builtin`: the built-in ``voidllm`` server, whose management tools call the admin
  use cases (which is why the gateway sits above them).

``voidllm.web.mcp`` mounts these endpoints before Quart.
"""
