"""Issue 15 point 2: the web UI served at ``/`` on the gateway's port (:mod:`voidllm.web.spa`).

A tiny fake Vite build (``index.html`` with ``<head>``, one hashed script, one top-level file) stands in for
``ui/dist``: the gateway points at it with ``settings.ui_dir``, or finds it as its package's build. Checked
over HTTP against a real gateway: caching headers, the security headers, the inserted ``<base href>`` for deep
routes and its resolution when the app is mounted under ``/`` and under ``/voidllm/`` behind a proxy that
strips the prefix, API paths that never fall back (an unknown one stays a JSON 404), HEAD, ETags, path
traversal, the answer when no build exists, and a wheel that carries the build.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import trio

from tests.gateway import RunningGateway, make_config, run_gateway
from voidllm.web import spa

ROOT = Path(__file__).resolve().parent.parent
INDEX = (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>VoidLLM</title>\n'
    '<script type="module" crossorigin src="./assets/app-abc123.js"></script>\n'
    '<link rel="stylesheet" href="./assets/app-def456.css">\n</head>\n'
    '<body><div id="root"></div></body>\n</html>\n'
)
SCRIPT = b"console.log('voidllm');\n"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def fake_build(root: Path) -> Path:
    """A build as Vite writes it: index.html, hashed assets, a file of ``public/``."""
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "app-abc123.js").write_bytes(SCRIPT)
    (root / "assets" / "app-def456.css").write_text("body{margin:0}")
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return root


@pytest.fixture
def build(tmp_path: Path) -> Path:
    return fake_build(tmp_path / "dist")


@pytest.fixture
async def gw(sqlite_dsn: str, build: Path):  # type: ignore[no-untyped-def]
    async with run_gateway(make_config(sqlite_dsn, settings=f'ui_dir: "{build}"')) as gateway:
        yield gateway


def assert_ui_headers(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == CSP
    assert "unsafe-inline" not in headers["content-security-policy"].split("script-src")[1].split(";")[0]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-request-id"]


def base_of(html: str) -> str:
    found = re.findall(r'<base href="([^"]*)">', html)
    assert len(found) == 1, html
    return found[0]


async def test_the_index_is_served_at_the_root_with_no_cache_and_the_security_headers(
    gw: RunningGateway,
) -> None:
    response = await gw.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert_ui_headers(response)
    assert base_of(response.text) == "./"
    assert response.text.startswith('<!doctype html>\n<html lang="en">\n<head><base href="./">\n<meta')
    assert response.text.replace('<base href="./">', "") == INDEX


@pytest.mark.parametrize(
    ("path", "base"),
    [
        ("/keys", "./"),
        ("/keys/abc", "../"),
        ("/keys/abc/", "../../"),
        ("/usage/llm/by-model/x", "../../../"),
        ("/login?next=/keys/abc", "./"),
        ("/index.html", "./"),
        ("/models/gpt-4.1", "../"),
        ("/keys/abc.html", "../"),
    ],
)
async def test_every_client_route_gets_the_index_with_its_base(
    gw: RunningGateway, path: str, base: str
) -> None:
    response = await gw.client.get(path)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert_ui_headers(response)
    assert base_of(response.text) == base


@pytest.mark.parametrize("mount", ["/", "/voidllm/"])
async def test_assets_resolve_from_deep_routes_under_the_root_and_under_a_stripped_sub_path(
    gw: RunningGateway, mount: str
) -> None:
    """What a browser does: resolve the page's relative URLs against its ``<base>``; a reverse proxy that
    mounts the gateway under ``mount`` strips that prefix before forwarding."""

    async def through_proxy(browser_path: str) -> object:
        assert browser_path.startswith(mount), browser_path
        return await gw.client.get("/" + browser_path.removeprefix(mount))

    for route in ("", "keys", "keys/abc", "usage/llm/x/"):
        page_url = f"https://gateway.example{mount}{route}"
        page = await through_proxy(urlsplit(page_url).path)
        base = urljoin(page_url, base_of(page.text))  # type: ignore[attr-defined]
        assert base == f"https://gateway.example{mount}"
        for src in re.findall(r'(?:src|href)="(\./assets/[^"]+)"', page.text):  # type: ignore[attr-defined]
            asset = await through_proxy(urlsplit(urljoin(base, src)).path)
            assert asset.status_code == 200, (route, src)  # type: ignore[attr-defined]
        assert urlsplit(urljoin(base, "api/v1/me")).path == f"{mount}api/v1/me"


async def test_hashed_assets_are_immutable_with_their_type_and_etag(gw: RunningGateway) -> None:
    response = await gw.client.get("/assets/app-abc123.js")
    assert response.status_code == 200
    assert response.content == SCRIPT
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["content-length"] == str(len(SCRIPT))
    assert_ui_headers(response)
    again = await gw.client.get("/assets/app-abc123.js", headers={"If-None-Match": response.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    css = await gw.client.get("/assets/app-def456.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    icon = await gw.client.get("/favicon.svg")  # a public/ file: its name is not hashed
    assert (icon.status_code, icon.headers["cache-control"]) == (200, "no-cache")
    assert icon.headers["content-type"] == "image/svg+xml"


async def test_head_answers_the_headers_without_a_body(gw: RunningGateway) -> None:
    for path in ("/", "/keys/abc", "/assets/app-abc123.js"):
        got = await gw.client.head(path)
        full = await gw.client.get(path)
        assert (got.status_code, got.content) == (200, b""), path
        assert got.headers["content-length"] == str(len(full.content))
        assert got.headers["cache-control"] == full.headers["cache-control"]
        assert_ui_headers(got)


async def test_the_index_revalidates_with_its_etag(gw: RunningGateway) -> None:
    first = await gw.client.get("/keys/abc")
    again = await gw.client.get("/keys/abc", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    other = await gw.client.get("/", headers={"If-None-Match": first.headers["etag"]})
    assert other.status_code == 200, "another depth is another document"


async def test_missing_files_are_404_never_the_index(gw: RunningGateway) -> None:
    for path in ("/assets/app-000000.js", "/assets/", "/favicon.ico", "/robots.txt", "/assets"):
        response = await gw.client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert "<html" not in response.text
        assert_ui_headers(response)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nope",
        "/api/v1",
        "/api/nope",
        "/api/v1/playground",
        "/v1",
        "/v1/nope",
        "/metrics/x",
        "/healthcheck",
        "/health/x",
    ],
)
async def test_api_paths_never_fall_back_to_the_ui(gw: RunningGateway, path: str) -> None:
    response = await gw.client.get(path)
    assert response.status_code in (400, 401, 404), (path, response.status_code)
    assert response.headers["content-type"] == "application/json", path
    error = response.json()["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    if path.startswith("/api/"):
        assert (response.status_code, error["code"]) == (404, "not_found"), path


async def test_the_apis_still_answer_beside_the_ui(gw: RunningGateway) -> None:
    assert (await gw.client.get("/healthz")).json()["status"] == "ok"
    assert (await gw.client.get("/health")).json()["status"] == "ok"
    assert (await gw.client.get("/readyz")).status_code == 200
    assert "voidllm_" in (await gw.client.get("/metrics")).text
    assert (await gw.client.get("/api/docs/openapi.json")).json()["openapi"] == "3.1.0"
    lookalike = await gw.client.get("/apiary")  # only /api and what is below it belong to the API
    assert lookalike.headers["content-type"] == "text/html; charset=utf-8"


async def test_other_methods_on_ui_paths_are_json_errors(gw: RunningGateway) -> None:
    response = await gw.client.post("/keys", json={})
    assert response.status_code in (404, 405)
    assert response.json()["error"]["code"] in ("not_found", "method_not_allowed")


async def raw_get(gw: RunningGateway, target: str) -> tuple[int, bytes]:
    """A GET with the request target sent exactly as given (httpx would normalise the dots)."""
    host, port = gw.url.removeprefix("http://").split(":")
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            await stream.send_all(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := await stream.receive_some():
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.mark.parametrize(
    "target",
    [
        "/assets/../../../../etc/passwd",
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/.secret",
        "/assets/.hidden.js",
        "/assets/%5c..%5c..%5csecret.txt",
        "/assets/app-abc123.js%00.png",
        "/assets/outside.js",
    ],
)
async def test_path_traversal_is_refused(gw: RunningGateway, build: Path, target: str) -> None:
    (build.parent / "secret.txt").write_text("TOP SECRET")
    (build / ".secret").write_text("TOP SECRET")
    (build / "assets" / ".hidden.js").write_text("TOP SECRET")
    (build / "assets" / "outside.js").symlink_to(build.parent / "secret.txt")
    status, body = await raw_get(gw, target)
    assert b"TOP SECRET" not in body
    assert b"root:" not in body
    assert status in (400, 404), (target, status)


async def test_without_a_build_the_root_says_how_to_build_it(
    sqlite_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spa, "PACKAGE_BUILD", tmp_path / "none")
    monkeypatch.setattr(spa, "CHECKOUT_BUILD", tmp_path / "none-either")
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        for path in ("/", "/keys/abc"):
            response = await gw.client.get(path)
            assert response.status_code == 503
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
            assert response.headers["cache-control"] == "no-store"
            assert "not built" in response.text
            assert "npm ci && npm run build" in response.text
            assert "<" not in response.text, "a message, never a stand-in UI"
        assert (await gw.client.get("/healthz")).status_code == 200
        missing = await gw.client.get("/api/v1/nope")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
        built = fake_build(tmp_path / "none")  # a build made while the gateway runs is served at once
        assert built.exists()
        assert (await gw.client.get("/")).status_code == 200


async def test_the_package_build_is_found_without_settings(
    sqlite_dsn: str, build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spa, "PACKAGE_BUILD", build)
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        assert base_of((await gw.client.get("/profile")).text) == "./"
        assert (await gw.client.get("/assets/app-abc123.js")).content == SCRIPT


def test_the_package_build_is_the_checkout_ui_dist() -> None:
    """In a checkout ``voidllm/web/ui`` is a link to ``ui/dist``, which the wheel's package data follows."""
    assert spa.PACKAGE_BUILD.is_symlink()
    assert spa.PACKAGE_BUILD.resolve() == (ROOT / "ui" / "dist").resolve()


