"""The one cattrs converter of the admin API: JSON bodies and query strings in, attrs responses out.

The REST API (:mod:`voidllm.web.api`) and the command line (:mod:`voidllm.manage`, which prints the same JSON)
both use it, so it sits below both.

Strict, unlike the Go original: an unknown field of a body or a query string is a 400 ``validation_error``
naming it and the closest valid one (``unknown field 'rpm' (did you mean 'requests_per_minute'?) @ $``), so a
typo never switches a limit off; a missing or mistyped field is a 400 ``validation_error`` that names the
field path (``required field missing @ $.name``) and never echoes the value sent. In a PATCH body ``null`` is
refused (:func:`reject_nulls`): a field left out keeps its value, and ``null`` would look like a request to
clear it, which no PATCH field means by ``null`` (``""`` clears what can be cleared).

Timestamps are RFC 3339 strings with an offset, or dates (``2026-12-01``, midnight UTC), from 1970 to before
the year 9000; they are returned in UTC with a ``Z``. A field whose Python name ends in ``_`` (``from_``, a
keyword) goes by the name without it on the wire (:func:`wire_name`).

Every field of a request class is checked against its :class:`~voidllm.bounds.Bounds` (declared in the field's
metadata, else the default of its type) as soon as it is read, before the class's own converters and
validators run: a value out of range, too long or not fit for an HTTP header is a 400 naming the field
(``weight must be between 0 and 10000``). Text is measured as sent, so a long value is refused before it is
parsed; a number too large for a float counts as infinite (and is refused as not finite).
"""

from __future__ import annotations

import difflib
import math
import re
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.v import format_exception

from voidllm.bounds import TIMESTAMP, Bounds, bounds_of
from voidllm.errors import BadRequestError, GatewayError

