"""OpenAI ``tools`` and ``tool_choice`` -> Gemini ``functionDeclarations`` and ``functionCallingConfig``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voidllm.providers.base import TranslationError
from voidllm.providers.gemini._content import is_name
from voidllm.providers.gemini._schema import clean_schema

_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def tools_config(payload: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """``functionDeclarations`` and ``functionCallingConfig`` from ``tools`` and ``tool_choice``."""
    tools = payload.get("tools") or []
    if not isinstance(tools, list):
        raise TranslationError("tools must be a list")
    declarations = [_declaration(tool) for tool in tools]
    choice = payload.get("tool_choice")
    if choice is None:
        return declarations, None
    names = {declaration["name"] for declaration in declarations}
    if isinstance(choice, Mapping) and choice.get("type") == "allowed_tools":
        return _allowed_tools(choice.get("allowed_tools"), declarations, names)
    mode, allowed = _choice(choice, names)
    if mode == "ANY" and not declarations:
        raise TranslationError("tool_choice requires a tool call but no tools are declared")
    config: dict[str, Any] = {"mode": mode}
    if allowed:
        config["allowedFunctionNames"] = allowed
    return declarations, config


def _declaration(tool: object) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or tool.get("type") != "function":
        raise TranslationError("only function tools can be sent to Gemini")
    function = tool.get("function")
    if not isinstance(function, Mapping) or not is_name(function.get("name")):
        raise TranslationError("a function tool has no name")
    declaration: dict[str, Any] = {"name": function["name"]}
    description = function.get("description")
    if isinstance(description, str) and description:
        declaration["description"] = description
    parameters = function.get("parameters")
    if isinstance(parameters, Mapping) and not _is_empty_object(parameters):
        declaration["parameters"] = clean_schema(parameters)
    elif parameters is not None and not isinstance(parameters, Mapping):
        raise TranslationError("function parameters must be a JSON schema object")
    return declaration


def _is_empty_object(schema: Mapping[str, Any]) -> bool:
    """A schema that declares no parameter: Gemini refuses an OBJECT without properties, so it is left out."""
    composite = {"anyOf", "oneOf", "allOf", "$ref"}
    return (
        schema.get("type", "object") == "object"
        and not schema.get("properties")
        and not composite & set(schema)
    )


def _choice(choice: object, names: set[str]) -> tuple[str, list[str]]:
    if isinstance(choice, str) and choice in _CHOICE_MODES:
        return _CHOICE_MODES[choice], []
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return "ANY", [_declared_name(choice, names)]
    raise TranslationError("tool_choice must be auto, none, required, a function or allowed_tools")


def _declared_name(choice: Mapping[str, Any], names: set[str]) -> str:
    """The function named by ``{"type": "function", "function": {"name": ...}}``; it must be declared."""
    function = choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or name not in names:
        raise TranslationError("tool_choice names a function that is not among the declared tools")
    return name


def _allowed_tools(
    allowed: object, declarations: list[dict[str, Any]], names: set[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``allowed_tools``: ``required`` becomes ANY limited to the listed names; ``auto`` keeps AUTO and
    declares only the listed functions (Gemini limits names only in ANY mode)."""
    if not isinstance(allowed, Mapping) or allowed.get("mode") not in ("auto", "required"):
        raise TranslationError("allowed_tools needs mode auto or required")
    tools = allowed.get("tools")
    if not isinstance(tools, list) or not tools:
        raise TranslationError("allowed_tools lists no function")
    if not all(isinstance(tool, Mapping) and tool.get("type") == "function" for tool in tools):
        raise TranslationError("allowed_tools may list only functions")
    listed = [_declared_name(tool, names) for tool in tools]
    if allowed["mode"] == "required":
        return declarations, {"mode": "ANY", "allowedFunctionNames": listed}
    return [d for d in declarations if d["name"] in listed], {"mode": "AUTO"}
