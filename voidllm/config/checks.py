"""Checks of single config values, attached to fields with ``typing.Annotated``.

A field such as ``port: Annotated[int, Range(1, 65535)] = 8080`` carries its rule next to its type. The config
codec runs every :class:`FieldCheck` found in a field's annotation right after it has read the value, so a
range error is reported with the field's path and alongside type errors from its siblings. Defaults are not
checked: they are valid by construction. Rules that relate several fields live in ``validate.py``.

A check returns ``None`` when the value is fine and otherwise a short message without the key path
(``must be between 1 and 65535 (got 0)``). ``Range``, ``OneOf`` and ``Pattern`` repeat the value they got, so
they are only used on fields that never hold a secret; checks of keys and URLs (which may carry a password)
do not repeat it.
"""

from __future__ import annotations

import abc
import difflib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import attrs

from voidllm.bounds import valid_host
from voidllm.config.units import Unit, format_duration, format_size

__all__ = [
    "ENCRYPTION_KEY",
    "NOT_EMPTY",
    "FieldCheck",
    "HttpUrl",
    "MinLength",
    "OneOf",
    "Origins",
    "Pattern",
    "Predicate",
    "Range",
    "is_origin",
]


class FieldCheck(abc.ABC):
    """Base class of the checks the codec looks for in ``Annotated`` metadata."""

    @abc.abstractmethod
    def __call__(self, value: Any) -> str | None:
        """``None`` when ``value`` is acceptable, else what is wrong with it."""


@attrs.frozen
class Range(FieldCheck):
    """A number within bounds; ``positive`` demands > 0, ``zero_ok`` lets 0 (meaning "off") through."""

    min: float | None = None
    max: float | None = None
    unit: Unit | None = None
    positive: bool = False
    zero_ok: bool = False

    def __call__(self, value: Any) -> str | None:
        if value is None or (self.zero_ok and value == 0):
            return None
        rule = self._broken_rule(value)
        if rule is None:
            return None
        return f"must be {'0 or ' if self.zero_ok else ''}{rule} (got {self._show(value)})"

    def _broken_rule(self, value: Any) -> str | None:
        if self.positive and value <= 0:
            return "> 0"
        low_ok = self.min is None or value >= self.min
        high_ok = self.max is None or value <= self.max
        if low_ok and high_ok:
            return None
        if self.min is not None and self.max is not None:
            return f"between {self._show(self.min)} and {self._show(self.max)}"
        return f">= {self._show(self.min)}" if not low_ok else f"<= {self._show(self.max)}"

    def _show(self, number: Any) -> str:
        if self.unit is Unit.DURATION:
            return format_duration(number)
        if self.unit is Unit.SIZE:
            return format_size(int(number))
        return f"{number:g}" if isinstance(number, float) else str(number)


@attrs.frozen
class OneOf(FieldCheck):
    """A string from a fixed set; an empty string passes when ``allow_empty`` (then it means "unset")."""

    choices: tuple[str, ...]
    allow_empty: bool = False

    def __call__(self, value: Any) -> str | None:
        if value in self.choices or (self.allow_empty and value == ""):
            return None
        close = difflib.get_close_matches(str(value), self.choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"must be one of {', '.join(self.choices)} (got {value!r}{hint})"


@attrs.frozen
class Pattern(FieldCheck):
    """A string that fully matches a regular expression; ``description`` says what that means."""

    regex: str
    description: str
    allow_empty: bool = False

    def __call__(self, value: Any) -> str | None:
        if re.fullmatch(self.regex, value) or (self.allow_empty and value == ""):
            return None
        return f"must be {self.description} (got {value!r})"


@attrs.frozen
class HttpUrl(FieldCheck):
    """An absolute ``http``/``https`` URL with a host, or ``https`` only; empty means unset and passes."""

    https_only: bool = False

    def __call__(self, value: Any) -> str | None:
        if value == "":
            return None
        schemes = ("https",) if self.https_only else ("http", "https")
        try:
            parts = urlsplit(value)
            ok = parts.scheme in schemes and bool(parts.hostname)
        except ValueError:
            ok = False
        if ok:
            return None
        return "must be an https:// URL" if self.https_only else "must be an http:// or https:// URL"


def is_origin(text: str) -> bool:
    """Whether ``text`` is a web origin as a browser sends it in ``Origin``: ``http(s)://host[:port]``, with
    no user, path (a lone trailing ``/`` aside), query or fragment."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and text[: len(parts.scheme) + 3].lower() == parts.scheme + "://"
        and parts.hostname is not None
        and valid_host(parts.hostname)
        and parts.username is None
        and parts.password is None
        and parts.path in ("", "/")
        and not any(mark in text for mark in "?#")
    )


@attrs.frozen
class Origins(FieldCheck):
    """Every entry a browser origin (:func:`is_origin`), or ``*`` when ``wildcard``; names the first that is
    not."""

    wildcard: bool = False

    def __call__(self, value: Any) -> str | None:
        for entry in value:
            if not (is_origin(entry) or (self.wildcard and entry == "*")):
                also = " or *" if self.wildcard else ""
                return (
                    f"{entry!r} is not an origin such as https://app.example.com{also} "
                    "(http or https, a host and an optional port; no path)"
                )
        return None


@attrs.frozen
class MinLength(FieldCheck):
    """A string of at least ``length`` characters, or empty (unset)."""

    length: int

    def __call__(self, value: Any) -> str | None:
        if value == "" or len(value) >= self.length:
            return None
        return f"must be at least {self.length} characters long (got {len(value)})"


@attrs.frozen
class Predicate(FieldCheck):
    """Any other rule: ``test(value)`` must be true, else ``message``."""

    test: Callable[[Any], bool]
    message: str

    def __call__(self, value: Any) -> str | None:
        return None if self.test(value) else self.message


def _is_encryption_key(value: str) -> bool:
    # The crypto module accepts base64 of exactly 32 bytes (44 characters) or any passphrase of at least 16
    # characters (it then derives the key). Both forms are at least 16 characters, so length decides.
    return value == "" or len(value) >= 16


NOT_EMPTY = Predicate(bool, "must not be empty")
ENCRYPTION_KEY = Predicate(
    _is_encryption_key, "must be base64 of exactly 32 bytes or a passphrase of at least 16 characters"
)
