"""Anthropic SDK conventions (issue 18 point 3): a real gateway, the ``anthropic`` SDK and raw requests.

- the key in ``X-Api-Key`` (the SDK's default) on every route that takes ``Authorization: Bearer``: the
  proxied ``/v1`` routes, ``/v1/models``, the management API, the playground and the MCP endpoints;
- ``/v1/models`` and ``/v1/models/{id}`` in Anthropic's shape when the request carries ``anthropic-version``
  (paged with ``limit``, ``after_id``, ``before_id``), OpenAI's shape otherwise;
- ``request-id`` beside ``X-Request-Id`` on ``/v1/messages`` answers.

``count_tokens`` estimates: tests/test_count_tokens_estimate.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import pytest

from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream

VERSION = {"anthropic-version": "2023-06-01"}
HI = [{"role": "user", "content": "Hello, world"}]


@pytest.fixture
async def mock() -> AsyncIterator[MockUpstream]:
    async with open_mock_upstream(Behaviour()) as upstream:
        yield upstream


def sdk(gw: RunningGateway, key: str | None = None) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.url, api_key=key or gw.api_key(), max_retries=0, timeout=10)


def three_models(base_url: str) -> str:
    return "models:" + "".join(
        model_yaml(name, base_url, aliases=aliases)
        for name, aliases in (("alpha", "[first]"), ("beta", "[]"), ("gamma", "[]"))
    )


async def test_x_api_key_is_accepted_wherever_bearer_is(sqlite_dsn: str, mock: MockUpstream) -> None:
    async with run_gateway(make_config(sqlite_dsn, three_models(mock.base_url))) as gw:
        chat = {"model": "alpha", "messages": HI}
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-03-26",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        mcp_headers = {"Accept": "application/json, text/event-stream"}
        calls = [
            ("GET", "/v1/models", None, {}),
            ("GET", "/v1/models/first", None, {}),
            ("POST", "/v1/chat/completions", chat, {}),
            ("POST", "/v1/messages", {**chat, "max_tokens": 8}, {}),
            ("GET", "/api/v1/me", None, {}),
            ("POST", "/api/v1/mcp/voidllm", initialize, mcp_headers),
        ]
        for method, path, body, extra in calls:
            good = await gw.client.request(
                method, path, json=body, headers={"X-Api-Key": gw.api_key(), **extra}
            )
            assert good.status_code == 200, (path, good.text)
            bad = await gw.client.request(
                method, path, json=body, headers={"X-Api-Key": "vl_uk_" + "0" * 48, **extra}
            )
            assert bad.status_code == 401, path
            bearer = await gw.client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {gw.api_key()}", **extra}
            )
            assert bearer.status_code == 200, path
        # a playground request with an explicit key needs neither the cookie nor CSRF
        played = await gw.client.get("/api/v1/playground/models", headers={"X-Api-Key": gw.api_key()})
        assert played.status_code == 200
        # the SDK sends the key in X-Api-Key
        assert [m.id async for m in sdk(gw).models.list()] == ["alpha", "beta", "gamma"]
        with pytest.raises(anthropic.AuthenticationError):
            await sdk(gw, "vl_uk_" + "0" * 48).models.list()


async def test_models_in_anthropics_shape_with_anthropic_version(sqlite_dsn: str, mock: MockUpstream) -> None:
    async with run_gateway(make_config(sqlite_dsn, three_models(mock.base_url))) as gw:
        auth = {"X-Api-Key": gw.api_key()}
        listed = await gw.client.get("/v1/models", headers={**auth, **VERSION})
        assert listed.json() == {
            "data": [
                {"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"}
                for name in ("alpha", "beta", "gamma")
            ],
            "has_more": False,
            "first_id": "alpha",
            "last_id": "gamma",
        }
        openai_shape = (await gw.client.get("/v1/models", headers=auth)).json()
        assert openai_shape["object"] == "list"
        assert openai_shape["data"][0] == {
            "id": "alpha",
            "object": "model",
            "created": 0,
            "owned_by": "voidllm",
            "aliases": ["first"],
        }

        async def page(query: str) -> dict[str, object]:
            answer = await gw.client.get(f"/v1/models?{query}", headers={**auth, **VERSION})
            assert answer.status_code == 200
            found: dict[str, object] = answer.json()
            found["data"] = [m["id"] for m in answer.json()["data"]]
            return found

        assert await page("limit=2") == {
            "data": ["alpha", "beta"],
            "has_more": True,
            "first_id": "alpha",
            "last_id": "beta",
        }
        assert await page("limit=2&after_id=beta") == {
            "data": ["gamma"],
            "has_more": False,
            "first_id": "gamma",
            "last_id": "gamma",
        }
        assert await page("limit=1&before_id=gamma") == {
            "data": ["beta"],
            "has_more": True,
            "first_id": "beta",
            "last_id": "beta",
        }
        assert await page("after_id=gamma") == {
            "data": [],
            "has_more": False,
            "first_id": None,
            "last_id": None,
        }
        for query, field in (
            ("limit=0", "limit"),
            ("limit=x", "limit"),
            ("limit=%C2%B2", "limit"),  # a Unicode digit ("²"): isdigit() but not an integer
            ("limit=" + "9" * 5000, "limit"),  # longer than int() converts
            ("after_id=a&before_id=b", "before_id"),
        ):
            refused = await gw.client.get(f"/v1/models?{query}", headers={**auth, **VERSION})
            assert refused.status_code == 400, query
            assert refused.json()["error"]["field"] == field

        one = await gw.client.get("/v1/models/first", headers={**auth, **VERSION})
        assert one.json() == {
            "type": "model",
            "id": "alpha",
            "display_name": "alpha",
            "created_at": "1970-01-01T00:00:00Z",
        }

        client = sdk(gw)
        first = await client.models.list(limit=2)
        assert [m.id for m in first.data] == ["alpha", "beta"]
        assert first.has_more
        assert [m.id async for m in await client.models.list(limit=1)] == ["alpha", "beta", "gamma"]
        model = await client.models.retrieve("first")
        assert (model.type, model.id, model.display_name) == ("model", "alpha", "alpha")
        with pytest.raises(anthropic.NotFoundError):
            await client.models.retrieve("nope")


async def test_request_id_header_on_messages(sqlite_dsn: str, mock: MockUpstream) -> None:
    async with run_gateway(make_config(sqlite_dsn, three_models(mock.base_url))) as gw:
        raw = await sdk(gw).messages.with_raw_response.create(model="alpha", max_tokens=8, messages=HI)
        assert raw.headers["request-id"] == raw.headers["x-request-id"]
        assert (await raw.parse())._request_id == raw.headers["x-request-id"]
        with pytest.raises(anthropic.NotFoundError) as missing:
            await sdk(gw).messages.create(model="nope", max_tokens=8, messages=HI)
        assert missing.value.request_id == missing.value.response.headers["x-request-id"]
        chat = await gw.client.post(
            "/v1/chat/completions",
            json={"model": "alpha", "messages": HI},
            headers={"X-Api-Key": gw.api_key()},
        )
        assert "request-id" not in chat.headers
        assert "x-request-id" in chat.headers
