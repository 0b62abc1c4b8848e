"""Issue 13 point 1: the admin API refuses what it does not understand.

Every route of the OpenAPI document that takes a body gets an unknown field and answers 400
``validation_error`` naming it (and the closest valid field when there is one); the two typos from the issue
no longer create a team or a key without a limit; query strings are as strict; a PATCH body's ``null`` is
refused instead of being read as "unchanged".
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.admin_tenancy import API, admin, create_team, default_org, open_gateway
from tests.gateway import RunningGateway
from voidllm import __version__
from voidllm.web.api import api
from voidllm.web.openapi import build_document

FAKE_ID = "01900000-0000-7000-8000-000000000000"


@pytest.fixture
async def gw(sqlite_dsn: str):  # type: ignore[no-untyped-def]
    async with open_gateway(sqlite_dsn) as gateway:
        yield gateway


def error_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "validation_error", error
    return error


async def test_every_body_of_the_document_refuses_an_unknown_field(gw: RunningGateway) -> None:
    document = build_document(api.routes, version=__version__)
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "requestBody" not in operation or path.endswith("/auth/login"):
                continue  # login is checked below (it is throttled per address)
            url = re.sub(r"\{[^}]+\}", FAKE_ID, path)
            response = await gw.client.request(method.upper(), url, headers=admin(gw), json={"zz_unknown": 1})
            error = error_of(response)
            assert "unknown field 'zz_unknown'" in error["message"], (method, path)
            assert error["field"] == "zz_unknown" or f"$.{error['field']}" in error["message"], (method, path)
            checked += 1
    assert checked == sum(route.body is not None for route in api.routes) - 1  # every one but login


async def test_the_typos_of_the_issue_are_refused_with_the_closest_field(gw: RunningGateway) -> None:
    org = await default_org(gw)
    team = await gw.client.post(
        f"{API}/orgs/{org}/teams", headers=admin(gw), json={"name": "Typo", "requests_per_minite": 5}
    )
    assert error_of(team)["message"] == (
        "unknown field 'requests_per_minite' (did you mean 'requests_per_minute'?) @ $"
    )
    key = await gw.client.post(
        f"{API}/orgs/{org}/keys", headers=admin(gw), json={"name": "k", "key_type": "user_key", "rpm": 3}
    )
    assert error_of(key)["message"].startswith("unknown field 'rpm'")
    listed = await gw.client.get(f"{API}/orgs/{org}/teams", headers=admin(gw))
    assert [t["name"] for t in listed.json()["data"]] == []  # nothing was created
    typo = {"email": "a@b.io", "password": "x", "pasword": "y"}
    login = await gw.client.post(f"{API}/auth/login", json=typo)
    assert "unknown field 'pasword' (did you mean 'password'?)" in error_of(login)["message"]


async def test_query_strings_are_strict_too(gw: RunningGateway) -> None:
    response = await gw.client.get(f"{API}/orgs", headers=admin(gw), params={"limit": 5, "limt": 1})
    assert "unknown field 'limt' (did you mean 'limit'?)" in error_of(response)["message"]


async def test_a_patch_refuses_null_and_keeps_absent_fields(gw: RunningGateway) -> None:
    org = await default_org(gw)
    team = await create_team(gw, org, "nulls", requests_per_minute=7)
    path = f"{API}/orgs/{org}/teams/{team['id']}"
    refused = await gw.client.patch(path, headers=admin(gw), json={"requests_per_minute": None})
    assert error_of(refused)["message"].startswith("requests_per_minute: null is not a value here")
    renamed = await gw.client.patch(path, headers=admin(gw), json={"name": "Renamed"})
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["requests_per_minute"]) == ("Renamed", 7)


async def test_wrong_types_and_ranges_name_the_field(gw: RunningGateway) -> None:
    org = await default_org(gw)
    wrong = await gw.client.post(
        f"{API}/orgs/{org}/teams", headers=admin(gw), json={"name": "T", "requests_per_day": "many"}
    )
    assert "requests_per_day" in error_of(wrong)["message"]
    negative = await gw.client.post(
        f"{API}/orgs/{org}/teams", headers=admin(gw), json={"name": "T", "requests_per_day": -1}
    )
    assert "requests_per_day" in error_of(negative)["message"]


async def test_a_400_about_one_field_names_it_in_the_error_object(gw: RunningGateway) -> None:
    """``field`` (what a form marks) for range, type, semantic and query errors; none when no field of the
    route is meant."""
    org = await default_org(gw)
    keys = f"{API}/orgs/{org}/keys"
    me = (await gw.client.get(f"{API}/me", headers=admin(gw))).json()["id"]
    key = {"name": "k", "key_type": "user_key", "user_id": me}
    cases = [
        ("POST", keys, {**key, "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ("POST", keys, {**key, "requests_per_minute": -1}, "requests_per_minute"),
        ("POST", keys, {**key, "requests_per_minute": "many"}, "requests_per_minute"),
        ("POST", keys, {"name": "k", "key_type": "user_key"}, "user_id"),
        ("GET", f"{API}/usage?from=2026-02-01&to=2026-01-01", None, "from"),
    ]
    for method, url, body, field in cases:
        response = await gw.client.request(method, url, headers=admin(gw), json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["field"] == field, (url, body, response.json())
    wrong = await gw.client.post(
        f"{API}/me/password",
        headers=admin(gw),
        json={"current_password": "not-it", "new_password": "a-new-password-1"},
    )
    assert wrong.status_code in (400, 401, 403), wrong.text
    assert "field" not in wrong.json()["error"]  # "current password is incorrect" names no field of the route
