"""Bounds of input values: the range of every number and the length of every string a client may send.

A :class:`Bounds` is declared once per field of an admin API request class, as attrs field metadata
(:func:`bounded`, or a helper built on it such as ``voidllm.admin.tenancy.limit_field``). The admin codec
(``voidllm.codec``) checks it while structuring the request, before any use case or database sees the
value, and answers 400 naming the field; the OpenAPI generator (``voidllm.web.openapi``) states it as
``minimum``/``maximum``/``maxLength``/``pattern``/``maxItems``. A field declared without bounds gets the
default of its type (:func:`default_bounds`): at most :data:`MAX_TEXT` characters for a string, 64 for a
timestamp, a signed 64-bit range for an integer, a finite number for a float, at most :data:`MAX_ITEMS` items
for a list. So no value reaches the database driver out of its column's range (an ``OverflowError`` there is
a 500), and no unbounded text reaches a row, a log line or a metric label.

The ranges, chosen to be generous for real use and small enough to be safe:

====================================  ========================================================================
names, aliases                        at most 256 characters (:data:`NAME`)
URLs                                  at most 2,048 printable ASCII characters, no spaces (:data:`URL`)
descriptions                          at most 4,096 characters (:data:`DESCRIPTION`)
other free text (default)             at most 1,024 characters (:data:`TEXT`)
values sent in HTTP headers           printable ASCII, no space at either end, at most 4,096 characters
token and request limits              0 (unlimited) to 10^15 (:data:`LIMIT`)
model aliases                         at most 64, without commas
``max_context_tokens``                0 to 10^8
prices per million tokens             0 to 10^6, finite
``max_retries``                       0 to 100
deployment ``weight``, ``priority``   0 to 10,000 and 0 to 1,000
page ``limit``; cost report ``top``   1 to 100
timestamps                            1970 to before 9000 (``voidllm.codec``)
====================================  ========================================================================

Header values (provider API keys, MCP bearer tokens, OAuth client credentials) must be printable ASCII: a
non-ASCII character cannot be encoded in a header (``UnicodeEncodeError``), CR, LF or another control
character would split or corrupt one, and h11 refuses a value with a space at either end. Messages name the
rule, never the value sent.

The config file checks the values that flow into the same columns with the same bounds
(``voidllm.config.validate``).
"""

from __future__ import annotations

import ipaddress
import math
import re
import types
import typing
from datetime import datetime
from typing import Any

import attrs

__all__ = [
    "BOUNDS",
    "CHOICE",
    "CONTEXT_TOKENS",
    "DESCRIPTION",
    "FINITE",
    "HEADER_NAME",
    "HEADER_VALUE",
    "INT64",
    "LIMIT",
    "MAX_ITEMS",
    "MAX_TEXT",
    "MCP_ALIAS",
    "MODEL_ALIAS",
    "MODEL_ALIASES",
    "NAME",
    "PRICE",
    "PRIORITY",
    "RETRIES",
    "TEXT",
    "TIMESTAMP",
    "URL",
    "WEIGHT",
    "Bounds",
    "bounded",
    "bounds_of",
    "default_bounds",
    "valid_host",
]

BOUNDS = "voidllm.bounds"
"""The attrs metadata key under which a field's :class:`Bounds` is declared."""

MAX_TEXT = 1024
MAX_ITEMS = 1024


@attrs.frozen
class Bounds:
    """What a value may be: a number within ``minimum``..``maximum`` (floats also finite), a string of at most
    ``max_length`` characters that fully matches ``pattern`` (``pattern_means`` says what that is, for the
    error message) or is one of ``choices``, a list of at most ``max_items`` items each within ``items``."""

    minimum: int | float | None = None
    maximum: int | float | None = None
    max_length: int | None = None
    pattern: str | None = None
    pattern_means: str = ""
    choices: tuple[str, ...] | None = None
    max_items: int | None = None
    items: Bounds | None = None

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (``must be at most 256 characters``), or ``None``; never quotes it.
        A list's item problem starts with its index (``[2] must be ...``)."""
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return self._number(value)
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, list | tuple):
            return self._list(value)
        return None

    def _number(self, value: float) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return None if low <= value <= high else f"must be between {_show(low)} and {_show(high)}"
        if low is not None and value < low:
            return f"must be >= {_show(low)}"
        if high is not None and value > high:
            return f"must be <= {_show(high)}"
        return None

    def _text(self, value: str) -> str | None:
        if self.max_length is not None and len(value) > self.max_length:
            return f"must be at most {self.max_length} characters"
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return f"must be {self.pattern_means}"
        if self.choices is not None and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        return None

    def _list(self, value: list[Any] | tuple[Any, ...]) -> str | None:
        if self.max_items is not None and len(value) > self.max_items:
            return f"must have at most {self.max_items} items"
        if self.items is not None:
            for index, item in enumerate(value):
                problem = self.items.problem(item)
                if problem is not None:
                    return f"[{index}] {problem}"
        return None

    def message(self, name: str, value: Any) -> str | None:
        """:meth:`problem` after the field's name: ``name must be ...``, ``aliases[2] must be ...``."""
        problem = self.problem(value)
        if problem is None:
            return None
        return f"{name}{problem}" if problem.startswith("[") else f"{name} {problem}"


