"""Issue 13: the first run from a fresh clone — one configuration for every entry point.

Point 3: ``voidllm serve --host/--port`` and ``VOIDLLM_HOST``/``VOIDLLM_PORT`` override the file (the
command line first), checked as a unit and on a real ``voidllm serve`` process; the scripts' search order.
Point 4: an empty store without ``settings.admin_key`` prints how to bootstrap once and ``/readyz`` says
``bootstrap_pending``; ``voidllm users reset-password`` brings a lost password back.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
import trio

from tests.gateway import ENCRYPTION_KEY
from tests.process import spawn_gateway, write_config
from voidllm.config import ConfigError, parse_config
from voidllm.config.loader import with_listen_overrides

BASE = parse_config(
    "server:\n  proxy:\n    host: 127.0.0.1\n    port: 8080\n", environ={"VOIDLLM_ENCRYPTION_KEY": "k" * 44}
)


def listen(host: str | None = None, port: str | None = None, **env: str) -> tuple[str, int]:
    proxy = with_listen_overrides(BASE, host=host, port=port, environ=env).server.proxy
    return proxy.host, proxy.port


def test_the_command_line_wins_over_the_environment_which_wins_over_the_file() -> None:
    assert listen() == ("127.0.0.1", 8080)
    assert listen(VOIDLLM_PORT="9000", VOIDLLM_HOST="0.0.0.0") == ("0.0.0.0", 9000)
    assert listen(port="9100", VOIDLLM_PORT="9000") == ("127.0.0.1", 9100)
    assert listen(host="::1", VOIDLLM_HOST="0.0.0.0") == ("::1", 8080)


@pytest.mark.parametrize(
    ("port", "env"), [("80a", {}), ("65536", {}), ("-1", {}), (None, {"VOIDLLM_PORT": "http"})]
)
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
        ["bash", "-c", script, "sh", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
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
    secrets = tmp_path / "data" / "secrets.env"
    secrets.write_text("VOIDLLM_ADMIN_KEY=from-file\nVOIDLLM_ENCRYPTION_KEY=enc\n")
    shown = 'printf "%s %s" "$VOIDLLM_ADMIN_KEY" "$VOIDLLM_ENCRYPTION_KEY"'
    script = f'. "{ROOT}/scripts/lib/config.sh"; load_secrets; {shown}'
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"], "VOIDLLM_ADMIN_KEY": "from-env"},
    )
    assert done.stdout == "from-env enc"


@pytest.mark.slow
async def test_an_empty_store_without_admin_key_says_how_to_bootstrap_and_a_lost_password_can_be_reset(
    tmp_path: Path,
) -> None:
    """Issue 13 point 4: no silent lockout."""
    config = tmp_path / "voidllm.yaml"
    config.write_text(
        f"server:\n  proxy:\n    host: 127.0.0.1\n    port: 0\n"
        f"database:\n  driver: sqlite\n  dsn: {tmp_path / 'data' / 'voidllm.db'}\n"
        f"settings:\n  encryption_key: {ENCRYPTION_KEY}\nlogging:\n  level: info\n"
    )
    async with spawn_gateway(config, expect_banner=False) as gw, httpx.AsyncClient(base_url=gw.url) as client:
        with trio.fail_after(10):
            await gw.wait_for_line(lambda: any("NOBODY CAN SIGN IN YET" in line for line in gw.lines))
        assert sum("NOBODY CAN SIGN IN YET" in line for line in gw.lines) == 1
        assert any("voidllm users reset-password" in line for line in gw.lines)
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (503, "bootstrap_pending")

        await cli(config, "orgs", "create", "--name", "My Org")
        email = "you@example.com"
        await cli(config, "users", "create", "--email", email, "--org", "my-org", "--system-admin")
        assert (await client.get("/readyz")).status_code == 200

        reset = orjson.loads(
            (await cli(config, "users", "reset-password", "--email", email, "--json")).stdout
        )
        assert len(reset["password"]) >= 16
        credentials = {"email": email, "password": reset["password"]}
        login = await client.post("/api/v1/auth/login", json=credentials)
        assert login.status_code == 200, login.text
    (tmp_path / "keyed").mkdir()
    async with spawn_gateway(write_config(tmp_path / "keyed")) as gw:  # with an admin key: banner, no hint
        assert not any("NOBODY CAN SIGN IN YET" in line for line in gw.lines)


async def cli(config: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIDLLM_")}
    done = await trio.run_process(
        [sys.executable, "-m", "voidllm", *args, "--config", str(config)],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done


@pytest.mark.slow
async def test_a_port_in_use_is_reported_with_its_address_before_the_store_is_touched(tmp_path: Path) -> None:
    """Issue 13 point 6: nothing is migrated or bootstrapped when the gateway cannot listen."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, port=port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOIDLLM_")}
        done = await trio.run_process(
            [sys.executable, "-m", "voidllm", "serve", "--config", str(config)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert f"cannot listen on 127.0.0.1:{port}" in stderr
    assert "--port" in stderr
    assert "Traceback" not in stderr
    assert "BOOTSTRAP" not in stderr
    assert not (tmp_path / "data" / "voidllm.db").exists()


@pytest.mark.slow
async def test_a_normal_restart_logs_no_warning(tmp_path: Path) -> None:
    """Issue 13 point 6: the second start of the same configuration is quiet (no WARN or ERROR record)."""
    config = write_config(tmp_path)
    for first in (True, False):
        async with spawn_gateway(config, expect_banner=first) as gw:
            gw.signal()
            assert await gw.wait_exit() == 0
        records = [orjson.loads(line) for line in gw.lines if line.startswith("{")]
        assert records, gw.lines
        assert not [r for r in records if r["level"] in ("WARN", "ERROR", "CRITICAL")], gw.lines


def test_secrets_already_in_the_environment_do_not_stop_the_scripts(tmp_path: Path) -> None:
    """``load_secrets`` (scripts/serve, scripts/voidllm) succeeds when the environment already sets every
    variable of data/secrets.env, and the environment wins."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secrets.env").write_text("VOIDLLM_ADMIN_KEY=from-file\n")
    script = Path(__file__).resolve().parent.parent / "scripts" / "lib" / "config.sh"
    shown = subprocess.run(
        ["bash", "-c", f'set -e; . "{script}"; load_secrets; echo "$VOIDLLM_ADMIN_KEY"'],
        cwd=tmp_path,
        env={**os.environ, "VOIDLLM_ADMIN_KEY": "from-env"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (shown.returncode, shown.stdout.strip()) == (0, "from-env")
