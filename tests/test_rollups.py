"""Hourly rollups: buckets by request time, exact across hour and day boundaries, late events, idempotence.

Every test that touches a database runs on SQLite and PostgreSQL (the ``store`` fixture). Expected rows are
computed here in Python from the raw ``usage_events`` rows read back, independently of the rollup SQL.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
import trio
import trio.testing

from tests.polling import poll_until
from voidllm.errors import StoreUnavailableError
from voidllm.metrics import REGISTRY
from voidllm.store.ids import new_id
from voidllm.store.tables import usage_events, usage_hourly
from voidllm.usage import UsageEvent, UsageStatus, insert_usage_events
from voidllm.usage.rollups import RollupState, floor_hour, roll_up, serve_rollups, write_horizon

if TYPE_CHECKING:
    from collections.abc import Callable

    from voidllm.store.store import Store

NEW_YEAR = datetime(2031, 1, 1, tzinfo=UTC)
LATENESS = 300.0


def event(at: datetime, **changes: Any) -> UsageEvent:
    base = UsageEvent(
        request_id=None,
        key_id="key-a",
        key_type="user",
        org_id="org-1",
        team_id="team-1",
        user_id="user-1",
        model_name="gpt-4o",
        prompt_tokens=10,
        completion_tokens=5,
        total_tokens=15,
        cost_estimate=0.5,
        duration_ms=100,
        created_at=at,
    )
    return attrs.evolve(base, **changes)


async def write(store: Store, *events: UsageEvent) -> None:
    await store.run(insert_usage_events, list(events))


def _hourly_rows(connection: sa.Connection) -> list[tuple[Any, ...]]:
    columns = [c for c in usage_hourly.c]
    return sorted(tuple(row) for row in connection.execute(sa.select(*columns)))


async def hourly(store: Store) -> list[tuple[Any, ...]]:
    return await store.run(_hourly_rows)


def _expected_rows(connection: sa.Connection) -> list[tuple[Any, ...]]:
    """usage_hourly as it should be: the raw events grouped in Python."""
    sums: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0.0, 0, 0, 0, 0])
    for e in connection.execute(sa.select(usage_events)).mappings():
        key = (
            floor_hour(e["created_at"]),
            e["org_id"],
            e["team_id"] or "",
            e["user_id"] or "",
            e["key_id"],
            e["model_name"],
        )
        s = sums[key]
        for i, value in enumerate(
            (
                1,
                e["prompt_tokens"],
                e["completion_tokens"],
                e["total_tokens"],
                e["cost_estimate"] or 0.0,
                e["request_duration_ms"],
                e["ttft_ms"] or 0,
                e["ttft_ms"] is not None,
                e["status"] != "ok",
            )
        ):
            s[i] += value
    return sorted(key + tuple(values) for key, values in sums.items())


async def expected(store: Store) -> list[tuple[Any, ...]]:
    return await store.run(_expected_rows)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _approx_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Cost sums are doubles: compare them rounded (the order of additions differs)."""
    return [(*row[:10], round(row[10], 9), *row[11:]) for row in rows]


# -- buckets ----------------------------------------------------------------------------------------


