"""Leases: one process of all those sharing a store does a periodic job (rollups, retention), and another
takes over soon after the holder dies.

A :class:`Lease` backend answers :meth:`~Lease.hold` ("take the lease, or keep it if this process holds it";
``True`` while held) and :meth:`~Lease.release`. :func:`serve_lease` calls ``hold`` every ``renew_every``
seconds for as long as the process runs and keeps a :class:`LeaseState` that the job reads: it runs a period
only while :attr:`LeaseState.held`, and a process that is waiting for the lease runs as soon as it gets it
(:meth:`LeaseState.wait_held`). Losing the lease does not cancel a run in progress; the jobs are safe to run
again (each rollup and purge is a transaction of its own), so the worst a handover does is one extra run.

Backends, chosen by the server from the deployment:

- with ``redis.enabled``: :class:`voidllm.redis.lease.RedisLease`, a key set with ``NX PX`` and renewed
  while held; a dead holder's key expires after ``ttl`` (taken over within ``ttl + renew_every``);
- else on PostgreSQL: :class:`AdvisoryLease`, a session-level ``pg_try_advisory_lock`` on a connection this
  lease keeps to itself (outside the store's pool, so requests keep all of it); when the holder dies its
  connection closes and PostgreSQL releases the lock, so another process takes it at its next try (within
  ``renew_every``);
- else on SQLite (one host): :class:`FileLease`, an exclusive ``flock`` on a file beside the database, which
  the operating system releases when the holder dies; an in-memory database is one process: :class:`Always`.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol

import attrs
import sqlalchemy as sa
import trio

from voidllm.errors import StoreError
from voidllm.store.engine import PG_CONNECT_TIMEOUT_S
from voidllm.store.store import Store

__all__ = ["AdvisoryLease", "Always", "FileLease", "Lease", "LeaseState", "serve_lease"]

log = logging.getLogger(__name__)


class Lease(Protocol):
    name: str

    async def hold(self) -> bool:
        """Take the lease or renew it; ``True`` while this process holds it. Never raises for a lost
        backend (answers ``False``, logged)."""

    async def release(self) -> None:
        """Give the lease up if held (at shutdown)."""


@attrs.define(eq=False)
class LeaseState:
    """Whether this process holds a lease, as :func:`serve_lease` keeps it."""

    held: bool = False
    _changed: trio.Event = attrs.field(factory=trio.Event, init=False)

    def set(self, held: bool) -> None:
        if held != self.held:
            self.held = held
            self._changed.set()
            self._changed = trio.Event()

    async def wait_held(self) -> None:
        while not self.held:
            await self._changed.wait()


async def serve_lease(
    *,
    lease: Lease,
    state: LeaseState,
    renew_every: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep ``state`` true to ``lease`` until cancelled (ready after the first try); release it at the end."""
    try:
        while True:
            held = await lease.hold()
            if held != state.held:
                log.info("lease acquired" if held else "lease lost", extra={"lease": lease.name})
            state.set(held)
            task_status.started()
            task_status = trio.TASK_STATUS_IGNORED
            await trio.sleep(renew_every)
    finally:
        if state.held:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await lease.release()
            state.set(False)


@attrs.define(eq=False)
class Always:
    """One process only (an in-memory database): the lease is always held."""

    name: str

    async def hold(self) -> bool:
        await trio.lowlevel.checkpoint()
        return True

    async def release(self) -> None:
        await trio.lowlevel.checkpoint()


@attrs.define(eq=False)
class FileLease:
    """An exclusive ``flock`` on ``path`` (SQLite: every process is on the database's host)."""

    name: str
    path: Path
    _fd: int | None = attrs.field(default=None, init=False)

    async def hold(self) -> bool:
        await trio.lowlevel.checkpoint()
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning(
                "lease file unavailable", extra={"lease": self.name, "error_type": type(exc).__name__}
            )
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def release(self) -> None:
        await trio.lowlevel.checkpoint()
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


@attrs.define(eq=False)
class AdvisoryLease:
    """A PostgreSQL session-level advisory lock on a connection of its own; see the module docstring."""

    name: str
    store: Store
    _conn: sa.Connection | None = attrs.field(default=None, init=False)
    _held: bool = attrs.field(default=False, init=False)

    @property
    def key(self) -> int:
        """The lock's 64-bit key: the first 8 bytes of the name's SHA-256, signed."""
        digest = hashlib.sha256(f"voidllm:lease:{self.name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    async def hold(self) -> bool:
        try:
            self._held = await trio.to_thread.run_sync(self._hold)
        except (sa.exc.SQLAlchemyError, StoreError) as exc:
            log.warning(
                "lease: database unavailable", extra={"lease": self.name, "error_type": type(exc).__name__}
            )
            await trio.to_thread.run_sync(self._close)
        return self._held

    def _hold(self) -> bool:
        if self._conn is None:
            self._conn = self._engine().connect()
            self._held = False
        if self._held:  # the lock lives as long as the connection: check that it still does
            self._conn.execute(sa.text("SELECT 1"))
            self._conn.commit()
            return True
        held = bool(self._conn.execute(sa.select(sa.func.pg_try_advisory_lock(self.key))).scalar())
        self._conn.commit()
        return held

    def _engine(self) -> sa.Engine:
        """An engine without a pool for the store's database: the lease's connection is never one of the
        pool's, so requests keep every pool connection."""
        url = self.store.engine.url
        args = {} if "connect_timeout" in url.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
        return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=args, hide_parameters=True)

    async def release(self) -> None:
        await trio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            try:
                conn.invalidate()  # the session ends, and with it the lock; never back to the pool locked
                conn.close()
            except sa.exc.SQLAlchemyError:
                pass
