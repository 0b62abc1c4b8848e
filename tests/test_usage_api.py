"""Issue 7 points 2 and 8: the usage API, MCP usage and the dashboard against a real gateway, on SQLite and
PostgreSQL.

Usage events and MCP tool calls are inserted straight into their tables (in bulk, from a seeded random
generator); every answer is compared with a computation over the raw rows read back from the database.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from tests.admin_tenancy import (
    API,
    MODEL,
    add_user,
    admin,
    bearer,
    create_key,
    create_org,
    create_team,
    default_org,
    error_of,
    join_team,
)
from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow
from voidllm.testing.mock_openai import Behaviour, open_mock_upstream
from voidllm.usage.rollups import roll_up

BASE = datetime(2026, 3, 10, tzinfo=UTC)
FROM, TO = BASE + timedelta(days=1), BASE + timedelta(days=4)
RANGE = {"from": "2026-03-11T00:00:00Z", "to": "2026-03-14T00:00:00Z"}
USAGE_GROUPS = ("model", "team", "key", "user", "day", "hour", "source", "project")
MCP_GROUPS = ("server", "tool", "team", "key", "user", "day", "hour", "status")
ORPHAN_KEY = new_id()  # a key id with no api_keys row: its group has no label


@attrs.define
class World:
    gw: RunningGateway
    keys: dict[str, str]  # caller -> plaintext key
    ids: dict[str, str]
    labels: dict[str, str]  # id -> the name the API should show


@pytest.fixture
async def world(db_target: tuple[str, str]) -> AsyncIterator[World]:
    """Org A (the default org) with teams T1, T2 and users; org B with its admin; keys for each caller."""
    driver, dsn = db_target
    async with open_mock_upstream(Behaviour()) as upstream:
        dead = "http://127.0.0.1:9/v1"
        models = (
            "models:"
            + model_yaml(MODEL, upstream.base_url)
            + model_yaml("dead", dead)
            + f"""
  - name: mixed
    strategy: priority
    deployments:
      - {{name: up, provider: openai, base_url: "{upstream.base_url}"}}
      - {{name: down, provider: openai, base_url: "{dead}", priority: 1}}
