"""Login, sessions, logout, /me and password changes through a real gateway (docs/reference/behaviour.md 1.5,
1.6 "Self"). Which organisation a sign-in opens is tested on :func:`voidllm.admin.sessions.login` directly
(``tests/admin_fixtures.py``), with the 409's envelope kept on the gateway."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import httpx
import pytest
import sqlalchemy as sa
from argon2.profiles import CHEAPEST

from tests.admin_fixtures import AdminWorld
from tests.gateway import RunningGateway, make_config, run_gateway
from voidllm.admin import sessions
from voidllm.auth import passwords
from voidllm.auth.sessions import MAX_LIVE_SESSIONS, hash_password_off_loop
from voidllm.auth.throttle import LoginThrottle
from voidllm.errors import AuthenticationError, ConflictError, PermissionDeniedError
from voidllm.store import tables as t
from voidllm.store.ids import new_id

MODELS = """
models:
  - name: gpt-4o
    provider: openai
    base_url: http://127.0.0.1:9/v1
  - name: embed-small
    provider: vllm
    type: embedding
    base_url: http://127.0.0.1:9/v1
"""


@pytest.fixture
async def gw(db_target: tuple[str, str]) -> AsyncIterator[RunningGateway]:
    driver, dsn = db_target
    async with run_gateway(make_config(dsn, MODELS, driver=driver)) as gateway:
        yield gateway


def admin_password(gw: RunningGateway) -> str:
    for line in gw.banner.getvalue().splitlines():
        if "Password:" in line:
            return line.split("Password:")[1].strip()
    raise AssertionError("no bootstrap banner")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@attrs.frozen
class As:
    """Requests to ``/api/v1`` made with one key."""

    gw: RunningGateway
    key: str

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.gw.client.get(f"/api/v1{path}", headers=bearer(self.key), **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.gw.client.post(f"/api/v1{path}", headers=bearer(self.key), **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.gw.client.patch(f"/api/v1{path}", headers=bearer(self.key), **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.gw.client.delete(f"/api/v1{path}", headers=bearer(self.key), **kwargs)


def envelope(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return str(body["error"]["message"])


async def login(gw: RunningGateway, email: str, password: str) -> httpx.Response:
    return await gw.client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def admin_session(gw: RunningGateway) -> str:
    response = await login(gw, "admin@voidllm.local", admin_password(gw))
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def test_login_returns_a_session_key_that_authenticates(gw: RunningGateway) -> None:
    before = datetime.now(UTC)
    response = await login(gw, " Admin@VoidLLM.local ", admin_password(gw))
    assert response.status_code == 200
    body = response.json()
    token = body["token"]
    assert token.startswith("vl_sk_")
    assert len(token) == 54
    expires = datetime.fromisoformat(body["expires_at"])
    assert body["expires_at"].endswith("Z")
    assert before + timedelta(hours=24) <= expires <= datetime.now(UTC) + timedelta(hours=24)
    user = body["user"]
    assert set(user) == {"id", "email", "display_name", "role", "org_id", "is_system_admin"}
    assert (user["email"], user["role"], user["is_system_admin"]) == (
        "admin@voidllm.local",
        "system_admin",
        True,
    )

    me = await As(gw, token).get("/me")
    assert me.status_code == 200
    assert me.json() == user | {"team_admin_of": []}
    rows = await gw.state.store.run(
        lambda conn: (
            conn.execute(sa.select(t.api_keys).where(t.api_keys.c.key_type == "session_key")).mappings().all()
        )
    )
    assert [(r["name"], r["user_id"], r["org_id"]) for r in rows] == [
        ("Login session", user["id"], user["org_id"])
    ]
    assert token not in str(dict(rows[0]))  # only the hash is stored


async def test_login_failures_are_400_or_one_indistinct_401(gw: RunningGateway) -> None:
    gw.state.services.throttle = LoginThrottle(max_per_ip=1000)
    missing = await gw.client.post("/api/v1/auth/login", json={"email": "admin@voidllm.local"})
    envelope(missing, 400, "bad_request")
    empty = await gw.client.post("/api/v1/auth/login", json={"email": "", "password": "x"})
    envelope(empty, 400, "bad_request")
    not_json = await gw.client.post("/api/v1/auth/login", content=b"{nope")
    envelope(not_json, 400, "bad_request")

    wrong = await login(gw, "admin@voidllm.local", "not-the-password")
    unknown = await login(gw, "nobody@voidllm.local", admin_password(gw))
    assert envelope(wrong, 401, "unauthorized") == "invalid email or password"
    assert envelope(unknown, 401, "unauthorized") == "invalid email or password"

    # A user whose only organisation was deleted cannot log in either, with the same answer.
    admin_key = gw.api_key()
    org = await _insert_org(gw, "Gone")
    created = await gw.client.post(
        "/api/v1/users",
        headers=bearer(admin_key),
        json={"email": "orphan@example.com", "password": "orphan-password", "org_id": org},
    )
    assert created.status_code == 201
    assert (await login(gw, "orphan@example.com", "orphan-password")).status_code == 200
    await gw.state.store.run(
        lambda conn: conn.execute(
            t.organizations.update().values(deleted_at=datetime.now(UTC)).where(t.organizations.c.id == org)
        )
    )
    orphan = await login(gw, "orphan@example.com", "orphan-password")
    assert envelope(orphan, 401, "unauthorized") == "invalid email or password"


async def test_login_opens_the_chosen_organisation_never_silently_the_first(
    admin_world_each_dialect: AdminWorld,
) -> None:
    """Explicit ``org_id``, else the most recent session's organisation, else the only one, else 409."""
    world, services = admin_world_each_dialect, admin_world_each_dialect.services
    services.throttle = LoginThrottle(max_per_ip=1000)
    zeta, alpha, other = [await world.org(slug) for slug in ("zeta", "alpha", "other")]
    user_id = await world.user(zeta, "multi@example.com")
    password_hash = await hash_password_off_loop("multi-password")
    await world.store.run(
        lambda conn: conn.execute(
            t.users.update().where(t.users.c.id == user_id).values(password_hash=password_hash)
        )
    )

    async def log_in(password: str = "multi-password", org_id: str | None = None) -> sessions.LoginOut:
        req = sessions.LoginRequest(email="multi@example.com", password=password, org_id=org_id)
        return await sessions.login(services, req, ip="192.0.2.1")

    async def signed_in(org_id: str | None = None) -> sessions.LoginUser:
        out = await log_in(org_id=org_id)
        assert world.actor(out.token).org_id == out.user.org_id  # the session acts in that organisation
        return out.user

    async def add_member(org_id: str, role: str = "member") -> None:
        await world.store.run(
            lambda conn: conn.execute(
                t.org_memberships.insert().values(id=new_id(), org_id=org_id, user_id=user_id, role=role)
            )
        )

    assert (await signed_in()).org_id == zeta  # the only membership
    await add_member(alpha, role="org_admin")  # Alpha sorts first: it must not win by order
    assert (await signed_in()).org_id == zeta  # the most recent session's organisation
    chosen = await signed_in(org_id=alpha)
    assert (chosen.org_id, chosen.role) == (alpha, "org_admin")
    assert (await signed_in()).org_id == alpha  # now the most recent
    k = t.api_keys
    await world.store.run(
        lambda conn: conn.execute(
            k.update()
            .where(k.c.user_id == user_id, k.c.key_type == "session_key")
            .values(deleted_at=datetime.now(UTC))
        )
    )
    assert (await signed_in()).org_id == alpha  # ended sessions count too ("last used")

    with pytest.raises(PermissionDeniedError, match=r"^you are not a member of this organization$"):
        await log_in(org_id=other)
    with pytest.raises(AuthenticationError, match=r"^invalid email or password$"):  # no hint without it
        await log_in("wrong-password", org_id=other)

    # The most recent session's organisation is no longer one of the user's, and there are two: 409.
    await add_member(other)
    await world.store.run(
        lambda conn: conn.execute(
            t.org_memberships.delete().where(
                t.org_memberships.c.org_id == alpha, t.org_memberships.c.user_id == user_id
            )
        )
    )
    with pytest.raises(ConflictError) as several:
        await log_in()
    assert str(several.value) == "this account belongs to several organizations: sign in again with org_id"
    assert several.value.extra["organizations"] == [
        {"id": other, "name": "Other", "slug": "other"},
        {"id": zeta, "name": "Zeta", "slug": "zeta"},
    ]
    assert (await signed_in(org_id=other)).org_id == other
    assert (await signed_in()).org_id == other


