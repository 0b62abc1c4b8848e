"""Code Mode discovery: what a script can call, told as TypeScript, and what a tool's answer becomes in it.

Pure functions over plain values (docs/reference/behaviour.md 8.7), called by the MCP server that serves
``list_servers``, ``search_tools`` and ``execute_code``:

- :func:`declarations` renders each server's tools as ``declare namespace tools.<alias> { ... }`` with one
  ``function <tool>(args: {...}): Promise<T>;`` per tool, which the model reads in the ``execute_code``
  description (:func:`execute_code_description`) and in :func:`search` answers. ``T`` is the learned output
  type (``// inferred``) or ``any``; :func:`render_type` turns a JSON schema into the TypeScript type.
- :func:`infer_schema` learns an output schema from a tool's first successful answer; :func:`unwrap_result`
  turns an MCP ``tools/call`` result into the value the script receives.

Everything rendered comes from upstream servers (tool names, descriptions, schemas, the keys of answers),
so nothing of it may change the structure of the text around it. Names that are JavaScript identifiers
(:func:`is_identifier`) appear bare; every other name appears only as a JSON string literal (ASCII, so no
line terminator or quote survives), in a type or a ``//`` comment that says how to reach it with brackets
(the ``tools`` Proxy accepts any string). Descriptions appear only inside ``/** ... */``, cut to their first
sentence, with line breaks and control characters turned into spaces, ``*/`` broken up and the length
clipped. Sizes are bounded too: types nest :data:`MAX_DEPTH` levels, a property's type longer than
:data:`MAX_TYPE_CHARS` reads ``any``.

Zero knowledge: :func:`infer_schema` records the shape of an answer, never a value: keys are names (and are
kept, clipped), while strings, numbers, enums and examples are not.

Deliberately left out: ``$ref`` resolution, ``allOf``, tuples and ``additionalProperties`` types (all read
``any`` or ``Record<string, any>``); a script is not type-checked, the declarations only guide the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import orjson

__all__ = [
    "EXECUTE_CODE_GUIDANCE",
    "FIELD_NAME",
    "MAX_DEPTH",
    "MAX_DESCRIPTION_CHARS",
    "MAX_NAME_CHARS",
    "MAX_PROPERTIES",
    "MAX_TOTAL_PROPERTIES",
    "MAX_TYPE_CHARS",
    "SEARCH_LIMIT",
    "ServerTools",
    "ToolSpec",
    "declarations",
    "execute_code_description",
    "first_sentence",
    "infer_schema",
    "is_identifier",
    "render_type",
    "search",
    "unwrap_result",
]

MAX_DEPTH = 3
"""Levels of objects and arrays that :func:`render_type` spells out and :func:`infer_schema` records."""
MAX_PROPERTIES = 64
"""An object with more keys is just ``object`` (``Record<string, any>``)."""
MAX_TOTAL_PROPERTIES = 256
"""Properties :func:`infer_schema` records in one schema at most; objects met after that are ``object``."""
MAX_NAME_CHARS = 128
"""Property names are clipped to this length in a learned schema."""
MAX_TYPE_CHARS = 500
"""A property whose rendered type is longer reads ``any``."""
MAX_DESCRIPTION_CHARS = 300
"""A description's first sentence is clipped to this length."""
SEARCH_LIMIT = 50
"""Matches :func:`search` renders by default (docs/reference/behaviour.md 8.7)."""
_MAX_ENUM = 16
_MAX_UNION = 8
_MAX_UNION_NESTING = 4

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_NOT_IDENTIFIER_CHAR = re.compile(r"[^A-Za-z0-9_$]")
# Reserved words of strict-mode JavaScript (declarations are modules, always strict) and the two names
# strict mode forbids as a function's name.
_RESERVED = frozenset(
    "await break case catch class const continue debugger default delete do else enum export extends "
    "false finally for function if implements import in instanceof interface let new null package "
    "private protected public return static super switch this throw true try typeof var void while with "
    "yield arguments eval".split()
)
# Line terminators and other control characters, which would end a `//` comment or split a JSDoc line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_SCALARS = {"string": "string", "number": "number", "integer": "number", "boolean": "boolean", "null": "null"}
_RESULT_KEYS = frozenset({"content", "isError", "structuredContent", "_meta", "resultType"})
"""A result of only these keys unwraps (``resultType`` is the 2026-07-28 revision's ``"complete"`` marker)."""


