"""Issue 6 point 8: ``voidllm orgs create``, ``users create`` and ``keys create|list|revoke|rotate`` run the
admin use cases against the configured store, and a running gateway honours what they did."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio

from tests.gateway import make_config, run_gateway
from tests.polling import poll_until
from tests.process import write_config
from voidllm.auth.cache import reload_key_cache

pytestmark = pytest.mark.slow  # every test runs the voidllm command in a subprocess


async def voidllm(
    config: Path, *args: str, stdin: bytes = b"", check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIDLLM_")}
    result = await trio.run_process(
        [sys.executable, "-m", "voidllm", *args, "--config", str(config)],
        stdin=stdin,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=env,
    )
    if check:
        assert result.returncode == 0, result.stderr.decode()
    return result


async def as_json(config: Path, *args: str, stdin: bytes = b"") -> Any:
    return orjson.loads((await voidllm(config, *args, "--json", stdin=stdin)).stdout)


async def migrated_config(directory: Path, yaml_tail: str = "") -> Path:
    """A config whose SQLite store exists (management commands refuse to create one)."""
    config = write_config(directory, yaml_tail)
    await voidllm(config, "migrate-schema")
    return config


def gateway_config(config_path: Path, extra: str = "") -> Any:
    dsn = str(config_path.parent / "data" / "voidllm.db")
    return make_config(dsn, extra)


async def test_cli_creates_an_org_a_user_and_keys_that_a_gateway_accepts(tmp_path: Path) -> None:
    config = await migrated_config(tmp_path)
    org = await as_json(config, "orgs", "create", "--name", "Acme Corp", "--requests-per-minute", "100")
    assert (org["slug"], org["requests_per_minute"]) == ("acme-corp", 100)
    user = await as_json(
        config, "users", "create", "--email", "ops@acme.io", "--org", "acme-corp", "--role", "org_admin"
    )
    assert (user["org_id"], user["role"]) == (org["id"], "org_admin")
    assert len(user["password"]) >= 16  # generated and shown once

    text = (
        await voidllm(
            config,
            "users",
            "create",
            "--email",
            "dev@acme.io",
            "--org",
            org["id"],
            "--password-stdin",
            stdin=b"a long enough passphrase\n",
        )
    ).stdout.decode()
    assert "email: dev@acme.io" in text
    assert "password" not in text

    key = await as_json(
        config,
        "keys",
        "create",
        "--org",
        "acme-corp",
        "--name",
        "ci",
        "--user",
        "ops@acme.io",
        "--expires-in",
        "30d",
        "--daily-token-limit",
        "5000",
    )
    assert key["key"].startswith("vl_uk_")
    assert key["daily_token_limit"] == 5000
    listed = await as_json(config, "keys", "list", "--org", "acme-corp")
    assert [k["id"] for k in listed] == [key["id"]]
    assert "key" not in listed[0]

    async with run_gateway(gateway_config(config)) as gw:
        me = await gw.client.get("/api/v1/me", headers={"Authorization": f"Bearer {key['key']}"})
        assert me.status_code == 200
        assert me.json()["email"] == "ops@acme.io"

        rotation = await as_json(config, "keys", "rotate", key["id"])
        assert rotation["old_key"]["id"] == key["id"]
        assert rotation["new_key"]["key"].startswith("vl_uk_")
        await voidllm(config, "keys", "revoke", rotation["new_key"]["id"])
        await reload_key_cache(gw.state.keys, gw.state.store)  # without Redis: the next periodic reload
        for presented, status in ((key["key"], 200), (rotation["new_key"]["key"], 401)):
            response = await gw.client.get("/v1/models", headers={"Authorization": f"Bearer {presented}"})
            assert response.status_code == status


async def test_cli_refusals_are_messages_with_exit_code_1(tmp_path: Path) -> None:
    config = await migrated_config(tmp_path)
    missing = await voidllm(config, "keys", "list", "--org", "nowhere", check=False)
    assert missing.returncode == 1
    assert b"no organisation called 'nowhere'" in missing.stderr
    await voidllm(config, "orgs", "create", "--name", "Acme")
    duplicate = await voidllm(config, "orgs", "create", "--name", "Acme", check=False)
    assert duplicate.returncode == 1
    assert b"Traceback" not in duplicate.stderr
    assert duplicate.stderr.strip()
    bad = await voidllm(
        config, "keys", "create", "--org", "acme", "--name", "k", "--type", "team_key", check=False
    )
    assert bad.returncode == 1
    assert b"team" in bad.stderr
    assert b"Traceback" not in bad.stderr


@pytest.mark.redis
async def test_cli_revocation_reaches_a_running_gateway_through_redis_at_once(
    tmp_path: Path, redis_url: str
) -> None:
    redis = f"redis:\n  enabled: true\n  url: {redis_url}\n  key_prefix: 'cli-{uuid.uuid4().hex[:8]}:'\n"
    config = await migrated_config(tmp_path, redis)
    await voidllm(config, "orgs", "create", "--name", "Acme")
    await voidllm(config, "users", "create", "--email", "ops@acme.io", "--org", "acme")
    key = await as_json(config, "keys", "create", "--org", "acme", "--name", "ci", "--user", "ops@acme.io")
    async with run_gateway(gateway_config(config, redis)) as gw:
        auth = {"Authorization": f"Bearer {key['key']}"}
        assert (await gw.client.get("/v1/models", headers=auth)).status_code == 200
        await voidllm(config, "keys", "revoke", key["id"])

        async def refused() -> bool:
            return (await gw.client.get("/v1/models", headers=auth)).status_code == 401

        with trio.fail_after(1):  # the change notice, not the 30 s reload
            await poll_until(refused)


async def test_cli_names_its_config_and_database_and_refuses_to_create_an_empty_store(tmp_path: Path) -> None:
    """Issue 13 point 3: a management command says which file and database it uses, and a database that does
    not exist yet (a wrong --config, a wrong working directory) is refused instead of created empty."""
    config = write_config(tmp_path)
    database = tmp_path / "data" / "voidllm.db"
    refused = await voidllm(config, "orgs", "create", "--name", "Acme", check=False)
    stderr = refused.stderr.decode()
    assert refused.returncode == 2, stderr
    assert f"config {config}" in stderr
    assert f"database sqlite {database}" in stderr
    assert "no database at" in stderr
    assert "migrate-schema" in stderr
    assert "Traceback" not in stderr
    assert not database.exists()

    await voidllm(config, "migrate-schema")
    created = await voidllm(config, "orgs", "create", "--name", "Acme")
    assert f"database sqlite {database}" in created.stderr.decode()
