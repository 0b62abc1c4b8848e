"""A QuickJS module that starts where the prelude has finished: a snapshot of its memory, made once.

Every execution used to create a QuickJS runtime and context and parse and run ``prelude.js`` inside
``qjs_init_argv``: three quarters of a trivial script's CPU. The prelude's state is the same for every
execution, so it is made once: :func:`build_snapshot` instantiates the reactor, runs ``qjs_init_argv`` with
the prelude (which this time returns, leaving a runtime, a context and a hidden start function in linear
memory), and writes a new module whose data segments are that memory. wasmtime maps a module's data
copy-on-write (``memory_init_cow``), so instantiating the snapshot costs tens of microseconds and each
execution still gets a fresh store and a private copy of the memory: nothing is shared between executions
but the read-only image.

This is what Wizer does; Wizer is a Rust tool with no Python binding and wasmtime-py does not expose it, and
what is needed here is small, so it is written out:

- the reactor exports neither a way back into QuickJS after ``qjs_init_argv`` nor its globals, so
  :func:`add_exports` adds three exports to the binary: qjs.c's ``eval_buf`` (found by name in the ``name``
  section: it evaluates a module and, like qjs's own ``-e``, runs the job loop until the module's top-level
  await settles), ``JS_GetRuntime`` (the sandbox finds the runtime's job queue through it) and the module's
  only mutable global, the stack pointer;
- between two calls the stack pointer is back at its initial value, which is checked before the snapshot is
  taken (the module's other global is immutable), so the global section is kept as it is;
- :func:`with_memory` replaces the data section with the snapshot's non-zero runs and raises the memory's
  minimum to the snapshot's size; sections it does not touch (code, tables, names) are copied unchanged.

Inputs are fixed (the reactor's bytes and the prelude), so the compiled snapshot is cached on disk like the
reactor itself (:func:`voidllm.codemode.sandbox.load_module`), under a key of both and a format version.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import wasmtime

if TYPE_CHECKING:
    from collections.abc import Iterator

SNAPSHOT_FORMAT = b"voidllm-qjs-snapshot-2"
EVAL_EXPORT = "voidllm_eval_buf"
STACK_POINTER_EXPORT = "voidllm_stack_pointer"
RUNTIME_EXPORT = "voidllm_get_runtime"
_EVAL_BUF = "eval_buf"
_GET_RUNTIME = "JS_GetRuntime"
_SECTION_IMPORT = 2
_SECTION_CUSTOM, _SECTION_MEMORY, _SECTION_GLOBAL, _SECTION_EXPORT, _SECTION_DATA, _SECTION_DATA_COUNT = (
    0,
    5,
    6,
    7,
    11,
    12,
)
_EXPORT_FUNC, _EXPORT_GLOBAL = 0, 3
_PAGE = 65536
_GAP = 4096  # zero runs at least this long split a data segment


class SnapshotError(RuntimeError):
    """The reactor is not the module this code knows how to snapshot (a function or global is missing)."""


def snapshot_key(wasm: bytes, prelude: bytes) -> str:
    return hashlib.sha256(SNAPSHOT_FORMAT + b"\0" + wasm + b"\0" + prelude).hexdigest()[:32]


# LEB128 -----------------------------------------------------------------------------------------------------


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _uleb_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _sleb_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _name(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = _uleb(data, pos)
    return data[pos : pos + length], pos + length


# Sections ---------------------------------------------------------------------------------------------------


def _sections(wasm: bytes) -> Iterator[tuple[int, bytes]]:
    if wasm[:8] != b"\0asm\x01\0\0\0":
        raise SnapshotError("not a WebAssembly 1.0 module")
    pos = 8
    while pos < len(wasm):
        section = wasm[pos]
        size, start = _uleb(wasm, pos + 1)
        yield section, wasm[start : start + size]
        pos = start + size


def _assemble(sections: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(b"\0asm\x01\0\0\0")
    for section, payload in sections:
        out.append(section)
        out += _uleb_bytes(len(payload))
        out += payload
    return bytes(out)


def _function_index(sections: list[tuple[int, bytes]], wanted: str) -> int:
    """The index of the function named ``wanted`` in the ``name`` custom section's function names."""
    for section, payload in sections:
        if section != _SECTION_CUSTOM:
            continue
        name, pos = _name(payload, 0)
        if name != b"name":
            continue
        while pos < len(payload):
            kind = payload[pos]
            size, pos = _uleb(payload, pos + 1)
            end = pos + size
            if kind == 1:  # function names: vec(index, name)
                count, pos = _uleb(payload, pos)
                for _ in range(count):
                    index, pos = _uleb(payload, pos)
                    function, pos = _name(payload, pos)
                    if function == wanted.encode():
                        return index
            pos = end
    raise SnapshotError(f"the reactor has no function named {wanted}")


