"""The audit log and cost report pages against a real ``voidllm serve`` (issue 19 points 7, 8, 9 and 10).

A key created in ``API Keys`` appears in ``Audit Log``: filtered by action and resource type, its entry's
detail shows the request body with the key's name (secrets redacted). ``Cost Reports`` over today (UTC)
shows the same total as ``GET /api/v1/orgs/{org_id}/usage`` for that range, after chat requests through the
mock upstream to a priced model and the unpriced demo model. Both pages open at their paths with their
headings, light and dark, without serious or critical axe-core violations (screenshots kept), 375 px wide
without sideways scrolling; a member is told they are not allowed there.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
import pytest
from playwright.sync_api import expect

from tests.e2e.browsing import (
    assert_accessible,
    horizontal_overflow,
    screenshot,
    sign_in,
    wider_than_viewport,
)
from tests.e2e.servers import DEMO_MODEL, GatedUpstream, Gateway, eventually, session_state

if TYPE_CHECKING:
    from tests.e2e.conftest import NewContext

pytestmark = pytest.mark.slow

PRICED_MODEL = "e2e-priced"
PRICED_REQUESTS = 3
MEMBER_EMAIL = "audit-member@e2e.example"
MEMBER_PASSWORD = "audit-member-Passw0rd-long"
PAGES = [("audit-log", "Audit Log"), ("cost-reports", "Cost Reports")]
WIDE = {"width": 1280, "height": 800}


def today() -> tuple[str, str, str]:
    """Today's UTC day and the range the page asks for it: ``[day 00:00, next day 00:00)``."""
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    return start.date().isoformat(), start.isoformat(), end.isoformat()


@pytest.fixture(scope="module")
def org_id(gateway: Gateway) -> str:
    with gateway.api() as api:
        return str(api.get("/api/v1/me").raise_for_status().json()["org_id"])


@pytest.fixture(scope="module")
def admin_state(gateway: Gateway, upstream: GatedUpstream, org_id: str) -> dict[str, Any]:
    """The admin's browser session on a gateway that has a priced model (on the mock upstream) and has
    answered requests to it and to the demo model, each counted in the usage report."""
    with gateway.api() as api:
        body = {
            "name": PRICED_MODEL,
            "provider": "openai",
            "base_url": f"{upstream.url}/v1",
            "api_key": "sk-e2e-priced",
            "input_price_per_1m": 100_000,
            "output_price_per_1m": 200_000,
        }
        created = api.post("/api/v1/models", json=body)
        assert created.status_code == 201, created.text
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.api_key, max_retries=0)
    for model, count in ((PRICED_MODEL, PRICED_REQUESTS), (DEMO_MODEL, 2)):
        for _ in range(count):
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}])
    eventually(
        lambda: usage_of(gateway, org_id)[0] >= PRICED_REQUESTS + 2, what="the requests in the usage report"
    )
    return session_state(gateway.url, gateway.email, gateway.password)


def usage_of(gateway: Gateway, org_id: str) -> tuple[int, float]:
    """Requests and estimated cost of today (UTC) in the organisation's usage report."""
    _, start, end = today()
    with gateway.api() as api:
        query = {"from": start, "to": end, "group_by": "model"}
        report = api.get(f"/api/v1/orgs/{org_id}/usage", params=query).raise_for_status().json()
    points = report["data"]
    return sum(p["total_requests"] for p in points), sum(p["cost_estimate"] for p in points)


def priced(usage: tuple[int, float]) -> tuple[int, float] | None:
    return usage if usage[1] > 0 else None


def dollars(amount: float) -> str:
    """What the page shows for an amount of at least a dollar in en-US."""
    return f"${amount:,.2f}"


def stat(page: Any, label: str) -> Any:
    return (
        page.locator("dl")
        .filter(has=page.locator("dt", has_text=re.compile(f"^{label}$")))
        .locator("dd")
        .first
    )


