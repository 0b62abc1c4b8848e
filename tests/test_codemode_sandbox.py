"""The Code Mode sandbox: results, containment of every attack, the tool-call bridge, the pool, the cache.

The wasm runs on worker threads in real time, so these tests use trio's real clock; the sandboxes keep a
short ``time_limit`` so the attacks that only a deadline stops (a tight loop, a promise that never settles)
cost half a second each. The compiled module comes from the on-disk cache after the first run.
"""

from __future__ import annotations

import json
import tempfile
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

from voidllm.codemode import sandbox as sandbox_module
from voidllm.codemode.sandbox import (
    MAX_LOG_LINES,
    MAX_SOURCE_BYTES,
    ExecutionTimeout,
    MemoryLimitExceeded,
    Sandbox,
    SandboxError,
    ScriptRuntimeError,
    ScriptSyntaxError,
    SourceTooLarge,
    ToolCallError,
)

if TYPE_CHECKING:
    from pathlib import Path

MARKER = "zk-marker-7f3a"


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(memory_limit_mb=64, time_limit=0.5, pool_size=4)


async def no_tools(server: str, tool: str, args: Any) -> Any:
    raise ToolCallError(f"unknown tool: {server}/{tool}")


async def run(sandbox: Sandbox, code: str) -> Any:
    result = await sandbox.execute(code, call_tool=no_tools, max_tool_calls=10)
    return json.loads(result.result)


async def assert_next_execution_is_fresh(sandbox: Sandbox) -> None:
    """The next execution works in a fresh store: nothing an attack left on globalThis or on a prototype."""
    code = "return [typeof leaked, typeof Object.prototype.toJSON, {a: [1, 'b']}, JSON.stringify([2])]"
    assert await run(sandbox, code) == ["undefined", "undefined", {"a": [1, "b"]}, "[2]"]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("return 1 + 1", 2),
        ("return 2.5", 2.5),
        ("return 'plain text'", "plain text"),
        ("return '{\"json\": true}'", {"json": True}),
        ("return {a: [1, 'b', null], c: {d: true}}", {"a": [1, "b", None], "c": {"d": True}}),
        ("return [1, 'two', 3.5]", [1, "two", 3.5]),
        ("return null", None),
        ("return undefined", None),
        ("const x = 1", None),
        ("return await Promise.resolve(7)", 7),
        ("return true", True),
        ("return false", False),
        ("return 'not json {'", "not json {"),
        ("return '\"quoted\"'", "quoted"),
        (
            "return {a: {b: {c: [1, {d: [null, true, 'x']}]}}}",
            {"a": {"b": {"c": [1, {"d": [None, True, "x"]}]}}},
        ),
        ("return [NaN, Infinity, -Infinity, -0]", [None, None, None, 0]),
        ("return NaN", None),
        ("return {u: undefined, f() {}, s: Symbol('s')}", {}),
        ("return [undefined, () => 1]", [None, None]),
        ("return Symbol('s')", None),
        ("return () => 1", None),
        ("return new Date(0)", "1970-01-01T00:00:00.000Z"),
        ("return new Map([[1, 2]])", {}),
        ("return new Proxy({}, {get: () => 1})", {}),
    ],
)
async def test_results_of_every_type(sandbox: Sandbox, code: str, expected: Any) -> None:
    assert await run(sandbox, code) == expected


@pytest.mark.parametrize(
    ("code", "script_message"),
    [
        ("return 1n", "TypeError: BigInt are forbidden in JSON.stringify"),
        ("return {big: [2n ** 64n]}", "TypeError: BigInt are forbidden in JSON.stringify"),
        ("const a = {}; a.self = a; return a", "TypeError: circular reference"),
        ("return {toJSON() { throw new RangeError('no') }}", "RangeError: no"),
    ],
)
async def test_a_result_json_cannot_encode_is_a_script_error(
    sandbox: Sandbox, code: str, script_message: str
) -> None:
    with pytest.raises(ScriptRuntimeError) as caught:
        await run(sandbox, code)
    assert caught.value.script_message == script_message
    await assert_next_execution_is_fresh(sandbox)


