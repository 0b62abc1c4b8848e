"""The loop every in-memory cache service runs after its first load: reload every ``ttl`` seconds, and when
the store fails, keep the previous snapshot, count it and say so (a database blip must not empty a cache)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

import trio

from voidllm.errors import StoreError
from voidllm.metrics import CACHE_REFRESH_FAILURES

log = logging.getLogger(__name__)


async def keep_reloading(reload: Callable[[], Awaitable[None]], *, ttl: float, cache: str) -> NoReturn:
    """Call ``reload`` every ``ttl`` seconds until cancelled; a :class:`StoreError` is counted in
    ``voidllm_cache_refresh_failures_total{cache=...}`` and logged, and the loop goes on."""
    while True:
        await trio.sleep(ttl)
        try:
            await reload()
        except StoreError as exc:
            CACHE_REFRESH_FAILURES.labels(cache=cache).inc()
            log.warning(
                "cache reload failed; keeping the previous contents",
                extra={"cache": cache, "error_type": type(exc).__name__},
            )