async def test_login_without_any_session_and_two_organisations_is_409(gw: RunningGateway) -> None:
    first, second = await _insert_org(gw, "First"), await _insert_org(gw, "Second")
    user_id = await _create_user(gw, "two@example.com", "two-password", org_id=second)
    await _add_member(gw, first, user_id)
    response = await login(gw, "two@example.com", "two-password")
    message = envelope(response, 409, "conflict")
    assert message == "this account belongs to several organizations: sign in again with org_id"
    assert set(response.json()["error"]) == {"code", "message", "type", "request_id", "organizations"}
    assert response.json()["error"]["organizations"] == [
        {"id": first, "name": "First", "slug": "first"},
        {"id": second, "name": "Second", "slug": "second"},
    ]
    sessions = sa.select(sa.func.count()).select_from(t.api_keys).where(t.api_keys.c.user_id == user_id)
    assert await gw.state.store.run(lambda conn: conn.execute(sessions).scalar()) == 0


async def _create_user(gw: RunningGateway, email: str, password: str, *, org_id: str) -> str:
    created = await gw.client.post(
        "/api/v1/users",
        headers=bearer(gw.api_key()),
        json={"email": email, "password": password, "org_id": org_id},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _add_member(gw: RunningGateway, org_id: str, user_id: str, role: str = "member") -> None:
    await gw.state.store.run(
        lambda conn: conn.execute(
            t.org_memberships.insert().values(id=new_id(), org_id=org_id, user_id=user_id, role=role)
        )
    )


async def _insert_org(gw: RunningGateway, name: str) -> str:
    org_id = new_id()
    await gw.state.store.run(
        lambda conn: conn.execute(t.organizations.insert().values(id=org_id, name=name, slug=name.lower()))
    )
    return org_id


async def test_login_is_throttled_per_ip_and_locked_per_email(gw: RunningGateway) -> None:
    password = admin_password(gw)
    for _ in range(5):
        envelope(await login(gw, "admin@voidllm.local", "wrong-password"), 401, "unauthorized")
    locked = await login(gw, "admin@voidllm.local", password)  # the correct password, refused while locked
    assert envelope(locked, 429, "too_many_requests") == "too many login attempts, try again later"
    assert 899 <= int(locked.headers["retry-after"]) <= 900
    for n in range(5):  # the refused attempt did not count: five failures + these five = ten in the minute
        envelope(await login(gw, f"user{n}@example.com", "whatever-pw"), 401, "unauthorized")
    ip_limited = await login(gw, "user9@example.com", "whatever-pw")
    envelope(ip_limited, 429, "too_many_requests")
    assert 1 <= int(ip_limited.headers["retry-after"]) <= 60


async def test_success_resets_the_email_failure_count(admin_world_each_dialect: AdminWorld) -> None:
    world, services = admin_world_each_dialect, admin_world_each_dialect.services
    services.throttle = LoginThrottle(max_per_ip=1000)
    org = await world.org("home")
    user_id = await world.user(org, "admin@example.com", system_admin=True)
    password_hash = await hash_password_off_loop("the-password")
    await world.store.run(
        lambda conn: conn.execute(
            t.users.update().where(t.users.c.id == user_id).values(password_hash=password_hash)
        )
    )

    async def log_in(password: str) -> sessions.LoginOut:
        req = sessions.LoginRequest(email="admin@example.com", password=password)
        return await sessions.login(services, req, ip="192.0.2.1")

    for _ in range(2):
        for _ in range(4):
            with pytest.raises(AuthenticationError, match=r"^invalid email or password$"):
                await log_in("wrong-password")
        assert (await log_in("the-password")).user.id == user_id  # the fifth attempt: not locked


async def test_logout_ends_the_session_at_once(gw: RunningGateway) -> None:
    token = await admin_session(gw)
    other = await admin_session(gw)
    assert (await As(gw, token).post("/auth/logout")).status_code == 204
    envelope(await As(gw, token).get("/me"), 401, "unauthorized")
    envelope(await As(gw, token).post("/auth/logout"), 401, "unauthorized")
    assert (await As(gw, other).get("/me")).status_code == 200  # only that session
    not_session = await As(gw, gw.api_key()).post("/auth/logout")
    assert envelope(not_session, 400, "bad_request") == "only a session key can log out"
    envelope(await gw.client.post("/api/v1/auth/logout"), 401, "unauthorized")


async def test_session_list_and_revoke(gw: RunningGateway) -> None:
    first, second, third = [await admin_session(gw) for _ in range(3)]
    listed = await As(gw, second).get("/auth/sessions")
    assert listed.status_code == 200
    page = listed.json()
    assert page["has_more"] is False
    assert page.get("next_cursor") is None
    sessions = page["data"]
    assert [s["current"] for s in sessions] == [False, True, False]
    assert [s["key_hint"] for s in sessions] == [f"{k[:6]}...{k[-4:]}" for k in (first, second, third)]
    assert all(set(s) == {"id", "key_hint", "created_at", "expires_at", "current"} for s in sessions)

    one = await As(gw, second).get("/auth/sessions?limit=2")
    assert one.json()["has_more"] is True
    assert len(one.json()["data"]) == 2
    rest = await As(gw, second).get(f"/auth/sessions?limit=2&cursor={one.json()['next_cursor']}")
    assert [s["id"] for s in rest.json()["data"]] == [sessions[2]["id"]]
    assert rest.json()["has_more"] is False
    envelope(await As(gw, second).get("/auth/sessions?limit=0"), 400, "validation_error")

    revoked = await As(gw, second).delete(f"/auth/sessions/{sessions[0]['id']}")
    assert revoked.status_code == 204
    envelope(await As(gw, first).get("/me"), 401, "unauthorized")
    again = await As(gw, second).delete(f"/auth/sessions/{sessions[0]['id']}")
    envelope(again, 404, "not_found")

    # Someone else's session is not found either.
    bob = await _user_session(gw, "bob@example.com")
    foreign = await As(gw, bob).delete(f"/auth/sessions/{sessions[2]['id']}")
    envelope(foreign, 404, "not_found")
    assert (await As(gw, third).get("/me")).status_code == 200
    bobs = (await As(gw, bob).get("/auth/sessions")).json()["data"]
    assert len(bobs) == 1
    assert bobs[0]["current"] is True


async def _user_session(gw: RunningGateway, email: str, password: str = "user-password-1") -> str:
    created = await gw.client.post(
        "/api/v1/users", headers=bearer(gw.api_key()), json={"email": email, "password": password}
    )
    assert created.status_code == 201, created.text
    response = await login(gw, email, password)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def test_at_most_ten_live_sessions_the_oldest_revoked(gw: RunningGateway) -> None:
    gw.state.services.throttle = LoginThrottle(max_per_ip=1000)
    tokens = [await admin_session(gw) for _ in range(MAX_LIVE_SESSIONS + 2)]
    for token in tokens[:2]:
        envelope(await As(gw, token).get("/me"), 401, "unauthorized")
    for token in tokens[2:]:
        assert (await As(gw, token).get("/me")).status_code == 200
    listed = await gw.client.get("/api/v1/auth/sessions?limit=100", headers=bearer(tokens[-1]))
    assert len(listed.json()["data"]) == MAX_LIVE_SESSIONS


async def test_password_change_ends_the_other_sessions(gw: RunningGateway) -> None:
    old = admin_password(gw)
    current, other = await admin_session(gw), await admin_session(gw)
    short = await gw.client.post(
        "/api/v1/me/password",
        headers=bearer(current),
        json={"current_password": old, "new_password": "short"},
    )
    envelope(short, 400, "bad_request")
    wrong = await gw.client.post(
        "/api/v1/me/password",
        headers=bearer(current),
        json={"current_password": "not-it-at-all", "new_password": "a-new-password"},
    )
    assert envelope(wrong, 400, "bad_request") == "current password is incorrect"
    assert (await As(gw, other).get("/me")).status_code == 200  # nothing changed

    changed = await gw.client.post(
        "/api/v1/me/password",
        headers=bearer(current),
        json={"current_password": old, "new_password": "a-new-password"},
    )
    assert (changed.status_code, changed.content) == (200, b"")
    assert (await As(gw, current).get("/me")).status_code == 200
    envelope(await As(gw, other).get("/me"), 401, "unauthorized")
    assert (await As(gw, gw.api_key()).get("/me")).status_code == 200  # API keys stay
    envelope(await login(gw, "admin@voidllm.local", old), 401, "unauthorized")
    assert (await login(gw, "admin@voidllm.local", "a-new-password")).status_code == 200


async def test_me_needs_a_user_key_and_lists_available_models(gw: RunningGateway) -> None:
    token = await admin_session(gw)
    models = await As(gw, token).get("/me/available-models")
    assert models.json() == {
        "models": [{"name": "embed-small", "type": "embedding"}, {"name": "gpt-4o", "type": "chat"}]
    }
    envelope(await gw.client.get("/api/v1/me"), 401, "unauthorized")
    envelope(await gw.client.get("/api/v1/me", headers=bearer("vl_sk_" + "0" * 48)), 401, "unauthorized")


async def test_providers_and_an_old_hash_is_upgraded_at_login(
    gw: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    providers = await gw.client.get("/api/v1/auth/providers")
    assert providers.json() == {"local": True, "oidc": False}

    def stored_hash(conn: sa.Connection) -> Any:
        u = t.users
        query = sa.select(u.c.password_hash).where(u.c.email == "admin@voidllm.local")
        return conn.execute(query).scalar_one()

    before = await gw.state.store.run(stored_hash)
    params = dataclasses.replace(CHEAPEST, time_cost=2)  # "new defaults": one pass more than the stored hash
    monkeypatch.setattr(passwords, "_SCHEME", passwords._Scheme.of(passwords.build_hasher(params)))
    assert passwords.needs_rehash(before)
    await admin_session(gw)
    after = await gw.state.store.run(stored_hash)
    assert after != before
    assert not passwords.needs_rehash(after)
    assert "t=2" in after