async def test_a_string_that_is_json_passes_through_as_is(sandbox: Sandbox) -> None:
    result = await sandbox.execute("return '[1,2]'", call_tool=no_tools, max_tool_calls=1)
    assert result.result == "[1,2]"


async def test_console_output_is_captured_and_bounded(sandbox: Sandbox) -> None:
    code = "console.log('a', {b: 1}); console.error('e'); for (let i = 0; i < 300; i++) console.info(i)"
    result = await sandbox.execute(code, call_tool=no_tools, max_tool_calls=1)
    assert [(line.level, line.msg) for line in result.logs[:2]] == [("info", 'a {"b":1}'), ("error", "e")]
    assert len(result.logs) == MAX_LOG_LINES + 1
    assert result.logs[-1].msg == f"{302 - MAX_LOG_LINES} more console lines dropped"


ATTACKS = [
    pytest.param("return (", ScriptSyntaxError, id="syntax"),
    pytest.param(f"throw new Error('{MARKER}')", ScriptRuntimeError, id="runtime"),
    pytest.param("null[secret]()", ScriptRuntimeError, id="type-error"),
    pytest.param("while (true) {}", ExecutionTimeout, id="infinite-loop"),
    pytest.param("function f() { return f() + 1 }; return f()", ScriptRuntimeError, id="deep-recursion"),
    pytest.param("const a = []; while (true) a.push(new Uint8Array(1e6))", MemoryLimitExceeded, id="memory"),
    pytest.param("return 'x'.repeat(1e9).length", MemoryLimitExceeded, id="huge-string"),
    pytest.param("await new Promise(() => {})", ExecutionTimeout, id="never-settles"),
    pytest.param("return await import('std')", ScriptSyntaxError, id="import-std"),
    pytest.param("return await import /* */ ('os')", ScriptSyntaxError, id="import-os"),
    pytest.param("return eval('1')", ScriptRuntimeError, id="eval"),
    pytest.param("return new Function('return 1')()", ScriptRuntimeError, id="new-Function"),
    pytest.param("return (async () => {}).constructor('return 1')()", ScriptRuntimeError, id="AsyncFunction"),
    pytest.param(
        "return (function* () {}).constructor('yield 1')().next()", ScriptRuntimeError, id="Generator"
    ),
    pytest.param("std.exit(1)", ScriptRuntimeError, id="std"),
    pytest.param("os.exec(['ls'])", ScriptRuntimeError, id="os"),
    pytest.param("setTimeout(() => {}, 1)", ScriptRuntimeError, id="timers"),
    pytest.param("print(1)", ScriptRuntimeError, id="print"),
    pytest.param("bjson.read()", ScriptRuntimeError, id="bjson"),
    pytest.param("return import<!--\n('qjs:std')", ScriptSyntaxError, id="import-html-open-comment"),
    pytest.param("return import\n-->\n('qjs:std')", ScriptSyntaxError, id="import-html-close-comment"),
    pytest.param("return import\ufeff('qjs:std')", ScriptSyntaxError, id="import-bom"),
    pytest.param("return import\u2028/* */ // x\n('qjs:os')", ScriptSyntaxError, id="import-comments"),
    pytest.param("return '/*'; import /*", ScriptSyntaxError, id="import-unterminated-comment"),
    pytest.param("return await fetch('http://127.0.0.1/')", ScriptRuntimeError, id="fetch"),
    pytest.param("new XMLHttpRequest()", ScriptRuntimeError, id="XMLHttpRequest"),
    pytest.param("new WebSocket('ws://127.0.0.1/')", ScriptRuntimeError, id="WebSocket"),
    pytest.param("require('fs')", ScriptRuntimeError, id="require"),
    pytest.param("process.exit(1)", ScriptRuntimeError, id="process"),
    pytest.param(
        "Object.defineProperty(Promise.prototype, 'constructor', {get() { throw new Error('x') }})",
        ScriptRuntimeError,
        id="promise-species",
    ),
    pytest.param(
        "throw Object.create(Error.prototype, {message: {get() { throw 1 }}})",
        ScriptRuntimeError,
        id="thrown-getter",
    ),
    pytest.param(
        "throw new Proxy({}, {getPrototypeOf() { throw 1 }})", ScriptRuntimeError, id="thrown-proxy"
    ),
    pytest.param("const a = []; a.push(a); return a", ScriptRuntimeError, id="cyclic-result"),
    pytest.param(
        "return new Proxy({}, {ownKeys() { throw new Error('x') }})", ScriptRuntimeError, id="proxy-result"
    ),
]


