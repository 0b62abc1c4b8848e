"""Code Mode: JavaScript in a QuickJS WebAssembly sandbox that orchestrates tool calls.

:mod:`voidllm.codemode.sandbox` holds the sandbox and its host bridge (``await sandbox.execute(code,
call_tool=..., max_tool_calls=...)``). Nothing serves it yet: the MCP server, discovery and the settings
(``mcp.code_mode``, still refused by :mod:`voidllm.availability`) come later.
"""
