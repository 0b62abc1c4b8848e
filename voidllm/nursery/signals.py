"""Turning SIGTERM/SIGINT into a graceful stop, and a second one into an immediate exit."""

from __future__ import annotations

import logging
import os
import signal

import trio

log = logging.getLogger("voidllm")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def watch_stop_signals(stop: trio.Event) -> None:
    """Set ``stop`` on the first SIGTERM/SIGINT; exit the process at once (code 1) on the second."""
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async for signum in signals:
            if stop.is_set():
                log.warning("second signal: exiting immediately", extra={"signal": signum})
                logging.shutdown()
                os._exit(1)
            log.info("shutdown requested", extra={"signal": signum})
            stop.set()
