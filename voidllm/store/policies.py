"""The ``policies`` table: per-scope request and guard policy documents (JSON text), read and deleted.

Synchronous functions of a connection (run by :meth:`Store.run <voidllm.store.Store.run>`). The documents are
validated when written (:mod:`voidllm.admin.policies`); :func:`read_scope_policies` parses them for their
readers (the key cache, the catalog) with :meth:`voidllm.request_policy.ScopePolicy.from_documents`. A stored
document that no longer parses (a later version may have narrowed the vocabulary) is logged by scope, never
by content, and left out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import attrs
import sqlalchemy as sa

from voidllm.errors import BadRequestError
from voidllm.request_policy import ScopePolicy
from voidllm.store import tables as t

log = logging.getLogger(__name__)

SCOPE_TYPES = ("org", "team", "key", "model")


@attrs.frozen
class PolicyRow:
    scope_type: str
    scope_id: str
    request: str | None
    guard: str | None


def read_policies(
    conn: sa.Connection,
    scope_types: Iterable[str] | str | None = None,
    scope_ids: Iterable[str] | None = None,
) -> dict[tuple[str, str], PolicyRow]:
    """Stored policies by (scope_type, scope_id): all of them, or those of some scope types (and ids)."""
    p = t.policies
    query = sa.select(p.c.scope_type, p.c.scope_id, p.c.request, p.c.guard)
    if scope_types is not None:
        types = [scope_types] if isinstance(scope_types, str) else list(scope_types)
        query = query.where(p.c.scope_type.in_(types))
    if scope_ids is not None:
        query = query.where(p.c.scope_id.in_(list(scope_ids)))
    return {
        (row.scope_type, row.scope_id): PolicyRow(row.scope_type, row.scope_id, row.request, row.guard)
        for row in conn.execute(query)
    }


def delete_policies(conn: sa.Connection, scope_type: str, ids: sa.Select[Any] | list[str]) -> int:
    """Delete the policies of scopes of ``scope_type`` whose ids are ``ids`` (a list, or a select of ids);
    how many rows went. Called by the use cases that delete those scopes."""
    p = t.policies
    result = conn.execute(p.delete().where(p.c.scope_type == scope_type, p.c.scope_id.in_(ids)))
    return int(result.rowcount or 0)


def read_scope_policies(
    conn: sa.Connection,
    scope_types: Iterable[str] | str | None = None,
    scope_ids: Iterable[str] | None = None,
) -> dict[tuple[str, str], ScopePolicy]:
    """:func:`read_policies`, parsed; a row that does not parse is logged (by scope only) and left out."""
    parsed: dict[tuple[str, str], ScopePolicy] = {}
    for key, row in read_policies(conn, scope_types, scope_ids).items():
        try:
            parsed[key] = ScopePolicy.from_documents(row.request, row.guard)
        except (BadRequestError, ValueError) as exc:
            log.error(
                "stored policy does not parse; ignored",
                extra={
                    "scope_type": row.scope_type,
                    "scope_id": row.scope_id,
                    "error_type": type(exc).__name__,
                },
            )
    return parsed


def copy_key_policies(conn: sa.Connection, old_key_id: str, new_key_id: str) -> bool:
    """Give a rotated key's successor the old key's policies; whether there were any."""
    p = t.policies
    old = sa.and_(p.c.scope_type == "key", p.c.scope_id == old_key_id)
    row = conn.execute(sa.select(p).where(old)).mappings().first()
    if row is None:
        return False
    conn.execute(p.insert().values({**row, "scope_id": new_key_id}))
    return True
