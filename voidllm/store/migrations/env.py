"""Alembic environment for VoidLLM: online only, on a connection handed in by ``voidllm.store.migrate``.

There is no ``alembic.ini`` and no URL here: :func:`voidllm.store.migrate.upgrade` opens the connection,
takes the locks (a process lock, and on PostgreSQL the advisory lock; on SQLite it turns foreign keys off
so batch table rebuilds cannot cascade-delete) and passes it in ``config.attributes["connection"]``.

All pending migrations run in one transaction on both dialects (SQLite DDL is transactional once pysqlite's
implicit transaction handling is off, which ``voidllm.store.engine`` does), so a failed upgrade leaves the
schema where it was. SQLite uses batch mode so future ``ALTER``\\ s can rebuild tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from voidllm.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations through voidllm.store.migrate (voidllm migrate), not the alembic CLI")

is_sqlite = connection.dialect.name == "sqlite"
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=is_sqlite,
    transactional_ddl=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
    if is_sqlite:
        violations = connection.execute(sa.text("PRAGMA foreign_key_check")).fetchall()
        if violations:
            tables = sorted({str(row[0]) for row in violations})
            raise RuntimeError(f"migration left foreign key violations in: {', '.join(tables)}")
