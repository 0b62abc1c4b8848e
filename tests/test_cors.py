"""Web pages of other origins calling ``/v1`` and the MCP endpoints (issue 18 point 2, ``voidllm.web.cors``),
on a real gateway over real sockets: raw preflights answered before authentication, CORS headers on every
real response to an allowed origin (errors included), none for other origins or paths, and the validation
of ``server.cors`` and ``settings.mcp.allowed_origins``. In a browser: tests/e2e/test_cors_browser.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest

from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway
from tests.mcp_calls import initialize_request
from tests.test_limits_gateway import add_key
from voidllm.config import ConfigError, parse_config
from voidllm.identity import Limits
from voidllm.nursery import DrainTracker
from voidllm.testing.mock_openai import MockUpstream, open_mock_upstream
from voidllm.web.cors import CorsPolicy
from voidllm.web.edge import Edge

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

APP = "https://app.example.com"  # server.cors.allowed_origins
IDE = "https://ide.example.com"  # settings.mcp.allowed_origins
EVIL = "https://evil.example.net"
MCP_PATH = "/api/v1/mcp/voidllm"
CHAT = orjson.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]})
MCP_INIT = orjson.dumps(initialize_request())
MCP_ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
CORS_YAML = f"""
server:
  cors:
    allowed_origins: ["{APP}/", "http://LOCALHOST:5173"]
    max_age: 15m
"""
V1_PATHS = [
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/messages",
    "/v1/audio/transcriptions",
    "/v1/models",
    "/v1/models/gpt-test",
    "/v1/no-such-route",
]


@pytest.fixture
async def mock() -> AsyncIterator[MockUpstream]:
    async with open_mock_upstream() as upstream:
        yield upstream


def config(sqlite_dsn: str, mock: MockUpstream, cors: str = CORS_YAML, mcp: str = f'["{IDE}"]') -> Any:
    models = "models:" + model_yaml("gpt-test", mock.base_url)
    return make_config(sqlite_dsn, cors + models, settings=f"mcp:\n  allowed_origins: {mcp}")


@pytest.fixture
async def gw(sqlite_dsn: str, mock: MockUpstream) -> AsyncIterator[RunningGateway]:
    async with run_gateway(config(sqlite_dsn, mock)) as running:
        yield running


def auth(gw: RunningGateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.api_key()}"}


async def preflight(
    gw: RunningGateway,
    path: str,
    origin: str,
    method: str = "POST",
    headers: str = "authorization,content-type",
) -> httpx.Response:
    asked = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }
    return await gw.client.options(path, headers=asked)


def names(value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def assert_no_cors(response: httpx.Response) -> None:
    found = [name for name in response.headers if name.lower().startswith("access-control-")]
    assert found == [], found


def assert_allowed(response: httpx.Response, origin: str) -> list[str]:
    """The response lets ``origin`` read it; returns the exposed header names."""
    assert response.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-credentials" not in response.headers
    assert "Origin" in names(response.headers.get("vary"))
    exposed = names(response.headers.get("access-control-expose-headers"))
    assert "x-request-id" in exposed
    return exposed


# -- preflights --------------------------------------------------------------------------------------------


async def test_v1_preflight_from_an_allowed_origin_is_204_before_authentication(gw: RunningGateway) -> None:
    for path in V1_PATHS:
        response = await preflight(gw, path, APP, headers="authorization,content-type,x-stainless-os,x-evil")
        assert response.status_code == 204, path
        assert response.content == b""
        assert response.headers["access-control-allow-origin"] == APP
        assert names(response.headers["access-control-allow-methods"]) == ["GET", "POST"]
        assert names(response.headers["access-control-allow-headers"]) == [
            "authorization",
            "content-type",
            "x-stainless-os",
        ]
        assert response.headers["access-control-max-age"] == "900"
        assert "Origin" in names(response.headers["vary"])
        assert "x-request-id" in response.headers
        assert "access-control-allow-credentials" not in response.headers


async def test_the_clients_request_headers_are_allowed(gw: RunningGateway) -> None:
    sdk = [
        "anthropic-beta",
        "anthropic-dangerous-direct-browser-access",
        "anthropic-version",
        "authorization",
        "content-type",
        "last-event-id",
        "mcp-protocol-version",
        "mcp-session-id",
        "openai-organization",
        "openai-project",
        "x-api-key",
        "x-project",
        "x-request-id",
        "x-source",
        "x-stainless-arch",
        "x-stainless-retry-count",
    ]
    response = await preflight(gw, "/v1/chat/completions", APP, headers=",".join(sdk))
    assert names(response.headers["access-control-allow-headers"]) == sdk
    response = await preflight(gw, "/v1/chat/completions", APP, headers="cookie, x-forwarded-for")
    assert "access-control-allow-headers" not in response.headers


async def test_preflight_from_another_origin_is_a_bare_204(gw: RunningGateway) -> None:
    for path in [*V1_PATHS, MCP_PATH, "/api/v1/mcp/some-alias"]:
        for origin in [EVIL, "null", APP.replace("https", "http"), APP + ":8443"]:
            response = await preflight(gw, path, origin)
            assert response.status_code == 204, (path, origin)
            assert_no_cors(response)
            assert "Origin" in names(response.headers["vary"])


async def test_configured_origins_are_normalised(gw: RunningGateway) -> None:
    """``https://app.example.com/`` and ``http://LOCALHOST:5173`` match what browsers send."""
    for origin in (APP, "http://localhost:5173"):
        response = await preflight(gw, "/v1/models", origin, method="GET")
        assert response.headers["access-control-allow-origin"] == origin


