"""Teams and team memberships: CRUD, derived and tombstoned slugs, visibility (404 for teams the caller is not
in), team admins managing only their team and never granting org roles, limits reaching the key cache, and
deletion revoking the team's keys at once.

The use cases are called directly on a store (``tests/admin_fixtures.py``); the HTTP slice of the route family
(status codes, the error envelope, authentication) and the effects on the proxy go through a real gateway.
"""

from __future__ import annotations

import pytest

from tests.admin_fixtures import AdminWorld
from tests.admin_tenancy import (
    API,
    add_user,
    bearer,
    chat,
    create_key,
    create_org,
    create_team,
    error_of,
    join_team,
    open_gateway,
    user_key,
)
from tests.admin_tenancy import (
    admin as admin_headers,
)
from voidllm.admin import memberships, teams
from voidllm.admin.pages import PageQuery
from voidllm.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
)


async def all_pages(world: AdminWorld, org_id: str, limit: int) -> list[list[teams.TeamOut]]:
    """Every page of the organisation's teams as the system admin, following ``next_cursor``."""
    out: list[list[teams.TeamOut]] = []
    cursor: str | None = None
    while True:
        page = await teams.list_teams(
            world.services, world.system, org_id, PageQuery(limit=limit, cursor=cursor)
        )
        out.append(page.data)
        if not page.has_more:
            assert page.next_cursor is None
            return out
        cursor = page.next_cursor


async def test_create_list_get_update_and_conflicts(admin_world: AdminWorld) -> None:
    world = admin_world
    services, system = world.services, world.system
    org = await world.org("acme")
    team = await teams.create(
        services, system, org, teams.TeamCreate(name="Data Science!", requests_per_day=9)
    )
    assert (team.slug, team.requests_per_day, team.member_count, team.key_count) == ("data-science", 9, 0, 0)
    with pytest.raises(ConflictError):
        await teams.create(services, system, org, teams.TeamCreate(name="Other", slug="data-science"))
    with pytest.raises(BadRequestError):
        teams.TeamCreate(name="Bad", slug="x:deleted:y")
    with pytest.raises(BadRequestError):
        await teams.create(services, system, org, teams.TeamCreate(name="!!"))
    with pytest.raises(BadRequestError):
        teams.TeamCreate(name="Neg", daily_token_limit=-1)
    # the same slug in another organisation is fine
    other = await world.org("other")
    await world.team(other, "data-science")

    user = await world.user(org, "u@acme.test")
    await world.join_team(team.id, user)
    await world.key(org, key_type="team_key", team_id=team.id)
    await world.key(org, user_id=user, team_id=team.id)
    one = await teams.get(services, system, org, team.id)
    assert (one.member_count, one.key_count) == (1, 2)

    patched = await teams.update(services, system, org, team.id, teams.TeamUpdate(name="DS", slug="ds"))
    assert (patched.name, patched.slug) == ("DS", "ds")

    for i in range(4):
        await world.team(org, f"t{i}")
    seen = await all_pages(world, org, limit=2)
    assert [len(p) for p in seen] == [2, 2, 1]
    assert [t.slug for p in seen for t in p] == ["ds", "t0", "t1", "t2", "t3"]
    with pytest.raises(NotFoundError):
        await teams.get(services, system, other, team.id)


async def test_members_see_only_their_teams(admin_world: AdminWorld) -> None:
    world = admin_world
    services = world.services
    org = await world.org("acme")
    red, blue = await world.team(org, "red"), await world.team(org, "blue")
    member = await world.user(org, "m@acme.test")
    await world.join_team(red.id, member)
    actor = await world.user_actor(org, member)
    listed = await teams.list_teams(services, actor, org, PageQuery())
    assert [t.id for t in listed.data] == [red.id]
    assert (await teams.get(services, actor, org, red.id)).id == red.id
    with pytest.raises(NotFoundError, match=r"^team not found$"):
        await teams.get(services, actor, org, blue.id)
    # a plain member can neither create, change nor delete teams
    with pytest.raises(PermissionDeniedError):
        await teams.create(services, actor, org, teams.TeamCreate(name="mine"))
    with pytest.raises(PermissionDeniedError):
        await teams.update(services, actor, org, red.id, teams.TeamUpdate(name="x"))
    with pytest.raises(PermissionDeniedError):
        await teams.delete(services, actor, org, red.id)
    with pytest.raises(PermissionDeniedError):
        await memberships.list_team_members(services, actor, org, red.id, PageQuery())
    # a team key sees only its team
    team_actor = world.actor(await world.key(org, key_type="team_key", team_id=blue.id))
    assert [t.id for t in (await teams.list_teams(services, team_actor, org, PageQuery())).data] == [blue.id]


