"""Issue 6 point 2: roles × routes, table-driven.

Six callers act on the resources of organisation A (and its team T):

==========  ===================================================================
sys         the bootstrap system administrator
oadmin      a user who is org admin of A
tadmin      a user who is a member of A and the admin of team T (by membership)
tkey        the team key of T (role team_admin)
member      a user who is a plain member of A and of T
foreign     a user who is org admin of another organisation B
==========  ===================================================================

:data:`RULES` names, for every declared route, who may act. Every caller outside that set must be refused
with 403 or 404 (and, for a mutation, nothing may change: a wrongly allowed request would answer 2xx).
Allowed callers must get 200 from every read route; allowed mutations are exercised by the functional tests
of each area. A route missing from the table fails :func:`test_every_route_is_classified`, so a new route
cannot skip this review.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from tests.admin_tenancy import (
    API,
    add_user,
    admin,
    bearer,
    create_key,
    create_org,
    create_team,
    default_org,
    join_team,
    open_gateway,
    user_key,
)
from tests.gateway import RunningGateway
from voidllm.web.api import api

CALLERS = ("sys", "oadmin", "tadmin", "tkey", "member", "foreign")
EVERYONE_IN_A = frozenset({"sys", "oadmin", "tadmin", "tkey", "member"})
SYS = frozenset({"sys"})
ORG_ADMINS = frozenset({"sys", "oadmin"})
TEAM_ADMINS = frozenset({"sys", "oadmin", "tadmin", "tkey"})
ALL = frozenset(CALLERS)


@attrs.frozen
class Rule:
    allowed: frozenset[str]
    body: dict[str, Any] | None = None
    query: str = ""


SELF = "self"  # routes acting on the caller's own account or session: nothing to escalate to
PUBLIC = "public"

LIMITS = {"requests_per_minute": 1}
MCP_SERVER = {"name": "Escalated", "alias": "escalated", "url": "https://mcp.example.com/mcp"}
USAGE_RANGE = "?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&group_by=day"

RULES: dict[tuple[str, str], Rule | str] = {
    # self and public
    ("GET", "/me"): SELF,
    ("GET", "/me/available-models"): SELF,
    ("POST", "/me/password"): SELF,
    ("GET", "/auth/sessions"): SELF,
    ("DELETE", "/auth/sessions/<session_id>"): SELF,
    ("POST", "/auth/logout"): SELF,
    ("POST", "/auth/login"): PUBLIC,
    ("GET", "/auth/providers"): PUBLIC,
    ("GET", "/invites/peek"): PUBLIC,
    ("POST", "/invites/redeem"): PUBLIC,
    # audit
    ("GET", "/audit-logs"): Rule(ORG_ADMINS, query="?org_id={org_id}"),
    # usage export and cost report
    ("GET", "/orgs/<org_id>/usage/export"): Rule(ORG_ADMINS, query="?from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z"),
    ("GET", "/orgs/<org_id>/usage/cost-report"): Rule(
        ORG_ADMINS, query="?from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z"),
    # models and deployments: system administrators only, except health
    ("GET", "/models/health"): Rule(ALL),
    ("POST", "/models/test-connection"): Rule(SYS, {"provider": "openai", "base_url": "http://127.0.0.1:9/v1"}),
    ("GET", "/models"): Rule(SYS),
    ("POST", "/models"): Rule(SYS, {"name": "escalated", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"}),
    ("GET", "/models/<model_id>"): Rule(SYS),
    ("PATCH", "/models/<model_id>"): Rule(SYS, {"input_price_per_1m": 9.0}),
    ("DELETE", "/models/<model_id>"): Rule(SYS),
    ("PATCH", "/models/<model_id>/activate"): Rule(SYS),
    ("PATCH", "/models/<model_id>/deactivate"): Rule(SYS),
    ("GET", "/models/<model_id>/deployments"): Rule(SYS),
    ("POST", "/models/<model_id>/deployments"): Rule(
        SYS, {"name": "escalated", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"}),
    ("GET", "/models/<model_id>/deployments/<deployment_id>"): Rule(SYS),
    ("PATCH", "/models/<model_id>/deployments/<deployment_id>"): Rule(SYS, {"weight": 7}),
    ("DELETE", "/models/<model_id>/deployments/<deployment_id>"): Rule(SYS),
    # usage analytics, MCP usage and the dashboard
    ("GET", "/usage"): Rule(SYS, query=USAGE_RANGE),
    ("GET", "/orgs/<org_id>/usage"): Rule(ORG_ADMINS, query=USAGE_RANGE),
    ("GET", "/usage/me"): Rule(ALL, query=USAGE_RANGE),  # each their own
    ("GET", "/mcp-usage"): Rule(SYS, query=USAGE_RANGE),
    ("GET", "/orgs/<org_id>/mcp-usage"): Rule(ORG_ADMINS, query=USAGE_RANGE),
    ("GET", "/dashboard/stats"): Rule(ALL),  # each within their own scope
    # organisations
    ("GET", "/orgs"): Rule(ORG_ADMINS | {"foreign"}),  # each org admin lists their own organisation
    ("POST", "/orgs"): Rule(SYS, {"name": "Escalated", "slug": "escalated"}),
    ("GET", "/orgs/<org_id>"): Rule(ORG_ADMINS),
    ("PATCH", "/orgs/<org_id>"): Rule(ORG_ADMINS, LIMITS),
    ("DELETE", "/orgs/<org_id>"): Rule(SYS),
    ("POST", "/orgs/<org_id>/deactivate"): Rule(SYS),
    ("POST", "/orgs/<org_id>/reactivate"): Rule(SYS),
    ("GET", "/orgs/<org_id>/members"): Rule(ORG_ADMINS),
    ("POST", "/orgs/<org_id>/members"): Rule(ORG_ADMINS, {"user_id": "{outsider_id}", "role": "org_admin"}),
    ("GET", "/orgs/<org_id>/members/<membership_id>"): Rule(ORG_ADMINS),
    ("PATCH", "/orgs/<org_id>/members/<membership_id>"): Rule(ORG_ADMINS, {"role": "org_admin"}),
    ("DELETE", "/orgs/<org_id>/members/<membership_id>"): Rule(ORG_ADMINS),
    ("GET", "/orgs/<org_id>/invites"): Rule(ORG_ADMINS),
    ("POST", "/orgs/<org_id>/invites"): Rule(ORG_ADMINS, {"email": "new@example.com", "role": "org_admin"}),
    ("DELETE", "/orgs/<org_id>/invites/<invite_id>"): Rule(ORG_ADMINS),
    ("GET", "/orgs/<org_id>/model-access"): Rule(ORG_ADMINS),
    ("PUT", "/orgs/<org_id>/model-access"): Rule(ORG_ADMINS, {"models": []}),
    ("GET", "/orgs/<org_id>/model-aliases"): Rule(ORG_ADMINS),
    ("POST", "/orgs/<org_id>/model-aliases"): Rule(ORG_ADMINS, {"alias": "escalated", "model_name": "gpt-test"}),
    ("DELETE", "/orgs/<org_id>/model-aliases/<alias_id>"): Rule(ORG_ADMINS),
    # teams
    ("GET", "/orgs/<org_id>/teams"): Rule(EVERYONE_IN_A),
    ("POST", "/orgs/<org_id>/teams"): Rule(ORG_ADMINS, {"name": "Escalated", "slug": "escalated"}),
    ("GET", "/orgs/<org_id>/teams/<team_id>"): Rule(EVERYONE_IN_A),
    ("PATCH", "/orgs/<org_id>/teams/<team_id>"): Rule(TEAM_ADMINS, LIMITS),
    ("DELETE", "/orgs/<org_id>/teams/<team_id>"): Rule(ORG_ADMINS),
    ("GET", "/orgs/<org_id>/teams/<team_id>/members"): Rule(TEAM_ADMINS),  # reference 1.6: >= team_admin
    ("POST", "/orgs/<org_id>/teams/<team_id>/members"): Rule(
        TEAM_ADMINS, {"user_id": "{loner_id}", "role": "team_admin"}),
    ("GET", "/orgs/<org_id>/teams/<team_id>/members/<membership_id>"): Rule(TEAM_ADMINS),
    ("PATCH", "/orgs/<org_id>/teams/<team_id>/members/<membership_id>"): Rule(TEAM_ADMINS, {"role": "team_admin"}),
    ("DELETE", "/orgs/<org_id>/teams/<team_id>/members/<membership_id>"): Rule(TEAM_ADMINS),
    ("GET", "/orgs/<org_id>/teams/<team_id>/model-access"): Rule(TEAM_ADMINS),
    ("PUT", "/orgs/<org_id>/teams/<team_id>/model-access"): Rule(TEAM_ADMINS, {"models": []}),
    ("GET", "/orgs/<org_id>/teams/<team_id>/model-aliases"): Rule(ORG_ADMINS),
    ("POST", "/orgs/<org_id>/teams/<team_id>/model-aliases"): Rule(
        ORG_ADMINS, {"alias": "escalated", "model_name": "gpt-test"}),
    ("DELETE", "/orgs/<org_id>/teams/<team_id>/model-aliases/<alias_id>"): Rule(ORG_ADMINS),
    # service accounts (of team T)
    ("GET", "/orgs/<org_id>/service-accounts"): Rule(EVERYONE_IN_A),  # each sees the accounts within reach
    ("POST", "/orgs/<org_id>/service-accounts"): Rule(TEAM_ADMINS, {"name": "escalated", "team_id": "{team_id}"}),
    ("GET", "/orgs/<org_id>/service-accounts/<sa_id>"): Rule(TEAM_ADMINS),
    ("PATCH", "/orgs/<org_id>/service-accounts/<sa_id>"): Rule(TEAM_ADMINS, {"name": "renamed"}),
    ("DELETE", "/orgs/<org_id>/service-accounts/<sa_id>"): Rule(TEAM_ADMINS),
    # API keys (the key of the plain member)
    ("GET", "/orgs/<org_id>/keys"): Rule(EVERYONE_IN_A),  # each sees the keys within their reach
    ("POST", "/orgs/<org_id>/keys"): Rule(
        frozenset({"sys", "oadmin"}), {"name": "escalated", "key_type": "team_key", "team_id": "{team_id}"}),
    ("GET", "/orgs/<org_id>/keys/<key_id>"): Rule(frozenset({"sys", "oadmin", "member"})),
    ("PATCH", "/orgs/<org_id>/keys/<key_id>"): Rule(frozenset({"sys", "oadmin", "member"}), LIMITS),
    ("DELETE", "/orgs/<org_id>/keys/<key_id>"): Rule(frozenset({"sys", "oadmin", "member"})),
    ("POST", "/orgs/<org_id>/keys/<key_id>/rotate"): Rule(frozenset({"sys", "oadmin", "member"})),
    ("GET", "/orgs/<org_id>/keys/<key_id>/model-access"): Rule(ORG_ADMINS),
    ("PUT", "/orgs/<org_id>/keys/<key_id>/model-access"): Rule(ORG_ADMINS, {"models": []}),
    # MCP servers (the one aimed at is team T's), MCP access allowlists
    ("GET", "/mcp-servers/health"): Rule(ALL),
    ("GET", "/mcp-servers"): Rule(SYS),
    ("POST", "/mcp-servers"): Rule(SYS, MCP_SERVER),
    ("GET", "/orgs/<org_id>/mcp-servers"): Rule(EVERYONE_IN_A),
    ("POST", "/orgs/<org_id>/mcp-servers"): Rule(ORG_ADMINS, MCP_SERVER),
    ("GET", "/orgs/<org_id>/teams/<team_id>/mcp-servers"): Rule(EVERYONE_IN_A),
    ("POST", "/orgs/<org_id>/teams/<team_id>/mcp-servers"): Rule(TEAM_ADMINS, MCP_SERVER),
    ("GET", "/mcp-servers/<server_id>"): Rule(EVERYONE_IN_A),
    ("PATCH", "/mcp-servers/<server_id>"): Rule(TEAM_ADMINS, {"name": "renamed"}),
    ("DELETE", "/mcp-servers/<server_id>"): Rule(TEAM_ADMINS),
    ("PATCH", "/mcp-servers/<server_id>/activate"): Rule(TEAM_ADMINS),
    ("PATCH", "/mcp-servers/<server_id>/deactivate"): Rule(TEAM_ADMINS),
    ("POST", "/mcp-servers/<server_id>/test"): Rule(TEAM_ADMINS),
    ("GET", "/mcp-servers/<server_id>/tools"): Rule(EVERYONE_IN_A),
    ("POST", "/mcp-servers/<server_id>/refresh-tools"): Rule(TEAM_ADMINS),
    ("GET", "/orgs/<org_id>/mcp-access"): Rule(ORG_ADMINS),
    ("PUT", "/orgs/<org_id>/mcp-access"): Rule(ORG_ADMINS, {"servers": ["{global_server_id}"]}),
    ("GET", "/orgs/<org_id>/teams/<team_id>/mcp-access"): Rule(TEAM_ADMINS),
    ("PUT", "/orgs/<org_id>/teams/<team_id>/mcp-access"): Rule(TEAM_ADMINS, {"servers": []}),
    ("GET", "/orgs/<org_id>/keys/<key_id>/mcp-access"): Rule(ORG_ADMINS),
    ("PUT", "/orgs/<org_id>/keys/<key_id>/mcp-access"): Rule(ORG_ADMINS, {"servers": []}),
    ("GET", "/orgs/<org_id>/available-mcp-servers"): Rule(ORG_ADMINS),
    # users (the plain member)
    ("POST", "/users"): Rule(
        ORG_ADMINS, {"email": "made@example.com", "password": "long enough pw", "org_id": "{org_id}",
                     "role": "org_admin"}),
    ("GET", "/users"): Rule(SYS),
    ("GET", "/users/<user_id>"): Rule(ORG_ADMINS),
    ("PATCH", "/users/<user_id>"): Rule(ORG_ADMINS, {"is_system_admin": True}),
    ("DELETE", "/users/<user_id>"): Rule(SYS),
}


def test_every_route_is_classified() -> None:
    declared = {(route.method, route.path): route for route in api.routes}
    assert set(declared) == set(RULES), "classify new routes in RULES (and remove deleted ones)"
    for key, route in declared.items():
        assert (RULES[key] == PUBLIC) == route.public, key


@attrs.define
class World:
    """Organisation A with team T and the six callers' keys, plus one of each resource to aim at."""

    gw: RunningGateway
    keys: dict[str, str]
    ids: dict[str, str]


