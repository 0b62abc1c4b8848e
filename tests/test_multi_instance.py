"""Issue 20 point 7: two instances x two workers behave as one gateway.

Two real ``voidllm serve`` processes (``server.workers: 2`` each, their own ephemeral ports) share one fresh
PostgreSQL database and the real Redis (a key prefix of their own); requests alternate between the
instances. One set of processes serves the whole module:

- a key allowed 10 requests a minute lets exactly 10 of 40 concurrent requests pass (a burst that
  straddled a minute boundary is retried with a fresh key, as in tests/test_cross_process_limits.py);
- a key revoked through one instance is refused by the other within 1 s;
- usage totals are exact: every accepted request is one ``usage_events`` row, once the writers flushed
  (checked while serving, and again after both instances stopped on SIGTERM);
- one scrape of ``/metrics`` per instance counts the requests of both its workers;
- the login throttle refuses the 11th attempt from one address, attempts alternating between instances;
- an MCP session opened on one instance continues on the other (its token is sealed, any process opens it);
- the UI's session cookie (and its CSRF token) made by one instance works on the other;
- Code Mode (issue 17 point 5, ``/api/v1/mcp`` with a real upstream MCP server of the ``mcp`` SDK served in
  this process): executions alternating between the instances succeed on all four workers, each tool call
  one ``mcp_tool_calls`` row with ``code_mode`` and its execution id; a tool blocked through A is refused by
  a script on B within 1 s, and callable again within 1 s of its unblocking; an output schema learned on A
  is in the ``execute_code`` description of B's ``tools/list`` within 1 s; the tool list A fetched on first
  use is what B's ``search_tools`` shows, B unable to reach the upstream itself (the store and the ``mcp``
  notice, not a process's own state).
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import pytest
import sqlalchemy as sa
import trio

from tests.admin_tenancy import bearer
from tests.conftest import fresh_pg_database, redis_server_url
from tests.gateway import ADMIN_KEY, ENCRYPTION_KEY, usage_rows
from tests.mcp_calls import initialize_request, stateless_headers, stateless_request
from tests.polling import poll_until
from tests.process import START_LIMIT, GatewayProcess, delete_prefix, spawn_gateway
from tests.test_login_burst import login_from
from tests.test_workers import worker_pids
from tests.test_workers_metrics import REQUESTS, scrape, served_by_pid, total
from voidllm.limits.base import window_bounds
from voidllm.redis.client import open_redis
from voidllm.store import tables as t
from voidllm.store.store import open_store
from voidllm.testing.mock_mcp import MockMcp, open_mock_mcp
from voidllm.testing.mock_openai import MockUpstream, open_mock_upstream

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

API = "/api/v1"
CODE_MODE = f"{API}/mcp"
BODY = b'{"model":"m","messages":[]}'
JSON = "application/json"


@attrs.define(eq=False)
class Cluster:
    """The two instances, served by a trio run in another thread; tests only read their addresses and the
    mocks' records, and count what they sent (the usage and metrics checks compare with these counts)."""

    a: GatewayProcess
    b: GatewayProcess
    dsn: str
    prefix: str
    upstream: MockUpstream
    mcp: MockMcp
    code_mcp: MockMcp
    """The upstream of the Code Mode tests, each with a server of its own (:data:`CODE_MODE_SERVERS`)."""
    metrics_dirs: dict[str, Path]
    admin_email: str
    admin_password: str
    token: trio.lowlevel.TrioToken
    accepted: Counter[str] = attrs.field(factory=Counter)
    """Requests answered 200 by the proxy, by key id (each is one usage row)."""
    proxied: Counter[str] = attrs.field(factory=Counter)
    """Requests answered 200 by the proxy, by instance URL (each reached the upstream once)."""
    exit_codes: list[int] = attrs.field(factory=list)
    final_rows: list[dict[str, Any]] = attrs.field(factory=list)

    @property
    def instances(self) -> tuple[GatewayProcess, GatewayProcess]:
        return self.a, self.b

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.a.api_key)

    async def chat(self, url: str, key_id: str, key: str) -> int:
        """One chat completion through the instance at ``url`` on a connection of its own; its status."""
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            response = await client.post(
                "/v1/chat/completions", headers={**bearer(key), "content-type": JSON}, content=BODY
            )
        if response.status_code == 200:
            self.accepted[key_id] += 1
            self.proxied[url] += 1
        return response.status_code

    async def burst(self, key_id: str, key: str, per_instance: int) -> list[int]:
        """``per_instance`` concurrent requests to each instance, alternating; their statuses."""
        statuses: list[int] = []

        async def one(url: str) -> None:
            statuses.append(await self.chat(url, key_id, key))

        async with trio.open_nursery() as nursery:
            for _ in range(per_instance):
                for gw in self.instances:
                    nursery.start_soon(one, gw.url)
        return statuses

    async def create_key(self, **fields: Any) -> tuple[str, str]:
        """A user key of the bootstrap admin made through instance A: (id, plaintext)."""
        async with httpx.AsyncClient(base_url=self.a.url, headers=self.admin, timeout=10) as client:
            me = (await client.get(f"{API}/me")).json()
            body = {"name": "k", "key_type": "user_key", "user_id": me["id"], **fields}
            created = await client.post(f"{API}/orgs/{me['org_id']}/keys", json=body)
        assert created.status_code == 201, created.text
        return str(created.json()["id"]), str(created.json()["key"])

    async def add_code_server(self, alias: str) -> None:
        """Register :attr:`code_mcp` as the global MCP server ``alias`` through instance A."""
        body = {"name": alias.title(), "alias": alias, "url": self.code_mcp.url}
        async with httpx.AsyncClient(base_url=self.a.url, headers=self.admin, timeout=10) as client:
            made = await client.post(f"{API}/mcp-servers", json=body)
        assert made.status_code == 201, made.text

    async def server_id(self, alias: str) -> str:
        """The id of the global MCP server ``alias``."""
        async with httpx.AsyncClient(base_url=self.a.url, headers=self.admin, timeout=10) as client:
            listed = await client.get(f"{API}/mcp-servers")
        assert listed.status_code == 200, listed.text
        (found,) = [server["id"] for server in listed.json()["data"] if server["alias"] == alias]
        return str(found)

    async def code_mode(self, url: str, method: str, **params: Any) -> dict[str, Any]:
        """The result of one stateless (2026-07-28) JSON-RPC request of the admin to the Code Mode server of
        the instance at ``url``, on a connection of its own."""
        headers = {**bearer(self.a.api_key), **stateless_headers(method, params.get("name"))}
        body = stateless_request(method, **params)
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            response = await client.post(CODE_MODE, headers=headers, json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()["result"]
        return result

    async def execute(self, url: str, code: str) -> tuple[bool, Any]:
        """``execute_code`` on the instance at ``url``: ``(is_error, answer)``, the parsed JSON answer or the
        error text."""
        result = await self.code_mode(url, "tools/call", name="execute_code", arguments={"code": code})
        text = result["content"][0]["text"]
        return bool(result["isError"]), (text if result["isError"] else orjson.loads(text))

    async def search_tools(self, url: str, query: str, server: str) -> str:
        arguments = {"query": query, "server": server}
        result = await self.code_mode(url, "tools/call", name="search_tools", arguments=arguments)
        return str(result["content"][0]["text"])

    async def declared(self, url: str, alias: str) -> str:
        """The declarations of server ``alias`` in the ``execute_code`` description of the instance at
        ``url`` (empty when it has none)."""
        listed = await self.code_mode(url, "tools/list")
        (description,) = [tool["description"] for tool in listed["tools"] if tool["name"] == "execute_code"]
        blocks = [
            block for block in description.split("\n\n") if f"declare namespace tools.{alias} {{" in block
        ]
        return "\n\n".join(blocks)


CODE_MODE_SERVERS = ("spread", "guarded", "learner")
"""Global MCP servers of the config, all :attr:`Cluster.code_mcp`: every process knows them from its start
(a server registered while the test runs reaches the other processes a moment later)."""


def config_text(root: Path, dsn: str, redis_url: str, prefix: str, upstream: str, code_mcp: str) -> str:
    servers = "".join(
        f"  - name: {alias.title()}\n    alias: {alias}\n    url: {code_mcp}\n" for alias in CODE_MODE_SERVERS
    )
    return f"""
server:
  workers: 2
  proxy:
    host: 127.0.0.1
    port: 0
database:
  driver: postgres
  dsn: {dsn}
redis:
  enabled: true
  url: {redis_url}
  key_prefix: "{prefix}"
models:
  - name: m
    provider: openai
    base_url: {upstream}
mcp_servers:
{servers}settings:
  encryption_key: {ENCRYPTION_KEY}
  admin_key: {ADMIN_KEY}
  usage:
    flush_interval: 0.05s
    spill_dir: {root / "spill"}
  mcp:
    allow_private_urls: true
    health:
      enabled: false
    code_mode:
      enabled: true
      pool_size: 2
      timeout: 5s
logging:
  level: info
"""


def banner_value(gw: GatewayProcess, label: str) -> str:
    for line in gw.lines:
        if label in line:
            return line.split(label)[1].strip()
    raise AssertionError(f"no {label} in the bootstrap banner")


def metrics_dir(gw: GatewayProcess) -> Path:
    (record,) = [r for r in gw.log("listening") if "metrics_dir" in r]
    return Path(str(record["metrics_dir"]))


async def _serve(
    root: Path, dsn: str, redis_url: str, started: Callable[[Cluster, trio.Event], None]
) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    config = root / "voidllm.yaml"
    async with (
        open_mock_upstream() as upstream,
        open_mock_mcp() as mcp,
        open_mock_mcp() as code_mcp,
        open_redis(redis_url) as redis,
    ):
        config.write_text(config_text(root, dsn, redis_url, prefix, upstream.base_url, code_mcp.url))
        try:
            # A first: it migrates the schema and bootstraps the admin (its banner); B finds both done.
            async with spawn_gateway(config) as a, spawn_gateway(config, expect_banner=False) as b:
                with trio.fail_after(START_LIMIT):  # the manager's line: both workers listen
                    await b.wait_for_line(lambda: any("metrics_dir" in r for r in b.log("listening")))
                cluster = Cluster(
                    a,
                    b,
                    dsn,
                    prefix,
                    upstream,
                    mcp,
                    code_mcp,
                    {gw.url: metrics_dir(gw) for gw in (a, b)},
                    banner_value(a, "Email:"),
                    banner_value(a, "Password:"),
                    trio.lowlevel.current_trio_token(),
                )
                stop = trio.Event()
                started(cluster, stop)
                await stop.wait()
                for gw in (a, b):  # a clean stop flushes the usage writers of every worker
                    gw.signal(signal.SIGTERM)
                for gw in (a, b):
                    cluster.exit_codes.append(await gw.wait_exit())
            cluster.final_rows = await usage_rows("postgres", dsn)
        finally:
            await delete_prefix(redis, prefix)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Both instances for the whole module; afterwards both stopped cleanly and the store holds one usage
    row per accepted request."""
    redis_url = redis_server_url()
    root = tmp_path_factory.mktemp("multi-instance")
    with fresh_pg_database() as dsn:
        ready = threading.Event()
        served: list[tuple[Cluster, trio.Event]] = []
        failed: list[BaseException] = []

        def started(cluster: Cluster, stop: trio.Event) -> None:
            served.append((cluster, stop))
            ready.set()

        def serve() -> None:
            try:
                trio.run(_serve, root, dsn, redis_url, started)
            except BaseException as error:  # re-raised in the test thread
                failed.append(error)
            finally:
                ready.set()

        thread = threading.Thread(target=serve, name="multi-instance", daemon=True)
        thread.start()
        ready.wait(2 * START_LIMIT)
        if failed:
            raise failed[0]
        assert served, "the instances did not start in time"
        cluster, stop = served[0]
        try:
            yield cluster
        finally:
            trio.from_thread.run_sync(stop.set, trio_token=cluster.token)
            thread.join(2 * START_LIMIT)
        if failed:
            raise failed[0]
        assert cluster.exit_codes == [0, 0]
        assert Counter(str(row["key_id"]) for row in cluster.final_rows) == +cluster.accepted


async def test_a_request_limit_holds_across_instances(cluster: Cluster) -> None:
    for _ in range(3):
        key_id, key = await cluster.create_key(requests_per_minute=10)
        before = len(cluster.upstream.requests)
        began = time.time()
        statuses = await cluster.burst(key_id, key, 20)
        if window_bounds("minute", began) == window_bounds("minute", time.time()):
            assert (statuses.count(200), statuses.count(429)) == (10, 30)
            assert len(cluster.upstream.requests) - before == 10
            return
        # a burst that straddled a minute boundary is counted in two windows: 10 + up to 10 may pass
    pytest.fail("three bursts in a row straddled a minute boundary")


async def test_a_key_revoked_on_one_instance_is_refused_by_the_other_within_a_second(
    cluster: Cluster,
) -> None:
    key_id, key = await cluster.create_key()
    assert await cluster.chat(cluster.b.url, key_id, key) == 200  # B knows (and caches) the key
    async with httpx.AsyncClient(base_url=cluster.a.url, headers=cluster.admin, timeout=10) as client:
        org = (await client.get(f"{API}/me")).json()["org_id"]
        assert (await client.delete(f"{API}/orgs/{org}/keys/{key_id}")).status_code == 204

    answers: list[int] = []

    async def refused() -> bool:
        answers.append(await cluster.chat(cluster.b.url, key_id, key))
        return answers[-1] == 401

    with trio.move_on_after(1) as waited:
        await poll_until(refused, interval=0.01)
    assert not waited.cancelled_caught, f"1 s after the revocation B still answers {answers[-3:]}"


async def test_usage_totals_are_exact(cluster: Cluster) -> None:
    key_id, key = await cluster.create_key()
    statuses = await cluster.burst(key_id, key, 15)
    assert statuses == [200] * 30

    async def rows() -> Counter[str]:
        return Counter(str(row["key_id"]) for row in await usage_rows("postgres", cluster.dsn))

    async def flushed() -> bool:
        written = await rows()
        assert written[key_id] <= 30, written  # never a row too many
        return written == +cluster.accepted

    with trio.fail_after(10):
        await poll_until(flushed, interval=0.05)
    # (the module's fixture checks the totals again after both instances stopped)


async def test_one_scrape_per_instance_counts_all_its_workers(cluster: Cluster) -> None:
    key_id, key = await cluster.create_key()
    for gw in cluster.instances:
        directory = cluster.metrics_dirs[gw.url]
        workers = worker_pids(gw.process.pid)
        assert len(workers) == 2
        before = served_by_pid(directory)
        sent = 0
        while len(served_by_pid(directory) - before) < 2:  # until both workers served some of these
            assert sent < 400, served_by_pid(directory)
            assert await concurrently(cluster, gw.url, key_id, key, 20) == [200] * 20
            sent += 20
            expected = cluster.proxied[gw.url]
            with trio.fail_after(10):  # counted just after the answer's last byte went out
                await poll_until(partial(counted, directory, expected))
        for _ in range(4):  # any worker may answer a scrape: each sees both
            samples = await scrape(gw.url)
            assert total(samples, REQUESTS) == cluster.proxied[gw.url]
            pids = {int(labels["pid"]) for labels, _ in samples["process_resident_memory_bytes"]}
            assert pids == set(workers)


def counted(directory: Path, expected: int) -> bool:
    return sum(served_by_pid(directory).values()) == expected


async def concurrently(cluster: Cluster, url: str, key_id: str, key: str, n: int) -> list[int]:
    """``n`` concurrent requests to one instance; their statuses."""
    statuses: list[int] = []

    async def one() -> None:
        statuses.append(await cluster.chat(url, key_id, key))

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(one)
    return statuses


async def test_the_login_throttle_trips_at_the_11th_attempt_across_instances(cluster: Cluster) -> None:
    statuses = []
    for n in range(11):  # another email each time: the email lockout (5) stays out of the way
        url = cluster.instances[n % 2].url
        response = await login_from(url, "127.0.0.91", f"nobody{n}@example.com", "wrong-password")
        statuses.append(response.status_code)
    assert statuses == [401] * 10 + [429], statuses
    for n, gw in enumerate(cluster.instances):  # refused on both; other addresses are not
        again = await login_from(gw.url, "127.0.0.91", "nobody@example.com", "wrong-password")
        assert again.status_code == 429
        other = await login_from(gw.url, f"127.0.0.{92 + n}", "nobody@example.com", "wrong-password")
        assert other.status_code == 401


def mcp_headers(cluster: Cluster, session: str | None = None) -> dict[str, str]:
    headers = {**cluster.admin, "accept": JSON, "content-type": JSON}
    if session is not None:
        headers["mcp-session-id"] = session
    return headers


def echo(text: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}},
    }


async def test_an_mcp_session_opened_on_one_instance_continues_on_the_other(cluster: Cluster) -> None:
    path = f"{API}/mcp/tools"
    async with httpx.AsyncClient(timeout=10) as client:
        body = {"name": "Tools", "alias": "tools", "url": cluster.mcp.url}
        made = await client.post(cluster.a.url + f"{API}/mcp-servers", headers=cluster.admin, json=body)
        assert made.status_code == 201, made.text
        initialize = initialize_request()
        opened = await client.post(cluster.a.url + path, headers=mcp_headers(cluster), json=initialize)
        assert opened.status_code == 200, opened.text
        session = opened.headers["mcp-session-id"]
        for gw, text in ((cluster.b, "on b"), (cluster.a, "on a"), (cluster.b, "b again")):
            answer = await client.post(gw.url + path, headers=mcp_headers(cluster, session), json=echo(text))
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"]["structuredContent"] == {"text": text}
    # one upstream session carried the calls of both instances
    assert len({r.session_id for r in cluster.mcp.rpc("tools/call")}) == 1


async def test_the_ui_session_cookie_works_on_either_instance(cluster: Cluster) -> None:
    credentials = {"email": cluster.admin_email, "password": cluster.admin_password}
    async with httpx.AsyncClient(timeout=10) as client:
        signed_in = await client.post(cluster.a.url + f"{API}/auth/session", json=credentials)
        assert signed_in.status_code == 200, signed_in.text
        cookies = dict(client.cookies)
        client.cookies.clear()
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        for gw in cluster.instances:
            me = await client.get(gw.url + f"{API}/me", headers={"Cookie": cookie})
            assert me.status_code == 200, me.text
            assert me.json()["email"] == cluster.admin_email
            # a state change needs the CSRF token bound to the session: the other instance checks it too
            team = await client.post(
                gw.url + f"{API}/orgs/{me.json()['org_id']}/teams",
                headers={"Cookie": cookie, "X-CSRF-Token": cookies["voidllm_csrf"], "Origin": gw.url},
                json={"name": f"team-{gw.url.rsplit(':', 1)[1]}"},
            )
            assert team.status_code == 201, team.text
        signed_out = await client.post(
            cluster.b.url + f"{API}/auth/logout",
            headers={"Cookie": cookie, "X-CSRF-Token": cookies["voidllm_csrf"], "Origin": cluster.b.url},
        )
        assert signed_out.status_code in (200, 204), signed_out.text

        async def refused_on_a() -> bool:
            me = await client.get(cluster.a.url + f"{API}/me", headers={"Cookie": cookie})
            return me.status_code == 401

        with trio.fail_after(1):  # signed out on B: A refuses the cookie too
            await poll_until(refused_on_a, interval=0.01)


# -- Code Mode (issue 17 point 5) ----------------------------------------------------------------------------

EXECUTIONS = "voidllm_code_mode_executions_total"


async def tool_call_rows(dsn: str, alias: str) -> list[dict[str, Any]]:
    """The ``mcp_tool_calls`` rows of server ``alias`` written so far."""
    c = t.mcp_tool_calls
    async with open_store("postgres", dsn) as store:
        return await store.run(
            lambda conn: [
                dict(row) for row in conn.execute(sa.select(c).where(c.c.server_alias == alias)).mappings()
            ]
        )


async def test_code_mode_executions_spread_over_both_instances_and_all_their_workers(
    cluster: Cluster,
) -> None:
    code = """
        const [a, b] = await Promise.all([tools.spread.echo({text: "a"}), tools.spread.echo({text: "b"})]);
        return a.text + b.text;
    """
    workers = {gw.url: set(worker_pids(gw.process.pid)) for gw in cluster.instances}
    before = {url: served_by_pid(cluster.metrics_dirs[url], EXECUTIONS) for url in workers}
    executions: list[str] = []

    async def one(url: str) -> None:
        failed, answer = await cluster.execute(url, code)
        assert not failed, answer
        assert answer["result"] == "ab"
        calls = [(c["server"], c["tool"], c["status"]) for c in answer["tool_calls"]]
        assert calls == [("spread", "echo", "success")] * 2
        executions.append(answer["execution_id"])

    def ran_on(url: str) -> set[int]:
        return set(served_by_pid(cluster.metrics_dirs[url], EXECUTIONS) - before[url])

    while any(ran_on(url) != pids for url, pids in workers.items()):  # until all four workers ran some
        assert len(executions) < 80, {url: ran_on(url) for url in workers}
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                for gw in cluster.instances:
                    nursery.start_soon(one, gw.url)

    async def written() -> bool:
        rows = await tool_call_rows(cluster.dsn, "spread")
        assert len(rows) <= 2 * len(executions), len(rows)  # never a row too many
        return len(rows) == 2 * len(executions)

    with trio.fail_after(10):
        await poll_until(written, interval=0.05)
    rows = await tool_call_rows(cluster.dsn, "spread")
    assert Counter(str(row["code_mode_execution_id"]) for row in rows) == {e: 2 for e in executions}
    assert {(row["tool_name"], row["status"], row["code_mode"]) for row in rows} == {
        ("echo", "success", True)
    }


async def test_a_tool_blocked_through_one_instance_is_refused_by_the_other_within_a_second(
    cluster: Cluster,
) -> None:
    server_id = await cluster.server_id("guarded")
    code = "try { await tools.guarded.echo({text: 'x'}); return 'called'; } catch (e) { return e.message; }"
    answers: list[str] = []

    async def answered(expected: str) -> bool:
        failed, answer = await cluster.execute(cluster.b.url, code)
        assert not failed, answer
        answers.append(answer["result"])
        return answers[-1] == expected

    assert await answered("called")
    path = f"{API}/mcp-servers/{server_id}/blocklist"
    async with httpx.AsyncClient(base_url=cluster.a.url, headers=cluster.admin, timeout=10) as client:
        blocked = await client.post(path, json={"tool_name": "echo", "reason": "not on B either"})
        assert blocked.status_code == 201, blocked.text
        with trio.move_on_after(1) as waited:
            await poll_until(partial(answered, "tool is blocked: guarded/echo"), interval=0.01)
        assert not waited.cancelled_caught, f"1 s after blocking, B still answers {answers[-3:]}"
        unblocked = await client.delete(path, params={"tool_name": "echo"})
        assert unblocked.status_code == 204, unblocked.text
        with trio.move_on_after(1) as waited:
            await poll_until(partial(answered, "called"), interval=0.01)
        assert not waited.cancelled_caught, f"1 s after unblocking, B still answers {answers[-3:]}"


async def test_an_output_schema_learned_on_one_instance_is_declared_by_the_other_within_a_second(
    cluster: Cluster,
) -> None:
    unknown = "function echo(args: { text: string }): Promise<any>;"
    inferred = "function echo(args: { text: string }): Promise<{ text: string }>; // inferred"
    assert unknown in await cluster.declared(cluster.b.url, "learner")  # B fetched the list itself
    failed, answer = await cluster.execute(
        cluster.a.url, "return await tools.learner.echo({text: 'a shape'})"
    )
    assert (failed, answer["result"]) == (False, {"text": "a shape"})
    declared: list[str] = []

    async def shown() -> bool:
        declared.append(await cluster.declared(cluster.b.url, "learner"))
        return inferred in declared[-1]

    with trio.move_on_after(1) as waited:
        await poll_until(shown, interval=0.01)
    assert not waited.cancelled_caught, f"1 s after learning on A, B declares {declared[-1]}"


async def test_a_tool_list_fetched_on_first_use_by_one_instance_is_searched_on_the_other(
    cluster: Cluster,
) -> None:
    # registered now, so that no process has its list (a tools/list of Code Mode lists every server it lacks)
    await cluster.add_code_server("unlisted")
    lists = len(cluster.code_mcp.rpc("tools/list"))
    answers: list[Any] = []

    async def called() -> bool:  # A's other worker learns of the new server a moment later
        answers.append(
            await cluster.execute(cluster.a.url, "return (await tools.unlisted.echo({text: 'x'})).text")
        )
        return answers[-1] != (True, "Error: unknown tool: unlisted/echo")

    # a bound, not the measure: the first use opens an upstream session and fetches the list, which took more
    # than 1 s on a loaded machine (the 1 s below is the measure: B sees what A fetched)
    with trio.fail_after(10):
        await poll_until(called, interval=0.01)
    failed, answer = answers[-1]
    assert not failed, answer
    assert answer["result"] == "x"
    assert len(cluster.code_mcp.rpc("tools/list")) == lists + 1  # the first use asked for the list, once
    cluster.code_mcp.require_header = ("x-unreachable", "yes")  # from now on B cannot ask for it itself
    try:
        found: list[str] = []

        async def searched() -> bool:
            found.append(await cluster.search_tools(cluster.b.url, "echo", "unlisted"))
            return found[-1].startswith('Found 1 tool(s) matching "echo"')

        with trio.move_on_after(1) as waited:
            await poll_until(searched, interval=0.01)
        assert not waited.cancelled_caught, f"1 s after A fetched the list, B answers {found[-1]!r}"
        assert "declare namespace tools.unlisted {" in found[-1]
    finally:
        cluster.code_mcp.require_header = None
