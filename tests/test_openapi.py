"""The OpenAPI document: it covers every declared route and every Quart rule under /api/v1, is valid
OpenAPI 3.1 with valid JSON Schemas, describes real responses correctly, and is served with a docs page."""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import attrs
import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from tests.gateway import make_config, run_gateway
from voidllm import __version__
from voidllm.auth.cache import KeyCache
from voidllm.routing.catalog import Catalog
from voidllm.routing.registry import Registry
from voidllm.web.api import api
from voidllm.web.api.framework import PREFIX, ApiRoute
from voidllm.web.app import create_quart_app
from voidllm.web.openapi import SchemaRegistry, build_document, missing_operations, openapi_path
from voidllm.web.state import AppState

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(api.routes, version=__version__)


def quart_api_rules(app: Any) -> list[tuple[str, str]]:
    """``(method, rule)`` of every Quart rule under /api/v1 (HEAD and OPTIONS are automatic)."""
    return [
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(PREFIX)
        for method in sorted(rule.methods or ())
        if method not in ("HEAD", "OPTIONS")
    ]


def quart_app(dsn: str) -> Any:
    state = AppState(
        config=make_config(dsn),
        store=None,
        keys=KeyCache(b"k" * 32),
        catalog=Catalog(Registry.from_config(())),
    )
    return create_quart_app(state)


# -- coverage --------------------------------------------------------------------------------------------


def test_every_declared_route_is_documented(document: dict[str, Any]) -> None:
    assert len(api.routes) > 0
    assert missing_operations(document, [(r.method, r.full_path) for r in api.routes]) == []
    operation_ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert sorted(operation_ids) == sorted(route.name for route in api.routes)


def test_the_check_fails_for_a_route_the_document_lacks(document: dict[str, Any]) -> None:
    async def sneaky(call: Any, thing_id: str) -> None:
        return None

    extra = ApiRoute(method="DELETE", path="/things/<thing_id>", handler=sneaky, summary="x", tag="things")
    routes = [*api.routes, extra]
    assert missing_operations(document, [(r.method, r.full_path) for r in routes]) == [
        "DELETE /api/v1/things/<thing_id>"
    ]
    assert (
        missing_operations(build_document(routes, version="t"), [(r.method, r.full_path) for r in routes])
        == []
    )


def test_every_quart_rule_under_api_v1_is_documented(document: dict[str, Any], sqlite_dsn: str) -> None:
    app = quart_app(sqlite_dsn)
    rules = quart_api_rules(app)
    assert len(rules) == len(api.routes)
    assert missing_operations(document, rules) == []

    async def undeclared() -> str:
        return "no"

    app.add_url_rule(f"{PREFIX}/undeclared/<int:n>", view_func=undeclared, methods=["GET", "POST"])
    assert missing_operations(document, quart_api_rules(app)) == [
        "GET /api/v1/undeclared/<int:n>",
        "POST /api/v1/undeclared/<int:n>",
    ]


def test_quart_rules_become_openapi_templates() -> None:
    assert openapi_path("/api/v1/orgs/<org_id>/keys/<key_id>") == "/api/v1/orgs/{org_id}/keys/{key_id}"
    assert openapi_path("/files/<path:name>/<int:n>") == "/files/{name}/{n}"


def test_duplicate_operation_ids_are_refused() -> None:
    route = api.routes[0]
    with pytest.raises(ValueError, match="named"):
        build_document([route, attrs.evolve(route, path="/elsewhere")], version="t")


# -- validity --------------------------------------------------------------------------------------------


def test_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    errors = [str(error) for error in OPENAPI_31_VALIDATOR.iter_errors(document)]
    assert errors == []
    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] == __version__


def test_every_component_is_a_valid_2020_12_schema(document: dict[str, Any]) -> None:
    for name, schema in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid({"$schema": DRAFT_2020_12, **schema}), name


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    text = str(document)
    for ref in set(re.findall(r"'\$ref': '#/components/(\w+)/(\w+)'", text)):
        assert ref[1] in document["components"][ref[0]], ref


