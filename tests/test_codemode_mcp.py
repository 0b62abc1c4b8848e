"""Issue 17 points 1, 3, 4, 6 and 7: the Code Mode MCP server on /api/v1/mcp, end to end.

A real gateway (hypercorn, SQLite) with Code Mode on and a real upstream MCP server built with the ``mcp``
SDK's server side (``voidllm.testing.mock_mcp``: ``echo``, ``fail``, ``slow``...) registered as the global
server ``tools``. Clients: the official ``mcp`` SDK client in both protocol eras, and raw JSON-RPC over httpx
for the details (transport rules, argument errors, disconnects). Point 7's attacks (each contained sandbox
side in tests/test_codemode_sandbox.py) are run here too, each counted under its own status, the next
execution working.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import httpx
import httpx2
import orjson
import pytest
import sqlalchemy as sa
import trio
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.admin_tenancy import add_user, bearer, default_org, user_key
from tests.gateway import RunningGateway, make_config, metric_sample, run_gateway
from tests.mcp_calls import initialize_request, stateless_headers, stateless_request, tools_gateway
from tests.polling import poll_until
from voidllm.store import tables as t
from voidllm.testing.mock_mcp import MockMcp

PATH = "/api/v1/mcp"
SETTINGS = """
mcp:
  allow_private_urls: true
  call_timeout: 5s
  health:
    enabled: false
  code_mode:
    enabled: true
    timeout: 3s  # a bound, not a measure: a script calling tools on a loaded machine needs more than 1 s
    pool_size: 2
    max_tool_calls: 5
usage:
  flush_interval: 0.05s
