"""Code Mode discovery: declarations, types, search, learned schemas and result unwrapping.

All pure functions, tested on values. Upstream servers are not trusted: the hostile cases (``*/`` and line
breaks in descriptions, odd aliases, tool and property names) check that nothing they send changes the
structure of the declarations around it. One test compiles the declarations with the UI's TypeScript
compiler when ``ui/node_modules`` is installed.
"""

from __future__ import annotations

import subprocess
import types
from pathlib import Path
from typing import Any

import orjson
import pytest

from voidllm.codemode import discovery
from voidllm.codemode.discovery import (
    EXECUTE_CODE_GUIDANCE,
    MAX_DESCRIPTION_CHARS,
    MAX_TOTAL_PROPERTIES,
    ServerTools,
    ToolSpec,
    declarations,
    execute_code_description,
    first_sentence,
    infer_schema,
    is_identifier,
    render_type,
    search,
    unwrap_result,
)

ROOT = Path(__file__).resolve().parent.parent
TSC = ROOT / "ui" / "node_modules" / ".bin" / "tsc"
MARKER = "zk-marker-5d1e"

SEARCH_SCHEMA = {
    "type": "object",
    "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
    "required": ["query"],
}


def tool(name: str, description: str = "", schema: dict[str, Any] | None = None, **kw: Any) -> ToolSpec:
    return ToolSpec(name, description, {} if schema is None else schema, **kw)


def hostile_servers() -> list[ServerTools]:
    """Every name and description an upstream could use to break out of the declarations."""
    nasty = 'x */ y\n} declare function pwn(): void; /* \u2028 " \r\n'
    schema = {
        "type": "object",
        "properties": {nasty: {"type": "string"}, "ok": {"enum": [nasty, "b"]}},
        "required": [nasty],
    }
    return [
        ServerTools(
            "github",
            nasty,
            (
                tool("search_repos", nasty, schema, output_schema=infer_schema({nasty: [{nasty: 1}]})),
                tool(nasty, nasty, schema),
                tool("delete", "**/ close */ twice */"),
            ),
        ),
        ServerTools(nasty, "Odd", (tool("f", nasty), tool(nasty, "odd tool"))),
    ]


@pytest.mark.parametrize("name", ["a", "_x", "$", "camelCase9", "snake_case", "A$b", "undefined"])
def test_identifiers(name: str) -> None:
    assert is_identifier(name)


@pytest.mark.parametrize(
    "name", ["", "9lives", "aws-docs", "a b", "a.b", "délai", "delete", "class", "await", "eval", "let"]
)
def test_not_identifiers(name: str) -> None:
    assert not is_identifier(name)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "string"),
        ({"type": "number"}, "number"),
        ({"type": "integer"}, "number"),
        ({"type": "boolean"}, "boolean"),
        ({"type": "null"}, "null"),
        ({"type": "array"}, "any[]"),
        ({"type": "array", "items": {"type": "string"}}, "string[]"),
        ({"type": "array", "items": {"type": ["string", "null"]}}, "(string | null)[]"),
        ({"type": "object"}, "Record<string, any>"),
        ({"type": "object", "properties": {}}, "Record<string, any>"),
        ({"type": "frobnicate"}, "any"),
        ({}, "any"),
        (None, "any"),
        ({"type": ["string", "null"]}, "string | null"),
        ({"type": ["integer", "number"]}, "number"),
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, "string | null"),
        ({"oneOf": [{"type": "boolean"}, {"$ref": "#/x"}]}, "any"),
        ({"type": "string", "enum": ["asc", "desc"]}, '"asc" | "desc"'),
        ({"type": "integer", "enum": [1, 2]}, "number"),
        ({"properties": {"a": {"type": "string"}}, "required": ["a"]}, "{ a: string }"),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                "required": ["a"],
            },
            "{ a: string; b?: number }",
        ),
        ({"type": "object", "properties": {"a-b": {}, "delete": {}}}, '{ "a-b"?: any; delete?: any }'),
    ],
)
def test_render_type(schema: dict[str, Any] | None, expected: str) -> None:
    assert render_type(schema) == expected


def nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"x": schema}, "required": ["x"]}
    return schema


def test_render_type_spells_out_three_levels_of_objects() -> None:
    assert render_type(nested(3)) == "{ x: { x: { x: string } } }"
    assert render_type(nested(4)) == "{ x: { x: { x: Record<string, any> } } }"
    assert render_type(nested(1), depth=3) == "Record<string, any>"
    array: dict[str, Any] = {"type": "string"}
    for levels in range(1, 6):
        array = {"type": "array", "items": array}
        if levels == 3:
            assert render_type(array) == "string[][][]"
    assert render_type(array) == "any[][][][]"


