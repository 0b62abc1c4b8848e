"""Shared fixtures: real SQLite files, a fresh database on this machine's PostgreSQL, the real Redis.

Tests that need PostgreSQL or Redis skip when the service is not answering, unless
``VOIDLLM_REQUIRE_SERVICES=1`` (set by ``.ci/run``), in which case they fail: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.admin_fixtures import (  # noqa: F401 (fixtures for every test module)
    admin_world,
    admin_world_each_dialect,
)

PG_DSN = os.environ.get("VOIDLLM_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("VOIDLLM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("VOIDLLM_REQUIRE_SERVICES", "") not in ("", "0", "false")


@pytest.fixture(scope="session")
def _cheapest_password_scheme() -> Any:
    from argon2.profiles import CHEAPEST

    from voidllm.auth import passwords

    return passwords._Scheme.of(passwords.build_hasher(CHEAPEST))


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch, _cheapest_password_scheme: Any) -> None:
    """argon2's cheapest parameters in the test process: the defaults cost about half a second of CPU per
    hash, and every in-process gateway hashes its bootstrap admin's password. Processes the tests spawn
    (``voidllm serve``) keep the defaults; tests/test_passwords.py checks the production parameters."""
    from voidllm.auth import passwords

    monkeypatch.setattr(passwords, "_SCHEME", _cheapest_password_scheme)


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's shell out of the tests: proxies, SSL overrides and VoidLLM settings."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.endswith("_PROXY") or upper.startswith("SSL_") or upper.startswith("VOIDLLM_"):
            if not upper.startswith("VOIDLLM_TEST_") and upper != "VOIDLLM_REQUIRE_SERVICES":
                monkeypatch.delenv(name, raising=False)


def _service_answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _missing(service: str) -> None:
    message = f"{service} is not answering"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and VOIDLLM_REQUIRE_SERVICES is set")
    pytest.skip(message)


@pytest.fixture
def sqlite_dsn(tmp_path: Path) -> str:
    """A path for a fresh SQLite database file inside the test's own directory."""
    return str(tmp_path / "data" / "voidllm.db")


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A freshly created, empty PostgreSQL database; dropped afterwards."""
    with fresh_pg_database() as dsn:
        yield dsn


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """The DSN of a freshly created, empty PostgreSQL database, dropped on exit (also for fixtures of a
    wider scope than :func:`pg_dsn`)."""
    if not _service_answers(PG_DSN, 5432):
        _missing("PostgreSQL")
    import psycopg

    name = f"voidllm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(PG_DSN)
    dsn = urlunsplit(parts._replace(path=f"/{name}"))
    try:
        yield dsn
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> str:
    """The URL of this machine's Redis server."""
    return redis_server_url()


def redis_server_url() -> str:
    """The URL of this machine's Redis server, if it answers (also for fixtures of a wider scope than
    :func:`redis_url`)."""
    if not _service_answers(REDIS_URL, 6379):
        _missing("Redis")
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgres"])
def db_target(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(driver, dsn) of an empty database: an SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return "sqlite", request.getfixturevalue("sqlite_dsn")
    return "postgres", request.getfixturevalue("pg_dsn")


@pytest.fixture
async def store(db_target: tuple[str, str]) -> Any:
    """A migrated store on each dialect, closed afterwards."""
    from voidllm.store.migrate import migrate
    from voidllm.store.store import open_store

    driver, dsn = db_target
    async with open_store(driver, dsn) as opened:
        await migrate(opened)
        yield opened
