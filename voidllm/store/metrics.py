"""Prometheus metrics of the store, on the process registry :data:`voidllm.metrics.REGISTRY`.

- ``voidllm_store_operation_seconds{operation, outcome}``: wall time of one :meth:`Store.run
  <voidllm.store.Store.run>` (``operation="transaction"``) or :meth:`~voidllm.store.Store.run_engine`
  (``"engine"``: migrations, bulk loads), *including* the wait for a free connection, since that is what the
  caller experiences. ``outcome`` is ``error`` when the call raised a :class:`~voidllm.errors.StoreError`
  and ``ok`` otherwise (a use case's own exception out of a transaction that ran is ``ok``). A caller
  cancelled while still waiting for a connection is not observed. The four children are bound once here,
  so an observation on the hot path is one ``perf_counter`` call and a bucket increment.
- ``voidllm_db_wait_count_total``: calls that found every connection in use and had to queue (the Go
  ``sql.DBStats.WaitCount``; our queue is the store's capacity limiter, as large as the pool).
- ``voidllm_db_open_connections`` / ``voidllm_db_idle_connections``: read from the SQLAlchemy pools of the
  open stores at scrape time (summed when a process holds several, as tests do). A pool without a
  check-in count (SQLite ``:memory:``'s ``StaticPool``) reports its calls in flight as open, none idle.
  With several workers they are :func:`~voidllm.metrics.sampled` gauges summed over the live workers.

No label carries a table, a statement or a function name: the label values are the fixed sets above.
"""

from __future__ import annotations

import time
import weakref
from functools import partial
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from voidllm.metrics import MULTIPROCESS_DIR, REGISTRY, sampled

if TYPE_CHECKING:
    from collections.abc import Iterator

    from voidllm.store.store import Store

__all__ = ["OPERATION_SECONDS", "WAITS", "observe", "track", "untrack"]

OPERATION_SECONDS = Histogram(
    "voidllm_store_operation_seconds",
    "Wall time of one store call (transaction or engine job), including the wait for a connection.",
    ["operation", "outcome"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
WAITS = Counter(
    "voidllm_db_wait_count",
    "Store calls that had to wait because every pooled connection was in use.",
    registry=REGISTRY,
)
_CHILDREN = {
    (operation, outcome): OPERATION_SECONDS.labels(operation, outcome)
    for operation in ("transaction", "engine")
    for outcome in ("ok", "error")
}
_STORES: weakref.WeakSet[Store] = weakref.WeakSet()


def observe(operation: str, outcome: str, began: float) -> None:
    """Record one call of ``operation`` that started at ``began`` (a ``time.perf_counter()`` value)."""
    _CHILDREN[operation, outcome].observe(time.perf_counter() - began)


def track(store: Store) -> None:
    """Report ``store``'s pool in the connection gauges until :func:`untrack` (or until it is collected)."""
    _STORES.add(store)


def untrack(store: Store) -> None:
    """Stop reporting ``store``'s pool (it was closed)."""
    _STORES.discard(store)


class _PoolCollector(Collector):
    """The connection gauges, computed from the tracked stores at each scrape."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families(open_=None, idle=None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        open_, idle = _totals()
        yield from self._families(open_=open_, idle=idle)

    @staticmethod
    def _families(*, open_: int | None, idle: int | None) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "voidllm_db_open_connections", "Database connections open (in use plus idle).", value=open_
        )
        yield GaugeMetricFamily(
            "voidllm_db_idle_connections", "Database connections idle in the pool.", value=idle
        )


def _pool_counts(store: Store) -> tuple[int, int]:
    pool = store.engine.pool
    checkedin = getattr(pool, "checkedin", None)
    checkedout = getattr(pool, "checkedout", None)
    if checkedin is None or checkedout is None:
        return store.statistics().borrowed_tokens, 0
    idle = int(checkedin())
    return idle + int(checkedout()), idle


def _totals() -> tuple[int, int]:
    open_ = idle = 0
    for store in list(_STORES):
        store_open, store_idle = _pool_counts(store)
        open_ += store_open
        idle += store_idle
    return open_, idle


def _total(index: int) -> float:
    return float(_totals()[index])


if MULTIPROCESS_DIR is None:
    REGISTRY.register(_PoolCollector())
else:  # each worker's pool, written into its metric files and summed over the live workers at a scrape
    for _name, _help, _index in (
        ("voidllm_db_open_connections", "Database connections open (in use plus idle).", 0),
        ("voidllm_db_idle_connections", "Database connections idle in the pool.", 1),
    ):
        _gauge = Gauge(_name, _help, registry=REGISTRY, multiprocess_mode="livesum")
        sampled(_gauge, partial(_total, _index))
