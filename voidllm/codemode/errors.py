"""What the Code Mode sandbox (:mod:`voidllm.codemode.sandbox`) raises and returns, in a module of its own so
that the MCP gateway handles the outcomes without importing wasmtime: a gateway with Code Mode off never loads
the WebAssembly runtime (tests/test_startup.py)."""

from __future__ import annotations

import attrs

MAX_SOURCE_BYTES = 256 * 1024


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


class BridgeError(ScriptRuntimeError):
    """The host bridge received a frame it does not accept (not JSON, not an object, a field of the wrong
    type, an unknown kind or level, a tool call id used twice), or the prelude reported that it could not
    read a tool result: the script tampered with what the bridge relies on. Both texts are fixed."""

    def __init__(self) -> None:
        ScriptError.__init__(
            self, "the script broke the sandbox bridge", "InternalError: the sandbox bridge was broken"
        )


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
