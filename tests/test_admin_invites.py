"""Invites (reference 1.5, 1.6 "Invites"): create (token once, hash stored), list with status, re-invite
replaces, withdraw, peek and redeem by the token holder, and the 410 cases, tested on
:mod:`voidllm.admin.invites` directly (``tests/admin_fixtures.py``); a real gateway keeps the HTTP slice (the
whole flow with its statuses and bodies, the bounds of the string fields, a token redeemed once under
concurrency on each dialect). Existing accounts accepting and declining invites while signed in are tested in
``tests/test_account_takeover.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
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
from tests.test_admin_users import PASSWORD
from voidllm.admin import invites
from voidllm.admin.context import Actor
from voidllm.admin.pages import PageQuery
from voidllm.auth.throttle import LoginThrottle
from voidllm.errors import BadRequestError, ConflictError, GoneError, NotFoundError, PermissionDeniedError
from voidllm.store import tables as t
from voidllm.store.ids import new_id

GONE = "invite is invalid, expired or already redeemed"


@pytest.fixture
async def gw(db_target: tuple[str, str]) -> AsyncIterator[RunningGateway]:
    driver, dsn = db_target
    async with run_gateway(make_config(dsn, driver=driver)) as gateway:
        gateway.state.services.throttle = LoginThrottle(max_per_ip=1000)
        yield gateway


async def home_org(gw: RunningGateway) -> str:
    return str((await As(gw, gw.api_key()).get("/me")).json()["org_id"])


async def invite(
    gw: RunningGateway, org_id: str, email: str, role: str = "member", key: str | None = None
) -> dict[str, str]:
    response = await gw.client.post(
        f"/api/v1/orgs/{org_id}/invites",
        headers=bearer(key or gw.api_key()),
        json={"email": email, "role": role},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def peek(gw: RunningGateway, token: str) -> httpx.Response:
    return await gw.client.get("/api/v1/invites/peek", params={"token": token})


async def redeem(
    gw: RunningGateway, token: str, password: str = PASSWORD, name: str = "Newbie"
) -> httpx.Response:
    return await gw.client.post(
        "/api/v1/invites/redeem", json={"token": token, "password": password, "display_name": name}
    )


async def test_full_flow_invite_peek_redeem_login(gw: RunningGateway) -> None:
    org = await home_org(gw)
    created = await invite(gw, org, " New@Example.com ", role="org_admin")
    token = created["token"]
    assert token.startswith("vl_iv_")
    assert len(token) == 54
    assert created["token_hint"] == f"{token[:6]}...{token[-4:]}"
    assert (created["email"], created["role"], created["org_id"]) == ("new@example.com", "org_admin", org)
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(days=7) - timedelta(minutes=1) < expires - datetime.now(UTC) <= timedelta(days=7)
    stored = await gw.state.store.run(lambda conn: conn.execute(sa.select(t.invite_tokens)).mappings().one())
    assert token not in str(dict(stored))
    assert stored["token_hash"] == gw.state.services.keyring.hash_key(token)

    peeked = await peek(gw, token)
    assert peeked.status_code == 200
    assert peeked.json() == {
        "email": "new@example.com",
        "org_name": "Default",
        "role": "org_admin",
        "expires_at": created["expires_at"],
    }

    redeemed = await redeem(gw, token)
    assert redeemed.status_code == 201
    body = redeemed.json()
    assert set(body) == {"id", "email", "display_name", "org_id", "role"}
    assert body | {"id": None} == {
        "id": None,
        "email": "new@example.com",
        "display_name": "Newbie",
        "org_id": org,
        "role": "org_admin",
    }
    logged_in = await login(gw, "new@example.com", PASSWORD)
    assert logged_in.json()["user"] | {"id": None} == {
        "id": None,
        "email": "new@example.com",
        "display_name": "Newbie",
        "role": "org_admin",
        "org_id": org,
        "is_system_admin": False,
    }

    assert envelope(await redeem(gw, token), 410, "gone") == GONE
    assert envelope(await peek(gw, token), 410, "gone") == GONE
    listed = (await As(gw, gw.api_key()).get(f"/orgs/{org}/invites")).json()
    assert [(i["email"], i["status"]) for i in listed["data"]] == [("new@example.com", "redeemed")]
    assert "token" not in listed["data"][0]
    assert "token_hash" not in listed["data"][0]


async def make_invite(
    world: AdminWorld, org_id: str, email: str, role: str = "member", actor: Actor | None = None
) -> invites.InviteCreated:
    req = invites.InviteCreate(email=email, role=role)
    return await invites.create_invite(world.services, actor or world.system, org_id, req)


async def use(world: AdminWorld, token: str, password: str = PASSWORD) -> invites.Redeemed:
    req = invites.InviteRedeem(token=token, password=password, display_name="Newbie")
    return await invites.redeem_invite(world.services, req)


async def statuses(world: AdminWorld, org_id: str) -> list[tuple[str, str]]:
    listed = await invites.list_invites(world.services, world.system, org_id, PageQuery())
    return [(i.email, i.status) for i in listed.data]


async def user_row(world: AdminWorld, email: str) -> list[dict[str, object]]:
    u = t.users
    rows = await world.store.run(
        lambda conn: conn.execute(sa.select(u).where(u.c.email == email)).mappings().all()
    )
    return [dict(row) for row in rows]


async def test_invalid_and_expired_tokens_are_gone(admin_world: AdminWorld) -> None:
    world, services = admin_world, admin_world.services
    org = await world.org("home")
    for junk in (
        "vl_iv_" + "0" * 48,
        "vl_iv_short",
        "vl_uk_" + "0" * 48,
        (await world.key(org, user_id=await world.user(org, "k@example.com"))).key,
    ):
        with pytest.raises(GoneError, match=f"^{GONE}$"):
            await invites.peek_invite(services, junk)
        with pytest.raises(GoneError):
            await use(world, junk)
    with pytest.raises(BadRequestError, match=r"^token is required$"):  # GET /invites/peek without a token
        await invites.peek_invite(services, "")

    token = (await make_invite(world, org, "late@example.com")).token
    with pytest.raises(BadRequestError, match=r"^password must be between"):
        await use(world, token, password="short")
    await world.store.run(
        lambda conn: conn.execute(
            t.invite_tokens.update().values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    )
    with pytest.raises(GoneError):
        await invites.peek_invite(services, token)
    with pytest.raises(GoneError):
        await use(world, token)
    assert await statuses(world, org) == [("late@example.com", "expired")]
    assert await user_row(world, "late@example.com") == []  # no account to sign in with

    # An invite of a deleted organisation is gone too.
    other = await world.org("doomed")
    doomed = (await make_invite(world, other, "doomed@example.com")).token
    await world.store.run(
        lambda conn: conn.execute(
            t.organizations.update().where(t.organizations.c.id == other).values(deleted_at=datetime.now(UTC))
        )
    )
    with pytest.raises(GoneError):
        await invites.peek_invite(services, doomed)


async def test_a_gone_token_says_why(admin_world: AdminWorld) -> None:
    """The 410's ``reason``: invalid (never issued, malformed, withdrawn, replaced, deleted organisation),
    expired, used (redeemed or declined)."""
    world, services = admin_world, admin_world.services
    org = await world.org("home")

    async def reason(token: str) -> object:
        with pytest.raises(GoneError, match=f"^{GONE}$") as peeked:
            await invites.peek_invite(services, token)
        with pytest.raises(GoneError) as redeemed:
            await use(world, token)
        assert redeemed.value.extra == peeked.value.extra
        return peeked.value.extra["reason"]

    assert await reason("vl_iv_" + "0" * 48) == "invalid"
    assert await reason("vl_iv_short") == "invalid"
    replaced = (await make_invite(world, org, "again@example.com")).token
    await make_invite(world, org, "again@example.com")
    assert await reason(replaced) == "invalid"
    withdrawn = await make_invite(world, org, "withdrawn@example.com")
    await invites.delete_invite(services, world.system, org, withdrawn.id)
    assert await reason(withdrawn.token) == "invalid"

    used = (await make_invite(world, org, "used@example.com")).token
    await use(world, used)
    assert await reason(used) == "used"
    elsewhere = await world.org("elsewhere")
    declined_by = await world.user(elsewhere, "declines@example.com")
    declined = (await make_invite(world, org, "declines@example.com")).token
    actor = await world.user_actor(elsewhere, declined_by)
    await invites.decline_invite(services, actor, invites.InviteAnswer(token=declined))
    assert await reason(declined) == "used"

    late = await make_invite(world, org, "late@example.com")
    i = t.invite_tokens
    await world.store.run(
        lambda conn: conn.execute(
            i.update().where(i.c.id == late.id).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    )
    assert await reason(late.token) == "expired"


async def test_an_invite_is_valid_for_the_days_asked(gw: RunningGateway) -> None:
    """``expires_in_days`` (1 to 30, 7 unless given); the 410 of a used token carries its reason."""
    org = await home_org(gw)
    made = await As(gw, gw.api_key()).post(
        f"/orgs/{org}/invites", json={"email": "soon@example.com", "expires_in_days": 1}
    )
    assert made.status_code == 201, made.text
    expires = datetime.fromisoformat(made.json()["expires_at"])
    assert timedelta(days=1) - timedelta(minutes=1) < expires - datetime.now(UTC) <= timedelta(days=1)
    for days in (0, 31):
        refused = await As(gw, gw.api_key()).post(
            f"/orgs/{org}/invites", json={"email": "soon@example.com", "expires_in_days": days}
        )
        assert envelope(refused, 400, "validation_error") == "expires_in_days must be between 1 and 30"
    token = made.json()["token"]
    assert (await redeem(gw, token)).status_code == 201
    gone = await peek(gw, token)
    assert envelope(gone, 410, "gone") == GONE
    assert gone.json()["error"]["reason"] == "used"


async def test_reinvite_replaces_the_open_invite_and_withdraw(admin_world: AdminWorld) -> None:
    world, services = admin_world, admin_world.services
    org = await world.org("home")
    first = await make_invite(world, org, "twice@example.com")
    second = await make_invite(world, org, "twice@example.com", role="org_admin")
    with pytest.raises(GoneError):
        await invites.peek_invite(services, first.token)
    assert (await invites.peek_invite(services, second.token)).role == "org_admin"
    listed = await invites.list_invites(services, world.system, org, PageQuery())
    assert [i.id for i in listed.data] == [second.id]

    await invites.delete_invite(services, world.system, org, second.id)
    with pytest.raises(GoneError):
        await invites.peek_invite(services, second.token)
    with pytest.raises(NotFoundError):
        await invites.delete_invite(services, world.system, org, second.id)


async def test_invite_validation_rbac_and_existing_accounts(admin_world: AdminWorld) -> None:
    world, services = admin_world, admin_world.services
    org, other = await world.org("home"), await world.org("other")
    with pytest.raises(BadRequestError, match=r"^role must be member or org_admin$"):
        await make_invite(world, org, "a@example.com", role="team_admin")
    with pytest.raises(BadRequestError, match=r"^invalid email address$"):
        await make_invite(world, org, "nope")
    with pytest.raises(NotFoundError):
        await make_invite(world, new_id(), "a@example.com")

    member_id = await world.user(org, "member@example.com")
    member = await world.user_actor(org, member_id)
    boss = await world.user_actor(org, await world.user(org, "boss@example.com", role="org_admin"))
    with pytest.raises(PermissionDeniedError):
        await make_invite(world, org, "a@example.com", actor=member)
    with pytest.raises(PermissionDeniedError):
        await invites.list_invites(services, member, org, PageQuery())
    with pytest.raises(PermissionDeniedError):
        await make_invite(world, other, "a@example.com", actor=boss)
    with pytest.raises(PermissionDeniedError):
        await invites.list_invites(services, boss, other, PageQuery())
    mine = await make_invite(world, org, "fromboss@example.com", actor=boss)
    other_invite = await make_invite(world, other, "elsewhere@example.com")
    with pytest.raises(PermissionDeniedError):
        await invites.delete_invite(services, boss, other, other_invite.id)
    with pytest.raises(NotFoundError):
        await invites.delete_invite(services, boss, org, other_invite.id)
    assert mine.org_id == org

    # Already a member: refused. An account elsewhere: the invite can be made, but redeeming it cannot take
    # over the account, so it is a conflict and stays open (the account itself accepts it, signed in).
    with pytest.raises(ConflictError):
        await make_invite(world, org, "member@example.com")
    outside = await make_invite(world, other, "member@example.com")
    with pytest.raises(ConflictError):
        await use(world, outside.token, password="attacker-password")
    assert (await invites.peek_invite(services, outside.token)).email == "member@example.com"
    [account] = await user_row(world, "member@example.com")
    assert (account["id"], account["password_hash"]) == (member_id, None)  # no password was set


async def test_pagination(admin_world: AdminWorld) -> None:
    world, services = admin_world, admin_world.services
    org = await world.org("home")
    made = [await make_invite(world, org, f"p{n}@example.com") for n in range(3)]
    first = await invites.list_invites(services, world.system, org, PageQuery(limit=2))
    assert [i.id for i in first.data] == [made[0].id, made[1].id]
    assert first.has_more is True
    rest = await invites.list_invites(
        services, world.system, org, PageQuery(limit=2, cursor=first.next_cursor)
    )
    assert [i.id for i in rest.data] == [made[2].id]
    assert rest.has_more is False
    assert all(i.status == "pending" for i in first.data + rest.data)


async def test_a_token_is_redeemed_once_under_concurrency(gw: RunningGateway) -> None:
    org = await home_org(gw)
    token = (await invite(gw, org, "p0@example.com"))["token"]
    envelope(await As(gw, gw.api_key()).get(f"/orgs/{org}/invites?limit=101"), 400, "validation_error")

    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await redeem(gw, token)).status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(one)
    assert sorted(statuses) == [201, 410, 410]
    count = await gw.state.store.run(
        lambda conn: conn.execute(
            sa.select(sa.func.count()).select_from(t.users).where(t.users.c.email == "p0@example.com")
        ).scalar_one()
    )
    assert count == 1


async def test_string_fields_are_bounded(gw: RunningGateway) -> None:
    """token at most 256 characters, email 254, display_name 256, password 1,024: a 400 naming the field."""
    org = await home_org(gw)
    long_email = "a" * 243 + "@example.com"
    made = await As(gw, gw.api_key()).post(f"/orgs/{org}/invites", json={"email": long_email})
    assert envelope(made, 400, "validation_error") == "email must be at most 254 characters"
    token = (await invite(gw, org, "bounded@example.com"))["token"]
    too_long = "vl_iv_" + "0" * 251
    assert (
        envelope(await peek(gw, too_long), 400, "validation_error") == "token must be at most 256 characters"
    )
    for path in ("/invites/accept", "/invites/decline"):
        answered = await As(gw, gw.api_key()).post(path, json={"token": too_long})
        assert envelope(answered, 400, "validation_error") == "token must be at most 256 characters"
    for field, limit, body in (
        ("token", 256, {"token": too_long, "password": PASSWORD}),
        ("password", 1024, {"token": token, "password": "p" * 1025}),
        ("display_name", 256, {"token": token, "password": PASSWORD, "display_name": "n" * 257}),
    ):
        redeemed = await gw.client.post("/api/v1/invites/redeem", json=body)
        assert envelope(redeemed, 400, "validation_error") == f"{field} must be at most {limit} characters"
    missing = await gw.client.post("/api/v1/invites/redeem", json={"password": PASSWORD})
    envelope(missing, 400, "validation_error")
    envelope(await gw.client.get("/api/v1/invites/peek"), 400, "bad_request")
    assert (await redeem(gw, token, name="n" * 256)).status_code == 201
