"""Every page of the web UI, light and dark, wide and 375 px narrow (issue 15 points 4-6).

Each page is opened as the bootstrap system admin (the sign-in page signed out) in a browser following the
system's light or dark scheme. It must show its heading and the ``Account`` menu, have no serious or critical
axe-core violation, log no console error, and a full-page screenshot is saved as
``test-artifacts/screenshots/<page>-<light|dark>.png``. At 375 px wide no page scrolls sideways, and the
navigation is reachable through the ``Menu`` button.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import pytest
from playwright.sync_api import expect

from tests.e2e.browsing import axe_violations, horizontal_overflow, screenshot, wider_than_viewport
from tests.e2e.servers import Gateway, session_state

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
    Page("models", "models", "Models"),
    Page("usage", "usage", "Usage"),
    Page("profile", "profile", "Profile"),
]
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def admin_state(gateway: Gateway) -> dict[str, Any]:
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
        expect(tab.get_by_role("button", name="Account")).to_be_visible()
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
    assert axe_violations(tab) == []


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_page_is_usable_375_px_wide(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any], page: Page
) -> None:
    tab = open_page(new_context, gateway, page, admin_state, viewport=NARROW, is_mobile=True, has_touch=True)
    assert horizontal_overflow(tab) == 0, f"the page scrolls sideways at 375 px: {wider_than_viewport(tab)}"
    if page.heading is not None:
        tab.get_by_role("button", name="Menu").click()
        navigation = tab.get_by_role("navigation", name="Main")
        expect(navigation.get_by_role("link", name="Usage")).to_be_visible()
        assert horizontal_overflow(tab) == 0, f"the open menu scrolls sideways: {wider_than_viewport(tab)}"
    screenshot(tab, f"{page.name}-375px", "light")
