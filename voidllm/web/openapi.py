"""The OpenAPI 3.1 description of the management API, generated from the declared route table.

Every :class:`~voidllm.web.api.framework.ApiRoute` becomes one operation: the Quart rule becomes an OpenAPI
path (``<org_id>`` → ``{org_id}``), the handler's name its ``operationId``, ``tag``/``summary`` are copied,
non-public routes require ``bearerAuth`` or the browser's ``cookieAuth`` (and name their minimum role in
``x-voidllm-role`` and who may call in ``x-voidllm-allow``, the route's ``allow=``), path parameters and the
fields of the route's ``query`` class become parameters, ``body`` the JSON request body, and ``response`` (an
attrs class, ``Page[X]``, ``list[X]``, or nothing) the success response; a route that ``produces`` a streamed
download (``text/csv``) describes its body as a string of that media type. Error responses use the one
envelope schema, listed for the statuses a route can produce: 400 when it takes input, 401 and 403 unless
public, 404 when it has path parameters, 409 for writes, 429 for public writes (login throttling).

Schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect), derived from the attrs classes' resolved type
hints: ``str``, ``int``, ``float``, ``bool``, ``datetime`` (``format: date-time``), ``date``, ``Literal``,
enums, ``list``/``tuple``/``Sequence``, ``dict``/``Mapping``, ``X | None``, nested attrs classes and
generic attrs classes (``Page[T]`` is specialised per ``T`` as ``Page_X``). Each attrs class goes into
``components/schemas`` once and is referenced with ``$ref``; a property is required when its field has no
default. Field names on the wire follow the codec (:func:`voidllm.codec.wire_name`). The
:class:`~voidllm.bounds.Bounds` the codec checks become ``minimum``/``maximum`` (numbers), ``maxLength``,
``pattern`` and ``enum`` (strings), ``maxItems`` (arrays): those a field declares, and for the fields of
request bodies and query strings the defaults of their types, so the document states the range of every
value a client sends. Rules checked inside the use cases (a model that must exist, a fallback that closes no
cycle, ``from`` before ``to``) are not described.

Hand-written because nothing maintained fits the stack: quart-schema and spectree describe pydantic or
msgspec models, apispec needs a plugin per model library (none for attrs/cattrs), and the attrs-to-schema
packages on PyPI (``attrs-jsonschema``, ``sanic-attrs``) were last released in 2017-2019.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from voidllm.bounds import BOUNDS, Bounds, default_bounds
from voidllm.codec import wire_name
from voidllm.web.api.framework import ApiRoute

__all__ = [
    "DOCUMENT_PATH",
    "OPENAPI_VERSION",
    "SchemaRegistry",
    "build_document",
    "missing_operations",
    "openapi_path",
    "with_bounds",
]

OPENAPI_VERSION = "3.1.0"
DOCUMENT_PATH = "/api/docs/openapi.json"
ERROR_SCHEMA = "Error"

_ERRORS = {
    400: (
        "BadRequest",
        "The request is malformed or a field is invalid (``bad_request`` or a specific code).",
    ),
    401: ("Unauthorized", "Missing, unknown, expired or revoked API key."),
    403: ("Forbidden", "The key's role or scope does not allow this (``forbidden``)."),
    404: ("NotFound", "The resource does not exist or is not visible to this key."),
    409: ("Conflict", "A unique value is already taken, or the change conflicts with the current state."),
    429: ("TooManyRequests", "Too many attempts; retry after the time in ``Retry-After``."),
}
_RULE_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_PARAM_SCHEMAS = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
}


def openapi_path(rule: str) -> str:
    """A Quart/werkzeug rule as an OpenAPI path template: ``/orgs/<org_id>`` → ``/orgs/{org_id}``."""
    return _RULE_PARAM.sub(lambda match: "{" + match.group(2) + "}", rule)


def missing_operations(document: Mapping[str, Any], operations: Iterable[tuple[str, str]]) -> list[str]:
    """``METHOD /path`` for each ``(method, quart rule)`` pair that ``document`` does not describe."""
    paths = document.get("paths", {})
    return sorted(
        f"{method} {rule}"
        for method, rule in operations
        if method.lower() not in paths.get(openapi_path(rule), {})
    )


def build_document(
    routes: Sequence[ApiRoute], *, version: str, title: str = "VoidLLM management API"
) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing ``routes`` (see the module docstring).

    Raises:
        ValueError: two routes share a handler name (``operationId`` must be unique) or a method and path.
    """
    registry = SchemaRegistry(inputs=[hint for route in routes for hint in (route.body, route.query) if hint])
    paths: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for route in routes:
        if route.name in seen:
            raise ValueError(f"two routes are handled by functions named {route.name!r}")
        seen.add(route.name)
        operations = paths.setdefault(openapi_path(route.full_path), {})
        if route.method.lower() in operations:
            raise ValueError(f"{route.method} {route.full_path} is declared twice")
        operations[route.method.lower()] = _operation(route, registry)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": "Administration of organizations, users, teams, keys, models and access. Every "
            "route except the public ones needs the header Authorization: Bearer <API key> (or X-Api-Key: "
            "<API key>), or the browser session cookie voidllm_session set by POST /auth/session; a "
            "cookie-authenticated request that changes state also sends X-CSRF-Token (the value of the "
            "voidllm_csrf cookie), and its Origin, when present, must be the gateway's own.",
        },
        "tags": [{"name": name} for name in sorted({route.tag for route in routes})],
        "paths": paths,
        "components": {
            "schemas": {ERROR_SCHEMA: _error_schema(), **dict(sorted(registry.schemas.items()))},
            "responses": {
                name: _json_response(description, {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"})
                for name, description in _ERRORS.values()
            },
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A VoidLLM API key (vl_...).",
                },
                "apiKeyAuth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Api-Key",
                    "description": "A VoidLLM API key (vl_...), as Anthropic's SDKs send it.",
                },
                "cookieAuth": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "voidllm_session",
                    "description": "A browser session (POST /auth/session); state changes also need the "
                    "X-CSRF-Token header.",
                },
            },
        },
    }


