"""Store: worker-thread transactions, error translation, concurrency bound, UTC round trips, engine setup."""

from __future__ import annotations

import sqlite3
import threading
import types
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
import trio
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import QueuePool, StaticPool

import voidllm.store
from tests.polling import poll_until
from voidllm.store import (
    Store,
    StoreError,
    StoreIntegrityError,
    StoreUnavailableError,
    build_engine,
    new_id,
    open_store,
    tables,
    translate_errors,
    utcnow,
)
from voidllm.store.migrate import migrate

MARKER = "zz-content-marker-4f1c"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(driver, dsn) of a fresh, empty database of each dialect."""
    if request.param == "sqlite":
        return "sqlite", request.getfixturevalue("sqlite_dsn")
    return "postgres", request.getfixturevalue("pg_dsn")


@pytest.fixture
async def store(db: tuple[str, str]) -> AsyncIterator[Store]:
    async with open_store(*db) as store:
        await migrate(store)
        yield store


def _insert_org(connection: sa.Connection, slug: str) -> str:
    org_id = new_id()
    connection.execute(sa.insert(tables.organizations).values(id=org_id, name=slug.upper(), slug=slug))
    return org_id


def _org_slugs(connection: sa.Connection) -> list[str]:
    return list(connection.scalars(sa.select(tables.organizations.c.slug).order_by("slug")))


# -- transactions --------------------------------------------------------------------------------------


async def test_run_commits_when_fn_returns(store: Store) -> None:
    org_id = await store.run(_insert_org, "acme")
    row = await store.run(lambda c: c.execute(sa.select(tables.organizations)).mappings().one())
    assert row["id"] == org_id
    assert row["is_active"] is True
    assert row["daily_token_limit"] == 0
    assert row["timezone"] == "UTC"


async def test_run_rolls_back_when_fn_raises(store: Store) -> None:
    class Boom(Exception):
        pass

    def insert_then_fail(connection: sa.Connection) -> None:
        _insert_org(connection, "doomed")
        raise Boom

    with pytest.raises(Boom):
        await store.run(insert_then_fail)
    assert await store.run(_org_slugs) == []


async def test_one_transaction_per_run(store: Store) -> None:
    def two_inserts_second_fails(connection: sa.Connection) -> None:
        _insert_org(connection, "first")
        _insert_org(connection, "first")  # duplicate slug

    with pytest.raises(StoreIntegrityError):
        await store.run(two_inserts_second_fails)
    assert await store.run(_org_slugs) == []


async def test_python_defaults_fill_ids_and_timestamps(store: Store) -> None:
    before = utcnow()

    def insert(connection: sa.Connection) -> str:
        result = connection.execute(sa.insert(tables.settings).values(key="k", value="v"))
        assert result.inserted_primary_key is not None
        key = result.inserted_primary_key[0]
        connection.execute(sa.insert(tables.organizations).values(name="n", slug="s"))
        return str(key)

    assert await store.run(insert) == "k"
    org = await store.run(lambda c: c.execute(sa.select(tables.organizations)).mappings().one())
    assert uuid.UUID(org["id"]).version == 7
    assert before <= org["created_at"] <= utcnow()


# -- error translation ----------------------------------------------------------------------------------


async def test_unique_violation_is_an_integrity_error_named_alike_on_both_dialects(store: Store) -> None:
    await store.run(_insert_org, MARKER)
    with pytest.raises(StoreIntegrityError) as caught:
        await store.run(_insert_org, MARKER)
    error = caught.value
    assert error.kind == "unique"
    assert error.constraint == "uq_organizations_slug"
    assert isinstance(error.__cause__, sa_exc.IntegrityError)
    assert MARKER not in str(error)
    assert error.status == 409


async def test_composite_unique_violation_names_the_constraint(store: Store) -> None:
    def two_teams(connection: sa.Connection) -> None:
        org_id = _insert_org(connection, "acme")
        for _ in range(2):
            connection.execute(sa.insert(tables.teams).values(org_id=org_id, name="T", slug="t"))

    with pytest.raises(StoreIntegrityError) as caught:
        await store.run(two_teams)
    assert (caught.value.kind, caught.value.constraint) == ("unique", "uq_teams_org_id_slug")


async def test_partial_unique_index_violation_names_the_index(store: Store) -> None:
    def two_global_servers(connection: sa.Connection) -> None:
        for _ in range(2):
            connection.execute(sa.insert(tables.mcp_servers).values(name="n", alias="files", url="http://x"))

    with pytest.raises(StoreIntegrityError) as caught:
        await store.run(two_global_servers)
    assert (caught.value.kind, caught.value.constraint) == ("unique", "uq_mcp_servers_global_alias")


async def test_scoped_aliases_may_repeat_across_scopes(store: Store) -> None:
    def servers(connection: sa.Connection) -> int:
        org_id = _insert_org(connection, "acme")
        team_id = new_id()
        connection.execute(sa.insert(tables.teams).values(id=team_id, org_id=org_id, name="T", slug="t"))
        for scope in ({}, {"org_id": org_id}, {"org_id": org_id, "team_id": team_id}):
            values = {"name": "n", "alias": "files", "url": "u", **scope}
            connection.execute(sa.insert(tables.mcp_servers).values(values))
        return len(connection.execute(sa.select(tables.mcp_servers.c.id)).all())

    assert await store.run(servers) == 3


async def test_foreign_keys_are_enforced(store: Store) -> None:
    def orphan_membership(connection: sa.Connection) -> None:
        connection.execute(sa.insert(tables.org_memberships).values(org_id=new_id(), user_id=new_id()))

    with pytest.raises(StoreIntegrityError) as caught:
        await store.run(orphan_membership)
    assert caught.value.kind == "foreign_key"


async def test_deleting_an_org_cascades_to_its_memberships_and_keys(store: Store) -> None:
    def setup(connection: sa.Connection) -> str:
        org_id = _insert_org(connection, "acme")
        user_id = new_id()
        connection.execute(sa.insert(tables.users).values(id=user_id, email="a@example.com"))
        connection.execute(sa.insert(tables.org_memberships).values(org_id=org_id, user_id=user_id))
        connection.execute(
            sa.insert(tables.api_keys).values(
                key_hash="0" * 64,
                key_hint="vl_uk_...0000",
                key_type="user_key",
                org_id=org_id,
                user_id=user_id,
            )
        )
        return org_id

    def delete_and_count(connection: sa.Connection, org_id: str) -> tuple[int, int]:
        connection.execute(sa.delete(tables.organizations).where(tables.organizations.c.id == org_id))
        memberships = connection.execute(sa.select(sa.func.count()).select_from(tables.org_memberships))
        keys = connection.execute(sa.select(sa.func.count()).select_from(tables.api_keys))
        return memberships.scalar_one(), keys.scalar_one()

    org_id = await store.run(setup)
    assert await store.run(delete_and_count, org_id) == (0, 0)


async def test_not_null_violation(store: Store) -> None:
    def no_name(connection: sa.Connection) -> None:
        connection.execute(sa.insert(tables.organizations).values(slug="x", name=None))

    with pytest.raises(StoreIntegrityError) as caught:
        await store.run(no_name)
    assert caught.value.kind == "not_null"


async def test_other_sqlalchemy_errors_are_store_errors_without_parameters(store: Store) -> None:
    def bad_sql(connection: sa.Connection) -> None:
        connection.execute(sa.text("SELECT * FROM no_such_table WHERE x = :x"), {"x": MARKER})

    with pytest.raises(StoreError) as caught:
        await store.run(bad_sql)
    assert type(caught.value) is StoreError
    assert MARKER not in str(caught.value)
    assert MARKER not in str(caught.value.__cause__)  # hide_parameters=True


async def test_ping_succeeds_on_a_live_database(store: Store) -> None:
    await store.ping()


@pytest.mark.postgres
async def test_ping_on_a_closed_port_is_unavailable() -> None:
    async with open_store("postgres", "postgresql://postgres@127.0.0.1:1/nothing") as store:
        with pytest.raises(StoreUnavailableError) as caught:
            await store.ping()
    assert caught.value.status == 503
    assert str(caught.value) == "database unavailable: OperationalError"


async def test_ping_on_an_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()  # a directory where the database file should be
    async with open_store("sqlite", str(tmp_path / "dir.db")) as store:
        with pytest.raises(StoreUnavailableError):
            await store.ping()


@pytest.mark.parametrize(
    ("wrapper", "orig", "expected"),
    [
        (sa_exc.OperationalError, sqlite3.OperationalError("database is locked"), StoreUnavailableError),
        (sa_exc.OperationalError, sqlite3.OperationalError("unable to open database"), StoreUnavailableError),
        (sa_exc.OperationalError, sqlite3.OperationalError("no such table: users"), StoreError),
        (sa_exc.InterfaceError, sqlite3.InterfaceError("closed database"), StoreUnavailableError),
        (sa_exc.ProgrammingError, sqlite3.ProgrammingError("syntax"), StoreError),
    ],
)
def test_sqlite_errors_are_classified_by_cause(
    wrapper: type[sa_exc.DBAPIError], orig: Exception, expected: type
) -> None:
    with pytest.raises(expected) as caught, translate_errors():
        raise wrapper("SELECT :x", {"x": MARKER}, orig)
    assert type(caught.value) is expected
    assert MARKER not in str(caught.value)


def test_pool_timeout_is_unavailable() -> None:
    with pytest.raises(StoreUnavailableError), translate_errors():
        raise sa_exc.TimeoutError("QueuePool limit reached")


def test_non_sqlalchemy_errors_pass_through() -> None:
    with pytest.raises(KeyError), translate_errors():
        raise KeyError("x")


# -- datetimes ----------------------------------------------------------------------------------------------


async def test_aware_datetimes_round_trip_as_utc(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2024, 3, 31, 1, 30, 15, 123456, tzinfo=plus_two)

    def write_and_read(connection: sa.Connection) -> datetime:
        org_id = _insert_org(connection, "acme")
        connection.execute(
            sa.update(tables.organizations)
            .where(tables.organizations.c.id == org_id)
            .values(deleted_at=moment)
        )
        return connection.execute(sa.select(tables.organizations.c.deleted_at)).scalar_one()

    stored = await store.run(write_and_read)
    assert stored == moment
    assert stored.tzinfo == UTC
    assert stored.hour == 23  # 01:30 at +02:00 is 23:30 UTC the day before


async def test_datetime_comparisons_are_chronological_across_offsets(store: Store) -> None:
    base = datetime(2024, 1, 1, 12, tzinfo=UTC)
    events = [base + timedelta(minutes=m) for m in (0, 30, 90)]

    def write(connection: sa.Connection) -> None:
        rows = [
            {
                "key_id": new_id(),
                "key_type": "user_key",
                "org_id": "o",
                "model_name": "m",
                "created_at": created,
            }
            for created in events
        ]
        connection.execute(sa.insert(tables.usage_events), rows)

    def since(connection: sa.Connection, start: datetime) -> int:
        query = sa.select(sa.func.count()).where(tables.usage_events.c.created_at >= start)
        return connection.execute(query).scalar_one()

    await store.run(write)
    # 13:15 UTC expressed at -05:00: only the 13:30 event is at or after it.
    start = (base + timedelta(minutes=75)).astimezone(timezone(timedelta(hours=-5)))
    assert await store.run(since, start) == 1


async def test_naive_datetimes_are_rejected(store: Store) -> None:
    def naive(connection: sa.Connection) -> None:
        moment = datetime(2024, 1, 1)  # naive on purpose
        connection.execute(sa.insert(tables.settings).values(key="k", value="v", updated_at=moment))

    with pytest.raises(StoreError):
        await store.run(naive)


# -- concurrency, cancellation, closing -----------------------------------------------------------------


@pytest.mark.postgres
async def test_capacity_limiter_bounds_concurrent_database_calls(pg_dsn: str) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()
    release = threading.Event()

    def hold(connection: sa.Connection) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        release.wait(10)
        connection.execute(sa.text("SELECT 1"))
        with lock:
            active -= 1

    async with open_store("postgres", pg_dsn, max_open_conns=2, max_idle_conns=1) as store:
        assert store.capacity == 2
        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(store.run, hold)
            with trio.fail_after(10):  # two calls inside the database (threads), four queued in trio
                await poll_until(lambda: active >= 2 and store.statistics().tasks_waiting >= 4, interval=0.01)
            assert store.statistics().borrowed_tokens == 2
            release.set()
    assert peak == 2


async def test_sqlite_store_runs_one_call_at_a_time(sqlite_dsn: str) -> None:
    async with open_store("sqlite", sqlite_dsn) as store:
        assert store.capacity == 1
    async with open_store("sqlite", ":memory:") as store:
        assert store.capacity == 1


async def test_cancelled_run_waits_for_the_thread_and_its_commit(store: Store) -> None:
    started = threading.Event()
    release = threading.Event()

    def slow_insert(connection: sa.Connection) -> str:
        started.set()
        release.wait(10)
        return _insert_org(connection, "late")

    scope = trio.CancelScope()
    returned: list[str] = []
    after_checkpoint: list[bool] = []

    async def caller() -> None:
        with scope:
            returned.append(await store.run(slow_insert))
            await trio.lowlevel.checkpoint()  # the cancellation is delivered here
            after_checkpoint.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(caller)
        with trio.fail_after(10):
            await poll_until(started.is_set, interval=0.01)  # set in the store's worker thread
        scope.cancel()
        release.set()
    assert scope.cancelled_caught
    assert len(returned) == 1  # run() waited for the thread and handed back its result
    assert after_checkpoint == []
    assert await store.run(_org_slugs) == ["late"]


async def test_closed_store_refuses_work_and_closes_twice(sqlite_dsn: str) -> None:
    async with open_store("sqlite", sqlite_dsn) as store:
        await store.ping()
    with pytest.raises(trio.ClosedResourceError):
        await store.ping()
    await store.aclose()


# -- engine --------------------------------------------------------------------------------------------


async def test_sqlite_pragmas_and_parent_directories(sqlite_dsn: str) -> None:
    assert not Path(sqlite_dsn).parent.exists()
    async with open_store("sqlite", sqlite_dsn) as store:
        assert Path(sqlite_dsn).parent.is_dir()

        def pragmas(connection: sa.Connection) -> dict[str, object]:
            names = ("foreign_keys", "journal_mode", "synchronous", "busy_timeout", "cache_size")
            return {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar_one() for name in names}

        assert await store.run(pragmas) == {
            "foreign_keys": 1,
            "journal_mode": "wal",
            "synchronous": 1,  # NORMAL
            "busy_timeout": 5000,
            "cache_size": -256,  # KiB
        }


async def test_sqlite_memory_database_persists_across_calls() -> None:
    async with open_store("sqlite", ":memory:") as store:
        assert isinstance(store.engine.pool, StaticPool)
        await store.run(lambda c: c.exec_driver_sql("CREATE TABLE t (x INTEGER)"))
        await store.run(lambda c: c.exec_driver_sql("INSERT INTO t VALUES (1)"))
        assert await store.run(lambda c: c.exec_driver_sql("SELECT x FROM t").scalar_one()) == 1


async def test_sqlite_transactions_are_real_and_immediate(sqlite_dsn: str) -> None:
    """pysqlite's implicit transactions are off: a read-only transaction already holds the write lock."""
    async with open_store("sqlite", sqlite_dsn) as store:

        def in_transaction(connection: sa.Connection) -> bool:
            connection.exec_driver_sql("SELECT 1")
            raw = connection.connection.driver_connection
            assert raw is not None
            return bool(raw.in_transaction)

        assert await store.run(in_transaction) is True


