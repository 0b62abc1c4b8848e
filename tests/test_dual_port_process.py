"""Dual-port mode in the real ``voidllm serve`` (issue 20 point 4): two workers share both ports, the admin
port over TLS; a certificate that cannot be loaded stops the start like any invalid setting."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.process import free_port, spawn_gateway, write_config
from tests.selfsigned import write_self_signed
from tests.test_dual_port import CHAT, HEALTH, MCP_HEADERS, MCP_INITIALIZE, assert_not_found
from tests.test_workers import worker_pids
from voidllm.testing.mock_openai import open_mock_upstream

pytestmark = pytest.mark.slow


def dual_port_config(directory: Path, admin: str, tail: str = "") -> Path:
    """A config with two workers and ``server.admin`` (``admin``: its lines, indented under it)."""
    nested = "".join(f"\n  {line}" for line in admin.splitlines() if line)
    return write_config(directory, tail, server=f"workers: 2\nadmin:{nested}")


async def test_two_workers_serve_both_ports_with_tls_on_the_admin_port(tmp_path: Path) -> None:
    files = write_self_signed(tmp_path)
    port = free_port()
    admin = f"port: {port}\ntls:\n  enabled: true\n  cert: {files.cert}\n  key: {files.key}"
    async with open_mock_upstream() as mock:
        models = f"models:\n  - name: m\n    provider: openai\n    base_url: {mock.base_url}\n"
        async with spawn_gateway(dual_port_config(tmp_path, admin, models)) as gw:
            assert len(worker_pids(gw.process.pid)) == 2
            admin_url = f"https://127.0.0.1:{port}"
            assert all(record["admin_binds"] == [admin_url] for record in gw.log("listening"))
            key = {"Authorization": f"Bearer {gw.api_key}"}
            trusted = files.client_context()

            async def one(results: list[tuple[str, int]]) -> None:  # a connection each: both workers answer
                async with (
                    httpx.AsyncClient(base_url=gw.url, timeout=10) as public,
                    httpx.AsyncClient(base_url=admin_url, verify=trusted, timeout=10) as secure,
                ):
                    chat = await public.post("/v1/chat/completions", json=CHAT, headers=key)
                    me = await secure.get("/api/v1/me", headers=key)
                    results += [("chat", chat.status_code), ("me", me.status_code)]

            results: list[tuple[str, int]] = []
            async with trio.open_nursery() as nursery:
                for _ in range(10):
                    nursery.start_soon(one, results)
            assert sorted(results) == [("chat", 200)] * 10 + [("me", 200)] * 10

            async with (
                httpx.AsyncClient(base_url=gw.url, timeout=10) as public,
                httpx.AsyncClient(base_url=admin_url, verify=trusted, timeout=10) as secure,
            ):
                for path in HEALTH:
                    assert (await public.get(path)).status_code == 200, path
                    assert (await secure.get(path)).status_code == 200, path
                assert_not_found(await public.get("/api/v1/me", headers=key))
                assert_not_found(await public.get("/"))
                mcp = await public.post(
                    "/api/v1/mcp/voidllm", json=MCP_INITIALIZE, headers={**key, **MCP_HEADERS}
                )
                assert mcp.status_code == 404
                assert_not_found(await secure.post("/v1/chat/completions", json=CHAT, headers=key))
                mcp = await secure.post(
                    "/api/v1/mcp/voidllm", json=MCP_INITIALIZE, headers={**key, **MCP_HEADERS}
                )
                assert mcp.status_code == 200
                assert mcp.headers["mcp-session-id"]
            gw.signal(signal.SIGTERM)
            assert await gw.wait_exit() == 0


def test_a_certificate_that_cannot_be_loaded_stops_the_start(tmp_path: Path) -> None:
    files = write_self_signed(tmp_path)
    admin = f"port: {free_port()}\ntls:\n  enabled: true\n  cert: {files.key}\n  key: {files.key}"
    config = dual_port_config(tmp_path, admin)
    done = subprocess.run(
        [sys.executable, "-m", "voidllm", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "server.admin.tls: cannot load" in done.stderr
    assert not (tmp_path / "data" / "voidllm.db").exists()  # refused before the store was opened