"""


def _code_mode(
    dsn: str, settings: str = SETTINGS, *, modern: bool = False
) -> AbstractAsyncContextManager[tuple[RunningGateway, MockMcp]]:
    return tools_gateway(dsn, settings, modern=modern)


def _client(gw: RunningGateway, key: str, mode: str = "auto") -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return Client(streamable_http_client(gw.url + PATH, http_client=http), mode=mode, raise_exceptions=True)


def _text(result: Any) -> str:
    assert len(result.content) == 1
    return str(result.content[0].text)


async def _execute(client: Client, code: str, **extra: Any) -> tuple[bool, Any]:
    """``(is_error, answer)``: the parsed JSON answer, or the error text."""
    result = await client.call_tool("execute_code", {"code": code, **extra})
    text = _text(result)
    return bool(result.is_error), (text if result.is_error else orjson.loads(text))


async def _rows(gw: RunningGateway) -> list[Any]:
    c = t.mcp_tool_calls
    return list(
        await gw.state.services.store.run(
            lambda conn: conn.execute(sa.select(c).order_by(c.c.created_at, c.c.id)).mappings().all()
        )
    )


STATUSES = ("success", "error", "timeout", "oom", "cancelled")


def _executions(status: str) -> float:
    return metric_sample("voidllm_code_mode_executions_total", status=status)


def _stateless_headers(key: str, method: str, name: str | None = None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", **stateless_headers(method, name)}


async def _raw_call(
    client: httpx.AsyncClient, key: str, tool: str, arguments: dict[str, Any], id: int = 1
) -> dict[str, Any]:
    body = stateless_request("tools/call", id, name=tool, arguments=arguments)
    response = await client.post(PATH, headers=_stateless_headers(key, "tools/call", tool), json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


# -- point 1: the server, with the SDK client in both eras ------------------------------------------------


@pytest.mark.parametrize("modern", [False, True], ids=["session-upstream", "modern-upstream"])
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_sdk_client_runs_a_script_that_calls_an_upstream_tool(
    sqlite_dsn: str, mode: str, modern: bool
) -> None:
    async with (
        _code_mode(sqlite_dsn, modern=modern) as (gw, _mock),
        _client(gw, gw.api_key(), mode) as client,
    ):
        listed = await client.list_tools()
        assert [tool.name for tool in listed.tools] == ["list_servers", "search_tools", "execute_code"]
        description = listed.tools[2].description or ""
        assert "declare namespace tools.tools" in description
        assert "function echo(args: { text: string }): Promise<any>;" in description
        assert "declare namespace tools.voidllm" in description

        code = """
            const echo = tools.tools.echo;
            const [a, b] = await Promise.all([echo({text: "one"}), echo({text: "two"})]);
            console.log("got", a.text);
            console.warn({n: 2});
            return {joined: a.text + "+" + b.text};
        """
        failed, answer = await _execute(client, code)
        assert not failed, answer
        assert answer["result"] == {"joined": "one+two"}
        assert [(c["server"], c["tool"], c["status"]) for c in answer["tool_calls"]] == [
            ("tools", "echo", "success"),
            ("tools", "echo", "success"),
        ]
        assert answer["logs"] == [{"level": "info", "msg": "got one"}, {"level": "warn", "msg": '{"n":2}'}]
        assert uuid.UUID(answer["execution_id"]).version == 7
        assert answer["duration_ms"] > 0

        async def written() -> bool:
            return len(await _rows(gw)) == 2

        await poll_until(written)
        rows = await _rows(gw)
        assert {(r["server_alias"], r["tool_name"], r["status"]) for r in rows} == {
            ("tools", "echo", "success")
        }
        assert all(r["code_mode"] is True for r in rows)
        assert {r["code_mode_execution_id"] for r in rows} == {answer["execution_id"]}


async def test_every_kind_of_result_and_failure(sqlite_dsn: str) -> None:
    async with _code_mode(sqlite_dsn) as (gw, _mock), _client(gw, gw.api_key()) as client:
        for code, value in [
            ("return 1.5", 1.5),
            ("return 'plain text'", "plain text"),
            ("return '[1, 2]'", [1, 2]),  # a string that is JSON passes through
            ("return [1, 'a', null]", [1, "a", None]),
            ("return null", None),
            ("return", None),
            ("return {a: {b: true}}", {"a": {"b": True}}),
        ]:
            failed, answer = await _execute(client, code)
            assert (failed, answer["result"]) == (False, value), code
        errors = _executions("error")
        assert await _execute(client, "return (") == (
            True,
            "SyntaxError: unexpected token in expression: '}'",
        )
        assert await _execute(client, "null.x") == (True, "TypeError: cannot read property 'x' of null")
        assert await _execute(client, "throw new Error('own words')") == (True, "Error: own words")
        assert _executions("error") - errors == 3
        before = {status: _executions(status) for status in STATUSES}
        assert await _execute(client, "while (true) {}") == (True, "the script ran out of time (limit 3 s)")
        big = "const a = []; while (true) a.push('x'.repeat(1000) + a.length)"
        assert await _execute(client, big) == (True, "the script ran out of memory (limit 16 MB)")
        assert {status: _executions(status) - before[status] for status in STATUSES} == {
            "success": 0,
            "error": 0,
            "timeout": 1,
            "oom": 1,
            "cancelled": 0,
        }


# Point 7's attacks through the endpoint: the answer each gets, the status it counts, and the next execution
ATTACKS = [
    pytest.param(
        "function f() { return f() + 1 }; return f()",
        "error",
        "InternalError: stack overflow",
        id="deep-recursion",
    ),
    pytest.param(
        "const a = []; while (true) a.push(new Uint8Array(1e6))",
        "oom",
        "the script ran out of memory (limit 16 MB)",
        id="memory-bomb",
    ),
    pytest.param(
        "return 'x'.repeat(1e9).length", "oom", "the script ran out of memory (limit 16 MB)", id="huge-string"
    ),
    pytest.param(
        "await new Promise(() => {})", "timeout", "the script ran out of time (limit 3 s)", id="never-settles"
    ),
    pytest.param(
        "return await import('std')", "error", "import() and NUL characters are not allowed", id="import-std"
    ),
    pytest.param("return await fetch('http://127.0.0.1/')", "error", "ReferenceError: ", id="fetch"),
    pytest.param("return eval('1')", "error", "ReferenceError: ", id="eval"),
    pytest.param(
        "return new Function('return 1')()",
        "error",
        "EvalError: code generation is disabled",
        id="new-Function",
    ),
]


@pytest.mark.parametrize(("code", "status", "answer"), ATTACKS)
async def test_each_attack_is_contained_counted_and_the_next_execution_works(
    sqlite_dsn: str, code: str, status: str, answer: str
) -> None:
    async with _code_mode(sqlite_dsn) as (gw, _mock), _client(gw, gw.api_key()) as client:
        before = {s: _executions(s) for s in STATUSES}
        failed, text = await _execute(client, f"globalThis.leaked = 1;\n{code}")
        assert failed, text
        assert text.startswith(answer), text
        after = {s: _executions(s) - before[s] for s in STATUSES}
        assert after == {s: 1 if s == status else 0 for s in STATUSES}
        assert metric_sample("voidllm_code_mode_pool_available") == 2
        failed, fresh = await _execute(
            client, "return [typeof leaked, (await tools.tools.echo({text: 'ok'})).text]"
        )
        assert (failed, fresh["result"]) == (False, ["undefined", "ok"])


async def test_tampering_with_the_bridge_leaves_tool_calls_intact(sqlite_dsn: str) -> None:
    """Point 7's prototype tampering, through the endpoint: the prelude captured what the bridge uses (a
    script's own ``Promise.all`` would call the replaced ``then``; ``await`` does not)."""
    code = """
        JSON.stringify = () => '{}'; JSON.parse = () => ({});
        Promise.prototype.then = function () { throw new Error('then') };
        Array.prototype.map = () => { throw 1 };
        Object.defineProperty(Object.prototype, 'id', { get() { throw new Error('get id') } });
        const a = await tools.tools.echo({text: 'one'});
        const b = await tools.tools.echo({text: 'two'});
        let caught;
        try { await tools.tools.missing({}) } catch (e) { caught = e.message }
        console.log('seen', a.text);
        return [a.text, b.text, caught];
    """
    async with _code_mode(sqlite_dsn) as (gw, _mock), _client(gw, gw.api_key()) as client:
        failed, answer = await _execute(client, code)
        assert not failed, answer
        assert answer["result"] == ["one", "two", "unknown tool: tools/missing"]
        assert answer["logs"] == [{"level": "info", "msg": "seen one"}]
        assert [(c["tool"], c["status"]) for c in answer["tool_calls"]] == [
            ("echo", "success"),
            ("echo", "success"),
            ("missing", "error"),
        ]


