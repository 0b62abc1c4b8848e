"""User management through a real gateway: create/list/get/update/delete, RBAC and org scoping, a deleted
user's keys refused at once, and the bounds of the string fields (docs/reference/behaviour.md 1.6 "users").
Who may change an account across organisations is tested in ``tests/test_account_takeover.py``. The
member and org-admin scope, create validation and the email conflict (also under a race, on each dialect)
are tested on the use cases directly (``tests/admin_fixtures.py``); every route's
statuses for every kind of caller go through HTTP in ``tests/test_rbac.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
import trio

from tests.admin_fixtures import AdminWorld
from tests.gateway import RunningGateway, make_config, run_gateway
from tests.test_admin_auth import (
    As,
    bearer,
    envelope,
    login,
)
from voidllm.admin import users
from voidllm.admin.context import Actor
from voidllm.admin.pages import PageQuery
from voidllm.auth.loader import load_live_key
from voidllm.auth.throttle import LoginThrottle
from voidllm.crypto import KeyKind, generate_key, key_hint
from voidllm.errors import BadRequestError, ConflictError, NotFoundError, PermissionDeniedError
from voidllm.store import tables as t
from voidllm.store.ids import new_id

PASSWORD = "user-password-1"


@asynccontextmanager
async def users_gateway(db_target: tuple[str, str]) -> AsyncIterator[RunningGateway]:
    """A gateway on ``db_target`` whose login throttle lets many sign-ins from one address through."""
    driver, dsn = db_target
    async with run_gateway(make_config(dsn, driver=driver)) as gateway:
        gateway.state.services.throttle = LoginThrottle(max_per_ip=1000)
        yield gateway


@pytest.fixture
async def gw(db_target: tuple[str, str]) -> AsyncIterator[RunningGateway]:
    async with users_gateway(db_target) as gateway:
        yield gateway


async def create(gw: RunningGateway, key: str, **fields: object) -> dict[str, object]:
    body = {"password": PASSWORD, **fields}
    response = await As(gw, key).post("/users", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def session(gw: RunningGateway, email: str, password: str = PASSWORD) -> str:
    response = await login(gw, email, password)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def insert_org(gw: RunningGateway, name: str) -> str:
    org_id = new_id()
    await gw.state.store.run(
        lambda conn: conn.execute(t.organizations.insert().values(id=org_id, name=name, slug=name.lower()))
    )
    return org_id


async def insert_user_key(gw: RunningGateway, user_id: str, org_id: str) -> str:
    """A vl_uk_ key for the user, put into the cache as the keys API does (that API is not under test)."""
    plaintext, key_id = generate_key(KeyKind.USER), new_id()

    def write(conn: sa.Connection) -> object:
        conn.execute(
            t.api_keys.insert().values(
                id=key_id,
                key_hash=gw.state.services.keyring.hash_key(plaintext),
                key_hint=key_hint(plaintext),
                key_type="user_key",
                name="test",
                org_id=org_id,
                user_id=user_id,
            )
        )
        return load_live_key(conn, key_id, now=datetime.now(UTC))

    entry = await gw.state.store.run(write)
    assert entry is not None
    gw.state.keys.put(*entry)
    return plaintext


async def test_create_get_and_list_users(gw: RunningGateway) -> None:
    admin = gw.api_key()
    me = (await As(gw, admin).get("/me")).json()
    alice = await create(gw, admin, email=" Alice@Example.com ", display_name=" Alice ", role="org_admin")
    assert set(alice) == {
        "id",
        "email",
        "display_name",
        "is_system_admin",
        "auth_provider",
        "org_id",
        "role",
        "created_at",
        "updated_at",
    }
    fields = ("email", "display_name", "org_id", "role", "is_system_admin")
    assert tuple(alice[f] for f in fields) == ("alice@example.com", "Alice", me["org_id"], "org_admin", False)
    teamish = await create(gw, admin, email="tina@example.com", role="team_admin")
    assert teamish["role"] == "member"  # team roles live on team memberships

    got = await As(gw, admin).get(f"/users/{alice['id']}")
    assert got.json() == alice
    assert "password" not in got.text
    assert "argon2" not in got.text

    bob = await create(gw, admin, email="bob@example.com")
    first = await As(gw, admin).get("/users?limit=2")
    page = first.json()
    assert [u["email"] for u in page["data"]] == ["admin@voidllm.local", "alice@example.com"]
    assert page["has_more"] is True
    assert page["next_cursor"] == alice["id"]
    second = (await As(gw, admin).get(f"/users?limit=2&cursor={page['next_cursor']}")).json()
    assert [u["id"] for u in second["data"]] == [teamish["id"], bob["id"]]
    assert second["has_more"] is False
    assert second.get("next_cursor") is None

    # The new user can log in with the password set by the admin.
    assert (await login(gw, "alice@example.com", PASSWORD)).json()["user"]["role"] == "org_admin"


async def root_of(world: AdminWorld) -> Actor:
    """A system administrator in a new organisation, as the bootstrap admin is."""
    home = await world.org("home")
    return await world.user_actor(home, await world.user(home, "root@example.com", system_admin=True))


async def new_user(world: AdminWorld, actor: Actor, email: str, **fields: Any) -> users.UserOut:
    req = users.UserCreate(**{"email": email, "password": PASSWORD, **fields})
    return await users.create_user(world.services, actor, req)


async def test_create_validation_and_conflicts(admin_world_each_dialect: AdminWorld) -> None:
    world = admin_world_each_dialect
    root = await root_of(world)
    for bad in ("no-at-sign", "a@b", "x:deleted:1@example.com", "two words@example.com", ""):
        with pytest.raises(BadRequestError, match=r"^invalid email address$"):
            await new_user(world, root, bad)
    with pytest.raises(BadRequestError):
        await new_user(world, root, "s@example.com", password="short")
    with pytest.raises(BadRequestError):
        await new_user(world, root, "r@example.com", role="owner")
    with pytest.raises(NotFoundError):
        await new_user(world, root, "o@example.com", org_id=new_id())

    await new_user(world, root, "dup@example.com")
    with pytest.raises(ConflictError, match=r"^a user with this email already exists$"):
        await new_user(world, root, "DUP@example.com")


async def test_a_duplicate_that_slips_past_the_check_is_still_a_conflict(
    admin_world_each_dialect: AdminWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two concurrent creates can both pass the existence check; the unique constraint decides."""
    world = admin_world_each_dialect
    root = await root_of(world)
    monkeypatch.setattr(users, "email_taken", lambda conn, email: False)
    outcomes: list[str] = []

    async def one() -> None:
        try:
            await new_user(world, root, "race@example.com")
        except ConflictError as exc:
            outcomes.append(str(exc))
        else:
            outcomes.append("created")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one)
        nursery.start_soon(one)
    assert sorted(outcomes) == ["a user with this email already exists", "created"]


