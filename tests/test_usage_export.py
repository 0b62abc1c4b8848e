"""Issue 7 points 4 and 8: the usage CSV export and the cost report.

The export is checked cell by cell against the events inserted (on SQLite and PostgreSQL, with chunks of two
rows so ties in ``created_at`` straddle chunk boundaries); a client that disconnects stops it; and one
million rows stream through a separately running gateway whose peak memory (``VmHWM``) stays under a fixed
bound above its resting size.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import sqlalchemy as sa
import trio

from tests.admin_tenancy import (
    API,
    add_user,
    admin,
    bearer,
    create_key,
    create_org,
    default_org,
    error_of,
    open_gateway,
    user_key,
)
from tests.gateway import RunningGateway, make_config, run_gateway
from tests.process import spawn_gateway, write_config
from voidllm.admin import export
from voidllm.errors import StoreUnavailableError
from voidllm.store import tables as t
from voidllm.store.ids import new_id

FROM = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
TO = datetime(2026, 3, 3, tzinfo=UTC)
RANGE = {"from": "2026-03-01T23:00:00Z", "to": "2026-03-03T00:00:00Z"}

HEADER = [
    "created_at",
    "id",
    "request_id",
    "key_id",
    "key_name",
    "key_type",
    "user_id",
    "team_id",
    "service_account_id",
    "model_name",
    "requested_model_name",
    "provider",
    "deployment_name",
    "status_code",
    "status",
    "stream",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_estimate",
    "request_duration_ms",
    "ttft_ms",
    "tokens_per_second",
    "source",
    "project",
]


def event(org_id: str, key_id: str, at: datetime, **fields: Any) -> dict[str, Any]:
    """A usage_events row with every column set (override with ``fields``)."""
    return {
        "id": new_id(),
        "request_id": str(new_id()),
        "key_id": key_id,
        "key_type": "user_key",
        "org_id": org_id,
        "team_id": None,
        "user_id": None,
        "service_account_id": None,
        "model_name": "gpt-test",
        "requested_model_name": "gpt-test",
        "deployment_name": "d1",
        "provider": "openai",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cost_estimate": 0.25,
        "request_duration_ms": 120,
        "ttft_ms": None,
        "tokens_per_second": None,
        "status_code": 200,
        "status": "ok",
        "stream": False,
        "source": None,
        "project": None,
        "created_at": at,
        **fields,
    }


def expected_line(row: dict[str, Any], key_names: dict[str, str]) -> list[str]:
    """The CSV cells the export must produce for ``row`` (the documented format, written out
    independently)."""

    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def guarded(value: str | None) -> str:
        return "'" + value if value and value[0] in "=+-@\t\r" else text(value)

    cells = {name: text(row.get(name)) for name in HEADER}
    cells["created_at"] = row["created_at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cells["key_name"] = guarded(key_names.get(row["key_id"]))
    for name in ("model_name", "requested_model_name", "deployment_name", "source", "project"):
        cells[name] = guarded(row[name])
    return [cells[name] for name in HEADER]


async def insert(gw: RunningGateway, rows: list[dict[str, Any]]) -> None:
    await gw.state.services.store.run(lambda conn: conn.execute(t.usage_events.insert(), rows))


def parse_csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode(), newline="")))


# -- exact rows on both dialects ----------------------------------------------------------------------------


@pytest.fixture
async def gateway(db_target: tuple[str, str]) -> AsyncIterator[RunningGateway]:
    driver, dsn = db_target
    async with open_gateway(dsn, driver) as gw:
        yield gw


async def test_export_is_exactly_the_org_events_in_range(
    gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = gateway
    monkeypatch.setattr(export, "CHUNK_ROWS", 2)
    org = await default_org(gw)
    other_org = (await create_org(gw, "other"))["id"]
    user = await add_user(gw, org, "spender@a.io")
    formula_key = (await create_key(gw, org, name="=HYPERLINK(1)", user_id=user))["id"]
    plain_key = (await create_key(gw, org, name="plain", user_id=user))["id"]
    gone_key = new_id()  # usage of a key whose row no longer exists: no name
    tie = FROM + timedelta(hours=1, microseconds=7)
    inside = [
        event(
            org,
            formula_key,
            FROM,
            user_id=user,
            stream=True,
            ttft_ms=40,
            tokens_per_second=12.5,
            source="-2+3",
            project="@team",
            requested_model_name="=alias",
            cost_estimate=0.000123,
        ),
        event(
            org,
            plain_key,
            tie,
            status_code=502,
            status="upstream_error",
            cost_estimate=None,
            request_id=None,
            deployment_name=None,
            total_tokens=0,
            prompt_tokens=0,
            completion_tokens=0,
        ),
        event(org, plain_key, tie, team_id=new_id(), source='a,b "quoted"\nline', project="proj"),
        event(org, gone_key, tie, service_account_id=new_id(), key_type="sa_key"),
        event(org, plain_key, TO - timedelta(microseconds=1), model_name="other-model"),
    ]
    outside = [
        event(org, plain_key, FROM - timedelta(microseconds=1)),
        event(org, plain_key, TO),
        event(other_org, plain_key, tie),
    ]
    await insert(
        gw, [inside[3], outside[0], inside[1], outside[2], inside[4], inside[0], outside[1], inside[2]]
    )

    response = await gw.client.get(f"{API}/orgs/{org}/usage/export", headers=admin(gw), params=RANGE)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        response.headers["content-disposition"] == f'attachment; filename="usage-{org}-20260301-20260303.csv"'
    )
    lines = parse_csv(response.content)
    names = {formula_key: "=HYPERLINK(1)", plain_key: "plain"}
    ordered = sorted(inside, key=lambda row: (row["created_at"], row["id"]))
    assert lines == [HEADER] + [expected_line(row, names) for row in ordered]
    assert lines[1][HEADER.index("key_name")] == "'=HYPERLINK(1)"  # neutralised for spreadsheets
    assert lines[1][HEADER.index("stream")] == "true"


async def test_cost_report(gateway: RunningGateway) -> None:
    gw = gateway
    org = await default_org(gw)
    alice = await add_user(gw, org, "alice@a.io")
    bob = await add_user(gw, org, "bob@a.io")
    k_alice = (await create_key(gw, org, name="alice-key", user_id=alice))["id"]
    k_bob = (await create_key(gw, org, name="bob-key", user_id=bob))["id"]
    k_team = new_id()
    day1, day2 = FROM + timedelta(minutes=30), FROM + timedelta(hours=2)  # 2026-03-01 and 2026-03-02 (UTC)
    await insert(
        gw,
        [
            event(
                org,
                k_alice,
                day1,
                user_id=alice,
                model_name="big",
                total_tokens=100,
                prompt_tokens=60,
                completion_tokens=40,
                cost_estimate=2.0,
            ),
            event(
                org,
                k_alice,
                day2,
                user_id=alice,
                model_name="big",
                total_tokens=50,
                prompt_tokens=30,
                completion_tokens=20,
                cost_estimate=1.0,
            ),
            event(
                org,
                k_bob,
                day2,
                user_id=bob,
                model_name="small",
                total_tokens=10,
                prompt_tokens=6,
                completion_tokens=4,
                cost_estimate=0.5,
            ),
            event(
                org,
                k_team,
                day2,
                model_name="free",
                total_tokens=7,
                prompt_tokens=7,
                completion_tokens=0,
                cost_estimate=None,
            ),
            event(org, k_bob, TO, user_id=bob, model_name="small", cost_estimate=100.0),  # outside
        ],
    )

    response = await gw.client.get(
        f"{API}/orgs/{org}/usage/cost-report", headers=admin(gw), params={**RANGE, "top": 2}
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "org_id": org,
        "from": "2026-03-01T23:00:00Z",
        "to": "2026-03-03T00:00:00Z",
        "totals": {
            "requests": 4,
            "prompt_tokens": 103,
            "completion_tokens": 64,
            "total_tokens": 167,
            "cost": 3.5,
        },
        "by_model": [
            {
                "model_name": "big",
                "requests": 2,
                "prompt_tokens": 90,
                "completion_tokens": 60,
                "total_tokens": 150,
                "cost": 3.0,
            },
            {
                "model_name": "small",
                "requests": 1,
                "prompt_tokens": 6,
                "completion_tokens": 4,
                "total_tokens": 10,
                "cost": 0.5,
            },
            {
                "model_name": "free",
                "requests": 1,
                "prompt_tokens": 7,
                "completion_tokens": 0,
                "total_tokens": 7,
                "cost": 0.0,
            },
        ],
        "by_day": [
            {"day": "2026-03-01", "requests": 1, "total_tokens": 100, "cost": 2.0},
            {"day": "2026-03-02", "requests": 3, "total_tokens": 67, "cost": 1.5},
        ],
        "top_keys": [
            {"id": k_alice, "name": "alice-key", "requests": 2, "total_tokens": 150, "cost": 3.0},
            {"id": k_bob, "name": "bob-key", "requests": 1, "total_tokens": 10, "cost": 0.5},
        ],
        "top_users": [
            {"id": alice, "name": "alice@a.io", "requests": 2, "total_tokens": 150, "cost": 3.0},
            {"id": bob, "name": "bob@a.io", "requests": 1, "total_tokens": 10, "cost": 0.5},
        ],
    }


# -- validation and scope -----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["export", "cost-report"])
async def test_invalid_requests_are_400_and_scope_is_enforced(sqlite_dsn: str, route: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await default_org(gw)
        url = f"{API}/orgs/{org}/usage/{route}"
        bad = [
            {"to": RANGE["to"]},
            {"from": RANGE["from"]},
            {"from": RANGE["to"], "to": RANGE["from"]},
            {"from": RANGE["from"], "to": RANGE["from"]},
            {"from": "yesterday", "to": RANGE["to"]},
            {"from": "2026-03-01T00:00:00", "to": RANGE["to"]},  # no offset
        ]
        bad.append({**RANGE, "format": "json"} if route == "export" else {**RANGE, "top": "0"})
        for params in bad:
            error = error_of(await gw.client.get(url, headers=admin(gw), params=params), 400)
            assert error["code"] == "validation_error", params
        missing = error_of(
            await gw.client.get(f"{API}/orgs/{new_id()}/usage/{route}", headers=admin(gw), params=RANGE), 404
        )
        assert missing["code"] == "not_found"

        other = (await create_org(gw, "other"))["id"]
        outsider = await user_key(gw, other, await add_user(gw, other, "boss@other.io", role="org_admin"))
        member = await user_key(gw, org, await add_user(gw, org, "member@a.io"))
        assert (
            error_of(await gw.client.get(url, headers=bearer(outsider), params=RANGE), 403)["code"]
            == "forbidden"
        )
        assert (
            error_of(await gw.client.get(url, headers=bearer(member), params=RANGE), 403)["code"]
            == "forbidden"
        )
        assert (
            await gw.client.get(f"{API}/orgs/{other}/usage/{route}", headers=bearer(outsider), params=RANGE)
        ).status_code == 200


# -- client disconnect ---------------------------------------------------------------------------------------


async def test_a_client_that_disconnects_stops_the_export(
    sqlite_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "CHUNK_ROWS", 100)
    reads = 0
    closed = trio.Event()
    original_read, original_chunks = export._read_chunk, export._csv_chunks

    def counting_read(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        return original_read(*args)

    async def watched_chunks(*args: Any) -> AsyncIterator[bytes]:
        try:
            async for chunk in original_chunks(*args):
                yield chunk
        finally:
            closed.set()

    monkeypatch.setattr(export, "_read_chunk", counting_read)
    monkeypatch.setattr(export, "_csv_chunks", watched_chunks)
    async with open_gateway(sqlite_dsn) as gw:
        org = await default_org(gw)
        rows = [
            event(org, "k", FROM + timedelta(seconds=i)) for i in range(50_000)
        ]  # ~12 MB of CSV, 500 reads
        await insert(gw, rows)
        async with gw.client.stream(
            "GET", f"{API}/orgs/{org}/usage/export", headers=admin(gw), params=RANGE
        ) as response:
            assert response.status_code == 200
            async for _ in response.aiter_raw():
                break
        with trio.fail_after(10):
            await closed.wait()
        assert 0 < reads < 250
        stopped_at = reads
        await trio.sleep(0.2)
        assert reads == stopped_at


async def test_an_export_outlasting_read_timeout_is_not_cut(
    sqlite_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "CHUNK_ROWS", 100)
    config = make_config(sqlite_dsn)
    proxy = attrs.evolve(config.server.proxy, read_timeout=0.5)
    async with run_gateway(attrs.evolve(config, server=attrs.evolve(config.server, proxy=proxy))) as gw:
        org = await default_org(gw)
        await insert(
            gw, [event(org, "k", FROM + timedelta(seconds=i)) for i in range(50_000)]
        )  # ~12 MB of CSV
        lines = 0
        try:
            async with gw.client.stream(
                "GET", f"{API}/orgs/{org}/usage/export", headers=admin(gw), params=RANGE
            ) as response:
                async for chunk in response.aiter_bytes():
                    if not lines:
                        await trio.sleep(
                            1.5
                        )  # a slow reader: the server is still sending when read_timeout passes
                    lines += chunk.count(b"\n")
        except httpx.RemoteProtocolError:
            pass  # cut: incomplete chunked body
    assert lines == 50_001


# -- one million rows in bounded memory --------------------------------------------------------------------

MILLION = 1_000_000
MEMORY_BOUND_KB = 50 * 1024
"""How far the gateway's peak resident memory may rise above its resting size during the export."""

