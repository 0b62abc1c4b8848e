"""Shared fixtures: real SQLite files, a fresh database on this machine's PostgreSQL, the real Redis.

Tests that need PostgreSQL or Redis skip when the service is not answering, unless
``VOIDLLM_REQUIRE_SERVICES=1`` (set by ``.ci/run``), in which case they fail: CI must never pass by skipping.

Most tests start a gateway on an empty SQLite file, which the gateway creates at the head from the metadata
(tens of milliseconds): in the test process an empty SQLite file is instead given a copy of one database
that the real upgrade made once per session (see :func:`_sqlite_template_migrations`). Modules marked
``real_migrations`` (those about the migrations themselves), other dialects, databases that already hold
tables and processes the tests spawn all run the real upgrade as in production.

A PostgreSQL database cannot be copied into after it exists, so the copy happens when it is made: each test's
database is ``CREATE DATABASE ... TEMPLATE`` a database that the real upgrade made once per test process (see
:func:`fresh_pg_database`); gateways starting on it, in process or spawned, find the schema at head. Tests
marked ``real_migrations`` get an empty database, as before (about 0.8 s of Alembic per test).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
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
from voidllm.store import migrate

PG_DSN = os.environ.get("VOIDLLM_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("VOIDLLM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("VOIDLLM_REQUIRE_SERVICES", "") not in ("", "0", "false")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In a pytest-xdist worker: the modules with the most ``slow`` tests (real processes, browsers) first,
    then the others by their number of tests (xdist's own order). scripts/test distributes whole modules in
    this order (``--dist loadfile --no-loadscope-reorder``); xdist's order alone, most tests first, leaves
    the modules of one or two long tests (the API fuzzer, the image install, the multi-process tests) for
    last, where one worker still runs the last of them while the other has nothing left to take."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)  # as xdist's loadfile groups

    def longest_first(tests: list[pytest.Item]) -> tuple[int, int]:
        return -sum(1 for test in tests if test.get_closest_marker("slow")), -len(tests)

    items[:] = [item for tests in sorted(modules.values(), key=longest_first) for item in tests]


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


_template_copy_lock = threading.Lock()
_alembic_upgrade = migrate.upgrade  # the real one, taken before any test puts its stand-in in place


@pytest.fixture(scope="session")
def _migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file brought to the head in this session by the real ``upgrade`` (created from the metadata,
    as a first start does), with the gateway's own pragmas (WAL)."""
    from voidllm.store.engine import build_engine
    from voidllm.store.migrate import upgrade

    path = tmp_path_factory.mktemp("migrated") / "template.db"
    engine = build_engine("sqlite", str(path))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return path


@pytest.fixture(autouse=True)
def _sqlite_template_migrations(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, _migrated_sqlite_template: Path
) -> None:
    """``voidllm.store.migrate.upgrade`` copies the session's migrated template into an empty SQLite file
    (SQLite's backup API, through a connection of its own) instead of building the schema again; anything
    else (PostgreSQL, in-memory databases, a database holding tables, ``create_empty=False``, a module marked
    ``real_migrations``) goes to the real one. The copy is the schema and ``alembic_version`` the real one
    wrote, so the gateway sees exactly what a first start leaves behind."""
    if request.node.get_closest_marker("real_migrations"):
        return
    alembic_upgrade = migrate.upgrade

    def upgrade(engine: Any, *, create_empty: bool = True) -> str:
        path = engine.url.database
        if not create_empty or engine.dialect.name != "sqlite" or not path or path == ":memory:":
            return alembic_upgrade(engine, create_empty=create_empty)
        with _template_copy_lock:  # two gateways starting together on one file: one copy, one no-op
            target = sqlite3.connect(path, timeout=10)
            try:
                if target.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    return alembic_upgrade(engine)
                template = sqlite3.connect(_migrated_sqlite_template)
                try:
                    template.backup(target)
                finally:
                    template.close()
            finally:
                target.close()
        return migrate.head_revision()

    monkeypatch.setattr(migrate, "upgrade", upgrade)


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
def pg_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """A freshly created PostgreSQL database, dropped afterwards: migrated to head (a copy of this process's
    migrated template), or empty in a test marked ``real_migrations``."""
    with fresh_pg_database(empty=request.node.get_closest_marker("real_migrations") is not None) as dsn:
        yield dsn


@contextmanager
def fresh_pg_database(*, empty: bool = False) -> Iterator[str]:
    """The DSN of a freshly created PostgreSQL database, dropped on exit (also for fixtures of a wider scope
    than :func:`pg_dsn`): a copy of :func:`_pg_template`, whose schema the real upgrade brought to the head,
    or an empty database when ``empty``."""
    if not _service_answers(PG_DSN, 5432):
        _missing("PostgreSQL")
    import psycopg

    template = "" if empty else f' TEMPLATE "{_pg_template()}"'
    name = f"voidllm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{template}')
    try:
        yield _pg_database_dsn(name)
    finally:
        _drop_pg_database(name)


def _pg_database_dsn(name: str) -> str:
    return urlunsplit(urlsplit(PG_DSN)._replace(path=f"/{name}"))


def _drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_pg_template_lock = threading.Lock()
_pg_template_name: list[str] = []  # made at most once per test process; dropped by _drop_pg_template


def _pg_template() -> str:
    """The name of a database that the real upgrade brought to the head in this test process (one per xdist
    worker, so no other process depends on it), made on first use. ``CREATE DATABASE ... TEMPLATE`` needs a
    template nobody is connected to: the engine that made it is disposed before anyone copies it."""
    with _pg_template_lock:
        if not _pg_template_name:
            import psycopg

            from voidllm.store.engine import build_engine

            name = f"voidllm_template_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            engine = build_engine("postgres", _pg_database_dsn(name))
            try:
                _alembic_upgrade(engine)
            except BaseException:
                _drop_pg_database(name)  # never a half-migrated template
                raise
            finally:
                engine.dispose()
            _pg_template_name.append(name)
        return _pg_template_name[0]


@pytest.fixture(scope="session", autouse=True)
def _drop_pg_template() -> Iterator[None]:
    yield
    if _pg_template_name:
        _drop_pg_database(_pg_template_name[0])


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
    """(driver, dsn) of a new database: an empty SQLite file, then a fresh PostgreSQL database (see
    :func:`pg_dsn`)."""
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