def _show(number: float) -> str:
    return str(int(number)) if isinstance(number, float) and number.is_integer() else str(number)


NAME = Bounds(max_length=256)
URL = Bounds(
    max_length=2048,
    pattern=r"[\x21-\x7e]*",
    pattern_means="printable ASCII without spaces (percent-encode other characters)",
)
DESCRIPTION = Bounds(max_length=4096)
TEXT = Bounds(max_length=MAX_TEXT)
HEADER_VALUE = Bounds(
    max_length=4096,
    pattern=r"(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?",
    pattern_means="printable ASCII without control characters or spaces at either end (it is sent in an HTTP "
    "header)",
)
TIMESTAMP = Bounds(max_length=64)
"""An RFC 3339 timestamp's text."""
LIMIT = Bounds(minimum=0, maximum=10**15)
INT64 = Bounds(minimum=-(2**63), maximum=2**63 - 1)
FINITE = Bounds()

# Upstream fields, shared by the admin API (models, deployments, MCP servers) and the config file.
CHOICE = Bounds(max_length=32)
"""A provider, model type, strategy or duration text (checked against its choices or parsed afterwards)."""
MODEL_ALIAS = Bounds(max_length=256, pattern="[^,]*", pattern_means="without commas (stored comma-joined)")
MODEL_ALIASES = Bounds(max_items=64, items=MODEL_ALIAS)
CONTEXT_TOKENS = Bounds(minimum=0, maximum=100_000_000)
PRICE = Bounds(minimum=0, maximum=1_000_000)
"""Currency units per one million tokens."""
RETRIES = Bounds(minimum=0, maximum=100)
WEIGHT = Bounds(minimum=0, maximum=10_000)
"""Relative share of the ``weighted`` strategy (the strategy counts 0 as 1)."""
PRIORITY = Bounds(minimum=0, maximum=1000)
"""Order of the ``priority`` strategy, lowest first."""
MCP_ALIAS = Bounds(max_length=63)
HEADER_NAME = Bounds(max_length=128)


_HOST = re.compile(r"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?")


def valid_host(host: str) -> bool:
    """Whether an HTTP client can connect to ``host`` (a URL's host name): an IP address, or ASCII labels of 1
    to 63 characters, at most 253 in all, ``xn--`` labels being valid punycode. Other names fail in the client
    (``UnicodeError``, ``InvalidURL``) rather than as a connection error."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    if len(host) > 253 or not _HOST.fullmatch(host):
        return False
    try:
        host.encode("idna").decode("idna")
    except UnicodeError:
        return False
    return True


def bounded(bounds: Bounds, **field_options: Any) -> Any:
    """An attrs field carrying ``bounds`` (``field_options`` as for :func:`attrs.field`)."""
    metadata = {**field_options.pop("metadata", {}), BOUNDS: bounds}
    return attrs.field(metadata=metadata, **field_options)


def default_bounds(hint: Any) -> Bounds | None:
    """The bounds of a field of type ``hint`` declared without any (``X | None`` as ``X``)."""
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return default_bounds(args[0])
    if hint is bool:
        return None
    if hint is int:
        return INT64
    if hint is float:
        return FINITE
    if hint is str:
        return TEXT
    if hint is datetime:
        return TIMESTAMP
    if origin in (list, tuple) and args:
        return Bounds(max_items=MAX_ITEMS, items=default_bounds(args[0]))
    return None


def bounds_of(field: attrs.Attribute[Any], hint: Any) -> Bounds | None:
    """A field's declared bounds, else the default of its type ``hint`` (``None``: nothing to check)."""
    declared = field.metadata.get(BOUNDS)
    return declared if declared is not None else default_bounds(hint)
