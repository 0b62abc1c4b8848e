"""The supervisor: one nursery per process that owns every long-lived service.

A *service* is an ``async def service(*, task_status)`` that reports readiness with
``task_status.started()`` and then runs until cancelled (STYLE P15: ``serve_*``). The supervisor starts each
one with ``nursery.start`` so the caller only continues once the service is ready, in dependency order.

Restart policy:

- A service that raises before it reported readiness fails the start: the exception reaches the caller of
  :meth:`Supervisor.start`, and the process does not serve with a broken dependency.
- A service that raises *after* readiness is restarted after a delay from :class:`Backoff` (exponential,
  capped), counted in ``voidllm_service_restarts_total{service}``, and logged by exception class only
  (exception messages of foreign libraries can echo data, so they stay out of the log). Its later calls to
  ``task_status.started()`` are accepted and ignored.
- A service that has run for at least ``Backoff.reset_after`` seconds before crashing starts again from the
  initial delay: a crash a day is not a crash loop.
- A service that returns normally is finished and is not restarted.
- Cancellation is never caught: ``trio.Cancelled`` (a ``BaseException``) and exception groups that contain
  it propagate, so shutdown works.

Shutdown is ordered: :meth:`Supervisor.aclose` stops services in the reverse order of their start, waiting
for each to finish its own cleanup, so a service that depends on one started before it is done first. No
shield spans a service's lifetime: an outer cancellation (a crash next to the supervisor, a test) cancels
every service at once, and each service's cleanup that must finish (a writer's last flush) is shielded and
bounded by the service itself. What must outlive every service (the store) is therefore opened *around* the
supervisor, not started in it (``voidllm/server.py``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import attrs
import trio

from voidllm.metrics import SERVICE_RESTARTS, SERVICE_UP

log = logging.getLogger(__name__)


class Service(Protocol):
    def __call__(self, *, task_status: trio.TaskStatus[Any] = ...) -> Awaitable[None]: ...


@attrs.frozen
class Backoff:
    """Restart delays: ``initial * factor ** (n - 1)`` for the n-th consecutive crash, at most ``maximum``."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    reset_after: float = 60.0

    def delay(self, consecutive_crashes: int) -> float:
        """The wait before restarting after the given number of consecutive crashes (>= 1)."""
        return min(self.initial * self.factor ** (consecutive_crashes - 1), self.maximum)


class _StartedOnce:
    """A ``TaskStatus`` that forwards only the first ``started()`` to the supervisor's ``nursery.start``."""

    def __init__(self, outer: trio.TaskStatus[Any]) -> None:
        self._outer: trio.TaskStatus[Any] | None = outer
        self.value: Any = None
        self.reported = False

    def started(self, value: Any = None) -> None:
        if self._outer is not None:
            outer, self._outer = self._outer, None
            self.value = value
            self.reported = True
            outer.started(value)


@attrs.define(eq=False)
class Supervisor:
    """Starts services in a nursery it does not own, restarting them when they crash.

    Create it with :func:`open_supervisor`; the nursery's lifetime is the process's.
    """

    nursery: trio.Nursery
    backoff: Backoff = Backoff()
    _running: list[tuple[trio.CancelScope, trio.Event]] = attrs.field(factory=list, init=False)

    async def start(self, name: str, service: Callable[..., Awaitable[None]]) -> Any:
        """Start ``service`` under supervision and wait until it reports readiness.

        Returns:
            The value the service passed to ``task_status.started()``.

        Raises:
            Exception: whatever the service raised before it reported readiness.
        """
        return await self.nursery.start(self._supervise, name, service)

    async def _supervise(
        self,
        name: str,
        service: Callable[..., Awaitable[None]],
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        done = trio.Event()
        try:
            with trio.CancelScope() as scope:  # cancelled by aclose(), one service after the other
                self._running.append((scope, done))
                await self._restart_loop(name, service, _StartedOnce(task_status))
        finally:
            done.set()

    async def aclose(self) -> None:
        """Stop every service, last started first, each after the one started after it has finished."""
        while self._running:
            scope, done = self._running[-1]
            scope.cancel()
            await done.wait()
            self._running.pop()

    async def _restart_loop(
        self, name: str, service: Callable[..., Awaitable[None]], status: _StartedOnce
    ) -> None:
        crashes = 0
        while True:
            began = trio.current_time()
            SERVICE_UP.labels(service=name).set(1)
            try:
                await service(task_status=status)
            except Exception as exc:
                SERVICE_UP.labels(service=name).set(0)
                if not status.reported:
                    raise
                crashes = 1 if trio.current_time() - began >= self.backoff.reset_after else crashes + 1
                delay = self.backoff.delay(crashes)
                SERVICE_RESTARTS.labels(service=name).inc()
                log.error(
                    "service crashed; restarting",
                    extra={"service": name, "error_type": type(exc).__name__, "restart_in_s": delay},
                )
                await trio.sleep(delay)
            else:
                SERVICE_UP.labels(service=name).set(0)
                if not status.reported:
                    status.started()
                return


@asynccontextmanager
async def open_supervisor(
    backoff: Backoff | None = None, *, stop_timeout: float = 30.0
) -> AsyncIterator[Supervisor]:
    """Open the process's supervisor nursery.

    On exit its services are stopped in reverse start order, for at most ``stop_timeout`` seconds; whatever is
    left then is cancelled with the nursery. Under an outer cancellation they are all cancelled at once (see
    the module docstring); leaving still waits until each has finished its own bounded cleanup.
    """
    async with trio.open_nursery() as nursery:
        supervisor = Supervisor(nursery, backoff or Backoff())
        try:
            yield supervisor
        finally:
            with trio.move_on_after(stop_timeout):
                await supervisor.aclose()
            nursery.cancel_scope.cancel()
