"""Code Mode: JavaScript in a QuickJS WebAssembly sandbox that orchestrates tool calls.

- :mod:`voidllm.codemode.sandbox`: the sandbox and its host bridge (``await sandbox.execute(code,
  call_tool=..., max_tool_calls=...)``).
- :mod:`voidllm.codemode.discovery`: the pure discovery helpers: TypeScript declarations of the tools,
  ``search_tools`` answers, learned output schemas and the unwrapping of tool results.

The MCP server that serves them is :mod:`voidllm.mcp.gateway.codemode` (``/api/v1/mcp``).
"""
