"""Per-scope policies through the admin API (issue 22 point 2): storage, strict documents (400 naming the
path), the effective merge shown for teams and keys, who may read and change each scope's, and policies
deleted with their scope (a rotated key's successor gets a copy)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.admin_tenancy import (
    API,
    add_user,
    bearer,
    create_key,
    create_org,
    create_team,
    default_org,
    error_of,
    join_team,
    open_gateway,
    user_key,
)
from tests.admin_tenancy import admin as admin_headers
from tests.gateway import RunningGateway
from voidllm.store import tables as t

ORG_POLICY = {
    "params": {"deny": ["logprobs"], "bounds": {"max_tokens": {"max": 1000}}},
    "allowed_origins": ["https://a.example", "https://b.example"],
}
TEAM_POLICY = {
    "params": {"allow": ["messages", "max_tokens", "stream"], "bounds": {"max_tokens": {"max": 500}}}
}
KEY_POLICY = {
    "params": {"deny": ["tools"]},
    "required_headers": [{"name": "x-app"}],
    "allowed_origins": ["https://b.example"],
}
GUARD = {"detectors": {"email": "redact"}, "responses": False}


async def policy_rows(gw: RunningGateway) -> set[tuple[str, str]]:
    def read(conn: sa.Connection) -> set[tuple[str, str]]:
        return {(r.scope_type, r.scope_id) for r in conn.execute(sa.select(t.policies))}

    result: set[tuple[str, str]] = await gw.state.services.store.run(read)
    return result


async def put(
    gw: RunningGateway, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    return await gw.client.put(f"{API}{path}", headers=headers or admin_headers(gw), json=body)


async def test_store_show_merge_and_remove_policies(db_target: tuple[str, str]) -> None:
    driver, dsn = db_target
    async with open_gateway(dsn, driver) as gw:
        org = await default_org(gw)
        team = await create_team(gw, org, "core")
        me = (await gw.client.get(f"{API}/me", headers=admin_headers(gw))).json()["id"]
        key = await create_key(gw, org, user_id=me, team_id=team["id"])
        empty = await gw.client.get(f"{API}/orgs/{org}/keys/{key['id']}/policy", headers=admin_headers(gw))
        assert empty.status_code == 200
        assert empty.json()["request"] is None
        assert empty.json()["guard"] is None
        assert empty.json()["effective"] == {"request": None, "guard": None}

        stored = await put(gw, f"/orgs/{org}/policy", {"request": ORG_POLICY, "guard": GUARD})
        assert stored.status_code == 200, stored.text
        body = stored.json()
        assert (body["scope_type"], body["scope_id"], body["request"], body["guard"]) == (
            "org",
            org,
            ORG_POLICY,
            GUARD,
        )
        assert body["updated_at"]
        assert body["updated_by"] == me
        assert (
            await put(gw, f"/orgs/{org}/teams/{team['id']}/policy", {"request": TEAM_POLICY})
        ).status_code == 200
        shown = await put(gw, f"/orgs/{org}/keys/{key['id']}/policy", {"request": KEY_POLICY, "guard": None})
        assert shown.status_code == 200, shown.text
        effective = shown.json()["effective"]
        assert effective["request"] == {
            "params": {
                "allow": ["max_tokens", "messages", "stream"],
                "deny": ["logprobs", "tools"],
                "bounds": {"max_tokens": {"max": 500}},
            },
            "required_headers": [{"name": "x-app"}],
            "allowed_origins": ["https://b.example"],
        }
        assert effective["guard"] == {"detectors": {"email": "redact"}, "responses": False}

        # the cached identity carries the merged policy at once
        identity = next(i for i in gw.state.keys._by_hash.values() if i.key_id == key["id"])
        assert identity.policy is not None
        assert identity.policy.deny == {"logprobs", "tools"}
        assert identity.guard is not None
        assert identity.guard.detectors["email"].label == "redact"
        # the union over every key (the bootstrap admin's key has the organisation's alone)
        assert gw.state.keys.allowed_origins() == {"https://a.example", "https://b.example"}

        gone = await gw.client.delete(f"{API}/orgs/{org}/keys/{key['id']}/policy", headers=admin_headers(gw))
        assert gone.status_code == 204
        again = await gw.client.get(f"{API}/orgs/{org}/keys/{key['id']}/policy", headers=admin_headers(gw))
        assert again.json()["request"] is None
        assert again.json()["effective"]["request"]["params"]["deny"] == ["logprobs"]
        # both parts null removes the row
        assert (
            await put(gw, f"/orgs/{org}/teams/{team['id']}/policy", {"request": None, "guard": None})
        ).status_code == 200
        assert await policy_rows(gw) == {("org", org)}


async def test_invalid_documents_are_a_400_naming_the_field(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = await default_org(gw)
        cases: list[tuple[dict[str, Any], str]] = [
            (
                {"request": {"params": {"bounds": {"max_tokens": {"max": "lots"}}}}},
                "request.params.bounds.max_tokens.max",
            ),
            ({"request": {"params": {"deny": ["logprobs", 7]}}}, "request.params.deny[1]"),
            ({"request": {"allowed_origins": ["*"]}}, "request.allowed_origins[0]"),
            ({"request": {"required_headers": [{"name": "x-api-key"}]}}, "request.required_headers[0].name"),
            ({"guard": {"detectors": {"emial": "redact"}}}, "guard.detectors.emial"),
            ({"guard": {"detectors": {"email": "shred"}}}, "guard.detectors.email"),
        ]
        for body, field in cases:
            error = error_of(await put(gw, f"/orgs/{org}/policy", body), 400)
            assert error["field"] == field, error
            assert error["param"] == field
        unknown = error_of(await put(gw, f"/orgs/{org}/policy", {"requests": {}}), 400)
        assert unknown["field"] == "requests"
        wrong = error_of(await put(gw, f"/orgs/{org}/policy", {"request": ["deny"]}), 400)
        assert "request" in wrong["message"]
        assert await policy_rows(gw) == set()
        missing = await put(gw, "/models/0190aaaa-0000-7000-8000-000000000000/policy", {"request": {}})
        error_of(missing, 404)


async def test_who_may_read_and_change_policies(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = (await create_org(gw, "acme"))["id"]
        team = await create_team(gw, org, "core")
        oadmin = await add_user(gw, org, "oadmin@acme.io", role="org_admin")
        member = await add_user(gw, org, "member@acme.io")
        await join_team(gw, team["id"], member)
        oadmin_key = bearer(await user_key(gw, org, oadmin))
        member_key = await create_key(gw, org, user_id=member, team_id=team["id"])
        holder = bearer(member_key["key"])
        body: dict[str, Any] = {"request": {"params": {"deny": ["logprobs"]}}}

        # an organisation's policy: read by its org admins, set by system admins
        assert (await gw.client.get(f"{API}/orgs/{org}/policy", headers=oadmin_key)).status_code == 200
        error_of(await put(gw, f"/orgs/{org}/policy", body, oadmin_key), 403)
        # a team's: set by org admins, not by members
        assert (await put(gw, f"/orgs/{org}/teams/{team['id']}/policy", body, oadmin_key)).status_code == 200
        assert (
            await gw.client.get(f"{API}/orgs/{org}/teams/{team['id']}/policy", headers=holder)
        ).status_code == 403
        # a key's: set by the admins above it, read by its holder, never set by the holder
        key_path = f"/orgs/{org}/keys/{member_key['id']}/policy"
        error_of(await put(gw, key_path, body, holder), 403)
        seen = await gw.client.get(f"{API}{key_path}", headers=holder)
        assert seen.status_code == 200
        assert seen.json()["effective"]["request"]["params"]["deny"] == ["logprobs"]
        assert (await put(gw, key_path, body, oadmin_key)).status_code == 200
        # a model's: system admins only
        models = (await gw.client.get(f"{API}/models", headers=admin_headers(gw))).json()["data"]
        error_of(await put(gw, f"/models/{models[0]['id']}/policy", body, oadmin_key), 403)
        # another organisation's admin sees nothing of it
        other = (await create_org(gw, "other"))["id"]
        oadmin_b = await add_user(gw, other, "b@other.io", role="org_admin")
        foreign = bearer(await user_key(gw, other, oadmin_b))
        error_of(await gw.client.get(f"{API}/orgs/{org}/policy", headers=foreign), 403)
        assert (await gw.client.get(f"{API}{key_path}", headers=foreign)).status_code in (403, 404)


async def test_policies_go_with_their_scope_and_follow_a_rotation(db_target: tuple[str, str]) -> None:
    driver, dsn = db_target
    async with open_gateway(dsn, driver) as gw:
        sys = admin_headers(gw)
        org = (await create_org(gw, "acme"))["id"]
        team = await create_team(gw, org, "core")
        user = await add_user(gw, org, "u@acme.io")
        await join_team(gw, team["id"], user)
        loose = await create_key(gw, org, user_id=user)
        bound = await create_key(gw, org, user_id=user, team_id=team["id"])
        doomed = await create_key(gw, org, user_id=user)
        body = {"request": {"params": {"deny": ["logprobs"]}}}
        for path in (
            f"/orgs/{org}/policy",
            f"/orgs/{org}/teams/{team['id']}/policy",
            f"/orgs/{org}/keys/{loose['id']}/policy",
            f"/orgs/{org}/keys/{bound['id']}/policy",
            f"/orgs/{org}/keys/{doomed['id']}/policy",
        ):
            assert (await put(gw, path, body)).status_code == 200, path
        created = await gw.client.post(
            f"{API}/models",
            headers=sys,
            json={"name": "m2", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"},
        )
        model = created.json()["id"]
        assert (await put(gw, f"/models/{model}/policy", body)).status_code == 200

        rotated = await gw.client.post(f"{API}/orgs/{org}/keys/{loose['id']}/rotate", headers=sys)
        successor = rotated.json()["new_key"]["id"]
        assert ("key", successor) in await policy_rows(gw)

        assert (
            await gw.client.delete(f"{API}/orgs/{org}/keys/{doomed['id']}", headers=sys)
        ).status_code == 204
        assert ("key", doomed["id"]) not in await policy_rows(gw)
        assert (
            await gw.client.delete(f"{API}/orgs/{org}/teams/{team['id']}", headers=sys)
        ).status_code == 204
        rows = await policy_rows(gw)
        assert ("team", team["id"]) not in rows
        assert ("key", bound["id"]) not in rows
        assert (await gw.client.delete(f"{API}/models/{model}", headers=sys)).status_code == 204
        assert ("model", model) not in await policy_rows(gw)
        # a deleted user's keys take their policies with them
        leaver = await add_user(gw, org, "leaver@acme.io")
        leavers = await create_key(gw, org, user_id=leaver)
        assert (await put(gw, f"/orgs/{org}/keys/{leavers['id']}/policy", body)).status_code == 200
        assert (await gw.client.delete(f"{API}/users/{leaver}", headers=sys)).status_code == 204
        assert ("key", leavers["id"]) not in await policy_rows(gw)
        assert (await gw.client.delete(f"{API}/orgs/{org}", headers=sys)).status_code == 204
        assert await policy_rows(gw) == set()
