"""Writes to a client that the request's deadline can cut.

Hypercorn shields every socket write of a connection from cancellation, so an ASGI ``send`` to a client that
reads nothing (a full receive window) waits for ever, whatever deadline the request set: its stream outlives
``max_stream_duration``, its non-streamed answer outlives ``write_timeout``, its upstream connection and token
reservation stay held. :func:`install` makes hypercorn's trio server use :class:`CancellableWritesServer`,
whose writes obey the caller's cancel scopes (STYLE P3) with two rules:

- a write that is cancelled part-way leaves the connection unusable, so the connection is closed at once
  (forcefully, without waiting for the client): the client sees a broken response, never a spliced one;
- writes that are not cancelled behave as hypercorn's: a broken or closed socket ends the connection, and so
  does a write that meets hypercorn closing the connection at that moment (its ``send_eof`` runs outside the
  write lock, so trio raises ``BusyResourceError``, which hypercorn lets escape into the app: a 408 answered
  while the server closed the connection logged it).

The server's own writes (error answers, the end of an exchange) run in tasks with no deadline, as before.

A free write lock is taken without yielding (``trio.Lock`` yields to the scheduler even when free): a
cancelled caller is still refused before its write, and the write itself yields once. So every write costs one
scheduler round instead of two: the round between an upstream's answer and the client's, and one per event of
a stream.

The connection's keep-alive timer is hypercorn's, restarted when an answer ends and stopped when a request
starts; :class:`IdleTimer` does both without yielding (hypercorn's takes a lock, and its restart waits for the
new timer task to start): one scheduler round fewer before each request reaches the app, and two after
each answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import hypercorn.trio.run
import trio
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import TrioSingleTask


class IdleTimer(TrioSingleTask):
    """Hypercorn's single-task holder (the keep-alive timer of a connection) with a ``restart`` and a
    ``stop`` that never yield: the old task's scope is cancelled and the new task is started with
    ``start_soon`` in a scope made at once, so a ``stop`` right after a ``restart`` cancels it even before it
    ran. Nothing in them awaits, so hypercorn's lock has nothing left to guard."""

    async def restart(self, task_group: Any, action: Callable[[], Awaitable[None]]) -> None:
        if self._handle is not None:
            self._handle.cancel()
        scope = self._handle = trio.CancelScope()
        task_group._nursery.start_soon(_run_in, scope, action)

    async def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None


async def _run_in(scope: trio.CancelScope, action: Callable[[], Awaitable[None]]) -> None:
    with scope:
        await action()


class CancellableWritesServer(TCPServer):
    """Hypercorn's per-connection server whose writes cancellation interrupts; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.idle_task = IdleTimer()

    async def protocol_send(self, event: Event) -> None:
        if not isinstance(event, RawData):
            await super().protocol_send(event)
            return
        lock = self.send_lock
        if lock.locked():
            await lock.acquire()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
            lock.acquire_nowait()
        try:
            await self.stream.send_all(event.data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
            await self.protocol.handle(Closed())
        except trio.Cancelled:
            await trio.aclose_forcefully(self.stream)  # part of the write may be out: the stream is spent
            raise
        finally:
            lock.release()


def install() -> None:
    """Make hypercorn's ``worker_serve`` build :class:`CancellableWritesServer` connections (idempotent)."""
    # worker_serve looks the class up in its own module, which imports it without re-exporting it.
    hypercorn.trio.run.TCPServer = CancellableWritesServer  # type: ignore[attr-defined]
