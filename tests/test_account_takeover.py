"""Accounts belong to their organisations (issue 12, point 1), through a real gateway.

The regression test of the takeover chain found from outside: org A's admin added org B's admin to org A,
reset that account's password and signed in to org B with it. Then who may change an account: the user
itself (``current_password`` for password and email), a system admin, or an org admin of *every*
organisation of the user; and how an existing account joins another organisation: an invite it accepts or
declines while signed in (``POST /invites/accept``, ``/invites/decline``, ``GET /me/invites``).

Users who belong to several organisations act here with user keys bound to one of them (inserted as the keys
API would), so these tests do not depend on how sign-in picks an organisation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from tests.gateway import RunningGateway
from tests.test_admin_auth import (
    As,
    envelope,
    login,
)
from tests.test_admin_users import (
    PASSWORD,
    create,
    insert_org,
    insert_user_key,
    session,
    users_gateway,
)
from voidllm.store import tables as t

ELSEWHERE = "this account also belongs to another organization; only a system admin can change it"
WRONG = "current password is incorrect"
GONE = "invite is invalid, expired or already redeemed"


@pytest.fixture
async def gw(db_target: tuple[str, str]) -> AsyncIterator[RunningGateway]:
    async with users_gateway(db_target) as gateway:
        yield gateway


async def memberships_of(gw: RunningGateway, user_id: str) -> dict[str, str]:
    """``{org_id: role}`` of the user's org memberships, read from the store."""
    m = t.org_memberships
    rows = await gw.state.store.run(
        lambda conn: conn.execute(sa.select(m.c.org_id, m.c.role).where(m.c.user_id == user_id)).all()
    )
    return {org_id: role for org_id, role in rows}


async def join(gw: RunningGateway, org_id: str, user_id: str, role: str = "member") -> None:
    """The system admin adds an existing user to an organisation (the one caller allowed to)."""
    body = {"user_id": user_id, "role": role}
    response = await As(gw, gw.api_key()).post(f"/orgs/{org_id}/members", json=body)
    assert response.status_code == 201, response.text


async def invite(gw: RunningGateway, key: str, org_id: str, email: str, role: str = "member") -> str:
    response = await As(gw, key).post(f"/orgs/{org_id}/invites", json={"email": email, "role": role})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def test_the_takeover_chain_from_the_issue_is_closed(gw: RunningGateway) -> None:
    admin = gw.api_key()
    org_a, org_b = await insert_org(gw, "OrgA"), await insert_org(gw, "OrgB")
    await create(gw, admin, email="a-admin@example.com", org_id=org_a, role="org_admin")
    victim = await create(gw, admin, email="b-admin@example.com", org_id=org_b, role="org_admin")
    attacker = await session(gw, "a-admin@example.com")
    victim_session = await session(gw, "b-admin@example.com")

    # 1. Org A's admin adds org B's admin to org A: refused, pointing to an invite; nothing is written.
    body = {"user_id": victim["id"], "role": "member"}
    message = envelope(await As(gw, attacker).post(f"/orgs/{org_a}/members", json=body), 403, "forbidden")
    assert message == (
        "only system admins add existing users directly; send an invite instead "
        f"(POST /api/v1/orgs/{org_a}/invites)"
    )
    assert await memberships_of(gw, str(victim["id"])) == {org_b: "org_admin"}

    # 2. The account stays org B's: invisible to A's admin (404) ...
    for change in ({"password": "hijacked-password"}, {"email": "mine@example.com"}):
        envelope(await As(gw, attacker).patch(f"/users/{victim['id']}", json=change), 404, "not_found")
    # ... and once it has joined org A itself (an invite it accepted), still not A's alone to change (403).
    token = await invite(gw, attacker, org_a, "b-admin@example.com")
    assert (await As(gw, victim_session).post("/invites/accept", json={"token": token})).status_code == 201
    assert await memberships_of(gw, str(victim["id"])) == {org_b: "org_admin", org_a: "member"}
    for change in (
        {"password": "hijacked-password"},
        {"email": "mine@example.com"},
        {"display_name": "Owned"},
        {"password": "hijacked-password", "current_password": "a-guess-at-it"},
    ):
        patched = await As(gw, attacker).patch(f"/users/{victim['id']}", json=change)
        assert envelope(patched, 403, "forbidden") == ELSEWHERE

    # 3. No org B session can be obtained with anything the attacker set; the owner still signs in.
    for pick in ({}, {"org_id": org_b}):
        guess = {"email": "b-admin@example.com", "password": "hijacked-password", **pick}
        attempt = await gw.client.post("/api/v1/auth/login", json=guess)
        envelope(attempt, 401, "unauthorized")
    envelope(await login(gw, "mine@example.com", "hijacked-password"), 401, "unauthorized")
    owner = await gw.client.post(
        "/api/v1/auth/login", json={"email": "b-admin@example.com", "password": PASSWORD, "org_id": org_b}
    )
    assert owner.status_code == 200, owner.text
    assert (await As(gw, victim_session).get("/me")).json()["org_id"] == org_b
    account = (await As(gw, admin).get(f"/users/{victim['id']}")).json()
    assert (account["email"], account["display_name"]) == ("b-admin@example.com", "")


