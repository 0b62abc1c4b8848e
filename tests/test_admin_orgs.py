"""Organizations and org memberships through the real gateway: CRUD, pagination, tombstoned slugs,
deactivation (keys stop working at once, work again after reactivation), limits reaching the key cache,
role changes reaching the key cache, and the escalation attempts of an org admin."""

from __future__ import annotations

import sqlalchemy as sa

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

        team = await create_team(gw, created["id"], "red")
        await add_user(gw, created["id"], "m@acme.test")
        detail = (await gw.client.get(f"{API}/orgs/{created['id']}", headers=admin(gw))).json()
        assert (detail["member_count"], detail["team_count"]) == (1, 1)
        assert team["org_id"] == created["id"]


async def test_list_is_paginated_and_org_admins_see_only_their_org(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        slugs = [f"org-{i}" for i in range(5)]
        ids = [(await create_org(gw, slug))["id"] for slug in slugs]
        seen = await pages(gw.client, f"{API}/orgs", admin(gw), limit=2)
        assert [len(p) for p in seen] == [2, 2, 2]
        assert [o["slug"] for p in seen for o in p] == ["default", *slugs]
        error_of(await gw.client.get(f"{API}/orgs", headers=admin(gw), params={"limit": 0}), 400)

        boss = await add_user(gw, ids[0], "boss@org0.test", role="org_admin")
        key = await user_key(gw, ids[0], boss)
        listed = (await gw.client.get(f"{API}/orgs", headers=bearer(key))).json()
        assert [o["id"] for o in listed["data"]] == [ids[0]]
        assert listed["has_more"] is False
        # reading or changing another organisation, or creating/deleting organisations, is refused
        error_of(await gw.client.get(f"{API}/orgs/{ids[1]}", headers=bearer(key)), 403)
        error_of(
            await gw.client.patch(f"{API}/orgs/{ids[1]}", headers=bearer(key), json={"name": "pwned"}), 403
        )
        error_of(
            await gw.client.post(f"{API}/orgs", headers=bearer(key), json={"name": "N", "slug": "new"}), 403
        )
        error_of(await gw.client.delete(f"{API}/orgs/{ids[0]}", headers=bearer(key)), 403)
        error_of(await gw.client.post(f"{API}/orgs/{ids[0]}/deactivate", headers=bearer(key)), 403)
        assert (
            await gw.client.patch(f"{API}/orgs/{ids[0]}", headers=bearer(key), json={"name": "Mine"})
        ).status_code == 200

        member = await add_user(gw, ids[0], "m@org0.test")
        error_of(await gw.client.get(f"{API}/orgs", headers=bearer(await user_key(gw, ids[0], member))), 403)


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


async def test_org_admin_cannot_touch_another_orgs_members(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        mine, theirs = await create_org(gw, "mine"), await create_org(gw, "theirs")
        boss = await add_user(gw, mine["id"], "boss@mine.test", role="org_admin")
        key = await user_key(gw, mine["id"], boss)
        error_of(await gw.client.get(f"{API}/orgs/{theirs['id']}/members", headers=bearer(key)), 403)
        error_of(
            await gw.client.post(
                f"{API}/orgs/{theirs['id']}/members",
                headers=bearer(key),
                json={"user_id": boss, "role": "org_admin"},
            ),
            403,
        )
