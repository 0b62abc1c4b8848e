"""Issue 8 point 5: MCP servers through the admin API (docs/reference/behaviour.md 1.6 "MCP server
management", 8.1).

Global, org and team servers with their permission checks, secrets sealed at rest and never returned,
URL/SSRF and auth validation, alias conflicts, pagination, servers of the config file read-only, activation
reflected in the running registry at once, and ``test`` / ``tools`` / ``refresh-tools`` against the real mock
MCP server (the official SDK) and a deprecated HTTP+SSE server. Who may create, list, see,
change and delete which server, the validation and alias conflicts are tested on
:mod:`voidllm.admin.mcp_servers` directly (``tests/admin_fixtures.py``), with a thin HTTP slice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa

from tests.admin_fixtures import AdminWorld
from tests.admin_tenancy import (
    API,
    add_user,
    admin,
    bearer,
    create_team,
    default_org,
    error_of,
    join_team,
    user_key,
)
from tests.gateway import RunningGateway, make_config, run_gateway
from tests.test_audit import audit_rows
from voidllm.admin import mcp_servers
from voidllm.admin.context import Actor
from voidllm.admin.mcp_servers import McpScope, McpServerCreate, McpServerUpdate
from voidllm.admin.pages import PageQuery
from voidllm.config import MCPServerConfig
from voidllm.crypto import aad_for
from voidllm.errors import BadRequestError, ConflictError, NotFoundError, PermissionDeniedError
from voidllm.mcp.registry import McpRegistry, sync_yaml_servers
from voidllm.mcp.tools_cache import replace_tools
from voidllm.store import tables as t
from voidllm.testing.mock_mcp import open_legacy_sse_server, open_mock_mcp

URL = "https://mcp.example.com/mcp"
TOKEN = "s3cret-upstream-token"
GLOBAL = McpScope()


@asynccontextmanager
async def gateway(dsn: str, *, allow_private: bool = False) -> AsyncIterator[RunningGateway]:
    settings = "mcp:\n  allow_private_urls: true" if allow_private else ""
    async with run_gateway(make_config(dsn, settings=settings)) as gw:
        yield gw


def server(alias: str, url: str = URL, **fields: Any) -> dict[str, Any]:
    return {"name": alias.title(), "alias": alias, "url": url, **fields}


async def stored_row(gw: RunningGateway, server_id: str) -> Any:
    s = t.mcp_servers
    return await gw.state.services.store.run(
        lambda conn: conn.execute(sa.select(s).where(s.c.id == server_id)).first()
    )


class McpCast(NamedTuple):
    """An organisation, a team in it and an actor for each role MCP servers' permissions tell apart."""

    org: str
    team: str
    org_admin: Actor
    team_admin: Actor
    member: Actor  # of the team
    foreign: Actor  # the org admin of another organisation


async def mcp_cast(world: AdminWorld) -> McpCast:
    org, other = await world.org("alpha"), await world.org("beta")
    team = (await world.team(org, "tee")).id
    oadmin = await world.user_actor(org, await world.user(org, "oa@a.io", role="org_admin"))
    tadmin_id, member_id = await world.user(org, "ta@a.io"), await world.user(org, "m@a.io")
    await world.join_team(team, tadmin_id, "team_admin")
    await world.join_team(team, member_id)
    tadmin, member = await world.user_actor(org, tadmin_id), await world.user_actor(org, member_id)
    foreign = await world.user_actor(other, await world.user(other, "f@b.io", role="org_admin"))
    return McpCast(org, team, oadmin, tadmin, member, foreign)