@pytest.mark.parametrize(("code", "error"), ATTACKS)
async def test_attacks_are_contained_and_the_next_execution_works(
    sandbox: Sandbox, code: str, error: type[SandboxError]
) -> None:
    with pytest.raises(error) as caught:
        await run(sandbox, f"globalThis.leaked = 1; const secret = '{MARKER}';\n{code}")
    assert MARKER not in str(caught.value)
    await assert_next_execution_is_fresh(sandbox)


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(
            "const a = []; for (let i = 0; i < 1e7; i++) a.push({i}); return a.length", id="objects"
        ),
        pytest.param("const a = []; while (true) a.push('x'.repeat(1000) + a.length)", id="strings"),
    ],
)
async def test_many_small_allocations_filling_the_limit_are_a_memory_error(code: str) -> None:
    """QuickJS throws ``null`` when small objects fill the limit; that is still the memory limit.

    A small limit and a generous time: filling memory must not race the deadline on a busy machine.
    """
    small = Sandbox(memory_limit_mb=16, time_limit=10, pool_size=1)
    with pytest.raises(MemoryLimitExceeded):
        await run(small, code)
    assert await run(small, "return 'next'") == "next"


async def test_a_script_error_keeps_its_text_apart_from_the_message(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptRuntimeError) as caught:
        await run(sandbox, f"throw new TypeError('{MARKER}')")
    assert str(caught.value) == "the script raised an error"
    assert caught.value.script_message == f"TypeError: {MARKER}"


async def test_the_host_modules_and_code_generation_are_gone(sandbox: Sandbox) -> None:
    names = [
        "std",
        "os",
        "bjson",
        "print",
        "eval",
        "setTimeout",
        "setInterval",
        "clearTimeout",
        "clearInterval",
        "fetch",
        "XMLHttpRequest",
        "WebSocket",
        "require",
        "process",
    ]
    assert await run(sandbox, f"return {json.dumps(names)}.map(n => typeof globalThis[n])") == [
        "undefined"
    ] * len(names)


async def test_a_source_larger_than_the_cap_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(SourceTooLarge):
        await run(sandbox, "//" + "x" * MAX_SOURCE_BYTES)


async def test_tool_calls_cross_the_bridge_and_errors_are_catchable(sandbox: Sandbox) -> None:
    async def call_tool(server: str, tool: str, args: Any) -> Any:
        if tool == "echo":
            return {"server": server, "args": args}
        if tool == "broken":
            raise RuntimeError(MARKER)
        raise ToolCallError(f"unknown tool: {server}/{tool}")

    code = """
        const echoed = await tools.files.echo({path: 'a'});
        const errors = [];
        for (const call of [() => tools.files.nope(), () => tools.files.broken({})]) {
            try { await call() } catch (e) { errors.push(e.message) }
        }
        return {echoed, errors};
    """
    result = await sandbox.execute(code, call_tool=call_tool, max_tool_calls=5)
    assert json.loads(result.result) == {
        "echoed": {"server": "files", "args": {"path": "a"}},
        "errors": ["unknown tool: files/nope", "tool call failed"],
    }
    assert [(call.server, call.tool, call.status) for call in result.tool_calls] == [
        ("files", "echo", "success"),
        ("files", "nope", "error"),
        ("files", "broken", "error"),
    ]


