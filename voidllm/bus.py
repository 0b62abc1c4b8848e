"""Change notices between gateway processes: "this key was revoked", "the registry changed".

A process that changes something applies it to its own caches first and then publishes a notice on a
topic. With Redis (``redis.enabled``) the notice reaches every other process within milliseconds through
pub/sub (:mod:`voidllm.redis.bus`). Without Redis, :class:`StoreBus` writes it to the ``change_notices``
table of the shared store, and every process polls that table (:func:`serve_store_notices`, every
:data:`POLL_INTERVAL`), so a key revoked or a model changed by the CLI or another worker is seen everywhere
within a second, not at the next periodic reload (``cache.key_ttl`` / ``model_ttl``), which stays as the
safety net. A poll is one indexed query for ids above the last one seen. Rows older than
:data:`NOTICE_RETENTION` are deleted by the pollers. :class:`LocalBus` (publishing nowhere) is for a
process that has no one to tell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import sqlalchemy as sa
import trio

from voidllm.errors import StoreError
from voidllm.store import tables as t
from voidllm.store.ids import utcnow

if TYPE_CHECKING:
    from voidllm.store.store import Store

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.25
"""Seconds between two reads of ``change_notices`` by one process."""
NOTICE_RETENTION = timedelta(minutes=10)
"""How long a notice row is kept (a process that was away longer reloads everything anyway)."""
_CLEANUP_EVERY = 240  # polls (one minute)

TOPIC_KEYS = "keys"
"""Message: the hash of a key to evict at once (then the key cache reloads), or ``*`` to reload only."""
TOPIC_MODELS = "models"
"""Message ignored: reload the model registry from the store."""
TOPIC_ACCESS = "access"
"""Message ignored: reload the model-access allowlists."""
TOPIC_ALIASES = "aliases"
"""Message ignored: reload the scoped model aliases."""

TOPIC_MCP = "mcp"
"""Message ignored: reload the MCP servers and MCP access allowlists (``voidllm.mcp.registry``)."""

TOPICS = (TOPIC_KEYS, TOPIC_MODELS, TOPIC_ACCESS, TOPIC_ALIASES, TOPIC_MCP)


class Bus(Protocol):
    async def publish(self, topic: str, message: str = "") -> None:
        """Tell the other processes; never raises (a lost notice is caught up by the periodic reload)."""


class Notices(Protocol):
    """What receives other processes' notices (the server's :class:`voidllm.invalidations.Invalidations`)."""

    async def serve(self) -> None:
        """Run whatever the notices start (reloads) until cancelled."""

    def notice(self, topic: str, message: str) -> None:
        """One notice of another process."""

    def reload_all(self) -> None:
        """Notices may have been missed (a lost subscription): reload everything."""


class LocalBus:
    """One process, or several without Redis: nothing to tell; periodic reloads converge the others."""

    async def publish(self, topic: str, message: str = "") -> None:
        return None


@attrs.define(eq=False)
class StoreBus:
    """The :class:`Bus` of processes that share a store but no Redis: a notice is a ``change_notices`` row."""

    store: Store
    sender: str

    async def publish(self, topic: str, message: str = "") -> None:
        row = {"topic": topic, "message": message, "sender": self.sender, "created_at": utcnow()}
        try:
            await self.store.run(lambda conn: conn.execute(t.change_notices.insert().values(**row)))
        except StoreError as exc:
            failure = type(exc).__name__
            log.warning("change notice not published", extra={"topic": topic, "error_type": failure})


async def serve_store_notices(
    *,
    store: Store,
    sender: str,
    notice: Callable[[str, str], None],
    interval: float = POLL_INTERVAL,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Hand every notice of another process to ``notice(topic, message)``, polling until cancelled.

    Starts after the newest row present (what happened before this process started is in its first load).
    A failed poll is logged and retried at the next interval.
    """
    last = await store.run(_newest)
    task_status.started()
    polls = 0
    while True:
        await trio.sleep(interval)
        polls += 1
        try:
            rows = await store.run(partial(_after, last=last, cleanup=polls % _CLEANUP_EVERY == 0))
        except StoreError as exc:
            log.warning("change notices not read", extra={"error_type": type(exc).__name__})
            continue
        for row in rows:
            last = row["id"]
            if row["sender"] != sender:
                notice(row["topic"], row["message"])


def _newest(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.change_notices.c.id), 0))).scalar_one())


def _after(conn: sa.Connection, *, last: int, cleanup: bool) -> list[Any]:
    n = t.change_notices
    if cleanup:
        conn.execute(n.delete().where(n.c.created_at < utcnow() - NOTICE_RETENTION))
    query = sa.select(n.c.id, n.c.topic, n.c.message, n.c.sender).where(n.c.id > last).order_by(n.c.id)
    return list(conn.execute(query).mappings())
