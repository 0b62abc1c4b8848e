"""A system admin switches the organisation being viewed in the web UI (issue 19 point 5).

The bootstrap system admin signs in, chooses a second organisation in the header's switcher (the URL then
names it, ``?org=<id>``, and a banner says which organisation is viewed), creates a team on the Teams page
and a team key of it on the API Keys page, and goes back to their own organisation. The admin API confirms
that the team and the key belong to the second organisation and not to the admin's own, and the key works.
The switcher and the banner are checked with axe-core and screenshotted light and dark on the keys page of
the organisation viewed, and fit a 375 px wide screen.
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

WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 375, "height": 812}
OTHER_NAME = "Gamma Works"
OTHER_SLUG = "gamma-works"


@pytest.fixture(scope="module")
def own_org(gateway: Gateway) -> str:
    with gateway.api() as api:
        return str(api.get("/api/v1/me").raise_for_status().json()["org_id"])


@pytest.fixture(scope="module")
def other_org(gateway: Gateway) -> str:
    with gateway.api() as api:
        created = api.post("/api/v1/orgs", json={"name": OTHER_NAME, "slug": OTHER_SLUG})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def banner(page: Any) -> Any:
    return page.get_by_role("region", name="Organization being viewed")


def test_a_system_admin_switches_organization_and_creates_a_team_and_a_key_there(
    new_context: NewContext, gateway: Gateway, own_org: str, other_org: str
) -> None:
    page = new_context(viewport=WIDE).new_page()
    sign_in(page, gateway.url, gateway.email, gateway.password)
    switcher = page.get_by_role("combobox", name="Organization being viewed")
    expect(switcher).to_have_value(own_org)
    expect(banner(page)).to_have_count(0)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Teams").click()
    expect(page.get_by_role("heading", level=1, name="Teams")).to_be_visible()
    switcher.select_option(label=OTHER_NAME)
    expect(page).to_have_url(f"{gateway.url}/teams?org={other_org}")
    expect(banner(page)).to_contain_text(f"Viewing {OTHER_NAME} ({OTHER_SLUG}), not your own organization")
    expect(switcher).to_have_value(other_org)
    page.wait_for_load_state("networkidle")
    assert_accessible(page, "teams of another organization, with the switcher and the banner")

    page.get_by_role("button", name="Create team").first.click()
    dialog = page.get_by_role("dialog", name="Create team")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("Gamma Research")
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Gamma Research")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/teams/[^/?]+/members\?org={re.escape(other_org)}$"))
    team_id = page.url.split("/teams/")[1].split("/")[0]

    # The navigation's links do not name the organization: following one stays in it.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API Keys").click()
    expect(page).to_have_url(f"{gateway.url}/keys?org={other_org}")
    expect(banner(page)).to_be_visible()
    page.get_by_role("button", name="Create key").first.click()
    dialog = page.get_by_role("dialog", name="Create key")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("gamma-ci")
    expect(dialog.get_by_label("Key type", exact=True)).to_have_value("team_key")
    dialog.get_by_role("combobox", name="Team", exact=True).select_option(label="Gamma Research")
    dialog.get_by_role("button", name="Create", exact=True).click()
    shown = page.get_by_role("dialog").filter(has_text=re.compile("once", re.I))
    expect(shown).to_be_visible()
    values = shown.locator("input").evaluate_all("(fields) => fields.map((field) => field.value)")
    [key] = {match for text in values for match in KEY_PATTERN.findall(text)}
    shown.get_by_role("button", name="Done").click()
    expect(
        page.get_by_role("table", name="API keys").get_by_role("cell", name="gamma-ci", exact=True)
    ).to_be_visible()

    banner(page).get_by_role("button", name="Back to my organization").click()
    expect(page).to_have_url(f"{gateway.url}/keys")
    expect(banner(page)).to_have_count(0)
    expect(switcher).to_have_value(own_org)
    expect(page.get_by_role("heading", level=1, name="API Keys")).to_be_visible()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_text("gamma-ci")).to_have_count(0)

    with gateway.api() as api:
        teams = api.get(f"/api/v1/orgs/{other_org}/teams").raise_for_status().json()["data"]
        keys = api.get(f"/api/v1/orgs/{other_org}/keys").raise_for_status().json()["data"]
        own_teams = api.get(f"/api/v1/orgs/{own_org}/teams").raise_for_status().json()["data"]
        own_keys = api.get(f"/api/v1/orgs/{own_org}/keys").raise_for_status().json()["data"]
    [team] = [t for t in teams if t["name"] == "Gamma Research"]
    assert team["id"] == team_id, team
    assert team["org_id"] == other_org, team
    [created] = [k for k in keys if k["name"] == "gamma-ci"]
    assert created["org_id"] == other_org, created
    assert created["team_id"] == team_id, created
    assert created["key_type"] == "team_key", created
    assert "Gamma Research" not in {t["name"] for t in own_teams}
    assert "gamma-ci" not in {k["name"] for k in own_keys}

    body = {"model": DEMO_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {key}"}
    answered = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=30)
    assert answered.status_code == 200, answered.text


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_switcher_and_banner_in_light_and_dark_are_accessible_and_screenshotted(
    new_context: NewContext, gateway: Gateway, other_org: str, scheme: str
) -> None:
    state = session_state(gateway.url, gateway.email, gateway.password)
    page = new_context(storage_state=state, color_scheme=scheme, viewport=WIDE).new_page()
    page.goto(f"{gateway.url}/keys?org={other_org}")
    expect(page.get_by_role("heading", level=1, name="API Keys")).to_be_visible()
    expect(banner(page)).to_contain_text(f"{OTHER_NAME} ({OTHER_SLUG})")
    expect(page.get_by_role("combobox", name="Organization being viewed")).to_have_value(other_org)
    page.wait_for_load_state("networkidle")
    expect(page.locator("[aria-busy='true']")).to_have_count(0)
    assert screenshot(page, "org-switch-keys", scheme).stat().st_size > 0
    assert_accessible(page, f"org-switch-keys ({scheme})")


def test_the_switcher_and_banner_fit_375_px(
    new_context: NewContext, gateway: Gateway, other_org: str
) -> None:
    state = session_state(gateway.url, gateway.email, gateway.password)
    page = new_context(storage_state=state, viewport=NARROW, is_mobile=True, has_touch=True).new_page()
    page.goto(f"{gateway.url}/keys?org={other_org}")
    expect(page.get_by_role("heading", level=1, name="API Keys")).to_be_visible()
    expect(banner(page).get_by_role("button", name="Back to my organization")).to_be_visible()
    expect(page.get_by_role("combobox", name="Organization being viewed")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert horizontal_overflow(page) == 0, f"the page scrolls sideways at 375 px: {wider_than_viewport(page)}"
    screenshot(page, "org-switch-keys-375px", "light")
