"""Persistence: SQLAlchemy Core tables, the engine, the trio-facing :class:`Store`, Alembic migrations.

Layering: ``store`` imports nothing else from VoidLLM except :mod:`voidllm.errors`, :mod:`voidllm.clock`,
the process registry :mod:`voidllm.metrics` (for :mod:`~voidllm.store.metrics`) and the policy parsers of
:mod:`voidllm.request_policy` and :mod:`voidllm.guard` (for :mod:`~voidllm.store.policies`). Modules:

- :mod:`~voidllm.store.tables`: ``metadata`` and every ``Table`` (``from voidllm.store import tables``)
- :mod:`~voidllm.store.engine`: :func:`build_engine` for SQLite and PostgreSQL
- :mod:`~voidllm.store.store`: :class:`Store` (worker-thread transactions) and :func:`open_store`
- :mod:`~voidllm.store.migrate`: ``upgrade``, ``migrate``, revisions (not re-exported here: the function
  ``migrate`` would shadow its own module)
- :mod:`~voidllm.store.policies`: per-scope request and guard policy documents
- :mod:`~voidllm.store.errors`: SQLAlchemy → store errors; :mod:`~voidllm.store.ids`: ids and UTC time
"""

from voidllm.store.engine import PoolOptions as PoolOptions
from voidllm.store.engine import build_engine as build_engine
from voidllm.store.errors import StoreError as StoreError
from voidllm.store.errors import StoreIntegrityError as StoreIntegrityError
from voidllm.store.errors import StoreUnavailableError as StoreUnavailableError
from voidllm.store.errors import translate_errors as translate_errors
from voidllm.store.ids import new_id as new_id
from voidllm.store.ids import utcnow as utcnow
from voidllm.store.store import Store as Store
from voidllm.store.store import open_store as open_store

__all__ = [
    "PoolOptions",
    "Store",
    "StoreError",
    "StoreIntegrityError",
    "StoreUnavailableError",
    "build_engine",
    "new_id",
    "open_store",
    "translate_errors",
    "utcnow",
]
