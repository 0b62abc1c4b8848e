"""Bounds at the edge (issue 12, point 4): the OpenAPI document states a range for every integer and a maximum
length for every string a client sends to /api/v1, and the gateway answers 400 naming the field just beyond
each; values that cannot be sent in an HTTP header are refused before they reach one.

The walk is generated from the document (itself generated from the route table), so a new route or field is
covered without a new test; it runs against one real gateway.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import attrs
import httpx
import pytest

from tests.gateway import RunningGateway, make_config, run_gateway
from voidllm import __version__
from voidllm.bounds import LIMIT, NAME, Bounds, bounded
from voidllm.codec import structure
from voidllm.errors import BadRequestError
from voidllm.web.api import api
from voidllm.web.openapi import SchemaRegistry, build_document

OUT_OF_INT64 = (2**63, -(2**63) - 1)
SOME_ID = "0190f0a0-0000-7000-8000-000000000000"
EPOCH = "1970-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(api.routes, version=__version__)


@attrs.frozen
class Case:
    """One request that must be refused with 400 naming ``field``."""

    method: str
    path: str
    field: str
    body: dict[str, Any] | None = None
    params: dict[str, str] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.field}"


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _value_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of ``X | None``."""
    branches = [branch for branch in schema.get("anyOf", [schema]) if branch.get("type") != "null"]
    assert len(branches) == 1, schema
    return branches[0]


def _too_far(schema: dict[str, Any]) -> Iterator[Any]:
    """Values just beyond what ``schema`` allows (none for booleans, enums and objects)."""
    kind = schema.get("type")
    if kind == "integer":
        yield from (*OUT_OF_INT64, schema["maximum"] + 1, schema["minimum"] - 1)
    elif kind == "number":
        yield from (schema["maximum"] * 2 + 1, schema["minimum"] - 1)
    elif kind == "string" and "enum" not in schema:
        yield "a" * (schema["maxLength"] + 1)
    elif kind == "array":
        item = schema["items"]
        yield ["a"] * (schema["maxItems"] + 1)
        if item.get("type") == "string" and "enum" not in item:
            yield ["a" * (item["maxLength"] + 1)]


def _path(template: str) -> str:
    return re.sub(r"{\w+}", SOME_ID, template)


def cases(document: dict[str, Any]) -> list[Case]:
    found = []
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody")
            if body is not None:
                schema = _resolve(document, body["content"]["application/json"]["schema"])
                for field, prop in schema["properties"].items():
                    for value in _too_far(_value_schema(prop)):
                        found.append(Case(method.upper(), _path(template), field, body={field: value}))
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                name = parameter["name"]
                for value in _too_far(parameter["schema"]):
                    found.append(Case(method.upper(), _path(template), name, params={name: str(value)}))
    return found