async def test_the_result_does_not_wait_for_calls_the_script_left_running(sandbox: Sandbox) -> None:
    async def call_tool(server: str, tool: str, args: Any) -> Any:
        await trio.sleep_forever()

    result = await sandbox.execute(
        "tools.s.forgotten({}); return 'done'", call_tool=call_tool, max_tool_calls=1
    )
    assert json.loads(result.result) == "done"


async def test_max_tool_calls_is_enforced(sandbox: Sandbox) -> None:
    calls = []

    async def call_tool(server: str, tool: str, args: Any) -> Any:
        calls.append(tool)
        return len(calls)

    code = """
        const done = [];
        try { for (let i = 0; i < 5; i++) done.push(await tools.s.t({})) }
        catch (e) { return [done, e.message] }
    """
    result = await sandbox.execute(code, call_tool=call_tool, max_tool_calls=3)
    assert json.loads(result.result) == [[1, 2, 3], "tool call limit exceeded (max 3)"]
    assert len(calls) == 3


async def test_promise_all_runs_tool_calls_concurrently(sandbox: Sandbox) -> None:
    started = 0
    all_started = trio.Event()

    async def call_tool(server: str, tool: str, args: Any) -> Any:
        nonlocal started
        started += 1
        if started == 5:
            all_started.set()
        await all_started.wait()  # a sequential bridge would never start the second call: a timeout
        return args["i"] * 10

    code = "return await Promise.all([1, 2, 3, 4, 5].map(i => tools.s.slow({i})))"
    result = await sandbox.execute(code, call_tool=call_tool, max_tool_calls=5)
    assert json.loads(result.result) == [10, 20, 30, 40, 50]


async def test_a_chain_after_a_result_starts_its_next_call_without_waiting_for_the_others(
    sandbox: Sandbox,
) -> None:
    second_started = trio.Event()

    async def call_tool(server: str, tool: str, args: Any) -> Any:
        if tool == "second":
            second_started.set()
        if tool == "waits":
            await second_started.wait()
        return tool

    code = """
        const chain = tools.s.first({}).then(async () => { await null; await null; return tools.s.second() });
        return await Promise.all([chain, tools.s.waits({})]);
    """
    result = await sandbox.execute(code, call_tool=call_tool, max_tool_calls=5)
    assert json.loads(result.result) == ["second", "waits"]


async def test_calls_made_after_awaits_in_a_wide_fan_out_all_run_together() -> None:
    """Each call written counts as progress: twenty async callbacks that await before their call start all
    twenty calls while the first ones are in flight, however many polls their jobs take in all."""
    sandbox = Sandbox(memory_limit_mb=64, time_limit=30, pool_size=1)
    started = 0
    all_started = trio.Event()

    async def call_tool(server: str, tool: str, args: Any) -> Any:
        nonlocal started
        started += 1
        if started == 20:
            all_started.set()
        await all_started.wait()  # a call held back behind the first results would never start: a timeout
        return args["i"]

    code = """
        const one = async (i) => { await null; await null; await null; return tools.s.t({i}) };
        return await Promise.all(Array.from({length: 20}, (_, i) => one(i)));
    """
    with trio.fail_after(20):
        result = await sandbox.execute(code, call_tool=call_tool, max_tool_calls=20)
    assert json.loads(result.result) == list(range(20))


