"""API keys through the real gateway: create (shown once, works at once), list/get never show the key, patch
reaches the cache, delete revokes at once, rotation with the 24 h grace, expiry, and every escalation attempt
by members, team admins and other organisations' admins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
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
from voidllm.admin import keys
from voidllm.admin.context import Actor
from voidllm.admin.keys import KeyCreate
from voidllm.admin.tenancy import reload_keys
from voidllm.crypto import KeyKind, generate_key
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow

KEY_FIELDS = {
    "id",
    "name",
    "key_type",
    "key_hint",
    "org_id",
    "team_id",
    "user_id",
    "service_account_id",
    "daily_token_limit",
    "monthly_token_limit",
    "requests_per_minute",
    "requests_per_day",
    "expires_at",
    "last_used_at",
    "created_by",
    "created_at",
    "updated_at",
}


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_create_shows_the_key_once_and_it_works_at_once(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        user = await add_user(gw, org["id"], "u@acme.test")
        created = await create_key(gw, org["id"], name="ci", user_id=user, requests_per_day=7)
        assert set(created) == KEY_FIELDS | {"key"}
        assert created["key"].startswith("vl_uk_")
        assert len(created["key"]) == 54
        assert created["key_hint"] == created["key"][:6] + "..." + created["key"][-4:]
        assert (created["user_id"], created["org_id"], created["requests_per_day"]) == (user, org["id"], 7)
        assert await chat(gw, created["key"]) == 200

        path = f"{API}/orgs/{org['id']}/keys"
        one = (await gw.client.get(f"{path}/{created['id']}", headers=admin(gw))).json()
        assert set(one) == KEY_FIELDS
        assert one["name"] == "ci"
        listed = (await gw.client.get(path, headers=admin(gw))).text
        assert created["key"] not in listed
        assert created["key"][6:] not in listed
        stored = await gw.state.services.store.run(
            lambda conn: conn.execute(
                sa.select(t.api_keys.c.key_hash).where(t.api_keys.c.id == created["id"])
            ).scalar()
        )
        assert stored not in listed
        assert stored == gw.state.services.keyring.hash_key(created["key"])


async def test_team_and_service_account_keys(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        team = await create_team(gw, org["id"], "red")
        tkey = await create_key(gw, org["id"], key_type="team_key", team_id=team["id"])
        assert tkey["key"].startswith("vl_tk_")
        assert await chat(gw, tkey["key"]) == 200
        account = (
            await gw.client.post(
                f"{API}/orgs/{org['id']}/service-accounts",
                headers=admin(gw),
                json={"name": "bot", "team_id": team["id"]},
            )
        ).json()
        skey = await create_key(gw, org["id"], key_type="sa_key", service_account_id=account["id"])
        assert skey["key"].startswith("vl_sa_")
        assert skey["team_id"] == team["id"]
        assert await chat(gw, skey["key"]) == 200

        # team and service-account keys cannot mint keys
        for key in (tkey["key"], skey["key"]):
            denied = await gw.client.post(
                f"{API}/orgs/{org['id']}/keys",
                headers=bearer(key),
                json={"name": "x", "key_type": "team_key", "team_id": team["id"]},
            )
            error_of(denied, 403)


# A refused create writes nothing, so one gateway serves every case (the messages are the HTTP codec's and the
# use case's, both checked through the route).
INVALID_CREATES = (
    ({"key_type": "user_key"}, "user_id is required for user_key"),
    ({"key_type": "team_key"}, "team_id is required for team_key"),
    ({"key_type": "team_key", "team_id": "T", "user_id": "U"}, "user_id must not be set for team_key"),
    (
        {"key_type": "team_key", "team_id": "T", "service_account_id": "S"},
        "service_account_id must not be set for team_key",
    ),
    ({"key_type": "sa_key"}, "service_account_id is required for sa_key"),
    (
        {"key_type": "sa_key", "service_account_id": "S", "team_id": "T"},
        "team_id must not be set for sa_key",
    ),
    (
        {"key_type": "sa_key", "service_account_id": "S", "user_id": "U"},
        "user_id must not be set for sa_key",
    ),
    ({"key_type": "session_key", "user_id": "U"}, "key_type must be one of: user_key, team_key, sa_key"),
    (
        {"key_type": "user_key", "user_id": "U", "requests_per_minute": -1},
        "requests_per_minute must be between 0 and 1000000000000000",
    ),
    (
        {"key_type": "user_key", "user_id": "U", "expires_at": "2000-01-01T00:00:00Z"},
        "expires_at must be in the future",
    ),
    ({"key_type": "user_key", "user_id": "nobody"}, "user is not a member of this organization"),
    ({"key_type": "team_key", "team_id": "nope"}, "team not found"),
    ({"key_type": "sa_key", "service_account_id": "nope"}, "service account not found"),
    ({"key_type": "user_key", "user_id": "U", "name": " "}, "name is required"),
)


async def test_create_validation(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await default_org(gw)
        answers = []
        for body, _ in INVALID_CREATES:
            response = await gw.client.post(
                f"{API}/orgs/{org}/keys", headers=admin(gw), json={"name": "k", **body}
            )
            answers.append(error_of(response, 400)["message"])
        assert answers == [message for _, message in INVALID_CREATES]
        listed = await gw.client.get(f"{API}/orgs/{org}/keys", headers=admin(gw))
        assert len(listed.json()["data"]) == 1  # the bootstrap admin's key alone: nothing was created


async def test_member_escalations_are_refused(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        team, other_team = await create_team(gw, org["id"], "red"), await create_team(gw, org["id"], "blue")
        member, peer = (
            await add_user(gw, org["id"], "m@acme.test"),
            await add_user(gw, org["id"], "p@acme.test"),
        )
        await join_team(gw, team["id"], member)
        key = await user_key(gw, org["id"], member)
        path = f"{API}/orgs/{org['id']}/keys"

        team_key = {"name": "x", "key_type": "team_key", "team_id": team["id"]}
        assert (
            error_of(await gw.client.post(path, headers=bearer(key), json=team_key), 403)["code"]
            == "forbidden"
        )
        for_peer = {"name": "x", "key_type": "user_key", "user_id": peer}
        error_of(await gw.client.post(path, headers=bearer(key), json=for_peer), 403)
        foreign_team = {"name": "x", "key_type": "user_key", "team_id": other_team["id"]}
        error_of(await gw.client.post(path, headers=bearer(key), json=foreign_team), 403)
        # another organisation's keys endpoint
        error_of(
            await gw.client.post(
                f"{API}/orgs/{await default_org(gw)}/keys",
                headers=bearer(key),
                json={"name": "x", "key_type": "user_key"},
            ),
            403,
        )

        own = await gw.client.post(path, headers=bearer(key), json={"name": "mine", "key_type": "user_key"})
        assert own.status_code == 201
        assert own.json()["user_id"] == member
        assert own.json()["created_by"] == member
        in_team = await gw.client.post(
            path, headers=bearer(key), json={"name": "t", "key_type": "user_key", "team_id": team["id"]}
        )
        assert in_team.status_code == 201
        assert in_team.json()["team_id"] == team["id"]

        # an org admin cannot mint a key acting for a system admin
        boss = await add_user(gw, org["id"], "boss@acme.test", role="org_admin")
        root = await add_user(gw, org["id"], "root@acme.test", system_admin=True)
        denied = await gw.client.post(
            path,
            headers=bearer(await user_key(gw, org["id"], boss)),
            json={"name": "x", "key_type": "user_key", "user_id": root},
        )
        error_of(denied, 403)


async def test_visibility_of_list_get_patch_delete(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        team = await create_team(gw, org["id"], "red")
        member, lead, boss = (
            await add_user(gw, org["id"], "m@acme.test"),
            await add_user(gw, org["id"], "lead@acme.test"),
            await add_user(gw, org["id"], "boss@acme.test", role="org_admin"),
        )
        await join_team(gw, team["id"], member)
        await join_team(gw, team["id"], lead, role="team_admin")
        member_key = await create_key(gw, org["id"], user_id=member)
        member_team_key = await create_key(gw, org["id"], user_id=member, team_id=team["id"])
        lead_key = await create_key(gw, org["id"], user_id=lead)
        team_key = await create_key(gw, org["id"], key_type="team_key", team_id=team["id"])
        boss_key = await create_key(gw, org["id"], user_id=boss)
        path = f"{API}/orgs/{org['id']}/keys"

        async def visible(key: str) -> set[str]:
            return {k["id"] for p in await pages(gw.client, path, bearer(key), limit=2) for k in p}

        assert await visible(member_key["key"]) == {member_key["id"], member_team_key["id"]}
        assert await visible(lead_key["key"]) == {lead_key["id"], member_team_key["id"], team_key["id"]}
        assert await visible(team_key["key"]) == {member_team_key["id"], team_key["id"]}
        everything = {k["id"] for k in (member_key, member_team_key, lead_key, team_key, boss_key)}
        assert await visible(boss_key["key"]) == everything

        # a member cannot read, change, rotate or revoke someone else's key: it does not exist for them
        other = f"{path}/{lead_key['id']}"
        error_of(await gw.client.get(other, headers=bearer(member_key["key"])), 404)
        error_of(await gw.client.patch(other, headers=bearer(member_key["key"]), json={"name": "x"}), 404)
        error_of(await gw.client.post(f"{other}/rotate", headers=bearer(member_key["key"])), 404)
        error_of(await gw.client.delete(other, headers=bearer(member_key["key"])), 404)
        assert await chat(gw, lead_key["key"]) == 200
        # the team admin manages the team's keys
        patched = await gw.client.patch(
            f"{path}/{member_team_key['id']}", headers=bearer(lead_key["key"]), json={"name": "renamed"}
        )
        assert patched.status_code == 200
        assert patched.json()["name"] == "renamed"
        # ... but cannot obtain a key acting as the member by rotating theirs; the team key they may rotate
        for caller in (lead_key, team_key):
            error_of(
                await gw.client.post(f"{path}/{member_team_key['id']}/rotate", headers=bearer(caller["key"])),
                403,
            )
        own_team = await gw.client.post(f"{path}/{team_key['id']}/rotate", headers=bearer(lead_key["key"]))
        assert own_team.status_code == 200
        assert own_team.json()["new_key"]["key"].startswith("vl_tk_")

        # another organisation's admin sees nothing here
        elsewhere = await create_org(gw, "elsewhere")
        stranger = await add_user(gw, elsewhere["id"], "s@else.test", role="org_admin")
        stranger_key = await user_key(gw, elsewhere["id"], stranger)
        error_of(await gw.client.get(path, headers=bearer(stranger_key)), 403)
        error_of(
            await gw.client.get(
                f"{API}/orgs/{elsewhere['id']}/keys/{lead_key['id']}", headers=bearer(stranger_key)
            ),
            404,
        )
        error_of(await gw.client.delete(f"{path}/{lead_key['id']}", headers=bearer(stranger_key)), 403)


async def test_patch_reaches_the_cache_and_delete_revokes_at_once(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        user = await add_user(gw, org["id"], "u@acme.test")
        created = await create_key(gw, org["id"], user_id=user)
        path = f"{API}/orgs/{org['id']}/keys/{created['id']}"
        soon = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
        patched = await gw.client.patch(
            path,
            headers=admin(gw),
            json={"name": "renamed", "requests_per_minute": 1, "expires_at": soon.isoformat()},
        )
        assert patched.status_code == 200
        body = patched.json()
        assert (body["name"], body["requests_per_minute"], _ts(body["expires_at"])) == ("renamed", 1, soon)
        identity = gw.state.keys.authenticate_key(created["key"])
        assert (identity.name, identity.key_limits.requests_per_minute, identity.expires_at) == (
            "renamed",
            1,
            soon,
        )
        assert await chat(gw, created["key"]) == 200
        assert await chat(gw, created["key"]) == 429
        error_of(
            await gw.client.patch(path, headers=admin(gw), json={"expires_at": "2001-01-01T00:00:00Z"}), 400
        )
        error_of(await gw.client.patch(path, headers=admin(gw), json={"daily_token_limit": -5}), 400)

        assert (await gw.client.delete(path, headers=admin(gw))).status_code == 204
        assert await chat(gw, created["key"]) == 401
        error_of(await gw.client.get(path, headers=admin(gw)), 404)
        error_of(await gw.client.delete(path, headers=admin(gw)), 404)


async def test_expired_keys_stop_working(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        user = await add_user(gw, org["id"], "u@acme.test")
        created = await create_key(
            gw, org["id"], user_id=user, expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()
        )
        assert await chat(gw, created["key"]) == 200
        # let the expiry pass (moved into the past in the store), then reload the cache as the refresher does
        past = utcnow() - timedelta(seconds=1)
        await gw.state.services.store.run(
            lambda conn: conn.execute(
                t.api_keys.update().where(t.api_keys.c.id == created["id"]).values(expires_at=past)
            )
        )
        await reload_keys(gw.state.services)
        assert await chat(gw, created["key"]) == 401
        rotate = await gw.client.post(
            f"{API}/orgs/{org['id']}/keys/{created['id']}/rotate", headers=admin(gw)
        )
        error_of(rotate, 400)


async def test_rotation_gives_the_old_key_24_hours(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        team = await create_team(gw, org["id"], "red")
        user = await add_user(gw, org["id"], "u@acme.test")
        await join_team(gw, team["id"], user)
        old = await create_key(
            gw, org["id"], name="ci", user_id=user, team_id=team["id"], daily_token_limit=99
        )
        await gw.state.services.store.run(
            lambda conn: conn.execute(
                t.key_model_access.insert().values(
                    key_id=old["id"], model_name="gpt-test", created_at=utcnow()
                )
            )
        )
        member_key = await user_key(gw, org["id"], user)

        before = datetime.now(UTC)
        rotated = await gw.client.post(
            f"{API}/orgs/{org['id']}/keys/{old['id']}/rotate", headers=bearer(member_key)
        )
        after = datetime.now(UTC)
        assert rotated.status_code == 200, rotated.text
        new, previous = rotated.json()["new_key"], rotated.json()["old_key"]
        assert set(new) == KEY_FIELDS | {"key"}
        assert set(previous) == KEY_FIELDS
        assert new["key"].startswith("vl_uk_")
        assert new["id"] != old["id"]
        assert previous["id"] == old["id"]
        assert (new["name"], new["team_id"], new["user_id"], new["daily_token_limit"]) == (
            "ci (rotated)",
            team["id"],
            user,
            99,
        )
        assert new["expires_at"] is None
        assert new["created_by"] == user
        grace = _ts(previous["expires_at"])
        assert before + timedelta(hours=24) - timedelta(seconds=1) <= grace <= after + timedelta(hours=24)
        assert gw.state.keys.authenticate_key(old["key"]).expires_at == grace
        assert await chat(gw, old["key"]) == 200
        assert await chat(gw, new["key"]) == 200
        copied = await gw.state.services.store.run(
            lambda conn: list(
                conn.execute(
                    sa.select(t.key_model_access.c.model_name).where(t.key_model_access.c.key_id == new["id"])
                ).scalars()
            )
        )
        assert copied == ["gpt-test"]

        # rotating again keeps the name suffix single
        again = await gw.client.post(f"{API}/orgs/{org['id']}/keys/{new['id']}/rotate", headers=admin(gw))
        assert again.json()["new_key"]["name"] == "ci (rotated)"


async def test_rotation_keeps_a_shorter_expiry_and_refuses_sessions_and_other_orgs(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        user = await add_user(gw, org["id"], "u@acme.test")
        soon = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
        short = await create_key(gw, org["id"], user_id=user, expires_at=soon.isoformat())
        rotated = (
            await gw.client.post(f"{API}/orgs/{org['id']}/keys/{short['id']}/rotate", headers=admin(gw))
        ).json()
        assert _ts(rotated["old_key"]["expires_at"]) == soon
        assert _ts(rotated["new_key"]["expires_at"]) == soon

        # a login session key of the user: visible to the user, never rotatable, never listed
        session_id = new_id()
        session = generate_key(KeyKind.SESSION)
        now = utcnow()
        await gw.state.services.store.run(
            lambda conn: conn.execute(
                t.api_keys.insert().values(
                    id=session_id,
                    key_hash=gw.state.services.keyring.hash_key(session),
                    key_hint="vl_sk_...",
                    name="session",
                    key_type="session_key",
                    org_id=org["id"],
                    user_id=user,
                    created_at=now,
                    updated_at=now,
                )
            )
        )
        denied = await gw.client.post(f"{API}/orgs/{org['id']}/keys/{session_id}/rotate", headers=admin(gw))
        assert error_of(denied, 400)["message"] == "only user, team and service account keys can be rotated"
        listed = (await gw.client.get(f"{API}/orgs/{org['id']}/keys", headers=admin(gw))).json()["data"]
        assert session_id not in {k["id"] for k in listed}

        # the key exists, but not in the organisation named in the path
        other = await default_org(gw)
        error_of(
            await gw.client.post(f"{API}/orgs/{other}/keys/{short['id']}/rotate", headers=admin(gw)), 404
        )


async def test_list_is_paginated(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        user = await add_user(gw, org["id"], "u@acme.test")
        made = [(await create_key(gw, org["id"], name=f"k{i}", user_id=user))["id"] for i in range(5)]
        seen = await pages(gw.client, f"{API}/orgs/{org['id']}/keys", admin(gw), limit=2)
        assert [len(p) for p in seen] == [2, 2, 1]
        assert [k["id"] for p in seen for k in p] == made


async def test_use_cases_work_for_the_cli_as_system_actor(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        user = await add_user(gw, org["id"], "u@acme.test")
        services = gw.state.services
        created = await keys.create(
            services, Actor.system(), org["id"], KeyCreate(name="cli", key_type="user_key", user_id=user)
        )
        assert created.created_by is None
        assert created.user_id == user
        assert await chat(gw, created.key) == 200
        rotation = await keys.rotate(services, Actor.system(), org["id"], created.id)
        assert await chat(gw, rotation.new_key.key) == 200
        await keys.delete(services, Actor.system(), org["id"], rotation.new_key.id)
        assert await chat(gw, rotation.new_key.key) == 401
        assert created.key not in repr(created)


async def test_a_deleted_users_keys_stop_working(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await create_org(gw, "acme")
        user = await add_user(gw, org["id"], "u@acme.test")
        key = await user_key(gw, org["id"], user)
        assert await chat(gw, key) == 200
        await gw.state.services.store.run(
            lambda conn: conn.execute(
                t.users.update().where(t.users.c.id == user).values(deleted_at=utcnow())
            )
        )
        await reload_keys(gw.state.services)
        assert await chat(gw, key) == 401
        # and no new key can be made for them
        response = await gw.client.post(
            f"{API}/orgs/{org['id']}/keys",
            headers=admin(gw),
            json={"name": "x", "key_type": "user_key", "user_id": user},
        )
        error_of(response, 400)


@pytest.mark.postgres
async def test_lifecycle_on_postgresql(pg_dsn: str) -> None:
    """The same transactions on PostgreSQL: conflicts, tombstones, key life and org suspension."""
    async with open_gateway(pg_dsn, driver="postgres") as gw:
        org = await create_org(gw, "acme")
        dup = await gw.client.post(f"{API}/orgs", headers=admin(gw), json={"name": "Dup", "slug": "acme"})
        assert error_of(dup, 409)["message"] == "an organization with this slug already exists"
        team = await create_team(gw, org["id"], "red")
        assert (
            await gw.client.delete(f"{API}/orgs/{org['id']}/teams/{team['id']}", headers=admin(gw))
        ).status_code == 204
        await create_team(gw, org["id"], "red")

        user = await add_user(gw, org["id"], "u@acme.test")
        created = await create_key(gw, org["id"], user_id=user)
        assert await chat(gw, created["key"]) == 200
        rotated = await gw.client.post(
            f"{API}/orgs/{org['id']}/keys/{created['id']}/rotate", headers=admin(gw)
        )
        new_key = rotated.json()["new_key"]["key"]
        assert await chat(gw, new_key) == 200
        assert await chat(gw, created["key"]) == 200

        assert (
            await gw.client.post(f"{API}/orgs/{org['id']}/deactivate", headers=admin(gw))
        ).status_code == 200
        assert await chat(gw, new_key) == 401
        assert (
            await gw.client.post(f"{API}/orgs/{org['id']}/reactivate", headers=admin(gw))
        ).status_code == 200
        assert await chat(gw, new_key) == 200
        new_id_ = rotated.json()["new_key"]["id"]
        assert (
            await gw.client.delete(f"{API}/orgs/{org['id']}/keys/{new_id_}", headers=admin(gw))
        ).status_code == 204
        assert await chat(gw, new_key) == 401