def _properties(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, schema)`` of every property and query parameter a client sends, list items included."""
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody")
            if body is not None:
                schema = _resolve(document, body["content"]["application/json"]["schema"])
                for field, prop in schema["properties"].items():
                    value = _value_schema(prop)
                    yield f"{method} {template} {field}", value
                    if value.get("type") == "array":
                        yield f"{method} {template} {field}[]", value["items"]
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    yield f"{method} {template} ?{parameter['name']}", parameter["schema"]


def test_the_document_states_a_range_for_every_value_a_client_sends(document: dict[str, Any]) -> None:
    kinds = set()
    for where, schema in _properties(document):
        kind = schema.get("type")
        kinds.add(kind)
        if kind in ("integer", "number"):
            assert "minimum" in schema, where
            assert "maximum" in schema, where
            assert -(2**63) <= schema["minimum"] <= schema["maximum"] < 2**63, where
        elif kind == "string" and "enum" not in schema:
            assert 0 < schema.get("maxLength", 0) <= 4096, where
        elif kind == "array":
            assert 0 < schema.get("maxItems", 0) <= 1024, where
    assert {"integer", "number", "string", "array", "boolean"} <= kinds


def test_the_stated_ranges(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["ModelCreate"]["properties"]["name"]["maxLength"] == 256
    assert schemas["ModelCreate"]["properties"]["base_url"]["maxLength"] == 2048
    assert schemas["ModelCreate"]["properties"]["aliases"]["items"]["maxLength"] == 256
    assert schemas["AliasCreate"]["properties"]["alias"]["maxLength"] == 256
    assert "openai" in schemas["ModelCreate"]["properties"]["provider"]["enum"]
    assert schemas["McpServerCreate"]["properties"]["auth_type"]["enum"] == [
        "none",
        "bearer",
        "header",
        "oauth",
    ]
    key_limit = schemas["KeyCreate"]["properties"]["daily_token_limit"]
    assert (key_limit["minimum"], key_limit["maximum"]) == (0, 10**15)
    weight = _value_schema(schemas["DeploymentUpdate"]["properties"]["weight"])
    assert (weight["minimum"], weight["maximum"]) == (0, 10_000)
    pattern = schemas["ConnectionTest"]["properties"]["api_key"]["pattern"]
    assert all(re.fullmatch(pattern, fine) for fine in ("", "k", "sk-live_0123 ~", "Token a/b+c="))
    assert not any(re.fullmatch(pattern, bad) for bad in ("sk-ü", "sk\r\nX-Injected: 1", " sk", "sk ", "\t"))


async def test_every_value_beyond_its_stated_range_is_a_400_naming_the_field(
    document: dict[str, Any], sqlite_dsn: str
) -> None:
    walk = cases(document)
    assert len(walk) > 200
    fields = {case.field for case in walk}
    assert {"weight", "priority", "daily_token_limit", "max_retries", "limit", "api_key", "cursor"} <= fields
    failures = []
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        headers = {"Authorization": f"Bearer {gw.api_key()}"}
        for case in walk:
            response = await gw.client.request(
                case.method, case.path, headers=headers, json=case.body, params=case.params
            )
            if not _names_field(response, case.field):
                failures.append(f"{case}: {response.status_code} {response.text[:160]}")
    assert failures == []


def _names_field(response: httpx.Response, field: str) -> bool:
    if response.status_code != 400:
        return False
    error = response.json()["error"]
    named = re.match(rf"{field}(\[\d+\])? must ", error["message"]) is not None
    return named and error["request_id"] == response.headers["x-request-id"]


# -- header values -----------------------------------------------------------------------------------------


async def _refused(gw: RunningGateway, method: str, path: str, body: dict[str, Any], field: str) -> str:
    headers = {"Authorization": f"Bearer {gw.api_key()}"}
    response = await gw.client.request(method, path, headers=headers, json=body)
    assert response.status_code == 400, response.text
    message: str = response.json()["error"]["message"]
    assert message.startswith(f"{field} "), message
    return message


@pytest.mark.parametrize(
    "api_key", ["sk-ünïcode", "sk-\u2028x", "sk-ok\r\nX-Evil: 1", "sk-\x00", "sk-\x7f", "sk-\t", "sk-1 "]
)
async def test_a_provider_key_that_cannot_be_a_header_value_is_refused(sqlite_dsn: str, api_key: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        test = {"provider": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": api_key}
        message = await _refused(gw, "POST", "/api/v1/models/test-connection", test, "api_key")
        assert api_key not in message
        assert "header" in message
        await _refused(gw, "POST", "/api/v1/models", {**test, "name": "m"}, "api_key")
        listed = await gw.client.get("/api/v1/models", headers={"Authorization": f"Bearer {gw.api_key()}"})
        assert listed.json()["data"] == []


async def test_mcp_secrets_that_cannot_be_header_values_are_refused(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        server = {"name": "S", "alias": "s", "url": "https://mcp.example.com/mcp", "auth_type": "bearer"}
        await _refused(gw, "POST", "/api/v1/mcp-servers", {**server, "auth_token": "t\nX: y"}, "auth_token")
        oauth = {**server, "auth_type": "oauth", "oauth_client_secret": "s"}
        path = "/api/v1/mcp-servers"
        await _refused(gw, "POST", path, {**oauth, "oauth_client_id": "idé"}, "oauth_client_id")
        bad_secret = {**oauth, "oauth_client_id": "i", "oauth_client_secret": "\x01"}
        await _refused(gw, "POST", path, bad_secret, "oauth_client_secret")


# -- lengths and ranges at their edge ----------------------------------------------------------------------


async def test_names_are_refused_beyond_256_characters_and_accepted_at_256(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        headers = {"Authorization": f"Bearer {gw.api_key()}"}
        model = {"provider": "openai", "base_url": "http://127.0.0.1:9/v1"}
        message = await _refused(gw, "POST", "/api/v1/models", {**model, "name": "m" * 100_000}, "name")
        assert message == "name must be at most 256 characters"
        for aliases in (["a" * 257], ["a,b"]):
            body = {**model, "name": "m", "aliases": aliases}
            await _refused(gw, "POST", "/api/v1/models", body, "aliases[0]")
        created = await gw.client.post(
            "/api/v1/models", headers=headers, json={**model, "name": "m" * 256, "aliases": ["a" * 256]}
        )
        assert created.status_code == 201, created.text
        deployment = {**model, "name": "d", "weight": 10_000, "priority": 1000}
        path = f"/api/v1/models/{created.json()['id']}/deployments"
        added = await gw.client.post(path, headers=headers, json=deployment)
        assert (added.status_code, added.json()["weight"]) == (201, 10_000), added.text
        await _refused(gw, "POST", path, {**deployment, "name": "d2", "weight": 10_001}, "weight")
        await _refused(gw, "POST", path, {**deployment, "name": "d" * 257}, "name")
        await _refused(gw, "POST", path, {**deployment, "base_url": "http://x/" + "p" * 2048}, "base_url")


async def test_limits_are_accepted_up_to_10_to_the_15(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        headers = {"Authorization": f"Bearer {gw.api_key()}"}
        team = {"name": "Big", "slug": "big", "daily_token_limit": 10**15}
        orgs = await gw.client.get("/api/v1/orgs", headers=headers)
        org_id = orgs.json()["data"][0]["id"]
        created = await gw.client.post(f"/api/v1/orgs/{org_id}/teams", headers=headers, json=team)
        assert (created.status_code, created.json()["daily_token_limit"]) == (201, 10**15), created.text
        bigger = {**team, "slug": "bigger", "daily_token_limit": 10**15 + 1}
        message = await _refused(gw, "POST", f"/api/v1/orgs/{org_id}/teams", bigger, "daily_token_limit")
        assert message == f"daily_token_limit must be between 0 and {10**15}"
        for text in ("abc", "1.5", "1e3", "-"):
            await _refused(gw, "GET", f"/api/v1/orgs/{org_id}/teams?limit={text}", {}, "limit")


async def test_a_model_timeout_is_at_most_24h(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        model = {"name": "m", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"}
        assert await _refused(gw, "POST", "/api/v1/models", {**model, "timeout": "25h"}, "timeout") == (
            "timeout must be at most 24h"
        )
        await _refused(gw, "POST", "/api/v1/models", {**model, "timeout": "9" * 40 + "s"}, "timeout")
        message = await _refused(gw, "POST", "/api/v1/models", {**model, "provider": "openia"}, "provider")
        assert message.startswith("provider must be one of openai, anthropic, ")
        for price in ("1e999", "nan", -0.01, 1_000_000.5):
            priced = {**model, "input_price_per_1m": price}
            await _refused(gw, "POST", "/api/v1/models", priced, "input_price_per_1m")


# -- the mechanism ---------------------------------------------------------------------------------------


@attrs.frozen
class _Sample:
    declared: int = bounded(Bounds(minimum=1, maximum=5), default=1)
    plain: int = 0
    text: str = ""
    items: list[str] = attrs.Factory(list)
    name: str | None = bounded(NAME, default=None)
    price: float = 0.0
    when: datetime | None = None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"declared": 6}, "declared must be between 1 and 5"),
        ({"declared": "0"}, "declared must be between 1 and 5"),
        ({"plain": 2**63}, f"plain must be between {-(2**63)} and {2**63 - 1}"),
        ({"text": "x" * 1025}, "text must be at most 1024 characters"),
        ({"items": ["x"] * 1025}, "items must have at most 1024 items"),
        ({"items": ["ok", "x" * 1025]}, "items[1] must be at most 1024 characters"),
        ({"name": "n" * 257}, "name must be at most 256 characters"),
        ({"price": "inf"}, "price must be a finite number"),
        ({"price": 10**400}, "price must be a finite number"),
        ({"plain": "12x"}, "plain must be an integer"),
        ({"plain": "9" * 5000}, "plain must be an integer"),
        ({"when": "2026-01-01T00:00:00" + " " * 60}, "when must be at most 64 characters"),
        ({"when": "yesterday"}, "when must be an RFC 3339 timestamp"),
        ({"when": "0001-01-01T00:00:00+05:00"}, f"when must be from {EPOCH} to before 9000-01-01T00:00:00Z"),
        ({"when": "9999-12-31T23:59:59-05:00"}, f"when must be from {EPOCH} to before 9000-01-01T00:00:00Z"),
    ],
)
def test_the_codec_enforces_declared_and_default_bounds(data: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequestError) as refused:
        structure(data, _Sample)
    assert refused.value.message.startswith(message)


def test_values_within_bounds_pass_and_the_schema_states_them() -> None:
    sample = structure({"declared": 5, "name": None, "text": "x" * 1024, "items": ["a"] * 1024}, _Sample)
    assert (sample.declared, sample.name, len(sample.items)) == (5, None, 1024)
    registry = SchemaRegistry(inputs=[_Sample])
    registry.schema(_Sample)
    properties = registry.schemas["_Sample"]["properties"]
    assert (properties["declared"]["minimum"], properties["declared"]["maximum"]) == (1, 5)
    assert properties["plain"]["maximum"] == 2**63 - 1
    assert properties["text"]["maxLength"] == 1024
    assert properties["name"]["anyOf"][0]["maxLength"] == 256
    assert LIMIT.problem(10**15) is None
    assert LIMIT.problem(10**15 + 1) is not None
    responses = SchemaRegistry()
    responses.schema(_Sample)
    assert "maxLength" not in responses.schemas["_Sample"]["properties"]["text"]  # not an input


@pytest.mark.parametrize(
    "url",
    [
        "http://a..b/v1",
        "http://xn--zz.com/v1",
        f"http://{'a' * 64}.com/v1",
        "http://üü.com/v1",
        "http://x/\x00",
    ],
)
async def test_a_url_the_http_client_cannot_use_is_refused(sqlite_dsn: str, url: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        test = {"provider": "openai", "base_url": url}
        await _refused(gw, "POST", "/api/v1/models/test-connection", test, "base_url")
        await _refused(gw, "POST", "/api/v1/models", {**test, "name": "m"}, "base_url")
        server = {"name": "S", "alias": "s", "url": url.replace("http:", "https:")}
        await _refused(gw, "POST", "/api/v1/mcp-servers", server, "url")