async def test_the_transport_rules_hold_on_code_modes_path(sqlite_dsn: str) -> None:
    """Point 1: /api/v1/mcp checks the Origin and the key like every MCP endpoint, in both protocol eras."""
    async with _code_mode(sqlite_dsn) as (gw, _mock):
        key, host = gw.api_key(), httpx.URL(gw.url).netloc.decode()
        body = stateless_request("tools/list")

        async def post(headers: dict[str, str], json: dict[str, Any] = body) -> httpx.Response:
            return await gw.client.post(PATH, headers=headers, json=json)

        evil = await post({**_stateless_headers(key, "tools/list"), "origin": "http://evil.example"})
        assert (evil.status_code, evil.json()["error"]["code"]) == (403, -32600)
        same = await post({**_stateless_headers(key, "tools/list"), "origin": f"http://{host}"})
        assert same.status_code == 200, same.text
        names = [tool["name"] for tool in same.json()["result"]["tools"]]
        assert names == ["list_servers", "search_tools", "execute_code"]
        anonymous = await post(stateless_headers("tools/list"))
        assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, -32600)
        assert anonymous.headers["www-authenticate"] == "Bearer"
        wrong = await post(_stateless_headers("vl_uk_" + "0" * 48, "tools/list"))
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, -32600)
        session_era = {"authorization": f"Bearer {key}", "accept": "application/json, text/event-stream"}
        opened = await post(session_era, initialize_request())
        assert opened.status_code == 200, opened.text
        assert opened.headers["mcp-session-id"]
        anonymous_session = await post({"accept": "application/json"}, initialize_request())
        assert anonymous_session.status_code == 401