async def test_events_either_side_of_midnight_land_in_their_own_hour_and_day(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    last_new_years_eve = NEW_YEAR - timedelta(milliseconds=100)  # 2030-12-31 23:59:59.9
    await write(
        store,
        event(NEW_YEAR - timedelta(hours=1)),  # 23:00:00.0, first instant of the last hour of the year
        event(last_new_years_eve, prompt_tokens=1, completion_tokens=2, total_tokens=3, cost_estimate=None),
        event(NEW_YEAR, prompt_tokens=7, completion_tokens=0, total_tokens=7, ttft_ms=40, stream=True),
        event(
            NEW_YEAR + timedelta(minutes=59, seconds=59, microseconds=999999),
            status=UsageStatus.TIMEOUT,
            status_code=504,
            ttft_ms=60,
        ),
    )

    run = await roll_up(store, lateness=LATENESS)

    assert (run.hours, run.complete) == (2, True)
    key = ("org-1", "team-1", "user-1", "key-a", "gpt-4o")
    assert await hourly(store) == [
        (datetime(2030, 12, 31, 23, tzinfo=UTC), *key, 2, 11, 7, 18, 0.5, 200, 0, 0, 0),
        (datetime(2031, 1, 1, 0, tzinfo=UTC), *key, 2, 17, 5, 22, 1.0, 200, 100, 2, 1),
    ]
    assert await hourly(store) == await expected(store)


async def test_rows_are_grouped_by_org_team_user_key_and_model(store: Store) -> None:
    hour = datetime(2030, 6, 1, 12, tzinfo=UTC)
    events = []
    for n in range(60):
        events.append(
            event(
                hour + timedelta(minutes=n * 7, seconds=n),  # 12:00 to 18:53: seven hours
                org_id=f"org-{n % 2}",
                team_id=None if n % 3 == 0 else f"team-{n % 3}",
                user_id=None if n % 4 == 0 else "user-1",
                key_id=f"key-{n % 5}",
                model_name=f"m-{n % 2}",
                prompt_tokens=n,
                completion_tokens=2 * n,
                total_tokens=3 * n,
                duration_ms=n * 11,
                cost_estimate=None if n % 6 == 0 else n / 7,
                ttft_ms=n if n % 2 else None,
                status=UsageStatus.OK if n % 5 else UsageStatus.UPSTREAM_ERROR,
            )
        )
    await write(store, *events)

    await roll_up(store, lateness=LATENESS)

    rows = await hourly(store)
    assert _approx_rows(rows) == _approx_rows(await expected(store))
    assert sum(row[6] for row in rows) == 60
    assert {row[2] for row in rows} == {"", "team-1", "team-2"}
    assert len({row[0] for row in rows}) == 7


# -- incremental and idempotent ---------------------------------------------------------------------------


async def test_running_again_gives_identical_rows(store: Store) -> None:
    start = datetime(2030, 3, 1, 22, 30, tzinfo=UTC)
    await write(store, *(event(start + timedelta(minutes=20 * n), prompt_tokens=n) for n in range(12)))

    await roll_up(store, lateness=LATENESS)
    first = await hourly(store)
    again = await roll_up(store, lateness=LATENESS)
    await roll_up(store, lateness=LATENESS)

    assert again.complete
    assert await hourly(store) == first == await expected(store)
    assert sum(row[6] for row in first) == 12


async def test_a_late_event_for_a_rolled_up_hour_counts_after_the_next_run(store: Store) -> None:
    earlier = datetime(2030, 3, 1, 9, 15, tzinfo=UTC)
    now = datetime(2030, 3, 1, 14, 5, tzinfo=UTC)
    await write(store, event(earlier), event(now))
    await roll_up(store, lateness=LATENESS)
    before = await hourly(store)

    # written hours after its request: e.g. held in the writer's buffer through a database outage
    await write(store, event(earlier + timedelta(minutes=30), prompt_tokens=1000, total_tokens=1005))
    assert await hourly(store) == before
    run = await roll_up(store, lateness=LATENESS)

    rows = await hourly(store)
    assert rows == await expected(store)
    nine = [row for row in rows if row[0] == datetime(2030, 3, 1, 9, tzinfo=UTC)]
    assert [(row[6], row[7], row[9]) for row in nine] == [(2, 1010, 1020)]
    # the late event's hour and every later hour with events is rebuilt: 09:00 and 14:00
    assert run.hours == 2


async def test_lateness_covers_an_event_committed_after_a_newer_one(store: Store) -> None:
    hour = datetime(2030, 3, 1, 9, tzinfo=UTC)
    slow_id = new_id()  # a batch that got its ids first ...
    await trio.sleep(0.01)
    await write(store, event(hour))  # ... but committed after this one, and after the rollup ran
    await roll_up(store, lateness=LATENESS)

    row = {**event(hour + timedelta(minutes=1)).to_row(), "id": slow_id}
    await store.run(lambda connection: connection.execute(sa.insert(usage_events), [row]))
    await roll_up(store, lateness=LATENESS)

    assert [r[6] for r in await hourly(store)] == [2]
    assert await hourly(store) == await expected(store)


async def test_an_event_written_long_after_its_id_was_made_is_rolled_up(store: Store) -> None:
    """A batch held through an outage or replayed from the spill keeps its old ids; the writer marks its
    hour late, and the next run rebuilds that hour although the ids are below the bound."""
    hour = datetime(2030, 3, 1, 9, tzinfo=UTC)
    await write(store, event(hour))
    await roll_up(store, lateness=1.0)
    millis = f"{int(time.time() * 1000) - 600_000:012x}"  # recorded ten minutes ago
    late_id = f"{millis[:8]}-{millis[8:]}-7000-8000-000000000001"
    late = attrs.evolve(event(hour + timedelta(hours=2)), id=late_id)
    await write(store, late)
    await roll_up(store, lateness=1.0)
    assert [r[6] for r in await hourly(store)] == [1, 1]
    assert await hourly(store) == await expected(store)
    await write(store, late)  # a replay of the same batch: written once
    await roll_up(store, lateness=1.0)
    assert await hourly(store) == await expected(store)
    assert [r[6] for r in await hourly(store)] == [1, 1]


def written_long_ago(item: UsageEvent, n: int) -> dict[str, Any]:
    """``item``'s row with a UUIDv7 id from 2020, as rows the gateway wrote long before this run have."""
    millis = f"{int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000) + n:012x}"
    return {**item.to_row(), "id": f"{millis[:8]}-{millis[8:]}-7000-8000-{n:012x}"}


async def insert_rows(store: Store, rows: list[dict[str, Any]]) -> None:
    await store.run(lambda connection: connection.execute(sa.insert(usage_events), rows))


async def test_a_long_history_is_rolled_up_a_bounded_number_of_hours_per_run(store: Store) -> None:
    start = datetime(2030, 3, 1, tzinfo=UTC)
    await insert_rows(
        store, [written_long_ago(event(start + timedelta(hours=n, minutes=n)), n) for n in range(30)]
    )

    runs = [await roll_up(store, lateness=LATENESS, max_hours=12) for _ in range(4)]

    assert [(r.hours, r.complete) for r in runs] == [(12, False), (12, False), (6, True), (0, True)]
    assert await hourly(store) == await expected(store)
    assert len(await hourly(store)) == 30


async def test_a_partial_run_resumes_where_it_stopped(store: Store) -> None:
    start = datetime(2030, 3, 1, tzinfo=UTC)
    await insert_rows(store, [written_long_ago(event(start + timedelta(hours=n)), n) for n in range(5)])
    await roll_up(store, lateness=LATENESS, max_hours=2)

    state = await store.run(RollupState.load)
    assert state.resume_hour == start + timedelta(hours=2)
    assert len(await hourly(store)) == 2

    await roll_up(store, lateness=LATENESS)
    assert await hourly(store) == await expected(store)
    assert (await store.run(RollupState.load)).resume_hour is None


async def test_hours_before_the_retention_horizon_are_never_rebuilt(store: Store) -> None:
    old, recent = datetime(2030, 3, 1, 3, tzinfo=UTC), datetime(2030, 3, 2, 3, tzinfo=UTC)
    await write(store, event(old), event(recent))
    await roll_up(store, lateness=LATENESS)
    # retention deleted the events before 2030-03-02 00:00 (their totals stay in usage_hourly) ...
    await store.run(write_horizon, datetime(2030, 3, 2, tzinfo=UTC))
    await store.run(lambda c: c.execute(sa.delete(usage_events).where(usage_events.c.created_at < recent)))
    # ... then an event for that day arrives: rebuilding its hour would lose the deleted event
    await write(store, event(old + timedelta(minutes=5)), event(recent + timedelta(minutes=5)))

    await roll_up(store, lateness=LATENESS)

    assert [(row[0].day, row[6]) for row in await hourly(store)] == [(1, 1), (2, 2)]


def trio_now() -> datetime:
    return NEW_YEAR + timedelta(seconds=trio.current_time())


# -- the service ---------------------------------------------------------------------------------------


async def test_service_is_ready_after_its_first_run_and_picks_up_new_events(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    await write(store, event(NEW_YEAR - timedelta(microseconds=1)))
    runs = metric("voidllm_rollup_runs_total", outcome="ok")
    hours = metric("voidllm_rollup_hours_total")
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(serve_rollups, store=store, interval=60.0, lateness=LATENESS, now=trio_now)
        )
        # metrics first: autojump may start the next run while this task waits on a database thread
        assert metric("voidllm_rollup_runs_total", outcome="ok") == runs + 1
        assert metric("voidllm_rollup_hours_total") == hours + 1
        assert metric("voidllm_rollup_lag_seconds") == 0.0
        assert [row[0] for row in await hourly(store)] == [datetime(2030, 12, 31, 23, tzinfo=UTC)]

        await write(store, event(NEW_YEAR))
        seen = metric("voidllm_rollup_runs_total", outcome="ok")
        # a whole run after the write
        await poll_until(lambda: metric("voidllm_rollup_runs_total", outcome="ok") >= seen + 2, interval=1)
        nursery.cancel_scope.cancel()

    assert [row[0] for row in await hourly(store)] == [datetime(2030, 12, 31, 23, tzinfo=UTC), NEW_YEAR]
    assert await hourly(store) == await expected(store)


@attrs.define(eq=False)
class BrokenStore:
    """A store whose every call fails as if the database were down."""

    calls: list[float] = attrs.Factory(list)

    async def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        await trio.lowlevel.checkpoint()
        self.calls.append(trio.current_time())
        raise StoreUnavailableError("database unavailable: OperationalError")


async def test_failed_runs_are_counted_retried_each_interval_and_grow_the_lag(
    autojump_clock: trio.testing.MockClock,
) -> None:
    broken = BrokenStore()
    errors = metric("voidllm_rollup_runs_total", outcome="error")
    durations = metric("voidllm_rollup_duration_seconds_count")

    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(serve_rollups, store=broken, interval=60.0, lateness=LATENESS, now=trio_now)
        )
        assert metric("voidllm_rollup_lag_seconds") == 0.0
        await trio.sleep(150)
        nursery.cancel_scope.cancel()

    assert broken.calls == [0.0, 60.0, 120.0]
    assert metric("voidllm_rollup_runs_total", outcome="error") == errors + 3
    assert metric("voidllm_rollup_duration_seconds_count") == durations + 3
    assert metric("voidllm_rollup_lag_seconds") == 120.0