@attrs.frozen
class ToolSpec:
    """One upstream tool as the script sees it."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    """The JSON schema of the arguments (``{}`` when unknown)."""
    output_schema: Mapping[str, Any] | None = None
    """The learned (inferred) schema of the answer, ``None`` while none is learned."""


@attrs.frozen
class ServerTools:
    """A server the caller may use from a script: its alias (``tools.<alias>``), display name and tools."""

    alias: str
    name: str
    tools: tuple[ToolSpec, ...]


def is_identifier(name: str) -> bool:
    """Whether ``name`` is a plain JavaScript identifier, usable bare in a declaration and after a dot.

    Only ASCII letters, digits, ``_`` and ``$``, no digit first, and no reserved word.
    """
    return _IDENTIFIER.fullmatch(name) is not None and name not in _RESERVED


def _literal(text: str) -> str:
    """``text`` as a JSON (and JavaScript) string literal, all ASCII: no line terminator, no bare quote."""
    return json.dumps(text, ensure_ascii=True)


def _comment_text(text: str, limit: int = MAX_DESCRIPTION_CHARS) -> str:
    """``text`` made safe inside ``/** ... */`` and ``//``: one line, no ``*/``, about ``limit`` chars."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    if len(flat) > limit:
        flat = flat[: limit - 3].rstrip() + "..."
    return flat.replace("*/", "* /")


def first_sentence(description: str) -> str:
    """The first line of ``description``, up to the end of its first sentence.

    A sentence ends at ``.``, ``!`` or ``?`` followed by a space or the end of the line.
    """
    line = description.strip().split("\n", 1)[0].strip()
    end = _SENTENCE_END.search(line)
    return line[: end.end()] if end else line


def render_type(schema: Mapping[str, Any] | None, depth: int = 0) -> str:
    """The TypeScript type of a JSON schema.

    Scalars map to ``string``, ``number`` (``number`` and ``integer``), ``boolean`` and ``null``; an
    array with ``items`` to ``T[]``, without to ``any[]``; an object with ``properties`` to
    ``{ a: T; b?: T }`` (``?`` unless the property is in ``required``), without to ``Record<string, any>``;
    a list of types, ``anyOf`` and ``oneOf`` to a union, an ``enum`` of strings to a union of literals.
    Objects and arrays deeper than :data:`MAX_DEPTH` levels, and objects with more than
    :data:`MAX_PROPERTIES` properties, are not spelled out; anything else is ``any``.
    """
    return _render(schema, depth)[0]


def _render(schema: object, depth: int, unions: int = 0) -> tuple[str, bool]:
    """The type and whether it is a union (which needs parentheses before ``[]``).

    ``unions`` counts the unions around ``schema`` at this depth: a union does not nest an object, so it
    has its own bound against a schema of unions inside unions.
    """
    if not isinstance(schema, Mapping) or unions > _MAX_UNION_NESTING:
        return "any", False
    enum = schema.get("enum")
    if isinstance(enum, list) and 0 < len(enum) <= _MAX_ENUM and all(isinstance(v, str) for v in enum):
        return _union([_literal(value) for value in enum])
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union([_render({**schema, "type": each}, depth, unions + 1)[0] for each in kind])
    members = schema.get("anyOf", schema.get("oneOf"))
    if kind is None and isinstance(members, list) and members:
        return _union([_render(member, depth, unions + 1)[0] for member in members])
    if kind == "array" or (kind is None and "items" in schema):
        return _render_array(schema.get("items"), depth), False
    if kind == "object" or (kind is None and "properties" in schema):
        return _render_object(schema, depth), False
    return _SCALARS.get(kind, "any") if isinstance(kind, str) else "any", False


def _union(types: list[str]) -> tuple[str, bool]:
    unique = list(dict.fromkeys(types))
    if "any" in unique or len(unique) > _MAX_UNION:
        return "any", False
    return " | ".join(unique), len(unique) > 1


def _render_array(items: object, depth: int) -> str:
    if not isinstance(items, Mapping) or depth >= MAX_DEPTH:
        return "any[]"
    item, union = _render(items, depth + 1)
    return f"({item})[]" if union else f"{item}[]"


