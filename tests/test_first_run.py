"""Issue 13: the first run from a fresh clone — one configuration for every entry point.

Point 3: ``voidllm serve --host/--port`` and ``VOIDLLM_HOST``/``VOIDLLM_PORT`` override the file (the
command line first), checked as a unit and on a real ``voidllm serve`` process.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.process import spawn_gateway, write_config
from voidllm.config import ConfigError, parse_config
from voidllm.config.loader import with_listen_overrides

BASE = parse_config("server:\n  proxy:\n    host: 127.0.0.1\n    port: 8080\n", environ={"VOIDLLM_ENCRYPTION_KEY": "k" * 44})


def listen(host: str | None = None, port: str | None = None, **env: str) -> tuple[str, int]:
    proxy = with_listen_overrides(BASE, host=host, port=port, environ=env).server.proxy
    return proxy.host, proxy.port


def test_the_command_line_wins_over_the_environment_which_wins_over_the_file() -> None:
    assert listen() == ("127.0.0.1", 8080)
    assert listen(VOIDLLM_PORT="9000", VOIDLLM_HOST="0.0.0.0") == ("0.0.0.0", 9000)
    assert listen(port="9100", VOIDLLM_PORT="9000") == ("127.0.0.1", 9100)
    assert listen(host="::1", VOIDLLM_HOST="0.0.0.0") == ("::1", 8080)


@pytest.mark.parametrize(("port", "env"), [("80a", {}), ("65536", {}), ("-1", {}), (None, {"VOIDLLM_PORT": "http"})])
def test_a_bad_port_is_a_configuration_error_naming_its_origin(port: str | None, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        listen(port=port, **env)
    origin = "--port" if port is not None else "VOIDLLM_PORT"
    assert caught.value.problems[0].startswith(f"{origin}: must be a port number 0..65535")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
async def test_serve_listens_where_the_command_line_or_the_environment_says(tmp_path: Path) -> None:
    config = write_config(tmp_path, port=1)  # the file says port 1: the overrides must win
    by_flag = free_port()
    async with spawn_gateway(config, args=("--port", str(by_flag)), env={"VOIDLLM_PORT": "2"}) as gw:
        assert gw.url == f"http://127.0.0.1:{by_flag}"
    by_env = free_port()
    async with spawn_gateway(config, expect_banner=False, env={"VOIDLLM_PORT": str(by_env)}) as gw:
        assert gw.url == f"http://127.0.0.1:{by_env}"


ROOT = Path(__file__).resolve().parent.parent


def resolved_config(directory: Path, *args: str, **env: str) -> str:
    """What ``scripts/serve`` and ``scripts/voidllm`` would pass as ``VOIDLLM_CONFIG`` in ``directory``."""
    script = f'. "{ROOT}/scripts/lib/config.sh"; use_local_config "$@"; printf %s "${{VOIDLLM_CONFIG:-}}"'
    done = subprocess.run(
        ["bash", "-c", script, "sh", *args], cwd=directory, capture_output=True, text=True, check=True,
        env={"PATH": os.environ["PATH"], **env},
    )
    return done.stdout


def test_the_scripts_follow_the_documented_search_order(tmp_path: Path) -> None:
    assert resolved_config(tmp_path) == "config.example.yaml"  # nothing else: the checkout's example
    (tmp_path / "voidllm.yaml").write_text("{}\n")
    assert resolved_config(tmp_path) == "voidllm.yaml"
    assert resolved_config(tmp_path, VOIDLLM_CONFIG="/srv/gw.yaml") == "/srv/gw.yaml"
    assert resolved_config(tmp_path, "--config", "other.yaml") == ""  # the CLI's own --config decides


def test_load_secrets_fills_only_unset_variables(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secrets.env").write_text("VOIDLLM_ADMIN_KEY=from-file\nVOIDLLM_ENCRYPTION_KEY=enc\n")
    script = f'. "{ROOT}/scripts/lib/config.sh"; load_secrets; printf "%s %s" "$VOIDLLM_ADMIN_KEY" "$VOIDLLM_ENCRYPTION_KEY"'
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={"PATH": os.environ["PATH"], "VOIDLLM_ADMIN_KEY": "from-env"},
    )
    assert done.stdout == "from-env enc"
