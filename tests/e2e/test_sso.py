"""Single sign-on in the web UI against a real OpenID Provider (issue 21 points 2 and 3).

The provider is ``oidc-provider`` (npm, certified; :mod:`tests.oidc_op`), run by ``tests/clients/node/op.mjs``
on an ephemeral port with its test users; the module's gateway has it as the global provider in
``voidllm.yaml`` (new users of ``acme.test`` are created as members of the bootstrap organisation).

A user of ``acme.test`` clicks ``Sign in with SSO`` on the sign-in page, signs in at the provider's own page
and lands on the dashboard signed in, created as a member; a user of another domain comes back to the
sign-in page, which says their domain is not allowed (and drops the code from the address). An org admin of
a second organisation sets up that organisation's provider on the ``SSO`` page (the client secret is never
shown again), and the connection test reports the provider's endpoint and keys; a user of that
organisation's domain then signs in with it. The system admin sees the global provider read-only, and its
test works. Once that organisation turns password sign-in off, its member's password sign-in is refused
with "This organization signs in with SSO" and the SSO button becomes the primary one. The sign-in page
and the SSO page are screenshotted light and dark and checked with axe-core.
"""

from __future__ import annotations

import re
import select
import subprocess
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import orjson
import pytest
from playwright.sync_api import expect

from tests.e2e.browsing import (
    assert_accessible,
    horizontal_overflow,
    screenshot,
    sign_in,
    wider_than_viewport,
)
from tests.e2e.servers import (
    GatedUpstream,
    Gateway,
    session_state,
    start_gateway,
    stop_gateway,
    ui_build_current,
)
from tests.oidc_op import CLIENT_ID, CLIENT_SECRET, NODE_DIR, START_LIMIT, USERS, OpUser, node_available

if TYPE_CHECKING:
    from tests.e2e.conftest import NewContext

pytestmark = pytest.mark.slow

ALICE = next(user for user in USERS if user.email == "alice@acme.test")
MALLORY = next(user for user in USERS if user.email == "mallory@elsewhere.test")
CAROL = next(user for user in USERS if user.email == "carol@beta.test")
BETA_ADMIN_EMAIL = "beta-admin@e2e.example"
BETA_ADMIN_PASSWORD = "beta-admin-e2e-Passw0rd"
WIDE = {"width": 1280, "height": 800}
CALLBACK = "/api/v1/auth/oidc/callback"


@attrs.define
class RunningOp:
    """``op.mjs`` started from a synchronous test (the trio fixture of :mod:`tests.oidc_op`, by hand)."""

    process: subprocess.Popen[bytes]
    issuer: str
    redirect_uris: list[str] = attrs.Factory(list)

    def allow_redirect(self, uri: str) -> None:
        """Register ``uri`` as a redirect URI of the test client."""
        self.redirect_uris.append(uri)
        client = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": self.redirect_uris}
        httpx.post(f"{self.issuer}/_test/clients", json={"clients": [client]}, timeout=10).raise_for_status()


@pytest.fixture(scope="module")
def op() -> Iterator[RunningOp]:
    node_available()
    spec = {"users": [user.to_json() for user in USERS], "clients": []}
    process = subprocess.Popen(
        ["node", str(NODE_DIR / "op.mjs"), orjson.dumps(spec).decode()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=NODE_DIR,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], START_LIMIT)
        assert ready, "op.mjs did not start listening"
        line = process.stdout.readline()
        assert line, f"op.mjs exited before listening (code {process.wait()})"
        yield RunningOp(process, str(orjson.loads(line)["issuer"]))
    finally:
        process.stdin.close()  # op.mjs ends when its stdin closes
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: GatedUpstream, op: RunningOp
) -> Iterator[Gateway]:
    """The module's gateway, with the provider as its global one (this module's own ``gateway``); its
    organisations' providers may be on loopback (``allow_private_issuers``), as the provider is."""
    problem = ui_build_current()
    if problem:
        pytest.fail(problem)
    settings = f"""  sso:
    enabled: true
    issuer: {op.issuer}
    client_id: {CLIENT_ID}
    client_secret: {CLIENT_SECRET}
    allowed_domains: [acme.test]
    auto_provision: true
    default_role: member
    default_org_slug: default
    group_sync: additive
    allow_private_issuers: true
"""
    running = start_gateway(tmp_path_factory.mktemp("gateway"), upstream.url, settings_yaml=settings)
    op.allow_redirect(running.url + CALLBACK)
    yield running
    stop_gateway(running)


@pytest.fixture(scope="module")
def beta(gateway: Gateway) -> str:
    """A second organisation with its org admin; returns its id."""
    with gateway.api() as api:
        org = api.post("/api/v1/orgs", json={"name": "Beta", "slug": "beta"})
        assert org.status_code == 201, org.text
        org_id = str(org.json()["id"])
        admin = {"email": BETA_ADMIN_EMAIL, "password": BETA_ADMIN_PASSWORD, "org_id": org_id}
        created = api.post("/api/v1/users", json={**admin, "role": "org_admin"})
        assert created.status_code == 201, created.text
    return org_id