async def test_self_service_needs_the_current_password_for_password_and_email(gw: RunningGateway) -> None:
    admin = gw.api_key()
    me = await create(gw, admin, email="self@example.com")
    other = await create(gw, admin, email="other@example.com")
    current, second = await session(gw, "self@example.com"), await session(gw, "self@example.com")
    key = await insert_user_key(gw, str(me["id"]), str(me["org_id"]))
    path = f"/users/{me['id']}"

    renamed = await As(gw, current).patch(path, json={"display_name": "Me Myself"})
    assert renamed.status_code == 200
    assert renamed.json()["display_name"] == "Me Myself"
    assert (renamed.json()["org_id"], renamed.json()["role"]) == (me["org_id"], "member")
    for token in (current, key):  # a session and a user key of the user act the same
        for change in ({"password": "new-password-1"}, {"email": "moved@example.com"}):
            assert envelope(await As(gw, token).patch(path, json=change), 400, "bad_request") == WRONG
            wrong = await As(gw, token).patch(path, json={**change, "current_password": "not-my-password"})
            assert envelope(wrong, 400, "bad_request") == WRONG
    same_email = await As(gw, key).patch(path, json={"email": "SELF@example.com"})  # not a change: no proof
    assert same_email.status_code == 200
    promote = await As(gw, current).patch(path, json={"is_system_admin": True, "current_password": PASSWORD})
    envelope(promote, 403, "forbidden")
    envelope(await login(gw, "self@example.com", "new-password-1"), 401, "unauthorized")

    moved = await As(gw, key).patch(path, json={"email": "moved@example.com", "current_password": PASSWORD})
    assert moved.status_code == 200
    assert moved.json()["email"] == "moved@example.com"
    proven = {"password": "new-password-1", "current_password": PASSWORD}
    changed = await As(gw, current).patch(path, json=proven)
    assert changed.status_code == 200
    # The caller's own session and keys stay; the user's other sessions end.
    assert (await As(gw, current).get("/me")).status_code == 200
    assert (await As(gw, key).get("/me")).status_code == 200
    envelope(await As(gw, second).get("/me"), 401, "unauthorized")
    envelope(await login(gw, "moved@example.com", PASSWORD), 401, "unauthorized")
    assert (await login(gw, "moved@example.com", "new-password-1")).status_code == 200

    # A member changes nobody else.
    rename_other = await As(gw, current).patch(f"/users/{other['id']}", json={"display_name": "x"})
    assert envelope(rename_other, 403, "forbidden") == "insufficient permissions"


