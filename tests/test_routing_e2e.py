"""Routing through a real gateway to real upstreams: failover, 429 cooldowns, breakers, attempt deadlines."""

from __future__ import annotations

import trio

from tests.gateway import RunningGateway, make_config, run_gateway, usage_rows
from voidllm.metrics import REGISTRY
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream


def deployments(strategy: str, *mocks: MockUpstream, extra: str = "") -> str:
    lines = [f"models:\n  - name: m\n    strategy: {strategy}\n{extra}    deployments:"]
    for index, mock in enumerate(mocks):
        lines.append(
            f'      - {{name: d{index}, provider: openai, base_url: "{mock.base_url}", priority: {index}}}'
        )
    return "\n".join(lines) + "\n"


async def chat(gw: RunningGateway, **body: object) -> int:
    response = await gw.client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.api_key()}"},
        json={"model": "m", **body},
    )
    return response.status_code


async def test_429_fails_over_and_parks_the_deployment_for_its_retry_after(sqlite_dsn: str) -> None:
    async with (
        open_mock_upstream(Behaviour(status=429, retry_after="30")) as limited,
        open_mock_upstream() as ok,
    ):
        async with run_gateway(make_config(sqlite_dsn, deployments("priority", limited, ok))) as gw:
            assert await chat(gw) == 200
            assert (len(limited.requests), len(ok.requests)) == (1, 1)
            assert await chat(gw) == 200  # d0 is cooling down: tried last, so never reached
            assert (len(limited.requests), len(ok.requests)) == (1, 2)
            metrics = (await gw.client.get("/metrics")).text
            assert 'voidllm_rate_limit_failovers_total{deployment="d0",model="m"} 1.0' in metrics


async def test_breaker_opens_after_the_threshold_and_skips_the_deployment(sqlite_dsn: str) -> None:
    breaker = "circuit_breaker:\n  threshold: 2\n  timeout: 30s"
    async with open_mock_upstream(Behaviour(status=500)) as broken, open_mock_upstream() as ok:
        config = make_config(sqlite_dsn, deployments("priority", broken, ok), settings=breaker)
        async with run_gateway(config) as gw:
            for _ in range(4):
                assert await chat(gw) == 200
            assert len(broken.requests) == 2  # two failures opened its breaker; later requests skip it
            assert len(ok.requests) == 4
            metrics = (await gw.client.get("/metrics")).text
            assert 'voidllm_circuit_breaker_state{upstream="m/d0"} 2.0' in metrics


async def test_every_breaker_open_is_503_circuit_open(sqlite_dsn: str) -> None:
    breaker = "circuit_breaker:\n  threshold: 1"
    async with open_mock_upstream(Behaviour(status=502)) as broken:
        async with run_gateway(
            make_config(sqlite_dsn, deployments("priority", broken), settings=breaker)
        ) as gw:
            assert await chat(gw) == 502  # the last candidate's answer, relayed; it opens the breaker
            response = await gw.client.post(
                "/v1/chat/completions",
                json={"model": "m"},
                headers={"Authorization": f"Bearer {gw.api_key()}"},
            )
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "circuit_open"
            assert len(broken.requests) == 1


async def test_attempt_timeout_moves_on_to_the_next_deployment(sqlite_dsn: str) -> None:
    async with open_mock_upstream(Behaviour(fail="hang")) as hanging, open_mock_upstream() as ok:
        config = make_config(
            sqlite_dsn, deployments("priority", hanging, ok, extra="    attempt_timeout: 300ms\n")
        )
        async with run_gateway(config) as gw:
            assert await chat(gw) == 200  # the hanging attempt was given up (or the client's 10 s ran out)
            assert (len(hanging.requests), len(ok.requests)) == (1, 1)
            with trio.fail_after(2):
                await hanging.wait_client_closed()  # the abandoned attempt's connection was closed
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [r["deployment_name"] for r in rows] == ["m/d1"]


async def test_round_robin_spreads_requests(sqlite_dsn: str) -> None:
    async with open_mock_upstream() as a, open_mock_upstream() as b, open_mock_upstream() as c:
        async with run_gateway(make_config(sqlite_dsn, deployments("round-robin", a, b, c))) as gw:
            for _ in range(9):
                assert await chat(gw) == 200
        assert (len(a.requests), len(b.requests), len(c.requests)) == (3, 3, 3)


async def test_stream_that_dies_counts_as_a_breaker_failure(sqlite_dsn: str) -> None:
    breaker = "circuit_breaker:\n  threshold: 1"
    async with open_mock_upstream(Behaviour(fail="drop_mid_stream")) as dying:
        async with run_gateway(
            make_config(sqlite_dsn, deployments("priority", dying), settings=breaker)
        ) as gw:
            assert await chat(gw, stream=True) == 200  # headers were sent; the stream then broke
            assert await chat(gw, stream=True) == 503  # the broken stream opened the breaker


async def test_fallback_model_serves_and_usage_names_both(sqlite_dsn: str) -> None:
    async with open_mock_upstream(Behaviour(status=503)) as down, open_mock_upstream() as up:
        models = f"""models:
  - name: primary
    provider: openai
    base_url: {down.base_url}
    fallback: backup
  - name: backup
    provider: vllm
    base_url: {up.base_url}
    aliases: [spare]
"""
        async with run_gateway(make_config(sqlite_dsn, models)) as gw:
            response = await gw.client.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {gw.api_key()}"},
                json={"model": "primary", "messages": []},
            )
            assert response.status_code == 200
            assert up.requests[-1].json()["model"] == "backup"  # the body names the model that serves
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert [(r["model_name"], r["requested_model_name"], r["status"]) for r in rows] == [
        ("backup", "primary", "ok")
    ]


async def test_hedged_request_over_real_sockets(sqlite_dsn: str) -> None:
    async with open_mock_upstream(Behaviour(latency=5)) as slow, open_mock_upstream() as fast:
        config = make_config(
            sqlite_dsn, deployments("priority", slow, fast, extra="    hedge_after: 200ms\n")
        )
        hedges = {
            r: REGISTRY.get_sample_value("voidllm_hedges_total", {"model": "m", "result": r}) or 0
            for r in ("started", "won")
        }
        async with run_gateway(config) as gw:
            assert await chat(gw) == 200
            assert (len(slow.requests), len(fast.requests)) == (1, 1)
            with trio.fail_after(2):  # long before the slow upstream's five seconds
                await slow.wait_client_closed()  # the losing attempt's connection is closed at once
        for result in ("started", "won"):
            after = REGISTRY.get_sample_value("voidllm_hedges_total", {"model": "m", "result": result})
            assert after == hedges[result] + 1