async def test_a_tool_past_the_call_timeout_is_an_error_the_script_can_catch(sqlite_dsn: str) -> None:
    """Point 3: a script's tool call has the proxy's ``call_timeout``; its row says ``timeout``."""
    settings = SETTINGS.replace("call_timeout: 5s", "call_timeout: 1s").replace("timeout: 3s", "timeout: 20s")
    async with _code_mode(sqlite_dsn, settings) as (gw, _mock), _client(gw, gw.api_key()) as client:
        code = """
            try { await tools.tools.slow({seconds: 10}); return 'answered'; }
            catch (e) { return [e.message, (await tools.tools.echo({text: 'after'})).text]; }
        """
        failed, answer = await _execute(client, code)
        assert not failed, answer
        assert answer["result"] == ["tools/slow: the MCP server did not answer in time", "after"]

        async def written() -> bool:
            return len(await _rows(gw)) == 2

        await poll_until(written)
        rows = await _rows(gw)
        assert {(r["tool_name"], r["status"], r["code_mode"]) for r in rows} == {
            ("slow", "timeout", True),
            ("echo", "success", True),
        }
        assert {str(r["code_mode_execution_id"]) for r in rows} == {answer["execution_id"]}


async def test_tool_errors_are_javascript_errors_the_script_can_catch(sqlite_dsn: str) -> None:
    async with _code_mode(sqlite_dsn) as (gw, _mock), _client(gw, gw.api_key()) as client:
        code = """
            const seen = [];
            for (const call of [
                () => tools.nope.anything({}),
                () => tools.tools.missing({}),
                () => tools.tools.fail({reason: "broken on purpose"}),
                () => tools.tools.echo("not an object"),
                () => tools.tools.echo({}),
            ]) {
                try { await call(); seen.push("no error"); } catch (e) { seen.push(e.message); }
            }
            return seen;
        """
        failed, answer = await _execute(client, code)
        assert not failed, answer
        assert answer["result"][:4] == [
            "unknown tool: nope/anything",
            "unknown tool: tools/missing",
            "Error executing tool fail: broken on purpose",
            "tools/echo: arguments must be an object",
        ]
        assert "text" in answer["result"][4]  # the upstream refused the missing argument
        statuses = [c["status"] for c in answer["tool_calls"]]
        assert statuses.count("error") == 5
        # an uncaught tool error fails the script with the tool's text
        failed, text = await _execute(client, "await tools.tools.fail({reason: 'uncaught'})")
        assert (failed, text) == (True, "Error: Error executing tool fail: uncaught")


async def test_max_tool_calls_is_enforced(sqlite_dsn: str) -> None:
    async with _code_mode(sqlite_dsn) as (gw, _mock), _client(gw, gw.api_key()) as client:
        code = """
            const out = [];
            for (let i = 0; i < 7; i++) {
                try { await tools.tools.echo({text: String(i)}); out.push("ok"); }
                catch (e) { out.push(e.message); }
            }
            return out;
        """
        failed, answer = await _execute(client, code)
        assert not failed
        assert answer["result"] == ["ok"] * 5 + ["tool call limit exceeded (max 5)"] * 2
        assert metric_sample("voidllm_code_mode_tool_calls_per_execution_count") >= 1


async def test_servers_argument_narrows_what_a_script_may_call(sqlite_dsn: str) -> None:
    async with _code_mode(sqlite_dsn) as (gw, _mock), _client(gw, gw.api_key()) as client:
        code = "try { await tools.tools.echo({text: 'x'}); return 'called'; } catch (e) { return e.message; }"
        assert (await _execute(client, code, servers=["voidllm"]))[1]["result"] == "unknown tool: tools/echo"
        assert (await _execute(client, code, servers=["tools"]))[1]["result"] == "called"


# -- point 3: the built-in tools in-process, with the caller's RBAC ------------------------------------------


async def test_builtin_tools_run_in_process_with_the_callers_rbac(sqlite_dsn: str) -> None:
    async with _code_mode(sqlite_dsn) as (gw, _mock):
        org = await default_org(gw)
        user = await add_user(gw, org, "member@example.com")
        member = await user_key(gw, org, user)
        code = """
            const models = await tools.voidllm.list_models({});
            let deployments;
            try { await tools.voidllm.list_deployments({model_id: "x"}); }
            catch (e) { deployments = e.message; }
            return {models: models.map(m => m.name), deployments};
        """
        async with _client(gw, member) as client:
            failed, answer = await _execute(client, code)
        assert not failed, answer
        assert "default" in answer["result"]["models"] or answer["result"]["models"] == []
        assert "permission" in answer["result"]["deployments"] or "admin" in answer["result"]["deployments"]

        async def written() -> bool:
            return any(r["server_alias"] == "voidllm" for r in await _rows(gw))

        await poll_until(written)
        builtin = [r for r in await _rows(gw) if r["server_alias"] == "voidllm"]
        assert {(r["tool_name"], r["status"], r["code_mode"]) for r in builtin} == {
            ("list_models", "success", True),
            ("list_deployments", "error", True),
        }