async def test_a_worker_waiting_for_a_tool_result_polls_only_a_few_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a slow tool runs the worker thread waits at the first poll that finds the job queue empty
    (each poll that only looks costs CPU beside the tool call's own work)."""
    polls = 0
    poll_oneoff = sandbox_module._poll_oneoff

    def counted(*args: Any) -> int:
        nonlocal polls
        polls += 1
        return poll_oneoff(*args)

    monkeypatch.setattr(sandbox_module, "_poll_oneoff", counted)  # before the Sandbox links it
    sandbox = Sandbox(memory_limit_mb=64, time_limit=30, pool_size=1)

    async def call_tool(server: str, tool: str, args: Any) -> Any:
        await trio.sleep(0.2)
        return "late"

    result = await sandbox.execute("return await tools.s.t({})", call_tool=call_tool, max_tool_calls=1)
    assert json.loads(result.result) == "late"
    assert polls <= 3  # the call's own jobs, then the wait; sixteen polls that only looked made it 17


async def test_cancelling_the_caller_stops_a_running_execution() -> None:
    sandbox = Sandbox(memory_limit_mb=64, time_limit=60, pool_size=1)
    looping = trio.Event()

    async def call_tool(server: str, tool: str, args: Any) -> Any:
        looping.set()
        return None

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(
                sandbox.execute, "await tools.s.t({}); while (true) {}", call_tool=call_tool, max_tool_calls=1
            )
        )
        await looping.wait()
        nursery.cancel_scope.cancel()
    # The only slot is free again long before the 60 s limit: the loop was stopped, not abandoned.
    with trio.fail_after(10):
        assert await run(sandbox, "return 1") == 1


async def test_cancelling_the_caller_stops_an_execution_waiting_for_a_tool() -> None:
    sandbox = Sandbox(memory_limit_mb=64, time_limit=60, pool_size=1)
    waiting = trio.Event()

    async def call_tool(server: str, tool: str, args: Any) -> Any:
        waiting.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(sandbox.execute, "return await tools.s.t({})", call_tool=call_tool, max_tool_calls=1)
        )
        await waiting.wait()
        nursery.cancel_scope.cancel()
    with trio.fail_after(10):
        assert await run(sandbox, "return 2") == 2


async def test_waiting_for_a_slot_honours_cancellation() -> None:
    sandbox = Sandbox(memory_limit_mb=64, time_limit=60, pool_size=1)
    busy, release = trio.Event(), trio.Event()

    async def call_tool(server: str, tool: str, args: Any) -> Any:
        busy.set()
        await release.wait()
        return 1

    finished: list[str] = []

    async def execute(name: str, code: str) -> None:
        await sandbox.execute(code, call_tool=call_tool, max_tool_calls=1)
        finished.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(execute, "first", "return await tools.s.t({})")
        await busy.wait()
        nursery.start_soon(execute, "second", "return 1")
        await trio.testing.wait_all_tasks_blocked()
        assert sandbox._limiter.statistics().tasks_waiting == 1  # the second waits for the one slot
        assert sandbox.available == 0
        assert finished == []
        release.set()
    assert finished == ["first", "second"]


def test_a_corrupt_cache_file_is_replaced(tmp_path: Path) -> None:
    Sandbox(memory_limit_mb=16, time_limit=1, pool_size=1, cache_dir=tmp_path)
    (cached,) = tmp_path.glob("qjs-*-wasmtime-*.cwasm")
    cached.write_bytes(b"not a compiled module")
    sandbox = Sandbox(memory_limit_mb=16, time_limit=1, pool_size=1, cache_dir=tmp_path)
    assert cached.read_bytes() != b"not a compiled module"
    assert trio.run(run, sandbox, "return 1") == 1


def test_a_cache_directory_others_may_write_is_not_used(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    sandbox = Sandbox(memory_limit_mb=16, time_limit=1, pool_size=1, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert trio.run(run, sandbox, "return 1") == 1


def test_no_writable_temporary_directory_compiles_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only root file system and working directory: gettempdir() finds nothing, the start goes on."""

    def nowhere() -> str:
        raise FileNotFoundError("No usable temporary directory found")

    monkeypatch.setattr(tempfile, "gettempdir", nowhere)
    sandbox = Sandbox(memory_limit_mb=16, time_limit=1, pool_size=1)
    assert trio.run(run, sandbox, "return 2") == 2


def test_a_cache_file_that_cannot_be_written_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full)
    sandbox = Sandbox(memory_limit_mb=16, time_limit=1, pool_size=1, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert trio.run(run, sandbox, "return 3") == 3
