"""The migrated schema equals ``tables.metadata`` on both dialects, a new database created at the head equals
a migrated one, and the schema has what the app needs; the test suite's copies of a template (SQLite and
PostgreSQL) equal what the gateway's own upgrade writes."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.conftest import fresh_pg_database
from voidllm.store import migrate as migrate_module
from voidllm.store import open_store, tables
from voidllm.store.engine import build_engine
from voidllm.store.migrate import head_revision, upgrade
from voidllm.store.tables import metadata

EXPECTED_TABLES = {
    "organizations",
    "users",
    "org_memberships",
    "teams",
    "team_memberships",
    "service_accounts",
    "api_keys",
    "models",
    "model_deployments",
    "model_aliases",
    "org_model_access",
    "team_model_access",
    "key_model_access",
    "usage_events",
    "usage_hourly",
    "audit_logs",
    "invite_tokens",
    "settings",
    "mcp_servers",
    "org_mcp_access",
    "team_mcp_access",
    "key_mcp_access",
    "mcp_tool_calls",
    "mcp_tool_blocklist",
    "mcp_server_tools",
    "output_schemas",
    "change_notices",
    "org_sso_config",
    "incidents",
    "policies",
}


@pytest.fixture(
    params=[
        ("sqlite", False),
        ("sqlite", True),
        pytest.param(("postgres", False), marks=pytest.mark.postgres),
        pytest.param(("postgres", True), marks=pytest.mark.postgres),
    ],
    ids=["sqlite-alembic", "sqlite-created", "postgres-alembic", "postgres-created"],
)
def migrated(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """An engine on a new database of each dialect brought to the head both ways: every migration run by
    Alembic, and created from the metadata as a first start does (``create_empty``)."""
    dialect, create_empty = request.param
    if dialect == "sqlite":
        engine = build_engine("sqlite", request.getfixturevalue("sqlite_dsn"))
    else:
        engine = build_engine("postgres", request.getfixturevalue("pg_dsn"))
    upgrade(engine, create_empty=create_empty)
    yield engine
    engine.dispose()


@pytest.mark.real_migrations  # PostgreSQL: an empty database that Alembic migrates, not the suite's copy
def test_migrated_schema_matches_metadata(migrated: sa.Engine) -> None:
    with migrated.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, metadata) == []


@pytest.mark.real_migrations
def test_partial_unique_indexes_match_metadata(migrated: sa.Engine) -> None:
    """compare_metadata ignores index WHERE clauses, so compare them here."""
    dialect = migrated.dialect.name
    inspector = sa.inspect(migrated)
    for table in metadata.tables.values():
        expected = {ix.name: _where(ix.dialect_kwargs.get(f"{dialect}_where")) for ix in table.indexes}
        reflected = {
            ix["name"]: _where(ix.get("dialect_options", {}).get(f"{dialect}_where"))
            for ix in inspector.get_indexes(table.name)
            if not ix.get("duplicates_constraint")  # PostgreSQL lists unique constraints' indexes too
        }
        assert reflected == expected, table.name


def _where(clause: object) -> str | None:
    if clause is None:
        return None
    return re.sub(r"[()\s]+", " ", str(clause)).strip().lower()


_CONSTRAINT = ("CONSTRAINT ", "PRIMARY KEY", "UNIQUE", "FOREIGN KEY", "CHECK")


def _clauses(body: str) -> list[str]:
    """The clauses of a ``CREATE TABLE``'s parentheses, split at the commas outside parentheses and quotes."""
    clauses, depth, quote, start = [], 0, "", 0
    for at, char in enumerate(body):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            clauses.append(body[start:at].strip())
            start = at + 1
    return [*clauses, body[start:].strip()]


def _sqlite_schema(path: Path) -> dict[tuple[str, str], object]:
    """Each object of ``sqlite_master``; a table as its columns in order and its constraints as a set (SQLite
    keeps a table's text as written: Alembic's ``ALTER TABLE ADD COLUMN`` appends on the last line, and a
    ``CREATE TABLE`` from the metadata lists the constraints in another order)."""
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    finally:
        connection.close()
    schema: dict[tuple[str, str], object] = {}
    for kind, name, sql in rows:
        if kind == "table" and sql:
            clauses = _clauses(sql[sql.index("(") + 1 : sql.rindex(")")])
            columns = [c for c in clauses if not c.startswith(_CONSTRAINT)]
            schema[kind, name] = (columns, sorted(set(clauses) - set(columns)))
        else:
            schema[kind, name] = sql
    return schema


