"""The upstream MCP server of ``scripts/bench --codemode``, in a process of its own (pinned like the mock).

``python scripts/bench_lib/mcp_upstream.py`` serves :func:`voidllm.testing.mock_mcp.open_mock_mcp` (the
``mcp`` SDK's server; its ``echo`` tool answers at once) until SIGINT or SIGTERM and prints ``listening
<url>``. It speaks the stateless 2026-07-28 era and answers with ``application/json``: the cheapest upstream
path, so the figures show the gateway, not a handshake or SSE framing. The mock records every request for
tests; here that record is emptied every second, so that it does not grow with the benchmark, and the SDK's
logging of every request at INFO is off.
"""

from __future__ import annotations

import logging
import signal

import trio

from voidllm.testing.mock_mcp import MockMcp, open_mock_mcp


async def _forget(mock: MockMcp) -> None:
    while True:
        await trio.sleep(1)
        mock.received.clear()


async def _serve() -> None:
    logging.disable(logging.INFO)  # the SDK logs every request at INFO
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_mock_mcp(modern=True, json_response=True) as mock, trio.open_nursery() as nursery:
            nursery.start_soon(_forget, mock)
            print(f"listening {mock.url}", flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(_serve)
