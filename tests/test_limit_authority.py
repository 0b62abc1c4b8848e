"""Who may set limits (issue 12, point 2) through the real gateway: a key's limits and expiry are set by the
admins above it (system admin, org admin, the admin of the team the key is bound to within the team's own
limits), never by its holder and never through the key itself; a team's limits by org admins, an
organisation's by system admins; team allowlists by org admins, organisation allowlists by system admins.
Holders still rename, rotate and revoke their own keys; team and org admins still rename their scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.admin_tenancy import (
    API,
    MODEL,
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
    user_key,
)
from tests.gateway import RunningGateway
from voidllm.admin import keys
from voidllm.admin.context import Actor
from voidllm.admin.keys import KeyUpdate
from voidllm.admin.tenancy import reload_keys
from voidllm.crypto import KeyKind, generate_key
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow

REFUSED = "a key's limits and expiry are set by an administrator"


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def session_key(gw: RunningGateway, org_id: str, user_id: str) -> str:
    """A login session key (``vl_sk_``) of the user, inserted into the store and loaded into the cache."""
    plaintext, now = generate_key(KeyKind.SESSION), utcnow()
    await gw.state.services.store.run(
        lambda conn: conn.execute(
            t.api_keys.insert().values(
                id=new_id(),
                key_hash=gw.state.services.keyring.hash_key(plaintext),
                key_hint="vl_sk_...",
                name="session",
                key_type="session_key",
                org_id=org_id,
                user_id=user_id,
                created_at=now,
                updated_at=now,
            )
        )
    )
    await reload_keys(gw.state.services)
    return plaintext


async def service_account_key(gw: RunningGateway, org_id: str, team_id: str | None) -> dict[str, Any]:
    account = await gw.client.post(
        f"{API}/orgs/{org_id}/service-accounts",
        headers=admin(gw),
        json={"name": f"bot-{new_id()[-6:]}", "team_id": team_id},
    )
    assert account.status_code == 201, account.text
    return await create_key(gw, org_id, key_type="sa_key", service_account_id=account.json()["id"])


async def test_a_member_cannot_lift_its_own_limits_or_expiry(sqlite_dsn: str) -> None:
    """The regression of issue 12: with its own key, a member sent zero limits and a far expiry -> 200."""
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        member = await add_user(gw, org["id"], "m@acme.test")
        soon = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
        limited = await create_key(
            gw,
            org["id"],
            user_id=member,
            requests_per_minute=1,
            requests_per_day=1,
            daily_token_limit=1000,
            expires_at=soon.isoformat(),
        )
        path = f"{API}/orgs/{org['id']}/keys/{limited['id']}"
        other_own, session = await user_key(gw, org["id"], member), await session_key(gw, org["id"], member)

        for caller in (
            limited["key"],
            other_own,
            session,
        ):  # through the key itself, another own key, a session
            lift_limits = {"requests_per_minute": 0, "daily_token_limit": 0}
            lift = await gw.client.patch(path, headers=bearer(caller), json=lift_limits)
            error = error_of(lift, 403)
            assert error["code"] == "forbidden"
            assert error["message"] == f"{REFUSED} (daily_token_limit, requests_per_minute)"
            later = await gw.client.patch(
                path, headers=bearer(caller), json={"expires_at": "2099-01-01T00:00:00Z"}
            )
            assert error_of(later, 403)["message"] == f"{REFUSED} (expires_at)"

        unchanged = (await gw.client.get(path, headers=admin(gw))).json()
        limits = ("requests_per_minute", "requests_per_day", "daily_token_limit")
        assert [unchanged[name] for name in limits] == [1, 1, 1000]
        assert _ts(unchanged["expires_at"]) == soon
        identity = gw.state.keys.authenticate_key(limited["key"])
        assert (identity.key_limits.requests_per_minute, identity.key_limits.daily_token_limit) == (1, 1000)
        assert identity.expires_at == soon
        # still enforced on the proxy path
        assert await chat(gw, limited["key"]) == 200
        assert await chat(gw, limited["key"]) == 429

        # the holder still renames, rotates and revokes its own key
        renamed = await gw.client.patch(path, headers=bearer(limited["key"]), json={"name": "mine"})
        assert renamed.status_code == 200
        assert renamed.json()["name"] == "mine"
        assert renamed.json()["requests_per_minute"] == 1
        rotated = await gw.client.post(f"{path}/rotate", headers=bearer(limited["key"]))
        assert rotated.status_code == 200, rotated.text
        successor = rotated.json()["new_key"]
        assert (successor["requests_per_minute"], successor["daily_token_limit"]) == (1, 1000)
        assert _ts(successor["expires_at"]) == soon
        successor_path = f"{API}/orgs/{org['id']}/keys/{successor['id']}"
        through_itself = await gw.client.patch(
            successor_path, headers=bearer(successor["key"]), json={"requests_per_day": 0}
        )
        assert error_of(through_itself, 403)["message"] == f"{REFUSED} (requests_per_day)"
        assert (await gw.client.delete(successor_path, headers=bearer(other_own))).status_code == 204
        assert await chat(gw, successor["key"]) == 401


async def test_a_team_admin_sets_team_bound_keys_within_the_team_limits(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        team = await create_team(gw, org["id"], "red", requests_per_minute=100)  # the other limits: unlimited
        lead, member = (
            await add_user(gw, org["id"], "lead@acme.test"),
            await add_user(gw, org["id"], "m@acme.test"),
        )
        await join_team(gw, team["id"], lead, role="team_admin")
        await join_team(gw, team["id"], member)
        bound = await create_key(gw, org["id"], user_id=member, team_id=team["id"], requests_per_minute=10)
        path = f"{API}/orgs/{org['id']}/keys/{bound['id']}"
        team_key = await create_key(gw, org["id"], key_type="team_key", team_id=team["id"])
        sa_key = await service_account_key(gw, org["id"], team["id"])
        soon = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)

        # the team's admins: a team admin user, the team's key, a service-account key bound to the team
        for caller, value in (
            (await user_key(gw, org["id"], lead), 50),
            (team_key["key"], 100),
            (sa_key["key"], 1),
        ):
            within = await gw.client.patch(
                path,
                headers=bearer(caller),
                json={"requests_per_minute": value, "expires_at": soon.isoformat()},
            )
            assert within.status_code == 200, within.text
            assert within.json()["requests_per_minute"] == value
            assert gw.state.keys.authenticate_key(bound["key"]).key_limits.requests_per_minute == value
            for beyond in (101, 0):  # above the team's limit, or unlimited while the team has one
                refused = await gw.client.patch(
                    path, headers=bearer(caller), json={"requests_per_minute": beyond}
                )
                assert error_of(refused, 403)["message"] == (
                    "requests_per_minute must be between 1 and 100, the team's limit "
                    "(only an org admin goes beyond it)"
                )
            # the team sets no daily token limit: any value, 0 included
            assert (
                await gw.client.patch(path, headers=bearer(caller), json={"daily_token_limit": 0})
            ).status_code == 200
        assert gw.state.keys.authenticate_key(bound["key"]).key_limits.requests_per_minute == 1
        assert _ts((await gw.client.get(path, headers=admin(gw))).json()["expires_at"]) == soon

        # the team key and the service-account key are refused on themselves
        for own in (team_key, sa_key):
            own_path = f"{API}/orgs/{org['id']}/keys/{own['id']}"
            error_of(
                await gw.client.patch(own_path, headers=bearer(own["key"]), json={"requests_per_minute": 5}),
                403,
            )
        # an org admin goes beyond the team's limit
        boss = await user_key(
            gw, org["id"], await add_user(gw, org["id"], "boss@acme.test", role="org_admin")
        )
        lifted = await gw.client.patch(
            path, headers=bearer(boss), json={"requests_per_minute": 0, "requests_per_day": 0}
        )
        assert lifted.status_code == 200
        assert lifted.json()["requests_per_minute"] == 0


async def test_a_team_admin_is_refused_on_its_own_keys(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        team = await create_team(gw, org["id"], "red")
        lead = await add_user(gw, org["id"], "lead@acme.test")
        await join_team(gw, team["id"], lead, role="team_admin")
        own_bound = await create_key(gw, org["id"], user_id=lead, team_id=team["id"], requests_per_day=5)
        own_unbound = await create_key(gw, org["id"], user_id=lead, requests_per_day=5)
        for own in (own_bound, own_unbound):
            path = f"{API}/orgs/{org['id']}/keys/{own['id']}"
            for caller in (own_bound["key"], own_unbound["key"]):
                refused = await gw.client.patch(path, headers=bearer(caller), json={"requests_per_day": 0})
                assert error_of(refused, 403)["message"] == f"{REFUSED} (requests_per_day)"
            renamed = await gw.client.patch(path, headers=bearer(own_bound["key"]), json={"name": "lead's"})
            assert renamed.status_code == 200
            assert renamed.json()["requests_per_day"] == 5


async def test_a_key_is_refused_on_itself_unless_a_system_admin(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        boss = await add_user(gw, org["id"], "boss@acme.test", role="org_admin")
        boss_key = await create_key(gw, org["id"], user_id=boss, requests_per_day=5)
        path = f"{API}/orgs/{org['id']}/keys/{boss_key['id']}"
        refused = await gw.client.patch(path, headers=bearer(boss_key["key"]), json={"requests_per_day": 0})
        assert error_of(refused, 403)["message"] == f"{REFUSED} (requests_per_day)"
        # the same org admin through another of its keys (a session here) may: it is an org admin of the org
        through_session = await gw.client.patch(
            path, headers=bearer(await session_key(gw, org["id"], boss)), json={"requests_per_day": 7}
        )
        assert through_session.status_code == 200
        assert through_session.json()["requests_per_day"] == 7

        # an unbound service-account key acts as org admin: it changes other keys, not itself
        unbound = await service_account_key(gw, org["id"], None)
        unbound_path = f"{API}/orgs/{org['id']}/keys/{unbound['id']}"
        error_of(
            await gw.client.patch(unbound_path, headers=bearer(unbound["key"]), json={"requests_per_day": 0}),
            403,
        )
        assert (
            await gw.client.patch(path, headers=bearer(unbound["key"]), json={"requests_per_day": 3})
        ).status_code == 200

        # a system admin may, through the key itself
        root = gw.state.keys.authenticate_key(gw.api_key())
        own = await gw.client.patch(
            f"{API}/orgs/{root.org_id}/keys/{root.key_id}",
            headers=admin(gw),
            json={"requests_per_day": 0, "daily_token_limit": 0},
        )
        assert own.status_code == 200, own.text

        # another organisation's admin is refused outright
        elsewhere = await create_org(gw, "elsewhere")
        stranger = await user_key(
            gw, elsewhere["id"], await add_user(gw, elsewhere["id"], "s@else.test", role="org_admin")
        )
        error_of(await gw.client.patch(path, headers=bearer(stranger), json={"requests_per_day": 0}), 403)


async def test_org_and_system_admins_set_any_keys_limits(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        team = await create_team(gw, org["id"], "red", requests_per_minute=10)
        member = await add_user(gw, org["id"], "m@acme.test")
        await join_team(gw, team["id"], member)
        bound = await create_key(gw, org["id"], user_id=member, team_id=team["id"], requests_per_minute=5)
        path = f"{API}/orgs/{org['id']}/keys/{bound['id']}"
        boss = await user_key(
            gw, org["id"], await add_user(gw, org["id"], "boss@acme.test", role="org_admin")
        )
        body = {"requests_per_minute": 50, "monthly_token_limit": 0, "expires_at": "2099-01-01T00:00:00Z"}
        for caller in (bearer(boss), admin(gw)):
            patched = await gw.client.patch(path, headers=caller, json=body)
            assert patched.status_code == 200, patched.text
            assert patched.json()["requests_per_minute"] == 50
        # the CLI acts as the system
        system = Actor.system()
        changed = await keys.update(
            gw.state.services, system, org["id"], bound["id"], KeyUpdate(requests_per_day=9)
        )
        assert changed.requests_per_day == 9
        assert gw.state.keys.authenticate_key(bound["key"]).key_limits.requests_per_day == 9


async def test_team_limits_are_set_by_org_admins_names_by_team_admins(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        team = await create_team(gw, org["id"], "red", requests_per_minute=10)
        lead = await add_user(gw, org["id"], "lead@acme.test")
        await join_team(gw, team["id"], lead, role="team_admin")
        lead_key = await user_key(gw, org["id"], lead)
        team_key = (await create_key(gw, org["id"], key_type="team_key", team_id=team["id"]))["key"]
        path = f"{API}/orgs/{org['id']}/teams/{team['id']}"

        for caller in (lead_key, team_key):
            refused = await gw.client.patch(
                path, headers=bearer(caller), json={"name": "Reds", "requests_per_minute": 0}
            )
            assert (
                error_of(refused, 403)["message"]
                == "a team's limits are set by an org admin (requests_per_minute)"
            )
        renamed = await gw.client.patch(path, headers=bearer(lead_key), json={"name": "Reds", "slug": "reds"})
        assert renamed.status_code == 200
        assert (renamed.json()["name"], renamed.json()["slug"]) == (
            "Reds",
            "reds",
        )
        assert renamed.json()["requests_per_minute"] == 10
        assert gw.state.keys.authenticate_key(team_key).team_limits.requests_per_minute == 10

        boss = await user_key(
            gw, org["id"], await add_user(gw, org["id"], "boss@acme.test", role="org_admin")
        )
        for caller, value in ((bearer(boss), 20), (admin(gw), 0)):
            changed = await gw.client.patch(path, headers=caller, json={"requests_per_minute": value})
            assert changed.status_code == 200
            assert changed.json()["requests_per_minute"] == value
            assert gw.state.keys.authenticate_key(team_key).team_limits.requests_per_minute == value


async def test_org_limits_are_set_by_system_admins_names_by_org_admins(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme", daily_token_limit=1000)
        boss = await user_key(
            gw, org["id"], await add_user(gw, org["id"], "boss@acme.test", role="org_admin")
        )
        unbound = (await service_account_key(gw, org["id"], None))["key"]  # acts as org admin
        path = f"{API}/orgs/{org['id']}"

        for caller in (boss, unbound):
            lift = {"daily_token_limit": 0, "requests_per_day": 0}
            refused = await gw.client.patch(path, headers=bearer(caller), json=lift)
            assert error_of(refused, 403)["message"] == (
                "an organization's limits are set by a system admin (daily_token_limit, requests_per_day)"
            )
        renamed = await gw.client.patch(
            path, headers=bearer(boss), json={"name": "Acme Inc", "slug": "acme-inc"}
        )
        assert renamed.status_code == 200
        assert (renamed.json()["name"], renamed.json()["slug"]) == (
            "Acme Inc",
            "acme-inc",
        )
        assert renamed.json()["daily_token_limit"] == 1000
        assert gw.state.keys.authenticate_key(boss).org_limits.daily_token_limit == 1000

        lifted = await gw.client.patch(path, headers=admin(gw), json={"daily_token_limit": 0})
        assert lifted.status_code == 200
        assert lifted.json()["daily_token_limit"] == 0
        assert gw.state.keys.authenticate_key(boss).org_limits.daily_token_limit == 0


async def test_model_allowlists_are_set_from_above(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        team = await create_team(gw, org["id"], "red")
        lead, member = (
            await add_user(gw, org["id"], "lead@acme.test"),
            await add_user(gw, org["id"], "m@acme.test"),
        )
        await join_team(gw, team["id"], lead, role="team_admin")
        await join_team(gw, team["id"], member)
        lead_key, member_key = await user_key(gw, org["id"], lead), await user_key(gw, org["id"], member)
        team_key = (await create_key(gw, org["id"], key_type="team_key", team_id=team["id"]))["key"]
        boss = await user_key(
            gw, org["id"], await add_user(gw, org["id"], "boss@acme.test", role="org_admin")
        )
        body = {"models": [MODEL]}
        team_access = f"{API}/orgs/{org['id']}/teams/{team['id']}/model-access"
        org_access = f"{API}/orgs/{org['id']}/model-access"
        member_key_id = gw.state.keys.authenticate_key(member_key).key_id
        key_access = f"{API}/orgs/{org['id']}/keys/{member_key_id}/model-access"

        for caller in (lead_key, team_key, member_key):
            error_of(await gw.client.put(team_access, headers=bearer(caller), json=body), 403)
            error_of(await gw.client.put(key_access, headers=bearer(caller), json=body), 403)
        for caller in (lead_key, team_key):  # the team's admins still read it
            assert (await gw.client.get(team_access, headers=bearer(caller))).json() == {"models": []}
        for path in (team_access, key_access):
            put = await gw.client.put(path, headers=bearer(boss), json=body)
            assert (put.status_code, put.json()) == (200, body)

        error_of(await gw.client.put(org_access, headers=bearer(boss), json=body), 403)
        assert (await gw.client.get(org_access, headers=bearer(boss))).json() == {"models": []}
        put = await gw.client.put(org_access, headers=admin(gw), json=body)
        assert (put.status_code, put.json()) == (200, body)
        assert (await gw.client.get(org_access, headers=bearer(boss))).json() == body