def test_a_new_sqlite_database_is_created_as_alembic_would_migrate_it(tmp_path: Path) -> None:
    """A first start creates the schema from the metadata instead of running every migration: the same
    tables, columns in the same order, constraints, indexes (partial ones' WHERE included) and revision."""
    created, migrated = tmp_path / "created.db", tmp_path / "migrated.db"
    for path, create_empty in ((created, True), (migrated, False)):
        engine = build_engine("sqlite", str(path))
        try:
            assert upgrade(engine, create_empty=create_empty) == head_revision()
        finally:
            engine.dispose()
    schema = _sqlite_schema(created)
    assert ("table", "usage_events") in schema
    assert ("table", "alembic_version") in schema
    assert schema == _sqlite_schema(migrated)
    for path in (created, migrated):
        connection = sqlite3.connect(path)
        try:
            assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
                (head_revision(),)
            ]
        finally:
            connection.close()


@pytest.mark.postgres
@pytest.mark.real_migrations
def test_a_new_postgres_database_is_created_exactly_as_alembic_would_migrate_it(pg_dsn: str) -> None:
    """The same on PostgreSQL, where ``pg_dump`` writes each object in a canonical form: equal line for line
    (``alembic_version``'s row included)."""
    engine = build_engine("postgres", pg_dsn)
    try:
        assert upgrade(engine) == head_revision()
    finally:
        engine.dispose()
    created = pg_dump(pg_dsn)
    with fresh_pg_database(empty=True) as empty_dsn:
        engine = build_engine("postgres", empty_dsn)
        try:
            assert upgrade(engine, create_empty=False) == head_revision()
        finally:
            engine.dispose()
        migrated = pg_dump(empty_dsn)
    assert any(line.startswith("CREATE TABLE public.usage_events") for line in created)
    assert created == migrated


def test_every_table_of_the_data_model_exists() -> None:
    assert set(metadata.tables) == EXPECTED_TABLES


def test_append_only_tables_have_no_foreign_keys() -> None:
    for name in ("usage_events", "usage_hourly", "mcp_tool_calls", "audit_logs"):
        assert metadata.tables[name].foreign_keys == set(), name


def test_every_constraint_and_index_has_a_convention_name_that_fits_postgres() -> None:
    for table in metadata.tables.values():
        names = [c.name for c in table.constraints] + [ix.name for ix in table.indexes]
        for name in names:
            assert isinstance(name, str), (table.name, name)
            assert re.fullmatch(r"(pk|fk|uq|ix|ck)_[a-z0-9_]+", name), name
            assert len(name) <= 63, name


def _uniques(table: sa.Table) -> set[tuple[str, ...]]:
    constraints = [con for con in table.constraints if isinstance(con, sa.UniqueConstraint)]
    found = {tuple(c.name for c in con.columns) for con in constraints}
    found |= {tuple(c.name for c in ix.columns) for ix in table.indexes if ix.unique}
    pk = table.primary_key
    return found | {tuple(c.name for c in pk.columns)}


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("users", ("email",)),
        ("organizations", ("slug",)),
        ("teams", ("org_id", "slug")),
        ("org_memberships", ("org_id", "user_id")),
        ("team_memberships", ("team_id", "user_id")),
        ("api_keys", ("key_hash",)),
        ("models", ("name",)),
        ("model_deployments", ("model_id", "name")),
        ("model_aliases", ("org_id", "alias")),
        ("model_aliases", ("team_id", "alias")),
        ("mcp_tool_blocklist", ("server_id", "tool_name")),
        ("invite_tokens", ("token_hash",)),
        ("mcp_servers", ("alias",)),
        ("usage_hourly", ("bucket_hour", "org_id", "team_id", "user_id", "key_id", "model_name")),
        ("settings", ("key",)),
    ],
)
def test_unique_keys(table: str, columns: tuple[str, ...]) -> None:
    assert columns in _uniques(metadata.tables[table])


