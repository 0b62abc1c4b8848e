"""The one cattrs converter for ``voidllm.yaml``, and the translation of its errors into key-path messages.

The converter is strict where YAML is loose: an ``int`` field takes only an integer (not ``true``, not
``"8080"``, not ``8080.5``), a ``str`` field only a string (``port: 0123`` would otherwise arrive as 83, so
quoting is required), a list field only a list, and a section only a mapping. Unknown keys are rejected
(``forbid_extra_keys``). After reading a field it runs the :class:`~voidllm.config.checks.FieldCheck`\\ s
found in the field's ``Annotated`` type; after building an object it runs that object's cross-field checks
from ``validate.py``. cattrs collects every failure of every field, so one pass reports all of them.

:func:`describe_error` walks the resulting exception tree (``ClassValidationError``,
``IterableValidationError``, ``ForbiddenExtraKeysError``, ...) into ``key.path[0].leaf: message`` lines.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Annotated, Any, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.gen import make_dict_structure_fn

from voidllm.config.checks import FieldCheck
from voidllm.config.units import Unit, parse_duration, parse_size
from voidllm.config.validate import Path, Problem, check_object, format_path
from voidllm.config.yamlread import Interpolated
from voidllm.guard import GuardPolicy, GuardPolicyError, parse_policy

__all__ = ["ObjectProblemsError", "converter", "describe_error"]

_UNSUPPORTED = frozenset({"license", "license_file", "pii", "token_counting", "soft_limit_threshold"})
_KINDS = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "a mapping"),
)


class ObjectProblemsError(ValueError):
    """Cross-field problems of one object, each with a key path relative to that object."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = tuple(problems)


def _kind(value: Any) -> str:
    return next((name for cls, name in _KINDS if isinstance(value, cls)), type(value).__name__)


def _plain(value: Any) -> Any:
    """What YAML read: for an interpolated unquoted scalar, its typed value rather than its text."""
    return value.typed if isinstance(value, Interpolated) else value


def _expected(what: str, value: Any, hint: str = "") -> ValueError:
    return ValueError(f"expected {what}, got {_kind(value)}{hint}")


def _read_str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return str(value)
    raise _expected("a string", value, " (put the value in quotes)" if isinstance(value, int | float) else "")