@pytest.fixture
async def world(sqlite_dsn: str) -> AsyncIterator[World]:
    async with open_gateway(sqlite_dsn) as gw:
        org_a = await default_org(gw)
        org_b = (await create_org(gw, "beta"))["id"]
        team_t = (await create_team(gw, org_a, "tee"))["id"]
        oadmin = await add_user(gw, org_a, "oadmin@a.io", role="org_admin")
        tadmin = await add_user(gw, org_a, "tadmin@a.io")
        member = await add_user(gw, org_a, "member@a.io")
        foreign = await add_user(gw, org_b, "foreign@b.io", role="org_admin")
        outsider = await add_user(gw, None, "outsider@x.io")
        loner = await add_user(gw, org_a, "loner@a.io")
        await join_team(gw, team_t, tadmin, "team_admin")
        await join_team(gw, team_t, member)
        keys = {
            "sys": gw.api_key(),
            "oadmin": await user_key(gw, org_a, oadmin),
            "tadmin": await user_key(gw, org_a, tadmin),
            "tkey": str((await create_key(gw, org_a, key_type="team_key", team_id=team_t))["key"]),
            "member": await user_key(gw, org_a, member),
            "foreign": await user_key(gw, org_b, foreign),
        }
        target_key = (await create_key(gw, org_a, user_id=member))["id"]
        sys = admin(gw)

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = await gw.client.post(API + path, headers=sys, json=body)
            assert response.status_code == 201, (path, response.text)
            return dict(response.json())

        async def first(path: str, **match: str) -> str:
            response = await gw.client.get(API + path, headers=sys, params={"limit": 100})
            assert response.status_code == 200, (path, response.text)
            return next(row["id"] for row in response.json()["data"] if all(row[k] == v for k, v in match.items()))

        model = await post("/models", {"name": "api-model", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"})
        deployment = await post(f"/models/{model['id']}/deployments",
                                {"name": "d1", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"})
        ids = {
            "org_id": org_a, "team_id": team_t, "key_id": target_key, "user_id": member,
            "outsider_id": outsider, "loner_id": loner,
            "model_id": model["id"], "deployment_id": deployment["id"],
            "membership_id": await first(f"/orgs/{org_a}/members", user_id=member),
            "invite_id": (await post(f"/orgs/{org_a}/invites", {"email": "invited@a.io", "role": "member"}))["id"],
            "sa_id": (await post(f"/orgs/{org_a}/service-accounts", {"name": "bot", "team_id": team_t}))["id"],
        }
        org_alias = await post(f"/orgs/{org_a}/model-aliases", {"alias": "fast", "model_name": "gpt-test"})
        team_alias = await post(f"/orgs/{org_a}/teams/{team_t}/model-aliases", {"alias": "quick", "model_name": "gpt-test"})
        ids["org_alias_id"], ids["team_alias_id"] = org_alias["id"], team_alias["id"]
        ids["team_membership_id"] = await first(f"/orgs/{org_a}/teams/{team_t}/members", user_id=member)
        mcp = {"name": "Tools", "alias": "tools", "url": "https://mcp.example.com/mcp"}
        ids["server_id"] = (await post(f"/orgs/{org_a}/teams/{team_t}/mcp-servers", mcp))["id"]
        ids["global_server_id"] = (await post("/mcp-servers", mcp))["id"]
        yield World(gw, keys, ids)


def _url(path: str, rule: Rule, ids: dict[str, str]) -> str:
    values = dict(ids)
    if "/teams/" in path:
        values["membership_id"] = ids["team_membership_id"]
        values["alias_id"] = ids["team_alias_id"]
    else:
        values["alias_id"] = ids["org_alias_id"]
    for name, value in values.items():
        path = path.replace(f"<{name}>", value)
    assert "<" not in path, path
    return API + path + rule.query.format(**ids)


def _body(rule: Rule, ids: dict[str, str]) -> dict[str, Any] | None:
    if rule.body is None:
        return None
    return {k: v.format(**ids) if isinstance(v, str) else v for k, v in rule.body.items()}


async def test_roles_by_routes(world: World) -> None:
    refused: list[str] = []
    for (method, path), rule in RULES.items():
        if not isinstance(rule, Rule):
            continue
        url, body = _url(path, rule, world.ids), _body(rule, world.ids)
        for caller in CALLERS:
            allowed = caller in rule.allowed
            if allowed and method != "GET":
                continue  # allowed mutations: the functional tests of each area
            response = await world.gw.client.request(method, url, headers=bearer(world.keys[caller]), json=body)
            if allowed and response.status_code != 200:
                refused.append(f"{caller} {method} {path}: expected 200, got {response.status_code} {response.text}")
            if not allowed and response.status_code not in (403, 404):
                refused.append(f"{caller} {method} {path}: expected 403/404, got {response.status_code} {response.text}")
            if not allowed and response.status_code in (403, 404):
                assert response.json()["error"]["code"] in ("forbidden", "not_found") or response.status_code == 404
    assert not refused, "\n".join(refused)
