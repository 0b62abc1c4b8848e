"""Clients that read nothing (a tiny receive buffer, never a ``recv``) are cut at their request's deadline.

A stream ends at ``max_stream_duration`` and a non-streamed answer at ``write_timeout`` whether or not the
client reads; the gateway then closes the client connection and the upstream's, and writes the usage row.
None of it is the upstream's fault: the breaker of a healthy upstream stays closed.
"""

from __future__ import annotations

import socket
from typing import Any

import attrs
import pytest
import trio

from tests.gateway import RunningGateway, make_config, run_gateway, usage_rows
from tests.test_limits_gateway import add_key
from voidllm.config import Config
from voidllm.identity import Limits
from voidllm.testing.mock_openai import Behaviour, open_mock_upstream

BIG = "x" * (8 << 20)  # more than the socket buffers between the gateway and a client can hold
DEADLINE = 0.8


def short(config: Config) -> Config:
    proxy = attrs.evolve(
        config.server.proxy, max_stream_duration=DEADLINE, write_timeout=DEADLINE, max_response_body=64 << 20
    )
    return attrs.evolve(config, server=attrs.evolve(config.server, proxy=proxy))


def models(base_url: str) -> str:
    deployment = f'{{name: d0, provider: openai, base_url: "{base_url}"}}'
    return f"models:\n  - name: m\n    strategy: priority\n    deployments:\n      - {deployment}\n"


async def non_reader(gw: RunningGateway, *, stream: bool, key: str | None = None) -> trio.SocketStream:
    """A connection with a tiny receive buffer that has sent one chat request and reads nothing."""
    host, port = gw.url.removeprefix("http://").rsplit(":", 1)
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect((host, int(port)))
    body = b'{"model": "m", "stream": %s, "messages": [{"role": "user", "content": "hi"}]}' % (
        b"true" if stream else b"false"
    )
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {key or gw.api_key()}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    connection = trio.SocketStream(sock)
    await connection.send_all(head + body)
    return connection


async def closed_by_gateway(connection: trio.SocketStream) -> int:
    """Read what is left until the gateway's close; the bytes read (fails if the connection stays open).

    A gateway that did not cut the request would deliver the whole answer and keep the connection open, so the
    wait never ends; the bound only has to be far above the close's time on a loaded machine (CI's two cores
    running two test workers and the gateway, its upstream and six 8 MiB streams in this one process).
    """
    read = 0
    with trio.fail_after(10):
        try:
            while chunk := await connection.receive_some(1 << 20):
                read += len(chunk)
        except trio.BrokenResourceError:  # a reset is a close too
            pass
    await connection.aclose()
    return read


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
async def test_a_client_that_reads_nothing_is_cut_at_the_deadline(sqlite_dsn: str, stream: bool) -> None:
    async with open_mock_upstream(Behaviour(completion_text=BIG, stream_chunks=64)) as upstream:
        async with run_gateway(short(make_config(sqlite_dsn, models(upstream.base_url)))) as gw:
            connection = await non_reader(gw, stream=stream)
            await trio.sleep(DEADLINE + 0.5)  # the deadline, then the grace of an answer's last message
            read = await closed_by_gateway(connection)  # fails unless the gateway closes it (bounded wait)
            assert read < len(BIG)  # cut, not delivered
            if stream:
                with trio.fail_after(1):
                    await upstream.wait_client_closed()  # the upstream's connection closed with it
            metrics = (await gw.client.get("/metrics")).text
            assert "voidllm_active_streams 0.0" in metrics
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [row["status"] for row in rows] == ["timeout"]


async def test_non_reading_clients_never_open_a_healthy_upstreams_breaker(sqlite_dsn: str) -> None:
    breaker = "circuit_breaker:\n  threshold: 2\n  timeout: 30s"
    async with open_mock_upstream(Behaviour(completion_text=BIG, stream_chunks=64)) as upstream:
        config = short(make_config(sqlite_dsn, models(upstream.base_url), settings=breaker))
        async with run_gateway(config) as gw:
            connections = [await non_reader(gw, stream=True) for _ in range(6)]
            await trio.sleep(DEADLINE + 0.5)
            for connection in connections:
                await closed_by_gateway(connection)
            upstream.behaviour.completion_text = "ok"
            headers = {"Authorization": f"Bearer {gw.api_key()}"}
            body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            statuses = [
                (await gw.client.post("/v1/chat/completions", json=body, headers=headers)).status_code
                for _ in range(10)
            ]
            metrics = (await gw.client.get("/metrics")).text
    assert statuses == [200] * 10
    assert 'voidllm_circuit_breaker_state{upstream="m/d0"} 0.0' in metrics


async def test_the_token_reservation_of_a_cut_request_is_settled(sqlite_dsn: str) -> None:
    async with open_mock_upstream(Behaviour(completion_text=BIG)) as upstream:
        async with run_gateway(short(make_config(sqlite_dsn, models(upstream.base_url)))) as gw:
            key = await add_key(gw, key=Limits(daily_token_limit=1000))  # a held reservation (~1,050) refuses
            connection = await non_reader(gw, stream=False, key=key.plaintext)
            await trio.sleep(DEADLINE + 0.5)
            await closed_by_gateway(connection)
            upstream.behaviour.completion_text = "ok"
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            response = await gw.client.post("/v1/chat/completions", json=body, headers=key.auth)
    assert response.status_code == 200, response.content  # 18 tokens used, the reservation released


async def test_a_models_own_timeout_cuts_a_stream_nobody_reads(sqlite_dsn: str) -> None:
    """The model's ``timeout`` is the stream's deadline (``max_stream_duration`` is a minute here)."""
    deployment = '{name: d0, provider: openai, base_url: "%s"}'
    async with open_mock_upstream(Behaviour(completion_text=BIG, stream_chunks=64)) as upstream:
        yaml = (
            f"models:\n  - name: m\n    timeout: {DEADLINE}s\n    strategy: priority\n    deployments:\n"
            f"      - {deployment % upstream.base_url}\n"
        )
        config = make_config(sqlite_dsn, yaml)
        proxy = attrs.evolve(config.server.proxy, max_stream_duration=60.0, max_response_body=64 << 20)
        config = attrs.evolve(config, server=attrs.evolve(config.server, proxy=proxy))
        async with run_gateway(config) as gw:
            connection = await non_reader(gw, stream=True)
            await trio.sleep(DEADLINE + 0.5)
            read = await closed_by_gateway(connection)
            assert read < len(BIG)
            with trio.fail_after(1):
                await upstream.wait_client_closed()
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [row["status"] for row in rows] == ["timeout"]
