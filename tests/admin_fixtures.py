"""Admin use cases called directly, without a gateway: a migrated store (SQLite, or each dialect), the
:class:`Services` over it and actors made from real keys.

``admin_world`` (a fixture, registered in tests/conftest.py) is an :class:`AdminWorld` on SQLite;
``admin_world_each_dialect`` runs the test on SQLite and then on PostgreSQL. Organisations, teams
and keys are made through the use cases as the system administrator (``Actor.system()``); users and
memberships are inserted straight into the store, so a test does not depend on the users API.
:meth:`AdminWorld.actor` is the actor a key authenticates as: the identity the key cache holds, as a request
carrying that key gets it. The HTTP side of each route family (status codes, the envelope, authentication)
keeps a thin slice of its own through a real gateway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest

from tests.admin_tenancy import insert_user
from tests.gateway import ENCRYPTION_KEY, make_config
from voidllm.admin import keys, orgs, teams
from voidllm.admin.context import Actor
from voidllm.admin.services import Services
from voidllm.auth.cache import KeyCache
from voidllm.crypto import Keyring
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow
from voidllm.store.migrate import migrate
from voidllm.store.store import Store, open_store


@attrs.define
class AdminWorld:
    services: Services
    system: Actor = attrs.field(factory=Actor.system)

    @property
    def store(self) -> Store:
        return self.services.store

    async def org(self, slug: str) -> str:
        """A new organisation named after ``slug``; returns its id."""
        made = await orgs.create(self.services, self.system, orgs.OrgCreate(name=slug.title(), slug=slug))
        return made.id

    async def team(self, org_id: str, slug: str, **fields: Any) -> teams.TeamOut:
        req = teams.TeamCreate(name=slug.title(), slug=slug, **fields)
        return await teams.create(self.services, self.system, org_id, req)

    async def user(
        self, org_id: str | None, email: str, *, role: str = "member", system_admin: bool = False
    ) -> str:
        """Insert a user without a password and, when ``org_id`` is given, its org membership; returns its
        id."""
        return await insert_user(self.store, org_id, email, role=role, system_admin=system_admin)

    async def join_team(self, team_id: str, user_id: str, role: str = "member") -> str:
        """Insert a team membership directly; returns its id."""
        membership_id, now = new_id(), utcnow()
        await self.store.run(
            lambda conn: conn.execute(
                t.team_memberships.insert().values(
                    id=membership_id,
                    team_id=team_id,
                    user_id=user_id,
                    role=role,
                    created_at=now,
                    updated_at=now,
                )
            )
        )
        return membership_id

    async def key(self, org_id: str, **fields: Any) -> keys.KeyCreated:
        """A key made by the system administrator (a user key unless ``key_type`` says otherwise)."""
        req = keys.KeyCreate(**{"name": "k", "key_type": "user_key", **fields})
        return await keys.create(self.services, self.system, org_id, req)

    def actor(self, key: keys.KeyCreated | str) -> Actor:
        """The actor a request with ``key`` acts as (raises ``AuthenticationError`` for a key that no longer
        works)."""
        plaintext = key if isinstance(key, str) else key.key
        return Actor(identity=self.services.keys.authenticate_key(plaintext))

    async def user_actor(self, org_id: str, user_id: str, **fields: Any) -> Actor:
        """The actor of a fresh user key of ``user_id`` in ``org_id``."""
        return self.actor(await self.key(org_id, user_id=user_id, **fields))


@asynccontextmanager
async def open_admin_world(driver: str, dsn: str) -> AsyncIterator[AdminWorld]:
    """A migrated store of ``driver`` at ``dsn`` and the services the admin use cases run on (no catalog, no
    MCP, no audit)."""
    async with open_store(driver, dsn) as store:
        await migrate(store)
        keyring = Keyring.from_setting(ENCRYPTION_KEY)
        services = Services(
            config=make_config(dsn, driver=driver),
            store=store,
            keyring=keyring,
            keys=KeyCache(keyring.hmac_secret),
        )
        yield AdminWorld(services)


@pytest.fixture
async def admin_world(sqlite_dsn: str) -> AsyncIterator[AdminWorld]:
    """The admin world on SQLite."""
    async with open_admin_world("sqlite", sqlite_dsn) as world:
        yield world


@pytest.fixture
async def admin_world_each_dialect(db_target: tuple[str, str]) -> AsyncIterator[AdminWorld]:
    """The admin world on SQLite, then on a fresh PostgreSQL database (for use cases whose transactions
    differ by dialect: conflicts, concurrent writes)."""
    async with open_admin_world(*db_target) as world:
        yield world
