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

The connection's keep-alive timer (:class:`KeepAliveTimer`) is one task for the connection's whole life, not
hypercorn's task per idle spell: an answer's end moves the deadline of the scope it waits in and a request's
start lifts it, neither yielding nor starting a task (hypercorn's took a lock, started a new task at each
answer's end and cancelled it at the next request: two task steps per request, and a task's making and
unmaking). It closes an idle connection when the keep-alive timeout passes or the server stops, never one that
is answering a request, and it ends with the connection's reading, so a client that closes an idle connection
leaves no task behind until the timeout (hypercorn's did).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import hypercorn.trio.run
import trio
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import TrioSingleTask

from voidllm.transport.eager import send_eagerly


class KeepAliveTimer(TrioSingleTask):
    """A connection's keep-alive timer: one task that waits for the server to stop, in a scope whose deadline
    :meth:`restart` sets and :meth:`stop` lifts; see the module docstring.

    Hypercorn calls ``restart`` when the connection goes idle (when it is opened, and after each answer's end)
    and ``stop`` when a request starts. The task closes the connection (hypercorn's own
    ``_initiate_server_close``, shielded as hypercorn shields it) only when it is idle and either its deadline
    has passed or the server is stopping; woken while a request is being answered (the server stopping, or a
    deadline that passed just before the request started), it waits for the connection to be idle again.
    """

    def __init__(self, server: TCPServer) -> None:
        super().__init__()
        self._server = server
        self._busy = False  # a request is being answered
        self._deadline = math.inf
        self._wait: trio.CancelScope | None = None  # the scope the task waits in, while it does
        self._life: trio.CancelScope | None = None  # the task's own scope; None until it starts
        self._idle_again: trio.Event | None = None

    async def restart(self, task_group: Any, action: Callable[[], Awaitable[None]]) -> None:
        """The connection is idle: close it after the keep-alive timeout (``action``, hypercorn's timer task,
        is not used: this timer does its work)."""
        self._busy = False
        self._deadline = trio.current_time() + self._server.config.keep_alive_timeout
        if self._life is None:
            self._life = trio.CancelScope()
            task_group._nursery.start_soon(self._run)
        elif self._wait is not None:
            self._wait.deadline = self._deadline
        if self._idle_again is not None:
            self._idle_again.set()

    async def stop(self) -> None:
        """A request started: the connection is not idle until its answer ends."""
        self._busy = True
        self._deadline = math.inf
        if self._wait is not None:
            self._wait.deadline = math.inf

    def end(self) -> None:
        """The connection's reading has ended: nothing is left to time. (Hypercorn restarts the timer before
        it reads, so the task exists; a restart after this moves a deadline nothing waits on.)"""
        if self._life is not None:
            self._life.cancel()

    async def _run(self) -> None:
        assert self._life is not None
        with self._life:
            terminated = self._server.context.terminated
            while True:
                with trio.CancelScope(deadline=self._deadline) as wait:
                    self._wait = wait
                    await terminated.wait()
                self._wait = None
                if self._busy:  # answering a request: not before it is idle again
                    self._idle_again = trio.Event()
                    await self._idle_again.wait()
                    self._idle_again = None
                elif terminated.is_set() or trio.current_time() >= self._deadline:
                    break
            with trio.CancelScope(shield=True):
                await self._server._initiate_server_close()


class CancellableWritesServer(TCPServer):
    """Hypercorn's per-connection server whose writes cancellation interrupts; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.idle_task = self._keep_alive = KeepAliveTimer(self)

    async def _read_data(self) -> None:
        try:
            await super()._read_data()
        finally:
            self._keep_alive.end()

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
            await send_eagerly(self.stream, event.data)
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
