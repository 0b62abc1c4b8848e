"""Issue 8 point 5: MCP server resolution and access (docs/reference/behaviour.md 8.1, section 4), the MCP
access allowlists API, and the MCP health service.

Resolution and access rules are tested on :class:`McpRegistry` directly; the allowlist routes through a
gateway, checking that a grant holds in the running registry at once; the health service on the autojump
clock with a fake prober.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from functools import partial
from typing import Any

import attrs
import trio
import trio.testing

from tests.admin_tenancy import (
    API,
    admin,
    bearer,
    create_key,
    create_org,
    create_team,
    default_org,
    error_of,
    open_gateway,
)
from voidllm.bus import TOPIC_ACCESS, TOPIC_MCP
from voidllm.identity import KeyIdentity, Role
from voidllm.invalidations import Invalidations
from voidllm.mcp.health import (
    MCP_HEALTH_LATENCY,
    MCP_HEALTH_STATUS,
    McpHealthBoard,
    probe_all,
    serve_mcp_health,
)
from voidllm.mcp.registry import McpAccessRules, McpRegistry, McpServerEntry

URL = "https://mcp.example.com/mcp"

GLOBAL = McpServerEntry(id="g", name="Global", alias="tools", url=URL)
ORG = McpServerEntry(id="o", name="Org", alias="tools", url=URL, org_id="org-a")
TEAM = McpServerEntry(id="t", name="Team", alias="tools", url=URL, org_id="org-a", team_id="team-t")
OTHER_ORG = McpServerEntry(id="x", name="Other", alias="only-b", url=URL, org_id="org-b")


def identity(
    role: Role = Role.MEMBER, org: str = "org-a", team: str | None = None, key: str = "k1"
) -> KeyIdentity:
    return KeyIdentity(key_id=key, key_type="user_key", name="k", role=role, org_id=org, team_id=team)


# -- resolution ----------------------------------------------------------------------------------------


def test_team_shadows_org_shadows_global() -> None:
    registry = McpRegistry((GLOBAL, ORG, TEAM, OTHER_ORG))
    assert registry.resolve(identity(team="team-t"), "tools") is TEAM
    assert registry.resolve(identity(team="team-u"), "tools") is ORG  # another team of the org
    assert registry.resolve(identity(), "tools") is ORG
    assert registry.resolve(identity(org="org-c"), "tools") is GLOBAL
    assert registry.resolve(identity(), "only-b") is None  # another org's server is invisible
    assert registry.resolve(identity(org="org-b"), "only-b") is OTHER_ORG
    assert registry.resolve(identity(), "missing") is None


def test_an_inactive_server_still_shadows() -> None:
    """The proxy answers an inactive server 503; it never falls through to the shadowed one."""
    inactive = attrs.evolve(ORG, is_active=False)
    registry = McpRegistry((GLOBAL, inactive))
    found = registry.resolve(identity(), "tools")
    assert found is inactive
    assert not found.is_active
    assert registry.active() == (GLOBAL,)


# -- access --------------------------------------------------------------------------------------------


def test_global_servers_are_closed_until_the_org_grants_them() -> None:
    registry = McpRegistry((GLOBAL,))
    assert not registry.allowed(identity(), GLOBAL)
    registry.replace((GLOBAL,), McpAccessRules(orgs={"org-b": frozenset({"g"})}))
    assert not registry.allowed(identity(), GLOBAL)  # another org's grant
    registry.replace((GLOBAL,), McpAccessRules(orgs={"org-a": frozenset({"g"})}))
    assert registry.allowed(identity(), GLOBAL)
    assert registry.allowed(identity(team="team-t"), GLOBAL)


def test_team_and_key_lists_restrict_when_not_empty() -> None:
    other = McpServerEntry(id="g2", name="Other", alias="other", url=URL)
    orgs = {"org-a": frozenset({"g", "g2"})}
    registry = McpRegistry((GLOBAL, other), McpAccessRules(orgs=orgs, teams={"team-t": frozenset({"g2"})}))
    assert not registry.allowed(identity(team="team-t"), GLOBAL)
    assert registry.allowed(identity(team="team-t"), other)
    assert registry.allowed(identity(team="team-u"), GLOBAL)  # no list for that team
    registry.replace((GLOBAL, other), McpAccessRules(orgs=orgs, keys={"k1": frozenset({"g"})}))
    assert registry.allowed(identity(key="k1"), GLOBAL)
    assert not registry.allowed(identity(key="k1"), other)
    assert registry.allowed(identity(key="k2"), other)
    # a team list cannot open what the org did not grant
    registry.replace(
        (GLOBAL,), McpAccessRules(teams={"team-t": frozenset({"g"})}, keys={"k1": frozenset({"g"})})
    )
    assert not registry.allowed(identity(team="team-t"), GLOBAL)


def test_scoped_servers_need_no_grant_and_system_admins_bypass() -> None:
    registry = McpRegistry((GLOBAL, ORG, TEAM, OTHER_ORG))
    assert registry.allowed(identity(), ORG)
    assert registry.allowed(identity(team="team-t"), TEAM)
    assert not registry.allowed(identity(team="team-u"), TEAM)
    assert not registry.allowed(identity(), OTHER_ORG)
    for server in (GLOBAL, ORG, TEAM, OTHER_ORG):
        assert registry.allowed(identity(Role.SYSTEM_ADMIN), server)
    assert not registry.allowed(identity(Role.ORG_ADMIN), GLOBAL)  # org admins need the grant too


# -- the allowlist API ---------------------------------------------------------------------------------


async def test_allowlists_through_the_api_hold_at_once(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        headers = admin(gw)
        org = await default_org(gw)
        other_org = (await create_org(gw, "beta"))["id"]
        team = (await create_team(gw, org, "tee"))["id"]
        key = await create_key(gw, org, key_type="team_key", team_id=team)
        created = [
            (
                await gw.client.post(
                    f"{API}/mcp-servers",
                    headers=headers,
                    json={"name": f"G{i}", "alias": f"g{i}", "url": URL},
                )
            ).json()["id"]
            for i in range(2)
        ]
        foreign = await gw.client.post(
            f"{API}/orgs/{other_org}/mcp-servers",
            headers=headers,
            json={"name": "B", "alias": "b", "url": URL},
        )
        registry: McpRegistry = gw.state.services.mcp.registry
        team_identity = gw.state.keys.authenticate(f"Bearer {key['key']}")
        server = registry.resolve(team_identity, "g0")
        assert server is not None
        assert not registry.allowed(team_identity, server)

        available = await gw.client.get(f"{API}/orgs/{org}/available-mcp-servers", headers=headers)
        assert available.json() == [
            {"id": created[0], "name": "G0", "alias": "g0"},
            {"id": created[1], "name": "G1", "alias": "g1"},
        ]

        grant = await gw.client.put(
            f"{API}/orgs/{org}/mcp-access", headers=headers, json={"servers": created[::-1]}
        )
        assert grant.status_code == 200
        assert grant.json() == {"servers": sorted(created)}
        assert registry.allowed(team_identity, server)  # without waiting for a periodic reload

        team_list = await gw.client.put(
            f"{API}/orgs/{org}/teams/{team}/mcp-access", headers=headers, json={"servers": [created[1]]}
        )
        assert team_list.status_code == 200
        assert not registry.allowed(team_identity, server)
        read = await gw.client.get(f"{API}/orgs/{org}/teams/{team}/mcp-access", headers=headers)
        assert read.json() == {"servers": [created[1]]}

        key_list = await gw.client.put(
            f"{API}/orgs/{org}/keys/{key['id']}/mcp-access", headers=headers, json={"servers": [created[0]]}
        )
        assert key_list.status_code == 200
        assert (
            await gw.client.get(f"{API}/orgs/{org}/keys/{key['id']}/mcp-access", headers=headers)
        ).json() == {"servers": [created[0]]}

        # another org's server, or no server at all, cannot be granted
        for bad in ([foreign.json()["id"]], ["nope"]):
            refused = await gw.client.put(
                f"{API}/orgs/{org}/mcp-access", headers=headers, json={"servers": bad}
            )
            assert "servers[0]" in error_of(refused, 400)["message"]
        assert (await gw.client.get(f"{API}/orgs/{org}/mcp-access", headers=headers)).json() == {
            "servers": sorted(created)
        }

        # deleting a server drops its grants
        assert (await gw.client.delete(f"{API}/mcp-servers/{created[0]}", headers=headers)).status_code == 204
        assert (await gw.client.get(f"{API}/orgs/{org}/mcp-access", headers=headers)).json() == {
            "servers": [created[1]]
        }
        # a team key (team admin) reads its team's list but not the org's
        assert (
            await gw.client.get(f"{API}/orgs/{org}/teams/{team}/mcp-access", headers=bearer(key["key"]))
        ).status_code == 200
        assert (
            await gw.client.get(f"{API}/orgs/{org}/mcp-access", headers=bearer(key["key"]))
        ).status_code == 403


# -- health service ------------------------------------------------------------------------------------


@attrs.frozen
class Result:
    ok: bool
    tools: int | None = None
    error: str | None = None
    legacy_sse: bool = False


@attrs.define
class FakeProber:
    """Answers per alias after ``delay`` seconds; records when each probe started."""

    answers: dict[str, Result]
    delay: float = 0.25
    hang: frozenset[str] = frozenset()
    started: list[tuple[float, str]] = attrs.field(factory=list)

    async def probe(self, server: Any) -> Result:
        self.started.append((trio.current_time(), server.alias))
        await trio.sleep(3600 if server.alias in self.hang else self.delay)
        return self.answers[server.alias]


def _gauge(gauge: Any, server: McpServerEntry) -> float | None:
    for metric in gauge.collect():
        for sample in metric.samples:
            if sample.labels == {"server": server.name, "alias": server.alias}:
                return float(sample.value)
    return None


async def test_health_service_probes_on_schedule(autojump_clock: trio.testing.MockClock) -> None:
    up = McpServerEntry(id="h1", name="Up", alias="hs-up", url=URL)
    down = McpServerEntry(id="h2", name="Down", alias="hs-down", url=URL)
    stuck = McpServerEntry(id="h3", name="Stuck", alias="hs-stuck", url=URL)
    off = McpServerEntry(id="h4", name="Off", alias="hs-off", url=URL, is_active=False)
    registry = McpRegistry((up, down, stuck, off))
    prober = FakeProber(
        {"hs-up": Result(True, 4), "hs-down": Result(False, error="http 500")}, hang=frozenset({"hs-stuck"})
    )
    fetched: list[str] = []

    async def on_tools(server: McpServerEntry) -> None:
        fetched.append(server.alias)

    board = McpHealthBoard()
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await nursery.start(partial_serve(registry, prober, board, on_tools))
        await trio.sleep(10.5)  # the first round ends when the stuck probe times out at 10 s
        first = {report.alias: report for report in board.reports()}
        assert set(first) == {"hs-up", "hs-down", "hs-stuck"}  # inactive servers are not probed
        assert (first["hs-up"].status, first["hs-up"].latency_ms, first["hs-up"].tool_count) == (
            "healthy",
            250,
            4,
        )
        assert (first["hs-down"].status, first["hs-down"].last_error) == ("unhealthy", "http 500")
        assert (first["hs-stuck"].status, first["hs-stuck"].last_error) == ("unhealthy", "request timeout")
        assert fetched == ["hs-up"]
        assert _gauge(MCP_HEALTH_STATUS, up) == 1.0
        assert _gauge(MCP_HEALTH_STATUS, down) == 0.0
        assert _gauge(MCP_HEALTH_LATENCY, up) == 0.25

        registry.replace((up,), McpAccessRules())  # the others were deleted
        await trio.sleep(60)
        assert sorted({when - start for when, _ in prober.started}) == [0.0, 60.0]
        assert [report.alias for report in board.reports()] == ["hs-up"]
        assert _gauge(MCP_HEALTH_STATUS, down) is None
        nursery.cancel_scope.cancel()


def partial_serve(registry: McpRegistry, prober: FakeProber, board: McpHealthBoard, on_tools: Any) -> Any:
    async def run(task_status: trio.TaskStatus[McpHealthBoard] = trio.TASK_STATUS_IGNORED) -> None:
        await serve_mcp_health(
            registry=registry,
            prober=prober,
            board=board,
            interval=60.0,
            on_tools=on_tools,
            task_status=task_status,
        )

    return run


async def test_probes_are_bounded_to_five_at_a_time(autojump_clock: trio.testing.MockClock) -> None:
    servers: Sequence[McpServerEntry] = [
        McpServerEntry(id=f"c{i}", name=f"C{i}", alias=f"cc-{i}", url=URL) for i in range(7)
    ]
    prober = FakeProber({server.alias: Result(True, 0) for server in servers}, delay=1.0)
    start = trio.current_time()
    await probe_all(servers, prober=prober, board=McpHealthBoard())
    offsets = sorted(when - start for when, _ in prober.started)
    assert offsets == [0.0] * 5 + [1.0] * 2


# -- change notices ------------------------------------------------------------------------------------


async def test_an_mcp_notice_reloads_the_mcp_registry_only() -> None:
    calls: list[str] = []

    async def record(name: str) -> None:
        calls.append(name)

    services = types.SimpleNamespace(
        catalog_reload=partial(record, "catalog"), mcp=types.SimpleNamespace(reload=partial(record, "mcp"))
    )
    invalidations = Invalidations(keys=None, store=None, services=services)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(invalidations.serve)
        invalidations.notice(TOPIC_MCP, "")
        await trio.testing.wait_all_tasks_blocked()
        assert calls == ["mcp"]
        invalidations.notice(TOPIC_ACCESS, "")
        await trio.testing.wait_all_tasks_blocked()
        assert calls == ["mcp", "catalog"]
        nursery.cancel_scope.cancel()
