"""API keys: create (shown once, works at once), list/get never show the key, patch reaches the cache,
delete revokes at once, rotation with the 24 h grace, expiry, and every escalation attempt by members, team
admins and other organisations' admins.

Who may make, see, change, rotate and revoke which key, pagination and the CLI's system actor are tested on
:mod:`voidllm.admin.keys` directly (``tests/admin_fixtures.py``); a real gateway keeps the HTTP slice and
the effects on the proxy (a key works at once, a patch reaches the cache, a revoked, expired or deleted
user's key stops working)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

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
    user_key,
)
from voidllm.admin import keys
from voidllm.admin.context import Actor
from voidllm.admin.keys import KeyCreate, KeyUpdate
from voidllm.admin.pages import PageQuery
from voidllm.admin.tenancy import reload_keys
from voidllm.crypto import KeyKind, generate_key
from voidllm.errors import AuthenticationError, BadRequestError, NotFoundError, PermissionDeniedError
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


async def make(world: AdminWorld, actor: Actor, org_id: str, **fields: Any) -> keys.KeyCreated:
    return await keys.create(world.services, actor, org_id, KeyCreate(**{"name": "x", **fields}))


async def visible(world: AdminWorld, actor: Actor, org_id: str, limit: int = 2) -> list[list[str]]:
    """The ids on every page of the keys ``actor`` may list, following ``next_cursor``."""
    seen: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await keys.list_keys(world.services, actor, org_id, PageQuery(limit=limit, cursor=cursor))
        seen.append([k.id for k in page.data])
        if not page.has_more:
            return seen
        cursor = page.next_cursor


async def test_member_escalations_are_refused(admin_world: AdminWorld) -> None:
    world = admin_world
    org, elsewhere = await world.org("acme"), await world.org("elsewhere")
    team, other_team = await world.team(org, "red"), await world.team(org, "blue")
    member, peer = await world.user(org, "m@acme.test"), await world.user(org, "p@acme.test")
    await world.join_team(team.id, member)
    actor = await world.user_actor(org, member)

    with pytest.raises(PermissionDeniedError):
        await make(world, actor, org, key_type="team_key", team_id=team.id)
    with pytest.raises(PermissionDeniedError):
        await make(world, actor, org, key_type="user_key", user_id=peer)
    with pytest.raises(PermissionDeniedError):
        await make(world, actor, org, key_type="user_key", team_id=other_team.id)
    with pytest.raises(PermissionDeniedError):  # another organisation's keys
        await make(world, actor, elsewhere, key_type="user_key")

    own = await make(world, actor, org, name="mine", key_type="user_key")
    assert (own.user_id, own.created_by) == (member, member)
    in_team = await make(world, actor, org, name="t", key_type="user_key", team_id=team.id)
    assert in_team.team_id == team.id

    # an org admin cannot mint a key acting for a system admin
    boss = await world.user_actor(org, await world.user(org, "boss@acme.test", role="org_admin"))
    root = await world.user(org, "root@acme.test", system_admin=True)
    with pytest.raises(PermissionDeniedError):
        await make(world, boss, org, key_type="user_key", user_id=root)


async def test_visibility_of_list_get_patch_delete(admin_world: AdminWorld) -> None:
    world, services = admin_world, admin_world.services
    org = await world.org("acme")
    team = await world.team(org, "red")
    member = await world.user(org, "m@acme.test")
    lead = await world.user(org, "lead@acme.test")
    boss = await world.user(org, "boss@acme.test", role="org_admin")
    await world.join_team(team.id, member)
    await world.join_team(team.id, lead, role="team_admin")
    member_key = await world.key(org, user_id=member)
    member_team_key = await world.key(org, user_id=member, team_id=team.id)
    lead_key = await world.key(org, user_id=lead)
    team_key = await world.key(org, key_type="team_key", team_id=team.id)
    boss_key = await world.key(org, user_id=boss)

    async def ids(key: keys.KeyCreated) -> set[str]:
        return {key_id for page in await visible(world, world.actor(key), org) for key_id in page}

    assert await ids(member_key) == {member_key.id, member_team_key.id}
    assert await ids(lead_key) == {lead_key.id, member_team_key.id, team_key.id}
    assert await ids(team_key) == {member_team_key.id, team_key.id}
    everything = {k.id for k in (member_key, member_team_key, lead_key, team_key, boss_key)}
    assert await ids(boss_key) == everything

    # a member cannot read, change, rotate or revoke someone else's key: it does not exist for them
    as_member = world.actor(member_key)
    with pytest.raises(NotFoundError):
        await keys.get(services, as_member, org, lead_key.id)
    with pytest.raises(NotFoundError):
        await keys.update(services, as_member, org, lead_key.id, KeyUpdate(name="x"))
    with pytest.raises(NotFoundError):
        await keys.rotate(services, as_member, org, lead_key.id)
    with pytest.raises(NotFoundError):
        await keys.delete(services, as_member, org, lead_key.id)
    assert world.actor(lead_key).identity is not None  # still works
    # the team admin manages the team's keys
    as_lead = world.actor(lead_key)
    renamed = await keys.update(services, as_lead, org, member_team_key.id, KeyUpdate(name="renamed"))
    assert renamed.name == "renamed"
    # ... but cannot obtain a key acting as the member by rotating theirs; the team key they may rotate
    for caller in (lead_key, team_key):
        with pytest.raises(PermissionDeniedError):
            await keys.rotate(services, world.actor(caller), org, member_team_key.id)
    own_team = await keys.rotate(services, as_lead, org, team_key.id)
    assert own_team.new_key.key.startswith("vl_tk_")

    # another organisation's admin sees nothing here
    elsewhere = await world.org("elsewhere")
    stranger = await world.user_actor(elsewhere, await world.user(elsewhere, "s@else.test", role="org_admin"))
    with pytest.raises(PermissionDeniedError):
        await keys.list_keys(services, stranger, org, PageQuery())
    with pytest.raises(NotFoundError):
        await keys.get(services, stranger, elsewhere, lead_key.id)
    with pytest.raises(PermissionDeniedError):
        await keys.delete(services, stranger, org, lead_key.id)


async def test_rotation_keeps_a_shorter_expiry_and_refuses_sessions_and_other_orgs(
    admin_world: AdminWorld,
) -> None:
    world, services = admin_world, admin_world.services
    org = await world.org("acme")
    user = await world.user(org, "u@acme.test")
    soon = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    short = await world.key(org, user_id=user, expires_at=soon)
    rotated = await keys.rotate(services, world.system, org, short.id)
    assert (rotated.old_key.expires_at, rotated.new_key.expires_at) == (soon, soon)

    # a login session key of the user: visible to the user, never rotatable, never listed
    session_id = new_id()
    session = generate_key(KeyKind.SESSION)
    now = utcnow()
    await world.store.run(
        lambda conn: conn.execute(
            t.api_keys.insert().values(
                id=session_id,
                key_hash=services.keyring.hash_key(session),
                key_hint="vl_sk_...",
                name="session",
                key_type="session_key",
                org_id=org,
                user_id=user,
                created_at=now,
                updated_at=now,
            )
        )
    )
    with pytest.raises(BadRequestError, match=r"^only user, team and service account keys can be rotated$"):
        await keys.rotate(services, world.system, org, session_id)
    listed = await keys.list_keys(services, world.system, org, PageQuery())
    assert session_id not in {k.id for k in listed.data}

    # the key exists, but not in the organisation named in the path
    other = await world.org("other")
    with pytest.raises(NotFoundError):
        await keys.rotate(services, world.system, other, short.id)


async def test_list_is_paginated(admin_world: AdminWorld) -> None:
    world = admin_world
    org = await world.org("acme")
    user = await world.user(org, "u@acme.test")
    made = [(await world.key(org, name=f"k{i}", user_id=user)).id for i in range(5)]
    seen = await visible(world, world.system, org)
    assert [len(page) for page in seen] == [2, 2, 1]
    assert [key_id for page in seen for key_id in page] == made


async def test_use_cases_work_for_the_cli_as_system_actor(admin_world: AdminWorld) -> None:
    """A key made, rotated and revoked by the system actor authenticates (or stops) at once, as the proxy
    sees it: the key cache."""
    world, services = admin_world, admin_world.services
    org = await world.org("acme")
    user = await world.user(org, "u@acme.test")
    created = await keys.create(
        services, Actor.system(), org, KeyCreate(name="cli", key_type="user_key", user_id=user)
    )
    assert created.created_by is None
    assert created.user_id == user
    assert world.actor(created).user_id == user
    rotation = await keys.rotate(services, Actor.system(), org, created.id)
    assert world.actor(rotation.new_key).user_id == user
    await keys.delete(services, Actor.system(), org, rotation.new_key.id)
    with pytest.raises(AuthenticationError):
        world.actor(rotation.new_key)
    assert created.key not in repr(created)
