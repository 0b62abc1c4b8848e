"""SQLAlchemy errors → VoidLLM's error tree, translated in one place.

::

    StoreError (voidllm.errors)           any other SQLAlchemy failure: a bug or a schema mismatch
    ├── StoreUnavailableError             could not reach the database, it is locked or busy, or timed out;
    │                                     the operation may succeed if retried later
    └── StoreIntegrityError               a constraint rejected the write (duplicate, missing parent, NULL);
                                          ``kind`` and ``constraint`` say which, for 409 handling

:func:`translate_errors` is the boundary: :class:`voidllm.store.Store` wraps every database call in it.
Messages never carry SQL parameters or row values (they could be request content or secrets): they name
the failure's class and, for integrity errors, the constraint. The original exception stays reachable as
``__cause__`` for debugging; note that a DBAPI message there may quote values (PostgreSQL's ``DETAIL``
line does), so log the store error's message, not the chained traceback text, where content matters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from sqlalchemy import exc as sa_exc

from voidllm.errors import StoreError, StoreUnavailableError
from voidllm.store.tables import metadata

__all__ = ["StoreError", "StoreIntegrityError", "StoreUnavailableError", "translate_errors"]

IntegrityKind = Literal["unique", "foreign_key", "not_null", "check", "other"]

# SQLite reports lock contention and I/O trouble as OperationalError, but also schema mistakes
# ("no such table", syntax errors); only the former mean "try again later".
_SQLITE_UNAVAILABLE = ("database is locked", "database is busy", "unable to open", "disk i/o error")

_PG_INTEGRITY_KINDS: dict[str, IntegrityKind] = {
    "23505": "unique",
    "23503": "foreign_key",
    "23502": "not_null",
    "23514": "check",
}

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<cols>[\w., ]+)")


class StoreIntegrityError(StoreError):
    """A constraint rejected the write; usually a conflict with a concurrent or earlier write.

    Attributes:
        kind: ``unique``, ``foreign_key``, ``not_null``, ``check`` or ``other``.
        constraint: the constraint or index name from :data:`voidllm.store.tables.metadata` when known
            (always on PostgreSQL; for unique violations on SQLite, resolved from the reported columns),
            e.g. ``uq_teams_org_id_slug``; else ``None``.
    """

    status = 409
    code = "conflict"

    def __init__(self, kind: IntegrityKind, constraint: str | None) -> None:
        where = f" ({constraint})" if constraint else ""
        super().__init__(f"integrity constraint violated: {kind}{where}")
        self.kind: IntegrityKind = kind
        self.constraint = constraint


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise SQLAlchemy errors raised inside the block as store errors (``raise ... from exc``).

    Non-SQLAlchemy exceptions pass through unchanged.
    """
    try:
        yield
    except sa_exc.IntegrityError as exc:
        raise _integrity_error(exc) from exc
    except sa_exc.SQLAlchemyError as exc:
        name = type(getattr(exc, "orig", None) or exc).__name__
        if _is_unavailable(exc):
            raise StoreUnavailableError(f"database unavailable: {name}") from exc
        raise StoreError(f"database error: {name}") from exc


def _is_unavailable(exc: sa_exc.SQLAlchemyError) -> bool:
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError | sa_exc.InterfaceError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, sa_exc.OperationalError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        message = str(exc.orig).lower()
        return any(marker in message for marker in _SQLITE_UNAVAILABLE)
    return True  # psycopg: connection failures, timeouts, cancellations, serialization/deadlock aborts


def _integrity_error(exc: sa_exc.IntegrityError) -> StoreIntegrityError:
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    if diag is not None:  # psycopg
        sqlstate = getattr(orig, "sqlstate", None) or ""
        return StoreIntegrityError(_PG_INTEGRITY_KINDS.get(sqlstate, "other"), diag.constraint_name)
    message = str(orig)
    if match := _SQLITE_UNIQUE.search(message):
        return StoreIntegrityError("unique", _sqlite_unique_name(match["cols"]))
    if "FOREIGN KEY constraint failed" in message:
        return StoreIntegrityError("foreign_key", None)
    if "NOT NULL constraint failed" in message:
        return StoreIntegrityError("not_null", None)
    if "CHECK constraint failed" in message:
        return StoreIntegrityError("check", None)
    return StoreIntegrityError("other", None)


def _sqlite_unique_name(reported: str) -> str | None:
    """Map SQLite's ``table.col, table.col`` report to the constraint or unique index that names them."""
    pairs = [part.strip().rpartition(".") for part in reported.split(",")]
    table_names = {table for table, _, _ in pairs}
    if len(table_names) != 1:
        return None
    table = metadata.tables.get(table_names.pop())
    if table is None:
        return None
    columns = [column for _, _, column in pairs]
    for constraint in table.constraints:
        names = [c.name for c in getattr(constraint, "columns", ())]
        if names == columns and isinstance(constraint.name, str):
            return constraint.name
    for index in table.indexes:
        if index.unique and [c.name for c in index.columns] == columns and isinstance(index.name, str):
            return index.name
    return None