def test_operations_declare_their_path_parameters_and_security(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        templated = set(re.findall(r"{(\w+)}", path))
        for method, op in operations.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == templated, (method, path)
            route = next(r for r in api.routes if r.name == op["operationId"])
            keyed = [{"bearerAuth": []}, {"apiKeyAuth": []}, {"cookieAuth": []}]
            assert op["security"] == ([] if route.public else keyed)
            assert str(route.status) in op["responses"]
            assert ("401" in op["responses"]) is not route.public


# -- schemas from types ----------------------------------------------------------------------------------

T = TypeVar("T")


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Inner:
    """A nested value."""

    n: int


@attrs.frozen
class Box(Generic[T]):
    items: list[T]
    total: int = 0


@attrs.frozen
class Zoo:
    name: str
    when: datetime
    kind: Literal["a", "b"]
    colour: Colour
    ratio: float | None = None
    tags: list[str] = attrs.Factory(list)
    labels: dict[str, int] = attrs.Factory(dict)
    inner: Inner | None = None
    flag: bool = False
    from_: str = ""


def test_attrs_classes_become_component_schemas() -> None:
    registry = SchemaRegistry()
    assert registry.schema(Box[Zoo]) == {"$ref": "#/components/schemas/Box_Zoo"}
    assert registry.schemas["Box_Zoo"] == {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Zoo"}},
            "total": {"type": "integer", "default": 0},
        },
        "required": ["items"],
    }
    assert registry.schemas["Zoo"] == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "when": {"type": "string", "format": "date-time"},
            "kind": {"enum": ["a", "b"], "type": "string"},
            "colour": {"enum": ["red", "blue"], "type": "string"},
            "ratio": {"anyOf": [{"type": "number"}, {"type": "null"}], "default": None},
            "tags": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "integer"}},
            "inner": {"anyOf": [{"$ref": "#/components/schemas/Inner"}, {"type": "null"}], "default": None},
            "flag": {"type": "boolean", "default": False},
            "from": {"type": "string", "default": ""},
        },
        "required": ["name", "when", "kind", "colour"],
    }
    assert registry.schemas["Inner"]["description"] == "A nested value."


def test_unknown_types_are_an_error_not_a_silent_gap() -> None:
    @attrs.frozen
    class Odd:
        value: complex

    with pytest.raises(TypeError, match="complex"):
        SchemaRegistry().schema(Odd)


# -- served by the gateway -------------------------------------------------------------------------------


def validator_for(document: dict[str, Any], ref: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(
        {"$schema": DRAFT_2020_12, "$ref": ref, "components": document["components"]}
    )


async def test_docs_are_served_without_auth_and_describe_real_responses(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        served = await gw.client.get("/api/docs/openapi.json")
        assert served.status_code == 200
        assert served.headers["content-type"] == "application/json"
        document = served.json()
        assert document == build_document(api.routes, version=__version__)

        page = await gw.client.get("/api/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<script" not in page.text
        assert not re.search(r"(src|href)=['\"]?https?:", page.text)
        for path, operations in document["paths"].items():
            assert path in page.text
            for op in operations.values():
                assert f"id='op-{op['operationId']}'" in page.text

        listing = await gw.client.get(
            "/api/v1/audit-logs", headers={"Authorization": f"Bearer {gw.api_key()}"}
        )
        schema = document["paths"]["/api/v1/audit-logs"]["get"]["responses"]["200"]["content"][
            "application/json"
        ]
        validator_for(document, schema["schema"]["$ref"]).validate(listing.json())
        denied = await gw.client.get("/api/v1/audit-logs")
        validator_for(document, "#/components/schemas/Error").validate(denied.json())
        assert not validator_for(document, schema["schema"]["$ref"]).is_valid(
            {"data": [{"id": 1}], "has_more": True}
        )


def test_the_documented_callers_are_the_ones_the_rbac_matrix_enforces(document: dict[str, Any]) -> None:
    """Issue 13 point 6: the document's labels of who may call come from the declarations that
    tests/test_rbac.py checks against real callers (``allow=``), and its minimum role is ``role=``, which that
    file holds to never refuse a caller ``allow=`` admits."""
    for route in api.routes:
        operation = document["paths"][openapi_path(route.full_path)][route.method.lower()]
        if route.public:
            assert "x-voidllm-allow" not in operation
            assert operation["security"] == []
            continue
        assert operation["x-voidllm-allow"] == [str(grant) for grant in route.allow], route.name
        expected_role = None if route.role is None else route.role.name.lower()
        assert operation.get("x-voidllm-role") == expected_role, route.name