async def test_an_org_admin_of_every_organization_of_the_user_may_change_it(gw: RunningGateway) -> None:
    admin = gw.api_key()
    org_a, org_b = await insert_org(gw, "OrgA"), await insert_org(gw, "OrgB")
    only_a = await create(gw, admin, email="only-a@example.com", org_id=org_a, role="org_admin")
    both = await create(gw, admin, email="both-admin@example.com", org_id=org_a, role="org_admin")
    await join(gw, org_b, str(both["id"]), role="org_admin")
    shared = await create(gw, admin, email="shared@example.com", org_id=org_a)
    await join(gw, org_b, str(shared["id"]))
    single = await create(gw, admin, email="single@example.com", org_id=org_a)
    single_session = await session(gw, "single@example.com")
    loner = await create(gw, admin, email="loner@example.com", org_id=org_a)
    m = t.org_memberships
    await gw.state.store.run(lambda conn: conn.execute(m.delete().where(m.c.user_id == loner["id"])))
    only_a_key = await insert_user_key(gw, str(only_a["id"]), org_a)
    both_key = await insert_user_key(gw, str(both["id"]), org_a)

    # The admin of only one of the user's organisations cannot change it, not even its name.
    for change in ({"display_name": "x"}, {"password": "reset-password-1"}, {"email": "x@example.com"}):
        patched = await As(gw, only_a_key).patch(f"/users/{shared['id']}", json=change)
        assert envelope(patched, 403, "forbidden") == ELSEWHERE
    # An admin of both (org admin by its key's role in A and by its membership in B) can, without proof.
    reset = await As(gw, both_key).patch(f"/users/{shared['id']}", json={"password": "reset-password-1"})
    assert reset.status_code == 200
    assert reset.json()["org_id"] == org_a
    assert (await login(gw, "shared@example.com", "reset-password-1")).status_code in (200, 409)
    envelope(await login(gw, "shared@example.com", PASSWORD), 401, "unauthorized")
    # Only a member of B (not its admin): the same admin loses the right to change the account.
    await gw.state.store.run(
        lambda conn: conn.execute(
            m.update().where(m.c.user_id == both["id"], m.c.org_id == org_b).values(role="member")
        )
    )
    demoted = await As(gw, both_key).patch(f"/users/{shared['id']}", json={"display_name": "y"})
    assert envelope(demoted, 403, "forbidden") == ELSEWHERE

    # A user of one organisation is its admin's to change (a reset ends the user's sessions).
    reset_body = {"password": "reset-password-2"}
    single_reset = await As(gw, only_a_key).patch(f"/users/{single['id']}", json=reset_body)
    assert single_reset.status_code == 200
    envelope(await As(gw, single_session).get("/me"), 401, "unauthorized")
    assert (await login(gw, "single@example.com", "reset-password-2")).status_code == 200

    # A user without any membership: invisible to org admins; the system admin changes anyone.
    hidden = await As(gw, only_a_key).patch(f"/users/{loner['id']}", json={"display_name": "x"})
    envelope(hidden, 404, "not_found")
    for user in (loner, shared, both):
        renamed = await As(gw, admin).patch(f"/users/{user['id']}", json={"display_name": "By The Admin"})
        assert renamed.status_code == 200
        assert renamed.json()["display_name"] == "By The Admin"
    by_admin = await As(gw, admin).patch(f"/users/{loner['id']}", json={"password": "reset-password-3"})
    assert by_admin.status_code == 200
    assert by_admin.json()["org_id"] is None

    # A system admin is changed only by a system admin (or itself), even within the org admin's organisation.
    root = await create(gw, admin, email="root@example.com", org_id=org_a, is_system_admin=True)
    patched_root = await As(gw, only_a_key).patch(f"/users/{root['id']}", json={"display_name": "x"})
    assert envelope(patched_root, 403, "forbidden") == "insufficient permissions"


