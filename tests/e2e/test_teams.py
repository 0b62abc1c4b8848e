"""Teams and service accounts in the browser (issue 19 points 1, 4 and 10).

An org admin (the bootstrap system admin) creates a team with a limit of two requests per minute in the UI,
then a team key for it on the API Keys page, and the third chat completion with that key is refused with 429.
A user whose org role is ``member`` but who is ``team_admin`` of a team signs in: their navigation has Teams
and Service Accounts (and no system page), their team opens, another URL of the admin pages says "No
access". A service account created on its page gets a key on the API Keys page, reached from the account's
key count. Each Teams page and the Service Accounts page, with content in them, pass axe-core in light and
dark, are screenshotted, and do not scroll sideways 375 px wide.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.browsing import (
    KEY_PATTERN,
    assert_accessible,
    horizontal_overflow,
    screenshot,
    sign_in,
    wider_than_viewport,
)
from tests.e2e.servers import DEMO_MODEL, Gateway, session_state

if TYPE_CHECKING:
    from tests.e2e.conftest import NewContext

pytestmark = pytest.mark.slow

LEAD_EMAIL = "lead@e2e.example"
LEAD_PASSWORD = "lead-e2e-Passw0rd-long"
LEAD_LINKS = [
    "Dashboard",
    "Playground",
    "API Keys",
    "Teams",
    "Service Accounts",
    "MCP Servers",
    "Usage",
    "Profile",
]


@pytest.fixture(scope="module")
def admin_state(gateway: Gateway) -> dict[str, Any]:
    return session_state(gateway.url, gateway.email, gateway.password)


@pytest.fixture(scope="module")
def lead_team(gateway: Gateway) -> str:
    """A team ``Research`` (with a daily request and a monthly token budget, shown as progress bars) whose
    admin is a user with the org role ``member`` (made through the API)."""
    with gateway.api() as api:
        org_id = api.get("/api/v1/me").raise_for_status().json()["org_id"]
        user = api.post(
            "/api/v1/users",
            json={"email": LEAD_EMAIL, "password": LEAD_PASSWORD, "org_id": org_id, "role": "member"},
        )
        assert user.status_code == 201, user.text
        team = (
            api.post(
                f"/api/v1/orgs/{org_id}/teams",
                json={"name": "Research", "requests_per_day": 1000, "monthly_token_limit": 100_000},
            )
            .raise_for_status()
            .json()
        )
        joined = api.post(
            f"/api/v1/orgs/{org_id}/teams/{team['id']}/members",
            json={"user_id": user.json()["id"], "role": "team_admin"},
        )
        assert joined.status_code == 201, joined.text
    return str(team["id"])


def revealed_key(page: Any) -> str:
    """The plaintext key the "Key created" dialog shows once, then the dialog closed."""
    shown = page.get_by_role("dialog").filter(has_text=re.compile("once", re.I))
    expect(shown).to_be_visible()
    values = shown.locator("input").evaluate_all("(fields) => fields.map((field) => field.value)")
    [key] = {match for text in values for match in KEY_PATTERN.findall(text)}
    shown.get_by_role("button", name="Done").click()
    return key


def chat_status(gateway: Gateway, key: str) -> int:
    body = {"model": DEMO_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(
        f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ).status_code


def test_a_team_with_limits_is_created_and_a_team_key_hits_its_rpm_limit(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any]
) -> None:
    page = new_context(storage_state=admin_state).new_page()
    page.goto(f"{gateway.url}/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Teams").click()
    expect(page.get_by_role("heading", level=1, name="Teams")).to_be_visible()
    page.get_by_role("button", name="Create team").first.click()
    dialog = page.get_by_role("dialog", name="Create team")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("Platform")
    dialog.get_by_label("Requests per minute").fill("2")
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Platform")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/teams/[^/]+/members$"))
    page.get_by_role("tab", name="Settings").click()
    expect(page).to_have_url(re.compile(r"/teams/[^/]+/settings$"))
    expect(page.get_by_text("Requests per minute:")).to_contain_text("2")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="API Keys").click()
    page.get_by_role("button", name="Create key").first.click()
    dialog = page.get_by_role("dialog", name="Create key")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("platform-ci")
    dialog.get_by_label("Key type", exact=True).select_option(label="Team key")
    dialog.get_by_role("combobox", name="Team", exact=True).select_option(label="Platform")
    dialog.get_by_role("button", name="Create", exact=True).click()
    key = revealed_key(page)
    assert key.startswith("vl_tk_")

    assert [chat_status(gateway, key) for _ in range(3)] == [200, 200, 429]


def test_a_team_admins_navigation_and_their_team(
    new_context: NewContext, gateway: Gateway, lead_team: str
) -> None:
    page = new_context().new_page()
    sign_in(page, gateway.url, LEAD_EMAIL, LEAD_PASSWORD)
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link")).to_have_text(LEAD_LINKS)

    navigation.get_by_role("link", name="Teams").click()
    expect(page.get_by_role("heading", level=1, name="Teams")).to_be_visible()
    expect(page.get_by_role("button", name="Create team")).to_have_count(0)
    page.get_by_role("link", name="Research").click()
    expect(page.get_by_role("heading", level=1, name="Research")).to_be_visible()
    members = page.get_by_role("table", name="Members of Research")
    expect(members.get_by_role("row").filter(has_text=LEAD_EMAIL)).to_have_count(1)
    page.get_by_role("tab", name="Settings").click()
    expect(page.get_by_text("The team's limits are set by organization admins.")).to_be_visible()

    page.goto(f"{gateway.url}/models")
    expect(page.get_by_role("heading", level=1, name="No access")).to_be_visible()


def test_a_service_account_gets_its_key_on_the_keys_page(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any]
) -> None:
    page = new_context(storage_state=admin_state).new_page()
    page.goto(f"{gateway.url}/service-accounts")
    expect(page.get_by_role("heading", level=1, name="Service Accounts")).to_be_visible()
    page.get_by_role("button", name="Create service account").first.click()
    dialog = page.get_by_role("dialog", name="Create service account")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("deploy-bot")
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("table", name="Service accounts").get_by_text("deploy-bot")).to_be_visible()

    page.goto(f"{gateway.url}/keys")
    page.get_by_role("button", name="Create key").first.click()
    dialog = page.get_by_role("dialog", name="Create key")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("deploy")
    dialog.get_by_label("Key type", exact=True).select_option(label="Service account key")
    dialog.get_by_role("combobox", name="Service account", exact=True).select_option(label="deploy-bot")
    dialog.get_by_role("button", name="Create", exact=True).click()
    key = revealed_key(page)
    assert key.startswith("vl_sa_")
    assert chat_status(gateway, key) == 200

    page.goto(f"{gateway.url}/service-accounts")
    page.get_by_role("link", name="Keys of deploy-bot: 1").click()
    expect(page).to_have_url(re.compile(r"/keys\?account="))
    keys = page.get_by_role("table", name="API keys")
    expect(keys.get_by_role("row")).to_have_count(2)
    expect(keys.get_by_text("deploy", exact=True)).to_be_visible()


def team_pages(team_id: str) -> list[tuple[str, str, str]]:
    """``(screenshot name, path, heading)`` of the Teams pages with a team in them and of Service Accounts
    (the every-page check of ``test_pages.py`` sees them empty)."""
    return [
        ("teams-with-a-team", "teams", "Teams"),
        *(
            (f"team-{part}", f"teams/{team_id}/{part}", "Research")
            for part in ("members", "models", "mcp-access", "settings")
        ),
        ("service-accounts-with-one", "service-accounts", "Service Accounts"),
    ]


def open_loaded(tab: Any, url: str, heading: str) -> None:
    tab.goto(url)
    expect(tab.get_by_role("heading", level=1, name=heading)).to_be_visible()
    tab.wait_for_load_state("networkidle")
    expect(tab.locator("[aria-busy='true']")).to_have_count(0)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_team_pages_are_accessible_and_screenshotted(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any], lead_team: str, scheme: str
) -> None:
    context = new_context(
        storage_state=admin_state, viewport={"width": 1280, "height": 800}, color_scheme=scheme
    )
    tab = context.new_page()
    for name, path, heading in team_pages(lead_team):
        open_loaded(tab, f"{gateway.url}/{path}", heading)
        if name == "team-settings":
            expect(tab.get_by_role("progressbar", name="Tokens this month of Research")).to_be_visible()
        assert screenshot(tab, name, scheme).stat().st_size > 0
        assert_accessible(tab, f"{name} ({scheme})")


def test_the_team_pages_are_usable_375_px_wide(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any], lead_team: str
) -> None:
    narrow = {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True}
    tab = new_context(storage_state=admin_state, **narrow).new_page()
    for name, path, heading in team_pages(lead_team):
        open_loaded(tab, f"{gateway.url}/{path}", heading)
        assert horizontal_overflow(tab) == 0, f"{name} scrolls sideways at 375 px: {wider_than_viewport(tab)}"
        screenshot(tab, f"{name}-375px", "light")
