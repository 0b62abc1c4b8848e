"""Helpers for the tenancy tests (orgs, teams, service accounts, keys) against a real gateway.

Users are inserted straight into the store (no password: they never log in), so these tests do not depend on
the users API; their keys are created through the keys API by the bootstrap system admin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import sqlalchemy as sa

from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway
from voidllm.auth.loader import load_live_key
from voidllm.auth.sessions import insert_session, new_session_key
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow
from voidllm.store.store import Store
from voidllm.testing.mock_openai import Behaviour, open_mock_upstream

API = "/api/v1"
MODEL = "gpt-test"


@asynccontextmanager
async def open_gateway(dsn: str, driver: str = "sqlite", settings: str = "") -> AsyncIterator[RunningGateway]:
    """A gateway with one model served by a mock upstream, so keys can be proven on the proxy path;
    ``settings`` as for :func:`tests.gateway.make_config`."""
    async with open_mock_upstream(Behaviour()) as upstream:
        models = "models:" + model_yaml(MODEL, upstream.base_url)
        config = make_config(dsn, models, driver=driver, settings=settings)
        async with run_gateway(config) as gw:
            yield gw


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def admin(gw: RunningGateway) -> dict[str, str]:
    """Headers of the bootstrap system admin."""
    return bearer(gw.api_key())


async def chat(gw: RunningGateway, key: str) -> int:
    """The status of one chat completion through the proxy with ``key``."""
    response = await gw.client.post(
        "/v1/chat/completions",
        headers=bearer(key),
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
    )
    return response.status_code


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert ``status`` and the error envelope; return the inner error."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body["error"]


async def default_org(gw: RunningGateway) -> str:
    response = await gw.client.get(f"{API}/orgs", headers=admin(gw))
    assert response.status_code == 200, response.text
    return next(org["id"] for org in response.json()["data"] if org["slug"] == "default")


async def create_org(gw: RunningGateway, slug: str, **fields: Any) -> dict[str, Any]:
    response = await gw.client.post(
        f"{API}/orgs", headers=admin(gw), json={"name": slug.title(), "slug": slug, **fields}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def add_user(
    gw: RunningGateway,
    org_id: str | None,
    email: str,
    *,
    role: str = "member",
    system_admin: bool = False,
    password_hash: str | None = None,
) -> str:
    """Insert a user (no password unless ``password_hash``) and, when ``org_id`` is given, its org membership;
    returns the user id."""
    return await insert_user(
        gw.state.services.store,
        org_id,
        email,
        role=role,
        system_admin=system_admin,
        password_hash=password_hash,
    )


async def insert_user(
    store: Store,
    org_id: str | None,
    email: str,
    *,
    role: str = "member",
    system_admin: bool = False,
    password_hash: str | None = None,
) -> str:
    """:func:`add_user` on a store: the user row and, when ``org_id`` is given, its org membership."""
    user_id, now = new_id(), utcnow()

    def write(conn: sa.Connection) -> None:
        conn.execute(
            t.users.insert().values(
                id=user_id,
                email=email,
                display_name=email.split("@")[0],
                is_system_admin=system_admin,
                password_hash=password_hash,
                created_at=now,
                updated_at=now,
            )
        )
        if org_id is not None:
            conn.execute(
                t.org_memberships.insert().values(
                    id=new_id(), org_id=org_id, user_id=user_id, role=role, created_at=now, updated_at=now
                )
            )

    await store.run(write)
    return user_id


async def join_team(gw: RunningGateway, team_id: str, user_id: str, role: str = "member") -> str:
    """Insert a team membership directly (bypassing the API under test); returns its id."""
    now, membership_id = utcnow(), new_id()
    await gw.state.services.store.run(
        lambda conn: conn.execute(
            t.team_memberships.insert().values(
                id=membership_id, team_id=team_id, user_id=user_id, role=role, created_at=now, updated_at=now
            )
        )
    )
    return membership_id


async def join_org(gw: RunningGateway, org_id: str, user_id: str, role: str = "member") -> str:
    """Insert an org membership of an existing user directly; returns its id."""
    now, membership_id = utcnow(), new_id()
    await gw.state.services.store.run(
        lambda conn: conn.execute(
            t.org_memberships.insert().values(
                id=membership_id, org_id=org_id, user_id=user_id, role=role, created_at=now, updated_at=now
            )
        )
    )
    return membership_id


async def org_membership_id(gw: RunningGateway, org_id: str, user_id: str) -> str:
    m = t.org_memberships
    query = sa.select(m.c.id).where(m.c.org_id == org_id, m.c.user_id == user_id)
    return str(await gw.state.services.store.run(lambda conn: conn.execute(query).scalar_one()))


async def open_session(gw: RunningGateway, org_id: str, user_id: str) -> str:
    """A fresh login session key (``vl_sk_``) of ``user_id`` in ``org_id``, opened as a login opens one but
    without the password check (and so without the login throttle)."""
    services = gw.state.services
    plaintext, key_hash, hint = new_session_key(services)
    now = utcnow()

    def write(conn: sa.Connection) -> Any:
        key_id, _ = insert_session(
            conn, user_id=user_id, org_id=org_id, key_hash=key_hash, hint=hint, now=now
        )
        return load_live_key(conn, key_id, now=now)

    entry = await services.store.run(write)
    services.keys.put(*entry)
    return plaintext


async def create_team(gw: RunningGateway, org_id: str, slug: str, **fields: Any) -> dict[str, Any]:
    response = await gw.client.post(
        f"{API}/orgs/{org_id}/teams", headers=admin(gw), json={"name": slug.title(), "slug": slug, **fields}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def create_key(
    gw: RunningGateway, org_id: str, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    """Create a key (as the system admin unless ``headers`` say otherwise); returns the 201 body."""
    body = {"name": "k", "key_type": "user_key", **fields}
    response = await gw.client.post(f"{API}/orgs/{org_id}/keys", headers=headers or admin(gw), json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def user_key(gw: RunningGateway, org_id: str, user_id: str, **fields: Any) -> str:
    """A fresh plaintext user key for ``user_id`` in ``org_id``."""
    return str((await create_key(gw, org_id, user_id=user_id, **fields))["key"])


async def pages(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], limit: int
) -> list[list[dict[str, Any]]]:
    """Every page of a list endpoint, following ``next_cursor``."""
    out: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(path, headers=headers, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        out.append(body["data"])
        if not body["has_more"]:
            assert body.get("next_cursor") is None
            return out
        cursor = body["next_cursor"]