"""
        )
        settings = "health_check:\n  health:\n    enabled: true\n    interval: 1h"
        async with run_gateway(make_config(dsn, models, driver=driver, settings=settings)) as gw:
            yield await _populate(gw)


async def _populate(gw: RunningGateway) -> World:
    org_a, org_b = await default_org(gw), (await create_org(gw, "beta"))["id"]
    t1, t2 = (await create_team(gw, org_a, "one"))["id"], (await create_team(gw, org_a, "two"))["id"]
    oadmin = await add_user(gw, org_a, "oadmin@a.io", role="org_admin")
    m1, m2 = await add_user(gw, org_a, "m1@a.io"), await add_user(gw, org_a, "m2@a.io")
    tadmin = await add_user(gw, org_a, "tadmin@a.io")
    foreign = await add_user(gw, org_b, "foreign@b.io", role="org_admin")
    await join_team(gw, t1, m1)
    await join_team(gw, t2, tadmin, "team_admin")
    made = {
        "oadmin": await create_key(gw, org_a, name="oadmin-key", user_id=oadmin),
        "m1": await create_key(gw, org_a, name="m1-key", user_id=m1, team_id=t1),
        "m2": await create_key(gw, org_a, name="m2-key", user_id=m2),
        "tadmin": await create_key(gw, org_a, name="tadmin-key", user_id=tadmin),
        "tkey": await create_key(gw, org_a, name="team-one-key", key_type="team_key", team_id=t1),
        "foreign": await create_key(gw, org_b, name="foreign-key", user_id=foreign),
    }
    revoked = await create_key(gw, org_a, name="revoked", user_id=m2)
    assert (
        await gw.client.delete(f"{API}/orgs/{org_a}/keys/{revoked['id']}", headers=admin(gw))
    ).status_code == 204
    expired = await create_key(gw, org_a, name="expired", user_id=m2)
    past = utcnow() - timedelta(days=1)
    await gw.state.services.store.run(
        lambda conn: conn.execute(
            t.api_keys.update().where(t.api_keys.c.id == expired["id"]).values(expires_at=past)
        )
    )
    keys = {"sys": gw.api_key(), **{caller: str(body["key"]) for caller, body in made.items()}}
    ids = {
        "org_a": org_a,
        "org_b": org_b,
        "t1": t1,
        "t2": t2,
        "oadmin": oadmin,
        "m1": m1,
        "m2": m2,
        "tadmin": tadmin,
        "foreign": foreign,
        **{f"{caller}_key": body["id"] for caller, body in made.items()},
    }
    labels = {
        org_a: "Default",
        org_b: "Beta",
        t1: "One",
        t2: "Two",
        oadmin: "oadmin",
        m1: "m1",
        m2: "m2",
        tadmin: "tadmin",
        foreign: "foreign",
        **{body["id"]: body["name"] for body in made.values()},
    }
    return World(gw, keys, ids, labels)


def _owners(ids: dict[str, str]) -> list[dict[str, Any]]:
    """Who usage rows belong to: (key, type, org, team, user) as the proxy would record them."""
    a, b = ids["org_a"], ids["org_b"]
    return [
        {
            "key_id": ids["m1_key"],
            "key_type": "user_key",
            "org_id": a,
            "team_id": ids["t1"],
            "user_id": ids["m1"],
        },
        {"key_id": ids["m2_key"], "key_type": "user_key", "org_id": a, "team_id": None, "user_id": ids["m2"]},
        {
            "key_id": ids["oadmin_key"],
            "key_type": "user_key",
            "org_id": a,
            "team_id": None,
            "user_id": ids["oadmin"],
        },
        {
            "key_id": ids["tkey_key"],
            "key_type": "team_key",
            "org_id": a,
            "team_id": ids["t1"],
            "user_id": None,
        },
        {"key_id": ORPHAN_KEY, "key_type": "team_key", "org_id": a, "team_id": ids["t2"], "user_id": None},
        {
            "key_id": ids["foreign_key"],
            "key_type": "user_key",
            "org_id": b,
            "team_id": None,
            "user_id": ids["foreign"],
        },
    ]


def _usage_rows(ids: dict[str, str], count: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    owners = _owners(ids)
    rows = []
    for index in range(count):
        prompt, completion = rng.randrange(0, 2000), rng.randrange(0, 800)
        if index < 2:  # exactly on the range's bounds: the first is in, the second is out
            created = FROM if index == 0 else TO
        else:
            created = BASE + timedelta(seconds=rng.randrange(5 * 86400), microseconds=rng.randrange(10**6))
        rows.append(
            {
                "id": new_id(),
                "request_id": None,
                **rng.choice(owners),
                "service_account_id": None,
                "model_name": rng.choice([MODEL, "claude-x", "llama"]),
                "requested_model_name": None,
                "deployment_name": None,
                "provider": "openai",
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "cost_estimate": None if rng.random() < 0.2 else rng.random() / 100,
                "request_duration_ms": rng.randrange(1, 5000),
                "ttft_ms": None,
                "tokens_per_second": None,
                "status_code": 200,
                "status": rng.choice(["ok", "ok", "ok", "error"]),
                "stream": False,
                "source": rng.choice([None, "cli", "web-app"]),
                "project": rng.choice([None, "alpha", "beta/x"]),
                "created_at": created,
            }
        )
    return rows


async def _insert(gw: RunningGateway, table: sa.Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert ``rows`` in one statement (executemany) and read every row of ``table`` back."""

    def write(conn: sa.Connection) -> list[dict[str, Any]]:
        conn.execute(table.insert(), rows)
        return [dict(row) for row in conn.execute(sa.select(table)).mappings()]

    return await gw.state.services.store.run(write)


def _bucket(row: dict[str, Any], group_by: str, columns: dict[str, str]) -> str | None:
    created: datetime = row["created_at"].astimezone(UTC)
    if group_by == "day":
        return created.strftime("%Y-%m-%d")
    if group_by == "hour":
        return created.strftime("%Y-%m-%dT%H:00:00Z")
    return row[columns[group_by]]


USAGE_COLUMNS = {
    "model": "model_name",
    "team": "team_id",
    "key": "key_id",
    "user": "user_id",
    "org": "org_id",
    "source": "source",
    "project": "project",
}
MCP_COLUMNS = {
    "server": "server_alias",
    "tool": "tool_name",
    "status": "status",
    "team": "team_id",
    "key": "key_id",
    "user": "user_id",
    "org": "org_id",
}


