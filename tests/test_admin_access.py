"""Model-access allowlists and scoped aliases through the admin API, seen by the proxy and ``/v1/models`` at
once: empty allows all, every non-empty level must allow, a fallback never reaches a model the key may not
use, and a team alias beats an org alias.

Who may read and replace which list is tested on the use cases directly (``tests/admin_fixtures.py``); every
route's statuses for every kind of caller go through HTTP in tests/test_rbac.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.admin_fixtures import AdminWorld
from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway
from voidllm.admin import access, models
from voidllm.auth.loader import load_live_key
from voidllm.crypto import KeyKind, generate_key, key_hint
from voidllm.errors import NotFoundError, PermissionDeniedError
from voidllm.identity import KeyIdentity
from voidllm.store import tables as t
from voidllm.store.ids import new_id
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream


def bootstrap_org(gw: RunningGateway) -> str:
    return gw.state.keys.authenticate(f"Bearer {gw.api_key()}").org_id


async def make_team(gw: RunningGateway, org_id: str | None = None) -> str:
    team_id, slug = new_id(), f"team-{uuid.uuid4().hex[:8]}"
    values = {"id": team_id, "org_id": org_id or bootstrap_org(gw), "name": slug, "slug": slug}
    await gw.state.store.run(lambda conn: conn.execute(sa.insert(t.teams).values(**values)))
    return team_id


async def make_org(gw: RunningGateway) -> str:
    org_id, slug = new_id(), f"org-{uuid.uuid4().hex[:8]}"
    await gw.state.store.run(
        lambda conn: conn.execute(sa.insert(t.organizations).values(id=org_id, name=slug, slug=slug))
    )
    return org_id


async def make_key(
    gw: RunningGateway,
    *,
    org_role: str = "member",
    team_id: str | None = None,
    team_role: str = "member",
    team_key: bool = False,
    org_id: str | None = None,
) -> tuple[str, KeyIdentity]:
    """A live key written straight into the store and the key cache: a user key of a fresh user with
    ``org_role`` (and ``team_role`` in ``team_id``), or a team key of ``team_id``."""
    org_id = org_id or bootstrap_org(gw)
    kind = KeyKind.TEAM if team_key else KeyKind.USER
    plaintext = generate_key(kind)
    key_id, user_id = new_id(), None if team_key else new_id()

    def write(conn: sa.Connection) -> tuple[str, KeyIdentity] | None:
        if user_id is not None:
            conn.execute(sa.insert(t.users).values(id=user_id, email=f"{user_id}@example.test"))
            conn.execute(sa.insert(t.org_memberships).values(org_id=org_id, user_id=user_id, role=org_role))
            if team_id is not None:
                conn.execute(
                    sa.insert(t.team_memberships).values(team_id=team_id, user_id=user_id, role=team_role)
                )
        conn.execute(
            sa.insert(t.api_keys).values(
                id=key_id,
                key_hash=gw.state.services.keyring.hash_key(plaintext),
                key_hint=key_hint(plaintext),
                key_type=kind.key_type,
                name="test key",
                org_id=org_id,
                team_id=team_id,
                user_id=user_id,
            )
        )
        return load_live_key(conn, key_id, now=datetime.now(UTC))

    loaded = await gw.state.store.run(write)
    assert loaded is not None
    gw.state.keys.put(*loaded)
    return plaintext, loaded[1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def chat(gw: RunningGateway, key: str, model: str) -> httpx.Response:
    return await gw.client.post(
        "/v1/chat/completions",
        headers=bearer(key),
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
    )


async def visible(gw: RunningGateway, key: str) -> dict[str, list[str]]:
    response = await gw.client.get("/v1/models", headers=bearer(key))
    assert response.status_code == 200
    return {entry["id"]: entry["aliases"] for entry in response.json()["data"]}


def three_models(mock: MockUpstream) -> str:
    return "models:" + "".join(model_yaml(name, mock.base_url) for name in ("a", "b", "c"))


async def test_allowlists_at_every_level_and_the_most_restrictive_wins(db_target: tuple[str, str]) -> None:
    driver, dsn = db_target
    async with (
        open_mock_upstream() as mock,
        run_gateway(make_config(dsn, three_models(mock), driver=driver)) as gw,
    ):
        admin = bearer(gw.api_key())
        org_id = bootstrap_org(gw)
        team_id = await make_team(gw)
        key, identity = await make_key(gw, team_id=team_id)
        assert await visible(gw, key) == {"a": [], "b": [], "c": []}  # nothing listed: everything allowed

        org_access = f"/api/v1/orgs/{org_id}/model-access"
        put = await gw.client.put(org_access, headers=admin, json={"models": ["b", "a", "a"]})
        assert (put.status_code, put.json()) == (200, {"models": ["a", "b"]})
        assert (await gw.client.get(org_access, headers=admin)).json() == {"models": ["a", "b"]}
        assert list(await visible(gw, key)) == ["a", "b"]
        denied = await chat(gw, key, "c")
        assert (denied.status_code, denied.json()["error"]["code"]) == (403, "model_access_denied")
        hidden = await gw.client.get("/v1/models/c", headers=bearer(key))
        assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "model_not_found")
        assert (await gw.client.get("/v1/models/a", headers=bearer(key))).json()["id"] == "a"

        team_access = f"/api/v1/orgs/{org_id}/teams/{team_id}/model-access"
        assert (
            await gw.client.put(team_access, headers=admin, json={"models": ["b", "c"]})
        ).status_code == 200
        assert list(await visible(gw, key)) == ["b"]  # org allows a, b; team b, c: only b passes both
        key_access = f"/api/v1/orgs/{org_id}/keys/{identity.key_id}/model-access"
        assert (await gw.client.put(key_access, headers=admin, json={"models": ["a"]})).status_code == 200
        assert list(await visible(gw, key)) == []
        assert (await chat(gw, key, "b")).status_code == 403

        for path in (key_access, team_access, org_access):  # empty lists allow everything again
            assert (await gw.client.put(path, headers=admin, json={"models": []})).json() == {"models": []}
        assert list(await visible(gw, key)) == ["a", "b", "c"]
        assert (await chat(gw, key, "c")).status_code == 200

        unknown = await gw.client.put(org_access, headers=admin, json={"models": ["a", "zzz"]})
        assert unknown.status_code == 400
        assert unknown.json()["error"]["message"] == "models[1] is not the name of a known model"
        missing_key = f"/api/v1/orgs/{org_id}/keys/{new_id()}/model-access"
        assert (await gw.client.get(missing_key, headers=admin)).status_code == 404


async def test_who_may_manage_which_allowlist(admin_world: AdminWorld) -> None:
    world, services = admin_world, admin_world.services
    model = models.ModelCreate(name="a", provider="openai", base_url="http://127.0.0.1:9/v1")
    await models.create(services, world.system, model)
    org_id = await world.org("acme")
    mine, other = (await world.team(org_id, "mine")).id, (await world.team(org_id, "other")).id
    team_admin = world.actor(await world.key(org_id, key_type="team_key", team_id=mine))
    member = await world.user_actor(org_id, await world.user(org_id, "m@acme.test"))
    org_admin = await world.user_actor(org_id, await world.user(org_id, "boss@acme.test", role="org_admin"))
    body = access.ModelAccess(models=["a"])
    org_list, mine_list = access.AccessScope(org_id), access.AccessScope(org_id, team_id=mine)
    other_list = access.AccessScope(org_id, team_id=other)

    # a team's list is set by org admins (issue 12): its team admin reads it, cannot replace it
    assert (await access.read_model_access(services, team_admin, mine_list)).models == []
    with pytest.raises(PermissionDeniedError):
        await access.replace_model_access(services, team_admin, mine_list, body)
    with pytest.raises(PermissionDeniedError):
        await access.replace_model_access(services, team_admin, other_list, body)
    with pytest.raises(PermissionDeniedError):
        await access.replace_model_access(services, team_admin, org_list, body)
    # an organisation's list is set by system admins: its org admin reads it, cannot replace it
    assert (await access.read_model_access(services, org_admin, org_list)).models == []
    with pytest.raises(PermissionDeniedError):
        await access.replace_model_access(services, org_admin, org_list, body)
    # a member outside the team does not learn that it exists (docs/reference/behaviour.md 1.6: team
    # routes answer 404)
    with pytest.raises(NotFoundError, match=r"^team not found$"):
        await access.read_model_access(services, member, mine_list)
    assert (await access.replace_model_access(services, org_admin, other_list, body)).models == ["a"]

    foreign_list = access.AccessScope(await world.org("foreign"))
    with pytest.raises(PermissionDeniedError):
        await access.read_model_access(services, org_admin, foreign_list)
    assert (await access.read_model_access(services, world.system, foreign_list)).models == []


async def test_a_fallback_the_key_may_not_use_is_never_called(sqlite_dsn: str) -> None:
    async with open_mock_upstream(Behaviour(status=500)) as broken, open_mock_upstream() as backup:
        yaml = (
            "models:"
            + model_yaml("primary", broken.base_url, extra="    fallback: spare\n")
            + model_yaml("spare", backup.base_url)
        )
        async with run_gateway(make_config(sqlite_dsn, yaml)) as gw:
            allowed, identity = await make_key(gw)
            assert (await chat(gw, allowed, "primary")).status_code == 200
            assert len(backup.requests) == 1
            path = f"/api/v1/orgs/{identity.org_id}/keys/{identity.key_id}/model-access"
            put = await gw.client.put(path, headers=bearer(gw.api_key()), json={"models": ["primary"]})
            assert put.status_code == 200
            blocked = await chat(gw, allowed, "primary")
            assert blocked.status_code == 500  # the primary's own answer: the fallback is not revealed
            assert len(backup.requests) == 1
            assert len(broken.requests) == 2


async def test_team_aliases_beat_org_aliases(db_target: tuple[str, str]) -> None:
    driver, dsn = db_target
    async with (
        open_mock_upstream() as mock,
        run_gateway(make_config(dsn, three_models(mock), driver=driver)) as gw,
    ):
        admin = bearer(gw.api_key())
        org_id = bootstrap_org(gw)
        team_id = await make_team(gw)
        team_key, _ = await make_key(gw, team_id=team_id, team_key=True)
        org_key, _ = await make_key(gw)
        org_aliases = f"/api/v1/orgs/{org_id}/model-aliases"
        team_aliases = f"/api/v1/orgs/{org_id}/teams/{team_id}/model-aliases"

        created = await gw.client.post(org_aliases, headers=admin, json={"alias": "fast", "model_name": "a"})
        assert created.status_code == 201
        body: dict[str, Any] = created.json()
        assert (body["alias"], body["model_name"], body["scope_type"], body["team_id"]) == (
            "fast",
            "a",
            "org",
            None,
        )
        team_alias = await gw.client.post(
            team_aliases, headers=admin, json={"alias": "fast", "model_name": "b"}
        )
        assert team_alias.status_code == 201
        assert team_alias.json()["scope_type"] == "team"

        assert (await chat(gw, org_key, "fast")).status_code == 200
        assert mock.requests[-1].json()["model"] == "a"
        assert (await chat(gw, team_key, "fast")).status_code == 200
        assert mock.requests[-1].json()["model"] == "b"
        assert (await visible(gw, team_key))["b"] == ["fast"]
        assert (await visible(gw, org_key))["a"] == ["fast"]
        assert (await gw.client.get("/v1/models/fast", headers=bearer(team_key))).json()["id"] == "b"

        listed = (await gw.client.get(team_aliases, headers=admin)).json()
        assert [(a["alias"], a["model_name"]) for a in listed["data"]] == [("fast", "b")]
        assert [a["alias"] for a in (await gw.client.get(org_aliases, headers=admin)).json()["data"]] == [
            "fast"
        ]

        for payload, status in (
            ({"alias": "fast", "model_name": "c"}, 409),
            ({"alias": "quick", "model_name": "nope"}, 400),
            ({"alias": "c", "model_name": "a"}, 400),
            ({"alias": "x:deleted:1", "model_name": "a"}, 400),
        ):
            assert (await gw.client.post(org_aliases, headers=admin, json=payload)).status_code == status

        alias_id = team_alias.json()["id"]
        assert (
            await gw.client.delete(f"{org_aliases}/{alias_id}", headers=admin)
        ).status_code == 404  # wrong scope
        assert (await gw.client.delete(f"{team_aliases}/{alias_id}", headers=admin)).status_code == 204
        assert (await chat(gw, team_key, "fast")).status_code == 200
        assert mock.requests[-1].json()["model"] == "a"
        member, _ = await make_key(gw)
        assert (await gw.client.get(org_aliases, headers=bearer(member))).status_code == 403
