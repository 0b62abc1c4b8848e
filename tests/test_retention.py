"""Retention: exactly the rows before the cutoff go, in small batches with pauses, within a time budget.

Database tests run on SQLite and PostgreSQL (the ``store`` fixture) on the autojump clock: the only
timers are the pauses between batches, so the mock time after a purge counts them exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import sqlalchemy as sa
import trio
import trio.testing

from tests.polling import poll_until
from voidllm.config.settings import RetentionConfig
from voidllm.metrics import REGISTRY
from voidllm.store.ids import new_id
from voidllm.store.store import open_store
from voidllm.store.tables import audit_logs, incidents, mcp_tool_calls, usage_events, usage_hourly
from voidllm.usage import UsageEvent, insert_usage_events
from voidllm.usage.retention import TABLES, purge, serve_retention
from voidllm.usage.rollups import read_horizon, roll_up

if TYPE_CHECKING:
    from voidllm.store.store import Store

NOW = datetime(2031, 1, 10, 12, 30, tzinfo=UTC)
DAY = 86400.0
TICK = timedelta(microseconds=1)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def usage(at: datetime, **changes: Any) -> UsageEvent:
    base = UsageEvent(
        request_id=None,
        key_id="key-a",
        key_type="user",
        org_id="org-1",
        model_name="m",
        prompt_tokens=1,
        total_tokens=1,
        created_at=at,
    )
    return attrs.evolve(base, **changes)


def _audit(at: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "timestamp": at,
        "actor_type": "user",
        "action": "update",
        "resource_type": "organization",
        "status_code": 200,
    }


def _tool_call(at: datetime) -> dict[str, Any]:
    return {"id": new_id(), "server_alias": "s", "tool_name": "t", "status": "success", "created_at": at}


def _hourly(at: datetime) -> dict[str, Any]:
    return {"bucket_hour": at, "org_id": "org-1", "key_id": "key-a", "model_name": "m", "request_count": 1}


def _incident(at: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "org_id": "org-1",
        "key_id": "key-a",
        "requested_model": "m",
        "model": "m",
        "deployment": "d0",
        "provider": "openai",
        "kind": "failure",
        "error_class": "http_5xx",
        "client_outcome": "served",
        "created_at": at,
    }


ROWS = {
    "audit_logs": (audit_logs, _audit),
    "mcp_tool_calls": (mcp_tool_calls, _tool_call),
    "usage_hourly": (usage_hourly, _hourly),
    "incidents": (incidents, _incident),
}


async def insert_old_usage(store: Store, events: list[UsageEvent]) -> None:
    """Insert ``events`` with ids from 2020: written long ago, as far as the rollups can tell."""
    base = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)
    rows = []
    for n, item in enumerate(events):
        millis = f"{base + n:012x}"
        rows.append({**item.to_row(), "id": f"{millis[:8]}-{millis[8:]}-7000-8000-{n:012x}"})
    await store.run(lambda connection: connection.execute(sa.insert(usage_events), rows))


async def insert(store: Store, table: str, times: list[datetime]) -> None:
    target, make = ROWS[table]
    rows = [make(at) for at in times]
    await store.run(lambda connection: connection.execute(sa.insert(target), rows))


TABLE_OBJECTS = {
    "audit_logs": audit_logs,
    "mcp_tool_calls": mcp_tool_calls,
    "usage_events": usage_events,
    "usage_hourly": usage_hourly,
    "incidents": incidents,
}


def _times(connection: sa.Connection, table: str) -> list[datetime]:
    column = TABLE_OBJECTS[table].c[TABLES[table]]
    return sorted(connection.execute(sa.select(column)).scalars())


async def times(store: Store, table: str) -> list[datetime]:
    return await store.run(_times, table)


def _hourly_counts(connection: sa.Connection) -> list[tuple[datetime, int]]:
    query = sa.select(usage_hourly.c.bucket_hour, usage_hourly.c.request_count).order_by(
        usage_hourly.c.bucket_hour
    )
    return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]


async def hourly_counts(store: Store) -> list[tuple[datetime, int]]:
    return await store.run(_hourly_counts)


# -- exact cutoffs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["audit_logs", "mcp_tool_calls", "usage_hourly", "incidents"])
async def test_exactly_the_rows_before_the_cutoff_go_in_batches(
    store: Store, table: str, autojump_clock: trio.testing.MockClock
) -> None:
    cutoff = NOW - timedelta(days=30)
    old = [cutoff - timedelta(days=n) for n in range(1, 10)] + [cutoff - TICK]
    kept = [cutoff, cutoff + TICK, NOW]
    if table == "usage_hourly":  # hour buckets
        old = [cutoff - timedelta(hours=n) for n in range(1, 11)]
        kept = [cutoff, cutoff + timedelta(hours=1)]
    await insert(store, table, old + kept)
    before = metric("voidllm_retention_rows_deleted_total", table=table)

    config = RetentionConfig(**{table: 30 * DAY}, batch_size=3)
    run = await purge(store, config, now=NOW, pause=0.5)

    assert (run.deleted, run.complete) == ({table: 10}, True)
    assert await times(store, table) == sorted(kept)
    assert metric("voidllm_retention_rows_deleted_total", table=table) == before + 10
    assert trio.current_time() == 1.5  # batches of 3, 3, 3, 1: three pauses


async def test_tables_without_a_period_are_kept(store: Store) -> None:
    long_ago = [datetime(2001, 1, 1, tzinfo=UTC)]
    for table in ROWS:
        await insert(store, table, long_ago)
    await store.run(insert_usage_events, [usage(long_ago[0])])

    run = await purge(store, RetentionConfig(audit_logs=DAY), now=NOW)

    assert run.deleted == {"audit_logs": 1}
    kept = ("mcp_tool_calls", "usage_hourly", "usage_events", "incidents")
    assert [len(await times(store, t)) for t in kept] == [1, 1, 1, 1]


async def test_a_run_stops_when_its_time_budget_is_spent(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    await insert(store, "audit_logs", [NOW - timedelta(days=2, minutes=n) for n in range(20)])

    run = await purge(store, RetentionConfig(audit_logs=DAY, batch_size=2), now=NOW, pause=0.1, budget=0.25)

    # batches at t=0, 0.1, 0.2, 0.3: the check after the fourth finds the budget spent
    assert (run.deleted, run.complete) == ({"audit_logs": 8}, False)
    assert len(await times(store, "audit_logs")) == 12
    rest = await purge(store, RetentionConfig(audit_logs=DAY, batch_size=2), now=NOW, pause=0.1, budget=60)
    assert (rest.deleted, rest.complete) == ({"audit_logs": 12}, True)


# -- usage events and rollups -------------------------------------------------------------------------


async def test_usage_events_go_in_whole_hours_that_are_rolled_up(store: Store) -> None:
    cutoff_hour = datetime(2031, 1, 3, 12, tzinfo=UTC)  # NOW - 7 days = 12:30, rounded down
    events = [
        usage(cutoff_hour - timedelta(hours=30)),
        usage(cutoff_hour - TICK),
        usage(cutoff_hour, prompt_tokens=2),
        usage(cutoff_hour + timedelta(minutes=29)),
        usage(NOW),
    ]
    await insert_old_usage(store, events)
    config = RetentionConfig(usage_events=7 * DAY)

    nothing = await purge(store, config, now=NOW)  # the rollups never ran: nothing is safe to delete
    assert nothing.deleted == {"usage_events": 0}
    await roll_up(store, lateness=300)
    totals = await hourly_counts(store)

    run = await purge(store, config, now=NOW)

    assert run.deleted == {"usage_events": 2}
    assert await times(store, "usage_events") == [cutoff_hour, cutoff_hour + timedelta(minutes=29), NOW]
    assert await store.run(read_horizon) == cutoff_hour
    # a late event for a deleted hour, then another rollup: the deleted hours keep their totals
    await store.run(insert_usage_events, [usage(cutoff_hour - timedelta(minutes=5))])
    await roll_up(store, lateness=300)
    assert await hourly_counts(store) == totals
    assert totals == [
        (cutoff_hour - timedelta(hours=30), 1),
        (cutoff_hour - timedelta(hours=1), 1),
        (cutoff_hour, 2),
        (datetime(2031, 1, 10, 12, tzinfo=UTC), 1),
    ]


async def test_usage_events_of_hours_still_pending_are_kept(store: Store) -> None:
    old = datetime(2031, 1, 1, 5, tzinfo=UTC)
    await insert_old_usage(store, [usage(old), usage(old - timedelta(hours=5))])
    await roll_up(store, lateness=300)
    # an event for an earlier hour written after the rollup: its hour is pending until the next run
    await store.run(insert_usage_events, [usage(old - timedelta(hours=3)), usage(old + timedelta(hours=2))])

    run = await purge(store, RetentionConfig(usage_events=DAY), now=NOW)

    assert run.deleted == {"usage_events": 1}  # only the hour before the first pending one
    assert await store.run(read_horizon) == old - timedelta(hours=3)
    assert await times(store, "usage_events") == [old - timedelta(hours=3), old, old + timedelta(hours=2)]


# -- concurrency and the service -------------------------------------------------------------------------


async def test_the_usage_writer_gets_the_database_between_delete_batches(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    """In one process the writer shares the store (on SQLite its one connection): it waits one batch.

    The clock jumps while a worker thread runs (autojump sees every task waiting), so the purge's virtual
    pauses pass faster than the writes' real inserts on a loaded machine: 600 rows (120 batches, 11.9 s of
    virtual pauses) leave the five writes (1.75 s) a wide margin; 200 rows were too few under load.
    """
    await insert(store, "audit_logs", [NOW - timedelta(days=40, seconds=n) for n in range(600)])
    written: list[bool] = []
    purging = True

    async def write_usage() -> None:
        for n in range(5):
            await trio.sleep(0.35)
            await store.run(insert_usage_events, [usage(NOW, request_id=f"r{n}")])
            written.append(purging)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write_usage)
        run = await purge(store, RetentionConfig(audit_logs=DAY, batch_size=5), now=NOW, pause=0.1)
        purging = False

    assert (run.deleted, run.complete) == ({"audit_logs": 600}, True)  # 120 batches, 11.9 s of pauses
    assert written == [True] * 5  # every write went in while the purge was still going
    assert len(await times(store, "usage_events")) == 5


async def test_another_process_writes_between_delete_batches(
    db_target: tuple[str, str], store: Store
) -> None:
    """Another connection (another gateway process) is never locked out for long: real clock, real locks."""
    await insert(store, "audit_logs", [NOW - timedelta(days=40, seconds=n) for n in range(60)])
    driver, dsn = db_target
    written: list[str] = []
    done = trio.Event()

    async def write_usage(other: Store) -> None:
        for n in range(3):
            await trio.sleep(0.1)
            await other.run(insert_usage_events, [usage(NOW, request_id=f"r{n}")])
            written.append(f"r{n}")
        assert not done.is_set()  # all three went in between the purge's batches, none waited for its end

    async with open_store(driver, dsn) as other, trio.open_nursery() as nursery:
        nursery.start_soon(write_usage, other)
        run = await purge(store, RetentionConfig(audit_logs=DAY, batch_size=5), now=NOW, pause=0.05)
        done.set()

    assert run.deleted == {"audit_logs": 60}
    assert written == ["r0", "r1", "r2"]


async def test_service_runs_at_start_then_every_interval(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    await insert(store, "mcp_tool_calls", [NOW - timedelta(days=3)])
    runs = metric("voidllm_retention_runs_total", outcome="ok")
    clock_now = [NOW]
    config = RetentionConfig(mcp_tool_calls=2 * DAY, interval=3600)

    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_retention, store=store, config=config, now=lambda: clock_now[0]))
        await poll_until(lambda: metric("voidllm_retention_runs_total", outcome="ok") >= runs + 1, interval=1)
        assert await times(store, "mcp_tool_calls") == []
        clock_now[0] = NOW + timedelta(days=1, seconds=1)
        await insert(store, "mcp_tool_calls", [NOW - timedelta(days=1)])

        # wait on the outcome, not on time: autojump may fire while a thread is in the database
        async def purged() -> bool:
            return not await times(store, "mcp_tool_calls")

        await poll_until(purged, interval=60)
        nursery.cancel_scope.cancel()

    assert trio.current_time() >= 3600  # the second run came an interval after the first
    assert metric("voidllm_retention_runs_total", outcome="ok") >= runs + 2