def _in_range(rows: Iterable[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    return [row for row in rows if FROM <= row["created_at"] < TO and keep(row)]


def expected_usage(rows: list[dict[str, Any]], group_by: str | None) -> dict[str | None, dict[str, Any]]:
    groups: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[None if group_by is None else _bucket(row, group_by, USAGE_COLUMNS)].append(row)
    if group_by is None and not groups:
        groups[None] = []
    return {
        key: {
            "total_requests": len(members),
            "prompt_tokens": sum(r["prompt_tokens"] for r in members),
            "completion_tokens": sum(r["completion_tokens"] for r in members),
            "total_tokens": sum(r["total_tokens"] for r in members),
            # reports round costs to 9 decimals
            "cost_estimate": pytest.approx(sum(r["cost_estimate"] or 0 for r in members), rel=1e-9, abs=1e-9),
            "avg_duration_ms": pytest.approx(
                sum(r["request_duration_ms"] for r in members) / len(members) if members else 0, rel=1e-9
            ),
            "error_count": sum(r["status"] != "ok" for r in members),
        }
        for key, members in groups.items()
    }


def expected_mcp(rows: list[dict[str, Any]], group_by: str | None) -> dict[str | None, dict[str, Any]]:
    groups: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[None if group_by is None else _bucket(row, group_by, MCP_COLUMNS)].append(row)
    return {
        key: {
            "total_calls": len(members),
            "success_count": sum(r["status"] == "success" for r in members),
            "error_count": sum(r["status"] not in ("success", "timeout") for r in members),
            "timeout_count": sum(r["status"] == "timeout" for r in members),
            "avg_duration_ms": pytest.approx(sum(r["duration_ms"] for r in members) / len(members), rel=1e-9),
            "code_mode_calls": sum(bool(r["code_mode"]) for r in members),
        }
        for key, members in groups.items()
    }


async def _get(world: World, path: str, caller: str = "sys", **params: str) -> dict[str, Any]:
    response = await world.gw.client.get(API + path, headers=bearer(world.keys[caller]), params=params)
    assert response.status_code == 200, (path, params, response.text)
    return dict(response.json())


def _check(
    world: World,
    body: dict[str, Any],
    group_by: str | None,
    expected: dict[str | None, dict[str, Any]],
    self_labelled: tuple[str, ...],
) -> None:
    assert body["from"] == RANGE["from"]
    assert body["to"] == RANGE["to"]
    assert body["group_by"] == group_by
    got = {point["group_key"]: point for point in body["data"]}
    assert len(got) == len(body["data"]), "one data point per group"
    assert {
        key: {k: v for k, v in point.items() if k not in ("group_key", "group_label")}
        for key, point in got.items()
    } == expected, group_by
    for key, point in got.items():
        if group_by in self_labelled:
            assert point["group_label"] == key
        else:
            assert point["group_label"] == (world.labels.get(key) if key is not None else None), (
                group_by,
                key,
            )
    if group_by in ("day", "hour"):
        assert [p["group_key"] for p in body["data"]] == sorted(got)


async def test_every_grouping_equals_the_raw_rows(world: World) -> None:
    rows = await _insert(world.gw, t.usage_events, _usage_rows(world.ids, 600))
    self_labelled = ("model", "day", "hour", "source", "project")
    everything = _in_range(rows, lambda row: True)
    assert FROM in {r["created_at"] for r in everything}
    assert TO not in {r["created_at"] for r in everything}
    for group_by in (None, "org", *USAGE_GROUPS):
        params = RANGE if group_by is None else {**RANGE, "group_by": group_by}
        body = await _get(world, "/usage", **params)
        assert body["org_id"] is None
        _check(world, body, group_by, expected_usage(everything, group_by), self_labelled)
    org_a = world.ids["org_a"]
    in_a = _in_range(rows, lambda row: row["org_id"] == org_a)
    for caller in ("sys", "oadmin"):
        for group_by in (None, *USAGE_GROUPS):
            params = RANGE if group_by is None else {**RANGE, "group_by": group_by}
            body = await _get(world, f"/orgs/{org_a}/usage", caller, **params)
            assert body["org_id"] == org_a
            _check(world, body, group_by, expected_usage(in_a, group_by), self_labelled)
    # the labels really were resolved (not all None), and an unknown key id has none
    keys = {
        p["group_key"]: p["group_label"]
        for p in (await _get(world, "/usage", group_by="key", **RANGE))["data"]
    }
    assert keys[world.ids["m1_key"]] == "m1-key"
    assert keys[ORPHAN_KEY] is None
    users = {
        p["group_key"]: p["group_label"]
        for p in (await _get(world, "/usage", group_by="user", **RANGE))["data"]
    }
    assert users[world.ids["m1"]] == "m1"
    assert users[None] is None


async def test_usage_me_is_the_callers_own(world: World) -> None:
    rows = await _insert(world.gw, t.usage_events, _usage_rows(world.ids, 300))
    ids = world.ids
    own = {
        "m1": lambda row: row["user_id"] == ids["m1"],
        "oadmin": lambda row: row["user_id"] == ids["oadmin"],
        "tkey": lambda row: row["key_id"] == ids["tkey_key"],  # a team key: that key's usage, not the team's
        "sys": lambda row: False,  # the bootstrap admin made no requests
    }
    for caller, keep in own.items():
        for group_by in (None, "key", "day"):
            params = RANGE if group_by is None else {**RANGE, "group_by": group_by}
            body = await _get(world, "/usage/me", caller, **params)
            assert body["org_id"] == ids["org_a"]
            _check(world, body, group_by, expected_usage(_in_range(rows, keep), group_by), ("day",))
    response = await world.gw.client.get(
        API + "/usage/me", headers=bearer(world.keys["m1"]), params={**RANGE, "group_by": "org"}
    )
    assert "system-wide" in error_of(response, 400)["message"]


async def test_org_usage_is_refused_outside_the_org(world: World) -> None:
    org_a = world.ids["org_a"]
    for caller in ("foreign", "m1", "tkey", "tadmin"):
        response = await world.gw.client.get(
            f"{API}/orgs/{org_a}/usage", headers=bearer(world.keys[caller]), params=RANGE
        )
        assert error_of(response, 403)["code"] == "forbidden", caller
        response = await world.gw.client.get(f"{API}/usage", headers=bearer(world.keys[caller]), params=RANGE)
        assert error_of(response, 403)["code"] == "forbidden", caller
    response = await world.gw.client.get(
        f"{API}/orgs/{new_id()}/usage", headers=admin(world.gw), params=RANGE
    )
    assert error_of(response, 404)["code"] == "not_found"
    response = await world.gw.client.get(
        f"{API}/orgs/{org_a}/usage", headers=admin(world.gw), params={**RANGE, "group_by": "org"}
    )
    assert error_of(response, 400)["code"] == "bad_request"


@pytest.mark.parametrize("db_target", ["sqlite"], indirect=True)
async def test_range_and_group_by_are_validated(world: World) -> None:
    cases = [
        ({"to": RANGE["to"]}, "from"),
        ({"from": RANGE["from"]}, "to"),
        ({"from": RANGE["to"], "to": RANGE["from"]}, "before"),
        ({"from": RANGE["from"], "to": RANGE["from"]}, "before"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:01Z"}, "90 days"),
        ({"from": "yesterday-ish", "to": RANGE["to"]}, "from"),
        ({"from": "2026-01-01T00:00:00", "to": RANGE["to"]}, "from"),  # no offset
        ({**RANGE, "group_by": "secret-marker-xyz"}, "group_by"),
        ({**RANGE, "group_by": "server"}, "group_by"),  # an MCP grouping
    ]
    for path in ("/usage", f"/orgs/{world.ids['org_a']}/usage", "/usage/me"):
        for params, named in cases:
            response = await world.gw.client.get(API + path, headers=admin(world.gw), params=params)
            error = error_of(response, 400)
            assert error["code"] == "validation_error", (path, params, error)
            assert named in error["message"], (path, params, error)
            assert "secret-marker" not in response.text
    response = await world.gw.client.get(
        f"{API}/mcp-usage", headers=admin(world.gw), params={**RANGE, "group_by": "model"}
    )
    assert "group_by" in error_of(response, 400)["message"]
    exactly_90_days = {"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
    for path in ("/usage", "/mcp-usage"):
        response = await world.gw.client.get(API + path, headers=admin(world.gw), params=exactly_90_days)
        assert response.status_code == 200, response.text
    empty = (await _get(world, "/usage", **RANGE))["data"]
    assert empty == [
        {
            "group_key": None,
            "group_label": None,
            "total_requests": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "cost_estimate": 0.0,
            "avg_duration_ms": 0.0,
            "error_count": 0,
        }
    ]


# -- MCP usage --------------------------------------------------------------------------------------------


def _mcp_rows(ids: dict[str, str], count: int) -> list[dict[str, Any]]:
    rng = random.Random(11)
    owners = _owners(ids)
    rows = []
    for index in range(count):
        owner = {k: v for k, v in rng.choice(owners).items() if k != "key_type"}
        created = FROM if index == 0 else BASE + timedelta(seconds=rng.randrange(5 * 86400))
        rows.append(
            {
                "id": new_id(),
                "request_id": None,
                **owner,
                "service_account_id": None,
                "server_alias": rng.choice(["github", "jira"]),
                "tool_name": rng.choice(["search", "create_issue", "tools/list"]),
                "duration_ms": rng.randrange(1, 900),
                "status": rng.choice(["success", "success", "transport_error", "timeout"]),
                "code_mode": rng.random() < 0.3,
                "code_mode_execution_id": None,
                "created_at": created,
            }
        )
    return rows


async def test_mcp_usage_equals_the_raw_rows(world: World) -> None:
    rows = await _insert(world.gw, t.mcp_tool_calls, _mcp_rows(world.ids, 300))
    self_labelled = ("server", "tool", "day", "hour", "status")
    everything = _in_range(rows, lambda row: True)
    for group_by in (None, "org", *MCP_GROUPS):
        params = RANGE if group_by is None else {**RANGE, "group_by": group_by}
        _check(
            world,
            await _get(world, "/mcp-usage", **params),
            group_by,
            expected_mcp(everything, group_by),
            self_labelled,
        )
    org_a = world.ids["org_a"]
    in_a = _in_range(rows, lambda row: row["org_id"] == org_a)
    for group_by in (None, *MCP_GROUPS):
        params = RANGE if group_by is None else {**RANGE, "group_by": group_by}
        body = await _get(world, f"/orgs/{org_a}/mcp-usage", "oadmin", **params)
        assert body["org_id"] == org_a
        _check(world, body, group_by, expected_mcp(in_a, group_by), self_labelled)
    for caller in ("foreign", "m1", "tkey"):
        response = await world.gw.client.get(
            f"{API}/orgs/{org_a}/mcp-usage", headers=bearer(world.keys[caller]), params=RANGE
        )
        assert error_of(response, 403)["code"] == "forbidden"


# -- dashboard --------------------------------------------------------------------------------------------


async def test_dashboard_numbers_and_budget_warnings(world: World) -> None:
    gw, ids = world.gw, world.ids
    now = utcnow()
    for path, body in (
        (f"/orgs/{ids['org_a']}", {"daily_token_limit": 1000, "monthly_token_limit": 100_000}),
        (f"/orgs/{ids['org_a']}/teams/{ids['t1']}", {"monthly_token_limit": 1000}),
        (f"/orgs/{ids['org_a']}/keys/{ids['m1_key']}", {"daily_token_limit": 900}),
        (f"/orgs/{ids['org_a']}/keys/{ids['m2_key']}", {"daily_token_limit": 10}),  # limited, nothing used
    ):
        response = await gw.client.patch(API + path, headers=admin(gw), json=body)
        assert response.status_code == 200, response.text
    owners = {o["key_id"]: o for o in _owners(ids)}

    def event(key: str, tokens: int, at: datetime, cost: float | None) -> dict[str, Any]:
        return {
            "id": new_id(),
            **owners[ids[key]],
            "model_name": MODEL,
            "provider": "openai",
            "prompt_tokens": tokens,
            "completion_tokens": 0,
            "total_tokens": tokens,
            "cost_estimate": cost,
            "request_duration_ms": 5,
            "status_code": 200,
            "status": "ok",
            "created_at": at,
        }

    await _insert(
        gw,
        t.usage_events,
        [
            event(
                "m1_key", 850, now, 0.5
            ),  # org A: 85 % of its daily budget, T1 85 % monthly, m1's key 94.4 % daily
            event("foreign_key", 10, now - timedelta(hours=1), 0.25),
            event("foreign_key", 20, now - timedelta(hours=23), None),
            event("foreign_key", 40, now - timedelta(hours=25), 1.0),  # older than 24 hours
        ],
    )
    org_daily = {
        "window": "daily",
        "scope": "org",
        "scope_id": ids["org_a"],
        "name": "Default",
        "limit": 1000,
        "usage": 850,
        "percent_used": 85.0,
    }
    team_monthly = {
        "window": "monthly",
        "scope": "team",
        "scope_id": ids["t1"],
        "name": "One",
        "limit": 1000,
        "usage": 850,
        "percent_used": 85.0,
    }
    key_daily = {
        "window": "daily",
        "scope": "key",
        "scope_id": ids["m1_key"],
        "name": "m1-key",
        "limit": 900,
        "usage": 850,
        "percent_used": 94.4,
    }
    expected = {
        "sys": ("system", 7, 2, 6, 3, 880, 0.75, [org_daily]),
        "oadmin": ("org", 6, 2, 5, 1, 850, 0.5, [key_daily, org_daily, team_monthly]),
        "tkey": ("team", 2, 1, 1, 1, 850, 0.5, [key_daily, org_daily, team_monthly]),
        "tadmin": ("team", 0, 1, 1, 0, 0, 0.0, [org_daily]),  # T2: no keys, no usage, no budgets
        "m1": ("user", 1, None, None, 1, 850, 0.5, [key_daily, org_daily]),
        "m2": ("user", 1, None, None, 0, 0, 0.0, [org_daily]),  # the revoked and the expired key do not count
        "foreign": ("org", 1, 0, 1, 2, 30, 0.25, []),
    }
    for caller, (scope, keys, teams, members, requests, tokens, cost, warnings) in expected.items():
        stats = await _get(world, "/dashboard/stats", caller)
        assert stats.pop("cost_estimate_24h") == pytest.approx(cost, abs=1e-9), caller
        assert stats == {
            "scope": scope,
            "active_keys": keys,
            "total_teams": teams,
            "total_members": members,
            "requests_24h": requests,
            "tokens_24h": tokens,
            "budget_warnings": warnings,
            "models_healthy": 1,
            "models_unhealthy": 1,
            "models_degraded": 1,
        }, caller


async def test_rolled_up_hours_are_read_from_the_rollups_and_the_rest_from_the_events(world: World) -> None:
    """Once the hours are rolled up the reports read ``usage_hourly`` for whole rolled-up hours and the
    events for partial hours at the ends: the figures stay equal to the raw rows for every grouping and for
    a range that starts and ends mid-hour; a change made to a rollup row shows (so the rollups are what is
    read), except in a grouping the rollups do not keep (``source``)."""
    rows = await _insert(world.gw, t.usage_events, _usage_rows(world.ids, 600))
    store = world.gw.state.services.store
    while not (await roll_up(store, lateness=0.0, max_hours=500)).complete:
        pass
    odd_from, odd_to = FROM + timedelta(minutes=30), TO - timedelta(minutes=15)
    odd = {
        "from": odd_from.isoformat().replace("+00:00", "Z"),
        "to": odd_to.isoformat().replace("+00:00", "Z"),
    }
    in_odd = [row for row in rows if odd_from <= row["created_at"] < odd_to]
    for group_by in (None, "org", *USAGE_GROUPS):
        extra = {} if group_by is None else {"group_by": group_by}
        body = await _get(world, "/usage", **RANGE, **extra)
        _check(
            world,
            body,
            group_by,
            expected_usage(_in_range(rows, lambda row: True), group_by),
            ("model", "day", "hour", "source", "project"),
        )
        points = (await _get(world, "/usage", **odd, **extra))["data"]
        assert {
            p["group_key"]: (p["total_requests"], p["total_tokens"], p["error_count"]) for p in points
        } == {
            key: (value["total_requests"], value["total_tokens"], value["error_count"])
            for key, value in expected_usage(in_odd, group_by).items()
        }, group_by
    before = (await _get(world, "/usage", **RANGE))["data"][0]["total_requests"]

    def tamper(connection: sa.Connection) -> None:
        hour = FROM + timedelta(hours=5)
        connection.execute(
            sa.update(t.usage_hourly)
            .where(t.usage_hourly.c.bucket_hour == hour)
            .values(request_count=t.usage_hourly.c.request_count + 1000)
        )

    await store.run(tamper)
    assert (await _get(world, "/usage", **RANGE))["data"][0]["total_requests"] > before
    by_source = (await _get(world, "/usage", **RANGE, group_by="source"))["data"]
    assert sum(point["total_requests"] for point in by_source) == before  # read from the events