def test_render_type_bounds_width() -> None:
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(65)}}
    assert render_type(wide) == "Record<string, any>"
    many = {"type": "object", "properties": {f"q{i}": {"type": "string"} for i in range(60)}}
    assert render_type({"type": "object", "properties": {"big": many}}) == "{ big?: any }"
    enum = {"enum": [f"v{i}" for i in range(17)], "type": "string"}
    assert render_type(enum) == "string"


def test_render_type_bounds_unions_inside_unions() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(5000):
        schema = {"anyOf": [schema, {"type": "null"}]}
    assert render_type(schema) == "any"
    assert render_type({"anyOf": [{"anyOf": [{"type": "string"}]}, {"type": "null"}]}) == "string | null"


def test_declarations_render_a_server() -> None:
    learned = {"type": "object", "properties": {"total": {"type": "integer"}}, "required": ["total"]}
    server = ServerTools(
        "github",
        "GitHub",
        (
            tool("search_repos", "Search repositories by name. Returns at most 100.", SEARCH_SCHEMA),
            tool("count", "Count things", {"type": "object", "properties": {}}, output_schema=learned),
        ),
    )
    assert declarations([server]) == (
        "/** GitHub */\n"
        "declare namespace tools.github {\n"
        "  /** Count things */\n"
        "  function count(args?: Record<string, any>): Promise<{ total: number }>; // inferred\n"
        "  /** Search repositories by name. */\n"
        "  function search_repos(args: { query: string; limit?: number }): Promise<any>;\n"
        "}"
    )


def test_declarations_sort_aliases_and_leave_out_servers_without_tools() -> None:
    servers = [
        ServerTools("zeta", "", (tool("b"), tool("a"))),
        ServerTools("alpha", "", (tool("c"),)),
        ServerTools("empty", "Empty", ()),
    ]
    text = declarations(servers)
    assert text.index("tools.alpha") < text.index("tools.zeta")
    assert text.index("function a(") < text.index("function b(")
    assert "empty" not in text.lower()
    assert declarations([]) == ""
    assert declarations([ServerTools("empty", "Empty", ())]) == ""


def test_an_alias_that_is_not_an_identifier_gets_a_comment_and_a_sanitised_namespace() -> None:
    text = declarations([ServerTools("aws-docs.v2", "", (tool("read"),))])
    assert text.splitlines()[:2] == [
        '// the alias is not a plain identifier: call these tools as tools["aws-docs.v2"].<tool>(args)',
        "declare namespace tools_aws_docs_v2 {",
    ]
    assert "function read(args?: Record<string, any>): Promise<any>;" in text


def test_a_tool_name_that_is_not_an_identifier_is_a_comment_telling_how_to_call_it() -> None:
    text = declarations(
        [
            ServerTools("github", "", (tool("get-issue", "Get an issue.", SEARCH_SCHEMA), tool("new"))),
            ServerTools("9lives", "", (tool("a b"),)),
        ]
    )
    lines = text.splitlines()
    assert "  /** Get an issue. */" in lines
    assert (
        '  // tools.github["get-issue"](args: { query: string; limit?: number }): Promise<any>'
        " -- not a plain identifier: call it with brackets"
    ) in lines
    assert any(line.startswith('  // tools.github["new"](args?:') for line in lines)
    assert any(line.startswith('  // tools["9lives"]["a b"](args?:') for line in lines)
    assert "function get-issue" not in text
    assert "function new" not in text


def test_descriptions_cannot_leave_their_comment() -> None:
    text = declarations(hostile_servers())
    for line in text.splitlines():
        body = line.strip()
        if body.startswith("/**"):
            assert body.endswith(" */")
            assert body.count("*/") == 1, line
        else:
            assert body.startswith(("//", "declare namespace ", "function ", "}")) or not body, line
    assert "\u2028" not in text
    assert "\r" not in text
    assert "/** ** / close * / twice * / */" in text


