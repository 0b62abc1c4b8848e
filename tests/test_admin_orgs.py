"""Organizations and org memberships: CRUD, pagination, tombstoned slugs, deactivation (keys stop working at
once, work again after reactivation), limits reaching the key cache, role changes reaching the key cache, and
the escalation attempts of an org admin.

Pagination and the org-admin scope call the use cases directly on a store (``tests/admin_fixtures.py``); the
HTTP slice of the route family (statuses, the envelope, request bodies) and the effects on the proxy and the
key cache go through a real gateway.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.admin_fixtures import AdminWorld
from tests.admin_tenancy import (
    API,
    add_user,
    admin,
    bearer,
    chat,
    create_key,
    create_org,
    create_team,
    default_org,
    error_of,
    join_team,
    open_gateway,
    pages,
    user_key,
)
from voidllm.admin import memberships, orgs
from voidllm.admin.pages import PageQuery
from voidllm.errors import BadRequestError, PermissionDeniedError
from voidllm.store import tables as t


async def test_create_read_update_list_and_conflicts(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        created = await create_org(
            gw, "acme", timezone="Europe/Berlin", daily_token_limit=1000, requests_per_minute=5
        )
        assert created["slug"] == "acme"
        assert created["timezone"] == "Europe/Berlin"
        assert (
            created["daily_token_limit"],
            created["monthly_token_limit"],
            created["requests_per_minute"],
        ) == (1000, 0, 5)
        assert created["is_active"] is True
        assert (created["member_count"], created["team_count"]) == (0, 0)
        assert created["created_at"].endswith("Z")
        assert created["deleted_at"] is None

        dup = await gw.client.post(f"{API}/orgs", headers=admin(gw), json={"name": "Other", "slug": "acme"})
        assert error_of(dup, 409)["code"] == "conflict"

        for bad in (
            {"name": "X", "slug": "A"},
            {"name": "X", "slug": "-ab"},
            {"name": "X", "slug": "a" * 64},
            {"name": "X", "slug": "ok", "daily_token_limit": -1},
            {"name": "X", "slug": "ok", "timezone": "Mars/Base"},
            {"name": "a:deleted:b", "slug": "ok"},
            {"slug": "ok"},
        ):
            error_of(await gw.client.post(f"{API}/orgs", headers=admin(gw), json=bad), 400)

        patched = await gw.client.patch(
            f"{API}/orgs/{created['id']}", headers=admin(gw), json={"name": "Acme Inc"}
        )
        assert patched.status_code == 200
        assert patched.json()["name"] == "Acme Inc"
        assert patched.json()["slug"] == "acme"
        assert (await gw.client.get(f"{API}/orgs/{created['id']}", headers=admin(gw))).json()[
            "name"
        ] == "Acme Inc"
        error_of(
            await gw.client.get(f"{API}/orgs/00000000-0000-7000-8000-000000000000", headers=admin(gw)), 404
        )

        seen = await pages(gw.client, f"{API}/orgs", admin(gw), limit=1)  # the bootstrap's org first
        assert [o["slug"] for p in seen for o in p] == ["default", "acme"]
        error_of(await gw.client.get(f"{API}/orgs", headers=admin(gw), params={"limit": 0}), 400)

        team = await create_team(gw, created["id"], "red")
        await add_user(gw, created["id"], "m@acme.test")
        detail = (await gw.client.get(f"{API}/orgs/{created['id']}", headers=admin(gw))).json()
        assert (detail["member_count"], detail["team_count"]) == (1, 1)
        assert team["org_id"] == created["id"]


async def test_list_is_paginated_and_org_admins_see_only_their_org(admin_world: AdminWorld) -> None:
    world, services = admin_world, admin_world.services
    slugs = [f"org-{i}" for i in range(5)]
    ids = [await world.org(slug) for slug in slugs]
    seen = await all_pages(world, limit=2)
    assert [len(p) for p in seen] == [2, 2, 1]
    assert [o.slug for p in seen for o in p] == slugs
    with pytest.raises(BadRequestError):
        PageQuery(limit=0)

    boss = await world.user(ids[0], "boss@org0.test", role="org_admin")
    actor = await world.user_actor(ids[0], boss)
    listed = await orgs.list_orgs(services, actor, PageQuery())
    assert [o.id for o in listed.data] == [ids[0]]
    assert listed.has_more is False
    # reading or changing another organisation, or creating/deleting organisations, is refused
    with pytest.raises(PermissionDeniedError):
        await orgs.get(services, actor, ids[1])
    with pytest.raises(PermissionDeniedError):
        await orgs.update(services, actor, ids[1], orgs.OrgUpdate(name="pwned"))
    with pytest.raises(PermissionDeniedError):
        await orgs.create(services, actor, orgs.OrgCreate(name="N", slug="new"))
    with pytest.raises(PermissionDeniedError):
        await orgs.delete(services, actor, ids[0])
    with pytest.raises(PermissionDeniedError):
        await orgs.deactivate(services, actor, ids[0])
    assert (await orgs.update(services, actor, ids[0], orgs.OrgUpdate(name="Mine"))).name == "Mine"

    member = await world.user(ids[0], "m@org0.test")
    with pytest.raises(PermissionDeniedError):
        await orgs.list_orgs(services, await world.user_actor(ids[0], member), PageQuery())


async def all_pages(world: AdminWorld, limit: int) -> list[list[orgs.OrgOut]]:
    """Every page of the organisations as the system admin, following ``next_cursor``."""
    out: list[list[orgs.OrgOut]] = []
    cursor: str | None = None
    while True:
        page = await orgs.list_orgs(world.services, world.system, PageQuery(limit=limit, cursor=cursor))
        out.append(page.data)
        if not page.has_more:
            assert page.next_cursor is None
            return out
        cursor = page.next_cursor


async def test_delete_tombstones_the_slug_and_revokes_keys_at_once(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "gone")
        user = await add_user(gw, org["id"], "u@gone.test")
        key = await user_key(gw, org["id"], user)
        assert await chat(gw, key) == 200
        assert (await gw.client.delete(f"{API}/orgs/{org['id']}", headers=admin(gw))).status_code == 204
        assert await chat(gw, key) == 401
        error_of(await gw.client.get(f"{API}/orgs/{org['id']}", headers=admin(gw)), 404)
        error_of(await gw.client.delete(f"{API}/orgs/{org['id']}", headers=admin(gw)), 404)
        row = await gw.state.services.store.run(
            lambda conn: conn.execute(
                sa.select(t.organizations.c.slug).where(t.organizations.c.id == org["id"])
            ).scalar()
        )
        assert row == f"gone:deleted:{org['id']}"
        again = await create_org(gw, "gone")
        assert again["id"] != org["id"]
        # the system admin cannot delete the organisation of its own key
        error_of(await gw.client.delete(f"{API}/orgs/{await default_org(gw)}", headers=admin(gw)), 400)


async def test_deactivate_stops_keys_at_once_and_reactivate_restores_them(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "paused")
        user = await add_user(gw, org["id"], "u@paused.test", role="org_admin")
        key = await user_key(gw, org["id"], user)
        assert await chat(gw, key) == 200

        off = await gw.client.post(f"{API}/orgs/{org['id']}/deactivate", headers=admin(gw))
        assert off.status_code == 200
        assert off.json()["is_active"] is False
        assert await chat(gw, key) == 401
        error_of(await gw.client.get(f"{API}/orgs/{org['id']}", headers=bearer(key)), 401)
        # a key created while deactivated does not work either
        later = await user_key(gw, org["id"], user)
        assert await chat(gw, later) == 401

        on = await gw.client.post(f"{API}/orgs/{org['id']}/reactivate", headers=admin(gw))
        assert on.status_code == 200
        assert on.json()["is_active"] is True
        assert await chat(gw, key) == 200
        assert await chat(gw, later) == 200
        error_of(
            await gw.client.post(f"{API}/orgs/{await default_org(gw)}/deactivate", headers=admin(gw)), 400
        )


async def test_limit_changes_reach_the_key_cache_at_once(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "metered")
        user = await add_user(gw, org["id"], "u@metered.test")
        key = await user_key(gw, org["id"], user)
        cached = next(i for i in gw.state.keys._by_hash.values() if i.org_id == org["id"])
        assert cached.org_limits.requests_per_minute == 0
        response = await gw.client.patch(
            f"{API}/orgs/{org['id']}", headers=admin(gw), json={"requests_per_minute": 1}
        )
        assert response.status_code == 200
        assert response.json()["requests_per_minute"] == 1
        assert await chat(gw, key) == 200
        assert await chat(gw, key) == 429


async def test_org_members_crud_and_role_changes_reach_keys(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "crew")
        boss = await add_user(gw, org["id"], "boss@crew.test", role="org_admin")
        boss_key = await user_key(gw, org["id"], boss)
        newcomer = await add_user(gw, None, "new@crew.test")
        members = f"{API}/orgs/{org['id']}/members"

        # An existing account joins through an invite it accepts; only a system admin adds it directly.
        refused = error_of(
            await gw.client.post(members, headers=bearer(boss_key), json={"user_id": newcomer}), 403
        )
        assert refused["message"].endswith(f"send an invite instead (POST /api/v1/orgs/{org['id']}/invites)")
        added = await gw.client.post(members, headers=admin(gw), json={"user_id": newcomer, "role": "member"})
        assert added.status_code == 201, added.text
        membership = added.json()
        assert (membership["user_id"], membership["role"], membership["email"]) == (
            newcomer,
            "member",
            "new@crew.test",
        )
        error_of(await gw.client.post(members, headers=admin(gw), json={"user_id": newcomer}), 409)
        error_of(
            await gw.client.post(
                members, headers=admin(gw), json={"user_id": newcomer, "role": "system_admin"}
            ),
            400,
        )
        error_of(await gw.client.post(members, headers=admin(gw), json={"user_id": "nope"}), 404)

        listed = await pages(gw.client, members, bearer(boss_key), limit=1)
        assert sorted(m["user_id"] for p in listed for m in p) == sorted([boss, newcomer])

        key = await user_key(gw, org["id"], newcomer)
        error_of(await gw.client.get(f"{API}/orgs/{org['id']}", headers=bearer(key)), 403)
        promoted = await gw.client.patch(
            f"{members}/{membership['id']}", headers=bearer(boss_key), json={"role": "org_admin"}
        )
        assert promoted.status_code == 200
        assert promoted.json()["role"] == "org_admin"
        assert (await gw.client.get(f"{API}/orgs/{org['id']}", headers=bearer(key))).status_code == 200
        # a member cannot manage memberships
        await gw.client.patch(
            f"{members}/{membership['id']}", headers=bearer(boss_key), json={"role": "member"}
        )
        error_of(
            await gw.client.patch(
                f"{members}/{membership['id']}", headers=bearer(key), json={"role": "org_admin"}
            ),
            403,
        )

        team = await create_team(gw, org["id"], "blue")
        await join_team(gw, team["id"], newcomer)
        team_key = (await create_key(gw, org["id"], user_id=newcomer, team_id=team["id"]))["key"]
        assert await chat(gw, key) == 200
        assert await chat(gw, team_key) == 200
        removed = await gw.client.delete(f"{members}/{membership['id']}", headers=bearer(boss_key))
        assert removed.status_code == 204
        assert await chat(gw, key) == 401
        assert await chat(gw, team_key) == 401
        error_of(await gw.client.get(f"{members}/{membership['id']}", headers=bearer(boss_key)), 404)
        team_after = (
            await gw.client.get(f"{API}/orgs/{org['id']}/teams/{team['id']}", headers=admin(gw))
        ).json()
        assert team_after["member_count"] == 0
        assert team_after["key_count"] == 0
        own = next(
            m
            for p in await pages(gw.client, members, bearer(boss_key), limit=10)
            for m in p
            if m["user_id"] == boss
        )
        error_of(await gw.client.delete(f"{members}/{own['id']}", headers=bearer(boss_key)), 400)


async def test_org_admin_cannot_touch_another_orgs_members(admin_world: AdminWorld) -> None:
    world, services = admin_world, admin_world.services
    mine, theirs = await world.org("mine"), await world.org("theirs")
    boss = await world.user(mine, "boss@mine.test", role="org_admin")
    actor = await world.user_actor(mine, boss)
    with pytest.raises(PermissionDeniedError):
        await memberships.list_org_members(services, actor, theirs, PageQuery())
    with pytest.raises(PermissionDeniedError):
        await memberships.add_org_member(
            services, actor, theirs, memberships.OrgMemberCreate(user_id=boss, role="org_admin")
        )
