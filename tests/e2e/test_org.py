"""Organisation, invites and system administration in the web UI (issue 19 points 2, 3, 5 and 10).

An org admin (created through the API with the bootstrap admin's key) signs in, finds the Organization link
and no system administration link, invites an email as a member and copies the invite link, which is shown
once. The invitee opens it in a second browser context (no session), sees the organisation, email and role,
sets a display name and a password, and is signed in; later they sign in again with that password, and the
used link says it was used already. The org admin sees the invitee among the members.

The bootstrap system admin signs in, finds Organizations and Users, creates an organisation, views it (the
organisation pages under ``/orgs/<id>/``), deactivates it after typing its slug and reactivates it; creates
a user, makes them system admin, resets their password (checked by signing in with it through the API) and
deactivates them. The pages that test_pages.py does not open (the organisation's Models and MCP access tabs,
an organisation's Teams tab under ``/orgs/<id>/teams``, the invite page and an invalid invite link's) are
screenshotted light and dark and checked with axe-core here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.browsing import assert_accessible, screenshot, sign_in
from tests.e2e.servers import Gateway, session_state

if TYPE_CHECKING:
    from tests.e2e.conftest import NewContext

pytestmark = pytest.mark.slow

ORG_ADMIN_EMAIL = "org-admin@e2e.example"
ORG_ADMIN_PASSWORD = "org-admin-e2e-Passw0rd"
INVITEE_EMAIL = "invitee@e2e.example"
INVITEE_PASSWORD = "invitee-e2e-Passw0rd"
SYSTEM_LINKS = ["Organizations", "Users", "Models", "License"]
WIDE = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def org_id(gateway: Gateway) -> str:
    with gateway.api() as api:
        return str(api.get("/api/v1/me").raise_for_status().json()["org_id"])


@pytest.fixture(scope="module")
def org_admin(gateway: Gateway, org_id: str) -> str:
    body = {"email": ORG_ADMIN_EMAIL, "password": ORG_ADMIN_PASSWORD, "org_id": org_id, "role": "org_admin"}
    with gateway.api() as api:
        created = api.post("/api/v1/users", json=body)
    assert created.status_code == 201, created.text
    return ORG_ADMIN_EMAIL


def nav_links(page: Any) -> list[str]:
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link", name="Dashboard")).to_be_visible()
    return [text.strip() for text in navigation.get_by_role("link").all_inner_texts()]


def test_an_org_admin_invites_a_user_who_accepts_in_a_second_context_and_signs_in(
    new_context: NewContext, gateway: Gateway, org_id: str, org_admin: str
) -> None:
    admin_context = new_context(permissions=["clipboard-read", "clipboard-write"])
    admin = admin_context.new_page()
    sign_in(admin, gateway.url, org_admin, ORG_ADMIN_PASSWORD)
    links = nav_links(admin)
    assert "Organization" in links, links
    assert not set(SYSTEM_LINKS) & set(links), links

    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Organization").click()
    expect(admin.get_by_role("heading", level=1, name="Organization")).to_be_visible()
    expect(admin).to_have_url(f"{gateway.url}/org/settings")
    admin.get_by_role("tab", name="Members").click()
    expect(admin).to_have_url(f"{gateway.url}/org/users")
    members = admin.get_by_role("table", name="Members")
    expect(members.get_by_role("cell", name=ORG_ADMIN_EMAIL, exact=True)).to_be_visible()

    admin.get_by_role("button", name="Invite member").click()
    dialog = admin.get_by_role("dialog", name="Invite member")
    dialog.get_by_role("textbox", name="Email").fill(INVITEE_EMAIL)
    dialog.get_by_label("Role").select_option(label="Member")
    dialog.get_by_label("Expires").select_option(label="In 3 days")
    dialog.get_by_role("button", name="Create invite").click()
    shown = admin.get_by_role("dialog", name="Invite created")
    link = shown.get_by_role("textbox", name="Invite link").input_value()
    assert re.fullmatch(rf"{re.escape(gateway.url)}/invite/vl_iv_\S+", link), link
    shown.get_by_role("button", name="Copy link").click()
    expect(shown.get_by_role("button", name="Copied")).to_be_visible()
    assert admin.evaluate("() => navigator.clipboard.readText()") == link
    shown.get_by_role("button", name="Done").click()
    expect(admin.get_by_role("dialog")).to_have_count(0)
    pending = admin.get_by_role("table", name="Pending invites")
    expect(pending.get_by_role("row").filter(has_text=INVITEE_EMAIL)).to_have_count(1)
    token = link.rsplit("/", 1)[1]
    assert token not in admin.content(), "the invite's token is still on the page"
    with gateway.api() as api:
        listed = api.get(f"/api/v1/orgs/{org_id}/invites").raise_for_status().json()["data"]
    [sent] = [invite for invite in listed if invite["email"] == INVITEE_EMAIL]
    valid_for = datetime.fromisoformat(sent["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=3) - timedelta(minutes=5) < valid_for <= timedelta(days=3), sent["expires_at"]

    invitee_context = new_context()
    invitee = invitee_context.new_page()
    invitee.goto(link)
    expect(invitee.get_by_role("heading", level=1, name="Join your organization")).to_be_visible()
    details = invitee.get_by_role("definition")
    expect(details.filter(has_text=INVITEE_EMAIL)).to_have_count(1)
    expect(details.filter(has_text=re.compile(r"^Member$"))).to_have_count(1)
    invitee.get_by_label("Display name").fill("Ivy Invitee")
    invitee.get_by_label(re.compile(r"^Password")).fill(INVITEE_PASSWORD)
    invitee.get_by_label(re.compile(r"^Confirm password")).fill(INVITEE_PASSWORD)
    invitee.get_by_role("button", name="Create account and sign in").click()
    expect(invitee.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()
    invitee.get_by_role("button", name="Account").click()
    expect(invitee.get_by_role("menu").get_by_text("Ivy Invitee")).to_be_visible()
    invitee.get_by_role("menuitem", name="Sign out").click()
    expect(invitee.get_by_label("Email")).to_be_visible()

    sign_in(invitee, gateway.url, INVITEE_EMAIL, INVITEE_PASSWORD)
    links = nav_links(invitee)
    assert "Organization" not in links, links
    invitee.goto(link)
    expect(invitee.get_by_role("heading", level=1, name="Invite already used")).to_be_visible()

    admin.reload()
    expect(members.get_by_role("cell", name=INVITEE_EMAIL, exact=True)).to_be_visible()
    expect(admin.get_by_text("No pending invites")).to_be_visible()


def test_a_system_admin_manages_organizations_and_users(new_context: NewContext, gateway: Gateway) -> None:
    page = new_context().new_page()
    sign_in(page, gateway.url, gateway.email, gateway.password)
    links = nav_links(page)
    assert {"Organization", *SYSTEM_LINKS} <= set(links), links

    navigation = page.get_by_role("navigation", name="Main")
    navigation.get_by_role("link", name="Organizations").click()
    expect(page.get_by_role("heading", level=1, name="Organizations")).to_be_visible()
    page.get_by_role("button", name="Create organization").click()
    dialog = page.get_by_role("dialog", name="Create organization")
    dialog.get_by_role("textbox", name="Name").fill("Beta Labs")
    expect(dialog.get_by_role("textbox", name="Slug")).to_have_value("beta-labs")
    dialog.get_by_role("button", name="Create").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.get_by_role("link", name="View Beta Labs").click()
    expect(page.get_by_role("heading", level=1, name="Organization: Beta Labs")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"^{re.escape(gateway.url)}/orgs/[^/]+/settings$"))
    page.get_by_role("button", name="Deactivate organization").click()
    confirm = page.get_by_role("alertdialog", name="Deactivate Beta Labs?")
    expect(confirm.get_by_role("button", name="Deactivate")).to_be_disabled()
    confirm.get_by_role("textbox").fill("beta-labs")
    confirm.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("button", name="Reactivate organization")).to_be_visible()
    page.get_by_role("button", name="Reactivate organization").click()
    expect(page.get_by_role("button", name="Deactivate organization")).to_be_visible()

    navigation.get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", level=1, name="Users")).to_be_visible()
    page.get_by_role("button", name="Create user").click()
    dialog = page.get_by_role("dialog", name="Create user")
    dialog.get_by_role("textbox", name="Email").fill("ops@e2e.example")
    dialog.get_by_role("textbox", name="Display name").fill("Ops Person")
    dialog.get_by_label(re.compile(r"^Password")).fill("ops-e2e-Passw0rd-1")
    dialog.get_by_role("button", name="Create").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    row = page.get_by_role("table", name="Users").get_by_role("row").filter(has_text="ops@e2e.example")
    row.get_by_role("button", name="Make system admin Ops Person").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Make system admin").click()
    expect(row.get_by_text("System admin", exact=True)).to_be_visible()

    row.get_by_role("button", name="Reset password for Ops Person").click()
    reset = page.get_by_role("dialog", name="Reset password for Ops Person")
    reset.get_by_label(re.compile(r"^New password")).fill("ops-e2e-Passw0rd-2")
    reset.get_by_role("button", name="Reset password").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    credentials = {"email": "ops@e2e.example", "password": "ops-e2e-Passw0rd-2"}
    signed_in = httpx.post(f"{gateway.url}/api/v1/auth/login", json=credentials)
    assert signed_in.status_code == 200, signed_in.text

    row.get_by_role("button", name="Deactivate Ops Person").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Deactivate").click()
    expect(row).to_have_count(0)
    refused = httpx.post(f"{gateway.url}/api/v1/auth/login", json=credentials)
    assert refused.status_code == 401, refused.text


PAGES = [  # the other pages of these points are in test_pages.py's every-page check
    ("org-models", "org/models", "Organization"),
    ("org-mcp-access", "org/mcp-access", "Organization"),
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_pages_in_light_and_dark_are_accessible_and_screenshotted(
    new_context: NewContext, gateway: Gateway, scheme: str
) -> None:
    state = session_state(gateway.url, gateway.email, gateway.password)
    page = new_context(storage_state=state, color_scheme=scheme, viewport=WIDE).new_page()
    with gateway.api() as api:
        org_id = api.get("/api/v1/me").raise_for_status().json()["org_id"]
        team = api.post(f"/api/v1/orgs/{org_id}/teams", json={"name": f"Shots {scheme}"})
    assert team.status_code == 201, team.text
    for name, path, heading in [*PAGES, ("org-teams", f"orgs/{org_id}/teams", "Organization")]:
        page.goto(f"{gateway.url}/{path}")
        expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
        page.wait_for_load_state("networkidle")
        expect(page.locator("[aria-busy='true']")).to_have_count(0)
        assert screenshot(page, name, scheme).stat().st_size > 0
        assert_accessible(page, f"{name} ({scheme})")
    expect(page.get_by_role("link", name=f"Shots {scheme}")).to_have_attribute(
        "href", re.compile(rf"/teams/{team.json()['id']}/members$")
    )
    with gateway.api() as api:
        invite = api.post(f"/api/v1/orgs/{org_id}/invites", json={"email": f"shot-{scheme}@e2e.example"})
    assert invite.status_code == 201, invite.text
    public = new_context(color_scheme=scheme, viewport=WIDE).new_page()
    public.goto(f"{gateway.url}/invite/{invite.json()['token']}")
    expect(public.get_by_role("heading", level=1, name="Join your organization")).to_be_visible()
    assert screenshot(public, "invite", scheme).stat().st_size > 0
    assert_accessible(public, f"invite ({scheme})")
    public.goto(f"{gateway.url}/invite/not-an-invite-token")
    expect(public.get_by_role("heading", level=1, name="Invalid invite link")).to_be_visible()
    assert screenshot(public, "invite-invalid", scheme).stat().st_size > 0
    assert_accessible(public, f"invite-invalid ({scheme})")