def sign_in_with_sso(page: Any, gateway: Gateway, op: RunningOp, user: OpUser) -> None:
    """From the sign-in page: type the email, Sign in with SSO, sign in at the provider's page as ``user``."""
    # The provider's page has no icon: the browser's request for one would be logged as a failed load.
    page.route(op.issuer + "/favicon.ico", lambda route: route.fulfill(status=204))
    page.goto(gateway.url + "/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_role("link", name="Sign in with SSO").click()
    expect(page).to_have_url(re.compile(re.escape(op.issuer) + r"/interaction/"))
    page.get_by_label("Email").fill(user.email)
    page.get_by_role("button", name="Sign in").click()


def user_row(gateway: Gateway, email: str) -> dict[str, Any]:
    with gateway.api() as api:
        users = api.get("/api/v1/users", params={"limit": 100}).raise_for_status().json()["data"]
    [found] = [user for user in users if user["email"] == email]
    return dict(found)


def test_the_sign_in_page_offers_sso_light_and_dark(new_context: NewContext, gateway: Gateway) -> None:
    for scheme in ("light", "dark"):
        page = new_context(color_scheme=scheme, viewport=WIDE).new_page()
        page.goto(gateway.url + "/login")
        sso = page.get_by_role("link", name="Sign in with SSO")
        expect(sso).to_be_visible()
        page.get_by_label("Email").fill(ALICE.email)
        href = urllib.parse.urlsplit(sso.get_attribute("href") or "")
        assert href.path == "/api/v1/auth/oidc/login", href
        assert urllib.parse.parse_qs(href.query) == {"email": [ALICE.email]}, href
        assert_accessible(page, f"the sign-in page ({scheme})")
        screenshot(page, "sso-sign-in", scheme)


def test_a_user_signs_in_at_the_provider_and_lands_on_the_dashboard_as_a_new_member(
    new_context: NewContext, gateway: Gateway, op: RunningOp
) -> None:
    page = new_context(viewport=WIDE).new_page()
    sign_in_with_sso(page, gateway, op, ALICE)
    expect(page.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()
    assert urllib.parse.urlsplit(page.url).path == "/", page.url
    page.get_by_role("button", name="Account").click()
    menu = page.get_by_role("menu")
    expect(menu).to_contain_text(ALICE.email)
    expect(menu.get_by_text("Member", exact=True)).to_be_visible()
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link", name="SSO")).to_have_count(0)
    created = user_row(gateway, ALICE.email)
    assert created["auth_provider"] == "oidc", created
    assert created["role"] == "member", created
    with gateway.api() as api:
        default_org = api.get("/api/v1/me").raise_for_status().json()["org_id"]
    assert created["org_id"] == default_org, created


def test_a_user_of_a_domain_not_allowed_is_told_so_on_the_sign_in_page(
    new_context: NewContext, gateway: Gateway, op: RunningOp
) -> None:
    for scheme in ("light", "dark"):
        page = new_context(color_scheme=scheme, viewport=WIDE).new_page()
        sign_in_with_sso(page, gateway, op, MALLORY)
        alert = page.get_by_role("alert")
        expect(alert).to_have_text(
            "Your email domain is not allowed to sign in to this organization. Ask an administrator."
        )
        expect(page).to_have_url(gateway.url + "/login")
        expect(page.get_by_role("button", name="Account")).to_have_count(0)
        assert_accessible(page, f"the sign-in page with the domain refusal ({scheme})")
        screenshot(page, "sso-domain-refused", scheme)
    with gateway.api() as api:
        users = api.get("/api/v1/users", params={"limit": 100}).raise_for_status().json()["data"]
    assert MALLORY.email not in {user["email"] for user in users}


def test_an_org_admin_sets_up_the_organization_provider_and_its_users_sign_in_with_it(
    new_context: NewContext, gateway: Gateway, op: RunningOp, beta: str
) -> None:
    page = new_context(viewport=WIDE).new_page()
    sign_in(page, gateway.url, BETA_ADMIN_EMAIL, BETA_ADMIN_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="SSO").click()
    expect(page.get_by_role("heading", level=1, name="Single sign-on")).to_be_visible()
    expect(page.get_by_role("heading", name="Global provider")).to_have_count(0)
    form = page.get_by_role("form", name="Organization provider")
    expect(form.get_by_text("No provider is set up for this organization yet")).to_be_visible()
    expect(form.get_by_text(gateway.url + CALLBACK, exact=True)).to_be_visible()

    form.get_by_label(re.compile(r"^Issuer URL")).fill(op.issuer)
    form.get_by_label(re.compile(r"^Client ID")).fill(CLIENT_ID)
    form.get_by_label(re.compile(r"^Client secret")).fill(CLIENT_SECRET)
    form.get_by_label("Allowed email domains").fill("beta.test")
    form.get_by_role("button", name="Test connection").click()
    status = form.get_by_role("status")
    expect(status).to_contain_text("Connection works")
    expect(status).to_contain_text(op.issuer)
    keys = status.get_by_text("Signing keys").locator("xpath=following-sibling::dd[1]")
    assert int(keys.inner_text()) >= 1
    form.get_by_role("button", name="Set up single sign-on").click()
    expect(page.get_by_text("Single sign-on saved", exact=True)).to_be_visible()
    expect(form.get_by_role("button", name="Remove")).to_be_visible()

    page.reload()
    form = page.get_by_role("form", name="Organization provider")
    expect(form.get_by_label(re.compile(r"^Issuer URL"))).to_have_value(op.issuer)
    secret = form.get_by_label(re.compile(r"^Client secret"))
    expect(secret).to_have_value("")
    expect(secret).to_have_accessible_description(re.compile("A secret is stored; it is never shown"))
    assert CLIENT_SECRET not in page.content()
    with gateway.api() as api:
        stored = api.get(f"/api/v1/orgs/{beta}/sso").raise_for_status().json()
    assert stored["client_secret_set"] is True, stored
    assert "client_secret" not in stored, stored
    assert stored["allowed_domains"] == ["beta.test"], stored
    state = session_state(gateway.url, BETA_ADMIN_EMAIL, BETA_ADMIN_PASSWORD)
    for scheme in ("light", "dark"):
        shown = new_context(storage_state=state, color_scheme=scheme, viewport=WIDE).new_page()
        shown.goto(gateway.url + "/sso")
        form = shown.get_by_role("form", name="Organization provider")
        form.get_by_role("button", name="Test connection").click()
        expect(form.get_by_role("status")).to_contain_text("Connection works")
        assert_accessible(shown, f"the SSO page ({scheme})")
        shown.evaluate("() => window.scrollTo(0, 0)")
        screenshot(shown, "sso-org-provider", scheme)

    carol = new_context(viewport=WIDE).new_page()
    sign_in_with_sso(carol, gateway, op, CAROL)
    expect(carol.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()
    created = user_row(gateway, CAROL.email)
    assert created["org_id"] == beta, created


def test_the_system_admin_sees_the_global_provider_read_only_and_tests_it(
    new_context: NewContext, gateway: Gateway, op: RunningOp
) -> None:
    page = new_context(viewport=WIDE).new_page()
    sign_in(page, gateway.url, gateway.email, gateway.password)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="SSO").click()
    card = page.locator("section").filter(has=page.get_by_role("heading", name="Global provider"))
    expect(card.get_by_text(op.issuer, exact=True)).to_be_visible()
    expect(card.get_by_text("acme.test", exact=True)).to_be_visible()
    expect(card.get_by_role("textbox")).to_have_count(0)
    card.get_by_role("button", name="Test connection").click()
    expect(card.get_by_role("status")).to_contain_text("Connection works")
    assert CLIENT_SECRET not in page.content()
    state = session_state(gateway.url, gateway.email, gateway.password)
    for scheme in ("light", "dark"):
        shown = new_context(storage_state=state, color_scheme=scheme, viewport=WIDE).new_page()
        shown.goto(gateway.url + "/sso")
        expect(shown.get_by_role("form", name="Organization provider")).to_be_visible()
        expect(shown.get_by_text(op.issuer, exact=True)).to_be_visible()
        assert_accessible(shown, f"the SSO page of the system admin ({scheme})")
        screenshot(shown, "sso-global-provider", scheme)


def test_the_sso_page_fits_a_phone(new_context: NewContext, gateway: Gateway, beta: str) -> None:
    page = new_context(viewport={"width": 375, "height": 800}).new_page()
    sign_in(page, gateway.url, BETA_ADMIN_EMAIL, BETA_ADMIN_PASSWORD)
    page.goto(gateway.url + "/sso")
    expect(page.get_by_role("form", name="Organization provider")).to_be_visible()
    assert horizontal_overflow(page) == 0, wider_than_viewport(page)


def test_a_member_whose_organization_turned_password_sign_in_off_is_sent_to_sso(
    new_context: NewContext, gateway: Gateway, beta: str
) -> None:
    email, password = "beta-member@e2e.example", "beta-member-e2e-Passw0rd"
    with gateway.api() as api:
        created = api.post("/api/v1/users", json={"email": email, "password": password, "org_id": beta})
        assert created.status_code == 201, created.text
        stored = api.get(f"/api/v1/orgs/{beta}/sso").raise_for_status().json()
        read_only = {"org_id", "client_secret_set", "created_at", "updated_at"}
        writable = {key: value for key, value in stored.items() if key not in read_only}
        api.put(f"/api/v1/orgs/{beta}/sso", json={**writable, "local_login": False}).raise_for_status()
    page = new_context(viewport=WIDE).new_page()
    page.goto(gateway.url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("This organization signs in with SSO")
    sso = page.get_by_role("link", name="Sign in with SSO")
    expect(sso).to_have_class(re.compile(r"\bbg-primary\b"))
    expect(page.get_by_role("button", name="Sign in")).not_to_have_class(re.compile(r"\bbg-primary\b"))
    expect(page.get_by_role("button", name="Account")).to_have_count(0)