async def test_team_admin_manages_only_their_team_and_cannot_grant_org_roles(admin_world: AdminWorld) -> None:
    world = admin_world
    services = world.services
    org = await world.org("acme")
    red, blue = await world.team(org, "red"), await world.team(org, "blue")
    lead = await world.user(org, "lead@acme.test")
    await world.join_team(red.id, lead, role="team_admin")
    await world.join_team(blue.id, lead, role="member")
    newbie = await world.user(org, "new@acme.test")
    outsider = await world.user(None, "out@else.test")
    actor = await world.user_actor(org, lead)

    with pytest.raises(BadRequestError, match=r"^role must be one of: team_admin, member"):
        memberships.TeamMemberCreate(user_id=newbie, role="org_admin")
    with pytest.raises(PermissionDeniedError):
        await memberships.add_org_member(
            services, actor, org, memberships.OrgMemberCreate(user_id=newbie, role="org_admin")
        )
    with pytest.raises(BadRequestError):
        await memberships.add_team_member(
            services, actor, org, red.id, memberships.TeamMemberCreate(user_id=outsider)
        )

    membership = await memberships.add_team_member(
        services, actor, org, red.id, memberships.TeamMemberCreate(user_id=newbie, role="member")
    )
    assert (membership.team_id, membership.org_id, membership.role) == (red.id, org, "member")
    with pytest.raises(ConflictError):
        await memberships.add_team_member(
            services, actor, org, red.id, memberships.TeamMemberCreate(user_id=newbie)
        )
    with pytest.raises(BadRequestError):
        memberships.TeamMemberUpdate(role="org_admin")
    promoted = await memberships.update_team_member(
        services, actor, org, red.id, membership.id, memberships.TeamMemberUpdate(role="team_admin")
    )
    assert promoted.role == "team_admin"
    listed = await memberships.list_team_members(services, actor, org, red.id, PageQuery())
    assert {m.user_id for m in listed.data} == {lead, newbie}
    assert (await teams.update(services, actor, org, red.id, teams.TeamUpdate(name="Reds"))).name == "Reds"

    # not an admin of blue: may see it, not change it
    with pytest.raises(PermissionDeniedError):
        await teams.update(services, actor, org, blue.id, teams.TeamUpdate(name="x"))
    with pytest.raises(PermissionDeniedError):
        await memberships.add_team_member(
            services, actor, org, blue.id, memberships.TeamMemberCreate(user_id=newbie)
        )

    # removing a member revokes their keys bound to the team, not their other keys (the key cache the proxy
    # authenticates with; tests/test_admin_teams.py's HTTP slice shows the same through the proxy)
    newbie_team_key = await world.key(org, user_id=newbie, team_id=red.id)
    newbie_key = await world.key(org, user_id=newbie)
    world.actor(newbie_team_key)
    await memberships.remove_team_member(services, actor, org, red.id, membership.id)
    with pytest.raises(AuthenticationError):
        world.actor(newbie_team_key)
    world.actor(newbie_key)
    with pytest.raises(NotFoundError):
        await memberships.get_team_member(services, actor, org, red.id, membership.id)


# -- through HTTP: the route family's statuses, envelope and authentication, and the effects on the proxy --


