"""Who sees what, where the app is mounted, and sign-in throttling (issue 15 points 2-4).

A member (created through the API with the bootstrap admin's key) signs in and finds no link to an admin
page, and the Models and License routes refuse them. Behind a reverse proxy that mounts the gateway under
``/voidllm/`` (and strips the prefix), the app loads, signs in, navigates and reloads a deep route without the
browser ever asking for a path outside ``/voidllm/``. After five wrong passwords for one email the sign-in
page says when to try again.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.browsing import sign_in
from tests.e2e.servers import Gateway, PrefixProxy

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import NewContext

pytestmark = pytest.mark.slow

MEMBER_EMAIL = "member@e2e.example"
MEMBER_PASSWORD = "member-e2e-Passw0rd-long"
MEMBER_LINKS = ["Dashboard", "Playground", "API Keys", "MCP Servers", "Usage", "Profile"]


@pytest.fixture(scope="module")
def member(gateway: Gateway) -> str:
    with gateway.api() as api:
        org_id = api.get("/api/v1/me").raise_for_status().json()["org_id"]
        created = api.post(
            "/api/v1/users",
            json={"email": MEMBER_EMAIL, "password": MEMBER_PASSWORD, "org_id": org_id, "role": "member"},
        )
    assert created.status_code == 201, created.text
    return MEMBER_EMAIL


@pytest.fixture
def prefix_proxy(gateway: Gateway) -> Iterator[PrefixProxy]:
    proxy = PrefixProxy(gateway.url).start()
    yield proxy
    proxy.stop()


def test_a_members_navigation_has_no_admin_page(
    new_context: NewContext, gateway: Gateway, member: str
) -> None:
    page = new_context().new_page()
    sign_in(page, gateway.url, member, MEMBER_PASSWORD)
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link")).to_have_text(MEMBER_LINKS)
    page.get_by_role("button", name="Account").click()
    expect(page.get_by_role("menuitem", name="Sign out")).to_be_visible()
    page.keyboard.press("Escape")

    page.goto(f"{gateway.url}/models")
    expect(page.get_by_role("button", name="Account")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_role("heading", level=1, name="Models")).to_have_count(0)

    page.goto(f"{gateway.url}/license")
    expect(page.get_by_role("heading", level=1, name="No access")).to_be_visible()
    expect(page.get_by_text("Your role does not allow this page.")).to_be_visible()
    expect(page.get_by_role("heading", level=1, name="License")).to_have_count(0)
    expect(navigation.get_by_role("link", name="License")).to_have_count(0)


def test_the_app_works_under_a_sub_path_behind_a_reverse_proxy(
    new_context: NewContext, gateway: Gateway, prefix_proxy: PrefixProxy
) -> None:
    mount = f"{prefix_proxy.url}/voidllm/"
    page = new_context().new_page()
    page.goto(mount)
    expect(page).to_have_url(re.compile(rf"^{re.escape(mount)}login(\?|$)"))
    sign_in(page, mount, gateway.email, gateway.password)
    expect(page).to_have_url(re.compile(rf"^{re.escape(mount.rstrip('/'))}/?$"))
    expect(page.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()

    keys = page.get_by_role("navigation", name="Main").get_by_role("link", name="API Keys")
    expect(keys).to_have_attribute("href", "/voidllm/keys")
    keys.click()
    expect(page).to_have_url(f"{mount}keys")
    page.reload()
    expect(page.get_by_role("heading", level=1, name="API Keys")).to_be_visible()
    page.wait_for_load_state("networkidle")
    outside = [path for path in prefix_proxy.paths if not path.startswith("/voidllm/") and path != "/voidllm"]
    assert outside == [], "the browser asked for paths outside the mount"
    assert any(path.startswith("/voidllm/assets/") for path in prefix_proxy.paths)
    assert any(path.startswith("/voidllm/api/v1/") for path in prefix_proxy.paths)


def test_repeated_wrong_passwords_make_the_sign_in_page_say_when_to_try_again(
    new_context: NewContext, gateway: Gateway
) -> None:
    email = "locked-out@e2e.example"
    for _ in range(5):
        guess = {"email": email, "password": "wrong-guess"}
        wrong = httpx.post(f"{gateway.url}/api/v1/auth/session", json=guess)
        assert wrong.status_code == 401, wrong.text
    page = new_context().new_page()
    page.goto(f"{gateway.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("wrong-guess")
    page.get_by_role("button", name="Sign in").click()
    throttled = page.get_by_role("alert").filter(has_text=re.compile(r"try again", re.I))
    expect(throttled).to_be_visible()
    expect(throttled).to_contain_text(re.compile(r"\d"))