def _render_object(schema: Mapping[str, Any], depth: int) -> str:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties or len(properties) > MAX_PROPERTIES:
        return "Record<string, any>"
    if depth >= MAX_DEPTH:
        return "Record<string, any>"
    required = schema.get("required")
    needed = {name for name in required if isinstance(name, str)} if isinstance(required, list) else set()
    fields = []
    for name, sub in properties.items():
        if not isinstance(name, str):
            continue
        kind = _render(sub, depth + 1)[0]
        plain = _IDENTIFIER.fullmatch(name) and len(name) <= MAX_NAME_CHARS
        key = name if plain else _literal(name[:MAX_NAME_CHARS])
        optional = "" if name in needed else "?"
        fields.append(f"{key}{optional}: {kind if len(kind) <= MAX_TYPE_CHARS else 'any'}")
    return "{ " + "; ".join(fields) + " }" if fields else "Record<string, any>"


def _signature(tool: ToolSpec) -> str:
    """``(args: {...}): Promise<T>``; ``args`` is optional when no argument is required."""
    schema = tool.input_schema
    has_properties = isinstance(schema.get("properties"), Mapping) and bool(schema["properties"])
    args = render_type(schema) if has_properties else "Record<string, any>"
    required = schema.get("required")
    optional = "" if isinstance(required, list) and required else "?"
    result = render_type(tool.output_schema) if tool.output_schema is not None else "any"
    return f"(args{optional}: {args}): Promise<{result}>"


def _tool_lines(reference: str, tool: ToolSpec) -> list[str]:
    description = _comment_text(first_sentence(tool.description))
    lines = [f"  /** {description} */"] if description else []
    if is_identifier(tool.name):
        inferred = " // inferred" if tool.output_schema is not None else ""
        lines.append(f"  function {tool.name}{_signature(tool)};{inferred}")
    else:
        call = f"{reference}[{_literal(tool.name)}]"
        lines.append(f"  // {call}{_signature(tool)} -- not a plain identifier: call it with brackets")
    return lines


def _namespace(server: ServerTools) -> list[str]:
    title = _comment_text(server.name, 100)
    lines = [f"/** {title} */"] if title else []
    if is_identifier(server.alias):
        reference = f"tools.{server.alias}"
        lines.append(f"declare namespace {reference} {{")
    else:
        reference = f"tools[{_literal(server.alias)}]"
        lines.append(f"// the alias is not a plain identifier: call these tools as {reference}.<tool>(args)")
        lines.append(f"declare namespace tools_{_NOT_IDENTIFIER_CHAR.sub('_', server.alias)} {{")
    for tool in sorted(server.tools, key=lambda tool: tool.name):
        lines.extend(_tool_lines(reference, tool))
    lines.append("}")
    return lines


def declarations(servers: Sequence[ServerTools]) -> str:
    """TypeScript declarations of every tool of ``servers``: one namespace per alias (sorted), tools sorted.

    A server without tools is left out; no servers give an empty string.
    """
    blocks = [
        "\n".join(_namespace(server)) for server in sorted(servers, key=lambda s: s.alias) if server.tools
    ]
    return "\n\n".join(blocks)


def search(
    servers: Sequence[ServerTools], query: str, *, server: str | None = None, limit: int = SEARCH_LIMIT
) -> str:
    """The ``search_tools`` answer: tools whose name or description contains ``query`` (any case).

    Only the server with alias ``server`` is searched when given. The first ``limit`` matches (by alias,
    then name) are rendered as :func:`declarations`, under a line that counts them.
    """
    needle = query.lower()
    matches = [
        (each, tool)
        for each in sorted(servers, key=lambda s: s.alias)
        if server is None or each.alias == server
        for tool in sorted(each.tools, key=lambda tool: tool.name)
        if needle in tool.name.lower() or needle in tool.description.lower()
    ]
    quoted = json.dumps(query, ensure_ascii=False)
    if not matches:
        return f"No tools found matching {quoted}"
    shown = matches[:limit]
    grouped: dict[str, list[ToolSpec]] = {}
    for each, tool in shown:
        grouped.setdefault(each.alias, []).append(tool)
    names = {each.alias: each.name for each, _ in shown}
    found = f"Found {len(matches)} tool(s) matching {quoted}"
    if len(shown) < len(matches):
        found += f" (showing {len(shown)} of {len(matches)} tools)"
    text = declarations([ServerTools(alias, names[alias], tuple(tools)) for alias, tools in grouped.items()])
    return f"{found}\n\n{text}"


FIELD_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]{0,63}\Z")
"""What a key of a result object must look like to be learned as a property name."""


