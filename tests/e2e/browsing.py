"""What the end-to-end tests do in and ask of the browser: Debian's Chromium and how it is launched,
signing in, picking from a select, axe-core's serious and critical violations, everything the app's origin
keeps in the browser, horizontal overflow at narrow widths, and the screenshots kept as test artifacts.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any

from tests.e2e.servers import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
AXE_SOURCE = ROOT / "ui" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
KEY_PATTERN = re.compile(r"vl_(?:uk|tk|sa)_[0-9a-f]{48}")
"""A key as the gateway makes it (``voidllm.crypto.generate_key``)."""


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """The serious and critical violations axe-core finds on ``page`` (WCAG 2.x A/AA and best practices).

    axe's source goes in through the DevTools protocol (``page.evaluate``), which the page's
    Content-Security-Policy does not govern, so the CSP the gateway sends stays in force for the app."""
    if not AXE_SOURCE.is_file():
        raise AssertionError(
            f"{AXE_SOURCE.relative_to(ROOT)} is missing: axe-core must be a devDependency of ui/ "
            "(scripts/test runs npm ci)"
        )
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SOURCE.read_text() + "\n;undefined")
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await window.axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => n.target.join(" ") + " :: " + n.failureSummary),
            }));
        }"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def assert_accessible(page: Any, where: str = "") -> None:
    """Fail, listing each rule, its help and the nodes concerned, when axe-core finds a serious or critical
    violation on ``page``."""
    found = axe_violations(page)
    lines = [f"{v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in found]
    assert not found, f"axe-core on {where or page.url}:\n" + "\n".join(lines)


STORAGE_DUMP = """async () => {
    const out = { localStorage: {}, sessionStorage: {}, indexedDB: [], cacheStorage: [] };
    for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i); out.localStorage[key] = localStorage.getItem(key);
    }
    for (let i = 0; i < sessionStorage.length; i++) {
        const key = sessionStorage.key(i); out.sessionStorage[key] = sessionStorage.getItem(key);
    }
    const request = (r) => new Promise((resolve, reject) => {
        r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error);
    });
    for (const info of (await indexedDB.databases())) {
        const db = await request(indexedDB.open(info.name));
        for (const name of db.objectStoreNames) {
            const store = db.transaction(name).objectStore(name);
            out.indexedDB.push({ db: info.name, store: name,
                keys: JSON.stringify(await request(store.getAllKeys())),
                values: JSON.stringify(await request(store.getAll())) });
        }
        db.close();
    }
    if (typeof caches !== "undefined") {
        for (const name of await caches.keys()) {
            const cache = await caches.open(name);
            for (const req of await cache.keys()) {
                const res = await cache.match(req);
                out.cacheStorage.push({ cache: name, url: req.url, body: res ? await res.text() : "" });
            }
        }
    }
    return out;
}"""


def browser_storage(context: Any, page: Any) -> dict[str, Any]:
    """Everything the app's origin keeps in the browser: local and session storage, IndexedDB, Cache
    Storage (from inside the page), and the context's cookies."""
    found: dict[str, Any] = page.evaluate(STORAGE_DUMP)
    found["cookies"] = context.cookies()
    return found


def screenshot(page: Any, name: str, scheme: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/screenshots/<name>-<scheme>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{scheme}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than its viewport (0 = no horizontal scroll)."""
    return int(
        page.evaluate(
            """() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)
                     - document.documentElement.clientWidth"""
        )
    )


OUTERMOST_TOO_WIDE = """() => {
    const width = document.documentElement.clientWidth, found = [];
    const clipped = (e) => {  // inside a scroll box that contains it
        const position = getComputedStyle(e).position;
        if (position === "fixed") return true;  // follows the viewport: a symptom, never the cause
        let p = e.parentElement;
        if (position === "absolute") {  // only its containing block and what is around that clip it
            while (p && getComputedStyle(p).position === "static") p = p.parentElement;
        }
        for (; p; p = p.parentElement) {
            if (["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(p).overflowX)) return true;
        }
        return false;
    };
    for (const e of document.body.querySelectorAll("*")) {
        const right = e.getBoundingClientRect().right;
        if (right > width + 1 && !clipped(e) && !found.some((f) => f.e.contains(e))) {
            found.push({ e, right });
        }
    }
    return found.slice(0, 5).map(({ e, right }) =>
        e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + "."
        + String(e.className).split(" ").slice(0, 6).join(".") + " right=" + Math.round(right)
        + " text=" + JSON.stringify((e.textContent || "").slice(0, 40)));
}"""


def wider_than_viewport(page: Any) -> list[str]:
    """The outermost elements that stick out to the right of the viewport and no scroll box clips (an
    absolutely positioned one escapes a scroll box that is not its containing block), as ``tag#id.class``
    with their right edge and text: what makes a page scroll sideways."""
    return list(page.evaluate(OUTERMOST_TOO_WIDE))


def sign_in(page: Any, base_url: str, email: str, password: str) -> None:
    """Sign in through the sign-in page and wait for the signed-in app (its ``Account`` menu)."""
    page.goto(urllib.parse.urljoin(base_url, "login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Account").wait_for()


def choose(page: Any, label: str, option: str) -> None:
    """Pick ``option`` in the select labelled ``label``: a native ``<select>`` or a listbox combobox."""
    control = page.get_by_label(label, exact=True)
    if control.evaluate("(element) => element.tagName") == "SELECT":
        control.select_option(label=option)
    else:
        control.click()
        page.get_by_role("option", name=option, exact=True).click()
