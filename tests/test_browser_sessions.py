"""Issue 15 point 3: browser sessions a security review accepts (:mod:`voidllm.web.browser`).

Against a real gateway: ``POST /api/v1/auth/session`` puts the session key into an ``HttpOnly``,
``SameSite=Strict`` cookie (``Secure`` over https, which a proxy may only tell when it is trusted) and never
into the body; the cookie authenticates ``/api/v1`` when there is no ``Authorization`` header; state-changing
cookie requests need the CSRF token (double submit, bound to the session) and a same-origin ``Origin``;
logout and "sign out everywhere" revoke on the server and clear the cookies; Bearer clients are unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import attrs
import httpx
import pytest
import sqlalchemy as sa

from tests.gateway import RunningGateway, make_config, run_gateway
from voidllm.config import ConfigError, parse_config
from voidllm.store import tables as t
from voidllm.web.browser import BrowserPolicy, csrf_token

API = "/api/v1"


@pytest.fixture
async def gw(sqlite_dsn: str) -> AsyncIterator[RunningGateway]:
    async with run_gateway(make_config(sqlite_dsn)) as gateway:
        yield gateway


def credentials(gw: RunningGateway) -> dict[str, str]:
    """The bootstrap admin's email and password, from the banner."""
    found = {}
    for line in gw.banner.getvalue().splitlines():
        for label in ("Email:", "Password:"):
            if label in line:
                found[label[:-1].lower()] = line.split(label)[1].strip()
    return found


def set_cookies(response: httpx.Response) -> dict[str, list[str]]:
    """``Set-Cookie`` by cookie name: its value first, then its attributes."""
    out = {}
    for line in response.headers.get_list("set-cookie"):
        parts = [part.strip() for part in line.split(";")]
        name, _, value = parts[0].partition("=")
        out[name] = [value, *parts[1:]]
    return out


