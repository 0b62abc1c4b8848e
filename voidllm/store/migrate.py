"""Schema migrations: Alembic, driven from code, safe to start on several replicas at once.

The migration scripts live in the package (``voidllm/store/migrations``); :func:`alembic_config` builds
the Alembic configuration in memory, so nothing but the package is needed at runtime.

Concurrency:

- Across processes on PostgreSQL, :func:`upgrade` holds the session advisory lock
  ``pg_advisory_lock(8370235791)`` (the Go original's key) on the migration connection from before Alembic
  reads the current revision until after it commits, so replicas starting together migrate one after the
  other and the later ones find nothing to do. The lock is released explicitly; if that fails the
  connection is invalidated (closing the session releases it) rather than returned to the pool locked.
- Across processes on SQLite, every transaction begins with ``BEGIN IMMEDIATE`` (see
  :mod:`voidllm.store.engine`), which serialises migrations the same way.
- Within one process, Alembic's ``context`` and ``op`` are process-global proxies, so a module lock
  serialises :func:`upgrade` calls (two stores migrating from two threads would otherwise clobber them).

An empty database (no table at all: a first start) is not migrated step by step: :func:`upgrade` creates
the schema from ``tables.metadata`` and records ``HEAD_REVISION`` in ``alembic_version`` as Alembic would
(Alembic's documented recipe for a database built from scratch), inside the same locks, so Alembic is not
imported at all (about 10 MB that would stay loaded for the process's life, and most of a first start's
migration time). Tests hold the two ways to the same schema: SQLite's ``sqlite_master`` up to the order of
a table's clauses, PostgreSQL's ``pg_dump`` exactly (``tests/test_store_schema.py``); every later upgrade
goes through Alembic as before.

On SQLite, batch migrations rebuild tables (create copy, drop old, rename); with ``foreign_keys=ON`` the
drop would cascade-delete child rows. :func:`upgrade` turns foreign keys off on its connection for the
migration (the pragma only works outside a transaction), ``env.py`` runs ``PRAGMA foreign_key_check``
before committing, and they are turned back on before the connection returns to the pool.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

    from voidllm.store.store import Store

# Alembic (with Mako: about 10 MB and a tenth of a second) is imported only when a migration runs: a database
# already at HEAD_REVISION, every start but the first after an upgrade, is checked with one query.

SCRIPT_LOCATION = "voidllm.store:migrations"
PG_ADVISORY_LOCK_KEY = 8370235791
HEAD_REVISION = "0006"
"""The newest revision shipped with this build, as :func:`head_revision` finds it (a test holds them equal:
a new migration must change it)."""

_process_lock = threading.Lock()


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An in-memory Alembic config pointing at the packaged scripts (and at ``connection``, if given).

    Also usable for authoring: ``command.revision(alembic_config(conn), autogenerate=True, ...)``.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped with this build."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise RuntimeError("no migrations found")
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at, or ``None`` if it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: sa.Engine, *, create_empty: bool = True) -> str:
    """Upgrade the database to the head revision (a no-op when already there) and return the revision.

    An empty database is created at the head from ``tables.metadata`` unless ``create_empty`` is false
    (then Alembic runs every migration: how the tests check the migrations themselves).

    Blocking: call from a worker thread (:func:`migrate` does). Raises SQLAlchemy errors untranslated;
    :func:`migrate` translates them.
    """
    if _stored_revision(engine) == HEAD_REVISION:
        return HEAD_REVISION
    with _process_lock, engine.connect() as connection, _migration_session(connection):
        if create_empty and _create_if_empty(connection):
            return HEAD_REVISION
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        command.upgrade(alembic_config(connection), "head")
        revision = MigrationContext.configure(connection).get_current_revision()
        connection.rollback()  # end the read transaction opened by the revision check
    if revision is None:  # pragma: no cover - alembic just wrote it
        raise RuntimeError("upgrade finished without a recorded revision")
    return revision


# Alembic's own version table, as its ``MigrationContext`` creates it (the primary key's name included).
_ALEMBIC_VERSION = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def _create_if_empty(connection: sa.Connection) -> bool:
    """Creates the schema at the head when the database has no table at all; False (nothing written) when it
    has any. In one transaction, which on SQLite begins ``IMMEDIATE`` and on PostgreSQL runs under the
    advisory lock: a second process starting together waits, then finds the tables and no work."""
    from voidllm.store.tables import metadata

    with connection.begin():
        if sa.inspect(connection).get_table_names():
            return False
        metadata.create_all(connection)
        _ALEMBIC_VERSION.create(connection)
        connection.execute(_ALEMBIC_VERSION.insert().values(version_num=HEAD_REVISION))
    return True


def _stored_revision(engine: sa.Engine) -> str | None:
    """The revision in ``alembic_version`` read without Alembic (``None``: no table, or not one row); no lock
    is needed: a database at the head stays there, and any other answer goes through :func:`upgrade`'s."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        connection.rollback()
    return str(rows[0]) if len(rows) == 1 else None


async def migrate(store: Store) -> str:
    """Upgrade the store's database to head in a worker thread; see :func:`upgrade`.

    Raises:
        StoreUnavailableError, StoreError: as :meth:`voidllm.store.Store.run`.
    """
    return await store.run_engine(upgrade)


@contextmanager
def _migration_session(connection: sa.Connection) -> Iterator[None]:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        with _pg_advisory_lock(connection):
            yield
    elif dialect == "sqlite":
        with _sqlite_foreign_keys_off(connection):
            yield
    else:  # pragma: no cover - build_engine only makes these two
        yield


@contextmanager
def _pg_advisory_lock(connection: sa.Connection) -> Iterator[None]:
    connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": PG_ADVISORY_LOCK_KEY})
    connection.commit()
    try:
        yield
    finally:
        try:
            connection.rollback()
            connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": PG_ADVISORY_LOCK_KEY})
            connection.commit()
        except BaseException:
            connection.invalidate()  # closing the session is the only other way to release the lock
            raise


@contextmanager
def _sqlite_foreign_keys_off(connection: sa.Connection) -> Iterator[None]:
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")  # outside any transaction: straight to the DBAPI
    try:
        yield
    finally:
        try:
            connection.rollback()
            driver.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            connection.invalidate()
            raise
