"""Issue 17 point 5: a server's cached tool list is replaced whole, also when several processes fetched it at
the same moment (the first calls of Code Mode on every worker). On PostgreSQL their transactions overlap;
the second waits for the first and replaces its rows instead of colliding with them on insert."""

from __future__ import annotations

from functools import partial

import pytest
import sqlalchemy as sa
import trio

from tests.polling import poll_until
from voidllm.mcp.tools_cache import CachedTool, replace_tools
from voidllm.store import tables as t
from voidllm.store.migrate import migrate
from voidllm.store.store import open_store

pytestmark = pytest.mark.postgres


def _tools(*names: str) -> list[dict[str, object]]:
    return [{"name": name, "description": name, "inputSchema": {"type": "object"}} for name in names]


def _waiting_on_a_lock(conn: sa.Connection) -> bool:
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return bool(conn.execute(waiting).scalar_one())


async def test_overlapping_replacements_of_one_list_both_succeed(pg_dsn: str) -> None:
    async with open_store("postgres", pg_dsn) as store:
        await migrate(store)
        server_id = await store.run(
            lambda conn: conn.execute(
                sa.insert(t.mcp_servers)
                .values(name="S", alias="s", url="http://s")
                .returning(t.mcp_servers.c.id)
            ).scalar_one()
        )
        first = await trio.to_thread.run_sync(store.engine.connect)
        try:
            transaction = first.begin()
            await trio.to_thread.run_sync(partial(replace_tools, first, server_id, _tools("a", "b")))
            outcome: list[tuple[tuple[CachedTool, ...], bool]] = []

            async def second() -> None:
                outcome.append(
                    await store.run(partial(replace_tools, server_id=server_id, tools=_tools("b", "c")))
                )

            async with trio.open_nursery() as nursery:
                nursery.start_soon(second)
                with trio.fail_after(10):  # the second replacement waits for the first transaction
                    await poll_until(partial(store.run, _waiting_on_a_lock))
                await trio.to_thread.run_sync(transaction.commit)
        finally:
            await trio.to_thread.run_sync(first.close)
        ((kept, changed),) = outcome
        assert ([tool.name for tool in kept], changed) == (["b", "c"], True)
        cached = t.mcp_server_tools
        names = await store.run(
            lambda conn: conn.execute(sa.select(cached.c.name).order_by(cached.c.name)).scalars().all()
        )
        assert list(names) == ["b", "c"]