async def test_mcp_preflight_from_either_list_is_204(gw: RunningGateway) -> None:
    """``settings.mcp.allowed_origins`` gets working preflights (they answered 401 before)."""
    headers = "authorization,content-type,mcp-protocol-version,mcp-session-id,last-event-id"
    for path in [MCP_PATH, "/api/v1/mcp/some-alias"]:
        for origin in [APP, IDE]:
            response = await preflight(gw, path, origin, method="DELETE", headers=headers)
            assert response.status_code == 204
            assert response.headers["access-control-allow-origin"] == origin
            assert names(response.headers["access-control-allow-methods"]) == ["GET", "POST", "DELETE"]
            assert names(response.headers["access-control-allow-headers"]) == names(headers)


async def test_mcp_only_origins_do_not_open_v1(gw: RunningGateway) -> None:
    response = await preflight(gw, "/v1/chat/completions", IDE)
    assert_no_cors(response)


async def test_other_paths_are_not_covered(gw: RunningGateway) -> None:
    for path in ["/api/v1/orgs", "/api/v1/playground/chat/completions", "/", "/healthz"]:
        response = await preflight(gw, path, APP)
        assert response.status_code != 204, path
        assert_no_cors(response)
        real = await gw.client.get(path, headers={"Origin": APP, **auth(gw)})
        assert_no_cors(real)
        assert "Origin" not in names(real.headers.get("vary"))


async def test_an_options_request_that_is_no_preflight_reaches_the_app(gw: RunningGateway) -> None:
    response = await gw.client.options("/v1/models", headers={"Origin": APP})
    assert response.status_code != 204
    assert response.headers["access-control-allow-origin"] == APP


# -- real responses ----------------------------------------------------------------------------------------


async def test_chat_from_an_allowed_origin_is_readable(gw: RunningGateway) -> None:
    response = await gw.client.post("/v1/chat/completions", headers={"Origin": APP, **auth(gw)}, content=CHAT)
    assert response.status_code == 200
    exposed = assert_allowed(response, APP)
    assert {"x-voidllm-overhead-ms", "x-ratelimit-remaining-requests"} <= set(exposed)
    assert set(exposed) <= {name.lower() for name in response.headers}


