"""Process-wide logging: one stderr handler on the root logger writing JSON lines or readable text.

Call :func:`configure_logging` once at startup, before serving. Code logs through
``logging.getLogger(__name__)`` and passes structured fields with
``extra={"deployment": ..., "status": ...}``.

Zero knowledge: by policy no request or response content is passed to a log call, and our exception messages
carry none, so exceptions are rendered in full (type and Python's traceback). The policy also covers other
people's code, which is why the libraries below are held at WARNING whatever the level: httpx logs every
request line at INFO, httpcore/h2/hpack trace headers at DEBUG, and SQLAlchemy logs statements *with bound
parameters* (password and key hashes among them) at INFO once the root logger allows it. At ``debug``, only
``voidllm.*`` goes to DEBUG; the root stays at INFO.

Hypercorn: the access log is off (it costs up to a third of throughput); ``hypercorn.error`` is kept at
WARNING. The server must build its ``hypercorn.Config`` with ``accesslog = None`` (the default) and
``errorlog = logging.getLogger("hypercorn.error")``: hypercorn's default ``errorlog = "-"`` installs its own
stderr handler and level on that logger, which would print every record twice and bypass this format.

Tracing (:mod:`voidllm.tracing`): while it is on, a record written while a span is current carries its
``trace_id`` and ``span_id`` (both formats). The OpenTelemetry SDK's own loggers are held at CRITICAL: its
exporter logs every failed batch, and the export service logs the failing and the recovery once instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Any, TextIO

import orjson

from voidllm import tracing

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "configure_logging", "report_crash"]

_crash_log = logging.getLogger("voidllm")

LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("json", "text")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
_LEVEL_NAMES = {logging.WARNING: "WARN"}
_OFF = logging.CRITICAL + 1
_QUIET = {
    "hypercorn.access": _OFF,
    "hypercorn.error": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "h2": logging.WARNING,
    "hpack": logging.WARNING,
    "sqlalchemy": logging.WARNING,
    "alembic": logging.WARNING,
    "asyncio": logging.WARNING,
    "opentelemetry": logging.CRITICAL,
}
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def configure_logging(level: str, fmt: str, *, stream: TextIO | None = None) -> None:
    """Route all logging to one handler on ``stream`` (default: the current ``sys.stderr``).

    Args:
        level: ``debug``, ``info``, ``warn`` or ``error`` (case-insensitive); ``debug`` also adds the source
            location to each record.
        fmt: ``json`` (one object per line: ``ts``, ``level``, ``logger``, ``msg``, the caller's extras,
            ``exc_type``/``exc`` for exceptions) or ``text`` (one readable line, then any traceback).
        stream: where to write; tests pass a buffer.

    Raises:
        ValueError: unknown level or format.

    Calling it again replaces the handler it installed before; handlers installed by others are left alone.
    """
    threshold = _LEVELS.get(level.lower())
    if threshold is None:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}")
    if fmt.lower() not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
    with_source = threshold == logging.DEBUG
    formatter = _JsonFormatter(with_source) if fmt.lower() == "json" else _TextFormatter(with_source)
    handler = _Handler(sys.stderr if stream is None else stream)
    handler.setFormatter(formatter)
    handler.addFilter(_trace_ids)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(threshold, logging.INFO))
    logging.getLogger("voidllm").setLevel(threshold)
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, threshold))


class _Handler(logging.StreamHandler[TextIO]):
    """Marks the handler :func:`configure_logging` owns, so a second call can replace it."""


def _trace_ids(record: logging.LogRecord) -> bool:
    """Add the current span's ``trace_id`` and ``span_id`` to ``record`` (tracing on, inside a span)."""
    ids = tracing.current_ids()
    if ids is not None:
        record.trace_id, record.span_id = ids
    return True


class _JsonFormatter(logging.Formatter):
    def __init__(self, with_source: bool) -> None:
        super().__init__()
        self._with_source = with_source

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": _level_name(record),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self._with_source:
            doc["source"] = {"file": record.pathname, "line": record.lineno, "function": record.funcName}
        for key, value in _extras(record):
            doc.setdefault(key, value)
        if record.exc_info and record.exc_info[0] is not None:
            doc["exc_type"] = _type_name(record.exc_info[0])
            doc["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return _dumps(doc)


class _TextFormatter(logging.Formatter):
    def __init__(self, with_source: bool) -> None:
        super().__init__()
        self._with_source = with_source

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), f"{_level_name(record):<5}", f"{record.name}:", record.getMessage()]
        parts += [f"{key}={_text_value(value)}" for key, value in _extras(record)]
        if self._with_source:
            parts.append(f"({record.filename}:{record.lineno})")
        line = " ".join(parts)
        if record.exc_info and record.exc_info[0] is not None:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _level_name(record: logging.LogRecord) -> str:
    return _LEVEL_NAMES.get(record.levelno, record.levelname)


def _extras(record: logging.LogRecord) -> list[tuple[str, Any]]:
    return [(key, value) for key, value in vars(record).items() if key not in _RECORD_ATTRS]


def _type_name(cls: type[BaseException]) -> str:
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _dumps(doc: dict[str, Any]) -> str:
    try:
        return orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:  # e.g. an int beyond 64 bits inside an extra: stringify what is not plain
        return orjson.dumps({key: _plain(value) for key, value in doc.items()}).decode()


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | bool | float | None) else str(value)


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and not any(ch.isspace() or ch in '"=' for ch in text):
        return text
    return orjson.dumps(text).decode()


def report_crash(group: BaseExceptionGroup[BaseException]) -> None:
    """Log and print the errors that stopped the gateway (startup failures mostly: our own messages)."""
    for exc in _leaves(group):
        _crash_log.critical("gateway stopped by an error", extra={"error_type": type(exc).__name__})
        print(f"voidllm: {type(exc).__name__}: {exc}", file=sys.stderr)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return leaves
