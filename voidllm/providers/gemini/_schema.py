"""JSON Schema -> the schema subset Gemini accepts in ``parameters`` and ``responseSchema``.

Gemini's ``Schema`` is an OpenAPI 3.0 subset and answers 400 to keywords it does not know. The keywords
that OpenAI clients commonly send and Gemini refuses are removed wherever a schema can appear: ``$schema``,
``$id``, ``$comment`` and ``additionalProperties`` (strict-mode schemas always carry
``additionalProperties: false``).
Everything else is passed through unchanged, so a schema using other unsupported keywords (``$ref``/``$defs``,
``patternProperties``, type arrays) still reaches Gemini, which names the offending field in its answer.

The walk follows the schema's structure: it recurses into subschemas (``properties`` values, ``items``,
``anyOf``, ...) but never into data (``enum``, ``default``, ``example``, ``required``), so a property *named*
``additionalProperties`` survives. Nesting deeper than :data:`MAX_DEPTH` is refused with a 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voidllm.providers.base import TranslationError

MAX_DEPTH = 64
DROPPED_KEYWORDS = frozenset({"$schema", "$id", "$comment", "additionalProperties"})
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"})
_SCHEMA_VALUES = frozenset(
    {
        "items",
        "additionalItems",
        "not",
        "contains",
        "propertyNames",
        "if",
        "then",
        "else",
        "anyOf",
        "oneOf",
        "allOf",
        "prefixItems",
    }
)


def clean_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` without the keywords Gemini refuses (see the module docstring).

    Raises:
        TranslationError: the schema nests deeper than ``MAX_DEPTH``.
    """
    return _clean_object(schema, 0)


def _clean(value: object, depth: int) -> object:
    """Clean a subschema position: an object is a schema, a list a list of schemas, anything else is kept."""
    if depth > MAX_DEPTH:
        raise TranslationError(f"a JSON schema nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        return _clean_object(value, depth)
    if isinstance(value, list):
        return [_clean(item, depth + 1) for item in value]
    return value


def _clean_object(schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in DROPPED_KEYWORDS:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: _clean(sub, depth + 1) for name, sub in value.items()}
        elif key in _SCHEMA_VALUES:
            out[key] = _clean(value, depth + 1)
        else:
            out[key] = value
    return out
