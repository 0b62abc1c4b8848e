"""The real ``voidllm`` command: graceful drain on SIGTERM, the drain deadline, a second signal, the CLI."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.process import spawn_gateway, write_config
from voidllm import __version__
from voidllm.testing.mock_openai import Behaviour, open_mock_upstream

pytestmark = pytest.mark.slow

MODEL = """
models:
  - name: slow
    provider: openai
    base_url: {base_url}
"""


async def test_sigterm_drains_in_flight_requests_then_exits_zero(tmp_path: Path) -> None:
    async with open_mock_upstream(Behaviour(latency=1.5)) as mock:
        config = write_config(tmp_path, MODEL.format(base_url=mock.base_url))
        async with spawn_gateway(config) as gw, httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            headers = {"Authorization": f"Bearer {gw.api_key}"}
            outcome: dict[str, httpx.Response] = {}

            async def slow_request() -> None:
                outcome["slow"] = await client.post(
                    "/v1/chat/completions", headers=headers, json={"model": "slow"}
                )

            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow_request)
                with trio.fail_after(5):
                    await mock.wait_requests()
                gw.signal(signal.SIGTERM)
                await trio.sleep(0.2)
                ready = await client.get("/readyz")
                assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
                refused = await client.post("/v1/chat/completions", headers=headers, json={"model": "slow"})
                assert refused.status_code == 503
                assert refused.json()["error"]["code"] == "service_unavailable"
                assert (await client.get("/healthz")).status_code == 200
                assert "slow" not in outcome  # still in flight while the gateway drains
            assert outcome["slow"].status_code == 200
            assert outcome["slow"].json()["choices"][0]["message"]["content"] == "Hello from the mock."
            assert await gw.wait_exit() == 0
            assert len(mock.requests) == 1
        assert gw.log("shutdown complete")


async def test_requests_still_running_at_the_drain_deadline_are_cancelled(tmp_path: Path) -> None:
    async with open_mock_upstream(Behaviour(fail="hang")) as mock:
        config = write_config(tmp_path, MODEL.format(base_url=mock.base_url), proxy="drain_timeout: 5s")
        async with spawn_gateway(config) as gw, httpx.AsyncClient(base_url=gw.url, timeout=20) as client:
            headers = {"Authorization": f"Bearer {gw.api_key}"}
            outcome: dict[str, httpx.Response] = {}

            async def hanging_request() -> None:
                outcome["hang"] = await client.post(
                    "/v1/chat/completions", headers=headers, json={"model": "slow"}
                )

            async with trio.open_nursery() as nursery:
                nursery.start_soon(hanging_request)
                with trio.fail_after(5):
                    await mock.wait_requests()
                gw.signal(signal.SIGTERM)
            assert outcome["hang"].status_code == 503
            assert outcome["hang"].json()["error"]["message"] == "request cancelled: server is shutting down"
            assert await gw.wait_exit() == 0
            with trio.fail_after(2):
                await mock.wait_client_closed()  # the upstream request was cancelled, its connection closed
        assert gw.log("drain timeout reached; cancelling requests")  # cut at the deadline, not before


async def test_a_second_signal_exits_at_once(tmp_path: Path) -> None:
    async with open_mock_upstream(Behaviour(fail="hang")) as mock:
        config = write_config(tmp_path, MODEL.format(base_url=mock.base_url))
        async with spawn_gateway(config) as gw, httpx.AsyncClient(base_url=gw.url, timeout=20) as client:
            headers = {"Authorization": f"Bearer {gw.api_key}"}

            async def doomed_request() -> None:
                with pytest.raises(httpx.RemoteProtocolError):  # the process is gone without answering
                    await client.post("/v1/chat/completions", headers=headers, json={"model": "slow"})

            async with trio.open_nursery() as nursery:
                nursery.start_soon(doomed_request)
                with trio.fail_after(5):
                    await mock.wait_requests()
                gw.signal(signal.SIGTERM)
                await trio.sleep(0.3)
                gw.signal(signal.SIGINT)
                with trio.fail_after(5):  # not after the drain timeout (25 s)
                    assert await gw.wait_exit() == 1
        assert gw.log("second signal: exiting immediately")


async def test_restart_prints_no_banner_and_the_old_key_still_works(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with spawn_gateway(config) as first:
        key = first.api_key
        first.signal()
        assert await first.wait_exit() == 0
    async with (
        spawn_gateway(config, expect_banner=False) as second,
        httpx.AsyncClient(base_url=second.url) as client,
    ):
        assert second.api_key == ""
        models = await client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert (models.status_code, models.json()) == (200, {"object": "list", "data": []})
        second.signal()
        assert await second.wait_exit() == 0


def run_cli(*args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "voidllm", *args]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, env={"PATH": "/usr/bin:/bin"}
    )


def test_version() -> None:
    result = run_cli("version")
    assert (result.returncode, result.stdout) == (0, f"voidllm {__version__}\n")


def test_migrate_schema_creates_the_schema_once(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = run_cli("migrate-schema", config=config)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().startswith("schema at revision ")
    again = run_cli("migrate-schema", config=config)
    assert again.returncode == 0
    assert again.stdout == first.stdout
    assert (tmp_path / "data" / "voidllm.db").exists()


def test_invalid_config_is_reported_with_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "voidllm.yaml"
    config.write_text("server:\n  proxy:\n    prot: 8080\nsettings:\n  encryption_key: short\n")
    result = run_cli("serve", config=config)
    assert result.returncode == 2
    assert "server.proxy.prot: unknown key (did you mean 'port'?)" in result.stderr
    assert "settings.encryption_key" in result.stderr