def test_reserved_paths_and_base_hrefs() -> None:
    assert [
        spa.is_reserved(p)
        for p in (
            "/v1",
            "/v1/models",
            "/api",
            "/api/v1/x",
            "/metrics",
            "/healthz",
            "/health",
            "/readyz",
            "/readyz/x",
        )
    ] == [True] * 9
    outside = ("/", "/v1x", "/apiary", "/metricsx", "/ready", "/keys")
    assert [spa.is_reserved(p) for p in outside] == [False] * 6
    based = b'<html><HEAD lang=x><base href="../"><title>'
    assert spa.with_base(b"<html><HEAD lang=x><title>", "../") == based
    assert spa.with_base(b"<html><header>", "./") == b"<html><header>", "<header> is not <head>"


@pytest.mark.slow
def test_the_wheel_carries_the_built_ui(tmp_path: Path) -> None:
    """``pip wheel`` of the project (a copy, with a fake ``ui/dist``) ships the build as package data (pip
    fetches the build backend from PyPI, as for any build)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "voidllm", source / "voidllm", symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    fake_build(source / "ui" / "dist")
    out = tmp_path / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)]
    subprocess.run(command, check=True, cwd=tmp_path, timeout=300)
    (wheel,) = out.glob("voidllm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    ui = {name for name in names if name.startswith("voidllm/web/ui/")}
    assert ui == {
        "voidllm/web/ui/index.html",
        "voidllm/web/ui/favicon.svg",
        "voidllm/web/ui/assets/app-abc123.js",
        "voidllm/web/ui/assets/app-def456.css",
    }
    assert "voidllm/web/spa.py" in names
    assert "voidllm/store/migrations/env.py" in names
    assert {"voidllm/proxy/encodings/o200k_base.tiktoken.gz", "voidllm/proxy/encodings/LICENSE"} <= names
    assert not any(name.startswith(("ui/", "voidllm/web/ui/node_modules")) for name in names)


# -- scripts/serve builds the UI when it must -------------------------------------------------------------

FAKE_NPM = """#!/bin/sh
echo "npm $*" >> "$NPM_LOG"
if [ "$1 $2" = "run build" ]; then
    [ -z "$FAIL_BUILD" ] || exit 1
    mkdir -p dist && echo '<html><head></head></html>' > dist/index.html