# -- in the gateway ------------------------------------------------------------------------------------


async def test_the_gateway_rolls_up_before_it_serves_and_runs_retention(sqlite_dsn: str) -> None:
    from tests.gateway import make_config, run_gateway
    from voidllm.store.migrate import migrate
    from voidllm.store.store import open_store

    async with open_store("sqlite", sqlite_dsn) as early:
        await migrate(early)
        await write(early, event(NEW_YEAR - timedelta(microseconds=1)), event(NEW_YEAR))
    config = make_config(sqlite_dsn, settings="retention:\n  mcp_tool_calls: 30d")
    async with run_gateway(config) as gw:
        assert [row[0] for row in await hourly(gw.state.store)] == [NEW_YEAR - timedelta(hours=1), NEW_YEAR]
        metrics = (await gw.client.get("/metrics")).text
        assert 'voidllm_service_up{service="usage-rollups"} 1.0' in metrics
        assert 'voidllm_service_up{service="retention"} 1.0' in metrics


async def test_only_events_older_than_late_after_touch_the_late_mark(store: Store) -> None:
    """The writer's ordinary batches (younger than ``late_after``) never write the mark's settings row."""
    from voidllm.store.tables import settings
    from voidllm.usage.rollups import LATE_KEY

    millis = f"{int(time.time() * 1000) - 10_000:012x}"  # recorded ten seconds ago
    held_id = f"{millis[:8]}-{millis[8:]}-7000-8000-{2:012x}"
    held = attrs.evolve(event(datetime(2030, 3, 1, 9, tzinfo=UTC)), id=held_id)

    def mark(conn: sa.Connection) -> Any:
        return conn.execute(sa.select(settings.c.value).where(settings.c.key == LATE_KEY)).scalar()

    await store.run(partial(insert_usage_events, late_after=150.0), [held])
    assert await store.run(mark) is None
    await store.run(partial(insert_usage_events, late_after=5.0), [attrs.evolve(held, id=held.id[:-1] + "3")])
    assert await store.run(mark) == "2030-03-01T09:00:00+00:00"
