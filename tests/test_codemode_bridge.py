"""The Code Mode host bridge under attack, and the pool's slots and concurrency on trio's clock.

A script that replaces what the bridge uses (JSON, Promise, Map, the Array and String methods, Error,
accessors on Object.prototype) either still gets correct tool calls, console lines and results, because the
prelude captured the originals, or ends with a typed error; the host validates every frame, so even a
forged one ends as :class:`BridgeError`. Each case then proves the next execution runs in a fresh store.

The pool and concurrency tests run on the autojump clock: tool calls sleep or wait on trio's side while the
wasm runs on a worker thread, and the thread's own deadline is on the real clock, so the virtual time the
clock jumps is exactly the time tool calls and slot waits take.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

from voidllm.codemode import sandbox as sandbox_module
from voidllm.codemode.sandbox import (
    BridgeError,
    ExecutionTimeout,
    Sandbox,
    ScriptRuntimeError,
    ToolCallError,
    _Run,
    _Stop,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from trio.testing import MockClock

MARKER = "zk-marker-5c1e"


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(memory_limit_mb=64, time_limit=5, pool_size=2)


async def echo(server: str, tool: str, args: Any) -> Any:
    if tool == "echo":
        return args
    raise ToolCallError(f"unknown tool: {server}/{tool}")


async def assert_next_execution_is_fresh(sandbox: Sandbox) -> None:
    code = "return [typeof leaked, typeof Object.prototype.toJSON, {a: [1, 'b']}, JSON.stringify([2])]"
    result = await sandbox.execute(code, call_tool=echo, max_tool_calls=1)
    assert json.loads(result.result) == ["undefined", "undefined", {"a": [1, "b"]}, "[2]"]


BRIDGE_USE = """
const r = await tools.s.echo({x: 1});
let caught = 'resolved';
try { await tools.s.nope({}) } catch (e) { caught = e.message }
console.log('seen', r.x, caught);
return ['done', r.x, caught];
"""

INTACT_AFTER = [
    pytest.param("JSON.stringify = () => '{}'; JSON.parse = () => ({})", id="JSON"),
    pytest.param(
        "Map.prototype.get = Map.prototype.set = Map.prototype.delete = () => { throw 1 }", id="Map"
    ),
    pytest.param("Promise.prototype.then = function () { throw new Error('then') }", id="Promise.then"),
    pytest.param("Promise = function () { throw 1 }", id="Promise"),
    pytest.param("Array.prototype.map = Array.prototype.join = () => { throw 1 }", id="Array-methods"),
    pytest.param("Array.prototype[Symbol.iterator] = function* () {}", id="Array-iterator"),
    pytest.param(
        "String.prototype.slice = String.prototype.indexOf = () => { throw 1 }", id="String-methods"
    ),
    pytest.param("Error = TypeError = function () { throw 1 }", id="Error-constructors"),
    pytest.param("Error.prepareStackTrace = () => { throw 1 }", id="Error.prepareStackTrace"),
    pytest.param(
        "Reflect.apply = Function.prototype.call = Function.prototype.apply = () => { throw 1 }", id="apply"
    ),
    pytest.param(
        "Object.create = Object.freeze = Object.defineProperty = () => { throw 1 }", id="Object-statics"
    ),
    pytest.param(
        """for (const key of ['t', 'id', 'ok', 'r', 'm', 's', 'n', 'a', 'l', 'k', 'resolve', 'reject', 'get',
                              'set', 'has', 'size', 'constructor']) {
             Object.defineProperty(Object.prototype, key, {
               get() { throw new Error('get ' + key) }, set() { throw new Error('set ' + key) } })
           }""",
        id="Object.prototype-accessors",
    ),
    pytest.param(
        "await tools.s.echo({toString() { throw 1 }, valueOf() { throw 2 }, [Symbol.toPrimitive]: () => 3 })",
        id="throwing-conversions",
    ),
    pytest.param("console.log({toJSON() { throw 1 }, toString() { throw 1 }})", id="unprintable-log"),
    pytest.param(
        "await tools.s.echo(new Proxy({}, {ownKeys() { throw new Error('p') }})).catch(() => 0)",
        id="proxy-args",
    ),
    pytest.param("const c = {}; c.c = c; await tools.s.echo(c).catch(() => 0)", id="cyclic-args"),
    pytest.param("await tools.s.echo(() => 1).catch(() => 0)", id="function-args"),
]


@pytest.mark.parametrize("tampering", INTACT_AFTER)
async def test_tampering_with_what_the_bridge_uses_leaves_the_bridge_intact(
    sandbox: Sandbox, tampering: str
) -> None:
    result = await sandbox.execute(
        f"globalThis.leaked = 1;\n{tampering};\n{BRIDGE_USE}", call_tool=echo, max_tool_calls=10
    )
    assert json.loads(result.result) == ["done", 1, "unknown tool: s/nope"]
    assert [(line.level, line.msg) for line in result.logs][-1] == ("info", "seen 1 unknown tool: s/nope")
    assert [(call.tool, call.status) for call in result.tool_calls][-2:] == [
        ("echo", "success"),
        ("nope", "error"),
    ]
    await assert_next_execution_is_fresh(sandbox)


async def test_a_tool_argument_json_cannot_encode_is_an_error_the_script_can_catch(sandbox: Sandbox) -> None:
    code = """
        const cyclic = {}; cyclic.self = cyclic;
        const errors = [];
        const proxy = new Proxy({}, {ownKeys() { throw new RangeError('p') }});
        for (const args of [cyclic, () => 1, {big: 1n}, proxy]) {
            try { await tools.s.echo(args) } catch (e) { errors.push(e.name + ': ' + e.message) }
        }
        return errors;
    """
    result = await sandbox.execute(code, call_tool=echo, max_tool_calls=10)
    assert json.loads(result.result) == [
        "TypeError: circular reference",
        "TypeError: tool arguments must be a JSON value",
        "TypeError: BigInt are forbidden in JSON.stringify",
        "RangeError: p",
    ]
    assert result.tool_calls == []


async def test_awaiting_or_returning_a_server_calls_no_tool(sandbox: Sandbox) -> None:
    """``await`` looks up ``then`` and JSON.stringify ``toJSON``: neither is a tool call."""
    code = """
        const s = await tools.s;
        const t = await tools;
        return [typeof s.echo, typeof t.s, typeof tools.s.then, typeof tools.then, JSON.stringify(tools.s)];
    """
    result = await sandbox.execute(code, call_tool=echo, max_tool_calls=10)
    assert json.loads(result.result) == ["function", "object", "undefined", "undefined", "{}"]
    assert result.tool_calls == []
    returned = await sandbox.execute("return tools.s", call_tool=echo, max_tool_calls=10)
    assert (returned.result, returned.tool_calls) == ("{}", [])


async def test_the_script_own_tojson_decides_how_its_values_encode(sandbox: Sandbox) -> None:
    """Object.prototype.toJSON is the script's to set: its arguments and result encode through it."""
    seen: list[Any] = []

    async def call_tool(server: str, tool: str, args: Any) -> Any:
        seen.append(args)
        return {"back": 1}

    code = "Object.prototype.toJSON = function () { return 'forged' }; await tools.s.t({x: 1}); return {y: 2}"
    result = await sandbox.execute(code, call_tool=call_tool, max_tool_calls=1)
    assert json.loads(result.result) == "forged"
    assert seen == ["forged"]
    await assert_next_execution_is_fresh(sandbox)