# -- point 4 and access: what a caller may see and call ----------------------------------------------------


async def test_a_global_server_needs_the_orgs_grant(sqlite_dsn: str) -> None:
    async with _code_mode(sqlite_dsn) as (gw, _mock):
        org = await default_org(gw)
        user = await add_user(gw, org, "member@example.com")
        member = await user_key(gw, org, user)
        async with _client(gw, member) as client:
            servers = orjson.loads(_text(await client.call_tool("list_servers", {})))
            assert [s["alias"] for s in servers] == ["voidllm"]
            code = "try { await tools.tools.echo({text: 'x'}); } catch (e) { return e.message; }"
            assert (await _execute(client, code))[1]["result"] == "unknown tool: tools/echo"
            description = (await client.list_tools()).tools[2].description or ""
            assert "tools.tools" not in description
        server_id = (await gw.client.get("/api/v1/mcp-servers", headers=bearer(gw.api_key()))).json()["data"][
            0
        ]["id"]
        granted = await gw.client.put(
            f"/api/v1/orgs/{org}/mcp-access", headers=bearer(gw.api_key()), json={"servers": [server_id]}
        )
        assert granted.status_code == 200, granted.text
        async with _client(gw, member) as client:
            servers = orjson.loads(_text(await client.call_tool("list_servers", {})))
            assert {s["alias"]: s["tool_count"] for s in servers}["tools"] == 4
            code = "return (await tools.tools.echo({text: 'granted'})).text"
            assert (await _execute(client, code))[1]["result"] == "granted"