@pytest.mark.parametrize(
    "dsn",
    [
        "postgres://u:p@db.example:5433/voidllm?sslmode=require",
        "postgresql://u:p@db.example:5433/voidllm?sslmode=require",
        "postgresql+psycopg://u:p@db.example:5433/voidllm?sslmode=require",
    ],
)
def test_postgres_dsns_use_psycopg_and_the_pool_knobs(dsn: str) -> None:
    engine = build_engine("postgres", dsn, max_open_conns=10, max_idle_conns=3, conn_max_lifetime=120)
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.url.host == "db.example"
        assert engine.url.port == 5433
        assert engine.url.query == {"sslmode": "require"}
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.size() == 3
        assert pool._max_overflow == 7
        assert pool._recycle == 120
        assert pool._pre_ping is True
        assert engine.hide_parameters is True
    finally:
        engine.dispose()


def test_sqlite_file_uses_one_pooled_connection(sqlite_dsn: str) -> None:
    engine = build_engine("sqlite", sqlite_dsn, max_open_conns=50)
    try:
        assert isinstance(engine.pool, QueuePool)
        assert (engine.pool.size(), engine.pool._max_overflow) == (1, 0)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("driver", "dsn"),
    [("mysql", "x"), ("postgres", "mysql://x/y"), ("sqlite", "sqlite:///x.db")],
)
def test_bad_driver_or_dsn_is_a_value_error(driver: str, dsn: str) -> None:
    with pytest.raises(ValueError, match=r"driver|DSN"):
        build_engine(driver, dsn)


# -- ids and exports ----------------------------------------------------------------------------------


def test_new_id_is_uuid7_text_in_creation_order() -> None:
    ids = [new_id() for _ in range(100)]
    assert all(len(i) == 36 and uuid.UUID(i).version == 7 for i in ids)
    assert len(set(ids)) == 100
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)  # millisecond timestamp prefix


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_exports_are_exactly_the_public_names() -> None:
    public = {name for name in vars(voidllm.store) if not name.startswith("_")}
    # submodules are attributes once imported (the migrate command imports transfer, for one)
    submodules = {name for name in public if isinstance(getattr(voidllm.store, name), types.ModuleType)}
    assert {"engine", "errors", "ids", "migrate", "store", "tables", "types"} <= submodules
    assert isinstance(voidllm.store.migrate, types.ModuleType)
    assert set(voidllm.store.__all__) == public - submodules