async def test_rbac_members_and_org_admins(admin_world: AdminWorld) -> None:
    world, services = admin_world, admin_world.services
    home, other_org = await world.org("home"), await world.org("other")
    root_id = await world.user(home, "root@example.com", system_admin=True)  # as the bootstrap admin is
    root = await world.user_actor(home, root_id)

    async def new_user(actor: Actor, email: str, **fields: Any) -> users.UserOut:
        return await users.create_user(
            services, actor, users.UserCreate(email=email, password=PASSWORD, **fields)
        )

    outsider = await new_user(root, "out@example.com", org_id=other_org)
    member = await world.user_actor(home, (await new_user(root, "member@example.com")).id)
    boss = await world.user_actor(home, (await new_user(root, "boss@example.com", role="org_admin")).id)

    with pytest.raises(PermissionDeniedError, match=r"^insufficient permissions$"):
        await new_user(member, "x@example.com")
    with pytest.raises(PermissionDeniedError):
        await users.get_user(services, member, root_id)

    # An org admin: users of their own org only, no system admins, no listing, no deleting.
    made = await new_user(boss, "new@example.com")
    assert made.org_id == home
    with pytest.raises(PermissionDeniedError):
        await new_user(boss, "sa@example.com", is_system_admin=True)
    with pytest.raises(PermissionDeniedError):
        await new_user(boss, "e@example.com", org_id=other_org)
    with pytest.raises(NotFoundError):
        await users.get_user(services, boss, outsider.id)
    with pytest.raises(NotFoundError):
        await users.update_user(services, boss, outsider.id, users.UserUpdate(display_name="x"))
    with pytest.raises(PermissionDeniedError):
        await users.list_users(services, boss, PageQuery())
    with pytest.raises(PermissionDeniedError):
        await users.delete_user(services, boss, made.id)
    assert (await users.get_user(services, boss, made.id)).id == made.id

    # A system admin in the org admin's org: readable, not changeable.
    assert (await users.get_user(services, boss, root_id)).is_system_admin is True
    with pytest.raises(PermissionDeniedError):
        await users.update_user(services, boss, root_id, users.UserUpdate(password="hijacked-pw"))
    with pytest.raises(PermissionDeniedError):
        await users.update_user(services, boss, made.id, users.UserUpdate(is_system_admin=True))
    root_row = await world.store.run(
        lambda conn: conn.execute(sa.select(t.users).where(t.users.c.id == root_id)).mappings().one()
    )
    assert root_row["password_hash"] is None  # the refused reset changed nothing


