"""scripts/bench_lib/bare_proxy.py, the floor docs/performance.md measures beside the gateway: it forwards
requests to the mock upstream and their answers back, several on one keep-alive connection."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from types import ModuleType

import pytest
import trio

from voidllm.testing.mock_openai import Behaviour, open_mock_upstream

REPO = Path(__file__).resolve().parent.parent
BODY = b'{"model":"mock","messages":[{"role":"user","content":"hello"}]}'


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from bench_lib import bare_proxy

    return bare_proxy


async def answer(stream: trio.SocketStream) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some()
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [line[15:] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    length = int(lengths[0])
    while len(body) < length:
        body += await stream.receive_some()
    return head, body


@pytest.mark.trio
async def test_requests_go_through_to_the_upstream_and_back(bare: ModuleType, nursery: trio.Nursery) -> None:
    async with open_mock_upstream(Behaviour(completion_text="floor")) as upstream:
        listeners = await nursery.start(
            partial(trio.serve_tcp, partial(bare._serve, upstream_port=upstream.port), 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        request = b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
        request += b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY)
        for _ in range(2):  # twice on one connection
            await client.send_all(request)
            head, body = await answer(client)
            assert head.startswith(b"HTTP/1.1 200")
            assert json.loads(body)["choices"][0]["message"]["content"] == "floor"
        await client.aclose()
        nursery.cancel_scope.cancel()
