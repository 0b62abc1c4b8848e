"""Tests for voidllm.logs: JSON lines, extras, level filtering, quieted libraries, text format."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from voidllm import logs

_TOUCHED = ["", "voidllm", *logs._QUIET]


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the loggers configure_logging changes back as they were."""
    saved = {name: logging.getLogger(name).level for name in _TOUCHED}
    root_handlers = list(logging.getLogger().handlers)
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler not in root_handlers:
            root.removeHandler(handler)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def configure(level: str = "info", fmt: str = "json") -> io.StringIO:
    buffer = io.StringIO()
    logs.configure_logging(level, fmt, stream=buffer)
    return buffer


def records(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_line_shape() -> None:
    buffer = configure()
    before = dt.datetime.now(dt.UTC)
    logging.getLogger("voidllm.proxy").info("upstream %s answered", "primary")
    [record] = records(buffer)
    assert list(record)[:4] == ["ts", "level", "logger", "msg"]
    assert record["level"] == "INFO"
    assert record["logger"] == "voidllm.proxy"
    assert record["msg"] == "upstream primary answered"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])
    moment = dt.datetime.fromisoformat(record["ts"])
    assert moment.tzinfo == dt.UTC
    assert abs((moment - before).total_seconds()) < 5
    assert "source" not in record


def test_extras_appear_and_cannot_override() -> None:
    buffer = configure()
    row_id = uuid.UUID("0192f0a8-7c1e-7d3a-9b5e-2f4c6a8e0b1d")
    logging.getLogger("voidllm.usage").warning(
        "flush failed",
        extra={"rows": 12, "deployment": row_id, "detail": {"a": [1, 2]}, "obj": object(), "level": "x"},
    )
    [record] = records(buffer)
    assert record["level"] == "WARN"
    assert record["rows"] == 12
    assert record["deployment"] == str(row_id)
    assert record["detail"] == {"a": [1, 2]}
    assert record["obj"].startswith("<object object")


def test_unserialisable_extra_falls_back_to_strings() -> None:
    buffer = configure()
    logging.getLogger("voidllm").info("big", extra={"n": 2**70})
    [record] = records(buffer)
    assert record["n"] == str(2**70)
    assert record["msg"] == "big"


def test_exception_rendering() -> None:
    buffer = configure()
    try:
        raise KeyError("missing-row")
    except KeyError:
        logging.getLogger("voidllm.store").exception("lookup failed")
    [record] = records(buffer)
    assert record["level"] == "ERROR"
    assert record["exc_type"] == "KeyError"
    assert record["exc"].startswith("Traceback (most recent call last):")
    assert "test_exception_rendering" in record["exc"]


def test_exception_type_is_qualified_outside_builtins() -> None:
    from voidllm.errors import StoreUnavailableError

    buffer = configure()
    try:
        raise StoreUnavailableError("database is locked")
    except StoreUnavailableError:
        logging.getLogger("voidllm").error("store down", exc_info=True)
    assert records(buffer)[0]["exc_type"] == "voidllm.errors.StoreUnavailableError"


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("debug", ["DEBUG", "INFO", "WARN", "ERROR"]),
        ("info", ["INFO", "WARN", "ERROR"]),
        ("warn", ["WARN", "ERROR"]),
        ("WARN", ["WARN", "ERROR"]),
        ("error", ["ERROR"]),
    ],
)
def test_level_filtering(level: str, expected: list[str]) -> None:
    buffer = configure(level)
    log = logging.getLogger("voidllm.test")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [record["level"] for record in records(buffer)] == expected


def test_debug_adds_source_and_stays_inside_voidllm() -> None:
    buffer = configure("debug")
    logging.getLogger("voidllm.routing").debug("picked")
    logging.getLogger("somelib").debug("library chatter")
    logging.getLogger("somelib").info("library info")
    first, second = records(buffer)
    assert first["msg"] == "picked"
    assert first["source"]["file"].endswith("test_logs.py")
    assert first["source"]["function"] == "test_debug_adds_source_and_stays_inside_voidllm"
    assert second["msg"] == "library info"


def test_noisy_libraries_are_quiet() -> None:
    buffer = configure("debug")
    logging.getLogger("hypercorn.access").critical("GET / 200")
    logging.getLogger("hypercorn.error").info("Running on http://127.0.0.1:8080")
    logging.getLogger("httpx").info('HTTP Request: POST https://upstream/v1/chat "HTTP/1.1 200 OK"')
    logging.getLogger("sqlalchemy.engine.Engine").info("INSERT INTO users ... ('secret-hash',)")
    logging.getLogger("httpcore.http11").debug("receive_response_headers.complete")
    logging.getLogger("hypercorn.error").warning("worker restarting")
    assert [record["msg"] for record in records(buffer)] == ["worker restarting"]


def test_reconfiguring_replaces_the_handler() -> None:
    first = configure("info", "json")
    second = configure("info", "text")
    logging.getLogger("voidllm").info("once")
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1
    ours = [h for h in logging.getLogger().handlers if isinstance(h, logs._Handler)]
    assert len(ours) == 1


def test_text_format() -> None:
    buffer = configure("info", "text")
    logging.getLogger("voidllm.proxy").info(
        "request done", extra={"status": 200, "model": "gpt-4o", "note": "two words", "q": 'a"b'}
    )
    line = buffer.getvalue()
    assert line.count("\n") == 1
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO  voidllm\.proxy: request done "
        r'status=200 model=gpt-4o note="two words" q="a\\"b"\n',
        line,
    )


def test_text_format_debug_source_and_traceback() -> None:
    buffer = configure("debug", "text")
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logging.getLogger("voidllm").warning("oops", exc_info=True)
    first, *rest = buffer.getvalue().splitlines()
    assert " WARN  voidllm: oops (test_logs.py:" in first
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ZeroDivisionError: division by zero"


def test_default_stream_is_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure_logging("info", "json")
    logging.getLogger("voidllm").info("to stderr")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert orjson.loads(captured.err.splitlines()[-1])["msg"] == "to stderr"


@pytest.mark.parametrize(("level", "fmt"), [("verbose", "json"), ("info", "xml"), ("", "text")])
def test_bad_settings(level: str, fmt: str) -> None:
    with pytest.raises(ValueError, match="must be one of"):
        logs.configure_logging(level, fmt, stream=io.StringIO())
