"""The supervisor: readiness, restart with exact backoff times (autojump clock), ordered shutdown."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from voidllm.errors import ServiceUnavailableError
from voidllm.metrics import REGISTRY
from voidllm.nursery import Backoff, DrainTracker, open_supervisor


def _restarts(name: str) -> float:
    return REGISTRY.get_sample_value("voidllm_service_restarts_total", {"service": name}) or 0.0


async def test_crashing_service_restarts_with_exponential_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    starts: list[float] = []
    before = _restarts("crashy")

    async def crashy(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        starts.append(trio.current_time())
        task_status.started("ready")
        await trio.sleep(1)
        raise RuntimeError("boom")

    backoff = Backoff(initial=0.5, factor=2.0, maximum=4.0, reset_after=60.0)
    async with open_supervisor(backoff) as supervisor:
        assert await supervisor.start("crashy", crashy) == "ready"
        await trio.sleep(30)
        supervisor.nursery.cancel_scope.cancel()

    # run 1s, wait 0.5; run 1s, wait 1; run 1s, wait 2; then 4, 4, 4 ... (capped)
    assert starts[:7] == [0.0, 1.5, 3.5, 6.5, 11.5, 16.5, 21.5]
    # every run crashed, the last one while its restart delay was still running
    assert _restarts("crashy") - before == len(starts) == 8


async def test_backoff_resets_after_a_long_healthy_run(autojump_clock: trio.testing.MockClock) -> None:
    starts: list[float] = []
    runtimes = iter([1.0, 1.0, 100.0, 1.0])

    async def service(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        starts.append(trio.current_time())
        task_status.started()
        await trio.sleep(next(runtimes, 1e9))
        raise ValueError

    async with open_supervisor(Backoff(initial=1, factor=2, maximum=60, reset_after=50)) as supervisor:
        await supervisor.start("resetting", service)
        await trio.sleep(200)
        supervisor.nursery.cancel_scope.cancel()

    # crash 1 -> 1s, crash 2 -> 2s, long run then crash -> back to 1s, next crash -> 2s
    assert starts == [0.0, 2.0, 5.0, 106.0, 109.0]


async def test_crash_before_ready_fails_the_start() -> None:
    async def broken(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        raise OSError("cannot open")

    with pytest.RaisesGroup(pytest.RaisesExc(OSError, match="cannot open")):
        async with open_supervisor() as supervisor:
            await supervisor.start("broken", broken)


async def test_services_stop_in_reverse_start_order(autojump_clock: trio.testing.MockClock) -> None:
    stopped: list[str] = []

    def make(name: str, cleanup: float) -> Any:
        async def service(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                with trio.move_on_after(5, shield=True):
                    await trio.sleep(cleanup)
                stopped.append(name)

        return service

    async with open_supervisor() as supervisor:
        await supervisor.start("store", make("store", 0.1))
        await supervisor.start("writer", make("writer", 2.0))
    # the writer's slower cleanup still finishes before the store stops
    assert stopped == ["writer", "store"]


async def test_service_that_returns_is_not_restarted(autojump_clock: trio.testing.MockClock) -> None:
    runs = 0

    async def once(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal runs
        runs += 1
        task_status.started()

    async with open_supervisor() as supervisor:
        await supervisor.start("once", once)
        await trio.sleep(100)
    assert runs == 1


async def test_drain_tracker_waits_then_cancels(autojump_clock: trio.testing.MockClock) -> None:
    tracker = DrainTracker()
    outcomes: list[tuple[str, float]] = []

    async def request(name: str, duration: float) -> None:
        with tracker.track() as scope, scope:
            await trio.sleep(duration)
        outcomes.append(
            (name, trio.current_time())
            if not scope.cancelled_caught
            else (name + "-cancelled", trio.current_time())
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(request, "fast", 2.0)
        nursery.start_soon(request, "slow", 50.0)
        await trio.testing.wait_all_tasks_blocked()
        assert tracker.inflight == 2
        tracker.start_draining()
        with pytest.raises(ServiceUnavailableError):
            with tracker.track():
                pass
        with trio.move_on_after(10):
            await tracker.wait_idle()
        tracker.cancel_all()

    assert outcomes == [("fast", 2.0), ("slow-cancelled", 10.0)]
    assert tracker.inflight == 0


async def test_outer_cancellation_stops_every_service_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stopped: dict[str, float] = {}

    def make(name: str, cleanup: float) -> Any:
        async def service(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                with trio.move_on_after(5, shield=True):
                    await trio.sleep(cleanup)
                stopped[name] = trio.current_time()

        return service

    with trio.move_on_after(10):  # the process is told to stop from outside the supervisor
        async with open_supervisor() as supervisor:
            await supervisor.start("first", make("first", 0.5))
            await supervisor.start("writer", make("writer", 2.0))
            await trio.sleep_forever()
        pytest.fail("the supervisor swallowed the cancellation")
    # no shield spans a service: both were cancelled at 10; each one's own bounded cleanup still ran, and
    # leaving the supervisor waited for the slower one (what must outlive a writer is opened around it)
    assert stopped == {"first": 10.5, "writer": 12.0}
    assert trio.current_time() == 12.0


async def test_services_left_after_the_stop_timeout_are_cancelled_together(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stopped: dict[str, float] = {}

    def make(name: str, cleanup: float) -> Any:
        async def service(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                with trio.move_on_after(cleanup, shield=True):
                    await trio.sleep(cleanup)
                stopped[name] = trio.current_time()

        return service

    async with open_supervisor(stop_timeout=30) as supervisor:
        await supervisor.start("first", make("first", 0))
        await supervisor.start("slow", make("slow", 100))  # stopped first; its cleanup outlasts the timeout
    # "first" did not wait for "slow" beyond the 30 s stop timeout
    assert stopped == {"first": 30.0, "slow": 100.0}