async def test_crud_at_every_scope_with_permissions(admin_world: AdminWorld) -> None:
    world, services = admin_world, admin_world.services
    org, team, oadmin, tadmin, member, foreign = await mcp_cast(world)
    org_scope, team_scope = McpScope(org_id=org), McpScope(org_id=org, team_id=team)

    async def create(actor: Actor, scope: McpScope, alias: str) -> mcp_servers.McpServerOut:
        return await mcp_servers.create(services, actor, scope, McpServerCreate(**server(alias)))

    async def listed(actor: Actor, scope: McpScope) -> list[str]:
        page = await mcp_servers.list_servers(services, actor, scope, PageQuery())
        return [row.id for row in page.data]

    g = await create(world.system, GLOBAL, "tools")
    o = await create(oadmin, org_scope, "tools")
    tm = await create(tadmin, team_scope, "tools")
    assert (g.scope, o.scope, tm.scope) == ("global", "org", "team")
    assert (tm.org_id, tm.team_id, tm.source) == (org, team, "api")

    # who may create where
    with pytest.raises(PermissionDeniedError):
        await create(oadmin, GLOBAL, "x")
    with pytest.raises(PermissionDeniedError):
        await create(tadmin, org_scope, "x")
    with pytest.raises(PermissionDeniedError, match="team admin"):
        await create(member, team_scope, "x")
    with pytest.raises(PermissionDeniedError):
        await create(foreign, org_scope, "x")

    # lists: global alone; an org's with the global; a team's with its org's and the global
    assert await listed(world.system, GLOBAL) == [g.id]
    assert await listed(member, org_scope) == [g.id, o.id]
    assert await listed(member, team_scope) == [g.id, o.id, tm.id]
    with pytest.raises(PermissionDeniedError):
        await listed(foreign, org_scope)
    with pytest.raises(PermissionDeniedError):
        await listed(oadmin, GLOBAL)

    # one server: visible within its scope, changed only by its scope's admins
    assert (await mcp_servers.get(services, member, tm.id)).id == tm.id
    with pytest.raises(NotFoundError):
        await mcp_servers.get(services, foreign, tm.id)
    assert (await mcp_servers.get(services, foreign, g.id)).id == g.id
    for actor, server_id, words in (
        (member, tm.id, "team admin"),
        (tadmin, o.id, "org admin"),
        (oadmin, g.id, "system admin"),
    ):
        with pytest.raises(PermissionDeniedError, match=words):
            await mcp_servers.update(services, actor, server_id, McpServerUpdate(name="X"))
    renamed = await mcp_servers.update(
        services, tadmin, tm.id, McpServerUpdate(name="Renamed", code_mode_enabled=False)
    )
    assert (renamed.name, renamed.code_mode_enabled) == ("Renamed", False)
    assert (await mcp_servers.set_active(services, oadmin, o.id, False)).is_active is False

    # delete: gone for everyone, alias free again
    with pytest.raises(PermissionDeniedError):
        await mcp_servers.delete(services, member, tm.id)
    await mcp_servers.delete(services, tadmin, tm.id)
    with pytest.raises(NotFoundError):
        await mcp_servers.get(services, world.system, tm.id)
    assert (await create(tadmin, team_scope, "tools")).alias == "tools"


async def test_secrets_are_sealed_and_never_returned(sqlite_dsn: str) -> None:
    """The HTTP slice of the family (201, the bodies, scopes in the path) and the secrets: sealed to their row
    and in the running registry, never in a response."""
    async with gateway(sqlite_dsn) as gw:
        sys, client = admin(gw), gw.client
        org = await default_org(gw)
        team = (await create_team(gw, org, "tee"))["id"]
        g = await client.post(
            f"{API}/mcp-servers", headers=sys, json=server("tools", auth_type="bearer", auth_token=TOKEN)
        )
        assert g.status_code == 201, g.text
        g_id = g.json()["id"]
        team_made = await client.post(
            f"{API}/orgs/{org}/teams/{team}/mcp-servers", headers=sys, json=server("tools")
        )
        assert (team_made.status_code, team_made.json()["scope"], team_made.json()["team_id"]) == (
            201,
            "team",
            team,
        )
        member_id = await add_user(gw, org, "m@a.io")
        await join_team(gw, team, member_id)
        member = bearer(await user_key(gw, org, member_id))
        refused = await client.post(
            f"{API}/orgs/{org}/teams/{team}/mcp-servers", headers=member, json=server("x")
        )
        assert "team admin" in error_of(refused, 403)["message"]
        listed = await client.get(f"{API}/mcp-servers", headers=sys)
        assert [row["id"] for row in listed.json()["data"]] == [g_id]

        assert g.json()["has_auth_token"] is True
        assert "auth_token" not in g.json()
        for response in (g, listed, await client.get(f"{API}/mcp-servers/{g_id}", headers=sys)):
            assert TOKEN not in response.text
        row = await stored_row(gw, g_id)
        assert TOKEN not in row.auth_token_enc
        keyring = gw.state.services.keyring
        assert keyring.decrypt_secret(row.auth_token_enc, aad=aad_for("mcp_server", g_id)) == TOKEN
        entry = gw.state.services.mcp.registry.get(g_id)
        assert entry.auth_token == TOKEN
        assert TOKEN not in repr(entry)
        # a PATCH without the secret keeps it; switching to no auth drops it
        kept = await client.patch(
            f"{API}/mcp-servers/{g_id}", headers=sys, json={"url": "https://other.example.com/mcp"}
        )
        assert kept.json()["has_auth_token"] is True
        dropped = await client.patch(f"{API}/mcp-servers/{g_id}", headers=sys, json={"auth_type": "none"})
        assert dropped.json()["has_auth_token"] is False
        assert (await stored_row(gw, g_id)).auth_token_enc is None
        assert (await client.delete(f"{API}/mcp-servers/{g_id}", headers=sys)).status_code == 204
        assert (await client.get(f"{API}/mcp-servers/{g_id}", headers=sys)).status_code == 404


