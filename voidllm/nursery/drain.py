"""Drain tracking for graceful shutdown.

Each tracked request runs inside its own cancel scope registered here. Shutdown then goes:

1. :meth:`DrainTracker.start_draining`: from now on :meth:`DrainTracker.track` refuses new requests with
   :class:`~voidllm.errors.ServiceUnavailableError`, and ``/readyz`` answers 503;
2. :meth:`DrainTracker.wait_idle` under the drain deadline: in-flight requests may finish;
3. :meth:`DrainTracker.cancel_all`: whatever is left is cancelled (each request then ends through its own
   cleanup, which is shielded and bounded where it must finish).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import trio

from voidllm.errors import ServiceUnavailableError
from voidllm.metrics import DRAINING, INFLIGHT_REQUESTS


@attrs.define(eq=False)
class DrainTracker:
    """Counts in-flight requests and refuses new ones once draining."""

    draining: bool = False
    _scopes: set[trio.CancelScope] = attrs.field(factory=set)
    _idle: trio.Event = attrs.field(factory=trio.Event)

    def __attrs_post_init__(self) -> None:
        self._idle.set()

    @property
    def inflight(self) -> int:
        """Requests currently tracked."""
        return len(self._scopes)

    @contextmanager
    def track(self) -> Iterator[trio.CancelScope]:
        """Count one request as in flight and hand out the cancel scope that shutdown will cancel.

        The caller enters the scope around the work that may be cancelled and can still answer (say, with
        a 503) after the scope caught the cancellation but before leaving ``track``; only then is the
        request no longer counted, so the server does not close the connection under that answer::

            with tracker.track() as scope:
                with scope:
                    await serve_request()
                if scope.cancelled_caught:
                    await answer_503()

        Raises:
            ServiceUnavailableError: the process is draining and takes no new requests.
        """
        if self.draining:
            raise ServiceUnavailableError("server is shutting down")
        scope = trio.CancelScope()
        self._scopes.add(scope)
        if len(self._scopes) == 1:
            self._idle = trio.Event()
        INFLIGHT_REQUESTS.set(len(self._scopes))
        try:
            yield scope
        finally:
            self._scopes.discard(scope)
            INFLIGHT_REQUESTS.set(len(self._scopes))
            if not self._scopes:
                self._idle.set()

    def start_draining(self) -> None:
        """Refuse new requests from now on."""
        self.draining = True
        DRAINING.set(1)

    async def wait_idle(self) -> None:
        """Block until no request is in flight."""
        while self._scopes:
            await self._idle.wait()

    def cancel_all(self) -> None:
        """Cancel every request still in flight."""
        for scope in list(self._scopes):
            scope.cancel()