def test_a_key_created_in_the_ui_is_in_the_audit_log_with_its_detail(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any], org_id: str
) -> None:
    page = new_context(storage_state=admin_state, viewport=WIDE).new_page()
    page.goto(f"{gateway.url}/keys")
    page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("audited-in-e2e")
    dialog.get_by_role("button", name="Create", exact=True).click()
    shown = page.get_by_role("dialog", name="Key created")
    expect(shown).to_be_visible()
    shown.get_by_role("button", name="Done").click()
    expect(shown).to_have_count(0)

    with gateway.api() as api:
        keys = api.get(f"/api/v1/orgs/{org_id}/keys", params={"limit": 100}).raise_for_status().json()
    [key_id] = [k["id"] for k in keys["data"] if k["name"] == "audited-in-e2e"]

    def recorded() -> bool:  # the audit writer flushes every few seconds
        with gateway.api() as api:
            found = api.get("/api/v1/audit-logs", params={"resource_type": "api_key", "action": "create"})
        return any(e["resource_id"] == key_id for e in found.raise_for_status().json()["data"])

    eventually(recorded, what="the key's audit log entry")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit Log").click()
    expect(page.get_by_role("heading", level=1, name="Audit Log")).to_be_visible()
    filters = page.get_by_role("form", name="Audit log filters")
    filters.get_by_label("Action", exact=True).fill("create")
    filters.get_by_label("Resource type", exact=True).fill("api_key")
    filters.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"/audit-log\?action=create&resource=api_key$"))
    table = page.get_by_role("table", name="Audit log entries")
    row = table.get_by_role("row").filter(has_text=key_id)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("API key")
    expect(row).to_contain_text("201")
    row.get_by_role("button", name=f"Details of create API key {key_id}").click()

    detail = page.get_by_role("dialog", name="Audit log entry")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text(key_id)
    expect(detail.get_by_label("Request body")).to_contain_text('"name": "audited-in-e2e"')
    assert_accessible(page, "Audit Log with an entry's detail open")
    screenshot(page, "audit-log-detail", "light")
    page.keyboard.press("Escape")
    expect(detail).to_have_count(0)


def test_team_invite_and_membership_actions_are_in_the_audit_log(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any], org_id: str
) -> None:
    """The actions of the other flows (a team created, a member added to it, an invite sent) are listed on
    the page, each under its resource type."""
    with gateway.api() as api:
        team = api.post(f"/api/v1/orgs/{org_id}/teams", json={"name": "Audited team"})
        assert team.status_code == 201, team.text
        invite = api.post(
            f"/api/v1/orgs/{org_id}/invites", json={"email": "audited-invitee@e2e.example", "role": "member"}
        )
        assert invite.status_code == 201, invite.text
    ids = {"team": team.json()["id"], "invite": invite.json()["id"]}

    def recorded() -> bool:
        with gateway.api() as api:
            found = api.get("/api/v1/audit-logs", params={"action": "create", "limit": 100})
        seen = {(e["resource_type"], e["resource_id"]) for e in found.raise_for_status().json()["data"]}
        return all((kind, resource_id) in seen for kind, resource_id in ids.items())

    eventually(recorded, what="the team's and the invite's audit log entries")
    page = new_context(storage_state=admin_state, viewport=WIDE).new_page()
    for kind, resource_id in ids.items():
        page.goto(f"{gateway.url}/audit-log?action=create&resource={kind}")
        table = page.get_by_role("table", name="Audit log entries")
        expect(table.get_by_role("row").filter(has_text=resource_id)).to_have_count(1)


