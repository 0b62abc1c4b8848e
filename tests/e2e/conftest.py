"""Fixtures of the end-to-end tests: one real gateway per test module, Debian's Chromium through Playwright.

Chromium is ``/usr/bin/chromium`` (Debian's package; ``scripts/test`` installs it when missing), launched by
Playwright's Python API with :data:`~tests.e2e.browsing.CHROMIUM_ARGS`; no browser is ever downloaded. When it
is missing the tests skip, unless ``VOIDLLM_REQUIRE_SERVICES=1`` (CI), where they fail. The UI build
(``ui/dist``) must be there and current: ``scripts/test`` builds it first; these tests never do.

Every browser context made by :func:`new_context` records the console's errors and the page's uncaught
exceptions, and the test fails when there was one. The only messages tolerated are the browser's own line
for the 401 that ``GET /api/v1/me`` answers when nobody is signed in: that is how the app learns it must
show the sign-in page, and Chromium logs every failed fetch; likewise the 401 of a wrong password and the
429 of a throttled sign-in (:data:`EXPECTED_REFUSALS`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, expect, sync_playwright

from tests.conftest import REQUIRE_SERVICES
from tests.e2e.browsing import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.servers import GatedUpstream, Gateway, start_gateway, stop_gateway, ui_build_current

if TYPE_CHECKING:
    from pathlib import Path

NewContext = Callable[..., BrowserContext]

# A loaded machine (the whole suite on two cores) can take seconds to render a page: wait up to 15 s for
# what a test expects to see, as for every action (BrowserContext.set_default_timeout below).
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def upstream() -> Iterator[GatedUpstream]:
    """The gated upstream of the module's gateway; tests set :attr:`GatedUpstream.pieces` as they need."""
    gated = GatedUpstream(["Streamed ", "one ", "piece ", "at ", "a ", "time."]).start()
    yield gated
    gated.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: GatedUpstream) -> Iterator[Gateway]:
    """``voidllm serve`` on a fresh SQLite database, serving the UI build, for the whole module."""
    problem = ui_build_current()
    if problem:
        pytest.fail(problem)
    running = start_gateway(tmp_path_factory.mktemp("gateway"), upstream.url)
    yield running
    stop_gateway(running)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (Debian's chromium package; scripts/test installs it as root)"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message} and VOIDLLM_REQUIRE_SERVICES is set")
        pytest.skip(message)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


EXPECTED_REFUSALS = {
    "/api/v1/me": ("401",),
    "/api/v1/auth/session": ("401", "403", "429"),
    "/api/v1/invites/peek": ("410",),
    "/sso": ("404",),
}
"""The browser's own console lines for refusals a page meets by design: who am I when nobody is signed in, a
wrong password, a throttled sign-in, a password sign-in in an organisation that signs in with SSO, an invite
link that was used already, an organisation without a single sign-on provider of its own (Chromium logs every
fetch answered 4xx)."""


def tolerated(message: Any) -> bool:
    url = (message.location or {}).get("url", "").split("?")[0]
    path = "/" + url.split("/", 3)[-1] if url.count("/") >= 3 else url
    statuses = next((v for k, v in EXPECTED_REFUSALS.items() if path.endswith(k)), ())
    return message.text.startswith("Failed to load resource") and any(
        f"status of {status}" in message.text for status in statuses
    )


@pytest.fixture
def console_errors() -> list[str]:
    """The console errors and uncaught page exceptions of every context made by :func:`new_context`."""
    return []


def watch(context: BrowserContext, console_errors: list[str]) -> BrowserContext:
    context.set_default_timeout(15_000)
    context.on(
        "console",
        lambda msg: (
            console_errors.append(f"console {msg.type}: {msg.text} ({msg.location})")
            if msg.type == "error" and not tolerated(msg)
            else None
        ),
    )
    context.on("weberror", lambda error: console_errors.append(f"uncaught: {error.error}"))
    return context


@pytest.fixture
def new_context(browser: Browser, console_errors: list[str]) -> Iterator[NewContext]:
    """Make browser contexts (Playwright's ``new_context`` options: ``viewport``, ``color_scheme``,
    ``storage_state``...) that record console errors; all closed at the end, then the errors asserted."""
    made: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        made.append(watch(browser.new_context(**options), console_errors))
        return made[-1]

    yield make
    for context in made:
        context.close()
    assert console_errors == [], "the browser console reported errors"


@pytest.fixture
def profile_context(
    playwright: Playwright, tmp_path: Path, console_errors: list[str]
) -> Iterator[tuple[BrowserContext, Path]]:
    """A browser context whose profile (every file Chromium keeps for it) is ``tmp_path / "profile"``, so a
    test can read those files once the context is closed; it records console errors like
    :func:`new_context`."""
    profile = tmp_path / "profile"
    context = playwright.chromium.launch_persistent_context(
        profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800}
    )
    yield watch(context, console_errors), profile
    context.close()
    assert console_errors == [], "the browser console reported errors"
