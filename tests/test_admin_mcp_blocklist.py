"""Issue 17 point 4: the per-tool blocklist of an MCP server through the admin API
(docs/reference/behaviour.md 1.6 "Code-Mode blocklist").

Who may read and change which server's blocklist, duplicates (409 ``tool_already_blocked``), unblocking
what is not blocked (404), the blocklists of config-file and built-in servers (editable, unlike the
servers), the ``mcp`` notice after every write, and a deleted server's blocklist and learned schemas going
with it are tested on :mod:`voidllm.admin.mcp_blocklist` directly, on SQLite and PostgreSQL. A thin HTTP
slice covers the status codes, the strict body and query string (400 naming the field), ``blocked`` in the
tool list and the audit rows.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

import attrs
import orjson
import pytest
import sqlalchemy as sa

from tests.admin_fixtures import AdminWorld
from tests.admin_tenancy import API, add_user, admin, bearer, default_org, error_of, user_key
from tests.gateway import make_config, run_gateway
from tests.test_admin_mcp_servers import mcp_cast
from tests.test_audit import audit_rows
from tests.test_services_runtime import RecordingBus
from voidllm.admin import mcp_blocklist, mcp_servers
from voidllm.admin.context import Actor
from voidllm.admin.mcp_blocklist import BlockedToolCreate
from voidllm.admin.mcp_servers import McpScope, McpServerCreate
from voidllm.bus import TOPIC_MCP
from voidllm.config import MCPServerConfig
from voidllm.errors import ConflictError, NotFoundError, PermissionDeniedError
from voidllm.mcp.registry import sync_yaml_servers
from voidllm.mcp.tools_cache import read_blocked, read_blocklist, replace_tools
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow

URL = "https://mcp.example.com/mcp"


def server(alias: str) -> McpServerCreate:
    return McpServerCreate(name=alias.title(), alias=alias, url=URL)


async def test_who_may_read_and_change_a_blocklist(admin_world_each_dialect: AdminWorld) -> None:
    world = admin_world_each_dialect
    bus = RecordingBus()
    services = attrs.evolve(world.services, bus=bus)
    org, team, oadmin, tadmin, member, foreign = await mcp_cast(world)
    g = (await mcp_servers.create(services, world.system, McpScope(), server("glob"))).id
    o = (await mcp_servers.create(services, oadmin, McpScope(org), server("orgs"))).id
    tm = (await mcp_servers.create(services, tadmin, McpScope(org, team), server("team"))).id

    async def block(actor: Actor, server_id: str, tool: str, reason: str = "") -> Any:
        return await mcp_blocklist.block(services, actor, server_id, BlockedToolCreate(tool, reason))

    async def listed(actor: Actor, server_id: str) -> list[str]:
        return [row.tool_name for row in await mcp_blocklist.list_blocked(services, actor, server_id)]

    bus.topics.clear()
    made = await block(tadmin, tm, "  rm_rf ", "  destructive ")
    assert tadmin.identity is not None
    assert (made.tool_name, made.reason, made.created_by) == ("rm_rf", "destructive", tadmin.identity.user_id)
    assert isinstance(made.created_at, datetime)
    assert bus.topics == [TOPIC_MCP]
    await block(oadmin, tm, "drop")
    await block(oadmin, o, "drop")
    await block(world.system, g, "exec")

    # who may change which: the admin of the server's scope, never a member or another org
    for actor, server_id, words in (
        (member, tm, "team admin"),
        (tadmin, o, "org admin"),
        (oadmin, g, "system admin"),
    ):
        with pytest.raises(PermissionDeniedError, match=words):
            await block(actor, server_id, "x")
        with pytest.raises(PermissionDeniedError, match=words):
            await mcp_blocklist.unblock(services, actor, server_id, "drop")
    with pytest.raises(NotFoundError):
        await block(foreign, o, "x")

    # who may read which: whoever sees the server
    assert await listed(member, tm) == ["drop", "rm_rf"]
    assert await listed(member, o) == ["drop"]
    assert await listed(member, g) == ["exec"]
    assert await listed(foreign, g) == ["exec"]
    for server_id in (o, tm):
        with pytest.raises(NotFoundError):
            await listed(foreign, server_id)

    with pytest.raises(ConflictError) as raised:
        await block(world.system, tm, "rm_rf")
    assert raised.value.code == "tool_already_blocked"
    assert await block(world.system, o, "rm_rf")  # the same name on another server

    bus.topics.clear()
    await mcp_blocklist.unblock(services, tadmin, tm, "rm_rf")
    assert bus.topics == [TOPIC_MCP]
    with pytest.raises(NotFoundError, match="not blocked"):
        await mcp_blocklist.unblock(services, tadmin, tm, "rm_rf")
    assert await listed(member, tm) == ["drop"]
    assert await world.store.run(read_blocklist) == {
        g: frozenset({"exec"}),
        o: frozenset({"drop", "rm_rf"}),
        tm: frozenset({"drop"}),
    }
    with pytest.raises(NotFoundError, match="MCP server not found"):
        await block(world.system, new_id(), "x")


async def test_blocklists_of_config_and_builtin_servers_are_editable(
    admin_world_each_dialect: AdminWorld,
) -> None:
    world = admin_world_each_dialect
    services = world.services
    config = [MCPServerConfig(name="Files", alias="files", url=URL)]
    await world.store.run(partial(sync_yaml_servers, servers=config, keyring=services.keyring))
    builtin_id = new_id()
    await world.store.run(
        lambda conn: conn.execute(
            sa.insert(t.mcp_servers).values(
                id=builtin_id, name="VoidLLM", alias="voidllm", url="builtin://voidllm", source="builtin"
            )
        )
    )
    s = t.mcp_servers
    files_id = await world.store.run(
        lambda conn: conn.execute(sa.select(s.c.id).where(s.c.alias == "files")).scalar_one()
    )
    for server_id in (files_id, builtin_id):
        await mcp_blocklist.block(services, world.system, server_id, BlockedToolCreate("delete_org"))
        assert await world.store.run(partial(read_blocked, server_id=server_id)) == {"delete_org"}
        await mcp_blocklist.unblock(services, world.system, server_id, "delete_org")
    org = await world.org("alpha")
    oadmin = await world.user_actor(org, await world.user(org, "oa@a.io", role="org_admin"))
    with pytest.raises(PermissionDeniedError, match="system admin"):
        await mcp_blocklist.block(services, oadmin, builtin_id, BlockedToolCreate("delete_org"))


async def test_a_deleted_servers_blocklist_and_schemas_go_with_it(admin_world: AdminWorld) -> None:
    world, services = admin_world, admin_world.services
    kept = (await mcp_servers.create(services, world.system, McpScope(), server("kept"))).id
    gone = (await mcp_servers.create(services, world.system, McpScope(), server("gone"))).id
    for server_id in (kept, gone):
        await mcp_blocklist.block(services, world.system, server_id, BlockedToolCreate("exec"))
        await world.store.run(
            lambda conn, server_id=server_id: conn.execute(
                sa.insert(t.output_schemas).values(
                    server_id=server_id, tool_name="exec", json_schema="{}", inferred_at=utcnow()
                )
            )
        )
    await mcp_servers.delete(services, world.system, gone)

    def left(conn: sa.Connection) -> list[tuple[str, str]]:
        return [
            (table.name, row.server_id)
            for table in (t.mcp_tool_blocklist, t.output_schemas)
            for row in conn.execute(sa.select(table.c.server_id))
        ]

    assert sorted(await world.store.run(left)) == [("mcp_tool_blocklist", kept), ("output_schemas", kept)]
    assert await world.store.run(read_blocklist) == {kept: frozenset({"exec"})}


async def test_blocklist_over_http(sqlite_dsn: str) -> None:
    """Status codes, the envelope, the strict body and query string, ``blocked`` in the tool list, and one
    audit row per write (the unblock described by its query)."""
    async with run_gateway(make_config(sqlite_dsn, settings="audit:\n  flush_interval: 1h")) as gw:
        sys, client = admin(gw), gw.client
        org = await default_org(gw)
        member = bearer(await user_key(gw, org, await add_user(gw, org, "m@a.io")))
        made = await client.post(
            f"{API}/orgs/{org}/mcp-servers", headers=sys, json={"name": "T", "alias": "t", "url": URL}
        )
        server_id = made.json()["id"]
        one = f"{API}/mcp-servers/{server_id}/blocklist"
        tools = [{"name": name, "description": name.upper()} for name in ("echo", "exec")]
        await gw.state.services.store.run(partial(replace_tools, server_id=server_id, tools=tools))

        blocked = await client.post(one, headers=sys, json={"tool_name": "exec", "reason": "runs code"})
        assert blocked.status_code == 201, blocked.text
        entry = blocked.json()
        assert set(entry) == {"tool_name", "reason", "created_by", "created_at"}
        assert (entry["tool_name"], entry["reason"]) == ("exec", "runs code")
        again = await client.post(one, headers=sys, json={"tool_name": "exec"})
        assert error_of(again, 409)["code"] == "tool_already_blocked"
        assert error_of(await client.post(one, headers=member, json={"tool_name": "x"}), 403)

        listed = await client.get(one, headers=member)
        assert listed.status_code == 200
        assert listed.json() == [entry]
        listed_tools = (await client.get(f"{API}/mcp-servers/{server_id}/tools", headers=member)).json()
        assert listed_tools == [
            {"name": "echo", "description": "ECHO", "blocked": False},
            {"name": "exec", "description": "EXEC", "blocked": True},
        ]

        for body, field in (
            ({"tool_name": "x", "because": "y"}, "because"),
            ({"tool_name": "   "}, "tool_name"),
            ({"tool_name": "x" * 257}, "tool_name"),
            ({"tool_name": "a\u0000b"}, "tool_name"),
            ({"reason": "y"}, "tool_name"),
            ({"tool_name": "x", "reason": "y" * 1025}, "reason"),
        ):
            refused = error_of(await client.post(one, headers=sys, json=body), 400)
            assert refused["field"] == field, body
        assert error_of(await client.delete(one, headers=sys), 400)["field"] == "tool_name"
        assert error_of(await client.delete(f"{one}?tool_name=exec&x=1", headers=sys), 400)["field"] == "x"
        assert error_of(await client.delete(f"{one}?tool_name=echo", headers=sys), 404)["code"] == "not_found"
        assert error_of(await client.delete(f"{one}?tool_name=exec", headers=member), 403)
        assert (await client.delete(f"{one}?tool_name=exec", headers=sys)).status_code == 204
        assert (await client.get(one, headers=sys)).json() == []
        missing = await client.get(f"{API}/mcp-servers/{new_id()}/blocklist", headers=sys)
        assert error_of(missing, 404)["code"] == "not_found"
    rows = [row for row in await audit_rows(sqlite_dsn) if row["resource_type"] == "mcp_tool_blocklist"]
    assert [(row["action"], row["resource_id"], row["status_code"]) for row in rows] == [
        ("create", server_id, 201),
        ("delete", server_id, 204),
    ]
    assert orjson.loads(rows[0]["description"]) == {"tool_name": "exec", "reason": "runs code"}
    assert orjson.loads(rows[1]["description"]) == {"tool_name": "exec"}
