"""Issue 21 points 1 and 3: single sign-on against a real OpenID Provider (``oidc-provider``,
tests/oidc_op.py), driven with httpx like a browser: the global and an organisation's provider,
provisioning with ``default_role``, domain and unverified-email refusals, group sync (additive and exact),
key rotation, state replay and a nonce that does not match, password sign-in turned off with the system
admins' break-glass, and sign-out revoking the session. The provider listens on loopback: an organisation's
provider there needs ``settings.sso.allow_private_issuers`` (without it the sign-in fails with
``provider_error``), the global one does not."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import orjson
import pytest
import sqlalchemy as sa

from tests.admin_tenancy import API, add_user, admin, create_org, create_team, error_of, join_team
from tests.gateway import RunningGateway, make_config, run_gateway
from tests.oidc_op import USERS, OidcOp, open_oidc_provider, sign_in_at_op
from voidllm.auth import passwords
from voidllm.auth.oidc import FlowState
from voidllm.redis.cooldown import MemoryCooldowns
from voidllm.store import tables as t
from voidllm.store.store import open_store

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
SCOPES = "[openid, email, profile, groups]"
ALLOW_PRIVATE = "sso:\n  allow_private_issuers: true"


def global_sso(op: OidcOp, **fields: str) -> str:
    values = {
        "enabled": "true",
        "issuer": op.issuer,
        "client_id": op.client_id,
        "client_secret": op.client_secret,
        "default_org_slug": "default",
        "allowed_domains": "[acme.test]",
        "scopes": SCOPES,
        **fields,
    }
    return "sso:\n" + "".join(f"  {key}: {value}\n" for key, value in values.items())


@asynccontextmanager
async def sso_gateway(
    op: OidcOp, dsn: str, settings: str = "", driver: str = "sqlite", redis: str = ""
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(make_config(dsn, redis, settings=settings, driver=driver)) as gw:
        await op.allow_redirect(gw.url + "/api/v1/auth/oidc/callback")
        yield gw


@asynccontextmanager
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15, follow_redirects=False) as client:
        yield client


async def start(gw: RunningGateway, client: httpx.AsyncClient, **query: str) -> httpx.Response:
    return await client.get(f"{gw.url}{API}/auth/oidc/login", params=query)


async def sso(gw: RunningGateway, client: httpx.AsyncClient, login: str, **query: str) -> httpx.Response:
    """One whole sign-in as ``login``; the gateway's answer to the callback."""
    began = await start(gw, client, email=login, **query)
    assert began.status_code == 302, began.text
    if "/login?" in began.headers["location"]:
        return began
    back = await sign_in_at_op(client, began.headers["location"], login)
    assert str(back).startswith(gw.url + "/api/v1/auth/oidc/callback?"), back
    return await client.get(back)


def sso_error(response: httpx.Response) -> str | None:
    assert response.status_code == 302, response.text
    raw = response.headers["location"]
    assert raw.startswith("../../../../"), raw  # relative: the browser stays under a proxy's sub-path
    location = response.url.join(raw)
    if location.path == "/":
        return None
    assert location.path == "/login", location
    return location.params["sso_error"]


def set_state_cookie(gw: RunningGateway, client: httpx.AsyncClient, value: str) -> None:
    """Put ``value`` into the client's state cookie (replacing the one the gateway set)."""
    host = httpx.URL(gw.url).host
    client.cookies.delete("voidllm_oidc_state")
    client.cookies.set("voidllm_oidc_state", value, domain=host, path="/api/v1/auth/oidc")