fi
if [ "$1" = ci ]; then
    mkdir -p node_modules && echo '{}' > node_modules/.package-lock.json
fi
"""


def run_ensure_ui_build(checkout: Path, path: str, **env: str) -> tuple[list[str], str]:
    """``serve_ui_build`` of ``scripts/lib/ui.sh`` in ``checkout``: the npm commands it ran, its stderr."""
    log = checkout / "npm.log"
    log.unlink(missing_ok=True)
    done = subprocess.run(
        ["/bin/bash", "-c", f". {ROOT / 'scripts/lib/ui.sh'} && serve_ui_build"],
        cwd=checkout,
        env={"PATH": path, "NPM_LOG": str(log), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return (log.read_text().splitlines() if log.exists() else []), done.stderr


def test_the_serve_script_builds_the_ui_when_missing_or_older_than_its_sources(tmp_path: Path) -> None:
    bin_dir, bare = tmp_path / "bin", tmp_path / "bare"
    bin_dir.mkdir()
    bare.mkdir()
    (bin_dir / "npm").write_text(FAKE_NPM)
    (bin_dir / "npm").chmod(0o755)
    for tool in ("find", "mkdir", "sh", "touch"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
        (bare / tool).symlink_to(shutil.which(tool) or tool)
    checkout = tmp_path / "checkout"
    (checkout / "ui" / "src").mkdir(parents=True)
    path = str(bin_dir)
    assert run_ensure_ui_build(checkout, path) == ([], ""), "no ui/package.json: nothing to build"
    (checkout / "ui" / "package.json").write_text("{}")
    (checkout / "ui" / "package-lock.json").write_text("{}")
    (checkout / "ui" / "src" / "main.tsx").write_text("x")
    ran, said = run_ensure_ui_build(checkout, path)
    assert ran == ["npm ci --no-audit --no-fund", "npm run build"]
    assert "building the web UI" in said
    assert (checkout / "ui" / "dist" / "index.html").is_file()
    assert run_ensure_ui_build(checkout, path)[0] == [], "an up-to-date build is kept"
    index = checkout / "ui" / "dist" / "index.html"
    later = index.stat().st_mtime + 10
    os.utime(checkout / "ui" / "src" / "main.tsx", (later, later))
    assert run_ensure_ui_build(checkout, path)[0] == ["npm run build"], "a changed source: build again"
    os.utime(checkout / "ui" / "src" / "main.tsx", (later + 10, later + 10))
    assert run_ensure_ui_build(checkout, path, VOIDLLM_SKIP_UI_BUILD="1")[0] == []
    ran, said = run_ensure_ui_build(checkout, path, FAIL_BUILD="1")  # still exits 0: the APIs are served
    assert ran == ["npm run build"]
    assert "build failed" in said
    ran, said = run_ensure_ui_build(checkout, str(bare))
    assert ran == []
    assert "npm was not found: serving the web UI as last built" in said
    shutil.rmtree(checkout / "ui" / "dist")
    ran, said = run_ensure_ui_build(checkout, str(bare))
    assert ran == []
    assert "npm was not found" in said
    assert "serving the APIs only" in said