def _operation(route: ApiRoute, registry: SchemaRegistry) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": route.name, "tags": [route.tag], "summary": route.summary}
    if route.description:
        operation["description"] = route.description
    parameters = _path_parameters(route.path) + _query_parameters(route.query, registry)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": registry.schema(route.body)}},
        }
    if route.public:
        operation["security"] = []
    else:
        operation["security"] = [{"bearerAuth": []}, {"apiKeyAuth": []}, {"cookieAuth": []}]
        if route.role is not None:
            operation["x-voidllm-role"] = route.role.name.lower()
        operation["x-voidllm-allow"] = [str(grant) for grant in route.allow]
    if route.audit is not None:
        operation["x-voidllm-audit"] = {"action": route.audit[0], "resource_type": route.audit[1]}
    operation["responses"] = _responses(route, registry)
    return operation


def _responses(route: ApiRoute, registry: SchemaRegistry) -> dict[str, Any]:
    has_path_params = _RULE_PARAM.search(route.path) is not None
    success = "No content" if route.response is None else "Success"
    responses: dict[str, Any] = {str(route.status): {"description": success}}
    if route.response is not None and route.status != 204:
        responses[str(route.status)] = _json_response(success, registry.schema(route.response))
    if route.status == 302:
        location = {"description": "Where the browser goes next", "schema": {"type": "string"}}
        responses["302"] = {"description": "Redirect", "headers": {"Location": location}}
    if route.produces is not None:
        responses[str(route.status)] = {
            "description": "Success",
            "content": {route.produces: {"schema": {"type": "string"}}},
        }
    writes = route.method in ("POST", "PUT", "PATCH", "DELETE")
    statuses = [
        (400, route.body is not None or route.query is not None or has_path_params),
        (401, not route.public),
        (403, not route.public),
        (404, has_path_params),
        (409, writes and route.method != "DELETE"),
        (429, route.public and writes),
    ]
    for status, applies in statuses:
        if applies:
            responses[str(status)] = {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
    return responses


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _path_parameters(rule: str) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": dict(_PARAM_SCHEMAS.get(converter or "", {"type": "string"})),
        }
        for converter, name in _RULE_PARAM.findall(rule)
    ]