async def rows(gw: RunningGateway, query: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await gw.state.services.store.run(
        lambda conn: [dict(r) for r in conn.execute(query).mappings()]
    )
    return found


async def user_by_email(gw: RunningGateway, email: str) -> dict[str, Any] | None:
    found = await rows(gw, sa.select(t.users).where(t.users.c.email == email))
    return found[0] if found else None


async def team_roles(gw: RunningGateway, user_id: str) -> dict[str, tuple[str, str | None]]:
    """The user's teams: slug -> (role, external_group)."""
    tm, mm = t.teams, t.team_memberships
    query = (
        sa.select(tm.c.slug, mm.c.role, tm.c.external_group)
        .select_from(mm.join(tm, tm.c.id == mm.c.team_id))
        .where(mm.c.user_id == user_id)
    )
    return {row["slug"]: (row["role"], row["external_group"]) for row in await rows(gw, query)}


async def test_global_provider_provisions_syncs_groups_and_signs_out(sqlite_dsn: str) -> None:
    async with (
        open_oidc_provider() as op,
        sso_gateway(op, sqlite_dsn, global_sso(op, default_role="team_admin")) as gw,
        browser() as client,
    ):
        assert (await client.get(f"{gw.url}{API}/auth/providers")).json() == {"local": True, "oidc": True}
        began = await start(gw, client, email="alice@acme.test")
        state_cookie = began.headers["set-cookie"]
        assert state_cookie.startswith("voidllm_oidc_state=")
        for part in ("HttpOnly", "SameSite=Lax", "Path=/api/v1/auth/oidc", "Max-Age=600"):
            assert part in state_cookie
        back = await client.get(await sign_in_at_op(client, began.headers["location"], "alice@acme.test"))
        assert sso_error(back) is None
        set_cookies = back.headers.get_list("set-cookie")
        assert any(c.startswith("voidllm_oidc_state=;") and "Max-Age=0" in c for c in set_cookies)
        assert any(c.startswith("voidllm_session=vl_sk_") for c in set_cookies)
        me = await client.get(f"{gw.url}{API}/me")
        assert me.status_code == 200, me.text
        assert me.json()["email"] == "alice@acme.test"
        alice = await user_by_email(gw, "alice@acme.test")
        assert alice is not None
        assert (alice["auth_provider"], alice["external_id"], alice["password_hash"]) == (
            "oidc",
            f"{op.issuer}|alice-sub",
            None,
        )
        members = await rows(
            gw, sa.select(t.org_memberships).where(t.org_memberships.c.user_id == alice["id"])
        )
        assert [row["role"] for row in members] == ["member"]
        assert await team_roles(gw, alice["id"]) == {
            "engineering": ("team_admin", "engineering"),
            "oncall": ("team_admin", "oncall"),
        }
        # additive: a group that is no longer claimed keeps its membership
        await op.set_users([attrs.evolve(USERS[0], groups=("engineering",)), *USERS[1:]])
        async with browser() as again:
            assert sso_error(await sso(gw, again, "alice@acme.test")) is None
        assert set(await team_roles(gw, alice["id"])) == {"engineering", "oncall"}
        # the password of an SSO account cannot be changed, and signing out revokes the session
        csrf = {"X-CSRF-Token": client.cookies["voidllm_csrf"], "Origin": gw.url}
        changed = await client.post(
            f"{gw.url}{API}/me/password",
            headers=csrf,
            json={"current_password": "x" * 12, "new_password": PASSWORD},
        )
        assert (
            error_of(changed, 400)["message"]
            == "password and email changes are not available for SSO accounts"
        )
        session = client.cookies["voidllm_session"]
        assert (await client.post(f"{gw.url}{API}/auth/logout", headers=csrf)).status_code == 204
        gone = await gw.client.get(f"{API}/me", headers={"Cookie": f"voidllm_session={session}"})
        error_of(gone, 401)
    async with open_store("sqlite", sqlite_dsn) as store:
        audit = await store.run(
            lambda conn: [
                dict(r) for r in conn.execute(sa.select(t.audit_logs).order_by(t.audit_logs.c.id)).mappings()
            ]
        )
    logins = [row for row in audit if (row["action"], row["resource_type"]) == ("login", "session")]
    assert [(row["actor_id"], orjson.loads(row["description"])) for row in logins] == [
        (alice["id"], {"method": "oidc"}),
        (alice["id"], {"method": "oidc"}),
    ]
    assert all("code=" not in str(row) and "vl_sk_" not in str(row) for row in audit)


async def test_refusals_domain_unverified_and_no_provider(sqlite_dsn: str) -> None:
    async with open_oidc_provider() as op, sso_gateway(op, sqlite_dsn, global_sso(op)) as gw:
        async with browser() as client:
            assert sso_error(await sso(gw, client, "mallory@elsewhere.test")) == "domain_not_allowed"
        async with browser() as client:
            assert sso_error(await sso(gw, client, "eve@acme.test")) == "email_unverified"
        assert await user_by_email(gw, "mallory@elsewhere.test") is None
        assert await user_by_email(gw, "eve@acme.test") is None
    async with run_gateway(make_config(sqlite_dsn + "-plain")) as gw, browser() as client:
        assert (await client.get(f"{gw.url}{API}/auth/providers")).json() == {"local": True, "oidc": False}
        assert sso_error(await start(gw, client, email="alice@acme.test")) == "no_provider"
        assert (
            sso_error(await client.get(f"{gw.url}{API}/auth/oidc/callback?code=x&state=y"))
            == "state_mismatch"
        )


async def test_not_provisioned_without_auto_provision(sqlite_dsn: str) -> None:
    async with (
        open_oidc_provider() as op,
        sso_gateway(op, sqlite_dsn, global_sso(op, auto_provision="false")) as gw,
        browser() as client,
    ):
        assert sso_error(await sso(gw, client, "alice@acme.test")) == "not_provisioned"


async def test_org_provider_exact_group_sync_keeps_hand_made_teams(db_target: tuple[str, str]) -> None:
    driver, dsn = db_target
    async with open_oidc_provider() as op, sso_gateway(op, dsn, ALLOW_PRIVATE, driver=driver) as gw:
        acme = (await create_org(gw, "acme"))["id"]
        body = {
            "issuer": op.issuer,
            "client_id": op.client_id,
            "client_secret": op.client_secret,
            "scopes": ["openid", "email", "profile", "groups"],
            "allowed_domains": ["acme.test"],
            "group_sync": "exact",
        }
        put = await gw.client.put(f"{API}/orgs/{acme}/sso", headers=admin(gw), json=body)
        assert put.status_code == 200, put.text
        # a hand-made team whose slug a group would take, and one alice is in by hand
        await create_team(gw, acme, "oncall")
        handmade = (await create_team(gw, acme, "handmade"))["id"]
        async with browser() as client:
            assert sso_error(await sso(gw, client, "alice@acme.test")) is None  # picked by the email's domain
            me = (await client.get(f"{gw.url}{API}/me")).json()
        alice = await user_by_email(gw, "alice@acme.test")
        assert alice is not None
        assert me["org_id"] == acme
        await join_team(gw, handmade, alice["id"])
        assert await team_roles(gw, alice["id"]) == {
            "engineering": ("member", "engineering"),
            "oncall-sso": ("member", "oncall"),
            "handmade": ("member", None),
        }
        await op.set_users([attrs.evolve(USERS[0], groups=("engineering",)), *USERS[1:]])
        async with browser() as client:
            assert sso_error(await sso(gw, client, "alice@acme.test", org="acme")) is None
        assert await team_roles(gw, alice["id"]) == {
            "engineering": ("member", "engineering"),
            "handmade": ("member", None),
        }
        # an organisation's provider never signs in an account outside its organisation
        beta = (await create_org(gw, "beta"))["id"]
        await add_user(gw, beta, "bob@acme.test")
        async with browser() as client:
            assert sso_error(await sso(gw, client, "bob@acme.test", org="acme")) == "local_only"


async def test_an_org_provider_on_a_private_address_signs_in_only_with_the_setting(
    sqlite_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """SSRF: an organisation's provider on loopback signs in with ``allow_private_issuers``; once the setting
    is off, its sign-in ends in ``provider_error`` (nothing fetched), while the global provider, on the same
    loopback address, still signs in."""
    async with open_oidc_provider() as op:
        body = {
            "issuer": op.issuer,
            "client_id": op.client_id,
            "client_secret": op.client_secret,
            "allowed_domains": ["acme.test"],
        }
        allowed = global_sso(op) + "  allow_private_issuers: true\n"
        async with sso_gateway(op, sqlite_dsn, allowed) as gw:
            acme = (await create_org(gw, "acme"))["id"]
            put = await gw.client.put(f"{API}/orgs/{acme}/sso", headers=admin(gw), json=body)
            assert put.status_code == 200, put.text
            async with browser() as client:
                assert sso_error(await sso(gw, client, "alice@acme.test", org="acme")) is None
                assert (await client.get(f"{gw.url}{API}/me")).json()["org_id"] == acme
        async with sso_gateway(op, sqlite_dsn, global_sso(op)) as gw:
            async with browser() as client:
                refused = await start(gw, client, email="alice@acme.test", org="acme")
                assert sso_error(refused) == "provider_error"
                assert "voidllm_oidc_state" not in client.cookies
            message = (
                "single sign-on refused: the discovery document URL points at a private, loopback, "
                "link-local or reserved address (allowed with settings.sso.allow_private_issuers: true)"
            )
            assert message in caplog.messages
            async with browser() as client:  # the global provider, same address, no setting needed
                began = await start(gw, client)  # no email: the organisation's provider is not picked
                back = await sign_in_at_op(client, began.headers["location"], "bob@acme.test")
                assert sso_error(await client.get(back)) is None
                assert (await client.get(f"{gw.url}{API}/me")).json()["email"] == "bob@acme.test"


async def test_key_rotation_is_picked_up(sqlite_dsn: str) -> None:
    async with open_oidc_provider() as op, sso_gateway(op, sqlite_dsn, global_sso(op)) as gw:
        async with browser() as client:
            assert sso_error(await sso(gw, client, "alice@acme.test")) is None
        old = op.kid
        assert await op.rotate() != old
        async with browser() as client:
            assert sso_error(await sso(gw, client, "bob@acme.test")) is None


@pytest.mark.parametrize("shared", [False, pytest.param(True, marks=pytest.mark.redis)])
async def test_state_replay_and_nonce_mismatch_are_refused(
    sqlite_dsn: str, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest, shared: bool
) -> None:
    redis = ""
    if shared:  # the used states are keys in Redis, so every process would refuse a replay
        url = request.getfixturevalue("redis_url")
        redis = f"redis:\n  enabled: true\n  url: {url}\n  key_prefix: 'sso-{time.time_ns()}:'\n"
    async with open_oidc_provider() as op, sso_gateway(op, sqlite_dsn, global_sso(op), redis=redis) as gw:
        assert isinstance(gw.state.services.cooldowns, MemoryCooldowns) is not shared
        keyring = gw.state.services.keyring
        async with browser() as client:
            began = await start(gw, client, email="alice@acme.test")
            cookie = client.cookies["voidllm_oidc_state"]
            back = await sign_in_at_op(client, began.headers["location"], "alice@acme.test")
            assert sso_error(await client.get(back)) is None
        async with browser() as replayer:  # the same callback with the same (captured) cookie
            set_state_cookie(gw, replayer, cookie)
            replayed = await replayer.get(back)
            assert f"voidllm_oidc_state={cookie}" in replayed.request.headers["cookie"]
            assert sso_error(replayed) == "state_mismatch"
        async with browser() as client:  # no cookie at all
            assert sso_error(await client.get(back)) == "state_mismatch"
        async with browser() as client:  # the right state, but the cookie's nonce is not the token's
            began = await start(gw, client, email="bob@acme.test")
            flow = FlowState.open(keyring, client.cookies["voidllm_oidc_state"], now=time.time())
            assert flow is not None
            forged = attrs.evolve(flow, nonce="another-nonce").seal(keyring)
            back = await sign_in_at_op(client, began.headers["location"], "bob@acme.test")
            set_state_cookie(gw, client, forged)
            mismatch = await client.get(back)
            assert mismatch.request.headers["cookie"].count("voidllm_oidc_state=") == 1
            assert sso_error(mismatch) == "token_invalid"
            assert "single sign-on refused: the ID token has a wrong nonce" in caplog.messages
        async with browser() as client:  # a state the cookie does not hold
            began = await start(gw, client, email="bob@acme.test")
            back = await sign_in_at_op(client, began.headers["location"], "bob@acme.test")
            tampered = back.copy_set_param("state", "not-the-state")
            assert sso_error(await client.get(tampered)) == "state_mismatch"


async def test_local_login_off_refuses_passwords_except_system_admins(sqlite_dsn: str) -> None:
    async with open_oidc_provider() as op, sso_gateway(op, sqlite_dsn, ALLOW_PRIVATE) as gw:
        acme = (await create_org(gw, "acme"))["id"]
        hashed = passwords.hash_password(PASSWORD)
        await add_user(gw, acme, "worker@acme.test", password_hash=hashed)
        await add_user(gw, acme, "root@acme.test", system_admin=True, password_hash=hashed)
        body = {"issuer": op.issuer, "client_id": op.client_id, "client_secret": "", "local_login": False}
        assert (
            await gw.client.put(f"{API}/orgs/{acme}/sso", headers=admin(gw), json=body)
        ).status_code == 200

        async def login(email: str) -> httpx.Response:
            return await gw.client.post(f"{API}/auth/login", json={"email": email, "password": PASSWORD})

        refused = error_of(await login("worker@acme.test"), 403)
        assert (refused["code"], refused["message"]) == (
            "sso_required",
            "this organization signs in with SSO",
        )
        assert (await login("root@acme.test")).status_code == 200  # break-glass
        error_of(
            await gw.client.post(f"{API}/auth/login", json={"email": "worker@acme.test", "password": "no"}),
            401,
        )
        body["local_login"] = True
        assert (
            await gw.client.put(f"{API}/orgs/{acme}/sso", headers=admin(gw), json=body)
        ).status_code == 200
        assert (await login("worker@acme.test")).status_code == 200
        assert (await gw.client.get(f"{API}/auth/providers")).json() == {"local": True, "oidc": True}