def _read_int(value: Any, _: type) -> int:
    value = _plain(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _expected("an integer", value)


def _read_float(value: Any, _: type) -> float:
    value = _plain(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _expected("a number", value)


def _read_bool(value: Any, _: type) -> bool:
    value = _plain(value)
    if isinstance(value, bool):
        return value
    raise _expected("true or false", value)


def _read_duration(value: Any, _: type) -> float:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_duration(str(value))
    raise _expected("a duration such as 30s", value)


def _read_size(value: Any, _: type) -> int:
    value = _plain(value)
    return parse_size(value)


def _read_guard(value: Any, _: type) -> GuardPolicy:
    """``settings.guard``: the guard's own strict parser; a problem is reported at its key path.

    YAML reads an unquoted ``off`` as ``false``: a detector set to ``false`` means ``off`` here.
    """
    if isinstance(value, Mapping) and isinstance(value.get("detectors"), Mapping):
        detectors = {
            key: "off" if _plain(mode) is False else mode for key, mode in value["detectors"].items()
        }
        value = {**value, "detectors": detectors}
    try:
        return parse_policy(value, path="")
    except GuardPolicyError as exc:
        where = tuple(exc.path.split(".")[1:])
        raise ObjectProblemsError([(where, exc.message.removeprefix(f"{exc.path}: "))]) from None


_UNIT_READERS: dict[Unit, Callable[[Any, type], Any]] = {Unit.DURATION: _read_duration, Unit.SIZE: _read_size}


def _annotated_hook(annotated: Any, conv: cattrs.BaseConverter) -> Callable[[Any, type], Any]:
    """Read with the unit parser or the base type's hook, then run the field checks."""
    base, *metadata = get_args(annotated)
    unit = next((item for item in metadata if isinstance(item, Unit)), None)
    read = _UNIT_READERS[unit] if unit else conv.get_structure_hook(base)
    checks = [item for item in metadata if isinstance(item, FieldCheck)]

    def structure(value: Any, _: type) -> Any:
        result = read(value, base)
        problems = [problem for check in checks if (problem := check(result)) is not None]
        if problems:
            raise ValueError("; ".join(problems))
        return result

    return structure


def _tuple_hook(tuple_type: Any, conv: cattrs.BaseConverter) -> Callable[[Any, type], Any]:
    items = homogenous_tuple_structure_factory(tuple_type, conv)

    def structure(value: Any, _: type) -> Any:
        if not isinstance(value, list):
            raise _expected("a list", value)
        return items(value, tuple_type)

    return structure


def _dict_hook(dict_type: Any, conv: cattrs.BaseConverter) -> Callable[[Any, type], Any]:
    key_type, value_type = get_args(dict_type)
    read_key, read_value = conv.get_structure_hook(key_type), conv.get_structure_hook(value_type)

    def structure(value: Any, _: type) -> Any:
        if not isinstance(value, Mapping):
            raise _expected("a mapping", value)
        return {read_key(key, key_type): read_value(item, value_type) for key, item in value.items()}

    return structure


def _attrs_hook(cls: type, conv: cattrs.BaseConverter) -> Callable[[Any, type], Any]:
    fields: Callable[[Mapping[str, Any], Any], Any] = make_dict_structure_fn(cls, conv)

    def structure(value: Any, _: type) -> Any:
        if not isinstance(value, Mapping):
            raise _expected("a mapping", value)
        result = fields(value, cls)
        problems = check_object(result)
        if problems:
            raise ObjectProblemsError(problems)
        return result

    return structure


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    for cls, hook in ((str, _read_str), (int, _read_int), (float, _read_float), (bool, _read_bool)):
        conv.register_structure_hook(cls, hook)
    conv.register_structure_hook_factory(attrs.has, _attrs_hook)
    conv.register_structure_hook(GuardPolicy, _read_guard)
    conv.register_structure_hook_factory(_is_tuple, _tuple_hook)
    conv.register_structure_hook_factory(_is_dict, _dict_hook)
    conv.register_structure_hook_factory(_is_annotated, _annotated_hook)
    return conv


def _is_tuple(type_: object) -> bool:
    return get_origin(type_) is tuple


def _is_dict(type_: object) -> bool:
    return get_origin(type_) is dict


def _is_annotated(type_: object) -> bool:
    return get_origin(type_) is Annotated


converter = _make_converter()


def _unknown_keys(error: cattrs.ForbiddenExtraKeysError, path: Path) -> Iterator[str]:
    known = [field.name for field in attrs.fields(error.cl)]
    for key in sorted(map(str, error.extra_fields)):
        if key in _UNSUPPORTED:
            hint = " (not supported by this version of VoidLLM)"
        else:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        yield f"{format_path((*path, key))}: unknown key{hint}"


def describe_error(error: BaseException, path: Path = ()) -> list[str]:
    """Turn an exception raised by :data:`converter` into ``path: message`` lines, one per problem."""
    if isinstance(error, cattrs.ClassValidationError | cattrs.IterableValidationError):
        with_notes, without = error.group_exceptions()
        lines: list[str] = []
        for inner, note in with_notes:
            step = note.name if isinstance(note, cattrs.AttributeValidationNote) else note.index
            lines += describe_error(inner, (*path, step))
        for inner in without:
            lines += describe_error(inner, path)
        return lines
    if isinstance(error, cattrs.ForbiddenExtraKeysError):
        return list(_unknown_keys(error, path))
    if isinstance(error, ObjectProblemsError):
        return [f"{format_path((*path, *where))}: {message}" for where, message in error.problems]
    if isinstance(error, KeyError):
        return [f"{format_path(path)}: required key is missing"]
    return [f"{format_path(path)}: {error}"]