async def test_a_stream_from_an_allowed_origin_is_readable(gw: RunningGateway) -> None:
    body = orjson.dumps({**orjson.loads(CHAT), "stream": True})
    headers = {"Origin": APP, **auth(gw)}
    async with gw.client.stream("POST", "/v1/chat/completions", headers=headers, content=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert_allowed(response, APP)
        assert b"[DONE]" in b"".join([chunk async for chunk in response.aiter_bytes()])


ERRORS = [
    ("POST", "/v1/chat/completions", {"Authorization": "Bearer vl_uk_wrong"}, 401),
    ("POST", "/v1/chat/completions", {}, 401),
    ("POST", "/v1/messages", {"x-api-key": "vl_uk_wrong"}, 401),
    ("GET", "/v1/models", {"Authorization": "Bearer vl_uk_wrong"}, 401),
    ("POST", "/v1/embeddings", {}, 401),
    ("GET", "/v1/no-such-route", {}, 401),
    ("POST", "/v1/chat/completions", {"Content-Type": "application/json"}, 400),
    ("POST", MCP_PATH, {"Authorization": "Bearer vl_uk_wrong"}, 401),
]


async def test_errors_to_an_allowed_origin_are_readable(gw: RunningGateway) -> None:
    """A browser shows the page a 401 only when the answer carries ``Access-Control-Allow-Origin``."""
    for method, path, headers, status in ERRORS:
        content = (
            MCP_INIT if path == MCP_PATH else b"{" if status == 400 else CHAT if method == "POST" else None
        )
        extra = MCP_ACCEPT if path == MCP_PATH else auth(gw) if status == 400 else {}
        sent = {"Origin": APP, **extra, **headers}
        response = await gw.client.request(method, path, headers=sent, content=content)
        assert response.status_code == status, (method, path)
        exposed = assert_allowed(response, APP)
        if path == MCP_PATH:
            assert "www-authenticate" in exposed


async def test_a_429_exposes_the_rate_limit_headers(gw: RunningGateway) -> None:
    key = await add_key(gw, key=Limits(requests_per_minute=1))
    headers = {"Origin": APP, **key.auth}
    first = await gw.client.post("/v1/chat/completions", headers=headers, content=CHAT)
    assert first.status_code == 200
    refused = await gw.client.post("/v1/chat/completions", headers=headers, content=CHAT)
    assert refused.status_code == 429
    exposed = assert_allowed(refused, APP)
    assert {"retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(exposed)


async def test_v1_answers_other_origins_without_cors_headers(gw: RunningGateway) -> None:
    for origin in [None, EVIL, IDE]:
        headers = {**auth(gw), **({"Origin": origin} if origin else {})}
        response = await gw.client.post("/v1/chat/completions", headers=headers, content=CHAT)
        assert response.status_code == 200, "CORS is the browser's check: the gateway still answers"
        assert_no_cors(response)
        assert names(response.headers["vary"]) == ["Origin"], "a cache must not give this answer to a page"


async def test_mcp_session_from_an_allowed_origin(gw: RunningGateway) -> None:
    """Both lists pass the MCP endpoint's own Origin check, and the page can read ``Mcp-Session-Id``."""
    for origin in [APP, IDE]:
        headers = {"Origin": origin, **MCP_ACCEPT, **auth(gw)}
        response = await gw.client.post(MCP_PATH, headers=headers, content=MCP_INIT)
        assert response.status_code == 200
        assert response.headers["mcp-session-id"]
        assert "mcp-session-id" in assert_allowed(response, origin)


async def test_mcp_refuses_another_origin_without_cors_headers(gw: RunningGateway) -> None:
    headers = {"Origin": EVIL, **MCP_ACCEPT, **auth(gw)}
    response = await gw.client.post(MCP_PATH, headers=headers, content=MCP_INIT)
    assert response.status_code == 403
    assert_no_cors(response)


# -- settings ----------------------------------------------------------------------------------------------


async def test_any_origin_opens_v1_but_not_mcp(sqlite_dsn: str, mock: MockUpstream) -> None:
    cors = 'server:\n  cors:\n    allowed_origins: ["*"]\n'
    async with run_gateway(config(sqlite_dsn, mock, cors=cors, mcp="[]")) as gw:
        response = await preflight(gw, "/v1/chat/completions", EVIL)
        assert response.headers["access-control-allow-origin"] == EVIL
        assert response.headers["access-control-max-age"] == "600"
        real = await gw.client.get("/v1/models", headers={"Origin": EVIL, **auth(gw)})
        assert_allowed(real, EVIL)
        mcp = await preflight(gw, MCP_PATH, EVIL)
        assert mcp.status_code == 403, "the MCP endpoints are not covered: their Origin check answers"
        assert_no_cors(mcp)


async def test_credentials_are_allowed_when_configured(sqlite_dsn: str, mock: MockUpstream) -> None:
    cors = f'server:\n  cors:\n    allowed_origins: ["{APP}"]\n    allow_credentials: true\n'
    async with run_gateway(config(sqlite_dsn, mock, cors=cors)) as gw:
        response = await preflight(gw, "/v1/chat/completions", APP)
        assert response.headers["access-control-allow-credentials"] == "true"
        real = await gw.client.get("/v1/models", headers={"Origin": APP, **auth(gw)})
        assert real.headers["access-control-allow-credentials"] == "true"
        other = await gw.client.get("/v1/models", headers={"Origin": EVIL, **auth(gw)})
        assert_no_cors(other)


async def test_without_settings_nothing_changes(sqlite_dsn: str, mock: MockUpstream) -> None:
    async with run_gateway(config(sqlite_dsn, mock, cors="", mcp="[]")) as gw:
        for path, status in (("/v1/chat/completions", 405), (MCP_PATH, 403)):
            response = await preflight(gw, path, APP)
            assert response.status_code == status
            assert_no_cors(response)
            assert "Origin" not in names(response.headers.get("vary"))


def problems(yaml_text: str) -> tuple[str, ...]:
    base = "settings:\n  encryption_key: test-encryption-passphrase-0001\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml_text + base if yaml_text.startswith("server") else base + yaml_text, environ={})
    return caught.value.problems


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example.com/path",
        "app.example.com",
        "ftp://app.example.com",
        "https://user@app.example.com",
        "https://app.example.com?x=1",
        "https://app.example.com:99999",
        "https://",
        "null",
        "",
    ],
)
def test_an_invalid_origin_is_refused_naming_the_field(origin: str) -> None:
    (problem,) = problems(f'server:\n  cors:\n    allowed_origins: ["{APP}", "{origin}"]\n')
    assert problem.startswith(f"server.cors.allowed_origins: {origin!r} is not an origin such as https://")
    (problem,) = problems(f'  mcp:\n    allowed_origins: ["{origin}"]\n')
    assert problem.startswith(f"settings.mcp.allowed_origins: {origin!r} is not an origin")