def _skip_constant(payload: bytes, pos: int) -> int:
    """The position after a global's initialiser: one constant instruction, then ``end``."""
    opcode = payload[pos]
    if opcode in (0x41, 0x42, 0x23):  # i32.const, i64.const (LEB128 immediates), global.get (an index)
        _, pos = _uleb(payload, pos + 1)  # a signed LEB128 has the same length as an unsigned one
    elif opcode == 0x43:  # f32.const
        pos += 5
    elif opcode == 0x44:  # f64.const
        pos += 9
    else:
        raise SnapshotError(f"a global's initialiser uses opcode {opcode:#x}")
    if payload[pos] != 0x0B:
        raise SnapshotError("a global's initialiser is more than one instruction")
    return pos + 1


def _imported_globals(sections: list[tuple[int, bytes]]) -> int:
    for section, payload in sections:
        if section != _SECTION_IMPORT:
            continue
        count, pos = _uleb(payload, 0)
        globals_ = 0
        for _ in range(count):
            _, pos = _name(payload, pos)
            _, pos = _name(payload, pos)
            kind = payload[pos]
            pos += 1
            if kind == 0:  # a function: its type index
                _, pos = _uleb(payload, pos)
            elif kind == 3:  # a global: value type, mutability
                globals_ += 1
                pos += 2
            else:
                raise SnapshotError("the reactor imports a table or a memory")
        return globals_
    return 0


def _mutable_globals(sections: list[tuple[int, bytes]]) -> list[int]:
    """Indices of the module's own mutable i32 globals (in the index space, after any imported ones)."""
    for section, payload in sections:
        if section != _SECTION_GLOBAL:
            continue
        count, pos = _uleb(payload, 0)
        found = []
        for index in range(count):
            value_type, mutable = payload[pos], payload[pos + 1]
            pos = _skip_constant(payload, pos + 2)
            if mutable:
                if value_type != 0x7F:  # i32
                    raise SnapshotError("the reactor has a mutable global that is not an i32")
                found.append(_imported_globals(sections) + index)
        return found
    return []


def add_exports(wasm: bytes) -> bytes:
    """``wasm`` with ``eval_buf``, ``JS_GetRuntime`` and its one mutable global (the stack pointer)
    exported."""
    sections = list(_sections(wasm))
    mutable = _mutable_globals(sections)
    if len(mutable) != 1:
        raise SnapshotError(f"the reactor has {len(mutable)} mutable globals, not one (the stack pointer)")
    entries = [
        (EVAL_EXPORT, _EXPORT_FUNC, _function_index(sections, _EVAL_BUF)),
        (RUNTIME_EXPORT, _EXPORT_FUNC, _function_index(sections, _GET_RUNTIME)),
    ]
    entries.append((STACK_POINTER_EXPORT, _EXPORT_GLOBAL, mutable[0]))
    out = []
    for section, payload in sections:
        if section == _SECTION_EXPORT:
            count, pos = _uleb(payload, 0)
            added = b"".join(
                _uleb_bytes(len(name)) + name.encode() + bytes([kind]) + _uleb_bytes(index)
                for name, kind, index in entries
            )
            payload = _uleb_bytes(count + len(entries)) + payload[pos:] + added
        out.append((section, payload))
    return _assemble(out)


