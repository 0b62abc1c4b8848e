"""An administrator's day in the web UI, against a real ``voidllm serve`` (issue 15 points 3, 4 and 6).

Sign in with the bootstrap credentials from the banner (a wrong password first), then sign out and see the
old cookie refused; a revoked session sends the browser to the sign-in page, which returns to the page it
wanted; create a key in ``API Keys`` and use it with the ``openai`` SDK; stream a playground answer and see
it grow piece by piece (the upstream sends each piece only when the test lets it, so the page cannot show it
all at once), with the zero-knowledge markers of the prompt and the answer in no browser storage, in no file
of the browser's profile and in no file the gateway wrote; see that request on the dashboard and the usage
page, and export the usage as CSV.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import openai
import orjson
import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.browsing import KEY_PATTERN, browser_storage, choose, sign_in
from tests.e2e.servers import (
    GATED_MODEL,
    GatedUpstream,
    Gateway,
    eventually,
    files_containing,
    requests_of,
    session_state,
)

if TYPE_CHECKING:
    from tests.e2e.conftest import NewContext

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def admin_state(gateway: Gateway) -> dict[str, Any]:
    return session_state(gateway.url, gateway.email, gateway.password)


def session_cookie(context: BrowserContext) -> dict[str, Any]:
    [cookie] = [c for c in context.cookies() if c["name"] == "voidllm_session"]
    return dict(cookie)


def test_sign_in_with_the_bootstrap_credentials_then_sign_out_refuses_the_old_cookie(
    new_context: NewContext, gateway: Gateway
) -> None:
    context = new_context()
    page = context.new_page()
    sign_in_page = f"{gateway.url}/login"
    page.goto(sign_in_page)
    page.get_by_label("Email").fill(gateway.email)
    page.get_by_label("Password", exact=True).fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    invalid = re.compile(r"invalid email or password|email or password (is|are) invalid", re.I)
    expect(page.get_by_role("alert").filter(has_text=invalid)).to_be_visible()
    assert page.url == sign_in_page

    sign_in(page, gateway.url, gateway.email, gateway.password)
    expect(page).to_have_url(f"{gateway.url}/")
    cookie = session_cookie(context)
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/")
    assert page.evaluate("() => document.cookie").find(cookie["value"]) == -1, "a script can read the key"
    stored = orjson.dumps(browser_storage(context, page)["localStorage"]).decode()
    assert cookie["value"] not in stored
    assert "vl_" not in stored
    replay = {"Cookie": f"voidllm_session={cookie['value']}"}
    assert httpx.get(f"{gateway.url}/api/v1/me", headers=replay).json()["email"] == gateway.email

    page.get_by_role("button", name="Account").click()
    with page.expect_response(lambda response: response.url.endswith("/api/v1/auth/logout")) as logout:
        page.get_by_role("menuitem", name="Sign out").click()
    assert logout.value.status == 204
    expect(page).to_have_url(re.compile(r"/login(\?|$)"))
    assert not [c for c in context.cookies() if c["name"] == "voidllm_session"]
    refused = httpx.get(f"{gateway.url}/api/v1/me", headers=replay)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


def test_a_revoked_session_sends_the_browser_to_sign_in_and_back_to_the_page_it_wanted(
    new_context: NewContext, gateway: Gateway
) -> None:
    state = session_state(gateway.url, gateway.email, gateway.password)
    context = new_context(storage_state=state)
    page = context.new_page()
    page.goto(f"{gateway.url}/")
    expect(page.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()
    # the dashboard's own requests (usage, model health) finish before the session goes: one still in
    # flight would be answered 401 and logged by the browser, a race and not what this test is about
    page.wait_for_load_state("networkidle")

    cookies = {c["name"]: c["value"] for c in state["cookies"]}
    revoked = httpx.delete(
        f"{gateway.url}/api/v1/auth/sessions",
        cookies=cookies,
        headers={"X-CSRF-Token": cookies["voidllm_csrf"]},
    )
    assert revoked.status_code == 204, revoked.text
    page.goto(f"{gateway.url}/usage")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fusage"))
    page.get_by_label("Email").fill(gateway.email)
    page.get_by_label("Password", exact=True).fill(gateway.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{gateway.url}/usage")
    expect(page.get_by_role("heading", level=1, name="Usage")).to_be_visible()


def test_sign_out_everywhere_on_the_profile_page_ends_every_session(
    new_context: NewContext, gateway: Gateway
) -> None:
    other, mine = (session_state(gateway.url, gateway.email, gateway.password) for _ in range(2))
    replays = [
        {"Cookie": f"voidllm_session={c['value']}"}
        for state in (other, mine)
        for c in state["cookies"]
        if c["name"] == "voidllm_session"
    ]
    assert [httpx.get(f"{gateway.url}/api/v1/me", headers=r).status_code for r in replays] == [200, 200]
    page = new_context(storage_state=mine).new_page()
    page.goto(f"{gateway.url}/profile")
    sessions = (
        page.get_by_role("main")
        .locator("section")
        .filter(has=page.get_by_role("heading", level=2, name="Active sessions"))
    )
    expect(sessions).to_contain_text(re.compile(r"current|this (browser|session)", re.I))
    sessions.get_by_role("button", name="Sign out everywhere").click()
    ended = page.expect_response(
        lambda r: r.url.endswith("/api/v1/auth/sessions") and r.request.method == "DELETE"
    )
    with ended as everywhere:
        page.get_by_role("alertdialog").get_by_role("button", name="Sign out everywhere").click()
    assert everywhere.value.status == 204
    expect(page).to_have_url(re.compile(r"/login(\?|$)"))
    assert not [c for c in page.context.cookies() if c["name"] == "voidllm_session"]
    assert [httpx.get(f"{gateway.url}/api/v1/me", headers=r).status_code for r in replays] == [401, 401]


def test_a_key_created_in_the_ui_works_with_the_openai_sdk(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any]
) -> None:
    page = new_context(storage_state=admin_state).new_page()
    page.goto(f"{gateway.url}/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API Keys").click()
    expect(page.get_by_role("heading", level=1, name="API Keys")).to_be_visible()
    page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Name", exact=True).fill("e2e-sdk")
    dialog.get_by_role("button", name="Create", exact=True).click()

    shown = page.get_by_role("dialog").filter(has_text=re.compile("once", re.I))
    expect(shown).to_be_visible()
    values = shown.locator("input, textarea").evaluate_all("(fields) => fields.map((field) => field.value)")
    texts = [shown.inner_text(), *values]
    [key] = {match for text in texts for match in KEY_PATTERN.findall(text)}
    expect(shown.get_by_role("button", name=re.compile("copy", re.I)).first).to_be_visible()

    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
    answer = client.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}])
    assert answer.system_fingerprint == "voidllm-demo"
    assert "VoidLLM demo model" in (answer.choices[0].message.content or "")
    assert [m.id for m in client.models.list()]

    shown.get_by_role("button", name="Done").click()  # the dialog's own way out (a key press could go astray)
    expect(shown).to_be_hidden()
    expect(page.get_by_role("main")).to_contain_text("e2e-sdk")


def test_the_playground_api_key_override_answers_with_that_key_and_a_bad_one_keeps_you_signed_in(
    new_context: NewContext, gateway: Gateway, admin_state: dict[str, Any], console_errors: list[str]
) -> None:
    page = new_context(storage_state=admin_state).new_page()
    page.goto(f"{gateway.url}/playground")
    override = page.get_by_label("API key override", exact=True)
    override.fill("vl_uk_" + "0" * 48)
    choose(page, "Model", "demo")
    page.get_by_label("Message", exact=True).fill("Hello")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("main").get_by_role("alert")).to_be_visible()
    expect(page).to_have_url(f"{gateway.url}/playground")
    expect(page.get_by_role("button", name="Account")).to_be_visible()
    # the browser's own lines for the refused key: expected here, and only for the playground's route
    refused = [e for e in console_errors if "/api/v1/playground/" in e and "status of 401" in e]
    assert refused, console_errors
    console_errors[:] = [e for e in console_errors if e not in refused]

    override.fill(gateway.api_key)
    page.get_by_label("Message", exact=True).fill("Hello again")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("main")).to_contain_text("VoidLLM demo model")
    assert gateway.api_key not in orjson.dumps(browser_storage(page.context, page)).decode()


def test_a_playground_answer_streams_piece_by_piece_and_leaves_no_trace(
    profile_context: tuple[BrowserContext, Any],
    gateway: Gateway,
    upstream: GatedUpstream,
    admin_state: dict[str, Any],
) -> None:
    context, profile = profile_context
    context.add_cookies(admin_state["cookies"])
    prompt_marker, answer_marker = f"zkprompt{uuid.uuid4().hex}", f"zkanswer{uuid.uuid4().hex}"
    upstream.pieces = ["Quartz ", "velvet ", "meadow ", "lantern ", "harbor ", f"{answer_marker}."]
    upstream.reset()
    page = context.new_page()
    page.goto(f"{gateway.url}/playground")
    expect(page.get_by_role("heading", level=1, name="Playground")).to_be_visible()
    choose(page, "Model", GATED_MODEL)
    page.get_by_label("Message", exact=True).fill(f"Tell me about {prompt_marker}")
    page.get_by_role("button", name="Send").click()

    main, snapshots = page.get_by_role("main"), []
    answer = main.get_by_text(re.compile("Quartz"))
    for shown in range(1, len(upstream.pieces)):
        upstream.release()
        expect(main).to_contain_text("".join(upstream.pieces[:shown]).strip())
        expect(main).not_to_contain_text(upstream.pieces[shown].strip())
        expect(page.get_by_role("button", name=re.compile("^Stop"))).to_be_visible()
        snapshots.append(answer.first.inner_text().strip())
    upstream.release()
    expect(main).to_contain_text(answer_marker)
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    assert len(set(snapshots)) == len(snapshots) == 5
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(snapshots))
    assert any(prompt_marker in body.decode() for body in upstream.bodies), "the prompt never went upstream"

    for marker in (prompt_marker, answer_marker):
        assert marker not in page.url
        assert marker not in orjson.dumps(browser_storage(context, page)).decode()
    eventually(lambda: requests_of(gateway, GATED_MODEL), what="the playground request in the usage report")
    context.close()
    for marker in (prompt_marker, answer_marker):
        assert files_containing(gateway.files(), marker) == [], "the gateway wrote a conversation's text"
        assert files_containing(profile.rglob("*"), marker) == [], "the browser kept a conversation's text"


def test_stop_ends_a_streaming_answer(
    new_context: NewContext, gateway: Gateway, upstream: GatedUpstream, admin_state: dict[str, Any]
) -> None:
    before = requests_of(gateway, GATED_MODEL)
    upstream.pieces = ["Halted ", "unseen ", "words."]
    upstream.reset()
    page = new_context(storage_state=admin_state).new_page()
    page.goto(f"{gateway.url}/playground")
    choose(page, "Model", GATED_MODEL)
    page.get_by_label("Message", exact=True).fill("Begin, then stop")
    page.get_by_role("button", name="Send").click()
    upstream.release()
    main = page.get_by_role("main")
    expect(main).to_contain_text("Halted")
    stop = page.get_by_role("button", name=re.compile("^Stop"))
    stop.click()
    expect(stop).to_have_count(0)
    upstream.release(2)  # the gateway now finds the browser gone and ends the request
    eventually(lambda: requests_of(gateway, GATED_MODEL) > before, what="the stopped request's usage row")
    expect(main).to_contain_text("Halted")
    expect(main).not_to_contain_text("unseen")


def test_a_playground_request_shows_on_the_dashboard_and_the_usage_page_and_in_the_csv(
    new_context: NewContext, gateway: Gateway, upstream: GatedUpstream, admin_state: dict[str, Any]
) -> None:
    before = requests_of(gateway, GATED_MODEL)
    upstream.pieces = ["Counted ", "once."]
    upstream.reset()
    upstream.release(len(upstream.pieces))
    page = new_context(storage_state=admin_state, accept_downloads=True).new_page()
    page.goto(f"{gateway.url}/playground")
    choose(page, "Model", GATED_MODEL)
    page.get_by_label("Message", exact=True).fill("Count me")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("main")).to_contain_text("Counted once.")
    eventually(lambda: requests_of(gateway, GATED_MODEL) > before, what="the request in the usage report")

    with gateway.api() as api:
        requests_24h = api.get("/api/v1/dashboard/stats").raise_for_status().json()["requests_24h"]
    assert requests_24h >= 1

    navigation = page.get_by_role("navigation", name="Main")
    navigation.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()
    cards = page.get_by_role("main").locator("section")
    stat = cards.filter(has=page.get_by_text("Requests (24h)", exact=True)).locator("dd").first
    expect(stat).to_have_text(str(requests_24h))
    top_models = cards.filter(has=page.get_by_role("heading", level=2, name="Top models"))
    expect(top_models).to_contain_text(GATED_MODEL)

    navigation.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", level=1, name="Usage")).to_be_visible()
    overview = page.get_by_role("main").locator("section")
    requests = overview.filter(has=page.get_by_text("Requests (24h)", exact=True)).locator("dd").first
    expect(requests).to_have_text(re.compile(r"^\d[\d,]*$"))
    assert int(requests.inner_text().replace(",", "")) >= requests_24h
    page.get_by_role("link", name="LLM usage").click()
    expect(page).to_have_url(re.compile(r"/usage/llm\?range=24h$"))
    choose(page, "Group by", "Team")
    expect(page).to_have_url(re.compile(r"[?&]\w*group\w*=team\b"))
    page.reload()
    expect(page.get_by_label("Group by", exact=True)).to_have_value("team")
    choose(page, "Group by", "Model")
    main = page.get_by_role("main")
    expect(main).to_contain_text(GATED_MODEL)

    export = re.compile(r"export|csv", re.I)
    with page.expect_download() as download:
        main.get_by_role("button", name=export).or_(main.get_by_role("link", name=export)).first.click()
    assert download.value.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8-sig").read())))
    assert len(rows) >= 2, rows
    model_rows = [row for row in rows[1:] if GATED_MODEL in row]
    assert model_rows, rows
    assert str(requests_of(gateway, GATED_MODEL)) in model_rows[0], (rows[0], model_rows[0])
