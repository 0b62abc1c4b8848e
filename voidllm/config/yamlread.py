"""Reading ``voidllm.yaml``: YAML parsing with ``${VAR}`` interpolation applied to scalar values.

Interpolation: ``${VAR}`` becomes the value of ``VAR`` or an empty string; ``${VAR:-default}`` becomes the
value when it is set and non-empty, else ``default`` (which may contain ``:`` and spaces, but not ``}``).
There is no escape syntax, and names that are not identifiers (``${1X}``) are left as written.

Unlike the Go original, which rewrote the raw text before parsing, interpolation runs *after* the YAML
parser has split the text into scalars. So it never touches comments, and a value can never change the
document's structure: an environment value containing ``: `` or `` #`` is still one plain string. An
unquoted scalar that contained ``${...}`` is typed as if its result had been written there (so
``port: ${PORT:-8080}`` gives the number 8080), but its text is kept too (:class:`Interpolated`), so a string
field still receives ``"0123"`` rather than a number. A quoted scalar always stays a string. Note that YAML
itself still needs quotes around a default that contains ``": "`` or ``" #"`` (``"${X:-a: b}"``), and
around any ``${...}`` inside a flow collection (``{api_key: "${KEY}"}``), where ``{`` and ``}`` are syntax.

Other differences from ``yaml.safe_load`` (the loader is a ``SafeLoader`` subclass): dates are not turned
into ``datetime`` values (``azure_api_version: 2024-10-21`` stays a string), a key repeated in one mapping is
an error, and a key whose value is null (``key:``, ``key: ~``, or ``key: ${UNSET}``) is dropped, so its
default applies.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from typing import Any

import yaml

__all__ = ["Interpolated", "interpolate", "read_yaml"]

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_INTERPOLATED_TAG = "!voidllm/interpolated"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class Interpolated(str):
    """The text of an unquoted scalar after interpolation; ``typed`` is what YAML reads from that text."""

    typed: object


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in ``text`` with values from ``environ``."""

    def substitute(match: re.Match[str]) -> str:
        value = environ.get(match.group(1), "")
        default = match.group(2)
        return value if value or default is None else default

    return _VARIABLE.sub(substitute, text)


# PyYAML ships without type hints (and types-PyYAML is not a dependency), so SafeLoader is Any to mypy.
class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    """A ``SafeLoader`` that interpolates scalars, rejects duplicate keys and drops null values."""

    environ: Mapping[str, str] = {}

    def compose_scalar_node(self, anchor: str | None) -> yaml.ScalarNode:
        event = self.peek_event()
        if "${" in event.value:
            event.value = interpolate(event.value, self.environ)
            if event.tag is None and event.implicit[0]:
                event.tag = _INTERPOLATED_TAG
        node: yaml.ScalarNode = super().compose_scalar_node(anchor)
        return node

    def construct_interpolated(self, node: yaml.ScalarNode) -> Interpolated | None:
        tag = self.resolve(yaml.ScalarNode, node.value, (True, False))
        typed = self.construct_object(yaml.ScalarNode(tag, node.value))
        if typed is None:
            return None
        result = Interpolated(node.value)
        result.typed = typed
        return result

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key_node.value)
        mapping = super().construct_mapping(node, deep=deep)
        return {key: value for key, value in mapping.items() if value is not None}


_Loader.add_constructor(_INTERPOLATED_TAG, _Loader.construct_interpolated)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(text: str, environ: Mapping[str, str]) -> Any:
    """Parse one YAML document, interpolating ``${...}`` in its scalars from ``environ``.

    Raises:
        yaml.YAMLError: the text is not valid YAML, or a mapping repeats a key.
    """
    loader = _Loader(text)
    loader.environ = environ
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