async def test_a_thrown_value_that_cannot_be_shown_has_a_fixed_script_message(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptRuntimeError) as caught:
        await sandbox.execute(
            f"throw Object.create(Error.prototype, {{message: {{get() {{ throw '{MARKER}' }}}}}})",
            call_tool=echo,
            max_tool_calls=1,
        )
    assert caught.value.script_message == "the script threw a value that cannot be shown"


MALFORMED_FRAMES = [
    pytest.param(b"not json", id="not-json"),
    pytest.param(b"\xff\xfe", id="not-utf8"),
    pytest.param(b"[" * 100_000, id="too-deep"),
    pytest.param(b"[1, 2]", id="not-an-object"),
    pytest.param(b'"ok"', id="a-string"),
    pytest.param(b"{}", id="no-kind"),
    pytest.param(b'{"t": "bridge"}', id="the-prelude-reports-a-broken-bridge"),
    pytest.param(b'{"t": "exit"}', id="unknown-kind"),
    pytest.param(b'{"t": "log", "l": "info"}', id="log-without-message"),
    pytest.param(b'{"t": "log", "l": "trace", "m": "x"}', id="unknown-level"),
    pytest.param(b'{"t": "log", "l": "info", "m": {"toString": 1}}', id="log-message-not-a-string"),
    pytest.param(b'{"t": "call", "id": true, "s": "a", "n": "b", "a": "{}"}', id="boolean-id"),
    pytest.param(b'{"t": "call", "id": 1.5, "s": "a", "n": "b", "a": "{}"}', id="float-id"),
    pytest.param(b'{"t": "call", "id": 1, "s": null, "n": "b", "a": "{}"}', id="server-not-a-string"),
    pytest.param(b'{"t": "call", "id": 1, "s": "a", "n": "b", "a": {}}', id="arguments-not-text"),
    pytest.param(b'{"t": "ok", "r": 1}', id="result-not-text"),
    pytest.param(b'{"t": "ok"}', id="no-result"),
    pytest.param(b'{"t": "err", "k": "exit", "n": "", "m": ""}', id="unknown-failure"),
    pytest.param(b'{"t": "err", "k": "runtime", "n": 1, "m": ""}', id="error-name-not-text"),
]