async def test_validation_and_conflicts(admin_world: AdminWorld) -> None:
    world, services = admin_world, admin_world.services
    org = await world.org("home")

    async def create(body: dict[str, Any], scope: McpScope = GLOBAL) -> mcp_servers.McpServerOut:
        return await mcp_servers.create(services, world.system, scope, McpServerCreate(**body))

    async def refused(body: dict[str, Any], code: str = "bad_request") -> str:
        with pytest.raises(BadRequestError) as raised:
            await create(body)
        assert raised.value.code == code, body
        return str(raised.value)

    for url in ("ftp://mcp.example.com/", "not a url", "https://user:pw@mcp.example.com/", "http://:80/"):
        await refused(server("a", url))
    for url in (
        "http://127.0.0.1:9/mcp",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest",
        "http://[::1]/",
        "http://localhost:8080/",
        "http://[::ffff:192.168.1.1]/",
        "http://0.0.0.0/",
    ):
        message = await refused(server("a", url), "private_url_not_allowed")
        assert "settings.mcp.allow_private_urls" in message  # says how to allow it
    oauth = {"auth_type": "oauth", "oauth_client_id": "c", "oauth_client_secret": "s"}
    assert "https" in await refused(server("a", **oauth, oauth_token_url="http://idp.example.com/token"))
    await refused(server("a", auth_type="oauth", oauth_client_id="c"))
    await refused(server("a", auth_type="bearer"))
    for header in ("Host", "cookie", "Bad Header", "Mcp-Session-Id", ""):
        await refused(
            server("a", auth_type="header", auth_header=header, auth_token="t"), "invalid_auth_header"
        )
    for alias in ("voidllm", "Upper", "under_score", "-lead", "a" * 64, "x:deleted:y"):
        await refused(server(alias))
    await refused({**server("a"), "auth_type": "magic"})
    await refused({**server("a"), "name": "  "})

    made = await create(
        server("a", auth_type="header", auth_header="X-Api-Key", auth_token="t", oauth_client_id="ignored")
    )
    assert made.auth_header == "X-Api-Key"
    ok_oauth = await create(
        server("b", **oauth, oauth_token_url="https://idp.example.com/token", oauth_scopes="a b")
    )
    assert (ok_oauth.has_oauth_client_secret, ok_oauth.has_auth_token) == (True, False)
    with pytest.raises(ConflictError):
        await create(server("a"))
    await create(server("a"), McpScope(org_id=org))  # another scope
    with pytest.raises(ConflictError):
        await create(server("a"), McpScope(org_id=org))
    with pytest.raises(ConflictError):
        await mcp_servers.update(services, world.system, ok_oauth.id, McpServerUpdate(alias="a"))
    with pytest.raises(BadRequestError):
        await mcp_servers.update(services, world.system, made.id, McpServerUpdate(url="http://10.0.0.1/"))

    for index in range(5):
        await create(server(f"p{index}"))
    seen: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await mcp_servers.list_servers(
            services, world.system, GLOBAL, PageQuery(limit=3, cursor=cursor)
        )
        seen.append([row.id for row in page.data])
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert [len(ids) for ids in seen] == [3, 3, 1]
    assert len({server_id for ids in seen for server_id in ids}) == 7


async def test_validation_answers_in_the_envelope(sqlite_dsn: str) -> None:
    """The HTTP slice of the validation above: a private URL (400 with its code), an alias conflict (409), a
    page limit out of range (400)."""
    async with gateway(sqlite_dsn) as gw:
        sys, client = admin(gw), gw.client
        private = await client.post(f"{API}/mcp-servers", headers=sys, json=server("a", "http://10.1.2.3/"))
        assert error_of(private, 400)["code"] == "private_url_not_allowed"
        assert (await client.post(f"{API}/mcp-servers", headers=sys, json=server("a"))).status_code == 201
        conflict = await client.post(f"{API}/mcp-servers", headers=sys, json=server("a"))
        assert error_of(conflict, 409)["code"] == "conflict"
        assert (await client.get(f"{API}/mcp-servers?limit=0", headers=sys)).status_code == 400


