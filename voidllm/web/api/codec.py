"""The one cattrs converter of the admin API: JSON bodies and query strings in, attrs responses out.

Unknown body fields are ignored (as the Go original does); a missing or mistyped field is a 400 that names the
field path (``required field missing @ $.name``) and never echoes the value sent. Timestamps are RFC 3339
strings with an offset; they are returned in UTC with a ``Z``. A field whose Python name ends in ``_`` (``from_``,
a keyword) goes by the name without it on the wire (:func:`wire_name`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from voidllm.errors import BadRequestError, GatewayError

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=False)


def _structure_datetime(value: Any, _: type) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 timestamp")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp needs a UTC offset, e.g. 2026-01-31T00:00:00Z")
    return parsed.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _structure_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    raise ValueError("expected true or false")


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError("expected an integer")


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("expected a number")
    return float(value)


def _structure_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
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


converter.register_structure_hook_factory(
    lambda cls: bool(_renamed_fields(cls)), lambda cls: make_dict_structure_fn(cls, converter, **_renames(cls))
)
converter.register_unstructure_hook_factory(
    lambda cls: bool(_renamed_fields(cls)), lambda cls: make_dict_unstructure_fn(cls, converter, **_renames(cls))
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


def structure(data: Any, cls: type[T]) -> T:
    """``data`` as an instance of ``cls``, or :class:`BadRequestError` naming the offending fields."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:  # cattrs wraps everything it catches in ClassValidationError groups
        ours = _our_error(exc)
        if ours is not None:
            raise ours from None
        messages = cattrs.transform_error(exc) if isinstance(exc, cattrs.BaseValidationError) else ["invalid value"]
        messages = [_WIRE_PATH.sub(r"\1", message) for message in messages]
        raise BadRequestError("; ".join(messages)) from None


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
    return orjson.dumps(converter.unstructure(value, unstructure_as=as_type) if as_type else converter.unstructure(value))
