"""The examples work: every example config loads, and the mock example answers through a real gateway."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.process import spawn_gateway
from voidllm.config import parse_config
from voidllm.testing.mock_openai import open_mock_upstream

EXAMPLES = Path(__file__).parent.parent / "examples"
ENV = {
    "VOIDLLM_ENCRYPTION_KEY": "x" * 32,
    "VOIDLLM_ADMIN_KEY": "a" * 40,
    "OPENAI_API_KEY": "sk-x",
    "VOIDLLM_DATABASE_DSN": "postgresql://u@127.0.0.1/db",
}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_load_and_can_start(path: Path) -> None:
    parse_config(path.read_text(), environ=ENV)


@pytest.mark.slow
async def test_mock_example_end_to_end(tmp_path: Path) -> None:
    async with open_mock_upstream() as mock:
        text = (EXAMPLES / "voidllm.mock.yaml").read_text()
        text = text.replace("127.0.0.1:9000", f"127.0.0.1:{mock.port}").replace("port: 8080", "port: 0")
        text = text.replace("./data/voidllm-mock.db", str(tmp_path / "mock.db"))
        text = text.replace("${VOIDLLM_ENCRYPTION_KEY}", "x" * 32).replace("${VOIDLLM_ADMIN_KEY}", "a" * 40)
        config = tmp_path / "voidllm.yaml"
        config.write_text(text)
        async with spawn_gateway(config) as gw:
            result = await trio.to_thread.run_sync(
                lambda: subprocess.run(
                    [sys.executable, str(EXAMPLES / "chat.py"), gw.api_key, gw.url + "/v1"],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
            )
            assert result.returncode == 0, result.stderr
            assert result.stdout.startswith("Hello from the mock.")
            assert "gateway overhead:" in result.stdout