async def test_a_list_fetch_cut_short_is_asked_again_by_the_next_call(sqlite_dsn: str) -> None:
    async with _code_mode(sqlite_dsn) as (gw, mock):
        # an upstream that takes connections and never answers: the script's 1 s runs out mid-fetch
        (silent,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        async with silent:
            port = silent.socket.getsockname()[1]
            body = {"name": "Late", "alias": "late", "url": f"http://127.0.0.1:{port}/mcp"}
            made = await gw.client.post("/api/v1/mcp-servers", headers=bearer(gw.api_key()), json=body)
            assert made.status_code == 201, made.text
            code = "return (await tools.late.echo({text: 'x'})).text"
            answer = await _raw_call(gw.client, gw.api_key(), "execute_code", {"code": code})
            assert answer["result"]["content"][0]["text"] == "the script ran out of time (limit 3 s)"
        moved = await gw.client.patch(
            f"/api/v1/mcp-servers/{made.json()['id']}", headers=bearer(gw.api_key()), json={"url": mock.url}
        )
        assert moved.status_code == 200, moved.text
        answer = await _raw_call(gw.client, gw.api_key(), "execute_code", {"code": code})
        text = answer["result"]["content"][0]["text"]
        assert answer["result"]["isError"] is False, text  # not "unknown tool: late/echo" for a minute
        assert orjson.loads(text)["result"] == "x"


async def test_search_tools_and_list_servers(sqlite_dsn: str) -> None:
    async with _code_mode(sqlite_dsn) as (gw, _mock), _client(gw, gw.api_key()) as client:
        servers = orjson.loads(_text(await client.call_tool("list_servers", {})))
        by_alias = {s["alias"]: s for s in servers}
        assert by_alias["tools"] == {
            "alias": "tools",
            "name": "Tools",
            "code_mode_enabled": True,
            "tool_count": 4,
        }
        assert by_alias["voidllm"]["tool_count"] == 6
        found = _text(await client.call_tool("search_tools", {"query": "ECHO"}))
        assert found.startswith('Found 1 tool(s) matching "ECHO"')
        assert "function echo(" in found
        assert (
            _text(await client.call_tool("search_tools", {"query": "zzz"})) == 'No tools found matching "zzz"'
        )
        only = _text(await client.call_tool("search_tools", {"query": "list", "server": "tools"}))
        assert only.startswith("No tools found")


async def test_a_disabled_server_and_a_blocked_tool_are_out_of_reach(sqlite_dsn: str) -> None:
    async with _code_mode(sqlite_dsn) as (gw, _mock), _client(gw, gw.api_key()) as client:
        listed = await gw.client.get("/api/v1/mcp-servers", headers=bearer(gw.api_key()))
        server_id = listed.json()["data"][0]["id"]
        blocked = await gw.client.post(
            f"/api/v1/mcp-servers/{server_id}/blocklist",
            headers=bearer(gw.api_key()),
            json={"tool_name": "echo", "reason": "too chatty"},
        )
        assert blocked.status_code == 201, blocked.text
        code = "try { await tools.tools.echo({text: 'x'}); } catch (e) { return e.message; }"
        assert (await _execute(client, code))[1]["result"] == "tool is blocked: tools/echo"
        assert _text(await client.call_tool("search_tools", {"query": "echo"})).startswith("No tools found")
        servers = orjson.loads(_text(await client.call_tool("list_servers", {})))
        assert {s["alias"]: s["tool_count"] for s in servers}["tools"] == 3
        off = await gw.client.patch(
            f"/api/v1/mcp-servers/{server_id}",
            headers=bearer(gw.api_key()),
            json={"code_mode_enabled": False},
        )
        assert off.status_code == 200, off.text
        servers = orjson.loads(_text(await client.call_tool("list_servers", {})))
        assert [s["alias"] for s in servers] == ["voidllm"]


async def test_output_types_are_learned_and_shown(sqlite_dsn: str) -> None:
    async with _code_mode(sqlite_dsn) as (gw, _mock), _client(gw, gw.api_key()) as client:
        secret = "value-never-stored-5d1"
        await _execute(client, f"return await tools.tools.echo({{text: '{secret}'}})")
        learned = t.output_schemas

        async def stored() -> list[Any]:
            return list(
                await gw.state.services.store.run(
                    lambda conn: conn.execute(sa.select(learned)).mappings().all()
                )
            )

        async def one() -> bool:
            return len(await stored()) == 1

        await poll_until(one)
        row = (await stored())[0]
        assert row["tool_name"] == "echo"
        assert orjson.loads(row["json_schema"])["properties"] == {"text": {"type": "string"}}
        assert secret not in row["json_schema"]
        description = (await client.list_tools()).tools[2].description or ""
        assert "function echo(args: { text: string }): Promise<{ text: string }>; // inferred" in description


@pytest.mark.parametrize(("ttl", "relearned"), [("168h", True), ("0s", False)], ids=["stale", "never"])
async def test_a_stale_output_schema_is_learned_again_unless_the_ttl_is_zero(
    sqlite_dsn: str, ttl: str, relearned: bool
) -> None:
    settings = SETTINGS.replace("max_tool_calls: 5", f"max_tool_calls: 5\n    schema_ttl: {ttl}")
    async with _code_mode(sqlite_dsn, settings) as (gw, _mock), _client(gw, gw.api_key()) as client:
        store, learned = gw.state.services.store, t.output_schemas
        await _execute(client, "return await tools.tools.echo({text: 'a'})")

        async def inferred_at() -> Any:
            return await store.run(lambda conn: conn.execute(sa.select(learned.c.inferred_at)).scalar())

        async def stored() -> bool:
            return await inferred_at() is not None

        await poll_until(stored)
        old = datetime(2000, 1, 1, tzinfo=UTC)
        await store.run(lambda conn: conn.execute(sa.update(learned).values(inferred_at=old)))
        await gw.state.services.mcp.changed()  # every process reloads the catalog
        runtime = gw.state.services.mcp.codemode
        queued: list[Any] = []
        learn = runtime.learn

        def recording(output: Any) -> None:
            queued.append(output)
            learn(output)

        runtime.learn = recording  # the decision to learn is made in the execution, before it answers
        await _execute(client, "return await tools.tools.echo({text: 'b'})")
        assert [(o.tool, o.schema["properties"]) for o in queued] == (
            [("echo", {"text": {"type": "string"}})] if relearned else []
        )
        if relearned:

            async def refreshed() -> bool:
                return await inferred_at() != old

            await poll_until(refreshed)
        else:
            assert await inferred_at() == old


# -- the edges --------------------------------------------------------------------------------------------


async def test_bad_arguments_are_json_rpc_errors(sqlite_dsn: str) -> None:
    async with _code_mode(sqlite_dsn) as (gw, _mock):
        key = gw.api_key()
        cases = [
            ("execute_code", {}, "missing required argument: code"),
            ("execute_code", {"code": 1}, "argument code must be a non-empty string"),
            ("execute_code", {"code": "1", "sever": ["x"]}, "unknown argument(s): sever"),
            (
                "execute_code",
                {"code": "1", "servers": "tools"},
                "argument servers must be an array of strings",
            ),
            ("search_tools", {}, "missing required argument: query"),
            ("list_servers", {"x": 1}, "unknown argument(s): x"),
            ("no_such_tool", {}, "unknown tool"),
        ]
        for tool, arguments, message in cases:
            answer = await _raw_call(gw.client, key, tool, arguments)
            assert answer["error"] == {"code": -32602, "message": message}, (tool, arguments)
        too_big = await _raw_call(gw.client, key, "execute_code", {"code": "x" * (256 * 1024 + 1)})
        assert too_big["result"]["isError"] is True
        assert too_big["result"]["content"][0]["text"] == "the code is larger than 262144 bytes"


async def test_code_mode_off_has_no_endpoint(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        body = stateless_request("tools/list")
        response = await gw.client.post(
            PATH, headers=_stateless_headers(gw.api_key(), "tools/list"), json=body
        )
        assert response.status_code == 404


async def test_a_client_that_disconnects_stops_its_execution(sqlite_dsn: str) -> None:
    async with _code_mode(sqlite_dsn) as (gw, mock):
        cancelled = metric_sample("voidllm_code_mode_executions_total", status="cancelled")
        body = stateless_request(
            "tools/call", name="execute_code", arguments={"code": "await tools.tools.slow({seconds: 30})"}
        )
        headers = _stateless_headers(gw.api_key(), "tools/call", "execute_code")
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client, trio.open_nursery() as nursery:

            async def post() -> None:
                await client.post(PATH, headers=headers, json=body)

            nursery.start_soon(post)
            await poll_until(lambda: bool(mock.rpc("tools/call")))
            nursery.cancel_scope.cancel()  # the client goes away while the tool runs
        await poll_until(
            lambda: metric_sample("voidllm_code_mode_executions_total", status="cancelled") > cancelled
        )
        assert metric_sample("voidllm_code_mode_pool_available") == 2


async def test_a_stateless_era_upstreams_results_unwrap_like_any_other(sqlite_dsn: str) -> None:
    """A 2026-07-28 upstream adds ``resultType`` to every result: scripts still get the unwrapped value."""
    async with tools_gateway(sqlite_dsn, SETTINGS, modern=True, json_response=True) as (gw, _mock):
        code = "const r = await tools.tools.echo({text: 'modern'}); return [r.text, Object.keys(r)]"
        answer = await _raw_call(gw.client, gw.api_key(), "execute_code", {"code": code})
        assert answer["result"]["isError"] is False
        assert orjson.loads(answer["result"]["content"][0]["text"])["result"] == ["modern", ["text"]]


async def test_concurrent_first_executions_wait_for_the_one_tool_list_fetch(sqlite_dsn: str) -> None:
    """Executions that arrive while the never-fetched tool list is being fetched wait for that fetch."""
    async with _code_mode(sqlite_dsn) as (gw, mock):
        code = "return (await tools.tools.echo({text: 'first'})).text"
        answers: list[dict[str, Any]] = []

        async def execute() -> None:
            answers.append(await _raw_call(gw.client, gw.api_key(), "execute_code", {"code": code}))

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(execute)
        texts = [a["result"]["content"][0]["text"] for a in answers]
        assert not any(a["result"]["isError"] for a in answers), texts
        assert [orjson.loads(text)["result"] for text in texts] == ["first"] * 5
        assert len(mock.rpc("tools/list")) == 1