@pytest.mark.parametrize("line", MALFORMED_FRAMES)
async def test_a_malformed_frame_ends_the_execution_as_a_bridge_failure(line: bytes) -> None:
    run = _Run(5, trio.lowlevel.current_trio_token(), lambda calls: None, job_list=0)
    with pytest.raises(_Stop):
        run.on_frame(line)
    assert run.stop_reason == "bridge"
    assert run.outcome is None


async def test_a_tool_call_id_used_twice_is_a_bridge_failure() -> None:
    run = _Run(5, trio.lowlevel.current_trio_token(), lambda calls: None, job_list=0)
    frame = b'{"t": "call", "id": 1, "s": "a", "n": "b", "a": "{}"}'
    run.on_frame(frame)
    with pytest.raises(_Stop):
        run.on_frame(frame)
    assert run.stop_reason == "bridge"


def writes(text: str) -> str:
    """JavaScript that writes ``text`` to fd 1, where the host reads frames."""
    return f"std.out.puts({json.dumps(text)}); std.out.flush();"


def forged(body: str) -> str:
    """A prelude whose start function runs ``body`` (with the I/O the real prelude hides) instead."""
    return f"globalThis.__voidllm_start = async () => {{ {body} }};"


CALL = json.dumps({"t": "call", "id": 1, "s": "s", "n": "echo", "a": "{}"})
FORGED_PRELUDES = [
    pytest.param(forged(writes("not a frame\n") + "while (true) {}"), id="garbage-then-a-loop"),
    pytest.param(forged(writes('{"t": "ok"}\n')), id="result-without-value"),
    pytest.param(
        forged(writes(f"{CALL}\n{CALL}\n") + "os.setReadHandler(0, () => {}); await new Promise(() => {})"),
        id="an-id-twice",
    ),
]


