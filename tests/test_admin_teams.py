"""Teams and team memberships through the real gateway: CRUD, derived and tombstoned slugs, visibility (404 for
teams the caller is not in), team admins managing only their team and never granting org roles, limits
reaching the key cache, and deletion revoking the team's keys at once."""

from __future__ import annotations

from tests.admin_tenancy import (
    API,
    add_user,
    admin,
    bearer,
    chat,
    create_key,
    create_org,
    create_team,
    error_of,
    join_team,
    open_gateway,
    pages,
    user_key,
)


async def test_create_list_get_update_and_conflicts(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        teams = f"{API}/orgs/{org['id']}/teams"
        derived = await gw.client.post(
            teams, headers=admin(gw), json={"name": "Data Science!", "requests_per_day": 9}
        )
        assert derived.status_code == 201, derived.text
        team = derived.json()
        assert (team["slug"], team["requests_per_day"], team["member_count"], team["key_count"]) == (
            "data-science",
            9,
            0,
            0,
        )
        error_of(
            await gw.client.post(teams, headers=admin(gw), json={"name": "Other", "slug": "data-science"}),
            409,
        )
        error_of(
            await gw.client.post(teams, headers=admin(gw), json={"name": "Bad", "slug": "x:deleted:y"}), 400
        )
        error_of(await gw.client.post(teams, headers=admin(gw), json={"name": "!!"}), 400)
        error_of(
            await gw.client.post(teams, headers=admin(gw), json={"name": "Neg", "daily_token_limit": -1}), 400
        )
        # the same slug in another organisation is fine
        other = await create_org(gw, "other")
        await create_team(gw, other["id"], "data-science")

        user = await add_user(gw, org["id"], "u@acme.test")
        await join_team(gw, team["id"], user)
        await create_key(gw, org["id"], key_type="team_key", team_id=team["id"])
        await create_key(gw, org["id"], user_id=user, team_id=team["id"])
        one = (await gw.client.get(f"{teams}/{team['id']}", headers=admin(gw))).json()
        assert (one["member_count"], one["key_count"]) == (1, 2)

        patched = await gw.client.patch(
            f"{teams}/{team['id']}", headers=admin(gw), json={"name": "DS", "slug": "ds"}
        )
        assert patched.status_code == 200
        assert (patched.json()["name"], patched.json()["slug"]) == ("DS", "ds")

        for i in range(4):
            await create_team(gw, org["id"], f"t{i}")
        seen = await pages(gw.client, teams, admin(gw), limit=2)
        assert [len(p) for p in seen] == [2, 2, 1]
        assert [t["slug"] for p in seen for t in p] == ["ds", "t0", "t1", "t2", "t3"]
        error_of(await gw.client.get(f"{API}/orgs/{other['id']}/teams/{team['id']}", headers=admin(gw)), 404)


async def test_members_see_only_their_teams(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        red, blue = await create_team(gw, org["id"], "red"), await create_team(gw, org["id"], "blue")
        member = await add_user(gw, org["id"], "m@acme.test")
        await join_team(gw, red["id"], member)
        key = await user_key(gw, org["id"], member)
        teams = f"{API}/orgs/{org['id']}/teams"
        listed = (await gw.client.get(teams, headers=bearer(key))).json()["data"]
        assert [t["id"] for t in listed] == [red["id"]]
        assert (await gw.client.get(f"{teams}/{red['id']}", headers=bearer(key))).status_code == 200
        assert (
            error_of(await gw.client.get(f"{teams}/{blue['id']}", headers=bearer(key)), 404)["message"]
            == "team not found"
        )
        # a plain member can neither create, change nor delete teams
        error_of(await gw.client.post(teams, headers=bearer(key), json={"name": "mine"}), 403)
        error_of(await gw.client.patch(f"{teams}/{red['id']}", headers=bearer(key), json={"name": "x"}), 403)
        error_of(await gw.client.delete(f"{teams}/{red['id']}", headers=bearer(key)), 403)
        error_of(await gw.client.get(f"{teams}/{red['id']}/members", headers=bearer(key)), 403)
        # a team key sees only its team
        team_key = (await create_key(gw, org["id"], key_type="team_key", team_id=blue["id"]))["key"]
        assert [t["id"] for t in (await gw.client.get(teams, headers=bearer(team_key))).json()["data"]] == [
            blue["id"]
        ]


async def test_team_admin_manages_only_their_team_and_cannot_grant_org_roles(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        red, blue = await create_team(gw, org["id"], "red"), await create_team(gw, org["id"], "blue")
        lead = await add_user(gw, org["id"], "lead@acme.test")
        await join_team(gw, red["id"], lead, role="team_admin")
        await join_team(gw, blue["id"], lead, role="member")
        newbie = await add_user(gw, org["id"], "new@acme.test")
        outsider = await add_user(gw, None, "out@else.test")
        key = await user_key(gw, org["id"], lead)
        red_members = f"{API}/orgs/{org['id']}/teams/{red['id']}/members"

        escalate = await gw.client.post(
            red_members, headers=bearer(key), json={"user_id": newbie, "role": "org_admin"}
        )
        assert "role must be one of: team_admin, member" in error_of(escalate, 400)["message"]
        error_of(
            await gw.client.post(
                f"{API}/orgs/{org['id']}/members",
                headers=bearer(key),
                json={"user_id": newbie, "role": "org_admin"},
            ),
            403,
        )
        error_of(await gw.client.post(red_members, headers=bearer(key), json={"user_id": outsider}), 400)

        added = await gw.client.post(
            red_members, headers=bearer(key), json={"user_id": newbie, "role": "member"}
        )
        assert added.status_code == 201, added.text
        membership = added.json()
        assert (membership["team_id"], membership["org_id"], membership["role"]) == (
            red["id"],
            org["id"],
            "member",
        )
        error_of(await gw.client.post(red_members, headers=bearer(key), json={"user_id": newbie}), 409)
        error_of(
            await gw.client.patch(
                f"{red_members}/{membership['id']}", headers=bearer(key), json={"role": "org_admin"}
            ),
            400,
        )
        promoted = await gw.client.patch(
            f"{red_members}/{membership['id']}", headers=bearer(key), json={"role": "team_admin"}
        )
        assert promoted.status_code == 200
        assert promoted.json()["role"] == "team_admin"
        assert {
            m["user_id"] for m in (await gw.client.get(red_members, headers=bearer(key))).json()["data"]
        } == {lead, newbie}
        renamed = await gw.client.patch(
            f"{API}/orgs/{org['id']}/teams/{red['id']}", headers=bearer(key), json={"name": "Reds"}
        )
        assert renamed.status_code == 200

        # not an admin of blue: may see it, not change it
        blue_path = f"{API}/orgs/{org['id']}/teams/{blue['id']}"
        error_of(await gw.client.patch(blue_path, headers=bearer(key), json={"name": "x"}), 403)
        error_of(
            await gw.client.post(f"{blue_path}/members", headers=bearer(key), json={"user_id": newbie}), 403
        )

        # removing a member revokes their keys bound to the team, not their other keys
        newbie_team_key = (await create_key(gw, org["id"], user_id=newbie, team_id=red["id"]))["key"]
        newbie_key = await user_key(gw, org["id"], newbie)
        assert await chat(gw, newbie_team_key) == 200
        assert (
            await gw.client.delete(f"{red_members}/{membership['id']}", headers=bearer(key))
        ).status_code == 204
        assert await chat(gw, newbie_team_key) == 401
        assert await chat(gw, newbie_key) == 200
        error_of(await gw.client.get(f"{red_members}/{membership['id']}", headers=bearer(key)), 404)


async def test_team_limits_reach_the_key_cache_at_once(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        team = await create_team(gw, org["id"], "red")
        key = (await create_key(gw, org["id"], key_type="team_key", team_id=team["id"]))["key"]
        assert await chat(gw, key) == 200
        path = f"{API}/orgs/{org['id']}/teams/{team['id']}"
        assert (
            await gw.client.patch(path, headers=admin(gw), json={"requests_per_day": 1})
        ).status_code == 200
        assert gw.state.keys.authenticate_key(key).team_limits.requests_per_day == 1
        # unlimited identities are not counted, so the day's count starts with the limit
        assert await chat(gw, key) == 200
        assert await chat(gw, key) == 429


async def test_delete_revokes_team_keys_at_once_and_frees_the_slug(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        team = await create_team(gw, org["id"], "red")
        user = await add_user(gw, org["id"], "u@acme.test")
        await join_team(gw, team["id"], user)
        team_key = (await create_key(gw, org["id"], key_type="team_key", team_id=team["id"]))["key"]
        bound = (await create_key(gw, org["id"], user_id=user, team_id=team["id"]))["key"]
        unbound = await user_key(gw, org["id"], user)
        account = (
            await gw.client.post(
                f"{API}/orgs/{org['id']}/service-accounts",
                headers=admin(gw),
                json={"name": "bot", "team_id": team["id"]},
            )
        ).json()
        sa_key = (await create_key(gw, org["id"], key_type="sa_key", service_account_id=account["id"]))["key"]
        for key in (team_key, bound, unbound, sa_key):
            assert await chat(gw, key) == 200

        path = f"{API}/orgs/{org['id']}/teams/{team['id']}"
        assert (await gw.client.delete(path, headers=admin(gw))).status_code == 204
        assert [await chat(gw, k) for k in (team_key, bound, sa_key, unbound)] == [401, 401, 401, 200]
        error_of(await gw.client.get(path, headers=admin(gw)), 404)
        error_of(
            await gw.client.get(
                f"{API}/orgs/{org['id']}/service-accounts/{account['id']}", headers=admin(gw)
            ),
            404,
        )
        again = await create_team(gw, org["id"], "red")
        assert again["id"] != team["id"]