def _runs(memory: bytes) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of the non-zero parts of ``memory``, split where at least :data:`_GAP` zeros lie."""
    pos, end = 0, len(memory)
    while pos < end:
        start = pos
        while start < end and memory[start] == 0:
            start += 1
        if start == end:
            return
        stop = memory.find(bytes(_GAP), start)
        stop = end if stop < 0 else stop
        yield start, memory[start:stop]
        pos = stop


def with_memory(wasm: bytes, memory: bytes) -> bytes:
    """``wasm`` whose memory starts as ``memory`` (its data segments replaced, its minimum raised)."""
    if len(memory) % _PAGE:
        raise SnapshotError("the memory is not a whole number of pages")
    segments = list(_runs(memory))
    data = _uleb_bytes(len(segments)) + b"".join(
        b"\x00\x41" + _sleb_bytes(offset) + b"\x0b" + _uleb_bytes(len(chunk)) + chunk
        for offset, chunk in segments
    )
    out = []
    for section, payload in _sections(wasm):
        if section == _SECTION_MEMORY:
            count, pos = _uleb(payload, 0)
            flags = payload[pos]
            if count != 1 or flags not in (0, 1):
                raise SnapshotError("the reactor's memory is not one plain 32-bit memory")
            minimum, after = _uleb(payload, pos + 1)
            pages = max(minimum, len(memory) // _PAGE)
            payload = payload[: pos + 1] + _uleb_bytes(pages) + payload[after:]
        elif section == _SECTION_DATA:
            payload = data
        elif section == _SECTION_DATA_COUNT:
            payload = _uleb_bytes(len(segments))
        out.append((section, payload))
    return _assemble(out)


# Taking the snapshot ----------------------------------------------------------------------------------------


def build_snapshot(wasm: bytes, argv: tuple[bytes, ...]) -> bytes:
    """The reactor's bytes turned into a module that starts after ``qjs_init_argv(argv)`` has returned.

    Runs in an engine of its own, with WASI's defaults (``argv`` must make qjs evaluate something that returns
    without reading or writing). Raises :class:`SnapshotError` when qjs fails or the stack pointer did not
    come back to its initial value.
    """
    patched = add_exports(wasm)
    config = wasmtime.Config()
    config.cranelift_opt_level = "none"  # run once: compiling fast matters more than running fast
    engine = wasmtime.Engine(config)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    instance = linker.instantiate(store, wasmtime.Module(engine, patched))
    exports = instance.exports(store)
    memory, stack_pointer = exports["memory"], exports[STACK_POINTER_EXPORT]
    assert isinstance(memory, wasmtime.Memory)
    assert isinstance(stack_pointer, wasmtime.Global)
    initial_sp = stack_pointer.value(store)

    def call(name: str, *args: int) -> object:
        func = exports[name]
        assert isinstance(func, wasmtime.Func)
        return func(store, *args)

    call("_initialize")
    size = 4 * len(argv) + sum(len(arg) + 1 for arg in argv)
    block = call("malloc", size)
    if not isinstance(block, int) or not block:
        raise SnapshotError("the arguments could not be allocated")
    pointers, strings = bytearray(), bytearray()
    for arg in argv:
        pointers += (block + 4 * len(argv) + len(strings)).to_bytes(4, "little")
        strings += arg + b"\0"
    memory.write(store, pointers + strings, block)
    if call("qjs_init_argv", len(argv), block) != 0:
        raise SnapshotError("qjs_init_argv failed while taking the snapshot")
    call("free", block)
    if stack_pointer.value(store) != initial_sp:
        raise SnapshotError("the stack pointer did not return to its initial value")
    return with_memory(patched, bytes(memory.read(store, 0, memory.data_len(store))))