@attrs.define
class Browser:
    """A browser's view: its cookies (sent by hand; the client keeps no jar) and its origin."""

    client: httpx.AsyncClient
    cookies: dict[str, str]
    origin: str

    @property
    def csrf(self) -> str:
        return self.cookies["voidllm_csrf"]

    async def request(
        self,
        method: str,
        path: str,
        *,
        csrf: str | None = "cookie",
        origin: str | None = "own",
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        if csrf is not None:
            headers["X-CSRF-Token"] = self.csrf if csrf == "cookie" else csrf
        if origin is not None:
            headers["Origin"] = self.origin if origin == "own" else origin
        return await self.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
async def client(gw: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    no_jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(base_url=gw.url, cookies=no_jar, timeout=10) as c:
        yield c


async def sign_in(
    gw: RunningGateway, client: httpx.AsyncClient, **headers: str
) -> tuple[Browser, httpx.Response]:
    response = await client.post(f"{API}/auth/session", json=credentials(gw), headers=headers)
    assert response.status_code == 200, response.text
    cookies = {name: parts[0] for name, parts in set_cookies(response).items()}
    return Browser(client, cookies, gw.url), response


async def default_org(gw: RunningGateway) -> str:
    me = await gw.client.get(f"{API}/me", headers={"Authorization": f"Bearer {gw.api_key()}"})
    return str(me.json()["org_id"])


async def team_names(gw: RunningGateway, org: str) -> list[str]:
    headers = {"Authorization": f"Bearer {gw.api_key()}"}
    listed = await gw.client.get(f"{API}/orgs/{org}/teams", headers=headers)
    return [team["name"] for team in listed.json()["data"]]


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return str(body["error"]["message"])


# -- sign-in ----------------------------------------------------------------------------------------------


async def test_sign_in_sets_http_only_strict_cookies_and_puts_no_key_in_the_body(
    gw: RunningGateway, client: httpx.AsyncClient
) -> None:
    browser, response = await sign_in(gw, client)
    body = response.json()
    assert set(body) == {"user", "expires_at", "csrf_token"}
    assert body["user"]["email"] == credentials(gw)["email"]
    assert body["user"]["is_system_admin"] is True
    assert "vl_sk_" not in response.text
    assert "token" not in body
    cookies = set_cookies(response)
    session, csrf = cookies["voidllm_session"], cookies["voidllm_csrf"]
    assert session[0].startswith("vl_sk_")
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(session[1:])
    assert "Secure" not in session
    assert {"SameSite=Strict", "Path=/"} <= set(csrf[1:])
    assert "HttpOnly" not in csrf
    assert "Secure" not in csrf
    assert csrf[0] == body["csrf_token"] == browser.csrf
    max_age = int(next(part for part in session if part.startswith("Max-Age=")).split("=")[1])
    assert 86000 < max_age <= 86400, "the cookie lives as long as the session (24 h)"
    assert response.headers["cache-control"] == "no-store"


async def test_sign_in_errors_are_those_of_login(gw: RunningGateway, client: httpx.AsyncClient) -> None:
    email = credentials(gw)["email"]
    wrong = await client.post(f"{API}/auth/session", json={"email": email, "password": "nope"})
    assert error(wrong, 401, "unauthorized") == "invalid email or password"
    assert "set-cookie" not in wrong.headers
    error(await client.post(f"{API}/auth/session", json={"email": email}), 400, "bad_request")
    typo = await client.post(f"{API}/auth/session", json={"email": email, "password": "x", "pasword": "y"})
    assert "unknown field 'pasword'" in error(typo, 400, "validation_error")
    for _ in range(4):  # five failures lock the email
        await client.post(f"{API}/auth/session", json={"email": email, "password": "nope"})
    locked = await client.post(f"{API}/auth/session", json=credentials(gw))
    error(locked, 429, "too_many_requests")
    retry_after = locked.json()["error"]["retry_after"]
    assert isinstance(retry_after, int)
    assert retry_after > 0
    assert locked.headers["retry-after"] == str(retry_after)
    login = await client.post(f"{API}/auth/login", json=credentials(gw))
    assert login.json()["error"]["retry_after"] > 0, "the same answer on /auth/login"


async def test_sign_in_from_a_foreign_origin_is_refused(
    gw: RunningGateway, client: httpx.AsyncClient
) -> None:
    refused = await client.post(
        f"{API}/auth/session", json=credentials(gw), headers={"Origin": "https://evil.example"}
    )
    assert "cross-origin" in error(refused, 403, "csrf_failed")
    assert "set-cookie" not in refused.headers
    await sign_in(gw, client, Origin=gw.url)


# -- the cookie authenticates, CSRF guards state changes ---------------------------------------------------


async def test_the_cookie_authenticates_the_api_without_authorization(
    gw: RunningGateway, client: httpx.AsyncClient
) -> None:
    browser, _ = await sign_in(gw, client)
    me = await browser.request("GET", f"{API}/me", csrf=None, origin=None)
    assert me.status_code == 200
    assert me.json()["email"] == credentials(gw)["email"]
    sessions = await browser.request("GET", f"{API}/auth/sessions", csrf=None, origin=None)
    assert [s["current"] for s in sessions.json()["data"]] == [True]
    error(await client.get(f"{API}/me"), 401, "unauthorized")


async def test_state_changing_cookie_requests_need_the_csrf_token(
    gw: RunningGateway, client: httpx.AsyncClient
) -> None:
    browser, _ = await sign_in(gw, client)
    other, _ = await sign_in(gw, client)
    org = await default_org(gw)
    path = f"{API}/orgs/{org}/teams"
    missing = await browser.request("POST", path, csrf=None, json={"name": "t1"})
    assert "X-CSRF-Token" in error(missing, 403, "csrf_failed")
    error(await browser.request("POST", path, csrf="forged", json={"name": "t2"}), 403, "csrf_failed")
    # another session's token, sent as both cookie and header: a planted pair is not this session's
    planted = Browser(client, {**browser.cookies, "voidllm_csrf": other.csrf}, gw.url)
    error(await planted.request("POST", path, json={"name": "t3"}), 403, "csrf_failed")
    no_cookie = Browser(client, {"voidllm_session": browser.cookies["voidllm_session"]}, gw.url)
    error(await no_cookie.request("POST", path, csrf=browser.csrf, json={"name": "t4"}), 403, "csrf_failed")
    assert await team_names(gw, org) == []
    made = await browser.request("POST", path, json={"name": "t5"})
    assert made.status_code == 201, made.text
    without_origin = await browser.request("POST", path, origin=None, json={"name": "t6"})
    assert without_origin.status_code == 201, "the Origin is checked when a browser sends one"
    assert sorted(await team_names(gw, org)) == ["t5", "t6"]
    assert browser.csrf == csrf_token(gw.state.keys.hmac_secret, browser.cookies["voidllm_session"])


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://localhost:1", "https://127.0.0.1"]
)
async def test_a_foreign_origin_is_refused_even_with_the_token(
    gw: RunningGateway, client: httpx.AsyncClient, origin: str
) -> None:
    browser, _ = await sign_in(gw, client)
    org = await default_org(gw)
    refused = await browser.request("POST", f"{API}/orgs/{org}/teams", origin=origin, json={"name": "x"})
    assert "cross-origin" in error(refused, 403, "csrf_failed")
    assert await team_names(gw, org) == []


async def test_bearer_clients_need_no_csrf_and_win_over_the_cookie(
    gw: RunningGateway, client: httpx.AsyncClient
) -> None:
    browser, _ = await sign_in(gw, client)
    org = await default_org(gw)
    bearer = {"Authorization": f"Bearer {gw.api_key()}"}
    made = await browser.request(
        "POST",
        f"{API}/orgs/{org}/teams",
        csrf=None,
        origin="https://evil.example",
        headers=bearer,
        json={"name": "by-key"},
    )
    assert made.status_code == 201, "an explicit key is no browser's ambient credential"
    sessions = await browser.request("GET", f"{API}/auth/sessions", headers=bearer)
    assert [s["current"] for s in sessions.json()["data"]] == [False], "the key acted, not the cookie"
    broken = await browser.request("GET", f"{API}/me", headers={"Authorization": "Bearer vl_uk_nope"})
    error(broken, 401, "unauthorized")


async def test_a_cookie_holding_an_api_key_is_refused(gw: RunningGateway, client: httpx.AsyncClient) -> None:
    smuggled = Browser(client, {"voidllm_session": gw.api_key()}, gw.url)
    assert "session" in error(await smuggled.request("GET", f"{API}/me", csrf=None), 401, "unauthorized")


async def test_public_routes_ignore_a_stale_cookie(gw: RunningGateway, client: httpx.AsyncClient) -> None:
    stale = Browser(client, {"voidllm_session": "vl_sk_" + "x" * 40, "voidllm_csrf": "x"}, gw.url)
    providers = await stale.request("GET", f"{API}/auth/providers")
    assert providers.json() == {"local": True, "oidc": False}
    again = await stale.request("POST", f"{API}/auth/session", csrf=None, json=credentials(gw))
    assert again.status_code == 200, "signing in again needs no token of the old session"


# -- Secure and proxies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("trusted", "secure"), [("[127.0.0.1]", True), ("[10.0.0.0/8, '::1']", False)])
async def test_secure_cookies_over_https_told_by_a_trusted_proxy_only(
    sqlite_dsn: str, trusted: str, secure: bool
) -> None:
    async with run_gateway(make_config(sqlite_dsn, settings=f"trusted_proxies: {trusted}")) as gw:
        no_jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        async with httpx.AsyncClient(base_url=gw.url, cookies=no_jar, timeout=10) as client:
            proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "gateway.example"}
            plain, _ = await sign_in(gw, client)
            browser, response = await sign_in(gw, client, **proxied)
            cookies = set_cookies(response)
            assert ("Secure" in cookies["voidllm_session"]) is secure
            assert ("Secure" in cookies["voidllm_csrf"]) is secure
            org = await default_org(gw)
            browser.origin = "https://gateway.example"
            path = f"{API}/orgs/{org}/teams"
            made = await browser.request("POST", path, headers=proxied, json={"name": "proxied"})
            if secure:
                assert made.status_code == 201, made.text
            else:
                assert "settings.trusted_proxies" in error(made, 403, "csrf_failed")
            logout = await plain.request("POST", f"{API}/auth/logout")
            assert all("Secure" not in parts for parts in set_cookies(logout).values())


