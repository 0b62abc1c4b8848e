"""Service accounts: scope rules for org- and team-scoped accounts, key_count, the effective role of their
keys, and deletion revoking their keys at once.

The scope rules call the use cases directly on a store (``tests/admin_fixtures.py``); CRUD goes through a real
gateway as the HTTP slice of the route family (statuses, the envelope, the proxy refusing a deleted
account's key).
"""

from __future__ import annotations

import pytest

from tests.admin_fixtures import AdminWorld
from tests.admin_tenancy import (
    API,
    add_user,
    admin,
    bearer,
    chat,
    create_key,
    create_org,
    error_of,
    open_gateway,
    pages,
    user_key,
)
from voidllm.admin import service_accounts
from voidllm.admin.pages import PageQuery
from voidllm.errors import NotFoundError, PermissionDeniedError
from voidllm.identity import Role


async def test_crud_and_key_count(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        path = f"{API}/orgs/{org['id']}/service-accounts"
        created = await gw.client.post(path, headers=admin(gw), json={"name": "deployer"})
        assert created.status_code == 201, created.text
        account = created.json()
        assert (account["name"], account["team_id"], account["key_count"]) == ("deployer", None, 0)
        assert account["created_by"] is not None

        key = await create_key(gw, org["id"], key_type="sa_key", service_account_id=account["id"])
        assert gw.state.keys.authenticate_key(key["key"]).role is Role.ORG_ADMIN
        one = (await gw.client.get(f"{path}/{account['id']}", headers=admin(gw))).json()
        assert one["key_count"] == 1
        renamed = await gw.client.patch(
            f"{path}/{account['id']}", headers=admin(gw), json={"name": "ship-it"}
        )
        assert renamed.status_code == 200
        assert renamed.json()["name"] == "ship-it"

        for i in range(3):
            await gw.client.post(path, headers=admin(gw), json={"name": f"bot{i}"})
        seen = await pages(gw.client, path, admin(gw), limit=2)
        assert [len(p) for p in seen] == [2, 2]
        error_of(await gw.client.post(path, headers=admin(gw), json={"name": ""}), 400)
        member_key = await user_key(gw, org["id"], await add_user(gw, org["id"], "m@acme.test"))
        error_of(await gw.client.post(path, headers=bearer(member_key), json={"name": "b"}), 403)
        error_of(await gw.client.post(path, headers=admin(gw), json={"name": "x", "team_id": "nope"}), 404)

        assert await chat(gw, key["key"]) == 200
        assert (await gw.client.delete(f"{path}/{account['id']}", headers=admin(gw))).status_code == 204
        assert await chat(gw, key["key"]) == 401
        error_of(await gw.client.get(f"{path}/{account['id']}", headers=admin(gw)), 404)
        error_of(
            await gw.client.post(
                f"{API}/orgs/{org['id']}/keys",
                headers=admin(gw),
                json={"name": "x", "key_type": "sa_key", "service_account_id": account["id"]},
            ),
            400,
        )


async def test_scope_rules(admin_world: AdminWorld) -> None:
    world, services = admin_world, admin_world.services
    org = await world.org("acme")
    red, blue = await world.team(org, "red"), await world.team(org, "blue")
    lead, member = await world.user(org, "lead@acme.test"), await world.user(org, "m@acme.test")
    await world.join_team(red.id, lead, role="team_admin")
    await world.join_team(red.id, member)
    as_lead, as_member = await world.user_actor(org, lead), await world.user_actor(org, member)
    Create = service_accounts.ServiceAccountCreate

    # org-scoped accounts need an org admin; team-scoped ones an admin of that team
    with pytest.raises(PermissionDeniedError):
        await service_accounts.create(services, as_lead, org, Create(name="org-bot"))
    with pytest.raises(PermissionDeniedError):
        await service_accounts.create(services, as_lead, org, Create(name="b", team_id=blue.id))
    with pytest.raises(PermissionDeniedError):
        await service_accounts.create(services, as_member, org, Create(name="b", team_id=red.id))
    red_bot = await service_accounts.create(services, as_lead, org, Create(name="red-bot", team_id=red.id))
    org_bot = await service_accounts.create(services, world.system, org, Create(name="org-bot"))

    listed = await service_accounts.list_accounts(services, as_lead, org, PageQuery())
    assert {a.id for a in listed.data} == {red_bot.id}
    assert (await service_accounts.list_accounts(services, as_member, org, PageQuery())).data == []
    with pytest.raises(NotFoundError):
        await service_accounts.get(services, as_lead, org, org_bot.id)
    with pytest.raises(NotFoundError):
        await service_accounts.delete(services, as_lead, org, org_bot.id)
    with pytest.raises(NotFoundError):
        await service_accounts.get(services, as_member, org, red_bot.id)

    # the team account's keys act as team admins of its team
    key = await world.key(org, key_type="sa_key", service_account_id=red_bot.id)
    identity = services.keys.authenticate_key(key.key)
    assert (identity.role, identity.team_id) == (Role.TEAM_ADMIN, red.id)

    # another organisation's admin cannot reach them
    other = await world.org("other")
    stranger = await world.user(other, "s@other.test", role="org_admin")
    with pytest.raises(PermissionDeniedError):
        await service_accounts.list_accounts(
            services, await world.user_actor(other, stranger), org, PageQuery()
        )