async def test_private_urls_allowed_by_setting(sqlite_dsn: str) -> None:
    async with gateway(sqlite_dsn, allow_private=True) as gw:
        response = await gw.client.post(
            f"{API}/mcp-servers",
            headers=admin(gw),
            json=server(
                "local",
                "http://127.0.0.1:9/mcp",
                auth_type="oauth",
                oauth_client_id="c",
                oauth_client_secret="s",
                oauth_token_url="http://127.0.0.1:9/token",
            ),
        )
        assert response.status_code == 201, response.text


async def test_test_tools_and_refresh_against_a_real_mcp_server(sqlite_dsn: str) -> None:
    async with (
        gateway(sqlite_dsn, allow_private=True) as gw,
        open_mock_mcp(require_header=("Authorization", f"Bearer {TOKEN}")) as mock,
        open_legacy_sse_server() as legacy_url,
    ):
        sys, client = admin(gw), gw.client
        org = await default_org(gw)
        member = bearer(await user_key(gw, org, await add_user(gw, org, "m@a.io")))
        made = await client.post(
            f"{API}/orgs/{org}/mcp-servers",
            headers=sys,
            json=server("mock", mock.url, auth_type="bearer", auth_token=TOKEN),
        )
        server_id = made.json()["id"]
        assert (await client.get(f"{API}/mcp-servers/{server_id}/tools", headers=member)).json() == []

        tested = await client.post(f"{API}/mcp-servers/{server_id}/test", headers=sys)
        assert tested.status_code == 200, tested.text
        body = tested.json()
        assert body["success"] is True
        assert body["legacy_sse"] is False
        assert body["error"] is None
        assert sorted(body["tools"]) == ["big", "echo", "fail", "slow"]
        tools = (await client.get(f"{API}/mcp-servers/{server_id}/tools", headers=member)).json()
        assert [tool["name"] for tool in tools] == ["big", "echo", "fail", "slow"]
        assert {"name": "echo", "description": "Echo the text back.", "blocked": False} in tools
        assert (await client.post(f"{API}/mcp-servers/{server_id}/test", headers=member)).status_code == 403

        refreshed = await client.post(f"{API}/mcp-servers/{server_id}/refresh-tools", headers=sys)
        assert refreshed.status_code == 200
        assert refreshed.json() == {"tool_count": 4}
        too_soon = await client.post(f"{API}/mcp-servers/{server_id}/refresh-tools", headers=sys)
        assert error_of(too_soon, 429)["code"] == "refresh_too_soon"
        assert 1 <= int(too_soon.headers["retry-after"]) <= 60

        wrong = await client.post(
            f"{API}/orgs/{org}/mcp-servers",
            headers=sys,
            json=server("wrong", mock.url, auth_type="bearer", auth_token="not-it"),
        )
        failed = (await client.post(f"{API}/mcp-servers/{wrong.json()['id']}/test", headers=sys)).json()
        assert failed["success"] is False
        assert failed["error"]
        assert "not-it" not in failed["error"]

        old = await client.post(
            f"{API}/orgs/{org}/mcp-servers", headers=sys, json=server("legacy", legacy_url)
        )
        result = (await client.post(f"{API}/mcp-servers/{old.json()['id']}/test", headers=sys)).json()
        assert result["success"] is False
        assert result["legacy_sse"] is True
        assert "HTTP+SSE" in result["error"]