def infer_schema(value: Any, depth: int = 0) -> dict[str, Any]:
    """The JSON schema of ``value``'s shape, to learn a tool's output type (never a value of it).

    Objects record their keys as ``properties`` and ``required`` only when every key looks like a field name
    (:data:`FIELD_NAME`: a letter, ``_`` or ``$``, then up to 63 letters, digits, ``_``, ``$`` or ``-``); an
    object keyed by anything else (e-mail addresses, URLs, ids, sentences) is a map whose keys are data, and
    keeps only its type, so that no result value reaches the store as a property name; arrays the schema of
    their first element (``{"type": "array"}`` when empty); ``null`` reads as a string
    (docs/reference/behaviour.md 8.7). Objects and arrays :data:`MAX_DEPTH` levels down, objects with more
    than :data:`MAX_PROPERTIES` keys, and objects met once :data:`MAX_TOTAL_PROPERTIES` properties are
    recorded, keep only their type.
    """
    return _infer(value, depth, [MAX_TOTAL_PROPERTIES])


def _infer(value: Any, depth: int, budget: list[int]) -> dict[str, Any]:
    if value is None or isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, list | tuple):
        if not value or depth >= MAX_DEPTH:
            return {"type": "array"}
        return {"type": "array", "items": _infer(value[0], depth + 1, budget)}
    if isinstance(value, Mapping):
        keys = [key for key in value if isinstance(key, str)]
        if not keys or depth >= MAX_DEPTH or len(keys) > min(MAX_PROPERTIES, budget[0]):
            return {"type": "object"}
        if not all(FIELD_NAME.match(key) for key in keys):
            return {"type": "object"}
        budget[0] -= len(keys)
        properties: dict[str, Any] = {}
        for key in keys:
            properties.setdefault(key[:MAX_NAME_CHARS], _infer(value[key], depth + 1, budget))
        return {"type": "object", "properties": properties, "required": list(properties)}
    return {}


def unwrap_result(result: Mapping[str, Any]) -> Any:
    """The value a script receives for an MCP ``tools/call`` result (docs/reference/behaviour.md 8.7).

    When the result holds nothing but ``content``, ``isError``, ``structuredContent``, ``_meta`` (and a
    2026-07-28 ``resultType``), and its content is text only: one text item gives its text parsed as JSON (the
    string itself when it is not JSON), several give the list of their texts. Anything else (other keys, no
    content, an image or other non-text item) is ``result`` itself. As in the reference, the text wins over
    ``structuredContent``: servers send both with the same data, and the text is what every server sends.
    ``isError`` is not judged here: the caller decides whether an error result rejects the script's promise.
    """
    content = result.get("content")
    if not set(result) <= _RESULT_KEYS or not isinstance(content, list) or not content:
        return result
    texts = [
        item["text"]
        for item in content
        if isinstance(item, Mapping) and item.get("type") == "text" and isinstance(item.get("text"), str)
    ]
    if len(texts) != len(content):
        return result
    if len(texts) > 1:
        return texts
    try:
        return orjson.loads(texts[0])
    except orjson.JSONDecodeError:
        return texts[0]


EXECUTE_CODE_GUIDANCE = """\
Run JavaScript in a sandbox (QuickJS) that calls the MCP tools declared below, and get back what it returns.
- The code is the body of an async function: use `await` at the top level, `return` the result (JSON).
- Call a tool with `await tools.<alias>.<tool>({ ...args })`. Aliases and tool names that are not identifiers
  take brackets: `tools["my-server"]["tool-name"]({ ...args })`.
- A tool's JSON text answer arrives parsed, other text as a string, several text parts as an array of strings,
  anything else as the raw MCP result. A failed call throws an Error: catch it to carry on.
- Run independent calls at once with `await Promise.all([...])`.
- `console.log` (and info, debug, warn, error) lines are returned in `logs`.
- There is no fetch or other network access, no file system, no timers, no `eval`, `Function` or `import()`:
  reach the outside world only through tools.
- Limits: code up to 256 KB, a maximum number of tool calls per execution, a time limit and a memory limit.
- Call `search_tools` first to find tools and their argument types, and `list_servers` to see the servers.
- The answer is JSON: `result`, `logs`, `tool_calls` (server, tool, duration, status) and `duration_ms`."""
"""The fixed part of the ``execute_code`` description: how to write a script."""


def execute_code_description(servers: Sequence[ServerTools]) -> str:
    """The ``execute_code`` description for a caller: :data:`EXECUTE_CODE_GUIDANCE` and the caller's tools."""
    tools = declarations(servers) or "No tools are available to this caller."
    return f"{EXECUTE_CODE_GUIDANCE}\n\n## Available Tools\n\n{tools}"