def _query_parameters(query: Any, registry: SchemaRegistry) -> list[dict[str, Any]]:
    if query is None:
        return []
    parameters = []
    for name, hint, field in registry.fields(query):
        schema = with_bounds(registry.schema(_strip_none(hint)), registry.bounds(field, hint))
        if field.default is not attrs.NOTHING and _is_json_value(field.default) and field.default is not None:
            schema = {**schema, "default": field.default}
        parameters.append(
            {
                "name": wire_name(name),
                "in": "query",
                "required": field.default is attrs.NOTHING,
                "schema": schema,
            }
        )
    return parameters


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The error envelope of every failed request.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "type"],
                "properties": {
                    "code": {"type": "string", "description": "Machine-readable code, e.g. bad_request."},
                    "message": {"type": "string"},
                    "type": {
                        "type": "string",
                        "description": "OpenAI's error type for the status: invalid_request_error, "
                        "authentication_error, permission_error, not_found_error, rate_limit_error or "
                        "server_error.",
                    },
                    "param": {
                        "type": "string",
                        "description": "On a 400 about one field of an OpenAI-style request: its name.",
                    },
                    "request_id": {"type": "string"},
                    "field": {
                        "type": "string",
                        "description": "On a 400 about one field of the request: its name or path (e.g. "
                        "expires_at, limits.rpm).",
                    },
                },
            }
        },
    }


# -- JSON Schema from types ------------------------------------------------------------------------------


def _strip_none(hint: Any) -> Any:
    """``X`` for ``X | None`` (a query parameter is omitted, never null)."""
    if _is_union(hint):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
    return hint


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _is_json_value(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float | bool) and not isinstance(value, enum.Enum))


class SchemaRegistry:
    """Turns Python types into JSON Schema, collecting attrs classes in :attr:`schemas` by component name.

    ``inputs`` are the request classes (bodies, query strings): their fields and those of the attrs classes
    nested in them state the default bounds of their types too (:func:`voidllm.bounds.default_bounds`).
    """

    def __init__(self, inputs: Iterable[Any] = ()) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}
        self._names: dict[Any, str] = {}
        self._inputs: set[Any] = set()
        for hint in inputs:
            self._collect_inputs(hint)

    def _collect_inputs(self, hint: Any) -> None:
        origin = typing.get_origin(hint) or hint
        if attrs.has(origin) and origin not in self._inputs:
            self._inputs.add(origin)
            for _, field_hint, _ in self.fields(hint):
                for arg in (field_hint, *typing.get_args(field_hint)):
                    self._collect_inputs(arg)

    def bounds(self, field: attrs.Attribute[Any], hint: Any, owner: Any = None) -> Bounds | None:
        """A field's declared bounds; else, for a field of an input class, the default of its type."""
        declared: Bounds | None = field.metadata.get(BOUNDS)
        if declared is not None:
            return declared
        if owner is None or owner in self._inputs:
            return default_bounds(hint)
        return None

    def schema(self, hint: Any) -> dict[str, Any]:
        """The schema of ``hint``; attrs classes become ``$ref`` to a component."""
        if hint is Any or hint is object:
            return {}
        if hint is type(None) or hint is None:
            return {"type": "null"}
        if isinstance(hint, typing.TypeVar):
            raise TypeError(f"unbound type variable {hint} in an API type")
        origin = typing.get_origin(hint)
        if origin is typing.Annotated:
            return self.schema(typing.get_args(hint)[0])
        if _is_union(hint):
            return {"anyOf": [self.schema(arg) for arg in typing.get_args(hint)]}
        if origin is typing.Literal:
            values = list(typing.get_args(hint))
            return {"enum": values, **_scalar_type(values)}
        if attrs.has(origin or hint):
            return {"$ref": f"#/components/schemas/{self._component(hint)}"}
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            values = [member.value for member in hint]
            return {"enum": values, **_scalar_type(values)}
        return self._container(hint, origin) or self._scalar(hint)

    def _container(self, hint: Any, origin: Any) -> dict[str, Any] | None:
        args = typing.get_args(hint)
        if origin in (list, set, frozenset, Sequence, Iterable) or (
            origin is tuple and len(args) == 2 and args[1] is Ellipsis
        ):
            return {"type": "array", "items": self.schema(args[0]) if args else {}}
        if origin is tuple:
            return {"type": "array", "prefixItems": [self.schema(arg) for arg in args], "items": False}
        if origin in (dict, Mapping):
            return {"type": "object", "additionalProperties": self.schema(args[1]) if args else {}}
        if hint in (list, tuple, set):
            return {"type": "array"}
        if hint in (dict, Mapping):
            return {"type": "object"}
        return None

    def _scalar(self, hint: Any) -> dict[str, Any]:
        if hint is bool:
            return {"type": "boolean"}
        if isinstance(hint, type) and issubclass(hint, int):
            return {"type": "integer"}
        if hint is float:
            return {"type": "number"}
        if hint is str:
            return {"type": "string"}
        if hint is dt.datetime:
            return {"type": "string", "format": "date-time"}
        if hint is dt.date:
            return {"type": "string", "format": "date"}
        raise TypeError(f"no JSON Schema for {hint!r}")

    def fields(self, hint: Any) -> list[tuple[str, Any, attrs.Attribute[Any]]]:
        """``(name, resolved type, attribute)`` of each field of an attrs class or generic alias of one."""
        origin = typing.get_origin(hint) or hint
        hints = typing.get_type_hints(origin, include_extras=True)
        bindings = dict(zip(getattr(origin, "__parameters__", ()), typing.get_args(hint), strict=False))
        return [(field.name, _bind(hints[field.name], bindings), field) for field in attrs.fields(origin)]

    def _component(self, hint: Any) -> str:
        if hint in self._names:
            return self._names[hint]
        name = self._unique_name(hint)
        self._names[hint] = name
        self.schemas[name] = {}  # placeholder: recursive references resolve to the name
        self.schemas[name] = self._object(hint)
        return name

    def _unique_name(self, hint: Any) -> str:
        origin = typing.get_origin(hint) or hint
        name: str = origin.__name__ + "".join("_" + _type_name(arg) for arg in typing.get_args(hint))
        if name in self.schemas:
            name = f"{origin.__module__.rsplit('.', 1)[-1]}_{name}"
        while name in self.schemas:
            name += "_"
        return name

    def _object(self, hint: Any) -> dict[str, Any]:
        origin = typing.get_origin(hint) or hint
        properties: dict[str, Any] = {}
        required = []
        for name, field_hint, field in self.fields(hint):
            field_schema = with_bounds(self.schema(field_hint), self.bounds(field, field_hint, origin))
            if field.default is attrs.NOTHING:
                required.append(wire_name(name))
            elif _is_json_value(field.default):
                field_schema = {**field_schema, "default": field.default}
            properties[wire_name(name)] = field_schema
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        doc = (origin.__doc__ or "").strip()
        if doc and not doc.startswith(f"{origin.__name__}("):  # attrs' generated repr-like docstrings
            schema["description"] = " ".join(doc.split())
        return schema


