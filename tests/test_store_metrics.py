"""The store's metrics: every call timed by operation and outcome, queueing for the connection counted, and
the pool gauges following the open stores."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
import trio
import trio.testing

from voidllm.errors import StoreError
from voidllm.metrics import REGISTRY
from voidllm.store.store import open_store


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def calls(operation: str, outcome: str) -> float:
    return value("voidllm_store_operation_seconds_count", operation=operation, outcome=outcome)


async def test_each_call_is_timed_by_operation_and_outcome(tmp_path: Path) -> None:
    async with open_store("sqlite", str(tmp_path / "m.db")) as store:
        keys = [("transaction", "ok"), ("transaction", "error"), ("engine", "ok")]
        before = {key: calls(*key) for key in keys}
        await store.run(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())
        with pytest.raises(ValueError, match="a use case's own error"):
            await store.run(lambda conn: (_ for _ in ()).throw(ValueError("a use case's own error")))
        with pytest.raises(StoreError):
            await store.run(lambda conn: conn.execute(sa.text("SELECT * FROM no_such_table")))
        await store.run_engine(lambda engine: None)
        after = {key: calls(*key) for key in before}
    assert {key: after[key] - before[key] for key in before} == {
        ("transaction", "ok"): 2,
        ("transaction", "error"): 1,
        ("engine", "ok"): 1,
    }


async def test_a_call_finding_the_connection_busy_is_counted_and_pool_gauges_follow(tmp_path: Path) -> None:
    base_open, base_idle = value("voidllm_db_open_connections"), value("voidllm_db_idle_connections")
    waits = value("voidllm_db_wait_count_total")
    entered, release = threading.Event(), threading.Event()

    def hold(conn: sa.Connection) -> None:
        entered.set()
        release.wait(10)

    async with open_store("sqlite", str(tmp_path / "m.db")) as store, trio.open_nursery() as nursery:
        assert store.capacity == 1  # SQLite: one connection per process
        await store.run(lambda conn: None)
        assert value("voidllm_db_open_connections") - base_open == 1
        assert value("voidllm_db_idle_connections") - base_idle == 1

        nursery.start_soon(store.run, hold)
        await trio.to_thread.run_sync(entered.wait, 10)
        assert value("voidllm_db_idle_connections") - base_idle == 0  # the one connection is in use
        assert value("voidllm_db_wait_count_total") == waits
        nursery.start_soon(store.run, lambda conn: None)
        await trio.testing.wait_all_tasks_blocked()
        assert value("voidllm_db_wait_count_total") == waits + 1
        release.set()
    # closed: the store no longer counts
    closed = value("voidllm_db_open_connections"), value("voidllm_db_idle_connections")
    assert closed == (base_open, base_idle)