def test_only_the_first_sentence_of_a_description_clipped_is_shown() -> None:
    long = "word " * 200
    text = declarations([ServerTools("a", "", (tool("f", long + ". Second."),))])
    jsdoc = text.splitlines()[1]
    assert jsdoc.startswith("  /** word word")
    assert len(jsdoc) <= MAX_DESCRIPTION_CHARS + len("  /**  */")
    assert jsdoc.endswith("... */")
    assert "Second" not in text


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Search repositories. Returns a list.", "Search repositories."),
        ("First line\nsecond line", "First line"),
        ("  Padded and no period  ", "Padded and no period"),
        ("Version 1.2 is out. More", "Version 1.2 is out."),
        ("Really? Yes.", "Really?"),
        ("Stop!\nNext", "Stop!"),
        ("Ends here.", "Ends here."),
        ("", ""),
    ],
)
def test_first_sentence(description: str, expected: str) -> None:
    assert first_sentence(description) == expected


def catalogue() -> list[ServerTools]:
    return [
        ServerTools(
            "github",
            "GitHub",
            (tool("search_repos", "Find repositories"), tool("get_issue", "Read one ISSUE")),
        ),
        ServerTools("jira", "Jira", (tool("search_issues", "Query issues with JQL"), tool("ping", "Alive?"))),
    ]


def test_search_matches_names_and_descriptions_in_any_case() -> None:
    text = search(catalogue(), "Issue")
    assert text.startswith('Found 2 tool(s) matching "Issue"\n\n')
    assert "function get_issue(" in text
    assert "function search_issues(" in text
    assert "search_repos" not in text
    assert "ping" not in text
    assert "/** Jira */\ndeclare namespace tools.jira {" in text


def test_search_within_one_server() -> None:
    text = search(catalogue(), "search", server="jira")
    assert text.startswith('Found 1 tool(s) matching "search"')
    assert "search_issues" in text
    assert "github" not in text
    assert search(catalogue(), "search", server="nowhere") == 'No tools found matching "search"'


def test_search_without_matches() -> None:
    assert search(catalogue(), "deploy") == 'No tools found matching "deploy"'
    assert search([], "x") == 'No tools found matching "x"'


def test_search_limit_says_how_many_it_shows() -> None:
    text = search(catalogue(), "", limit=3)
    assert text.startswith('Found 4 tool(s) matching "" (showing 3 of 4 tools)\n\n')
    assert "get_issue" in text
    assert "search_repos" in text
    assert "ping" in text
    assert "search_issues" not in text
    many = [ServerTools("s", "", tuple(tool(f"t{i:02}", "tool") for i in range(60)))]
    text = search(many, "TOOL")
    assert text.startswith('Found 60 tool(s) matching "TOOL" (showing 50 of 60 tools)')
    assert text.count("function ") == 50
    assert "(showing" not in search(many, "t59")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", {"type": "string"}),
        (None, {"type": "string"}),
        (True, {"type": "boolean"}),
        (3, {"type": "integer"}),
        (3.5, {"type": "number"}),
        ([], {"type": "array"}),
        ({}, {"type": "object"}),
        ([1, "a"], {"type": "array", "items": {"type": "integer"}}),
        (
            {"id": 1, "tags": ["x"]},
            {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["id", "tags"],
            },
        ),
    ],
)
def test_infer_schema(value: Any, expected: dict[str, Any]) -> None:
    assert infer_schema(value) == expected


def test_infer_schema_records_three_levels() -> None:
    value = {"a": {"b": {"c": {"d": 1}, "l": [[1]]}}}
    schema = infer_schema(value)
    level2 = schema["properties"]["a"]["properties"]["b"]["properties"]
    assert level2["c"] == {"type": "object"}
    assert level2["l"] == {"type": "array"}
    three = {
        "type": "array",
        "items": {"type": "array", "items": {"type": "array", "items": {"type": "array"}}},
    }
    assert infer_schema([[[[1]]]]) == three
    assert render_type(schema) == "{ a: { b: { c: Record<string, any>; l: any[] } } }"


def test_infer_schema_collapses_wide_objects() -> None:
    assert infer_schema({f"k{i}": i for i in range(65)}) == {"type": "object"}
    assert len(infer_schema({f"k{i}": i for i in range(64)})["properties"]) == 64
    wide = {f"o{i}": {f"k{j}": j for j in range(60)} for i in range(10)}
    properties = infer_schema(wide)["properties"]
    spelled = [name for name, sub in properties.items() if "properties" in sub]
    assert 0 < len(spelled) < 10
    assert 10 + 60 * len(spelled) <= MAX_TOTAL_PROPERTIES