def _bind(hint: Any, bindings: Mapping[Any, Any]) -> Any:
    """``hint`` with type variables replaced by their bound types (``list[T]`` → ``list[OrgOut]``)."""
    if isinstance(hint, typing.TypeVar):
        return bindings.get(hint, hint)
    args = typing.get_args(hint)
    if not args or not bindings:
        return hint
    bound = tuple(_bind(arg, bindings) for arg in args)
    if _is_union(hint):
        return typing.Union[bound]  # noqa: UP007
    if typing.get_origin(hint) is typing.Annotated:
        return _bind(args[0], bindings)
    return typing.get_origin(hint)[bound]


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint) or hint
    return getattr(origin, "__name__", str(hint)).replace(" ", "")


def _scalar_type(values: list[Any]) -> dict[str, Any]:
    kinds = {type(value) for value in values}
    names = {str: "string", int: "integer", bool: "boolean", float: "number"}
    (kind,) = kinds if len(kinds) == 1 else (None,)
    return {"type": names[kind]} if kind in names else {}


def with_bounds(schema: dict[str, Any], bounds: Bounds | None) -> dict[str, Any]:
    """``schema`` stating ``bounds``: on each non-null branch of an ``anyOf``, on an array's items."""
    if bounds is None:
        return schema
    if "anyOf" in schema:
        branches = schema["anyOf"]
        return {
            **schema,
            "anyOf": [b if b.get("type") == "null" else with_bounds(b, bounds) for b in branches],
        }
    kind, stated = schema.get("type"), dict(schema)
    if kind in ("integer", "number"):
        stated |= {
            key: value
            for key, value in (("minimum", bounds.minimum), ("maximum", bounds.maximum))
            if value is not None
        }
    elif kind == "string" and "enum" not in schema:
        if bounds.max_length is not None:
            stated["maxLength"] = bounds.max_length
        if bounds.pattern is not None:
            stated["pattern"] = f"^(?:{bounds.pattern})$"
        if bounds.choices is not None:
            stated["enum"] = list(bounds.choices)
    elif kind == "array":
        if bounds.max_items is not None:
            stated["maxItems"] = bounds.max_items
        if bounds.items is not None and isinstance(schema.get("items"), dict):
            stated["items"] = with_bounds(schema["items"], bounds.items)
    return stated
