"""Done-when of the routing issue: a three-deployment model keeps answering every request of a steady load
while one deployment is killed and later restarted."""

from __future__ import annotations

import httpx
import pytest
import trio

from tests.gateway import make_config, run_gateway
from voidllm.testing.mock_openai import Behaviour, MockUpstream

pytestmark = pytest.mark.slow

RATE = 50  # requests per second
DURATION = 6.0  # seconds; the victim dies at 2 s and comes back at 4 s


async def test_steady_load_survives_a_dead_deployment(sqlite_dsn: str) -> None:
    async with trio.open_nursery() as servers:
        mocks = [MockUpstream(Behaviour(latency=0.01), record=index == 1) for index in range(3)]
        scopes = []
        for mock in mocks:
            scope = trio.CancelScope()
            scopes.append(scope)
            mock.port = await servers.start(_serve_in, mock, scope, 0)
        models = "models:\n  - name: m\n    strategy: round-robin\n    deployments:\n" + "".join(
            f'      - {{name: d{i}, provider: openai, base_url: "http://127.0.0.1:{m.port}/v1"}}\n'
            for i, m in enumerate(mocks)
        )
        statuses: list[int] = []
        revived_at = 0.0
        config = make_config(sqlite_dsn, models, settings="circuit_breaker:\n  timeout: 1s")
        async with run_gateway(config) as gw:
            headers = {"Authorization": f"Bearer {gw.api_key()}"}
            async with httpx.AsyncClient(
                base_url=gw.url, timeout=10, limits=httpx.Limits(max_connections=20)
            ) as client:

                async def one() -> None:
                    response = await client.post("/v1/chat/completions", headers=headers, json={"model": "m"})
                    statuses.append(response.status_code)

                async def chaos() -> None:
                    nonlocal revived_at
                    await trio.sleep(DURATION / 3)
                    scopes[1].cancel()  # the deployment dies: its listener and connections close
                    await trio.sleep(DURATION / 3)
                    revived = trio.CancelScope()
                    await servers.start(_serve_in, mocks[1], revived, mocks[1].port)  # back on the same port
                    revived_at = trio.current_time()

                async with trio.open_nursery() as load:
                    load.start_soon(chaos)
                    for _ in range(int(RATE * DURATION)):
                        load.start_soon(one)
                        await trio.sleep(1 / RATE)
        servers.cancel_scope.cancel()
    print(
        f"\n{len(statuses)} requests at {RATE}/s over {DURATION}s, one of three deployments down for "
        f"{DURATION / 3}s: {statuses.count(200)} answered 200"
    )
    assert len(statuses) == int(RATE * DURATION)
    assert set(statuses) == {200}
    # once its breaker let a probe through (timeout 1 s), the revived deployment took traffic again
    assert any(request.received_at > revived_at for request in mocks[1].requests)


async def _serve_in(
    mock: MockUpstream,
    scope: trio.CancelScope,
    port: int,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await mock.serve(host="127.0.0.1", port=port, task_status=task_status)
