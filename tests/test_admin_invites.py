"""Invites through a real gateway: create (token once, hash stored), list with status, re-invite replaces,
withdraw, peek and redeem by the token holder, the 410 cases and the bounds of the string fields (reference
1.5, 1.6 "Invites"). Existing accounts accepting and declining invites while signed in are tested in
``tests/test_account_takeover.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
import trio

from tests.gateway import RunningGateway, make_config, run_gateway
from tests.test_admin_auth import (
    As,
    bearer,
    envelope,
    login,
)
from tests.test_admin_users import PASSWORD, create, insert_org, session
from voidllm.auth.throttle import LoginThrottle
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


async def test_invalid_and_expired_tokens_are_gone(gw: RunningGateway) -> None:
    org = await home_org(gw)
    for junk in ("vl_iv_" + "0" * 48, "vl_iv_short", "vl_uk_" + "0" * 48, gw.api_key()):
        assert envelope(await peek(gw, junk), 410, "gone") == GONE
        envelope(await redeem(gw, junk), 410, "gone")
    envelope(await gw.client.get("/api/v1/invites/peek"), 400, "bad_request")
    envelope(
        await gw.client.post("/api/v1/invites/redeem", json={"password": PASSWORD}), 400, "validation_error"
    )

    token = (await invite(gw, org, "late@example.com"))["token"]
    envelope(await redeem(gw, token, password="short"), 400, "bad_request")
    await gw.state.store.run(
        lambda conn: conn.execute(
            t.invite_tokens.update().values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    )
    envelope(await peek(gw, token), 410, "gone")
    envelope(await redeem(gw, token), 410, "gone")
    listed = (await As(gw, gw.api_key()).get(f"/orgs/{org}/invites")).json()
    assert [i["status"] for i in listed["data"]] == ["expired"]
    envelope(await login(gw, "late@example.com", PASSWORD), 401, "unauthorized")

    # An invite of a deleted organisation is gone too.
    other = await insert_org(gw, "Doomed")
    doomed = (await invite(gw, other, "doomed@example.com"))["token"]
    await gw.state.store.run(
        lambda conn: conn.execute(
            t.organizations.update().where(t.organizations.c.id == other).values(deleted_at=datetime.now(UTC))
        )
    )
    envelope(await peek(gw, doomed), 410, "gone")


async def test_reinvite_replaces_the_open_invite_and_withdraw(gw: RunningGateway) -> None:
    org = await home_org(gw)
    first = await invite(gw, org, "twice@example.com")
    second = await invite(gw, org, "twice@example.com", role="org_admin")
    envelope(await peek(gw, first["token"]), 410, "gone")
    assert (await peek(gw, second["token"])).json()["role"] == "org_admin"
    listed = (await As(gw, gw.api_key()).get(f"/orgs/{org}/invites")).json()["data"]
    assert [i["id"] for i in listed] == [second["id"]]

    withdrawn = await As(gw, gw.api_key()).delete(f"/orgs/{org}/invites/{second['id']}")
    assert withdrawn.status_code == 204
    envelope(await peek(gw, second["token"]), 410, "gone")
    again = await As(gw, gw.api_key()).delete(f"/orgs/{org}/invites/{second['id']}")
    envelope(again, 404, "not_found")


async def test_invite_validation_rbac_and_existing_accounts(gw: RunningGateway) -> None:
    org = await home_org(gw)
    admin = gw.api_key()
    other = await insert_org(gw, "Other")
    body = {"email": "a@example.com", "role": "team_admin"}
    bad_role = await As(gw, admin).post(f"/orgs/{org}/invites", json=body)
    envelope(bad_role, 400, "bad_request")
    bad_email = await As(gw, admin).post(f"/orgs/{org}/invites", json={"email": "nope"})
    envelope(bad_email, 400, "bad_request")
    unknown_org = await As(gw, admin).post(f"/orgs/{new_id()}/invites", json={"email": "a@example.com"})
    envelope(unknown_org, 404, "not_found")

    await create(gw, admin, email="member@example.com")
    await create(gw, admin, email="boss@example.com", role="org_admin")
    member, boss = await session(gw, "member@example.com"), await session(gw, "boss@example.com")
    as_member = await As(gw, member).post(f"/orgs/{org}/invites", json={"email": "a@example.com"})
    envelope(as_member, 403, "forbidden")
    envelope(await As(gw, member).get(f"/orgs/{org}/invites"), 403, "forbidden")
    cross = await As(gw, boss).post(f"/orgs/{other}/invites", json={"email": "a@example.com"})
    envelope(cross, 403, "forbidden")
    envelope(await As(gw, boss).get(f"/orgs/{other}/invites"), 403, "forbidden")
    mine = await invite(gw, org, "fromboss@example.com", key=boss)
    other_invite = await invite(gw, other, "elsewhere@example.com")
    envelope(await As(gw, boss).delete(f"/orgs/{other}/invites/{other_invite['id']}"), 403, "forbidden")
    envelope(await As(gw, boss).delete(f"/orgs/{org}/invites/{other_invite['id']}"), 404, "not_found")
    assert mine["org_id"] == org

    # Already a member: refused. An account elsewhere: the invite can be made, but redeeming it cannot take
    # over the account, so it answers 409 and stays open (the account itself accepts it, signed in).
    member_again = await As(gw, admin).post(f"/orgs/{org}/invites", json={"email": "member@example.com"})
    envelope(member_again, 409, "conflict")
    outside = await invite(gw, other, "member@example.com")
    assert envelope(await redeem(gw, outside["token"], password="attacker-password"), 409, "conflict")
    assert (await peek(gw, outside["token"])).status_code == 200
    envelope(await login(gw, "member@example.com", "attacker-password"), 401, "unauthorized")


async def test_pagination_and_a_token_redeemed_once_under_concurrency(gw: RunningGateway) -> None:
    org = await home_org(gw)
    made = [await invite(gw, org, f"p{n}@example.com") for n in range(3)]
    first = (await As(gw, gw.api_key()).get(f"/orgs/{org}/invites?limit=2")).json()
    assert [i["id"] for i in first["data"]] == [made[0]["id"], made[1]["id"]]
    assert first["has_more"] is True
    cursor = first["next_cursor"]
    rest = (await As(gw, gw.api_key()).get(f"/orgs/{org}/invites?limit=2&cursor={cursor}")).json()
    assert [i["id"] for i in rest["data"]] == [made[2]["id"]]
    assert rest["has_more"] is False
    assert all(i["status"] == "pending" for i in first["data"] + rest["data"])
    envelope(await As(gw, gw.api_key()).get(f"/orgs/{org}/invites?limit=101"), 400, "validation_error")

    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await redeem(gw, made[0]["token"])).status_code)

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
    assert (await redeem(gw, token, name="n" * 256)).status_code == 201
