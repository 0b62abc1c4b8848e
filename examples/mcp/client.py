"""List the tools of a VoidLLM MCP endpoint and call one, with the official ``mcp`` Python SDK.

On the built-in server it calls ``list_models``; on Code Mode (``/api/v1/mcp``) it runs a script with
``execute_code`` that calls ``list_models`` from JavaScript.

Usage: python examples/mcp/client.py <vl_ key> [endpoint, default http://127.0.0.1:8080/api/v1/mcp/voidllm]
       [--legacy]

Needs the ``mcp`` package (2.3 or newer): ``pip install "mcp>=2.3"``, or run it with the checkout's test
environment, which has it: ``.venv/bin/python examples/mcp/client.py ...`` after ``scripts/test``.

The built-in server is ``/api/v1/mcp/voidllm``, Code Mode ``/api/v1/mcp``; an MCP server registered under
the alias ``github`` is ``/api/v1/mcp/github`` (the same key authenticates all). ``--legacy`` makes the SDK
speak the session-era protocol (``initialize`` and an ``Mcp-Session-Id``) instead of its default 2026-07-28
mode.
"""

from __future__ import annotations

import sys

try:
    import anyio
    import httpx2
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client
except ImportError:
    sys.exit('this example needs the mcp SDK: pip install "mcp>=2.3" (or use .venv/bin/python of a checkout)')

DEFAULT_URL = "http://127.0.0.1:8080/api/v1/mcp/voidllm"


async def run(key: str, url: str, mode: str) -> int:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        tools = await client.list_tools()
        print("tools:", ", ".join(tool.name for tool in tools.tools))
        names = {tool.name for tool in tools.tools}
        if "execute_code" in names:
            script = "const models = await tools.voidllm.list_models({}); return models.map(m => m.name);"
            result = await client.call_tool("execute_code", {"code": script})
        elif "list_models" in names:
            result = await client.call_tool("list_models", {})
        else:
            return 0
        for block in result.content:
            if block.type == "text":
                print(block.text)
        return 1 if result.is_error else 0


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if a != "--legacy"]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    mode = "legacy" if "--legacy" in argv else "auto"
    url = args[1] if len(args) > 1 else DEFAULT_URL
    try:
        return anyio.run(run, args[0], url, mode)
    except Exception as exc:  # the SDK raises exception groups; say what went wrong, not a traceback
        print(f"error: {_explain(exc, url)}", file=sys.stderr)
        return 1


def _explain(exc: BaseException, url: str) -> str:
    """One line for the first cause found inside ``exc`` (exception groups included)."""
    if isinstance(exc, BaseExceptionGroup):
        return _explain(exc.exceptions[0], url)
    if isinstance(exc, httpx2.ConnectError):
        return f"cannot connect to {url}: is the gateway running there?"
    if isinstance(exc, httpx2.HTTPStatusError):
        status = exc.response.status_code
        if status == 401:
            return "the gateway refused the key (401): pass a vl_ key that is valid"
        if status == 404:
            return f"no MCP server at {url} (404): check the alias"
        return f"the gateway answered {status}"
    if type(exc).__name__ in ("MCPError", "McpError"):  # a JSON-RPC error answer, e.g. a refused key
        return f"the gateway refused the request: {exc}"
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
