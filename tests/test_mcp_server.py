"""The MCP streamable HTTP transport rules (voidllm.mcp.gateway.server) with raw httpx requests against a real
gateway on /api/v1/mcp/voidllm: Origin, Accept, versions, sessions (sealed tokens, bound to the key, served by
a second gateway process on the same store and encryption key), DELETE/GET, SSE framing, body errors, batches,
and the 2026-07-28 header checks."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest

from tests.admin_tenancy import add_user, default_org, user_key
from tests.gateway import make_config, run_gateway

PATH = "/api/v1/mcp/voidllm"
JSON_AND_SSE = "application/json, text/event-stream"
MODERN = "2026-07-28"
SUPPORTED = ["2025-03-26", "2025-06-18", "2025-11-25", MODERN]


def _headers(key: str, **extra: str) -> dict[str, str]:
    headers = {"authorization": f"Bearer {key}", "accept": JSON_AND_SSE, "content-type": "application/json"}
    headers.update({k.replace("_", "-").lower(): v for k, v in extra.items()})
    return headers


def _request(method: str, id: int = 1, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params:
        body["params"] = params
    return body


def _init(version: str = "2025-06-18") -> dict[str, Any]:
    return _request(
        "initialize", protocolVersion=version, capabilities={}, clientInfo={"name": "t", "version": "1"}
    )


async def _session(client: httpx.AsyncClient, key: str, version: str = "2025-06-18") -> str:
    response = await client.post(PATH, headers=_headers(key, accept="application/json"), json=_init(version))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"]["protocolVersion"] == version
    assert body["result"]["serverInfo"]["name"] == "voidllm"
    token = response.headers["mcp-session-id"]
    assert all(0x21 <= ord(c) <= 0x7E for c in token)
    return token


def _error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["jsonrpc"] == "2.0"
    assert body["error"]["code"] == code
    return body


async def test_session_era_initialize_then_requests_need_the_session(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        key, c = gw.api_key(), gw.client
        token = await _session(c, key)

        initialized = await c.post(
            PATH,
            headers=_headers(key, mcp_session_id=token, mcp_protocol_version="2025-06-18"),
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        )
        assert (initialized.status_code, initialized.content) == (202, b"")
        # a client's response message is accepted and ignored too
        answered = await c.post(
            PATH, headers=_headers(key, mcp_session_id=token), json={"jsonrpc": "2.0", "id": 9, "result": {}}
        )
        assert (answered.status_code, answered.content) == (202, b"")

        ping = await c.post(
            PATH,
            headers=_headers(
                key, mcp_session_id=token, accept="application/json", mcp_protocol_version="2025-06-18"
            ),
            json=_request("ping", 7),
        )
        assert ping.json() == {"jsonrpc": "2.0", "id": 7, "result": {}}

        missing = await c.post(PATH, headers=_headers(key), json=_request("tools/list"))
        assert _error(missing, 400, -32600)["id"] is None
        forged = await c.post(
            PATH, headers=_headers(key, mcp_session_id=token[:-4] + "AAAA"), json=_request("tools/list")
        )
        _error(forged, 404, -32600)
        junk = await c.post(
            PATH, headers=_headers(key, mcp_session_id="not-a-token"), json=_request("tools/list")
        )
        _error(junk, 404, -32600)

        # the token is bound to the key that opened the session
        org = await default_org(gw)
        other = await user_key(gw, org, await add_user(gw, org, "m@example.com"))
        stolen = await c.post(
            PATH, headers=_headers(other, mcp_session_id=token), json=_request("tools/list")
        )
        _error(stolen, 404, -32600)

        # an unsupported requested version negotiates our newest session-era version
        newest = await c.post(
            PATH, headers=_headers(key, accept="application/json"), json=_init("2024-01-01")
        )
        assert newest.json()["result"]["protocolVersion"] == "2025-11-25"

        versions = _headers(key, mcp_session_id=token, mcp_protocol_version="2025-11-25")
        other_version = await c.post(PATH, headers=versions, json=_request("tools/list"))
        _error(other_version, 400, -32600)

        # DELETE ends the session; later use is 404
        deleted = await c.delete(PATH, headers=_headers(key, mcp_session_id=token))
        assert deleted.status_code == 204
        after = await c.post(PATH, headers=_headers(key, mcp_session_id=token), json=_request("tools/list"))
        _error(after, 404, -32600)
        assert (await c.delete(PATH, headers=_headers(key))).status_code == 400

        get = await c.get(PATH, headers=_headers(key))
        _error(get, 405, -32600)
        assert get.headers["allow"] == "POST, DELETE"


async def test_session_sealed_by_one_gateway_is_served_by_another(sqlite_dsn: str) -> None:
    config = make_config(sqlite_dsn)
    async with run_gateway(config) as first:
        key = first.api_key()
        token = await _session(first.client, key)
    async with run_gateway(config) as second:
        listed = await second.client.post(
            PATH,
            headers=_headers(key, mcp_session_id=token, accept="application/json"),
            json=_request("tools/list", 3),
        )
        assert listed.status_code == 200, listed.text
        assert listed.json()["id"] == 3
        assert len(listed.json()["result"]["tools"]) == 6


async def test_origin_auth_version_accept_and_body_rules(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        key, c = gw.api_key(), gw.client
        host = httpx.URL(gw.url).netloc.decode()

        evil = await c.post(PATH, headers=_headers(key, origin="http://evil.example"), json=_init())
        assert "id" in _error(evil, 403, -32600)
        assert evil.json()["id"] is None
        same = await c.post(PATH, headers=_headers(key, origin=f"http://{host}"), json=_init())
        assert same.status_code == 200

        unauthenticated = await c.post(PATH, headers={"accept": JSON_AND_SSE}, json=_init())
        _error(unauthenticated, 401, -32600)
        assert unauthenticated.headers["www-authenticate"] == "Bearer"
        wrong = await c.post(PATH, headers=_headers("vl_uk_" + "0" * 48), json=_init())
        _error(wrong, 401, -32600)

        unsupported = await c.post(
            PATH, headers=_headers(key, mcp_protocol_version="2024-11-05"), json=_init()
        )
        body = _error(unsupported, 400, -32022)
        assert body["error"]["data"]["supported"] == SUPPORTED

        refused = await c.post(PATH, headers=_headers(key, accept="text/html"), json=_init())
        _error(refused, 406, -32600)

        empty = await c.post(PATH, headers=_headers(key), content=b"")
        assert _error(empty, 200, -32700)["error"]["message"] == "empty request body"
        parse = await c.post(PATH, headers=_headers(key), content=b"{nope")
        _error(parse, 400, -32700)
        invalid = await c.post(PATH, headers=_headers(key), json={"jsonrpc": "1.0", "id": 1, "method": "x"})
        _error(invalid, 400, -32600)
        big = await c.post(PATH, headers=_headers(key), content=b" " * (4 * 1024 * 1024 + 1))
        _error(big, 413, -32600)


async def test_configured_origins_are_allowed(sqlite_dsn: str) -> None:
    config = make_config(sqlite_dsn, settings='mcp:\n  allowed_origins: ["https://ide.example.com/"]')
    async with run_gateway(config) as gw:
        key = gw.api_key()
        listed = await gw.client.post(
            PATH, headers=_headers(key, origin="https://ide.example.com"), json=_init()
        )
        assert listed.status_code == 200, listed.text
        other = await gw.client.post(
            PATH, headers=_headers(key, origin="https://other.example.com"), json=_init()
        )
        _error(other, 403, -32600)


async def test_sse_answer_is_one_unbuffered_event_per_message(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        key = gw.api_key()
        # JSON and SSE accepted: JSON (our rule); only SSE accepted: SSE
        both = await gw.client.post(PATH, headers=_headers(key), json=_init())
        assert both.headers["content-type"] == "application/json"
        response = await gw.client.post(PATH, headers=_headers(key, accept="text/event-stream"), json=_init())
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["mcp-session-id"]
        event, data = response.text.split("\n")[:2]
        assert event == "event: message"
        assert response.text.endswith("\n\n")
        assert orjson.loads(data.removeprefix("data: "))["result"]["serverInfo"]["name"] == "voidllm"


async def test_batches_only_in_2025_03_26(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        key, c = gw.api_key(), gw.client
        token = await _session(c, key, "2025-03-26")
        batch = [
            _request("ping", 1),
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            _request("nope", 2),
            {"jsonrpc": "2.0"},
        ]
        answered = await c.post(PATH, headers=_headers(key, mcp_session_id=token), json=batch)
        assert answered.status_code == 200
        by_id = {item["id"]: item for item in answered.json()}
        assert by_id[1]["result"] == {}
        assert by_id[2]["error"]["code"] == -32601
        assert by_id[None]["error"]["code"] == -32600
        only_notes = await c.post(
            PATH,
            headers=_headers(key, mcp_session_id=token),
            json=[{"jsonrpc": "2.0", "method": "notifications/initialized"}],
        )
        assert only_notes.status_code == 202
        newer = await c.post(
            PATH, headers=_headers(key, mcp_session_id=token, mcp_protocol_version="2025-06-18"), json=batch
        )
        _error(newer, 400, -32600)
        with_init = await c.post(PATH, headers=_headers(key), json=[_init("2025-03-26")])
        _error(with_init, 400, -32600)
        # a session negotiated at 2025-06-18 cannot batch, with or without the version header
        later = await _session(c, key, "2025-06-18")
        _error(await c.post(PATH, headers=_headers(key, mcp_session_id=later), json=batch), 400, -32600)
        _error(await c.post(PATH, headers=_headers(key), json=batch), 400, -32600)  # no session at all


def _modern(key: str, method: str, name: str | None = None, **extra: str) -> dict[str, str]:
    headers = _headers(key, mcp_protocol_version=MODERN, mcp_method=method, **extra)
    if name is not None:
        headers["mcp-name"] = name
    return headers


def _meta() -> dict[str, Any]:
    return {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        }
    }


async def test_stateless_revision(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        key, c = gw.api_key(), gw.client
        discover = await c.post(
            PATH, headers=_modern(key, "server/discover"), json=_request("server/discover", **_meta())
        )
        result = discover.json()["result"]
        assert result["supportedVersions"] == SUPPORTED
        assert result["capabilities"] == {"tools": {}}
        assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "voidllm"

        # no session needed, a session id is ignored
        listed = await c.post(
            PATH,
            headers=_modern(key, "tools/list", mcp_session_id="ignored"),
            json=_request("tools/list", **_meta()),
        )
        assert listed.status_code == 200
        assert len(listed.json()["result"]["tools"]) == 6

        call = _request("tools/call", name="list_keys", arguments={}, **_meta())
        ok = await c.post(PATH, headers=_modern(key, "tools/call", "list_keys"), json=call)
        assert ok.json()["result"]["isError"] is False, ok.text
        mismatch = await c.post(PATH, headers=_modern(key, "tools/call", "create_key"), json=call)
        _error(mismatch, 400, -32020)
        method = await c.post(PATH, headers=_modern(key, "tools/list"), json=call)
        _error(method, 400, -32020)
        missing = await c.post(PATH, headers=_headers(key, mcp_protocol_version=MODERN), json=call)
        _error(missing, 400, -32020)

        bare = await c.post(PATH, headers=_modern(key, "tools/list"), json=_request("tools/list"))
        _error(bare, 400, -32602)
        other = _request("tools/list", **_meta())
        other["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2025-11-25"
        _error(await c.post(PATH, headers=_modern(key, "tools/list"), json=other), 400, -32020)

        no_ping = await c.post(PATH, headers=_modern(key, "ping"), json=_request("ping", **_meta()))
        _error(no_ping, 200, -32601)
        for verb in ("GET", "DELETE"):
            response = await c.request(verb, PATH, headers=_modern(key, "x"))
            _error(response, 405, -32600)
            assert response.headers["allow"] == "POST"
        batch = await c.post(
            PATH, headers=_modern(key, "tools/list"), json=[_request("tools/list", **_meta())]
        )
        _error(batch, 400, -32600)


# -- the pieces without HTTP --------------------------------------------------------------------------


def test_jsonrpc_parsing_classifies_messages_and_rejects_the_rest() -> None:
    from voidllm.mcp.upstream import jsonrpc as j

    assert j.parse_body(b'{"jsonrpc":"2.0","id":"a","method":"m","params":{"x":1}}') == j.Request(
        "a", "m", {"x": 1}
    )
    assert j.parse_body(b'{"jsonrpc":"2.0","method":"n"}') == j.Notification("n")
    assert j.parse_body(b'{"jsonrpc":"2.0","id":1,"result":{}}') == j.Response(1, {})
    error = j.parse_body(b'{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}}')
    assert isinstance(error, j.ErrorResponse)
    assert (error.id, error.error.code) == (1, -1)
    for bad, code in [
        (b"", j.PARSE_ERROR),
        (b"{", j.PARSE_ERROR),
        (b"[]", j.INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":true,"method":"m"}', j.INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":null,"method":"m"}', j.INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1,"method":"m","params":[1]}', j.INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1}', j.INVALID_REQUEST),
        (b'"x"', j.INVALID_REQUEST),
    ]:
        with pytest.raises(j.JsonRpcError) as raised:
            j.parse_body(bad)
        assert raised.value.code == code, bad
    assert j.dumps(j.Request(1, "m")) == b'{"jsonrpc":"2.0","id":1,"method":"m"}'
    assert orjson.loads(j.dumps(j.ErrorResponse(None, j.JsonRpcError(-32022, "v", {"supported": []})))) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32022, "message": "v", "data": {"supported": []}},
    }


def test_sealed_sessions_are_bound_expire_and_can_be_revoked() -> None:
    from datetime import timedelta

    import pytest

    from voidllm.crypto import Keyring
    from voidllm.mcp.gateway.sessions import SESSION_TTL, InvalidSession, SessionSealer, SessionState

    sealer = SessionSealer(Keyring.from_setting("a passphrase of enough length"))
    secret = "upstream-session-7f3c9a1e2b"
    state = SessionState.new(
        key_id="k1", endpoint="/e", protocol_version="2025-06-18", backend={"up": secret}
    )
    token = sealer.seal(state)
    assert all(0x21 <= ord(c) <= 0x7E for c in token)
    assert secret not in token
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert secret.encode() not in raw  # sealed, not merely encoded
    assert sealer.open(token, key_id="k1", endpoint="/e") == state
    # another gateway process with the same encryption key opens it
    assert SessionSealer(Keyring.from_setting("a passphrase of enough length")).open(
        token, key_id="k1", endpoint="/e"
    ).backend == {"up": secret}
    with pytest.raises(InvalidSession):
        SessionSealer(Keyring.from_setting("another passphrase, rotated")).open(
            token, key_id="k1", endpoint="/e"
        )
    for key_id, endpoint, presented in [
        ("k2", "/e", token),
        ("k1", "/other", token),
        ("k1", "/e", token[:-2]),
        ("k1", "/e", "x" * 9000),
        ("k1", "/e", ""),
    ]:
        with pytest.raises(InvalidSession):
            sealer.open(presented, key_id=key_id, endpoint=endpoint)
    with pytest.raises(InvalidSession):
        sealer.open(
            token, key_id="k1", endpoint="/e", now=state.issued_at + SESSION_TTL + timedelta(seconds=1)
        )
    sealer.revoke(state)
    with pytest.raises(InvalidSession):
        sealer.open(token, key_id="k1", endpoint="/e")


async def test_a_trickled_body_is_refused_at_read_timeout(sqlite_dsn: str) -> None:
    """A client that sends half its body and then nothing gets 408 as a JSON-RPC error once
    ``server.proxy.read_timeout`` has passed, instead of holding the request forever."""
    import attrs
    import trio

    config = make_config(sqlite_dsn)
    proxy = attrs.evolve(config.server.proxy, read_timeout=0.5)
    config = attrs.evolve(config, server=attrs.evolve(config.server, proxy=proxy))
    async with run_gateway(config) as gw:
        host, port = httpx.URL(gw.url).host, httpx.URL(gw.url).port
        body = orjson.dumps(_init())
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {gw.api_key()}\r\n"
            f"Accept: {JSON_AND_SSE}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        stream = await trio.open_tcp_stream(host, port or 80)
        async with stream:
            await stream.send_all(head + body[: len(body) // 2])  # and never the rest
            answer = b""
            with trio.fail_after(5):  # bounded: without the deadline the request would never end
                while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    error = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert error["jsonrpc"] == "2.0"
    assert error["error"]["code"] == -32600
    assert "not received within 0.5s" in error["error"]["message"]
