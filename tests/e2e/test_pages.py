"""Every page of the web UI, light and dark, wide and 375 px narrow (issue 15 points 4-6).

Each page is opened as the bootstrap system admin (the sign-in page signed out) in a browser following the
system's light or dark scheme. It must show its heading and the ``Account`` menu, have no serious or critical
axe-core violation, log no console error, and a full-page screenshot is saved as
``test-artifacts/screenshots/<page>-<light|dark>.png``. The gateway has seen some traffic first, so the
pages show data. At 375 px wide no page scrolls sideways, and the navigation is reachable through the
``Menu`` button. The sign-in form, the ``Create key`` dialog and the ``Account`` menu work by keyboard (the
dialog holds the focus and gives it back), and dates follow the browser's locale.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import attrs
import openai
import pytest
from playwright.sync_api import expect

from tests.e2e.browsing import assert_accessible, horizontal_overflow, screenshot, wider_than_viewport
from tests.e2e.servers import DEMO_MODEL, GATED_MODEL, Gateway, eventually, requests_of, session_state

if TYPE_CHECKING:
    from tests.e2e.conftest import NewContext

pytestmark = pytest.mark.slow


@attrs.frozen
class Page:
    name: str  # the screenshot's name
    path: str  # the client route
    heading: str | None  # the page's h1; None for the sign-in page


PAGES = [
    Page("sign-in", "login", None),
    Page("dashboard", "", "Dashboard"),
    Page("playground", "playground", "Playground"),
    Page("api-keys", "keys", "API Keys"),
    Page("teams", "teams", "Teams"),
    Page("service-accounts", "service-accounts", "Service Accounts"),
    Page("mcp-servers", "mcp-servers", "MCP Servers"),
    Page("models", "models", "Models"),
    Page("usage", "usage", "Usage"),
    Page("usage-llm", "usage/llm", "Usage"),
    Page("usage-mcp", "usage/mcp", "Usage"),
    Page("org-settings", "org/settings", "Organization"),
    Page("org-members", "org/users", "Organization"),
    Page("organizations", "orgs", "Organizations"),
    Page("users", "users", "Users"),
    Page("license", "license", "License"),
    Page("profile", "profile", "Profile"),
]
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def admin_state(gateway: Gateway) -> dict[str, Any]:
    """The admin's browser session on a gateway that has seen some traffic and has a second key, so the
    dashboard, usage and keys pages show their charts and tables, not only their empty states."""
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0)
    for model, count in ((DEMO_MODEL, 3), (GATED_MODEL, 2)):
        for _ in range(count):
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}])
    with gateway.api() as api:
        me = api.get("/api/v1/me").raise_for_status().json()
        body = {"name": "ci-pipeline", "key_type": "user_key", "user_id": me["id"], "requests_per_minute": 60}
        key = api.post(f"/api/v1/orgs/{me['org_id']}/keys", json=body)
        assert key.status_code == 201, key.text
    eventually(lambda: requests_of(gateway) >= 5, what="the requests in the usage report")
    return session_state(gateway.url, gateway.email, gateway.password)


def open_page(
    new_context: NewContext, gateway: Gateway, page: Page, state: dict[str, Any], **options: Any
) -> Any:
    """Open ``page`` in a new context and wait until it has loaded: its heading (or the sign-in form),
    no request in flight, nothing marked busy."""
    context = new_context(storage_state=None if page.heading is None else state, **options)
    tab = context.new_page()
    tab.goto(f"{gateway.url}/{page.path}")
    if page.heading is None:
        expect(tab.get_by_label("Email")).to_be_visible()
        expect(tab.get_by_role("button", name="Sign in")).to_be_visible()
    else:
        expect(tab.get_by_role("heading", level=1, name=page.heading)).to_be_visible()
        expect(tab.get_by_role("button", name="Account", exact=True)).to_be_visible()
    tab.wait_for_load_state("networkidle")
    expect(tab.locator("[aria-busy='true']")).to_have_count(0)
    return tab


def luminance(css_color: str) -> float:
    """Relative brightness (0..1) of a computed ``rgb(...)``/``rgba(...)`` colour."""
    parts = css_color[css_color.index("(") + 1 : css_color.index(")")].replace("/", " ").replace(",", " ")
    red, green, blue = (float(part) for part in parts.split()[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_page_in_light_and_dark_is_accessible_and_screenshotted(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any], page: Page, scheme: str
) -> None:
    tab = open_page(new_context, gateway, page, admin_state, viewport=WIDE, color_scheme=scheme)
    background = tab.evaluate("() => getComputedStyle(document.body).backgroundColor")
    if scheme == "dark":
        assert luminance(background) < 0.5, f"the dark theme has a light background: {background}"
    else:
        assert luminance(background) > 0.5, f"the light theme has a dark background: {background}"
    assert screenshot(tab, page.name, scheme).stat().st_size > 0
    assert_accessible(tab, f"{page.name} ({scheme})")


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_page_is_usable_375_px_wide(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any], page: Page
) -> None:
    tab = open_page(new_context, gateway, page, admin_state, viewport=NARROW, is_mobile=True, has_touch=True)
    assert horizontal_overflow(tab) == 0, f"the page scrolls sideways at 375 px: {wider_than_viewport(tab)}"
    screenshot(tab, f"{page.name}-375px", "light")
    if page.heading is not None:
        tab.get_by_role("button", name="Menu").click()
        navigation = tab.get_by_role("navigation", name="Main")
        expect(navigation.get_by_role("link", name="Usage")).to_be_visible()
        assert horizontal_overflow(tab) == 0, f"the open menu scrolls sideways: {wider_than_viewport(tab)}"


def test_the_sign_in_form_the_create_key_dialog_and_the_account_menu_work_by_keyboard(
    new_context: NewContext, gateway: Gateway
) -> None:
    tab = new_context(viewport=WIDE).new_page()
    tab.goto(f"{gateway.url}/login")
    tab.get_by_label("Email").focus()
    tab.keyboard.type(gateway.email)
    tab.keyboard.press("Tab")
    tab.keyboard.type(gateway.password)
    tab.keyboard.press("Enter")
    expect(tab.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()

    tab.goto(f"{gateway.url}/keys")
    create = tab.get_by_role("button", name="Create key")
    create.focus()
    tab.keyboard.press("Enter")
    dialog = tab.get_by_role("dialog")
    expect(dialog).to_be_visible()
    focus_inside = dialog.evaluate("(dialog) => dialog.contains(document.activeElement)")
    assert focus_inside, "the open dialog does not hold the focus"
    expect(dialog.get_by_role("textbox", name="Name", exact=True)).to_be_visible()
    assert_accessible(tab, "API Keys with the Create key dialog open")
    screenshot(tab, "api-keys-create-dialog", "light")
    tab.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(create).to_be_focused()

    account = tab.get_by_role("button", name="Account", exact=True)
    account.focus()
    tab.keyboard.press("Enter")
    expect(tab.get_by_role("menu")).to_be_visible()
    expect(tab.get_by_role("menuitem", name="Sign out")).to_be_visible()
    assert_accessible(tab, "API Keys with the Account menu open")
    tab.keyboard.press("Escape")
    expect(tab.get_by_role("menu")).to_have_count(0)
    expect(account).to_be_focused()


@pytest.mark.parametrize(
    ("locale", "date"), [("en-US", r"[A-Z][a-z]{2} \d{1,2}, \d{4}"), ("de-DE", r"\d{2}\.\d{2}\.\d{4}")]
)
def test_dates_follow_the_browsers_locale(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any], locale: str, date: str
) -> None:
    usage = next(page for page in PAGES if page.name == "usage-llm")
    tab = open_page(new_context, gateway, usage, admin_state, viewport=WIDE, locale=locale)
    filters = (
        tab.get_by_role("main")
        .locator("section")
        .filter(has=tab.get_by_role("heading", level=2, name="Filters"))
    )
    expect(filters).to_contain_text(re.compile(rf"{date}\s*[\u2013-]\s*{date}"))
