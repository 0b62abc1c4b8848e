"""Several gateway processes on one listening socket (``server.workers`` > 1).

Python runs one core per process, so one host scales by processes (ARCHITECTURE.md section 3). The parent
process:

1. migrates and bootstraps the store once (workers never race to bootstrap);
2. binds the listening socket(s) itself (both ports' in dual-port mode, ``server.admin.port``), so every
   worker accepts on the same ports (also with ``port: 0``);
3. starts ``workers`` child processes (``spawn``: nothing of the parent's state is inherited by accident),
   each running the same :func:`voidllm.server.serve` on the shared sockets with its own caches, usage writer
   and upstream connection pool;
4. waits until every worker listens, then logs ``listening`` and prints the bootstrap banner once;
5. restarts a worker that dies while the gateway is running, with the supervisor's backoff;
6. on SIGTERM/SIGINT asks every worker to drain (SIGTERM; each drains exactly as a single process does) and
   exits 0 once all exited cleanly; a second signal kills the workers and exits 1 at once.

Workers run in their own process group, so a terminal's Ctrl-C reaches only the parent, which then stops them
in order; a worker whose parent disappears stops by itself (it waits for end-of-file on a pipe whose only
writing end the parent holds, so the kernel tells it at once; nothing polls).

What is per process: rate counters and caches are refreshed from the store (and, with the tenancy issue, kept
exact across processes in Redis). ``/metrics`` covers every worker: before the first worker starts, the parent
makes a fresh directory for prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, inherited by
every worker it starts), marks a worker's files dead when it exits and removes the directory at the end
(:mod:`voidllm.metrics` says how the workers' values are combined).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any

import trio

from voidllm import metrics
from voidllm.config import Config
from voidllm.logs import configure_logging, report_crash
from voidllm.nursery import Backoff
from voidllm.nursery.signals import STOP_SIGNALS, watch_stop_signals
from voidllm.server import Listeners, open_listeners, prepare_store, serve

log = logging.getLogger("voidllm.workers")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

READY_TIMEOUT = 60.0


def run_workers(config: Config) -> int:
    """Run the gateway as ``config.server.workers`` processes; returns the exit code."""
    listeners = open_listeners(config)  # before the store: a port in use is reported before anything ran
    try:
        credentials = trio.run(prepare_store, config)
        with _metrics_directory() as directory:
            return trio.run(
                _manage, config, listeners, credentials.banner() if credentials else None, directory
            )
    finally:
        listeners.close()


@contextmanager
def _metrics_directory() -> Iterator[str]:
    """A fresh, empty directory for the workers' metric files, named to them in ``PROMETHEUS_MULTIPROC_DIR``
    (``spawn`` copies this process's environment), removed with its files at the end."""
    directory = tempfile.mkdtemp(prefix="voidllm-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


async def _manage(config: Config, listeners: Listeners, banner: str | None, metrics_dir: str) -> int:
    context = multiprocessing.get_context("spawn")
    ready: Any = context.Queue()
    # Never written nor closed: the kernel closes the writing end when this process ends, however it ends.
    parent_alive, _parent_end = context.Pipe(duplex=False)

    def start(index: int) -> SpawnProcess:
        process = context.Process(
            target=_worker_main,
            args=(config, listeners, ready, index, parent_alive),
            name=f"voidllm-worker-{index}",
        )
        process.start()
        return process

    workers = [start(index) for index in range(config.server.workers)]
    await _wait_ready(ready, len(workers))
    extra: dict[str, Any] = {
        "binds": _binds(listeners.proxy),
        "workers": len(workers),
        "metrics_dir": metrics_dir,
    }
    if listeners.admin is not None:
        extra["admin_binds"] = _binds(listeners.admin)
    log.info("listening", extra=extra)
    if banner:
        sys.stderr.write(banner)
        sys.stderr.flush()
    stopping = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_forward_signals, workers, stopping)
        await _keep_running(workers, start, stopping, partial(metrics.worker_gone, directory=metrics_dir))
        nursery.cancel_scope.cancel()
    codes = [w.exitcode for w in workers]
    log.info("shutdown complete", extra={"worker_exit_codes": codes})
    # -SIGTERM: a worker that was still starting when the stop came (before it could handle the signal)
    return 0 if all(code in (0, -signal.SIGTERM) for code in codes) else 1


async def _wait_ready(ready: Any, count: int) -> None:
    with trio.fail_after(READY_TIMEOUT):
        for _ in range(count):
            await trio.to_thread.run_sync(partial(ready.get, timeout=READY_TIMEOUT), abandon_on_cancel=True)


async def _forward_signals(workers: list[SpawnProcess], stopping: trio.Event) -> None:
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async for signum in signals:
            if stopping.is_set():
                log.warning("second signal: killing workers", extra={"signal": signum})
                for worker in workers:
                    worker.kill()
                logging.shutdown()
                os._exit(1)
            log.info("shutdown requested; draining workers", extra={"signal": signum})
            stopping.set()
            for worker in workers:
                if worker.is_alive() and worker.pid is not None:
                    os.kill(worker.pid, signal.SIGTERM)


async def _keep_running(
    workers: list[SpawnProcess],
    start: Callable[[int], SpawnProcess],
    stopping: trio.Event,
    gone: Callable[[int], None],
) -> None:
    """Restart a worker that exits while the gateway runs (with the supervisor's backoff); return once every
    worker has exited after ``stopping`` was set. ``gone(pid)`` is called for every worker that exited."""
    backoff = Backoff()
    crashes = 0

    async def keep(index: int) -> None:
        nonlocal crashes
        while True:
            await _exited(workers[index])
            gone(workers[index].pid or 0)
            if stopping.is_set():
                return
            crashes += 1
            delay = backoff.delay(crashes)
            log.error(
                "worker exited; restarting",
                extra={"worker": index, "exit_code": workers[index].exitcode, "restart_in_s": delay},
            )
            with trio.move_on_after(delay):
                await stopping.wait()
            if stopping.is_set():
                return
            workers[index] = start(index)

    async with trio.open_nursery() as nursery:
        for index in range(len(workers)):
            nursery.start_soon(keep, index)


async def _exited(process: SpawnProcess) -> None:
    """Wait until ``process`` has exited: its sentinel (a pipe only the child holds open) becomes readable
    when it ends; then reap it, so ``exitcode`` is set."""
    await trio.lowlevel.wait_readable(process.sentinel)
    await trio.to_thread.run_sync(process.join)  # the child is already gone: this returns at once


def _binds(sockets: Any) -> list[str]:
    """The URLs of listening sockets, as hypercorn reports them."""
    return [f"https://{_address(sock)}" for sock in sockets.secure_sockets] + [
        f"http://{_address(sock)}" for sock in sockets.insecure_sockets
    ]


def _address(sock: Any) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _worker_main(
    config: Config, listeners: Listeners, ready: Any, index: int, parent_alive: Connection
) -> None:
    """Entry point of one worker process."""
    os.setpgrp()
    configure_logging(config.logging.level, config.logging.format)
    metrics.announce_worker()
    try:
        trio.run(_worker, config, listeners, ready, parent_alive)
    except BaseExceptionGroup as group:
        report_crash(group)
        sys.exit(1)


async def _worker(config: Config, listeners: Listeners, ready: Any, parent_alive: Connection) -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_stop_signals, stop)
        nursery.start_soon(_watch_parent, parent_alive, stop)
        nursery.start_soon(metrics.publish_samples)

        async def run(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            await serve(
                config, stop, listeners=listeners, run_bootstrap=False, tune_gc=True, task_status=task_status
            )
            nursery.cancel_scope.cancel()

        await nursery.start(run)
        ready.put(os.getpid())


async def _watch_parent(parent_alive: Connection, stop: trio.Event) -> None:
    """Set ``stop`` once the parent process is gone: the parent never writes to ``parent_alive``, so it
    becomes readable (end-of-file) only when the parent's end closes, that is, when the parent exits."""
    await trio.lowlevel.wait_readable(parent_alive.fileno())
    log.warning("parent process is gone; stopping")
    stop.set()
