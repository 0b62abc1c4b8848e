"""The QuickJS snapshot: the binary rewriting it needs, and what executions that start from it can see."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import wasmtime

from voidllm.codemode import sandbox as sandbox_module
from voidllm.codemode import snapshot
from voidllm.codemode.sandbox import Sandbox

WASM = sandbox_module._wasm_path().read_bytes()


async def echo(server: str, tool: str, args: Any) -> Any:
    return args


async def run(sandbox: Sandbox, code: str) -> Any:
    return json.loads((await sandbox.execute(code, call_tool=echo, max_tool_calls=1)).result)


def _uleb(data: bytes) -> int:
    return snapshot._uleb(data, 0)[0]


def _sleb(data: bytes) -> int:
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
    return value - (1 << shift) if data[-1] & 0x40 else value


@pytest.mark.parametrize("value", [0, 1, 63, 64, 127, 128, 2209744, 2**31 - 1, 2**32 - 1])
def test_leb128_encodings_read_back(value: int) -> None:
    assert _uleb(snapshot._uleb_bytes(value)) == value
    if value < 2**31:
        encoded = snapshot._sleb_bytes(value)
        assert _sleb(encoded) == value
        assert encoded[-1] & 0x40 == 0  # a positive offset never reads as a negative i32.const


def test_memory_runs_skip_long_zero_stretches_and_keep_short_ones() -> None:
    gap = bytes(snapshot._GAP)
    memory = bytes(10) + b"ab" + bytes(5) + b"c" + gap + b"d" + bytes(7)
    assert list(snapshot._runs(memory)) == [
        (10, b"ab" + bytes(5) + b"c"),
        (10 + 2 + 5 + 1 + len(gap), b"d" + bytes(7)),
    ]
    assert list(snapshot._runs(bytes(100))) == []


def test_the_reactor_gets_the_three_exports_and_a_memory_image() -> None:
    patched = snapshot.add_exports(WASM)
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, patched)
    exports = {export.name: export.type for export in module.exports}
    assert isinstance(exports[snapshot.EVAL_EXPORT], wasmtime.FuncType)
    assert [str(t) for t in exports[snapshot.EVAL_EXPORT].params] == ["i32"] * 5  # ctx, buf, len, name, flags
    assert isinstance(exports[snapshot.RUNTIME_EXPORT], wasmtime.FuncType)
    assert [str(t) for t in exports[snapshot.RUNTIME_EXPORT].params] == ["i32"]  # ctx
    assert isinstance(exports[snapshot.STACK_POINTER_EXPORT], wasmtime.GlobalType)
    assert exports[snapshot.STACK_POINTER_EXPORT].mutable

    page = 65536
    image = bytearray(40 * page)
    image[100:105] = b"hello"
    image[39 * page + 7] = 9
    rebuilt = wasmtime.Module(engine, snapshot.with_memory(patched, bytes(image)))
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    memory = linker.instantiate(store, rebuilt).exports(store)["memory"]
    assert isinstance(memory, wasmtime.Memory)
    assert memory.size(store) == 40
    assert memory.read(store, 0, 40 * page) == bytes(image)  # the module's own data segments are gone


def test_a_module_that_is_not_the_reactor_is_refused() -> None:
    with pytest.raises(snapshot.SnapshotError):
        snapshot.add_exports(b"\0asm\x01\0\0\0")  # no globals, no names
    with pytest.raises(snapshot.SnapshotError):
        snapshot.add_exports(b"not wasm")
    with pytest.raises(snapshot.SnapshotError):
        snapshot.with_memory(snapshot.add_exports(WASM), b"\1" * 100)  # not whole pages


def test_a_prelude_that_fails_is_refused() -> None:
    with pytest.raises(snapshot.SnapshotError, match="qjs_init_argv failed"):
        snapshot.build_snapshot(WASM, (b"qjs", b"-m", b"-e", b"throw new Error('no')"))


async def test_executions_share_nothing_but_the_image(tmp_path: Path) -> None:
    """Each execution is a fresh instance of the snapshot: what one leaves is gone, Math.random is seeded
    for each, and the prelude's start function is not there for the script to find or call again."""
    sandbox = Sandbox(memory_limit_mb=16, time_limit=5, pool_size=2, cache_dir=tmp_path)
    first = await run(
        sandbox,
        "globalThis.leaked = 1; Array.prototype.x = 2;"
        "return [Math.random(), Math.random(), typeof __voidllm_start,"
        " Object.getOwnPropertyNames(globalThis).includes('__voidllm_start')]",
    )
    second = await run(sandbox, "return [Math.random(), typeof leaked, typeof [].x]")
    assert first[2:] == ["undefined", False]
    assert second[1:] == ["undefined", "undefined"]
    draws = [first[0], first[1], second[0]]
    assert len(set(draws)) == 3
    assert all(0 <= d < 1 for d in draws)
    many = await run(sandbox, "const a = []; for (let i = 0; i < 2000; i++) a.push(Math.random()); return a")
    assert len(set(many)) == 2000
    assert 0.45 < sum(many) / len(many) < 0.55


def test_the_cache_entry_is_the_snapshot_of_this_prelude(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Sandbox(memory_limit_mb=16, time_limit=1, pool_size=1, cache_dir=tmp_path)
    (first,) = tmp_path.glob("qjs-*-wasmtime-*.cwasm")
    monkeypatch.setattr(sandbox_module, "_PRELUDE", sandbox_module._PRELUDE + "\n// another prelude\n")
    sandbox = Sandbox(memory_limit_mb=16, time_limit=1, pool_size=1, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("qjs-*-wasmtime-*.cwasm"))) == 2  # another key, not the first entry
    assert first.exists()
    assert trio.run(run, sandbox, "return 3") == 3


def test_a_snapshot_whose_called_functions_have_other_signatures_is_refused() -> None:
    """malloc and eval_buf are called unchecked: a module whose exports differ is refused up front."""
    engine = wasmtime.Engine()

    def module(malloc_params: str) -> wasmtime.Module:
        return wasmtime.Module(
            engine,
            f"""(module
              (func (export "malloc") (param {malloc_params}) (result i32) i32.const 0)
              (func (export "{snapshot.EVAL_EXPORT}")
                (param i32 i32 i32 i32 i32) (result i32) i32.const 0))""",
        )

    sandbox_module._check_signatures(module("i32"))
    with pytest.raises(snapshot.SnapshotError, match="malloc"):
        sandbox_module._check_signatures(module("i64"))
    with pytest.raises(snapshot.SnapshotError, match="malloc"):
        sandbox_module._check_signatures(module("i32 i32"))
