"""Issue 20 point 8: the sizing guide (docs/sizing.md) names real settings, quotes the code's defaults and
periods, and describes what happens to an older build facing a newer schema as it happens."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
import yaml
from alembic.util import CommandError

from voidllm.admin.mcp_servers import REFRESH_INTERVAL
from voidllm.auth.throttle import LoginThrottle
from voidllm.auth.throttle_redis import RedisLoginThrottle
from voidllm.bus import POLL_INTERVAL
from voidllm.config import Config
from voidllm.store.migrate import PG_ADVISORY_LOCK_KEY, current_revision, head_revision, migrate
from voidllm.store.store import open_store

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "sizing.md"


def _guide() -> str:
    """The guide with its line breaks and indentation folded, so phrases match across wrapped lines."""
    return " ".join(GUIDE.read_text().split())


def test_the_readme_links_the_guide() -> None:
    assert "[docs/sizing.md](docs/sizing.md)" in (ROOT / "README.md").read_text()


def _setting(path: str) -> Any:
    """The default value of a dotted ``voidllm.yaml`` key; KeyError naming the key if there is none."""
    value: Any = Config()
    for part in path.split("."):
        names = {field.name for field in attrs.fields(type(value))}
        if part not in names:
            raise KeyError(path)
        value = getattr(value, part)
    return value


def test_every_setting_the_guide_names_exists() -> None:
    sections = {field.name for field in attrs.fields(Config)}
    named = {
        name.split(":")[0]
        for name in re.findall(r"`([a-z_]+(?:\.[a-z_]+)+(?::[^`]*)?)`", GUIDE.read_text())
        if name.split(".")[0] in sections
    }
    assert {"server.workers", "database.max_open_conns", "redis.enabled", "redis.on_error"} <= named
    for name in sorted(named):
        _setting(name)


def test_the_defaults_and_periods_it_quotes_are_the_codes() -> None:
    text = _guide()
    defaults = {
        "database.max_idle_conns": "5",
        "database.max_open_conns": "25",
        "database.conn_max_lifetime": "5 min",
        "redis.pool_size": "16",
        "cache.key_ttl": "30 s",
        "cache.model_ttl": "60 s",
    }
    for name, shown in defaults.items():
        assert f"`{name}` ({shown})" in text, name
        number, _, unit = shown.partition(" ")
        assert _setting(name) == float(number) * (60 if unit == "min" else 1), name
    assert f"every {POLL_INTERVAL * 1000:g} ms" in text
    for throttle in (LoginThrottle(), RedisLoginThrottle(client=None, prefix="")):  # type: ignore[arg-type]
        assert f"({throttle.max_per_ip} attempts per {throttle.ip_window:g} s)" in text
        assert (
            f"({throttle.max_failures} evaluated failures, then {throttle.lockout / 60:g} min locked)" in text
        )
    assert f"cooldown ({REFRESH_INTERVAL:g} s per server)" in text
    assert f"advisory lock `{PG_ADVISORY_LOCK_KEY}`" in text


def test_its_connection_examples_match_the_deployment_files() -> None:
    text = _guide()
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    replicas = [name for name in compose["services"] if name.startswith("gateway")]
    assert f"`compose.yaml`: {len(replicas)} replicas x 1 worker x 25 | {len(replicas) * 25} |" in text
    helm = ROOT / "deploy" / "helm" / "voidllm"
    values = yaml.safe_load((helm / "values-production.yaml").read_text())
    conns = values["config"]["database"]["max_open_conns"]
    workers = values["config"]["server"]["workers"]
    pods = values["autoscaling"]["maxReplicas"]
    assert values["redis"]["enabled"]  # no lease connections in the example
    assert (
        f"`max_open_conns: {conns}` x {workers} workers x `maxReplicas: {pods}` | {conns * workers * pods} |"
        in text
    )
    assert "maxSurge: 1" in (helm / "templates" / "deployment.yaml").read_text()
    assert f"{pods + 1} x {workers} x {conns} = {(pods + 1) * workers * conns}" in text


def _set_revision(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


async def test_an_older_build_refuses_a_schema_migrated_by_a_newer_one(tmp_path: Path) -> None:
    """The guide's "Schema version check": the start's migration step fails on a revision this build does
    not ship, and changes nothing."""
    assert "Can't locate revision identified by '<revision>'" in _guide()
    async with open_store("sqlite", str(tmp_path / "voidllm.db")) as store:
        assert await migrate(store) == head_revision()
        assert await migrate(store) == head_revision()  # at head: nothing to do
        await store.run_engine(_set_revision, "9999")
        with pytest.raises(CommandError, match="Can't locate revision identified by '9999'"):
            await migrate(store)
        assert await store.run_engine(current_revision) == "9999"