def test_the_cost_report_matches_the_usage_api_for_the_same_range(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any], org_id: str
) -> None:
    day, _, _ = today()
    requests, cost = eventually(lambda: priced(usage_of(gateway, org_id)), what="the priced usage")
    # 12 prompt tokens at $0.10 and 6 completion tokens at $0.20 per priced request; the demo model is free.
    assert cost == pytest.approx(PRICED_REQUESTS * 2.4)

    page = new_context(storage_state=admin_state, viewport=WIDE, locale="en-US").new_page()
    page.goto(f"{gateway.url}/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Cost Reports").click()
    expect(page.get_by_role("heading", level=1, name="Cost Reports")).to_be_visible()
    page.goto(f"{gateway.url}/cost-reports?range=custom&from={day}&to={day}")
    expect(page.get_by_role("table", name="Cost per day")).to_be_visible()
    expect(stat(page, "Total cost")).to_have_text(dollars(cost))
    expect(stat(page, "Average per day")).to_have_text(dollars(cost))
    expect(stat(page, "Requests")).to_have_text(str(requests))
    expect(stat(page, "Top model")).to_have_text(PRICED_MODEL)
    models = page.get_by_role("table", name="Cost per model")
    expect(models.get_by_role("row").filter(has_text=PRICED_MODEL)).to_contain_text(dollars(cost))
    expect(models.get_by_role("row").filter(has_text=DEMO_MODEL)).to_contain_text("$0.00")
    expect(page.get_by_role("table", name="Top users").get_by_role("row").nth(1)).to_contain_text(
        gateway.email
    )

    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV of the cost per model").click()
    assert download.value.suggested_filename == f"voidllm-cost-per-model-{day}-to-{day}.csv"
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "Model,Requests,Prompt tokens,Completion tokens,Total tokens,Estimated cost"
    assert lines[1].startswith(f"{PRICED_MODEL},{PRICED_REQUESTS},")
    assert float(lines[1].split(",")[-1]) == cost


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("path", "heading"), PAGES, ids=[name for name, _ in PAGES])
def test_each_page_opens_at_its_path_with_its_heading_accessible_in_light_and_dark(
    new_context: NewContext,
    gateway: Gateway,
    admin_state: dict[str, Any],
    path: str,
    heading: str,
    scheme: str,
) -> None:
    page = new_context(storage_state=admin_state, viewport=WIDE, color_scheme=scheme).new_page()
    page.goto(f"{gateway.url}/{path}")
    expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
    expect(page.get_by_role("table").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    expect(page.locator("[aria-busy='true']")).to_have_count(0)
    assert screenshot(page, path, scheme).stat().st_size > 0
    assert_accessible(page, f"{heading} ({scheme})")


@pytest.mark.parametrize(("path", "heading"), PAGES, ids=[name for name, _ in PAGES])
def test_each_page_is_usable_375_px_wide(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any], path: str, heading: str
) -> None:
    viewport = {"width": 375, "height": 812}
    page = new_context(
        storage_state=admin_state, viewport=viewport, is_mobile=True, has_touch=True
    ).new_page()
    page.goto(f"{gateway.url}/{path}")
    expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
    expect(page.get_by_role("table").first).to_be_visible()
    assert horizontal_overflow(page) == 0, f"{path} scrolls sideways at 375 px: {wider_than_viewport(page)}"
    screenshot(page, f"{path}-375px", "light")


def test_a_member_has_no_link_to_either_page_and_is_told_it_is_not_allowed(
    new_context: NewContext, gateway: Gateway, org_id: str
) -> None:
    with gateway.api() as api:
        body = {"email": MEMBER_EMAIL, "password": MEMBER_PASSWORD, "org_id": org_id, "role": "member"}
        assert api.post("/api/v1/users", json=body).status_code == 201
    page = new_context(viewport=WIDE).new_page()
    sign_in(page, gateway.url, MEMBER_EMAIL, MEMBER_PASSWORD)
    navigation = page.get_by_role("navigation", name="Main")
    for _, heading in PAGES:
        expect(navigation.get_by_role("link", name=heading)).to_have_count(0)
    for path, _ in PAGES:
        page.goto(f"{gateway.url}/{path}")
        expect(page.get_by_role("heading", level=1, name="No access")).to_be_visible()
        expect(page.get_by_text("Your role does not allow this page.")).to_be_visible()
