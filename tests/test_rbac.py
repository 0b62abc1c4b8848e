"""Issue 12 point 5: the RBAC matrix, generated from the route table.

Every declared route states who may call it (``allow=``, :mod:`voidllm.web.api.framework`). This test turns
each statement into expectations and checks them against one running gateway (SQLite):

- **Callers** (:data:`CALLERS`): the system admin; in organisation A an org admin, a team admin (by team
  role) and a member of team T, each by user key, the org admin and the member also by login session; T's
  team key, a service-account key bound to T and an unbound one; in organisation B an org admin, a team
  admin and a member of B's team U, and a second system admin who belongs to B only (every resource of A is
  foreign to it; a key of its own in A is refused as "not a member", a business rule, not its role).
- **Targets**: each route is aimed at resources of organisation A (so B's callers meet a foreign resource)
  and, where the path names one, at an own and a foreign one within A: team T and a team T2 nobody above
  is in; a key of the member and one of the team admin (both bound to T); the member's account and the
  account of a user of both A and B; a team-bound and an org-level service account; T's and A's MCP server
  (each with a tool blocked, to be unblocked).
- **Expected outcome**: :func:`relations` says how a caller stands to a target (``org_admin``, ``holder``,
  ...), :func:`expected` whether the route's ``allow=`` admits it. Allowed: a 2xx. Refused: 403 or 404 in the
  error envelope (a 400 naming the kind of key, for a team or service-account key on a route for users, or an
  API key on logout), and for a mutation nothing in the database changed. A route whose body decides the
  authority (limits versus a rename) is called with :data:`REQUESTS`' ``body``, which only unqualified
  relations may send, and again with its ``limited`` body, which ``relation(what)`` entries may send too.
- A session and a user key of the same user get the same status everywhere.

Allowed destructive calls (deletes, rotations, membership and role changes, answering an invite) get a fresh
target of the same standing; calls that end the caller's own sessions (logout, password change) run last.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import sqlite3
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import sqlalchemy as sa

from tests.admin_tenancy import (
    API,
    add_user,
    bearer,
    create_key,
    create_org,
    create_team,
    default_org,
    join_org,
    join_team,
    open_gateway,
    open_session,
    org_membership_id,
)
from voidllm.auth import passwords
from voidllm.identity import Role
from voidllm.store import tables as t
from voidllm.testing.mock_mcp import open_mock_mcp
from voidllm.web.api import api
from voidllm.web.api.framework import RELATIONS, ApiRoute

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from tests.gateway import RunningGateway

PASSWORD = "correct horse battery staple"

# -- who stands how to what ------------------------------------------------------------------------------

CHAIN = ("member", "team_member", "team_admin", "org_admin", "system_admin")
"""The relations of :data:`voidllm.web.api.framework.RELATIONS` that admit the ones after them."""

NEEDED_ROLE = {
    "system_admin": Role.SYSTEM_ADMIN,
    "org_admin": Role.ORG_ADMIN,
    "account_admin": Role.ORG_ADMIN,
}
"""The lowest key role that can stand in a relation (others: any role; a team admin by membership is a
member-role key)."""


@attrs.frozen
class Caller:
    name: str
    org: str  # "A" or "B"
    user: str | None = None  # the world's user name; None for team and service-account keys
    org_admin: bool = False
    admin_teams: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()
    session: bool = False
    system: bool = False


_T = frozenset({"T"})
CALLERS = (
    Caller("system_admin", "A", user="sys", org_admin=True, system=True),
    Caller("org_admin", "A", user="oadmin", org_admin=True),
    Caller("org_admin_session", "A", user="oadmin", org_admin=True, session=True),
    Caller("team_admin", "A", user="tadmin", admin_teams=_T, teams=_T),
    Caller("member", "A", user="member", teams=_T),
    Caller("member_session", "A", user="member", teams=_T, session=True),
    Caller("team_key", "A", admin_teams=_T, teams=_T),
    Caller("sa_team_key", "A", admin_teams=_T, teams=_T),
    Caller("sa_org_key", "A", org_admin=True),
    Caller("other_org_admin", "B", user="b_oadmin", org_admin=True),
    Caller("other_team_admin", "B", user="b_tadmin", admin_teams=frozenset({"U"}), teams=frozenset({"U"})),
    Caller("other_member", "B", user="b_member", teams=frozenset({"U"})),
    # a system admin who belongs to B only: A's resources are all foreign to it, and its role reaches them
    Caller("other_system_admin", "B", user="b_sys", system=True),
)
SESSION_PAIRS = (("org_admin", "org_admin_session"), ("member", "member_session"))


@attrs.frozen
class Scope:
    """Where a target stands: its organisations (a user account: all of the user's), its team, whose own it
    is. ``own``: a route without a resource, acting within the caller's own scope."""

    orgs: frozenset[str] = frozenset()
    team: str | None = None
    owner: str | None = None  # "self": the account, session or invite of this user
    holder: str | None = None  # "holder": the user this key belongs to
    account: bool = False
    own: bool = False
    sessions_only: bool = False  # "self" only for a login session (logout)
    mine: bool = False  # made for the caller itself, in its organisation (an own key)


ORG_A = Scope(frozenset({"A"}))
OWN = Scope(own=True)


def _up_to(relation: str) -> set[str]:
    return set(CHAIN[: CHAIN.index(relation) + 1])


def relations(caller: Caller, scope: Scope) -> set[str]:
    """How ``caller`` stands to ``scope``: its relations of :data:`~voidllm.web.api.framework.RELATIONS`."""
    found = set(CHAIN) | {"account_admin"} if caller.system else set()
    if scope.own:
        if caller.user is not None and (caller.session or not scope.sessions_only):
            found.add("self")
        return found | _up_to(
            "org_admin" if caller.org_admin else "team_admin" if caller.admin_teams else "member"
        )
    if caller.user is not None and (caller.user == scope.owner or (scope.mine and caller.org in scope.orgs)):
        found.add("self")
    holds = caller.user is not None and caller.user == scope.holder
    if holds:
        found.add("holder")
    if caller.org in scope.orgs:
        if caller.org_admin:
            level = "org_admin"
        elif scope.team is None:
            level = "team_member"  # of no team: team_member means member, team_admin org admin
        elif scope.team in caller.admin_teams and not holds:  # a key's admins are above it
            level = "team_admin"
        elif scope.team in caller.teams:
            level = "team_member"
        else:
            level = "member"
        found |= _up_to(level)
        if scope.account and caller.org_admin and scope.orgs == {caller.org}:
            found.add("account_admin")
    return found


def expected(route: ApiRoute, caller: Caller, scope: Scope, *, limited: bool) -> bool:
    """Whether ``allow=`` admits ``caller`` on ``scope`` (``limited``: with the route's limited body)."""
    if route.users_only and caller.user is None:
        return False
    found = relations(caller, scope)
    return any(grant.relation in found and (grant.only is None or limited) for grant in route.allow)


# -- what each route is called with ----------------------------------------------------------------------


@attrs.frozen
class Request:
    """``body``: exercises the route's full authority; ``limited``: what ``relation(what)`` may send.
    Placeholders: ``{n}`` a fresh number, ``{org_id}``/``{team_id}`` the target's, ``{fresh_user}`` a new
    user of A, ``{outsider}`` a new user of no organisation, ``{caller_user}`` the caller's user id,
    ``{mcp_url}``, ``{global_server}``, ``{token}`` the target invite's token."""

    body: dict[str, Any] | None = None
    limited: dict[str, Any] | None = None
    query: str = ""


LIMITS = {"requests_per_minute": 1, "daily_token_limit": 5}
RENAME = {"name": "Renamed"}
RANGE = "?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&group_by=day"
EXPORT = "?from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z"
UPSTREAM = {"provider": "openai", "base_url": "http://127.0.0.1:9/v1"}
MCP = {"name": "Tools {n}", "alias": "tools-{n}", "url": "{mcp_url}"}
SSO = {"issuer": "http://127.0.0.1:9/op", "client_id": "voidllm", "client_secret": "s3cret"}
SETTINGS = (
    "mcp:\n  allow_private_urls: true\n  health:\n    enabled: false\n"
    "sso:\n  allow_private_issuers: true\n"
    "usage:\n  rollup_interval: 1h"
)
"""The mock MCP server and the SSO issuer above are on loopback. No service of the gateway writes on a
timer while the matrix runs, so every write it sees was a request's: the MCP health probes are off (a
round, every ``mcp.health.interval``, replaces each probed server's cached tool list in
``mcp_server_tools`` and, for a list that changed, publishes an ``mcp`` change notice), and the usage
rollups, which store their state in ``settings`` at every run, run once at startup and next in an hour.
A matrix longer than the default 60 s interval (a busy machine) saw those writes land after refused
calls."""
NO_MODELS = Request({"models": []})
NO_SERVERS = Request({"servers": []})
INVITE = Request({"token": "{token}"})
POLICY = Request({"request": {"params": {"deny": ["logprobs"]}}, "guard": {"detectors": {"email": "flag"}}})

REQUESTS: dict[tuple[str, str], Request] = {
    ("GET", "/audit-logs"): Request(query="?org_id={org_id}"),
    ("GET", "/orgs/<org_id>/usage/export"): Request(query=EXPORT),
    ("GET", "/orgs/<org_id>/usage/cost-report"): Request(query=EXPORT),
    ("POST", "/models/test-connection"): Request(UPSTREAM),
    ("POST", "/models"): Request({"name": "model-{n}", **UPSTREAM}),
    ("PATCH", "/models/<model_id>"): Request({"input_price_per_1m": 9.0}),
    ("POST", "/models/<model_id>/deployments"): Request({"name": "d-{n}", **UPSTREAM}),
    ("PATCH", "/models/<model_id>/deployments/<deployment_id>"): Request({"weight": 7}),
    ("GET", "/usage"): Request(query=RANGE),
    ("GET", "/orgs/<org_id>/usage"): Request(query=RANGE),
    ("GET", "/usage/me"): Request(query=RANGE),
    ("GET", "/mcp-usage"): Request(query=RANGE),
    ("GET", "/orgs/<org_id>/mcp-usage"): Request(query=RANGE),
    ("POST", "/orgs"): Request({"name": "Org {n}", "slug": "org-{n}"}),
    ("PATCH", "/orgs/<org_id>"): Request(LIMITS, RENAME),
    ("POST", "/orgs/<org_id>/members"): Request({"user_id": "{outsider}", "role": "member"}),
    ("PATCH", "/orgs/<org_id>/members/<membership_id>"): Request({"role": "org_admin"}),
    ("POST", "/orgs/<org_id>/invites"): Request({"email": "invited-{n}@a.io", "role": "member"}),
    ("PUT", "/orgs/<org_id>/model-access"): NO_MODELS,
    ("POST", "/orgs/<org_id>/model-aliases"): Request({"alias": "alias-{n}", "model_name": "gpt-test"}),
    ("POST", "/orgs/<org_id>/teams"): Request({"name": "Team {n}", "slug": "team-{n}"}),
    ("PATCH", "/orgs/<org_id>/teams/<team_id>"): Request(LIMITS, RENAME),
    ("POST", "/orgs/<org_id>/teams/<team_id>/members"): Request(
        {"user_id": "{fresh_user}", "role": "member"}
    ),
    ("PATCH", "/orgs/<org_id>/teams/<team_id>/members/<membership_id>"): Request({"role": "team_admin"}),
    ("PUT", "/orgs/<org_id>/teams/<team_id>/model-access"): NO_MODELS,
    ("POST", "/orgs/<org_id>/teams/<team_id>/model-aliases"): Request(
        {"alias": "alias-{n}", "model_name": "gpt-test"}
    ),
    ("POST", "/orgs/<org_id>/service-accounts"): Request({"name": "bot-{n}", "team_id": "{team_id}"}),
    ("PATCH", "/orgs/<org_id>/service-accounts/<sa_id>"): Request(RENAME),
    ("POST", "/orgs/<org_id>/keys"): Request(
        {"name": "k-{n}", "key_type": "team_key", "team_id": "{team_t}"},
        {"name": "mine-{n}", "key_type": "user_key", "user_id": "{caller_user}"},
    ),
    ("PATCH", "/orgs/<org_id>/keys/<key_id>"): Request(
        {**LIMITS, "expires_at": "2099-01-01T00:00:00Z"}, RENAME
    ),
    ("PUT", "/orgs/<org_id>/keys/<key_id>/model-access"): NO_MODELS,
    ("POST", "/mcp-servers"): Request(MCP),
    ("POST", "/orgs/<org_id>/mcp-servers"): Request(MCP),
    ("POST", "/orgs/<org_id>/teams/<team_id>/mcp-servers"): Request(MCP),
    ("PATCH", "/mcp-servers/<server_id>"): Request(RENAME),
    ("POST", "/mcp-servers/<server_id>/blocklist"): Request({"tool_name": "tool-{n}"}),
    ("DELETE", "/mcp-servers/<server_id>/blocklist"): Request(query="?tool_name=blocked"),
    ("PUT", "/orgs/<org_id>/mcp-access"): Request({"servers": ["{global_server}"]}),
    ("PUT", "/orgs/<org_id>/teams/<team_id>/mcp-access"): NO_SERVERS,
    ("PUT", "/orgs/<org_id>/keys/<key_id>/mcp-access"): NO_SERVERS,
    ("POST", "/users"): Request(
        {"email": "made-{n}@a.io", "password": PASSWORD, "org_id": "{org_id}", "role": "member"}
    ),
    ("PATCH", "/users/<user_id>"): Request({"is_system_admin": True}, {"display_name": "Renamed"}),
    ("POST", "/me/password"): Request({"current_password": PASSWORD, "new_password": PASSWORD}),
    ("PUT", "/orgs/<org_id>/sso"): Request(SSO),
    ("PUT", "/orgs/<org_id>/policy"): POLICY,
    ("PUT", "/orgs/<org_id>/teams/<team_id>/policy"): POLICY,
    ("PUT", "/orgs/<org_id>/keys/<key_id>/policy"): POLICY,
    ("PUT", "/models/<model_id>/policy"): POLICY,
    ("POST", "/orgs/<org_id>/sso/test"): Request({"issuer": "http://127.0.0.1:9"}),
    ("POST", "/invites/accept"): INVITE,
    ("POST", "/invites/decline"): INVITE,
}

FRESH_ACTIONS = ("rotate", "deactivate", "reactivate", "test", "refresh-tools", "accept", "decline")
LAST = ("/invites/accept", "/invites/decline", "/me/password", "/auth/logout", "/auth/sessions")
"""Run after everything else: they end sessions or add memberships of the callers themselves."""


def _fresh(route: ApiRoute, limited: bool) -> bool:
    """Whether an allowed call needs a fresh target (it destroys the target or changes who stands how)."""
    if route.method == "DELETE" or route.path.rsplit("/", 1)[-1] in FRESH_ACTIONS:
        return True
    return (
        route.method == "PATCH"
        and (route.path.endswith("<membership_id>") or route.path == "/users/<user_id>")
        and not limited
    )


# -- the table is complete and consistent ----------------------------------------------------------------


def test_every_route_states_who_may_call() -> None:
    missing = [f"{r.method} {r.path}" for r in api.routes if not r.public and not r.allow]
    assert not missing, f"state allow= on: {missing}"
    assert all(not r.allow for r in api.routes if r.public)
    for route in api.routes:
        assert all(grant.relation in RELATIONS for grant in route.allow)


def test_allow_is_consistent_with_role() -> None:
    """The coarse gate ``role=`` never refuses a caller that ``allow=`` admits."""
    wrong = []
    for route in api.routes:
        if route.public:
            continue
        needed = min(NEEDED_ROLE.get(grant.relation, Role.MEMBER) for grant in route.allow)
        if (route.role or Role.MEMBER) > needed:
            wrong.append(
                f"{route.method} {route.path}: role={route.role!r} but allow={[str(g) for g in route.allow]}"
            )
    assert not wrong, "\n".join(wrong)


def test_every_route_can_be_called() -> None:
    """Routes taking a body have one here, and a route with a qualified grant has its limited body."""
    for route in api.routes:
        if route.public:
            continue
        request = REQUESTS.get((route.method, route.path), Request())
        assert (request.body is not None) == (route.body is not None), f"{route.method} {route.path}: body"
        assert (request.limited is not None) == any(g.only for g in route.allow), (
            f"{route.method} {route.path}"
        )


# -- the world -------------------------------------------------------------------------------------------


@attrs.frozen
class Target:
    label: str
    scope: Scope
    params: Mapping[str, str]
    fresh: Callable[[], Awaitable[dict[str, str]]] | None = None


@attrs.define
class World:
    gw: RunningGateway
    mcp_url: str
    keys: dict[str, str] = attrs.Factory(dict)  # caller name -> key
    users: dict[str, str] = attrs.Factory(dict)  # user name -> id
    orgs: dict[str, str] = attrs.Factory(dict)  # "A", "B" -> id
    teams: dict[str, str] = attrs.Factory(dict)  # "T", "T2", "U" -> id
    targets: dict[str, list[Target]] = attrs.Factory(dict)
    serial: itertools.count[int] = attrs.Factory(itertools.count)
    password_hash: str = ""

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST as the system admin, expecting 201."""
        response = await self.gw.client.post(API + path, headers=bearer(self.keys["system_admin"]), json=body)
        assert response.status_code == 201, (path, response.text)
        return dict(response.json())

    def n(self) -> int:
        return next(self.serial)

    async def user(self, org: str | None, role: str = "member") -> str:
        org_id = None if org is None else self.orgs[org]
        return await add_user(
            self.gw, org_id, f"u{self.n()}@x.io", role=role, password_hash=self.password_hash
        )


async def _build_world(gw: RunningGateway, mcp_url: str) -> World:
    w = World(gw, mcp_url, password_hash=passwords.hash_password(PASSWORD))
    a = await default_org(gw)
    w.orgs = {"A": a, "B": (await create_org(gw, "beta"))["id"]}
    w.teams = {"T": (await create_team(gw, a, "tee"))["id"], "T2": (await create_team(gw, a, "tee-2"))["id"]}
    w.teams["U"] = (await create_team(gw, w.orgs["B"], "you"))["id"]
    sys_key = gw.api_key()
    w.keys["system_admin"] = sys_key
    sys_id = w.users["sys"] = gw.state.services.keys.authenticate(f"Bearer {sys_key}").user_id
    await gw.state.services.store.run(
        lambda conn: conn.execute(
            t.users.update().where(t.users.c.id == sys_id).values(password_hash=w.password_hash)
        )
    )
    people = {
        "oadmin": ("A", "org_admin"),
        "tadmin": ("A", "member"),
        "member": ("A", "member"),
        "loner": ("A", "member"),
        "dual": ("A", "member"),
        "b_oadmin": ("B", "org_admin"),
        "b_tadmin": ("B", "member"),
        "b_member": ("B", "member"),
        "b_sys": ("B", "member"),
    }
    for name, (org, role) in people.items():
        w.users[name] = await add_user(
            gw, w.orgs[org], f"{name}@x.io", role=role, password_hash=w.password_hash
        )
    u = w.users
    await gw.state.services.store.run(  # before its key is made: the key cache reads the role with it
        lambda conn: conn.execute(
            t.users.update().where(t.users.c.id == u["b_sys"]).values(is_system_admin=True)
        )
    )
    await join_org(gw, w.orgs["B"], u["dual"])
    await join_team(gw, w.teams["T"], u["tadmin"], "team_admin")
    await join_team(gw, w.teams["U"], u["b_tadmin"], "team_admin")
    await join_team(gw, w.teams["U"], u["b_member"])
    member_in_t = await join_team(gw, w.teams["T"], u["member"])
    loner_in_t2 = await join_team(gw, w.teams["T2"], u["loner"])

    async def key(org: str, **fields: Any) -> str:
        return str((await create_key(gw, w.orgs[org], **fields))["key"])

    sa_t = (await w.post(f"/orgs/{a}/service-accounts", {"name": "bot-t", "team_id": w.teams["T"]}))["id"]
    sa_a = (await w.post(f"/orgs/{a}/service-accounts", {"name": "bot-a"}))["id"]
    w.keys |= {
        "org_admin": await key("A", user_id=u["oadmin"]),
        "org_admin_session": await open_session(gw, a, u["oadmin"]),
        "team_admin": await key("A", user_id=u["tadmin"]),
        "member": await key("A", user_id=u["member"]),
        "member_session": await open_session(gw, a, u["member"]),
        "team_key": await key("A", key_type="team_key", team_id=w.teams["T"]),
        "sa_team_key": await key("A", key_type="sa_key", service_account_id=sa_t),
        "sa_org_key": await key("A", key_type="sa_key", service_account_id=sa_a),
        "other_org_admin": await key("B", user_id=u["b_oadmin"]),
        "other_team_admin": await key("B", user_id=u["b_tadmin"]),
        "other_member": await key("B", user_id=u["b_member"]),
        "other_system_admin": await key("B", user_id=u["b_sys"]),
    }
    await _add_targets(w, member_in_t=member_in_t, loner_in_t2=loner_in_t2)
    return w


async def _add_targets(w: World, *, member_in_t: str, loner_in_t2: str) -> None:
    gw, a, u = w.gw, w.orgs["A"], w.users
    teams = {"T": w.teams["T"], "T2": w.teams["T2"]}
    in_team = {name: Scope(frozenset({"A"}), team=name) for name in teams}

    async def fresh_org() -> dict[str, str]:
        return {"org_id": (await create_org(gw, f"fresh-{w.n()}"))["id"]}

    async def fresh_team() -> dict[str, str]:
        return {"org_id": a, "team_id": (await create_team(gw, a, f"fresh-{w.n()}"))["id"]}

    w.targets["org"] = [Target("A", ORG_A, {"org_id": a}, fresh_org)]
    w.targets["team"] = [
        Target(name, in_team[name], {"org_id": a, "team_id": tid}, fresh_team) for name, tid in teams.items()
    ]

    def team_membership(name: str) -> Callable[[], Awaitable[dict[str, str]]]:
        async def make() -> dict[str, str]:
            mid = await join_team(gw, teams[name], await w.user("A"))
            return {"org_id": a, "team_id": teams[name], "membership_id": mid}

        return make

    w.targets["team_membership"] = [
        Target(
            "T",
            in_team["T"],
            {"org_id": a, "team_id": teams["T"], "membership_id": member_in_t},
            team_membership("T"),
        ),
        Target(
            "T2",
            in_team["T2"],
            {"org_id": a, "team_id": teams["T2"], "membership_id": loner_in_t2},
            team_membership("T2"),
        ),
    ]

    async def org_membership() -> dict[str, str]:
        return {"org_id": a, "membership_id": await org_membership_id(gw, a, await w.user("A"))}

    w.targets["org_membership"] = [
        Target(
            "A",
            ORG_A,
            {"org_id": a, "membership_id": await org_membership_id(gw, a, u["member"])},
            org_membership,
        )
    ]

    async def invite() -> dict[str, str]:
        return {
            "org_id": a,
            "invite_id": (await w.post(f"/orgs/{a}/invites", {"email": f"i{w.n()}@a.io"}))["id"],
        }

    w.targets["invite"] = [Target("A", ORG_A, await invite(), invite)]

    def alias(team: str | None) -> Callable[[], Awaitable[dict[str, str]]]:
        async def make() -> dict[str, str]:
            path = f"/orgs/{a}" + (f"/teams/{teams[team]}" if team else "")
            made = await w.post(
                path + "/model-aliases", {"alias": f"alias-{w.n()}", "model_name": "gpt-test"}
            )
            return {"org_id": a, **({"team_id": teams[team]} if team else {}), "alias_id": made["id"]}

        return make

    w.targets["org_alias"] = [Target("A", ORG_A, await alias(None)(), alias(None))]
    w.targets["team_alias"] = [
        Target(name, in_team[name], await alias(name)(), alias(name)) for name in teams
    ]

    def api_key(holder: str) -> Callable[[], Awaitable[dict[str, str]]]:
        async def make() -> dict[str, str]:
            made = await create_key(gw, a, user_id=u[holder], team_id=teams["T"], name=f"{holder}-{w.n()}")
            return {"org_id": a, "key_id": made["id"]}

        return make

    w.targets["key"] = [
        Target(
            f"{holder}'s key",
            Scope(frozenset({"A"}), team="T", holder=holder),
            await api_key(holder)(),
            api_key(holder),
        )
        for holder in ("member", "tadmin")
    ]

    def account(team: str | None) -> Callable[[], Awaitable[dict[str, str]]]:
        async def make() -> dict[str, str]:
            body = {"name": f"bot-{w.n()}", **({"team_id": teams[team]} if team else {})}
            return {"org_id": a, "sa_id": (await w.post(f"/orgs/{a}/service-accounts", body))["id"]}

        return make

    w.targets["service_account"] = [
        Target("T", in_team["T"], await account("T")(), account("T")),
        Target("A", ORG_A, await account(None)(), account(None)),
    ]

    def server(team: str | None) -> Callable[[], Awaitable[dict[str, str]]]:
        async def make() -> dict[str, str]:
            path = f"/orgs/{a}" + (f"/teams/{teams[team]}" if team else "") + "/mcp-servers"
            n = w.n()
            made = await w.post(path, {"name": f"Tools {n}", "alias": f"tools-{n}", "url": w.mcp_url})
            await w.post(f"/mcp-servers/{made['id']}/blocklist", {"tool_name": "blocked"})  # to unblock
            return {"server_id": made["id"]}

        return make

    w.targets["server"] = [
        Target("T's", in_team["T"], await server("T")(), server("T")),
        Target("A's", ORG_A, await server(None)(), server(None)),
    ]
    n = w.n()
    w.targets["global_server"] = [
        Target(
            "global",
            OWN,
            await w.post("/mcp-servers", {"name": f"Tools {n}", "alias": f"tools-{n}", "url": w.mcp_url}),
        )
    ]

    async def model() -> dict[str, str]:
        return {"model_id": (await w.post("/models", {"name": f"model-{w.n()}", **UPSTREAM}))["id"]}

    model_id = (await model())["model_id"]
    system = Scope()  # a resource of no organisation: only system admins stand in a relation to it

    async def deployment() -> dict[str, str]:
        made = await w.post(f"/models/{model_id}/deployments", {"name": f"d-{w.n()}", **UPSTREAM})
        return {"model_id": model_id, "deployment_id": made["id"]}

    w.targets["model"] = [Target("model", system, {"model_id": model_id}, model)]
    w.targets["deployment"] = [Target("deployment", system, await deployment(), deployment)]

    async def user_of(orgs: tuple[str, ...]) -> dict[str, str]:
        user_id = await w.user(orgs[0])
        for org in orgs[1:]:
            await join_org(gw, w.orgs[org], user_id)
        return {"user_id": user_id}

    w.targets["user"] = [
        Target(
            "member",
            Scope(frozenset({"A"}), owner="member", account=True),
            {"user_id": u["member"]},
            lambda: user_of(("A",)),
        ),
        Target(
            "dual",
            Scope(frozenset({"A", "B"}), owner="dual", account=True),
            {"user_id": u["dual"]},
            lambda: user_of(("A", "B")),
        ),
    ]

    async def session() -> dict[str, str]:
        await open_session(gw, a, u["member"])
        k = t.api_keys
        newest = sa.select(k.c.id).where(k.c.user_id == u["member"], k.c.key_type == "session_key")
        newest = newest.order_by(k.c.created_at.desc(), k.c.id.desc()).limit(1)
        return {
            "session_id": await gw.state.services.store.run(lambda conn: conn.execute(newest).scalar_one())
        }

    w.targets["session"] = [Target("member's", Scope(owner="member"), await session(), session)]

    async def invitation() -> dict[str, str]:  # from a new organisation each time: accepting one joins it
        org_id = (await create_org(gw, f"inviting-{w.n()}"))["id"]
        made = await w.post(f"/orgs/{org_id}/invites", {"email": "member@x.io", "role": "member"})
        return {"token": made["token"]}

    w.targets["invite_answer"] = [Target("to member", Scope(owner="member"), await invitation(), invitation)]

    async def org_sso() -> dict[str, str]:  # A's provider, set again (a delete or a test may follow)
        response = await gw.client.put(
            f"{API}/orgs/{a}/sso", headers=bearer(w.keys["system_admin"]), json=SSO
        )
        assert response.status_code == 200, response.text
        return {"org_id": a}

    w.targets["org_sso"] = [Target("A", ORG_A, await org_sso(), org_sso)]


def targets_of(w: World, route: ApiRoute) -> list[Target]:
    params = re.findall(r"<(\w+)>", route.path)
    special = {
        "/audit-logs": [Target("A", ORG_A, {"org_id": w.orgs["A"]})],
        "/orgs/<org_id>/keys": [Target("A", attrs.evolve(ORG_A, mine=True), {"org_id": w.orgs["A"]})]
        if route.method == "POST"
        else None,
        "/users": [Target("A", ORG_A, {"org_id": w.orgs["A"]})] if route.method == "POST" else None,
        "/invites/accept": w.targets["invite_answer"],
        "/orgs/<org_id>/sso": w.targets["org_sso"],
        "/orgs/<org_id>/sso/test": w.targets["org_sso"],
        "/invites/decline": w.targets["invite_answer"],
        "/auth/logout": [Target("own session", attrs.evolve(OWN, sessions_only=True), {})],
        "/orgs/<org_id>/service-accounts": w.targets["team"] if route.method == "POST" else None,
    }.get(route.path)
    if special is not None:
        return special
    if not params:
        return [Target("own", OWN, {})]
    last, teamed = params[-1], "/teams/" in route.path
    kind = {
        "org_id": "team" if route.path.endswith("/teams/<team_id>") else "org",
        "team_id": "team",
        "membership_id": "team_membership" if teamed else "org_membership",
        "alias_id": "team_alias" if teamed else "org_alias",
        "sa_id": "service_account",
        "key_id": "key",
        "server_id": "server",
        "model_id": "model",
        "deployment_id": "deployment",
        "user_id": "user",
        "session_id": "session",
        "invite_id": "invite",
    }[last]
    return w.targets[kind]


# -- calling ---------------------------------------------------------------------------------------------

_ENVELOPE_CODES = {403: "forbidden", 404: "not_found", 400: "bad_request"}


@attrs.frozen
class Outcome:
    status: int
    text: str
    code: str | None
    message: str


async def _fill(w: World, value: Any, params: Mapping[str, str], caller: Caller) -> Any:
    if isinstance(value, dict):
        return {k: await _fill(w, v, params, caller) for k, v in value.items()}
    if isinstance(value, list):
        return [await _fill(w, v, params, caller) for v in value]
    if not isinstance(value, str) or "{" not in value:
        return value
    names = set(re.findall(r"\{(\w+)\}", value))
    values = {
        "org_id": params.get("org_id", w.orgs["A"]),
        "team_id": params.get("team_id", ""),
        "team_t": w.teams["T"],
        "mcp_url": w.mcp_url,
        "global_server": w.targets["global_server"][0].params["id"],
        "token": params.get("token", ""),
        "caller_user": w.users.get(caller.user or "", ""),
    }
    if "n" in names:
        values["n"] = str(w.n())
    if "fresh_user" in names:
        values["fresh_user"] = await w.user("A")
    if "outsider" in names:
        values["outsider"] = await w.user(None)
    return value.format(**values)


async def _call(
    w: World, route: ApiRoute, key: str, params: Mapping[str, str], body: Any, query: str
) -> Outcome:
    path = route.path
    for name, value in params.items():
        path = path.replace(f"<{name}>", value)
    assert "<" not in path, path
    response = await w.gw.client.request(route.method, API + path + query, headers=bearer(key), json=body)
    code = message = None
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        error = response.json().get("error") or {}
        code, message = error.get("code"), error.get("message")
    return Outcome(response.status_code, response.text[:300], code, message or "")


_NOTICES_ISSUED = sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'change_notices'")
"""The highest id ``change_notices`` ever gave (AUTOINCREMENT: never lowered when rows are deleted)."""


async def _fingerprint(gw: RunningGateway) -> dict[str, str]:
    """A digest of every table's rows (the audit log aside: only successes are written to it).

    ``change_notices`` counts by the notices ever published, not by the rows kept: the gateway's notice
    poller deletes rows older than ``voidllm.bus.NOTICE_RETENTION`` on a timer, which no request does, and a
    matrix on a busy machine may outlast it."""

    def read(conn: sa.Connection) -> dict[str, str]:
        out = {}
        for table in t.metadata.sorted_tables:
            if table.name == "audit_logs":
                continue
            if table.name == "change_notices":
                out[table.name] = repr(conn.execute(_NOTICES_ISSUED).scalar_one_or_none())
                continue
            rows = sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
            out[table.name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        return out

    return await gw.state.services.store.run(read)


def _refused(outcome: Outcome, caller: Caller, route: ApiRoute) -> bool:
    if outcome.status in (403, 404):
        return outcome.code == _ENVELOPE_CODES[outcome.status]
    # A key of the wrong kind for the route: a team or service-account key where a user is needed, an API key
    # where a login session is.
    wrong_kind = caller.user is None or (route.path == "/auth/logout" and not caller.session)
    return outcome.status == 400 and outcome.code == "bad_request" and wrong_kind and "key" in outcome.message


@pytest.fixture
async def world(sqlite_dsn: str) -> AsyncIterator[World]:
    async with (
        open_mock_mcp() as mcp,
        open_gateway(sqlite_dsn, settings=SETTINGS) as gw,
    ):
        yield await _build_world(gw, mcp.url)


def _ordered() -> list[ApiRoute]:
    routes = [r for r in api.routes if not r.public]
    return sorted(routes, key=lambda r: LAST.index(r.path) + 1 if r.path in LAST else 0)


@attrs.define
class Matrix:
    """The run: each case's status, the failures, and the database digest refused mutations are held to.

    ``version`` is SQLite's ``PRAGMA data_version`` seen from a connection of the test's own: it changes
    whenever another connection commits. A refused mutation after which it has not changed since the
    baseline was taken committed nothing, so the baseline still holds without reading every table again;
    when it has changed (any commit, the audit log's included) the tables are digested and compared.
    """

    w: World
    version: Callable[[], int]
    statuses: dict[tuple[str, ...], int] = attrs.Factory(dict)
    failures: list[str] = attrs.Factory(list)
    baseline: dict[str, str] | None = None  # None: something was written since it was taken
    baseline_version: int = -1  # ``version`` just before ``baseline`` was taken

    async def run(self, route: ApiRoute, target: Target, limited: bool, caller: Caller) -> None:
        request = REQUESTS.get((route.method, route.path), Request())
        raw_body = request.limited if limited else request.body
        allowed = expected(route, caller, target.scope, limited=limited)
        params, key = dict(target.params), self.w.keys[caller.name]
        if allowed and route.method != "GET" and target.fresh is not None and _fresh(route, limited):
            params = await target.fresh()
        if caller.session and route.path in LAST:  # a session of its own, as the call may end it
            key = await open_session(self.w.gw, self.w.orgs["A"], self.w.users[caller.user or ""])
        body = await _fill(self.w, raw_body, params, caller)
        query = await _fill(self.w, request.query, params, caller)
        mutation = route.method != "GET"
        if allowed or "fresh_user" in repr(raw_body) or "outsider" in repr(raw_body) or route.path in LAST:
            self.baseline = None
        if mutation and not allowed and self.baseline is None:
            self.baseline_version = self.version()  # before the digest: a commit in between is seen later
            self.baseline = await _fingerprint(self.w.gw)
        outcome = await _call(self.w, route, key, params, body, query)
        body_kind = ", limited body" if limited else ""
        case = f"{route.method} {route.path} [{target.label}{body_kind}] as {caller.name}"
        self.statuses[(route.method, route.path, target.label, str(limited), caller.name)] = outcome.status
        if allowed and "{caller_user}" in repr(raw_body) and caller.org not in target.scope.orgs:
            # admitted (a system admin of another organisation), but a key of its own needs a membership
            if (outcome.status, outcome.code) != (
                400,
                "bad_request",
            ) or "not a member" not in outcome.message:
                self.failures.append(
                    f"{case}: expected 400 not a member, got {outcome.status} {outcome.text}"
                )
        elif allowed and not 200 <= outcome.status < 300:
            self.failures.append(f"{case}: expected 2xx, got {outcome.status} {outcome.text}")
        elif not allowed and not _refused(outcome, caller, route):
            self.failures.append(f"{case}: expected a refusal, got {outcome.status} {outcome.text}")
        elif not allowed and mutation and self.version() != self.baseline_version:
            assert self.baseline is not None
            self.baseline_version = self.version()
            after = await _fingerprint(self.w.gw)
            changed = sorted(name for name in after if after[name] != self.baseline[name])
            if changed:
                self.failures.append(f"{case}: refused with {outcome.status} but changed {changed}")
            self.baseline = after

    def compare_sessions(self) -> None:
        """A session and an API key of the same user got the same status (logout aside: API keys cannot)."""
        for key_caller, session_caller in SESSION_PAIRS:
            for case, status in self.statuses.items():
                twin = self.statuses.get((*case[:-1], session_caller))
                if case[-1] == key_caller and twin != status and case[1] != "/auth/logout":
                    self.failures.append(
                        f"{' '.join(case[:-1])}: {key_caller} got {status}, {session_caller} {twin}"
                    )


async def test_rbac_matrix(world: World) -> None:
    observer = sqlite3.connect(world.gw.state.config.database.dsn)
    try:
        await _run_matrix(world, lambda: int(observer.execute("PRAGMA data_version").fetchall()[0][0]))
    finally:
        observer.close()


async def _run_matrix(world: World, version: Callable[[], int]) -> None:
    matrix = Matrix(world, version)
    for route in _ordered():
        request = REQUESTS.get((route.method, route.path), Request())
        bodies = [False] + ([True] if request.limited is not None else [])
        for target, limited in itertools.product(targets_of(world, route), bodies):
            # Session callers first: a password change with the user's API key ends the user's sessions.
            for caller in sorted(CALLERS, key=lambda c: not c.session):
                await matrix.run(route, target, limited, caller)
    matrix.compare_sessions()
    assert len(matrix.statuses) > 1500, "the matrix lost its cases"
    assert not matrix.failures, f"{len(matrix.failures)} cases:\n" + "\n".join(matrix.failures)
