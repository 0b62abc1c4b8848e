"""Migrations: from empty (created at the head, or by every Alembic migration), idempotent, reversible, and
serialised across replicas on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import sqlalchemy as sa
import trio

from tests.polling import poll_until
from voidllm.store import open_store
from voidllm.store.engine import build_engine
from voidllm.store.migrate import (
    HEAD_REVISION,
    PG_ADVISORY_LOCK_KEY,
    alembic_config,
    current_revision,
    head_revision,
    migrate,
    upgrade,
)
from voidllm.store.tables import metadata

pytestmark = pytest.mark.real_migrations

# pg_locks shows a bigint advisory key as classid (high 32 bits) and objid (low 32 bits).
_LOCK_CLASSID, _LOCK_OBJID = PG_ADVISORY_LOCK_KEY >> 32, PG_ADVISORY_LOCK_KEY & 0xFFFFFFFF


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(driver, dsn) of a fresh, empty database of each dialect."""
    if request.param == "sqlite":
        return "sqlite", request.getfixturevalue("sqlite_dsn")
    return "postgres", request.getfixturevalue("pg_dsn")


@pytest.fixture
def engine(db: tuple[str, str]) -> Iterator[sa.Engine]:
    engine = build_engine(*db)
    yield engine
    engine.dispose()


def _user_tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_head_revision_is_the_guard_findings_migration() -> None:
    assert head_revision() == "0006"


def test_the_head_revision_constant_is_alembics_head() -> None:
    """upgrade() skips Alembic for a database at HEAD_REVISION: a migration added without changing the
    constant would never run on a database at the previous head."""
    assert HEAD_REVISION == head_revision()


def test_config_needs_no_ini_file() -> None:
    config = alembic_config()
    assert config.config_file_name is None
    assert config.get_main_option("script_location") == "voidllm.store:migrations"


@pytest.mark.parametrize("create_empty", [True, False], ids=["created", "alembic"])
def test_upgrade_from_empty_creates_every_table(engine: sa.Engine, create_empty: bool) -> None:
    assert current_revision(engine) is None
    assert _user_tables(engine) == set()

    assert upgrade(engine, create_empty=create_empty) == head_revision()

    assert current_revision(engine) == head_revision()
    assert _user_tables(engine) == set(metadata.tables)


def test_upgrade_twice_is_a_no_op(engine: sa.Engine) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(metadata.tables["settings"]).values(key="instance_id", value="x"))

    assert upgrade(engine) == head_revision()

    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        assert connection.execute(sa.text("SELECT value FROM settings")).scalar_one() == "x"


@pytest.mark.parametrize("create_empty", [True, False], ids=["created", "alembic"])
def test_downgrade_to_base_and_back(engine: sa.Engine, create_empty: bool) -> None:
    """Also a database created at the head is one Alembic can take down (every migration's downgrade finds
    what it drops) and up again."""
    from alembic import command

    upgrade(engine, create_empty=create_empty)
    with engine.connect() as connection:
        command.downgrade(alembic_config(connection), "base")
        connection.commit()
    assert _user_tables(engine) == set()
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()


async def test_migrate_runs_in_the_store_worker_thread(db: tuple[str, str]) -> None:
    async with open_store(*db) as store:
        assert await migrate(store) == head_revision()
        assert await migrate(store) == head_revision()
        assert await store.run_engine(current_revision) == head_revision()


async def test_migrate_in_memory_sqlite_keeps_the_database_and_foreign_keys_on() -> None:
    async with open_store("sqlite", ":memory:") as store:
        await migrate(store)
        tables = await store.run(lambda c: set(sa.inspect(c).get_table_names()))
        assert set(metadata.tables) <= tables
        assert await store.run(lambda c: c.exec_driver_sql("PRAGMA foreign_keys").scalar_one()) == 1


@pytest.mark.parametrize("create_empty", [True, False], ids=["created", "alembic"])
def test_sqlite_foreign_keys_are_back_on_after_upgrade(sqlite_dsn: str, create_empty: bool) -> None:
    engine = build_engine("sqlite", sqlite_dsn)
    try:
        upgrade(engine, create_empty=create_empty)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("create_empty", [True, False], ids=["created", "alembic"])
def test_concurrent_upgrades_on_postgres_both_succeed_once(pg_dsn: str, create_empty: bool) -> None:
    engines = [build_engine("postgres", pg_dsn) for _ in range(2)]
    try:
        start = threading.Barrier(2)

        def replica(engine: sa.Engine) -> str:
            start.wait()
            return upgrade(engine, create_empty=create_empty)

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(replica, engines))

        assert results == [head_revision(), head_revision()]
        with engines[0].connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        assert _user_tables(engines[0]) == set(metadata.tables)
    finally:
        for engine in engines:
            engine.dispose()


def _advisory_waiters(conninfo: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid::bigint = %s AND objid::bigint = %s",
            (_LOCK_CLASSID, _LOCK_OBJID),
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.postgres
async def test_upgrade_waits_for_the_advisory_lock_held_by_another_replica(pg_dsn: str) -> None:
    """Another process (here: a raw connection) holds the lock; our upgrade must wait for it."""
    engine = build_engine("postgres", pg_dsn)
    holder = psycopg.connect(pg_dsn, autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", (PG_ADVISORY_LOCK_KEY,))
        async with trio.open_nursery() as nursery:
            result: list[str] = []

            async def run_upgrade() -> None:
                result.append(await trio.to_thread.run_sync(upgrade, engine))

            nursery.start_soon(run_upgrade)
            with trio.fail_after(10):  # the upgrade waits in another database session
                await poll_until(lambda: _advisory_waiters(pg_dsn) > 0)
            assert _user_tables(engine) == set()  # blocked before touching the schema

            holder.execute("SELECT pg_advisory_unlock(%s)", (PG_ADVISORY_LOCK_KEY,))
        assert result == [head_revision()]
        assert _user_tables(engine) == set(metadata.tables)
    finally:
        holder.close()
        engine.dispose()


@pytest.mark.postgres
def test_upgrade_releases_the_advisory_lock(pg_dsn: str) -> None:
    engine = build_engine("postgres", pg_dsn)
    try:
        upgrade(engine)
        with engine.connect() as connection:  # the pooled connection the migration used
            held = connection.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            ).scalar_one()
        assert held == 0
    finally:
        engine.dispose()