def _index_prefixes(table: sa.Table) -> set[tuple[str, ...]]:
    """Column tuples that some index (or the primary key) can serve as a leading prefix."""
    column_lists = [tuple(c.name for c in ix.columns) for ix in table.indexes]
    column_lists.append(tuple(c.name for c in table.primary_key.columns))
    return {cols[:n] for cols in column_lists for n in range(1, len(cols) + 1)}


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("usage_events", ("created_at",)),
        ("usage_events", ("org_id", "created_at")),
        ("usage_events", ("key_id", "created_at")),
        ("usage_events", ("team_id", "created_at")),
        ("usage_events", ("user_id", "created_at")),
        ("usage_hourly", ("bucket_hour",)),
        ("usage_hourly", ("org_id", "bucket_hour")),
        ("audit_logs", ("timestamp",)),
        ("audit_logs", ("org_id", "timestamp")),
        ("mcp_tool_calls", ("created_at",)),
        ("mcp_tool_calls", ("org_id", "created_at")),
        ("api_keys", ("org_id",)),
        ("api_keys", ("user_id",)),
        ("api_keys", ("team_id",)),
    ],
)
def test_query_indexes(table: str, columns: tuple[str, ...]) -> None:
    assert columns in _index_prefixes(metadata.tables[table])


def test_memberships_cascade_from_users_and_orgs() -> None:
    for fk in (*tables.org_memberships.foreign_keys, *tables.team_memberships.foreign_keys):
        assert fk.ondelete == "CASCADE"
    (fallback,) = tables.models.c.fallback_model_id.foreign_keys
    assert fallback.ondelete == "SET NULL"


async def test_the_test_suites_sqlite_copy_is_what_upgrade_writes(tmp_path: Path) -> None:
    """tests/conftest.py gives an empty SQLite file a copy of a session-wide migrated template instead of
    running Alembic again: ``migrate`` through it must leave exactly the schema, revision and pragmas that
    the real ``upgrade`` leaves in a fresh file (the copy is a stand-in for tests only)."""

    def snapshot(path: Path) -> tuple[object, ...]:
        connection = sqlite3.connect(path)
        try:
            schema = connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
            return (
                schema.fetchall(),
                connection.execute("SELECT version_num FROM alembic_version").fetchall(),
                connection.execute("PRAGMA journal_mode").fetchall(),
                connection.execute("PRAGMA user_version").fetchall(),
            )
        finally:
            connection.close()

    engine = build_engine("sqlite", str(tmp_path / "alembic.db"))
    try:
        upgrade(engine)  # imported before conftest's stand-in: the real one
    finally:
        engine.dispose()
    async with open_store("sqlite", str(tmp_path / "copied.db")) as store:
        assert migrate_module.upgrade is not upgrade, "the stand-in is in place"
        assert await migrate_module.migrate(store) == head_revision()
        assert await store.run(lambda c: c.execute(sa.text("PRAGMA foreign_keys")).scalar()) == 1
    assert snapshot(tmp_path / "copied.db") == snapshot(tmp_path / "alembic.db")


def pg_dump(dsn: str) -> list[str]:
    """The database's schema and rows as ``pg_dump`` writes them, without the random key of the
    ``\\restrict`` lines that newer pg_dump versions add."""
    executable = shutil.which("pg_dump")
    assert executable, "pg_dump (PostgreSQL's client tools) is missing"
    command = [executable, "--no-comments", f"--dbname={dsn}"]
    dump = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    return [line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))]


@pytest.mark.postgres
async def test_the_test_suites_postgres_copy_is_what_upgrade_writes(pg_dsn: str) -> None:
    """tests/conftest.py makes each test's PostgreSQL database from a template that the real ``upgrade``
    brought to the head once per test process: such a database, after the gateway's own migration step (a
    no-op at head), must dump to exactly what ``upgrade`` leaves in an empty database (schema, constraints,
    indexes, rows such as ``alembic_version``)."""
    with fresh_pg_database(empty=True) as empty_dsn:
        engine = build_engine("postgres", empty_dsn)
        try:
            upgrade(engine)  # imported before conftest's stand-in: the real one
        finally:
            engine.dispose()
        alembic = pg_dump(empty_dsn)
    async with open_store("postgres", pg_dsn) as store:
        assert await migrate_module.migrate(store) == head_revision()
    copied = pg_dump(pg_dsn)
    assert any(line.startswith("CREATE TABLE public.usage_events") for line in copied), "a migrated schema"
    assert copied == alembic
