"""What ``voidllm serve`` loads: the heavy optional libraries only when their feature is on (issue 23: start
to ready and peak RSS). Each is a few MB and tens of milliseconds; together they were a fifth of the RSS.

A fresh interpreter builds the CLI's parser as ``voidllm serve`` does, starts the gateway on a config until it
is ready, and prints ``sorted(sys.modules)``: the test process itself has imported everything long before.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
from quart_trio import QuartTrio

from tests.process import write_config
from voidllm.web.app import LazyBuilderRule

_PROBE = """
import io, sys
from functools import partial

import orjson
import trio

from voidllm.cli import _parser
from voidllm.config import load_config
from voidllm.server import serve

args = _parser().parse_args(["serve", "--config", sys.argv[1]])
config = load_config(args.config)


async def main() -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve, config, stop, banner_out=io.StringIO()))
        modules = sorted(name for name, module in sys.modules.items() if module is not None)  # loaded
        stop.set()
    sys.stdout.buffer.write(orjson.dumps(modules))


trio.run(main)
"""

# Each optional feature's libraries (a package and everything below it).
TRACING = ("opentelemetry.sdk", "opentelemetry.exporter", "google.protobuf", "grpc")
SSO = ("authlib", "joserfc", "cryptography")  # voidllm.crypto uses PyCryptodome
CODE_MODE = ("wasmtime",)
GUARD = ("hyperscan", "phonenumbers", "stdnum")  # the prefilter and the validators' libraries
POSTGRES = ("psycopg",)
MIGRATIONS = ("alembic", "mako", "pygments")  # Mako's error pages import pygments
HTTPX_CLI = ("rich",)  # never needed by serve (voidllm._httpx_cli)
HTTPX = ("httpx", "httpcore")  # the rare paths' client, made at first use (voidllm.lazyhttp)
TOKEN_COUNTS = ("tiktoken",)  # the first count_tokens estimate loads it
CFFI = ("cffi", "pycparser")  # PyCryptodome is bound through ctypes (voidllm.crypto); argon2 needs neither
DEMO = ("voidllm.testing.mock_openai", "voidllm.testing.h11server")  # the first demo request loads them
OPTIONAL = TRACING + SSO + CODE_MODE + GUARD + POSTGRES + MIGRATIONS + HTTPX_CLI + HTTPX + TOKEN_COUNTS + CFFI
OPTIONAL += DEMO

MODEL = """
models:
  - name: mock
    provider: openai
    base_url: http://127.0.0.1:9/v1
    api_key: sk-upstream
"""


def loaded_at_ready(config: Path) -> set[str]:
    """The modules of a fresh ``voidllm serve`` process on ``config`` once it is ready."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(config)], capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return set(orjson.loads(done.stdout))


def among(modules: set[str], packages: tuple[str, ...]) -> set[str]:
    """The packages of ``packages`` that ``modules`` holds (the package or any module below it)."""
    return {p for p in packages if any(m == p or m.startswith(p + ".") for m in modules)}


def test_the_default_config_loads_no_optional_library(tmp_path: Path) -> None:
    """The first start creates the new database at the head without Alembic; a restart finds it there and
    loads none either."""
    config = write_config(tmp_path, MODEL)

    first = loaded_at_ready(config)
    assert among(first, OPTIONAL) == set()

    again = loaded_at_ready(config)
    assert among(again, OPTIONAL) == set()
    assert "voidllm.guard.detect" in again  # the guard's own detectors are there, not their libraries


def test_a_database_behind_the_head_is_migrated_by_alembic(tmp_path: Path) -> None:
    """Alembic is what upgrades an existing database: a start on one a revision behind loads it (and only
    then)."""
    from alembic import command

    from voidllm.store.engine import build_engine
    from voidllm.store.migrate import alembic_config, current_revision, head_revision

    config = write_config(tmp_path, MODEL)
    assert among(loaded_at_ready(config), OPTIONAL) == set()
    engine = build_engine("sqlite", str(tmp_path / "data" / "voidllm.db"))
    try:
        with engine.connect() as connection:
            command.downgrade(alembic_config(connection), "-1")
            connection.commit()
        assert current_revision(engine) != head_revision()

        assert among(loaded_at_ready(config), OPTIONAL) == set(MIGRATIONS)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_features_that_are_on_are_ready_at_start(tmp_path: Path) -> None:
    """Tracing, Code Mode, the gateway-wide guard and the upstream health probes (whose first round runs
    before the gateway is ready) load their libraries before the gateway is ready (so a broken install fails
    the start, and no request pays for the import)."""
    settings = """
        health_check:
          health:
            enabled: true
        otel:
          enabled: true
          endpoint: http://127.0.0.1:9
        mcp:
          code_mode:
            enabled: true
        guard:
          detectors:
            email: redact
    """
    loaded = loaded_at_ready(write_config(tmp_path, MODEL, settings=settings))
    assert among(loaded, OPTIONAL) == {
        "opentelemetry.sdk",
        "opentelemetry.exporter",
        "google.protobuf",
        "wasmtime",
        *GUARD,
        *HTTPX,
    }


def test_a_stored_guard_policy_prepares_the_prefilter_at_start(tmp_path: Path) -> None:
    """A guard set through the admin API (an organisation's, a team's, a key's or a model's) is in the
    ``policies`` table, not in the config: its presence is enough to build the prefilter before serving."""
    config = write_config(tmp_path, MODEL)
    assert among(loaded_at_ready(config), GUARD) == set()
    with sqlite3.connect(tmp_path / "data" / "voidllm.db") as db:
        db.execute(
            "INSERT INTO policies (scope_type, scope_id, guard, updated_at) VALUES (?, ?, ?, ?)",
            ("model", "m-1", '{"detectors": {"email": "redact"}}', "2026-01-01 00:00:00.000000"),
        )

    assert among(loaded_at_ready(config), OPTIONAL) == set(GUARD)


def test_routes_still_build_their_urls_with_builders_made_on_first_use() -> None:
    app = QuartTrio("lazy")
    app.url_rule_class = LazyBuilderRule

    @app.route("/v1/items/<item_id>/parts/<int:part>")
    async def part(item_id: str, part: int) -> str:
        return ""

    urls = app.url_map.bind("gateway.test")
    (rule,) = app.url_map.iter_rules("part")
    assert isinstance(rule, LazyBuilderRule)
    for _ in range(2):  # the first call makes the builder, the second uses it
        assert urls.build("part", {"item_id": "a b", "part": 3, "q": "1"}) == "/v1/items/a%20b/parts/3?q=1"
        assert urls.build("part", {"item_id": "x", "part": 4}, append_unknown=False) == "/v1/items/x/parts/4"