async def test_config_servers_are_listed_and_read_only(sqlite_dsn: str) -> None:
    async with gateway(sqlite_dsn) as gw:
        sys, client, services = admin(gw), gw.client, gw.state.services
        api_made = await client.post(f"{API}/mcp-servers", headers=sys, json=server("taken"))
        configs = [
            MCPServerConfig(name="Files", alias="files", url=URL, auth_type="bearer", auth_token=TOKEN),
            MCPServerConfig(name="Shadow", alias="taken", url=URL),  # the API server of that alias wins
        ]
        await services.store.run(partial(sync_yaml_servers, servers=configs, keyring=services.keyring))
        await services.mcp.reload()
        listed = (await client.get(f"{API}/mcp-servers", headers=sys)).json()["data"]
        by_alias = {row["alias"]: row for row in listed}
        assert set(by_alias) == {"files", "taken"}
        assert by_alias["taken"]["id"] == api_made.json()["id"]
        files = by_alias["files"]
        assert (files["source"], files["has_auth_token"], files["scope"]) == ("yaml", True, "global")
        assert TOKEN not in (await stored_row(gw, files["id"])).auth_token_enc
        one = f"{API}/mcp-servers/{files['id']}"
        for method, path in (("PATCH", one), ("DELETE", one), ("PATCH", one + "/deactivate")):
            response = await client.request(
                method, path, headers=sys, json={"name": "x"} if method == "PATCH" else None
            )
            assert error_of(response, 409)["code"] == "mcp_server_managed_by_config", path
        registry: McpRegistry = services.mcp.registry
        assert registry.get(files["id"]).auth_token == TOKEN

        # a resync without it retires it (and frees the alias)
        await services.store.run(partial(sync_yaml_servers, servers=configs[1:], keyring=services.keyring))
        await services.mcp.reload()
        assert (await client.get(one, headers=sys)).status_code == 404
        assert registry.get(files["id"]) is None


async def test_activation_and_deletion_hold_in_the_registry_at_once(sqlite_dsn: str) -> None:
    async with gateway(sqlite_dsn) as gw:
        sys, client = admin(gw), gw.client
        org = await default_org(gw)
        key = bearer(await user_key(gw, org, await add_user(gw, org, "m@a.io")))
        identity = gw.state.keys.authenticate(key["Authorization"])
        registry: McpRegistry = gw.state.services.mcp.registry
        global_id = (await client.post(f"{API}/mcp-servers", headers=sys, json=server("tools"))).json()["id"]
        assert registry.resolve(identity, "tools").id == global_id
        org_id = (
            await client.post(f"{API}/orgs/{org}/mcp-servers", headers=sys, json=server("tools"))
        ).json()["id"]
        assert registry.resolve(identity, "tools").id == org_id

        await client.patch(f"{API}/mcp-servers/{org_id}/deactivate", headers=sys)
        found = registry.resolve(identity, "tools")
        assert found.id == org_id
        assert found.is_active is False
        await client.patch(f"{API}/mcp-servers/{org_id}/activate", headers=sys)
        assert registry.resolve(identity, "tools").is_active is True

        health = await client.get(f"{API}/mcp-servers/health", headers=key)
        assert health.status_code == 200
        assert {(row["server_id"], row["status"], row["tool_count"]) for row in health.json()} == {
            (global_id, "unknown", None),
            (org_id, "unknown", None),
        }
        listed = [{"name": "a"}, {"name": "b"}]  # fetched by a test or refresh, not yet probed
        await gw.state.services.store.run(partial(replace_tools, server_id=org_id, tools=listed))
        await gw.state.services.mcp.reload()
        health = await client.get(f"{API}/mcp-servers/health", headers=key)
        assert {row["server_id"]: row["tool_count"] for row in health.json()} == {global_id: None, org_id: 2}

        await client.delete(f"{API}/mcp-servers/{org_id}", headers=sys)
        assert registry.resolve(identity, "tools").id == global_id


async def test_mutations_are_audited_without_secrets(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn, settings="audit:\n  flush_interval: 1h")) as gw:
        sys, client = admin(gw), gw.client
        org = await default_org(gw)
        made = await client.post(
            f"{API}/orgs/{org}/mcp-servers",
            headers=sys,
            json=server("audited", auth_type="oauth", oauth_client_id="c", oauth_client_secret=TOKEN),
        )
        server_id = made.json()["id"]
        await client.patch(
            f"{API}/mcp-servers/{server_id}", headers=sys, json={"auth_type": "bearer", "auth_token": TOKEN}
        )
        await client.patch(f"{API}/mcp-servers/{server_id}/deactivate", headers=sys)
        await client.put(f"{API}/orgs/{org}/mcp-access", headers=sys, json={"servers": []})
        await client.delete(f"{API}/mcp-servers/{server_id}", headers=sys)
    rows = await audit_rows(sqlite_dsn)
    assert [(row["action"], row["resource_type"]) for row in rows] == [
        ("create", "mcp_server"),
        ("update", "mcp_server"),
        ("deactivate", "mcp_server"),
        ("replace", "mcp_access"),
        ("delete", "mcp_server"),
    ]
    assert rows[0]["resource_id"] == server_id
    assert rows[0]["org_id"] == org
    assert all(TOKEN not in (row["description"] or "") for row in rows)