async def test_an_existing_account_accepts_an_invite_while_signed_in(gw: RunningGateway) -> None:
    admin = gw.api_key()
    org_a, org_b = await insert_org(gw, "OrgA"), await insert_org(gw, "OrgB")
    await create(gw, admin, email="boss@example.com", org_id=org_a, role="org_admin")
    guest = await create(gw, admin, email="guest@example.com", org_id=org_b)
    await create(gw, admin, email="bystander@example.com", org_id=org_a)
    boss, guest_session = await session(gw, "boss@example.com"), await session(gw, "guest@example.com")
    bystander = await session(gw, "bystander@example.com")
    guest_key = await insert_user_key(gw, str(guest["id"]), org_b)

    assert (await As(gw, guest_session).get("/me/invites")).json() == {"data": []}
    token = await invite(gw, boss, org_a, "Guest@Example.com", role="org_admin")
    listed = await As(gw, guest_key).get("/me/invites")
    assert listed.status_code == 200
    assert token not in listed.text
    assert "token" not in listed.text
    [open_invite] = listed.json()["data"]
    offered = (open_invite["org_id"], open_invite["org_name"], open_invite["role"])
    assert offered == (org_a, "OrgA", "org_admin")
    assert set(open_invite) == {"id", "org_id", "org_name", "role", "expires_at", "created_at"}
    assert (await As(gw, bystander).get("/me/invites")).json() == {"data": []}

    # Only the addressee may answer; the public redeem cannot attach the account either.
    for other in (bystander, boss, admin):
        for answer in ("accept", "decline"):
            refused = await As(gw, other).post(f"/invites/{answer}", json={"token": token})
            assert envelope(refused, 403, "forbidden") == "this invite is addressed to another account"
    redeem = await gw.client.post("/api/v1/invites/redeem", json={"token": token, "password": "attacker-pw1"})
    envelope(redeem, 409, "conflict")
    assert await memberships_of(gw, str(guest["id"])) == {org_b: "member"}

    accepted = await As(gw, guest_session).post("/invites/accept", json={"token": token})
    assert accepted.status_code == 201, accepted.text
    joined = accepted.json()
    assert (joined["org_id"], joined["org_name"], joined["role"]) == (org_a, "OrgA", "org_admin")
    assert await memberships_of(gw, str(guest["id"])) == {org_b: "member", org_a: "org_admin"}
    assert (await As(gw, guest_session).get("/me/invites")).json() == {"data": []}
    for answer in ("accept", "decline"):
        again = await As(gw, guest_session).post(f"/invites/{answer}", json={"token": token})
        assert envelope(again, 410, "gone") == GONE
    statuses = (await As(gw, admin).get(f"/orgs/{org_a}/invites")).json()["data"]
    assert [(i["email"], i["status"]) for i in statuses] == [("guest@example.com", "redeemed")]
    # The guest is now an admin of org A with a key bound to it.
    guest_in_a = await insert_user_key(gw, str(guest["id"]), org_a)
    assert (await As(gw, guest_in_a).get(f"/orgs/{org_a}/members")).status_code == 200
    # An invite into an organisation the account joined meanwhile answers 409 and stays open.
    late = await invite(gw, boss, org_a, "late@example.com")
    late_user = await create(gw, admin, email="late@example.com", org_id=org_b)
    await join(gw, org_a, str(late_user["id"]))
    late_key = await insert_user_key(gw, str(late_user["id"]), org_b)
    conflict = await As(gw, late_key).post("/invites/accept", json={"token": late})
    assert envelope(conflict, 409, "conflict") == "you are already a member of this organization"
    assert (await gw.client.get("/api/v1/invites/peek", params={"token": late})).status_code == 200


async def test_an_existing_account_declines_an_invite_while_signed_in(gw: RunningGateway) -> None:
    admin = gw.api_key()
    org_a, org_b = await insert_org(gw, "OrgA"), await insert_org(gw, "OrgB")
    await create(gw, admin, email="boss@example.com", org_id=org_a, role="org_admin")
    guest = await create(gw, admin, email="guest@example.com", org_id=org_b)
    boss, guest_session = await session(gw, "boss@example.com"), await session(gw, "guest@example.com")
    token = await invite(gw, boss, org_a, "guest@example.com")

    declined = await As(gw, guest_session).post("/invites/decline", json={"token": token})
    assert (declined.status_code, declined.content) == (204, b"")
    assert await memberships_of(gw, str(guest["id"])) == {org_b: "member"}
    assert (await As(gw, guest_session).get("/me/invites")).json() == {"data": []}
    for answer in ("accept", "decline"):
        envelope(await As(gw, guest_session).post(f"/invites/{answer}", json={"token": token}), 410, "gone")
    envelope(await gw.client.get("/api/v1/invites/peek", params={"token": token}), 410, "gone")
    [listed] = (await As(gw, boss).get(f"/orgs/{org_a}/invites")).json()["data"]
    assert (listed["status"], listed["redeemed_at"]) == ("declined", None)

    # The organisation may ask again; the new invite is open (the declined one stays declined).
    again = await invite(gw, boss, org_a, "guest@example.com")
    assert len((await As(gw, guest_session).get("/me/invites")).json()["data"]) == 1
    statuses = sorted(i["status"] for i in (await As(gw, boss).get(f"/orgs/{org_a}/invites")).json()["data"])
    assert statuses == ["declined", "pending"]
    assert (await As(gw, guest_session).post("/invites/accept", json={"token": again})).status_code == 201

    # Keys that are not a user's cannot answer an invite at all.
    team = await As(gw, admin).post(f"/orgs/{org_a}/teams", json={"name": "Blue", "slug": "blue"})
    team_key = await As(gw, admin).post(
        f"/orgs/{org_a}/keys", json={"name": "t", "key_type": "team_key", "team_id": team.json()["id"]}
    )
    assert team_key.status_code == 201, team_key.text
    third = await invite(gw, boss, org_a, "third@example.com")
    refused = await As(gw, team_key.json()["key"]).post("/invites/accept", json={"token": third})
    envelope(refused, 403, "forbidden")