async def test_update_user(gw: RunningGateway) -> None:
    admin = gw.api_key()
    carol = await create(gw, admin, email="carol@example.com")
    await create(gw, admin, email="taken@example.com")
    old_session = await session(gw, "carol@example.com")

    renamed = await gw.client.patch(
        f"/api/v1/users/{carol['id']}",
        headers=bearer(admin),
        json={"display_name": "Carol C", "email": "Carol2@example.com"},
    )
    assert renamed.status_code == 200
    assert (renamed.json()["display_name"], renamed.json()["email"]) == ("Carol C", "carol2@example.com")
    clash = await As(gw, admin).patch(f"/users/{carol['id']}", json={"email": "taken@example.com"})
    envelope(clash, 409, "conflict")
    envelope(await As(gw, admin).patch(f"/users/{new_id()}", json={}), 404, "not_found")

    # Promotion takes effect on the user's live session at once.
    envelope(await As(gw, old_session).get("/users"), 403, "forbidden")
    promoted = await As(gw, admin).patch(f"/users/{carol['id']}", json={"is_system_admin": True})
    assert promoted.json()["is_system_admin"] is True
    assert (await As(gw, old_session).get("/users")).status_code == 200

    # An admin's password reset ends the user's sessions.
    reset = await As(gw, admin).patch(f"/users/{carol['id']}", json={"password": "reset-password"})
    assert reset.status_code == 200
    envelope(await As(gw, old_session).get("/me"), 401, "unauthorized")
    assert (await login(gw, "carol2@example.com", "reset-password")).status_code == 200

    admin_id = (await As(gw, admin).get("/me")).json()["id"]
    demote_self = await As(gw, admin).patch(f"/users/{admin_id}", json={"is_system_admin": False})
    envelope(demote_self, 400, "bad_request")


async def test_delete_user_revokes_every_key_at_once(gw: RunningGateway) -> None:
    admin = gw.api_key()
    dave = await create(gw, admin, email="dave@example.com")
    sess = await session(gw, "dave@example.com")
    key = await insert_user_key(gw, str(dave["id"]), str(dave["org_id"]))
    assert (await As(gw, key).get("/me")).status_code == 200

    deleted = await As(gw, admin).delete(f"/users/{dave['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    for token in (sess, key):
        envelope(await As(gw, token).get("/me"), 401, "unauthorized")
        envelope(await gw.client.get("/v1/models", headers=bearer(token)), 401, "unauthorized")
    envelope(await login(gw, "dave@example.com", PASSWORD), 401, "unauthorized")
    envelope(await As(gw, admin).get(f"/users/{dave['id']}"), 404, "not_found")
    envelope(await As(gw, admin).delete(f"/users/{dave['id']}"), 404, "not_found")

    def leftovers(conn: sa.Connection) -> tuple[str, int, int]:
        m, k = t.org_memberships, t.api_keys
        count = sa.select(sa.func.count())
        return (
            conn.execute(sa.select(t.users.c.email).where(t.users.c.id == dave["id"])).scalar_one(),
            conn.execute(count.select_from(m).where(m.c.user_id == dave["id"])).scalar_one(),
            conn.execute(
                count.select_from(k).where(k.c.user_id == dave["id"], k.c.deleted_at.is_(None))
            ).scalar_one(),
        )

    rows = await gw.state.store.run(leftovers)
    assert rows == (f"dave@example.com:deleted:{dave['id']}", 0, 0)
    again = await create(gw, admin, email="dave@example.com")  # the address is free again
    assert again["id"] != dave["id"]

    admin_id = (await As(gw, admin).get("/me")).json()["id"]
    envelope(await As(gw, admin).delete(f"/users/{admin_id}"), 400, "bad_request")


async def test_string_fields_are_bounded(gw: RunningGateway) -> None:
    """email at most 254 characters, display_name 256, passwords 1,024: a 400 naming the field, nothing
    kept."""
    admin = gw.api_key()
    long_email = "a" * 243 + "@example.com"
    assert len(long_email) == 255
    for field, body in (
        ("email", {"email": long_email, "password": PASSWORD}),
        ("display_name", {"email": "d@example.com", "password": PASSWORD, "display_name": "n" * 257}),
        ("password", {"email": "p@example.com", "password": "p" * 1025}),
    ):
        message = envelope(await As(gw, admin).post("/users", json=body), 400, "validation_error")
        assert message.startswith(f"{field} must ")
        assert "at most" in message
        assert "nnn" not in message
    missing = await As(gw, admin).post("/users", json={"email": "m@example.com"})
    assert "password" in envelope(missing, 400, "validation_error")
    invalid = await As(gw, admin).post("/users", json={"email": "no-at-sign", "password": PASSWORD})
    assert envelope(invalid, 400, "bad_request") == "invalid email address"
    at_limit = await create(gw, admin, email="a" * 242 + "@example.com", display_name="n" * 256)
    assert (len(str(at_limit["email"])), len(str(at_limit["display_name"]))) == (254, 256)

    me = await create(gw, admin, email="bounded@example.com")
    own = await session(gw, "bounded@example.com")
    path = f"/users/{me['id']}"
    for field, limit, body in (
        ("email", 254, {"email": long_email, "current_password": PASSWORD}),
        ("display_name", 256, {"display_name": "n" * 257}),
        ("password", 1024, {"password": "p" * 1025, "current_password": PASSWORD}),
        ("current_password", 1024, {"password": "new-password-1", "current_password": "p" * 1025}),
    ):
        message = envelope(await As(gw, own).patch(path, json=body), 400, "validation_error")
        assert message == f"{field} must be at most {limit} characters"
    for field in ("current_password", "new_password"):
        body = {"current_password": PASSWORD, "new_password": "new-password-1", field: "p" * 1025}
        message = envelope(await As(gw, own).post("/me/password", json=body), 400, "validation_error")
        assert message == f"{field} must be at most 1024 characters"
    assert (await login(gw, "bounded@example.com", PASSWORD)).status_code == 200