def test_cors_settings_are_checked() -> None:
    assert problems('server:\n  cors:\n    allowed_origins: ["*"]\n    allow_credentials: true\n') == (
        "server.cors.allowed_origins: must list exact origins, not '*', when allow_credentials is true",
    )
    assert problems('  mcp:\n    allowed_origins: ["*"]\n')[0].startswith(
        "settings.mcp.allowed_origins: '*' is not an origin"
    )
    found = problems(
        "server:\n  cors:\n    allowed_origins: https://x.example\n    max_age: 2d\n    maxage: 1\n"
    )
    assert found == (
        "server.cors.allowed_origins: expected a list, got a string",
        "server.cors.max_age: must be between 0s and 1d (got 2d)",
        "server.cors.maxage: unknown key (did you mean 'max_age'?)",
    )


def test_valid_cors_settings_load() -> None:
    yaml_text = (
        'server:\n  cors:\n    allowed_origins: ["https://a.example", "http://[::1]:8080", "http://127.0.0.1:3000"]\n'
        "settings:\n  encryption_key: test-encryption-passphrase-0001\n"
    )
    cors = parse_config(yaml_text, environ={}).server.cors
    assert (len(cors.allowed_origins), cors.allow_credentials, cors.max_age) == (3, False, 600.0)


# -- the edge's own answers --------------------------------------------------------------------------------


async def test_the_edges_own_errors_carry_cors_headers() -> None:
    """A 500 from the last-resort handler and a 503 while draining reach the page readable."""
    cors = CorsPolicy.from_config(
        parse_config(
            f'server:\n  cors:\n    allowed_origins: ["{APP}"]\nsettings:\n  encryption_key: {"k" * 20}\n',
            environ={},
        ),
        api_prefix="/v1/",
        mcp_prefix="/api/v1/mcp/",
    )

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    drain = DrainTracker()
    edge = Edge(failing, drain, cors=cors)
    for expected in (500, 503):
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/v1/models",
            "headers": [(b"origin", APP.encode())],
        }
        await edge(scope, receive, send)
        start = sent[0]
        assert start["status"] == expected
        headers = dict(start["headers"])
        assert headers[b"access-control-allow-origin"] == APP.encode()
        assert headers[b"access-control-expose-headers"] == b"x-request-id"
        drain.start_draining()  # from now on, /v1 requests are refused with 503