async def test_teams_over_http(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        teams_path = f"{API}/orgs/{org['id']}/teams"
        created = await gw.client.post(
            teams_path, headers=admin_headers(gw), json={"name": "Data Science!", "requests_per_day": 9}
        )
        assert created.status_code == 201, created.text
        team = created.json()
        assert (team["slug"], team["requests_per_day"], team["member_count"], team["key_count"]) == (
            "data-science",
            9,
            0,
            0,
        )
        error_of(
            await gw.client.post(
                teams_path, headers=admin_headers(gw), json={"name": "O", "slug": "data-science"}
            ),
            409,
        )
        error_of(
            await gw.client.post(
                teams_path, headers=admin_headers(gw), json={"name": "Bad", "slug": "x:deleted:y"}
            ),
            400,
        )
        error_of(await gw.client.post(teams_path, headers=admin_headers(gw), json={"name": "!!"}), 400)
        error_of(
            await gw.client.post(
                teams_path, headers=admin_headers(gw), json={"name": "N", "daily_token_limit": -1}
            ),
            400,
        )
        blue = await create_team(gw, org["id"], "blue")
        listed = await gw.client.get(teams_path, headers=admin_headers(gw), params={"limit": 1})
        assert listed.status_code == 200
        assert (len(listed.json()["data"]), listed.json()["has_more"]) == (1, True)
        other = await create_org(gw, "other")
        error_of(
            await gw.client.get(f"{API}/orgs/{other['id']}/teams/{team['id']}", headers=admin_headers(gw)),
            404,
        )

        member = await add_user(gw, org["id"], "m@acme.test")
        await join_team(gw, team["id"], member, role="team_admin")
        key = bearer(await user_key(gw, org["id"], member))
        assert (await gw.client.get(f"{teams_path}/{team['id']}", headers=key)).status_code == 200
        hidden = error_of(await gw.client.get(f"{teams_path}/{blue['id']}", headers=key), 404)
        assert hidden["message"] == "team not found"
        error_of(await gw.client.post(teams_path, headers=key, json={"name": "mine"}), 403)
        error_of(await gw.client.delete(f"{teams_path}/{team['id']}", headers=key), 403)
        renamed = await gw.client.patch(
            f"{teams_path}/{team['id']}", headers=key, json={"name": "DS", "slug": "ds"}
        )
        assert renamed.status_code == 200
        assert (renamed.json()["name"], renamed.json()["slug"]) == ("DS", "ds")

        members = f"{teams_path}/{team['id']}/members"
        newbie = await add_user(gw, org["id"], "new@acme.test")
        escalate = await gw.client.post(members, headers=key, json={"user_id": newbie, "role": "org_admin"})
        assert "role must be one of: team_admin, member" in error_of(escalate, 400)["message"]
        added = await gw.client.post(members, headers=key, json={"user_id": newbie})
        assert added.status_code == 201, added.text
        error_of(await gw.client.post(members, headers=key, json={"user_id": newbie}), 409)
        newbie_team_key = (await create_key(gw, org["id"], user_id=newbie, team_id=team["id"]))["key"]
        newbie_key = await user_key(gw, org["id"], newbie)
        assert await chat(gw, newbie_team_key) == 200
        assert (await gw.client.delete(f"{members}/{added.json()['id']}", headers=key)).status_code == 204
        assert await chat(gw, newbie_team_key) == 401
        assert await chat(gw, newbie_key) == 200
        error_of(await gw.client.get(f"{members}/{added.json()['id']}", headers=key), 404)
        error_of(await gw.client.get(teams_path), 401)


async def test_team_limits_reach_the_key_cache_at_once(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        team = await create_team(gw, org["id"], "red")
        key = (await create_key(gw, org["id"], key_type="team_key", team_id=team["id"]))["key"]
        assert await chat(gw, key) == 200
        path = f"{API}/orgs/{org['id']}/teams/{team['id']}"
        assert (
            await gw.client.patch(path, headers=admin_headers(gw), json={"requests_per_day": 1})
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
                headers=admin_headers(gw),
                json={"name": "bot", "team_id": team["id"]},
            )
        ).json()
        sa_key = (await create_key(gw, org["id"], key_type="sa_key", service_account_id=account["id"]))["key"]
        for key in (team_key, bound, unbound, sa_key):
            assert await chat(gw, key) == 200

        path = f"{API}/orgs/{org['id']}/teams/{team['id']}"
        assert (await gw.client.delete(path, headers=admin_headers(gw))).status_code == 204
        assert [await chat(gw, k) for k in (team_key, bound, sa_key, unbound)] == [401, 401, 401, 200]
        error_of(await gw.client.get(path, headers=admin_headers(gw)), 404)
        error_of(
            await gw.client.get(
                f"{API}/orgs/{org['id']}/service-accounts/{account['id']}", headers=admin_headers(gw)
            ),
            404,
        )
        again = await create_team(gw, org["id"], "red")
        assert again["id"] != team["id"]


async def test_me_lists_the_teams_the_user_administers(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        red = await create_team(gw, org["id"], "red")
        blue = await create_team(gw, org["id"], "blue")
        gone = await create_team(gw, org["id"], "gone")
        lead = await add_user(gw, org["id"], "lead@acme.test")
        plain = await add_user(gw, org["id"], "plain@acme.test")
        for team in (red, gone):
            await join_team(gw, team["id"], lead, role="team_admin")
        await join_team(gw, blue["id"], lead)
        await join_team(gw, red["id"], plain)
        path = f"{API}/orgs/{org['id']}/teams/{gone['id']}"
        assert (await gw.client.delete(path, headers=admin_headers(gw))).status_code == 204

        async def me(user: str) -> dict[str, object]:
            key = bearer(await user_key(gw, org["id"], user))
            return dict((await gw.client.get(f"{API}/me", headers=key)).json())

        lead_me = await me(lead)
        assert (lead_me["role"], lead_me["team_admin_of"]) == ("member", [red["id"]])
        assert (await me(plain))["team_admin_of"] == []