_BULK_INSERT = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :count - 1)
INSERT INTO usage_events (id, request_id, key_id, key_type, org_id, team_id, user_id, model_name,
  requested_model_name, deployment_name, provider, prompt_tokens, completion_tokens, total_tokens,
  cost_estimate, request_duration_ms, ttft_ms, status_code, status, stream, source, project, created_at)
SELECT printf('00000000-0000-7000-8000-%012d', i), printf('10000000-0000-4000-8000-%012d', i), 'key-1',
  'user_key', :org_id, 'team-1', 'user-1', 'gpt-test', 'gpt', 'd1', 'openai', 100 + i % 7, 50 + i % 5,
  150 + i % 7 + i % 5,
  (i % 100) * 0.0001, 200 + i % 300, CASE WHEN i % 2 = 0 THEN 40 END, 200, 'ok', i % 2, 'bench', NULL,
  datetime(:start + i, 'unixepoch') || '.000000'
FROM n
"""
"""One row per second from ``start`` (SQLite's storage format of UTCDateTime: UTC text with microseconds)."""


def _memory_kb(pid: int, field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (peak resident set) of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _bulk_insert(db_path: Path, org_id: str, count: int, start: datetime) -> None:
    engine = sa.create_engine(f"sqlite:///{db_path}")
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(_BULK_INSERT), {"count": count, "org_id": org_id, "start": int(start.timestamp())}
            )
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the gateway's memory from /proc")
async def test_a_million_rows_stream_in_bounded_memory(tmp_path: Path) -> None:
    """The gateway runs as its own process so its whole resident memory is measured: ``VmHWM`` is the kernel's
    high-water mark, so no peak between samples can be missed. Loading the rows or the CSV (~200 MB) at once
    would exceed the bound several times over; streaming keeps one chunk (~1 MB of CSV) in flight."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with spawn_gateway(write_config(tmp_path)) as gateway:
        pid = gateway.process.pid
        async with httpx.AsyncClient(
            base_url=gateway.url, headers=bearer(gateway.api_key), timeout=60
        ) as client:
            orgs = (await client.get(f"{API}/orgs")).json()["data"]
            org = next(row["id"] for row in orgs if row["slug"] == "default")
            await trio.to_thread.run_sync(_bulk_insert, tmp_path / "data" / "voidllm.db", org, MILLION, start)
            url = f"{API}/orgs/{org}/usage/export"
            everything = {"from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}
            warm = await client.get(
                url, params={"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T03:00:00Z"}
            )
            assert len(parse_csv(warm.content)) == 1 + 3 * 3600  # one row per second
            # VmHWM := VmRSS (startup's argon2 peak is higher)
            await trio.Path(f"/proc/{pid}/clear_refs").write_text("5")
            resting = _memory_kb(pid, "VmHWM")

            lines = 0
            head = tail = b""
            async with client.stream("GET", url, params=everything) as response:
                assert response.status_code == 200
                async for chunk in response.aiter_bytes():
                    lines += chunk.count(b"\n")
                    head = head if len(head) > 1000 else head + chunk
                    tail = (tail + chunk)[-1000:]
            peak = _memory_kb(pid, "VmHWM")

    assert lines == MILLION + 1
    first_row, last_row = head.split(b"\r\n")[1], tail.split(b"\r\n")[-2]
    assert first_row.startswith(b"2026-01-01T00:00:00.000000Z,00000000-0000-7000-8000-000000000000,")
    expected_last = (start + timedelta(seconds=MILLION - 1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert last_row.startswith(f"{expected_last},00000000-0000-7000-8000-000000999999,".encode())
    assert peak - resting < MEMORY_BOUND_KB, f"peak {peak} kB, resting {resting} kB"


async def test_a_failure_mid_export_is_an_incomplete_body_not_a_short_file(
    sqlite_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "CHUNK_ROWS", 10)
    original_read = export._read_chunk
    calls = 0

    def failing_read(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise StoreUnavailableError("database unavailable")
        return original_read(*args)

    monkeypatch.setattr(export, "_read_chunk", failing_read)
    received = b""
    async with open_gateway(sqlite_dsn) as gw:
        org = await default_org(gw)
        await insert(gw, [event(org, "k", FROM + timedelta(seconds=i)) for i in range(100)])

        async def read_export() -> None:
            nonlocal received
            async with gw.client.stream(
                "GET", f"{API}/orgs/{org}/usage/export", headers=admin(gw), params=RANGE
            ) as response:
                assert response.status_code == 200
                async for chunk in response.aiter_bytes():
                    received += chunk

        with pytest.raises(httpx.RemoteProtocolError):
            await read_export()
    assert received.count(b"\r\n") == 1 + 20  # the header and the two chunks read before the failure