def test_infer_schema_learns_only_keys_that_look_like_field_names() -> None:
    schema = infer_schema({"user_id": 1, "$ref": "x", "created-at": 2, 7: "x", ("t",): 2})
    assert list(schema["properties"]) == ["user_id", "$ref", "created-at"]
    for data_key in ("k" * 65, "alice@example.com", "https://example.com/a", "12345", "two words", "é"):
        assert infer_schema({"ok": 1, data_key: 2}) == {"type": "object"}, data_key
    nested = infer_schema({"by_user": {"alice@example.com": {"n": 1}}})
    assert nested["properties"]["by_user"] == {"type": "object"}


def test_infer_schema_holds_no_values() -> None:
    value = {
        "name": MARKER,
        "items": [{"note": f"{MARKER} again", "n": 123456789}],
        "more": [MARKER, "x"],
        "flag": None,
        "score": 98.7654321,
    }
    dumped = orjson.dumps(infer_schema(value)).decode()
    assert MARKER not in dumped
    assert "123456789" not in dumped
    assert "98.76" not in dumped
    for forbidden in ("enum", "const", "examples", "default"):
        assert forbidden not in dumped


def text_result(*texts: str, **extra: Any) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text} for text in texts], **extra}


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (text_result('{"a": [1, 2]}'), {"a": [1, 2]}),
        (text_result("42"), 42),
        (text_result('"quoted"'), "quoted"),
        (text_result("null"), None),
        (text_result("plain words"), "plain words"),
        (text_result("{broken"), "{broken"),
        (text_result("a", "b"), ["a", "b"]),
        (text_result('{"x": 1}', "[2]"), ['{"x": 1}', "[2]"]),
        (text_result("[1]", isError=False, _meta={"k": 1}), [1]),
        (text_result("boom", isError=True), "boom"),
        (text_result("[1]", structuredContent={"ignored": True}), [1]),
        (text_result('{"a": 1}', resultType="complete"), {"a": 1}),  # a 2026-07-28 upstream's result
    ],
)
def test_unwrap_result(result: dict[str, Any], expected: Any) -> None:
    assert unwrap_result(result) == expected


@pytest.mark.parametrize(
    "result",
    [
        {"content": [{"type": "image", "data": "AAAA", "mimeType": "image/png"}]},
        {
            "content": [
                {"type": "text", "text": "a"},
                {"type": "image", "data": "AAAA", "mimeType": "image/png"},
            ]
        },
        text_result("[1]", extra="payload"),
        {"content": []},
        {"structuredContent": {"a": 1}},
        {"content": "not a list"},
        {"content": [{"type": "text", "text": 5}]},
        {"content": ["text"]},
    ],
)
def test_unwrap_result_returns_anything_else_raw(result: dict[str, Any]) -> None:
    assert unwrap_result(result) is result


def test_execute_code_description() -> None:
    text = execute_code_description(catalogue())
    assert text.startswith(EXECUTE_CODE_GUIDANCE + "\n\n## Available Tools\n\n")
    assert text.endswith(declarations(catalogue()))
    empty = execute_code_description([])
    assert empty == EXECUTE_CODE_GUIDANCE + "\n\n## Available Tools\n\nNo tools are available to this caller."


def test_guidance_is_short_and_names_the_rules() -> None:
    assert len(EXECUTE_CODE_GUIDANCE.splitlines()) <= 16
    for needed in (
        "await tools.<alias>.<tool>(",
        "Promise.all",
        "return",
        "console.log",
        "256 KB",
        "search_tools",
    ):
        assert needed in EXECUTE_CODE_GUIDANCE
    for rule in ("fetch", "eval", "timers", "file system", "tool calls per execution", "memory limit"):
        assert rule in EXECUTE_CODE_GUIDANCE


def test_exports_are_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(discovery).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    imported = {"annotations", "Any", "Mapping", "Sequence"}
    assert set(discovery.__all__) == public - imported


@pytest.mark.skipif(not TSC.exists(), reason="ui/node_modules is not installed")
def test_declarations_compile_as_typescript(tmp_path: Path) -> None:
    servers = [
        *hostile_servers(),
        *catalogue(),
        ServerTools("aws-docs", "AWS", (tool("read", "Read.", SEARCH_SCHEMA, output_schema=nested(5)),)),
        ServerTools("delete", "", (tool("undefined"), tool("$x"), tool("eval"))),
    ]
    source = tmp_path / "tools.d.ts"
    source.write_text(declarations(servers) + "\n", encoding="utf-8")
    done = subprocess.run(
        [TSC, "--noEmit", "--strict", source], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
