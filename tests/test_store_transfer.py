"""``voidllm migrate`` (voidllm.store.transfer and its CLI): every row of every table survives
SQLite -> PostgreSQL -> SQLite exactly; dry runs change nothing; refusals and failures exit 1 with a message.

The source is filled by a generator that derives rows from the column types of *every* table in
``metadata`` (so a table added later is covered without touching this file): NULLs in every nullable
column, unicode text, microsecond timestamps, awkward doubles, 64-bit integers, both booleans, soft-deleted
rows, and a cycle through the ``models.fallback_model_id`` self-reference.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trio

from voidllm.cli import main
from voidllm.store.engine import build_engine
from voidllm.store.ids import new_id
from voidllm.store.migrate import upgrade
from voidllm.store.store import open_store
from voidllm.store.tables import metadata
from voidllm.store.transfer import Endpoint, TransferError, survey, transfer
from voidllm.store.types import UTCDateTime

pytestmark = pytest.mark.real_migrations

ROWS = 5  # per table; with BATCH = 2 every table takes three pages
BATCH = 2
TEXT = "héllo wörld 🚀 ✓ 日本語 'single' \"double\" back\\slash\nnew line"
DOUBLES = (1 / 3, -2.5e-7, 1e300, 12345.678901234567, 0.1)
BASE_TIME = datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC)

Dump = dict[str, list[dict[str, Any]]]


# -- filling and reading databases (plain sync SQLAlchemy) ------------------------------------------------


def _value(table: sa.Table, column: sa.Column[Any], i: int, ids: list[str]) -> Any:
    if column.nullable and i == 1 and not column.primary_key:
        return None
    if any(fk.column.table is table for fk in column.foreign_keys):
        return ids[(i + 1) % ROWS]  # self-reference: a cycle through the table's rows (row 1 breaks it)
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return BASE_TIME + timedelta(days=i, microseconds=7 * i)
    if isinstance(kind, sa.Boolean):
        return i % 2 == 0
    if isinstance(kind, sa.Double):
        return DOUBLES[i]
    if isinstance(kind, sa.BigInteger):
        return 2**62 + i
    if isinstance(kind, sa.Integer):
        return 2**31 - 1 - i
    if isinstance(kind, sa.String):
        if column.name == "id" and column.primary_key:
            return ids[i]
        text = f"{i}·{column.name}·{TEXT}"
        return text[: kind.length] if kind.length else text
    raise AssertionError(f"no generator for {table.name}.{column.name} ({kind!r}): add one")


def _rows_for(table: sa.Table, made: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    ids = [new_id() for _ in range(ROWS)]
    rows = []
    for i in range(ROWS):
        row = {}
        for column in table.columns:
            parents = [fk.column for fk in column.foreign_keys if fk.column.table is not table]
            if parents and not (column.nullable and i == 1):
                parent = parents[0]
                row[column.key] = made[parent.table.name][i % ROWS][parent.key]
            else:
                row[column.key] = _value(table, column, i, ids)
        rows.append(row)
    return rows


def fill(path: str) -> Dump:
    """Create the schema in a new SQLite file and put ROWS rows into every table; returns what was written."""
    engine = build_engine("sqlite", path)
    try:
        upgrade(engine)
        made: dict[str, list[dict[str, Any]]] = {}
        with engine.begin() as conn:
            for table in metadata.sorted_tables:
                made[table.name] = rows = _rows_for(table, made)
                own = [c for c in table.columns if any(fk.column.table is table for fk in c.foreign_keys)]
                conn.execute(table.insert(), [{**row, **{c.key: None for c in own}} for row in rows])
                for column in own:  # the rows they point to exist now
                    key = table.c.id
                    for row in rows:
                        values = {column.key: row[column.key], "updated_at": row["updated_at"]}
                        conn.execute(table.update().where(key == row["id"]).values(values))
    finally:
        engine.dispose()
    return dump_sqlite(path)


def dump(engine: sa.Engine) -> Dump:
    """Every row of every table, sorted by primary key in Python (collations differ between dialects)."""
    result: Dump = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = [dict(row._mapping) for row in conn.execute(sa.select(table))]
            key = [c.key for c in table.primary_key.columns]
            result[table.name] = sorted(rows, key=lambda row: tuple(row[k] for k in key))
    return result


def dump_sqlite(path: str) -> Dump:
    return _dumped(build_engine("sqlite", path))


def dump_postgres(dsn: str) -> Dump:
    return _dumped(build_engine("postgres", dsn))


def _dumped(engine: sa.Engine) -> Dump:
    try:
        return dump(engine)
    finally:
        engine.dispose()


@pytest.fixture
def source(tmp_path: Path) -> Iterator[tuple[str, Dump]]:
    """(path, rows) of a filled SQLite source."""
    path = str(tmp_path / "source.db")
    return path, fill(path)


def test_the_generated_data_covers_what_the_copy_must_preserve(source: tuple[str, Dump]) -> None:
    _, rows = source
    assert set(rows) == set(metadata.tables)
    assert all(len(table_rows) == ROWS for table_rows in rows.values())
    values = [v for table_rows in rows.values() for row in table_rows for v in row.values()]
    assert None in values
    assert True in values
    assert False in values
    assert any(isinstance(v, str) and "🚀" in v for v in values)
    assert any(isinstance(v, datetime) and v.microsecond == 123456 + 7 for v in values)
    assert 1 / 3 in values
    assert 2**62 in values
    assert sum(row["deleted_at"] is not None for row in rows["users"]) == ROWS - 1  # soft-deleted
    fallbacks = {row["id"]: row["fallback_model_id"] for row in rows["models"]}
    assert sum(target is not None for target in fallbacks.values()) == ROWS - 1
    assert all(target in fallbacks for target in fallbacks.values() if target is not None)


# -- the round trip -----------------------------------------------------------------------------------


async def voidllm_migrate(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIDLLM_")} | {"TTY_COMPATIBLE": "0"}
    return await trio.run_process(
        [sys.executable, "-m", "voidllm", "migrate", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=env,
    )


@pytest.mark.slow
@pytest.mark.postgres
async def test_round_trip_sqlite_postgres_sqlite_preserves_every_row(
    source: tuple[str, Dump], pg_dsn: str, tmp_path: Path
) -> None:
    path, original = source

    # SQLite -> PostgreSQL through the command line (no terminal: plain progress lines).
    result = await voidllm_migrate("--from", path, "--to", pg_dsn, "--batch-size", str(BATCH))
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert f"models: {ROWS} rows" in out
    assert f"copied {ROWS * len(metadata.tables)} rows in {len(metadata.tables)} tables" in out
    assert dump_postgres(pg_dsn) == original

    # PostgreSQL -> a fresh SQLite file through the engine, watching the progress reports.
    final = str(tmp_path / "final.db")
    calls: list[tuple[str, int, int]] = []
    async with open_store("postgres", pg_dsn) as pg, open_store("sqlite", final) as back:
        counts = await transfer(pg, back, batch_size=BATCH, on_progress=lambda *call: calls.append(call))
    assert counts == {name: ROWS for name in counts}
    assert len(counts) == len(metadata.tables)
    assert dump_sqlite(final) == original
    assert [call for call in calls if call[0] == "models"] == [
        ("models", 0, 5),
        ("models", 2, 5),
        ("models", 4, 5),
        ("models", 5, 5),
    ]
    assert [call[0] for call in calls if call[1] == 0] == [t.name for t in metadata.sorted_tables]


# -- dry run, refusals, failures (in-process CLI) ------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["migrate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dry_run_changes_nothing(
    source: tuple[str, Dump], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, original = source
    missing = tmp_path / "new" / "target.db"
    code, out, _ = run_cli(capsys, "--from", path, "--to", str(missing), "--dry-run")
    assert code == 0
    assert re.search(rf"^users +{ROWS} +-$", out, re.MULTILINE)
    assert "schema: none yet" in out
    assert f"{ROWS * len(metadata.tables)} rows would be copied" in out
    assert not missing.exists()
    assert not missing.parent.exists()

    target = str(tmp_path / "target.db")
    fill(target)
    before = dump_sqlite(target)
    code, out, _ = run_cli(capsys, "--from", path, "--to", target, "--dry-run", "--replace")
    assert code == 0
    assert "the target is not empty" in out
    assert "nothing was changed" in out
    assert dump_sqlite(target) == before
    assert dump_sqlite(path) == original


def test_a_non_empty_target_is_refused_without_replace_and_replaced_with_it(
    source: tuple[str, Dump], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, original = source
    target = str(tmp_path / "target.db")
    other = fill(target)
    code, out, err = run_cli(capsys, "--from", path, "--to", f"sqlite:///{target}")
    assert code == 1
    assert f"the target is not empty ({ROWS * len(metadata.tables)} rows)" in err
    assert "--replace" in err
    assert dump_sqlite(target) == other

    code, out, err = run_cli(capsys, "--from", path, "--to", target, "--replace", "--batch-size", "3")
    assert (code, err) == (0, "")
    assert "row counts verified" in out
    assert dump_sqlite(target) == original


def test_a_terminal_gets_progress_bars_on_stderr(
    source: tuple[str, Dump],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, _ = source
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: treat the captured stream as a terminal
    code, out, err = run_cli(capsys, "--from", path, "--to", str(tmp_path / "target.db"))
    assert code == 0
    assert "models: " not in out
    assert "row counts verified" in out
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err)
    assert re.search(rf"^key_model_access .* {ROWS}/{ROWS} ", drawn, re.MULTILINE)


def test_the_same_database_is_refused(
    source: tuple[str, Dump],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, original = source
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "--from", path, "--to", "sqlite:///./sub/../source.db")
    assert code == 2
    assert "same database" in err
    linked = tmp_path / "hard-link.db"  # another name for the same file: caught by the file's identity
    os.link(path, linked)
    code, _, err = run_cli(capsys, "--from", path, "--to", str(linked), "--replace")
    assert code == 1
    assert "the source and the target are the same database" in err
    assert dump_sqlite(path) == original


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for target in ("mysql://db/x", ":memory:", "sqlite://"):
        code, _, err = run_cli(capsys, "--from", "a.db", "--to", target)
        assert code == 2, target
        assert err.startswith("voidllm migrate: "), target
    with pytest.raises(SystemExit) as exited:
        main(["migrate", "--from", "a.db"])
    assert exited.value.code == 2


def test_unreachable_or_unusable_databases_exit_1_with_a_message(
    source: tuple[str, Dump], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = source
    unreachable = "postgresql://voidllm:s3cret@127.0.0.1:1/voidllm"  # nothing listens on port 1
    code, out, err = run_cli(capsys, "--from", path, "--to", unreachable)
    assert code == 1
    assert err == "voidllm migrate: target database: database unavailable: OperationalError\n"
    assert "s3cret" not in out + err
    assert "voidllm:***@127.0.0.1:1" in out

    code, _, err = run_cli(capsys, "--from", str(tmp_path / "nowhere.db"), "--to", str(tmp_path / "t.db"))
    assert code == 1
    assert "source database file not found" in err
    assert not (tmp_path / "nowhere.db").exists()

    sqlite3.connect(tmp_path / "plain.db").close()  # a database without our schema
    code, _, err = run_cli(capsys, "--from", str(tmp_path / "plain.db"), "--to", str(tmp_path / "t.db"))
    assert code == 1
    assert "has no VoidLLM schema" in err
    assert "Traceback" not in err


def test_a_failure_part_way_names_the_table_and_the_way_back(
    source: tuple[str, Dump], db_target: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, original = source
    with sqlite3.connect(path) as raw:  # foreign keys are off on a raw connection: plant an orphan
        raw.execute("UPDATE team_memberships SET user_id = 'no-such-user' WHERE rowid = 3")
    driver, target = db_target
    code, _out, err = run_cli(capsys, "--from", path, "--to", target, "--batch-size", "2")
    assert code == 1
    assert "copying team_memberships failed after 2 of 5 rows" in err
    assert "integrity constraint violated: foreign_key" in err
    assert "run again with --replace" in err
    copied = dump_sqlite(target) if driver == "sqlite" else dump_postgres(target)
    assert copied["teams"] == original["teams"]
    assert copied["api_keys"] == []
    assert len(copied["team_memberships"]) == 2


async def test_rows_written_to_the_source_during_the_copy_fail_the_count_check(
    source: tuple[str, Dump], tmp_path: Path
) -> None:
    path, _ = source

    def write_behind(table: str, copied: int, total: int) -> None:
        if table == "audit_logs" and copied == total:  # audit_logs is done: a late row is never copied
            with sqlite3.connect(path) as raw:
                raw.execute(
                    "INSERT INTO audit_logs (id, timestamp, actor_type, action, resource_type, "
                    "description, status_code) VALUES ('late', '2025-01-01 00:00:00.000000', "
                    "'system', 'create', 'x', '', 200)"
                )

    async with open_store("sqlite", path) as src, open_store("sqlite", str(tmp_path / "t.db")) as dst:
        with pytest.raises(TransferError, match=r"row counts differ .*audit_logs: source 6, target 5"):
            await transfer(src, dst, batch_size=BATCH, on_progress=write_behind)


async def test_survey_reports_both_sides_and_refuses_an_old_source(
    source: tuple[str, Dump], tmp_path: Path
) -> None:
    path, _ = source
    async with open_store("sqlite", path) as src, open_store("sqlite", str(tmp_path / "t.db")) as dst:
        found = await survey(src, dst)
        assert list(found.source_rows) == [t.name for t in metadata.sorted_tables]
        assert set(found.source_rows.values()) == {ROWS}
        assert (found.target_rows, found.target_revision, found.target_empty) == ({}, None, True)
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE alembic_version SET version_num = '0000'")
    async with open_store("sqlite", path) as src:
        with pytest.raises(TransferError, match="source schema is at revision 0000"):
            await survey(src, None)


def test_endpoints() -> None:
    assert Endpoint.parse("postgres://u:pw@h:5/db") == Endpoint(
        "postgres", "postgres://u:pw@h:5/db", "postgres://u:***@h:5/db"
    )
    assert Endpoint.parse("sqlite:////abs/v.db").dsn == "/abs/v.db"
    assert Endpoint.parse("sqlite:///rel/v.db").dsn == "rel/v.db"
    assert Endpoint.parse("postgresql://h/db").same_as(Endpoint.parse("postgres://h/db"))
    assert not Endpoint.parse("postgresql://h/db").same_as(Endpoint.parse("postgres://h/db2"))