T = TypeVar("T")
TIMESTAMP_LENGTH = TIMESTAMP.max_length or 64
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Timestamps are within ``[EARLIEST, LATEST)``: date arithmetic on them (a day later, a month's start) cannot
overflow ``datetime``."""

converter = cattrs.Converter(forbid_extra_keys=False)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class _WrongValueError(ValueError):
    """A value of the wrong kind; the message says what it must be (``must be an integer``), not the value."""


def _structure_datetime(value: Any, _: type) -> datetime:
    if not isinstance(value, str) or len(value) > TIMESTAMP_LENGTH:
        raise _WrongValueError("must be an RFC 3339 timestamp or a date")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:  # its message quotes the value
        raise _WrongValueError("must be an RFC 3339 timestamp or a date") from None
    if _DATE.fullmatch(value):  # a plain date is midnight UTC of that day
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.tzinfo is None:
        raise _WrongValueError("must have a UTC offset, e.g. 2026-01-31T00:00:00Z")
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted by its offset
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise _WrongValueError(
            f"must be from {format_datetime(EARLIEST)} to before {format_datetime(LATEST)}"
        )
    return utc


def format_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _structure_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    raise _WrongValueError("must be true or false")


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        try:
            return int(value)
        except ValueError:  # beyond Python's digit limit for int()
            pass
    raise _WrongValueError("must be an integer")


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _WrongValueError("must be a number")
    try:
        return float(value)
    except OverflowError:  # an integer beyond the float range (only an int overflows float())
        return math.inf if int(value) > 0 else -math.inf
    except ValueError:
        raise _WrongValueError("must be a number") from None


def _structure_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise _WrongValueError("must be a string")
    return value


def wire_name(name: str) -> str:
    """A field's name in JSON bodies and query strings: Python's name without a trailing ``_``."""
    return name[:-1] if name.endswith("_") else name


_WIRE_PATH = re.compile(r"(\.\w+?)_(?=\W|$)")
"""A renamed field in an error path (``$.from_``): shown by its wire name."""


def _renamed_fields(cls: Any) -> list[str]:
    try:
        return [field.name for field in attrs.fields(cls) if field.name.endswith("_")]
    except (TypeError, attrs.exceptions.NotAnAttrsClassError):
        return []


def _renames(cls: Any) -> dict[str, Any]:
    return {name: override(rename=wire_name(name)) for name in _renamed_fields(cls)}


def _is_request_class(cls: Any) -> bool:
    return isinstance(cls, type) and attrs.has(cls)


def _structure_request_class(cls: Any) -> Any:
    """A structure function for an attrs class: wire names, and each field checked against its bounds (a
    value of the wrong kind is a 400 naming the field too)."""
    hints = typing.get_type_hints(cls)
    overrides: dict[str, Any] = {}
    for field in attrs.fields(cls):
        bounds = bounds_of(field, hints[field.name]) or Bounds()
        hook = _bounded_hook(hints[field.name], bounds, wire_name(field.name))
        overrides[field.name] = override(rename=wire_name(field.name), struct_hook=hook)
    return make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True, **overrides)


def _bounded_hook(hint: Any, bounds: Bounds, name: str) -> Callable[[Any, Any], Any]:
    """Structure a field's value as ``hint`` (``X | None`` allows ``null``), then refuse it with a 400 naming
    the field when it is out of ``bounds``."""
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    nullable = len(args) < len(typing.get_args(hint)) and len(args) == 1
    inner = args[0] if nullable else hint

    def check(value: Any) -> None:
        message = bounds.message(name, value)
        if message is not None:
            raise BadRequestError(message)

    def structure_bounded(value: Any, _: Any) -> Any:
        if value is None and nullable:
            return None
        if isinstance(value, str):
            check(value)
        try:
            structured = converter.structure(value, inner)
        except _WrongValueError as exc:
            raise BadRequestError(f"{name} {exc}") from None
        if not isinstance(structured, str):
            check(structured)
        return structured

    return structure_bounded


converter.register_structure_hook_factory(_is_request_class, _structure_request_class)
converter.register_unstructure_hook_factory(
    lambda cls: bool(_renamed_fields(cls)),
    lambda cls: make_dict_unstructure_fn(cls, converter, **_renames(cls)),
)
converter.register_structure_hook(datetime, _structure_datetime)
converter.register_unstructure_hook(datetime, format_datetime)
converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(float, _structure_float)
converter.register_structure_hook(str, _structure_str)


def _our_error(exc: BaseException) -> GatewayError | None:
    """A :class:`GatewayError` raised by a validator inside the structured class, if any."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _our_error(inner)
            if found is not None:
                return found
    return None


VALIDATION_ERROR = "validation_error"


def structure(data: Any, cls: type[T]) -> T:
    """``data`` as an instance of ``cls``, or a 400 ``validation_error`` naming the offending fields."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:  # cattrs wraps everything it catches in ClassValidationError groups
        ours = _our_error(exc)
        if isinstance(ours, BadRequestError) and ours.code == BadRequestError.code:
            raise BadRequestError(ours.message, code=VALIDATION_ERROR, headers=ours.headers) from None
        if ours is not None:
            raise ours from None
        messages = (
            cattrs.transform_error(exc, format_exception=_format_error)
            if isinstance(exc, cattrs.BaseValidationError)
            else ["invalid value"]
        )
        messages = [_WIRE_PATH.sub(r"\1", message) for message in messages]
        raise BadRequestError("; ".join(messages), code=VALIDATION_ERROR) from None


def _format_error(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        known = [wire_name(field.name) for field in attrs.fields(exc.cl)]
        return "; ".join(_unknown(name, known) for name in sorted(exc.extra_fields))
    return format_exception(exc, type_)


def _unknown(name: str, known: list[str]) -> str:
    shown = name if len(name) <= 64 else name[:64] + "…"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    if close:
        return f"unknown field {shown!r} (did you mean {close[0]!r}?)"
    return f"unknown field {shown!r} (known: {', '.join(known) or 'none'})"


def reject_nulls(payload: Mapping[str, Any]) -> None:
    """400 when a PATCH body sets a field to ``null`` (see the module docstring)."""
    nulls = sorted(name for name, value in payload.items() if value is None)
    if nulls:
        raise BadRequestError(
            f"{', '.join(nulls)}: null is not a value here; leave a field out to keep it as it is",
            code=VALIDATION_ERROR,
        )


def parse_json_object(raw: bytes) -> Mapping[str, Any]:
    """A request body that must be a JSON object; an empty body counts as ``{}``."""
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequestError("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequestError("request body must be a JSON object")
    return data


def render(value: Any, as_type: Any = None) -> bytes:
    """JSON bytes of a response object."""
    return orjson.dumps(
        converter.unstructure(value, unstructure_as=as_type) if as_type else converter.unstructure(value)
    )