def test_the_policy_believes_forwarded_headers_from_trusted_proxies_only() -> None:
    def scope(client: str, scheme: str = "http", host: str = "gw.local:8080", **headers: str) -> Any:
        raw = [(b"host", host.encode())]
        raw += [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
        return {"scheme": scheme, "client": (client, 5000), "headers": raw, "method": "POST"}

    policy = BrowserPolicy.from_settings(["10.0.0.0/8", "fd00::/8"])
    assert policy.is_https(scope("203.0.113.9", "https"))
    assert policy.origin(scope("203.0.113.9", "https")) == "https://gw.local:8080"
    assert not policy.is_https(scope("203.0.113.9", X_Forwarded_Proto="https"))
    assert policy.is_https(scope("10.1.2.3", X_Forwarded_Proto="https, http"))
    assert policy.is_https(scope("fd00::1", X_Forwarded_Proto="HTTPS"))
    forwarded = scope("10.1.2.3", X_Forwarded_Proto="https", X_Forwarded_Host="ui.example")
    assert policy.origin(forwarded) == "https://ui.example"
    assert policy.origin(scope("203.0.113.9", X_Forwarded_Host="evil.example")) == "http://gw.local:8080"
    origin = "https://ui.example"
    behind = scope("10.1.2.3", "http", "ui.example:443", X_Forwarded_Proto="https", Origin=origin)
    policy.check_origin(behind)
    policy.check_origin(scope("203.0.113.9", "http", "gw.local:80", Origin="http://GW.local/"))
    assert not BrowserPolicy().is_https(scope("127.0.0.1", X_Forwarded_Proto="https"))


def test_the_client_address_is_forwarded_by_trusted_proxies_only() -> None:
    def scope(client: str | None, *forwarded_for: str) -> Any:
        raw = [(b"x-forwarded-for", value.encode()) for value in forwarded_for]
        return {"client": (client, 5000) if client else None, "headers": raw}

    policy = BrowserPolicy.from_settings(["10.0.0.0/8", "fd00::/8"])
    assert policy.client_address(scope("203.0.113.9")) == "203.0.113.9"
    assert policy.client_address(scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9", "untrusted peer"
    assert policy.client_address(scope("10.0.0.1", "198.51.100.1")) == "198.51.100.1"
    chain = "192.0.2.66, 198.51.100.1, 10.2.0.1, fd00::7"
    assert policy.client_address(scope("10.0.0.1", chain)) == "198.51.100.1", "right-most untrusted"
    assert policy.client_address(scope("10.0.0.1", "192.0.2.66, 198.51.100.1", "10.2.0.1")) == "198.51.100.1"
    assert policy.client_address(scope("fd00::1", " 2001:db8::5 ")) == "2001:db8::5"
    assert policy.client_address(scope("10.0.0.1", "10.2.0.1, 10.3.0.1")) == "10.2.0.1", "all trusted"
    assert policy.client_address(scope("10.0.0.1", "198.51.100.1, unknown, 10.2.0.1")) == "10.2.0.1"
    assert policy.client_address(scope("10.0.0.1")) == "10.0.0.1", "a trusted peer sending no header"
    assert policy.client_address(scope(None, "198.51.100.1")) is None
    assert BrowserPolicy().client_address(scope("127.0.0.1", "198.51.100.1")) == "127.0.0.1"


def test_trusted_proxies_and_ui_dir_are_strict_settings() -> None:
    text = "settings:\n  encryption_key: 0123456789abcdef0123\n  trusted_proxies: [10.0.0.0/8, proxy.local]\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text + "  ui_dir: /nonexistent/dist\n", environ={})
    assert info.value.problems == (
        "settings.trusted_proxies: 'proxy.local' is not an IP address or network (e.g. 10.0.0.0/8 or ::1)",
        "settings.ui_dir: must be a directory holding index.html (a built UI, e.g. ui/dist)",
    )


# -- signing out ------------------------------------------------------------------------------------------


def assert_cleared(response: httpx.Response) -> None:
    cookies = set_cookies(response)
    for name in ("voidllm_session", "voidllm_csrf"):
        assert cookies[name][0] == "", cookies
        assert "Max-Age=0" in cookies[name], cookies


async def session_row(gw: RunningGateway, key_hash: str) -> Any:
    k = t.api_keys
    query = sa.select(k.c.deleted_at).where(k.c.key_hash == key_hash)
    return await gw.state.services.store.run(lambda conn: conn.execute(query).scalar_one())


async def test_logout_revokes_the_session_and_clears_the_cookies(
    gw: RunningGateway, client: httpx.AsyncClient
) -> None:
    browser, _ = await sign_in(gw, client)
    error(await browser.request("POST", f"{API}/auth/logout", csrf=None), 403, "csrf_failed")
    assert (await browser.request("GET", f"{API}/me")).status_code == 200, "a refused logout changes nothing"
    logout = await browser.request("POST", f"{API}/auth/logout")
    assert logout.status_code == 204
    assert logout.content == b""
    assert_cleared(logout)
    error(await browser.request("GET", f"{API}/me"), 401, "unauthorized")  # the old cookie, replayed
    key_hash = gw.state.services.keyring.hash_key(browser.cookies["voidllm_session"])
    assert await session_row(gw, key_hash) is not None, "revoked in the store, not only forgotten"


async def test_sign_out_everywhere_ends_every_session_and_keeps_api_keys(
    gw: RunningGateway, client: httpx.AsyncClient
) -> None:
    first, _ = await sign_in(gw, client)
    second, _ = await sign_in(gw, client)
    token = (await client.post(f"{API}/auth/login", json=credentials(gw))).json()["token"]
    listed = await first.request("GET", f"{API}/auth/sessions")
    assert len(listed.json()["data"]) == 3
    error(await first.request("DELETE", f"{API}/auth/sessions", csrf=None), 403, "csrf_failed")
    everywhere = await first.request("DELETE", f"{API}/auth/sessions")
    assert everywhere.status_code == 204
    assert_cleared(everywhere)
    for browser in (first, second):
        error(await browser.request("GET", f"{API}/me"), 401, "unauthorized")
    error(await client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"}), 401, "unauthorized")
    kept = await client.get(f"{API}/me", headers={"Authorization": f"Bearer {gw.api_key()}"})
    assert kept.status_code == 200, "API keys are not sessions"


async def test_ending_one_session_by_id_from_the_browser(
    gw: RunningGateway, client: httpx.AsyncClient
) -> None:
    first, _ = await sign_in(gw, client)
    second, _ = await sign_in(gw, client)
    listed = (await first.request("GET", f"{API}/auth/sessions")).json()["data"]
    (other,) = [s for s in listed if not s["current"]]
    ended = await first.request("DELETE", f"{API}/auth/sessions/{other['id']}")
    assert ended.status_code == 204
    error(await second.request("GET", f"{API}/me"), 401, "unauthorized")
    assert (await first.request("GET", f"{API}/me")).status_code == 200
