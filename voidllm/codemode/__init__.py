"""Code Mode: JavaScript in a QuickJS WebAssembly sandbox that orchestrates tool calls.

:mod:`voidllm.codemode.sandbox` holds the sandbox and its host bridge (``await sandbox.execute(code,
call_tool=..., max_tool_calls=...)``).
:mod:`voidllm.codemode.discovery` holds the pure discovery helpers: TypeScript declarations of the tools,
``search_tools`` answers, learned output schemas and the unwrapping of tool results. Nothing serves them
yet: the MCP server and the settings (``mcp.code_mode``, still refused by :mod:`voidllm.availability`)
come later.
"""
