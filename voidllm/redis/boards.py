"""Health boards shared through Redis (``redis.enabled``): one process probes, every process routes by the
results.

A board (the model health board, the MCP health board) is probed by the holder of its lease
(:mod:`voidllm.store.lease`) only. :func:`serve_shared_board` runs the probe service while this process
holds the lease and, every ``every`` seconds, writes the board's entries to Redis (:class:`RedisBoardShare`:
one key, ``<prefix>board:<name>``, holding a JSON object of entry name → entry, set with an expiry of
``expiry`` seconds). A process without the lease reads that key every ``every`` seconds into its own board,
so routing is the same in every process. An entry is metadata only (status, latency, error class, checked
at); it never holds content.

Staleness: a holder that dies stops writing; its key expires after ``expiry`` and another process takes the
lease (within the lease's ttl plus a renewal) and probes. An entry whose ``checked_at`` is older than
``expiry`` is dropped when read, and a missing or unreadable key reads as no entries: the board then says
``unknown``, as at start, which the router treats like healthy.

Readiness: the holder is ready after its first probe round, a process without the lease after its first
read (successful or not), so start-up never waits for another process.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from voidllm.redis.client import RedisClient, RedisError

if TYPE_CHECKING:
    from voidllm.store.lease import LeaseState

__all__ = ["RedisBoardShare", "serve_shared_board"]

log = logging.getLogger(__name__)

Entries = Mapping[str, Mapping[str, Any]]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@attrs.define(eq=False)
class RedisBoardShare:
    """One board's entries in Redis; see the module docstring. Every entry has a ``checked_at`` (ISO 8601)."""

    name: str
    client: RedisClient
    prefix: str
    expiry: float
    clock: Callable[[], dt.datetime] = _utcnow

    @property
    def key(self) -> str:
        return f"{self.prefix}board:{self.name}"

    async def publish(self, entries: Entries) -> None:
        """Replace the shared entries (one ``SET ... PX``); a lost Redis is logged, the next write retries."""
        ttl = max(1, math.ceil(self.expiry * 1000))
        try:
            await self.client.execute("SET", self.key, json.dumps(entries), "PX", ttl)
        except RedisError as exc:
            log.warning(
                "board: redis unavailable", extra={"board": self.name, "error_type": type(exc).__name__}
            )

    async def read(self) -> dict[str, Mapping[str, Any]]:
        """The shared entries checked within ``expiry``; none when the key is missing or unreadable."""
        try:
            raw = await self.client.execute("GET", self.key)
        except RedisError as exc:
            log.warning(
                "board: redis unavailable", extra={"board": self.name, "error_type": type(exc).__name__}
            )
            return {}
        if raw is None:
            return {}
        try:
            entries = json.loads(raw)
            oldest = self.clock() - dt.timedelta(seconds=self.expiry)
            return {
                name: entry
                for name, entry in entries.items()
                if dt.datetime.fromisoformat(entry["checked_at"]) >= oldest
            }
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("board: unreadable entries", extra={"board": self.name})
            return {}


async def serve_shared_board(
    *,
    lease: LeaseState,
    probe: Callable[..., Awaitable[Any]],
    share: RedisBoardShare,
    dump: Callable[[], Entries],
    load: Callable[[Entries], None],
    every: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Until cancelled: while ``lease`` is held run ``probe`` (a service started with ``nursery.start``) and
    publish ``dump()`` every ``every`` seconds; while not, ``load`` the shared entries every ``every`` seconds
    (and take over as soon as the lease is taken). Ready after the first probe round or the first read."""
    while True:
        if lease.held:
            async with trio.open_nursery() as nursery:
                await nursery.start(probe)
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                while lease.held:
                    await share.publish(dump())
                    await trio.sleep(every)  # a lost lease stops the probes within one period
                nursery.cancel_scope.cancel()
        else:
            load(await share.read())
            task_status.started()
            task_status = trio.TASK_STATUS_IGNORED
            with trio.move_on_after(every):
                await lease.wait_held()