@pytest.mark.parametrize("prelude", FORGED_PRELUDES)
async def test_forged_frames_end_the_execution_as_a_bridge_failure_at_once(
    prelude: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What a script that reached the I/O the prelude hides could write: BridgeError, before any deadline,
    and again in the next execution (a fresh instance of the same snapshot)."""
    monkeypatch.setattr(sandbox_module, "_PRELUDE", prelude)
    slow = Sandbox(memory_limit_mb=64, time_limit=60, pool_size=1, cache_dir=tmp_path)
    for _ in range(2):
        with trio.fail_after(30), pytest.raises(BridgeError) as caught:  # the real clock: no 60 s deadline
            await slow.execute("return 1", call_tool=echo, max_tool_calls=5)
        assert str(caught.value) == "the script broke the sandbox bridge"
        assert caught.value.script_message == "InternalError: the sandbox bridge was broken"
    assert slow.available == 1


def blocked_tool(busy: trio.Event, release: trio.Event) -> Callable[[str, str, Any], Awaitable[Any]]:
    async def call_tool(server: str, tool: str, args: Any) -> Any:
        busy.set()
        await release.wait()
        return "first"

    return call_tool


async def test_pool_size_and_available_follow_the_slots(autojump_clock: MockClock) -> None:
    sandbox = Sandbox(memory_limit_mb=16, time_limit=30, pool_size=2)
    assert (sandbox.pool_size, sandbox.available) == (2, 2)
    busy, release = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(
                sandbox.execute,
                "return await tools.s.t({})",
                call_tool=blocked_tool(busy, release),
                max_tool_calls=1,
            )
        )
        await busy.wait()
        assert (sandbox.pool_size, sandbox.available) == (2, 1)
        release.set()
    assert (sandbox.pool_size, sandbox.available) == (2, 2)


async def test_waiting_for_a_slot_past_the_time_limit_is_a_timeout(autojump_clock: MockClock) -> None:
    sandbox = Sandbox(memory_limit_mb=16, time_limit=30, pool_size=1)
    busy, release = trio.Event(), trio.Event()
    results: list[str] = []

    async def first() -> None:
        result = await sandbox.execute(
            "return await tools.s.t({})", call_tool=blocked_tool(busy, release), max_tool_calls=1
        )
        results.append(json.loads(result.result))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        await busy.wait()
        start = trio.current_time()
        with pytest.raises(ExecutionTimeout):
            await sandbox.execute("return 'second'", call_tool=echo, max_tool_calls=1)
        assert trio.current_time() == start + 30  # the whole budget went on the wait; nothing ran
        assert sandbox.available == 0
        release.set()
    assert results == ["first"]
    assert sandbox.available == 1
    await assert_next_execution_is_fresh(sandbox)


async def test_a_slot_wait_within_the_time_limit_leaves_the_rest_for_the_run(
    autojump_clock: MockClock,
) -> None:
    sandbox = Sandbox(memory_limit_mb=16, time_limit=30, pool_size=1)
    busy, release = trio.Event(), trio.Event()

    async def release_after_20() -> None:
        await busy.wait()
        await trio.sleep(20)
        # from here the only deadline is the second's, at 30: no jump while the first's thread finishes
        autojump_clock.autojump_threshold = 10
        release.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(
                sandbox.execute,
                "return await tools.s.t({})",
                call_tool=blocked_tool(busy, release),
                max_tool_calls=1,
            )
        )
        nursery.start_soon(release_after_20)
        await busy.wait()
        start = trio.current_time()
        result = await sandbox.execute("return 'second'", call_tool=echo, max_tool_calls=1)
        assert json.loads(result.result) == "second"
        assert trio.current_time() == start + 20


async def test_cancelling_a_slot_wait_leaves_nothing_behind(autojump_clock: MockClock) -> None:
    sandbox = Sandbox(memory_limit_mb=16, time_limit=30, pool_size=1)
    busy, release = trio.Event(), trio.Event()
    started: list[str] = []

    async def call_tool(server: str, tool: str, args: Any) -> Any:
        started.append(tool)
        return await blocked_tool(busy, release)(server, tool, args)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(sandbox.execute, "return await tools.s.first({})", call_tool=call_tool, max_tool_calls=1)
        )
        await busy.wait()
        with trio.move_on_after(5) as waiting:
            await sandbox.execute("return await tools.s.second({})", call_tool=call_tool, max_tool_calls=1)
        assert waiting.cancelled_caught
        statistics = sandbox._limiter.statistics()
        assert (statistics.tasks_waiting, statistics.borrowed_tokens) == (0, 1)
        release.set()
    assert started == ["first"]
    assert sandbox.available == 1
    await assert_next_execution_is_fresh(sandbox)


async def sleeping_tool(server: str, tool: str, args: Any) -> Any:
    await trio.sleep(0.05)
    return args["i"] * 10


async def test_promise_all_of_five_50ms_tools_takes_50ms(sandbox: Sandbox, autojump_clock: MockClock) -> None:
    start = trio.current_time()
    result = await sandbox.execute(
        "return await Promise.all([1, 2, 3, 4, 5].map(i => tools.s.slow({i})))",
        call_tool=sleeping_tool,
        max_tool_calls=5,
    )
    elapsed = trio.current_time() - start
    assert json.loads(result.result) == [10, 20, 30, 40, 50]
    assert elapsed == pytest.approx(0.05)
    assert elapsed < 0.12


async def test_five_50ms_tools_awaited_one_after_another_take_250ms(
    sandbox: Sandbox, autojump_clock: MockClock
) -> None:
    """The same calls in sequence: the concurrency test above would fail on a bridge that serialised them."""
    start = trio.current_time()
    result = await sandbox.execute(
        "const out = []; for (const i of [1, 2, 3, 4, 5]) out.push(await tools.s.slow({i})); return out",
        call_tool=sleeping_tool,
        max_tool_calls=5,
    )
    elapsed = trio.current_time() - start
    assert json.loads(result.result) == [10, 20, 30, 40, 50]
    assert elapsed == pytest.approx(0.25)
