"""Issue 22 point 3: the incident log on real sockets: what a failover, a fallback and a client-facing
failure record (rows and metric), and the rows' metadata only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
import trio

from tests.gateway import RunningGateway, make_config, run_gateway
from voidllm.identity import KeyIdentity, Role
from voidllm.metrics import REGISTRY
from voidllm.store import tables
from voidllm.store.store import open_store
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream
from voidllm.usage.incidents import Incident, open_incident_channel, record_incidents

FIELDS = (
    "kind",
    "model",
    "deployment",
    "provider",
    "error_class",
    "status_code",
    "attempt",
    "client_outcome",
)


def deployments(*mocks: MockUpstream, name: str = "m", extra: str = "") -> str:
    lines = [f"  - name: {name}\n    strategy: priority\n{extra}    deployments:"]
    for index, mock in enumerate(mocks):
        lines.append(
            f'      - {{name: d{index}, provider: openai, base_url: "{mock.base_url}", priority: {index}}}'
        )
    return "\n".join(lines) + "\n"


async def chat(gw: RunningGateway, model: str = "m", **body: object) -> int:
    response = await gw.client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.api_key()}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], **body},
    )
    return response.status_code


async def incident_rows(dsn: str, driver: str = "sqlite") -> list[dict[str, Any]]:
    """Every incidents row in id order (read after the gateway stopped and its writer flushed)."""
    async with open_store(driver, dsn) as store:
        return await store.run(
            lambda conn: [
                dict(r)
                for r in conn.execute(sa.select(tables.incidents).order_by(tables.incidents.c.id)).mappings()
            ]
        )


def summary(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(row[field] for field in FIELDS) for row in rows]


def incidents_metric(deployment: str, kind: str, error_class: str, model: str = "m") -> float:
    labels = {"model": model, "deployment": deployment, "kind": kind, "error_class": error_class}
    return REGISTRY.get_sample_value("voidllm_upstream_incidents_total", labels) or 0.0


async def test_a_failover_records_the_failure_and_the_failover_as_served(sqlite_dsn: str) -> None:
    before = incidents_metric("d0", "failure", "http_5xx"), incidents_metric("d0", "failover", "http_5xx")
    async with open_mock_upstream(Behaviour(status=500)) as broken, open_mock_upstream() as ok:
        async with run_gateway(make_config(sqlite_dsn, "models:\n" + deployments(broken, ok))) as gw:
            assert await chat(gw) == 200
            assert await chat(gw) == 200  # two requests, both failing over
    rows = await incident_rows(sqlite_dsn)
    served = ("m", "d0", "openai", "http_5xx", 500, 1, "served")
    assert summary(rows) == [("failure", *served), ("failover", *served)] * 2
    assert len({row["request_id"] for row in rows}) == 2  # each row names its request
    assert all(row["requested_model"] == "m" and row["team_id"] is None for row in rows)
    assert all(row["org_id"] and row["key_id"] for row in rows)
    after = incidents_metric("d0", "failure", "http_5xx"), incidents_metric("d0", "failover", "http_5xx")
    assert (after[0] - before[0], after[1] - before[1]) == (2, 2)


async def test_a_fallback_records_the_failures_of_the_first_model_and_the_hop(sqlite_dsn: str) -> None:
    async with (
        open_mock_upstream(Behaviour(status=503)) as down,
        open_mock_upstream(Behaviour(status=429)) as limited,
        open_mock_upstream() as up,
    ):
        models = (
            "models:\n"
            + deployments(down, limited, name="primary", extra="    fallback: backup\n")
            + deployments(up, name="backup")
        )
        async with run_gateway(make_config(sqlite_dsn, models)) as gw:
            assert await chat(gw, "primary") == 200
    rows = await incident_rows(sqlite_dsn)
    assert summary(rows) == [
        ("failure", "primary", "d0", "openai", "http_5xx", 503, 1, "served"),
        ("failover", "primary", "d0", "openai", "http_5xx", 503, 1, "served"),
        ("failure", "primary", "d1", "openai", "http_429", 429, 2, "served"),
        ("fallback", "primary", "d1", "openai", "http_429", 429, 2, "served"),
    ]
    assert {row["requested_model"] for row in rows} == {"primary"}


async def test_every_deployment_failing_is_a_client_error(sqlite_dsn: str) -> None:
    async with (
        open_mock_upstream(Behaviour(fail="reset")) as reset,
        open_mock_upstream(Behaviour(status=502)) as bad,
    ):
        async with run_gateway(make_config(sqlite_dsn, "models:\n" + deployments(reset, bad))) as gw:
            assert await chat(gw) == 502  # the last candidate's answer, relayed
    rows = await incident_rows(sqlite_dsn)
    assert summary(rows) == [
        ("failure", "m", "d0", "openai", "connect_error", None, 1, "error"),
        ("failover", "m", "d0", "openai", "connect_error", None, 1, "error"),
        ("failure", "m", "d1", "openai", "http_5xx", 502, 2, "error"),
    ]


async def test_a_first_attempt_that_succeeds_records_nothing(sqlite_dsn: str) -> None:
    async with open_mock_upstream() as ok:
        async with run_gateway(make_config(sqlite_dsn, "models:\n" + deployments(ok))) as gw:
            assert await chat(gw) == 200
            assert await chat(gw, stream=True) == 200
    assert await incident_rows(sqlite_dsn) == []


async def test_the_breaker_refusing_every_candidate_is_recorded_per_deployment(sqlite_dsn: str) -> None:
    breaker = "circuit_breaker:\n  threshold: 1\n  timeout: 30s"
    async with open_mock_upstream(Behaviour(status=500)) as a, open_mock_upstream(Behaviour(status=500)) as b:
        config = make_config(sqlite_dsn, "models:\n" + deployments(a, b), settings=breaker)
        async with run_gateway(config) as gw:
            assert await chat(gw) == 500  # both fail once, which opens both breakers
            assert await chat(gw) == 503  # circuit_open: nothing is sent
    rows = await incident_rows(sqlite_dsn)
    assert summary(rows)[3:] == [
        ("failure", "m", "d0", "openai", "breaker_open", None, 0, "error"),
        ("failure", "m", "d1", "openai", "breaker_open", None, 0, "error"),
    ]


async def test_a_client_that_leaves_is_cancelled_not_an_error(sqlite_dsn: str) -> None:
    async with (
        open_mock_upstream(Behaviour(status=503)) as down,
        open_mock_upstream(Behaviour(latency=30)) as slow,
    ):
        async with run_gateway(make_config(sqlite_dsn, "models:\n" + deployments(down, slow))) as gw:
            with trio.move_on_after(1):  # the client gives up while the second deployment thinks
                await chat(gw)
            with trio.fail_after(5):
                await slow.wait_client_closed()
    rows = await incident_rows(sqlite_dsn)
    assert summary(rows) == [
        ("failure", "m", "d0", "openai", "http_5xx", 503, 1, "cancelled"),
        ("failover", "m", "d0", "openai", "http_5xx", 503, 1, "cancelled"),
    ]


def identity() -> KeyIdentity:
    return KeyIdentity(key_id="key-1", key_type="user_key", name="k", role=Role.MEMBER, org_id="org-1")


def incident(kind: str = "failure", error_class: str = "http_5xx") -> Incident:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    return Incident(kind, "m", "d0", "openai", error_class, 500, 1, at)


async def test_a_full_channel_drops_the_row_and_counts_it() -> None:
    recorder, receive = open_incident_channel(1)
    dropped = REGISTRY.get_sample_value("voidllm_incidents_dropped_total") or 0.0
    counted = incidents_metric("d0", "failure", "http_5xx")
    record_incidents(
        recorder,
        [incident(), incident()],
        identity=identity(),
        request_id="r" * 80,
        requested_model="alias",
        client_outcome="served",
    )
    assert REGISTRY.get_sample_value("voidllm_incidents_dropped_total") == dropped + 1
    assert incidents_metric("d0", "failure", "http_5xx") == counted + 2  # counted, queued or not
    row = receive.receive_nowait()
    assert (row.org_id, row.key_id, row.requested_model, row.model) == ("org-1", "key-1", "alias", "m")
    assert row.request_id == "r" * 64  # clipped to its column
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()


def test_a_word_outside_the_vocabulary_is_a_bug() -> None:
    for noted, outcome in (([incident(kind="outage")], "served"), ([incident()], "perhaps")):
        with pytest.raises(ValueError, match="not"):
            record_incidents(
                None, noted, identity=identity(), request_id=None, requested_model="m", client_outcome=outcome
            )


async def test_error_classes_of_a_hang_a_broken_stream_and_a_refused_key(sqlite_dsn: str) -> None:
    async with (
        open_mock_upstream(Behaviour(fail="hang")) as hanging,
        open_mock_upstream() as ok,
        open_mock_upstream(Behaviour(fail="drop_mid_stream")) as dropping,
        open_mock_upstream(Behaviour(status=401)) as refusing,
    ):
        models = (
            "models:\n"
            + deployments(hanging, ok, name="slow", extra="    attempt_timeout: 300ms\n")
            + deployments(dropping, name="dropped")
            + deployments(refusing, name="locked")
        )
        async with run_gateway(make_config(sqlite_dsn, models)) as gw:
            assert await chat(gw, "slow") == 200
            assert await chat(gw, "dropped", stream=True) == 200  # headers went out; the stream broke
            assert await chat(gw, "locked") == 401  # relayed: the upstream refused the gateway's key
    rows = await incident_rows(sqlite_dsn)
    assert summary(rows) == [
        ("failure", "slow", "d0", "openai", "timeout", None, 1, "served"),
        ("failover", "slow", "d0", "openai", "timeout", None, 1, "served"),
        ("failure", "dropped", "d0", "openai", "protocol_error", 200, 1, "error"),
        ("failure", "locked", "d0", "openai", "http_4xx", 401, 1, "error"),
    ]
