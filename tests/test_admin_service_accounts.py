"""Service accounts through the real gateway: scope rules for org- and team-scoped accounts, key_count, the
effective role of their keys, and deletion revoking their keys at once."""

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


async def test_scope_rules(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        red, blue = await create_team(gw, org["id"], "red"), await create_team(gw, org["id"], "blue")
        lead, member = (
            await add_user(gw, org["id"], "lead@acme.test"),
            await add_user(gw, org["id"], "m@acme.test"),
        )
        await join_team(gw, red["id"], lead, role="team_admin")
        await join_team(gw, red["id"], member)
        lead_key, member_key = await user_key(gw, org["id"], lead), await user_key(gw, org["id"], member)
        path = f"{API}/orgs/{org['id']}/service-accounts"

        # org-scoped accounts need an org admin; team-scoped ones an admin of that team
        error_of(await gw.client.post(path, headers=bearer(lead_key), json={"name": "org-bot"}), 403)
        error_of(
            await gw.client.post(path, headers=bearer(lead_key), json={"name": "b", "team_id": blue["id"]}),
            403,
        )
        error_of(
            await gw.client.post(path, headers=bearer(member_key), json={"name": "b", "team_id": red["id"]}),
            403,
        )
        red_bot = await gw.client.post(
            path, headers=bearer(lead_key), json={"name": "red-bot", "team_id": red["id"]}
        )
        assert red_bot.status_code == 201, red_bot.text
        org_bot = (await gw.client.post(path, headers=admin(gw), json={"name": "org-bot"})).json()

        listed = {a["id"] for a in (await gw.client.get(path, headers=bearer(lead_key))).json()["data"]}
        assert listed == {red_bot.json()["id"]}
        assert (await gw.client.get(path, headers=bearer(member_key))).json()["data"] == []
        error_of(await gw.client.get(f"{path}/{org_bot['id']}", headers=bearer(lead_key)), 404)
        error_of(await gw.client.delete(f"{path}/{org_bot['id']}", headers=bearer(lead_key)), 404)
        error_of(await gw.client.get(f"{path}/{red_bot.json()['id']}", headers=bearer(member_key)), 404)

        # the team account's keys act as team admins of its team
        key = await create_key(gw, org["id"], key_type="sa_key", service_account_id=red_bot.json()["id"])
        identity = gw.state.keys.authenticate_key(key["key"])
        assert (identity.role, identity.team_id) == (Role.TEAM_ADMIN, red["id"])

        # another organisation's admin cannot reach them
        other = await create_org(gw, "other")
        stranger = await add_user(gw, other["id"], "s@other.test", role="org_admin")
        error_of(await gw.client.get(path, headers=bearer(await user_key(gw, other["id"], stranger))), 403)
