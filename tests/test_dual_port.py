"""Dual-port mode (issue 20 point 4, ``server.admin``): a real gateway in-process with two ports.

The proxy port serves ``/v1`` and health only; the admin port serves the admin API, the MCP endpoints, the
playground, the API docs and the UI, and health, but not ``/v1``. A path a port does not serve is 404 in the
envelope of the endpoint it names. TLS on the admin port, with a self-signed certificate made here and a
client that trusts only it. The strict settings: the admin port apart from the proxy port, TLS only with it,
cert and key together and loadable. ``voidllm serve`` with two workers and both ports:
tests/test_dual_port_process.py.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.gateway import make_config, model_yaml, run_gateway
from tests.process import free_port
from tests.selfsigned import write_self_signed
from tests.test_browser_sessions import Browser, credentials, set_cookies
from tests.test_ui_serving import fake_build
from voidllm.config import Config, ConfigError, parse_config
from voidllm.config.loader import with_listen_overrides
from voidllm.config.tls import check_admin_tls
from voidllm.server import ListenError, open_listeners
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream

BASE = "settings:\n  encryption_key: sixteen-chars-or-more\n"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hello"}]}
MCP_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-03-26",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
HEALTH = ("/healthz", "/health", "/readyz", "/metrics")


@pytest.fixture
async def mock() -> AsyncIterator[MockUpstream]:
    async with open_mock_upstream(Behaviour()) as upstream:
        yield upstream


def dual_port_yaml(mock: MockUpstream, admin: str) -> str:
    """``server.admin`` lines (``admin``, indented under it) and one model."""
    lines = "".join(f"\n    {line}" for line in admin.splitlines() if line)
    return f"server:\n  admin:{lines}\nmodels:" + model_yaml("m", mock.base_url)


def assert_not_found(response: httpx.Response) -> None:
    """404 in our envelope, with the request id."""
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["type"] == "not_found_error"
    assert error["request_id"] == response.headers["x-request-id"]


async def test_each_port_serves_its_own_paths(sqlite_dsn: str, mock: MockUpstream, tmp_path: Path) -> None:
    port = free_port()
    build = fake_build(tmp_path / "dist")
    config = make_config(sqlite_dsn, dual_port_yaml(mock, f"port: {port}"), settings=f'ui_dir: "{build}"')
    async with run_gateway(config) as gw, httpx.AsyncClient(base_url=gw.running.admin_binds[0]) as admin:
        assert gw.running.admin_binds == [f"http://127.0.0.1:{port}"]
        key = {"Authorization": f"Bearer {gw.api_key()}"}
        public = gw.client

        # the proxy port: /v1 and health
        assert (await public.post("/v1/chat/completions", json=CHAT, headers=key)).status_code == 200
        assert (await public.get("/v1/models", headers=key)).status_code == 200
        for path in HEALTH:
            assert (await public.get(path)).status_code == 200, path
            assert (await admin.get(path)).status_code == 200, path
        for method, path in [
            ("GET", "/"),
            ("GET", "/keys/abc"),
            ("GET", "/favicon.svg"),
            ("GET", "/api/v1/me"),
            ("POST", "/api/v1/auth/login"),
            ("GET", "/api/docs"),
            ("GET", "/api/v1/playground/models"),
            ("GET", "/api"),
        ]:
            assert_not_found(await public.request(method, path, headers=key))
        refused = await public.post(
            "/api/v1/mcp/voidllm", json=MCP_INITIALIZE, headers={**key, **MCP_HEADERS}
        )
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == -32600  # the MCP endpoints' envelope: JSON-RPC
        assert refused.json()["error"]["data"]["request_id"] == refused.headers["x-request-id"]

        # the admin port: the admin API, the UI, the MCP endpoints, the playground and the docs
        me = await admin.get("/api/v1/me", headers=key)
        assert me.status_code == 200
        assert me.json()["email"] == "admin@voidllm.local"
        ui = await admin.get("/keys/abc")
        assert ui.status_code == 200
        assert "text/html" in ui.headers["content-type"]
        assert (await admin.get("/favicon.svg")).status_code == 200
        initialized = await admin.post(
            "/api/v1/mcp/voidllm", json=MCP_INITIALIZE, headers={**key, **MCP_HEADERS}
        )
        assert initialized.status_code == 200
        assert initialized.headers["mcp-session-id"]
        assert (await admin.get("/api/v1/playground/models", headers=key)).status_code == 200
        assert (await admin.get("/api/docs")).status_code == 200
        for method, path in [("POST", "/v1/chat/completions"), ("GET", "/v1/models"), ("GET", "/v1")]:
            assert_not_found(await admin.request(method, path, json=CHAT, headers=key))
        messages = await admin.post("/v1/messages", json={**CHAT, "max_tokens": 8}, headers=key)
        assert messages.status_code == 404  # in Anthropic's envelope on its path
        assert messages.json()["error"]["type"] == "not_found_error"
        assert messages.json()["request_id"] == messages.headers["request-id"]
        chats = [r for r in mock.requests if r.path.endswith("/chat/completions")]
        assert len(chats) == 1  # only the proxy port's chat reached the upstream


async def test_the_admin_port_over_tls(sqlite_dsn: str, mock: MockUpstream, tmp_path: Path) -> None:
    files = write_self_signed(tmp_path)
    port = free_port()
    admin_yaml = f"port: {port}\ntls:\n  enabled: true\n  cert: {files.cert}\n  key: {files.key}"
    async with (
        run_gateway(make_config(sqlite_dsn, dual_port_yaml(mock, admin_yaml))) as gw,
        httpx.AsyncClient(verify=files.client_context(), timeout=10) as client,
    ):
        url = gw.running.admin_binds[0]
        assert url == f"https://127.0.0.1:{port}"
        key = {"Authorization": f"Bearer {gw.api_key()}"}
        me = await client.get(f"{url}/api/v1/me", headers=key)
        assert me.status_code == 200
        assert me.http_version == "HTTP/1.1"
        assert (await client.get(f"{url}/readyz")).status_code == 200
        assert_not_found(await client.post(f"{url}/v1/chat/completions", json=CHAT, headers=key))
        # the proxy port stays plain HTTP
        assert (await gw.client.post("/v1/chat/completions", json=CHAT, headers=key)).status_code == 200
        with pytest.raises(httpx.TransportError):  # plain HTTP to the TLS port gets no HTTP answer
            await client.get(f"http://127.0.0.1:{port}/healthz")
        async with httpx.AsyncClient(timeout=10) as untrusting:
            with pytest.raises(httpx.ConnectError):  # a client that does not trust the certificate
                await untrusting.get(f"{url}/healthz")
        # the UI's sign-in over HTTPS: Secure cookies, and the https:// origin passes the CSRF check
        signed_in = await client.post(f"{url}/api/v1/auth/session", json=credentials(gw))
        assert signed_in.status_code == 200
        cookies = set_cookies(signed_in)
        assert all("Secure" in cookies[name] for name in ("voidllm_session", "voidllm_csrf"))
        browser = Browser(client, {name: parts[0] for name, parts in cookies.items()}, url)
        assert (await browser.request("GET", f"{url}/api/v1/me")).status_code == 200
        foreign = await browser.request(
            "POST", f"{url}/api/v1/auth/logout", origin=f"http://127.0.0.1:{port}"
        )
        assert foreign.status_code == 403
        assert (await browser.request("POST", f"{url}/api/v1/auth/logout")).status_code == 204


def test_an_admin_port_in_use_is_refused_before_anything_runs() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = parse_config(
            BASE + f"server:\n  proxy: {{host: 127.0.0.1, port: 0}}\n  admin: {{port: {port}}}\n", environ={}
        )
        with pytest.raises(ListenError, match=rf"cannot listen on 127.0.0.1:{port}: .*server.admin.port"):
            open_listeners(config)


def test_listeners_bind_both_ports_and_the_admin_host() -> None:
    port = free_port()
    text = (
        BASE + f"server:\n  proxy: {{host: 127.0.0.1, port: 0}}\n  admin: {{host: 127.0.0.2, port: {port}}}\n"
    )
    listeners = open_listeners(parse_config(text, environ={}))
    try:
        assert listeners.proxy is not None
        assert listeners.admin is not None
        assert [s.getsockname() for s in listeners.admin.insecure_sockets] == [("127.0.0.2", port)]
        assert listeners.proxy.insecure_sockets[0].getsockname()[0] == "127.0.0.1"
    finally:
        listeners.close()
    single = open_listeners(parse_config(BASE + "server:\n  proxy: {host: 127.0.0.1, port: 0}\n", environ={}))
    single.close()
    assert single.admin is None


@pytest.mark.parametrize(
    ("server_yaml", "problem"),
    [
        (
            "proxy: {port: 9000}\n  admin: {port: 9000}",
            "server.admin.port: must differ from server.proxy.port",
        ),
        (
            "admin: {tls: {enabled: true, cert: a.pem, key: b.pem}}",
            "server.admin.tls.enabled: applies only to a separate admin port: set server.admin.port",
        ),
        (
            "admin: {host: 127.0.0.1}",
            "server.admin.host: applies only to a separate admin port: set server.admin.port",
        ),
        (
            "admin: {port: 9001, tls: {cert: a.pem}}",
            "server.admin.tls.enabled: must be true when cert or key is set (or remove them)",
        ),
        (
            "admin: {port: 9001, tls: {enabled: true, cert: a.pem}}",
            "server.admin.tls.key: required when tls is enabled",
        ),
        ("admin: {port: 70000}", "server.admin.port: must be between 0 and 65535 (got 70000)"),
        ("admin: {port: 9001, tls: {enabled: yes please}}", "server.admin.tls.enabled"),
        ("admin: {prot: 9001}", "server.admin.prot"),
    ],
)
def test_admin_settings_are_strict(server_yaml: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + f"server:\n  {server_yaml}\n", environ={})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(problem), caught.value.problems


def test_the_proxy_port_override_cannot_take_the_admin_port() -> None:
    config = parse_config(BASE + "server:\n  admin: {port: 9001}\n", environ={})
    with pytest.raises(ConfigError) as caught:
        with_listen_overrides(config, host=None, port="9001", environ={})
    assert caught.value.problems == ("--port: must differ from server.admin.port (9001)",)
    assert with_listen_overrides(config, host=None, port="0", environ={}).server.proxy.port == 0


def test_tls_files_must_load(tmp_path: Path) -> None:
    for name in ("other", "locked"):
        (tmp_path / name).mkdir()
    good = write_self_signed(tmp_path)
    other = write_self_signed(tmp_path / "other")
    locked = write_self_signed(tmp_path / "locked", passphrase=b"a passphrase")

    def config(cert: Path, key: Path) -> Config:
        tls = f"{{enabled: true, cert: '{cert}', key: '{key}'}}"
        return parse_config(BASE + f"server:\n  admin: {{port: 9001, tls: {tls}}}\n", environ={})

    check_admin_tls(config(good.cert, good.key))
    missing = tmp_path / "missing.crt"
    cases = [
        (
            config(missing, good.key),
            f"server.admin.tls.cert: cannot read {missing}: No such file or directory",
        ),
        (config(good.cert, tmp_path), f"server.admin.tls.key: cannot read {tmp_path}: Is a directory"),
        (config(good.cert, other.key), "server.admin.tls: cannot load"),  # not the certificate's key
        (config(good.key, good.key), "server.admin.tls: cannot load"),  # not a certificate
        (config(locked.cert, locked.key), "server.admin.tls: cannot load"),  # encrypted: never a prompt
    ]
    for broken, expected in cases:
        with pytest.raises(ConfigError) as caught:
            check_admin_tls(broken)
        assert len(caught.value.problems) == 1
        assert caught.value.problems[0].startswith(expected), caught.value.problems
