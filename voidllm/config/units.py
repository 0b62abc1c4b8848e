"""Durations and byte sizes as they are written in ``voidllm.yaml``.

Durations use Go's syntax plus a day unit: one or more ``<number><unit>`` parts with the units ``ns``, ``us``
(or ``µs``), ``ms``, ``s``, ``m``, ``h`` and ``d`` (24 h), so ``500ms``, ``30s``, ``1h30m`` and ``7d`` are
all valid. They become ``float`` seconds. A bare number is rejected, because ``timeout: 30`` is ambiguous
(seconds? milliseconds?); the one exception is ``0``, which means the same in every unit.

Sizes are an integer number of bytes or a number with a unit: decimal ``kB``, ``MB``, ``GB``, ``TB`` (powers
of 1000) or binary ``KiB``, ``MiB``, ``GiB``, ``TiB`` (powers of 1024), case-insensitive. They become ``int``
bytes.

``Duration`` and ``ByteSize`` are the annotations the config classes use; the config codec reads the
:class:`Unit` marker inside them to pick the right parser.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated

__all__ = [
    "ByteSize",
    "Duration",
    "KiB",
    "MiB",
    "Unit",
    "format_duration",
    "format_size",
    "parse_duration",
    "parse_size",
]


class Unit(enum.Enum):
    """Marks an annotated field whose YAML text is a duration or a size rather than a plain number."""

    DURATION = "duration"
    SIZE = "size"


Duration = Annotated[float, Unit.DURATION]
ByteSize = Annotated[int, Unit.SIZE]

KiB = 1024
MiB = 1024 * KiB

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")
_BARE_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)")
_DURATION_HINT = "expected a duration such as 30s, 5m, 1h30m or 7d"

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")
_SIZE_HINT = "expected a number of bytes or a size such as 512KiB, 20MiB or 1GB"


def parse_duration(text: str) -> float:
    """Parse a duration such as ``30s`` or ``1h30m`` into seconds.

    Raises:
        ValueError: the text is not a duration (the message says what is expected).
    """
    value = text.strip()
    if value == "0":
        return 0.0
    if _DURATION.fullmatch(value):
        return sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(value))
    if _BARE_NUMBER.fullmatch(value):
        raise ValueError(f"invalid duration {text!r}: a bare number has no unit; {_DURATION_HINT}")
    raise ValueError(f"invalid duration {text!r}: {_DURATION_HINT}")


def parse_size(text: str | int) -> int:
    """Parse a byte size such as ``20MiB``, ``50MB`` or ``1048576`` into bytes.

    Raises:
        ValueError: the value is negative, not a size, or has an unknown unit.
    """
    if isinstance(text, bool) or not isinstance(text, (int, str)):
        raise ValueError(f"invalid size {text!r}: {_SIZE_HINT}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid size {text}: must not be negative")
        return text
    match = _SIZE.fullmatch(text.strip())
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"invalid size {text!r}: {_SIZE_HINT}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def format_duration(seconds: float) -> str:
    """Render seconds in the config syntax, for messages: ``90.0`` → ``1m30s``, ``0.5`` → ``500ms``."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    days, rest = divmod(seconds, 86400.0)
    if days and not rest:
        return f"{int(days)}d"
    hours, rest = divmod(seconds, 3600.0)
    minutes, secs = divmod(rest, 60.0)
    parts = [(hours, f"{int(hours)}h"), (minutes, f"{int(minutes)}m"), (secs, f"{secs:g}s")]
    return "".join(text for amount, text in parts if amount)


def format_size(size: int) -> str:
    """Render bytes for messages, using the largest binary unit that divides the size exactly."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"
