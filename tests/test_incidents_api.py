"""Issue 22 points 3 and 4: the incident log's admin API: organisation scoping on incidents the proxy
recorded, the filters, paging and strictness of the list, and the summary by deployment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import trio

from tests.admin_tenancy import API, add_user, admin, bearer, create_org, default_org, error_of, user_key
from tests.gateway import RunningGateway, make_config, run_gateway
from tests.polling import poll_until
from voidllm.store.ids import new_id
from voidllm.testing.mock_openai import Behaviour, open_mock_upstream
from voidllm.usage.incidents import IncidentRecord, insert_incidents

SETTINGS = "usage:\n  flush_interval: 50ms"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def get(gw: RunningGateway, path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
    return await gw.client.get(f"{API}{path}", headers=headers, params=params)


def record(org_id: str, minutes: int, **fields: Any) -> IncidentRecord:
    """A row ``minutes`` after :data:`T0` (a failure of m/d0 whose client was served, unless ``fields``
    say otherwise)."""
    values: dict[str, Any] = {
        "id": new_id(),
        "request_id": None,
        "org_id": org_id,
        "team_id": None,
        "key_id": "k" * 36,
        "requested_model": "m",
        "model": "m",
        "deployment": "d0",
        "provider": "openai",
        "kind": "failure",
        "error_class": "http_5xx",
        "status_code": 500,
        "attempt": 1,
        "client_outcome": "served",
        "created_at": T0 + timedelta(minutes=minutes),
    }
    return IncidentRecord(**(values | fields))


async def seed(gw: RunningGateway, records: list[IncidentRecord]) -> None:
    """Insert rows directly (the list's behaviour is under test here, not the recording)."""
    await gw.state.services.store.run(partial(insert_incidents, records=records))


async def test_org_admins_see_their_own_organisation_and_system_admins_every_one(sqlite_dsn: str) -> None:
    async with open_mock_upstream(Behaviour(status=503)) as down, open_mock_upstream() as up:
        models = f"""models:
  - name: m
    strategy: priority
    deployments:
      - {{name: d0, provider: openai, base_url: "{down.base_url}", priority: 0}}
      - {{name: d1, provider: openai, base_url: "{up.base_url}", priority: 1}}
"""
        async with run_gateway(make_config(sqlite_dsn, models, settings=SETTINGS)) as gw:
            org_a, org_b = await default_org(gw), (await create_org(gw, "beta"))["id"]
            keys = {}
            for org, email in ((org_a, "a@example.com"), (org_b, "b@example.com")):
                user = await add_user(gw, org, email, role="org_admin")
                keys[org] = await user_key(gw, org, user)
                response = await gw.client.post(
                    "/v1/chat/completions", headers=bearer(keys[org]), json={"model": "m", "messages": []}
                )
                assert response.status_code == 200

            async def listed(path: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
                response = await get(gw, path, headers, **params)
                assert response.status_code == 200, response.text
                return list(response.json()["data"])

            async def both_written() -> bool:
                return len(await listed("/incidents", admin(gw))) == 4

            with trio.fail_after(5):
                await poll_until(both_written)
            a_rows = await listed(f"/orgs/{org_a}/incidents", bearer(keys[org_a]))
            assert {(row["org_id"], row["kind"]) for row in a_rows} == {
                (org_a, "failure"),
                (org_a, "failover"),
            }
            assert [row["client_outcome"] for row in a_rows] == ["served", "served"]
            assert {row["org_id"] for row in await listed("/incidents", admin(gw), org_id=org_b)} == {org_b}
            error_of(await get(gw, f"/orgs/{org_b}/incidents", bearer(keys[org_a])), 403)
            error_of(await get(gw, f"/orgs/{org_b}/incidents/summary", bearer(keys[org_a])), 403)
            error_of(await get(gw, "/incidents", bearer(keys[org_a])), 403)
            error_of(await get(gw, "/incidents/summary", bearer(keys[org_a])), 403)
            error_of(await get(gw, f"/orgs/{new_id()}/incidents", admin(gw)), 404)
            summary = (await get(gw, f"/orgs/{org_a}/incidents/summary", bearer(keys[org_a]))).json()
            assert summary["org_id"] == org_a
            assert summary["data"] == [
                {
                    "model": "m",
                    "deployment": "d0",
                    "provider": "openai",
                    "failures": 1,
                    "failovers": 1,
                    "fallbacks": 0,
                    "client_errors": 0,
                }
            ]


async def test_filters_paging_and_strict_parameters(db_target: tuple[str, str]) -> None:
    driver, dsn = db_target
    async with run_gateway(make_config(dsn, driver=driver)) as gw:
        org = await default_org(gw)
        await seed(
            gw,
            [
                record(org, 0),
                record(org, 1, kind="failover"),
                record(
                    org, 2, deployment="d1", error_class="timeout", status_code=None, client_outcome="error"
                ),
                record(org, 3, model="n", deployment="n", provider="anthropic", error_class="http_429"),
                record(org, 4, kind="fallback", error_class="connect_error", status_code=None),
                record("other-org", 5),
            ],
        )
        headers = admin(gw)

        async def minutes(**params: Any) -> list[int]:
            response = await get(gw, "/incidents", headers, **params)
            assert response.status_code == 200, response.text
            return [
                int((datetime.fromisoformat(row["created_at"]) - T0).total_seconds() // 60)
                for row in response.json()["data"]
            ]

        assert await minutes() == [5, 4, 3, 2, 1, 0]  # newest first
        assert await minutes(org_id=org) == [4, 3, 2, 1, 0]
        assert await minutes(kind="failover") == [1]
        assert await minutes(error_class="timeout") == [2]
        assert await minutes(client_outcome="error") == [2]
        assert await minutes(deployment="d1") == [2]
        assert await minutes(model="n") == [3]
        assert await minutes(provider="anthropic") == [3]
        assert await minutes(kind="failure", deployment="d0") == [5, 0]
        window = {
            "from": (T0 + timedelta(minutes=1)).isoformat(),
            "to": (T0 + timedelta(minutes=3)).isoformat(),
        }
        assert await minutes(**window) == [3, 2, 1]  # both ends inclusive

        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 4} | ({"cursor": cursor} if cursor else {})
            page = (await get(gw, "/incidents", headers, **params)).json()
            seen += [row["id"] for row in page["data"]]
            if not page["has_more"]:
                assert page["next_cursor"] is None
                break
            cursor = page["next_cursor"]
        assert len(seen) == len(set(seen)) == 6

        for params, param in (
            ({"kind": "outage"}, "kind"),
            ({"error_class": "boom"}, "error_class"),
            ({"client_outcome": "maybe"}, "client_outcome"),
            ({"from": "yesterday"}, "from"),
            ({"limit": 0}, "limit"),
            ({"severity": "high"}, "severity"),
        ):
            error = error_of(await get(gw, "/incidents", headers, **params), 400)
            assert param in error["message"], (params, error)
            assert "outage" not in error["message"]
            assert "boom" not in error["message"]
        reversed_range = {"from": window["to"], "to": window["from"]}
        assert "from" in error_of(await get(gw, "/incidents", headers, **reversed_range), 400)["message"]
        org_path = f"/orgs/{org}/incidents"
        assert "org_id" in error_of(await get(gw, org_path, headers, org_id=org), 400)["message"]


async def test_summary_totals_by_deployment_over_a_range(db_target: tuple[str, str]) -> None:
    driver, dsn = db_target
    async with run_gateway(make_config(dsn, driver=driver)) as gw:
        org = await default_org(gw)
        await seed(
            gw,
            [
                record(org, 0),
                record(org, 0, kind="failover"),
                record(org, 1, client_outcome="error"),
                record(org, 2, deployment="d1", error_class="http_429", status_code=429),
                record(org, 2, deployment="d1", kind="fallback", error_class="http_429", status_code=429),
                record(org, -600),  # ten hours before: outside the range asked for below
                record("other-org", 1),
            ],
        )
        headers = admin(gw)
        params = {"from": (T0 - timedelta(hours=1)).isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()}
        response = await get(gw, "/incidents/summary", headers, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["org_id"] is None
        rows = [
            (r["model"], r["deployment"], r["failures"], r["failovers"], r["fallbacks"], r["client_errors"])
            for r in body["data"]
        ]
        assert rows == [("m", "d0", 3, 1, 0, 1), ("m", "d1", 1, 0, 1, 0)]  # most failures first
        org_only = (await get(gw, "/incidents/summary", headers, org_id=org, **params)).json()
        assert [(r["deployment"], r["failures"]) for r in org_only["data"]] == [("d0", 2), ("d1", 1)]
        recent = (await get(gw, "/incidents/summary", headers)).json()  # the last 24 hours: nothing
        assert recent["data"] == []
        too_long = {"from": "2026-01-01", "to": "2026-12-01"}
        assert "from" in error_of(await get(gw, "/incidents/summary", headers, **too_long), 400)["message"]
