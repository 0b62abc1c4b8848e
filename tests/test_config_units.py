"""Durations and sizes: the two value syntaxes of voidllm.yaml."""

from __future__ import annotations

import pytest

from voidllm.config import parse_duration, parse_size
from voidllm.config.units import format_duration, format_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("7d", 604800.0),
        ("1h30m", 5400.0),
        ("1d12h", 129600.0),
        ("2m30s500ms", 150.5),
        ("1.5s", 1.5),
        ("168h", 604800.0),
        ("250us", 0.00025),
        ("0", 0.0),
        ("0s", 0.0),
        ("  45s ", 45.0),
    ],
)
def test_parse_duration_accepts(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "5", "30x", "1h 30m", "-5s", "5S", "1y", "h1", "30sec", "1.2.3s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 30s"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["30", "1.5", "-2"])
def test_parse_duration_explains_a_bare_number(text: str) -> None:
    with pytest.raises(ValueError, match="a bare number has no unit; expected a duration such as 30s"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("20MiB", 20 * 1024 * 1024),
        ("50MB", 50_000_000),
        ("512KiB", 524_288),
        ("1GiB", 1024**3),
        ("100kB", 100_000),
        ("100KB", 100_000),
        ("2mib", 2 * 1024 * 1024),
        ("1.5KiB", 1536),
        ("1048576", 1_048_576),
        ("64B", 64),
        ("10 MiB", 10 * 1024 * 1024),
        (4096, 4096),
        (0, 0),
    ],
)
def test_parse_size_accepts(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("value", ["", "MiB", "20 mebibytes", "20XB", "-1MiB", "1e6", -1, True, 1.5])
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (0.5, "500ms"),
        (10.0, "10s"),
        (90.0, "1m30s"),
        (3600.0, "1h"),
        (604800.0, "7d"),
        (5400.0, "1h30m"),
    ],
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("size", "text"), [(100 * 1024 * 1024, "100MiB"), (1024**3, "1GiB"), (1000, "1000B")]
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text
