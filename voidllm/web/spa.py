"""The web UI: the Vite build of ``ui/`` served at ``/`` on the gateway's own port
(docs/reference/behaviour.md 1.2, issue 15).

Which requests. ``GET`` and ``HEAD`` of any path outside the APIs (:data:`RESERVED`: ``/v1``, ``/api``,
``/metrics``, ``/health*``, ``/readyz``, which never fall back to the UI, so an unknown API path stays a JSON
404 in the envelope). Other methods go on to the app (a JSON 404 or 405).

What is answered.

- A file of the build: ``assets/*`` (content-hashed names) with ``Cache-Control: public, max-age=31536000,
  immutable``; other files at the top (``favicon.svg``) with ``no-cache``. Each with an ``ETag`` (size and
  modification time) answered with 304 when it matches.
- Any other path (a client route such as ``/keys/abc``): ``index.html`` with ``Cache-Control: no-cache`` and
  a ``<base href>`` inserted right after ``<head>``: one ``../`` per directory level of the request path
  (``./`` at the top), so the build's relative asset URLs (Vite ``base: './'``) resolve wherever the app is
  mounted, at ``/`` or behind a proxy that strips a prefix such as ``/voidllm/``.
- A missing file under ``assets/``, or a missing path ending in the extension of a static file type
  (``.js``, ``.css``, ``.svg``, ``.ico``, ...; not ``.html``): 404, so a browser that asks for a script never
  gets HTML. A client route with a dot elsewhere (``/models/gpt-4.1``) is still a client route.
- A path with a ``.`` or ``..`` segment, a segment starting with ``.``, a backslash or a NUL, or a file that
  resolves outside the build (a symlink): 404, nothing read.

Every answer carries ``X-Content-Type-Options: nosniff``, the :data:`CSP` (no inline scripts, no ``eval``,
``frame-ancestors 'none'``), ``X-Frame-Options: DENY`` and ``Referrer-Policy: same-origin``.

Where the build is. ``settings.ui_dir`` when set; else :data:`PACKAGE_BUILD`, ``voidllm/web/ui``, which in a
checkout is a symbolic link to ``ui/dist`` and in an installed wheel holds the files themselves (package
data, ``pyproject.toml``); else ``ui/dist`` of the checkout. The build is looked for on every request, so a
build made while the gateway runs is served at once. Without one, ``/`` answers 503 with a short text saying
that the UI is not built and how to build it (never a stand-in UI).
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from pathlib import Path
from typing import Any

import attrs
import trio

Scope = dict[str, Any]

PACKAGE_BUILD = Path(__file__).with_name("ui")
CHECKOUT_BUILD = Path(__file__).resolve().parents[2] / "ui" / "dist"

RESERVED = ("/v1", "/api", "/metrics", "/health", "/readyz")
"""Path prefixes that belong to the APIs (a prefix matches the path itself and what is below it; ``/health``
also matches ``/healthz``)."""

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
IMMUTABLE = "public, max-age=31536000, immutable"
CHUNK = 64 * 1024

NOT_BUILT = (
    "The VoidLLM web UI is not built, so there is nothing to show here yet.\n\n"
    "Build it once with Node and npm:  cd ui && npm ci && npm run build\n"
    "(./scripts/serve does this by itself when npm is installed), or point settings.ui_dir at a build.\n\n"
    "The APIs work without it: /v1 (OpenAI-compatible), /api/v1 (management), /api/docs (its reference).\n"
)

_HEAD = re.compile(rb"<head(?:\s[^>]*)?>", re.IGNORECASE)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
}


def is_reserved(path: str) -> bool:
    """Whether ``path`` belongs to an API (see :data:`RESERVED`)."""
    return path.startswith(RESERVED) and (
        path.startswith("/health") or any(path == p or path.startswith(p + "/") for p in RESERVED)
    )


def base_href(path: str) -> str:
    """The ``<base href>`` for a client route: ``../`` per directory level of ``path``, ``./`` at the top."""
    return "../" * (path.count("/") - 1) or "./"


def with_base(index: bytes, href: str) -> bytes:
    """``index.html`` with ``<base href="...">`` right after its ``<head>`` (unchanged without one)."""
    match = _HEAD.search(index)
    if match is None:
        return index
    tag = b'<base href="' + href.encode() + b'">'
    return index[: match.end()] + tag + index[match.end() :]


def content_type(path: Path) -> str:
    known = _TYPES.get(path.suffix.lower())
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def security_headers() -> list[tuple[bytes, bytes]]:
    """The headers of every UI answer (module docstring)."""
    return [
        (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", CSP.encode()),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
    ]


def _is_static_name(name: str) -> bool:
    """Whether a missing file of this name is one a page loads (a script, an icon), not a client route."""
    suffix = Path(name).suffix.lower()
    return suffix in _TYPES and suffix != ".html"


def find_build(ui_dir: str = "") -> Path | None:
    """The directory of the build to serve (module docstring), or ``None`` when there is none."""
    candidates = [Path(ui_dir)] if ui_dir else [PACKAGE_BUILD, CHECKOUT_BUILD]
    return next((path for path in candidates if (path / "index.html").is_file()), None)


def _safe_parts(path: str) -> list[str] | None:
    """The path's segments below ``/``, or ``None`` when one may not be served (module docstring)."""
    if "\\" in path or "\0" in path:
        return None
    parts = path.split("/")[1:]
    if any(part.startswith(".") for part in parts):  # ., .., hidden files
        return None
    return [part for part in parts if part]


@attrs.frozen
class _File:
    path: Path
    size: int
    etag: str


@attrs.define(eq=False)
class SpaApp:
    """The ASGI app of the UI; see the module docstring. ``ui_dir`` is ``settings.ui_dir``."""

    ui_dir: str = ""
    _index: tuple[tuple[int, int], bytes] | None = None  # (mtime_ns, size) and the bytes of the last read

    def serves(self, scope: Scope) -> bool:
        """Whether this request is the UI's: ``GET``/``HEAD`` of a path that is not an API's."""
        return scope["method"] in ("GET", "HEAD") and not is_reserved(scope["path"])

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        head = scope["method"] == "HEAD"
        root = await trio.to_thread.run_sync(find_build, self.ui_dir)
        if root is None:
            await _send(send, 503, NOT_BUILT.encode(), "text/plain; charset=utf-8", "no-store", head=head)
            return
        parts = _safe_parts(scope["path"])
        if parts is None:
            await _not_found(send, head)
            return
        found = await trio.to_thread.run_sync(_find_file, root, parts)
        if found is not None and parts != ["index.html"]:
            cache = IMMUTABLE if parts[0] == "assets" else "no-cache"
            await _send_file(scope, send, found, cache, head=head)
        elif parts and (parts[0] == "assets" or _is_static_name(parts[-1])):
            await _not_found(send, head)
        else:
            await self._send_index(scope, send, root, head=head)

    async def _send_index(self, scope: Scope, send: Any, root: Path, *, head: bool) -> None:
        index = await self._read_index(root / "index.html")
        body = with_base(index, base_href(scope["path"]))
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if _matches(scope, etag):
            await _send(send, 304, b"", None, "no-cache", head=True, etag=etag)
            return
        await _send(send, 200, body, "text/html; charset=utf-8", "no-cache", head=head, etag=etag)

    async def _read_index(self, path: Path) -> bytes:
        stat = await trio.Path(path).stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self._index is None or self._index[0] != stamp:
            self._index = (stamp, await trio.Path(path).read_bytes())
        return self._index[1]


def _find_file(root: Path, parts: list[str]) -> _File | None:
    """The regular file at ``parts`` below ``root`` if it resolves inside ``root`` (runs in a thread)."""
    if not parts:
        return None
    base = root.resolve()
    try:
        path = base.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(base) or not path.is_file():
        return None
    stat = path.stat()
    return _File(path, stat.st_size, f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"')


def _matches(scope: Scope, etag: str) -> bool:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            tags = [tag.strip() for tag in value.decode("latin-1").split(",")]
            return etag in tags or "*" in tags
    return False


async def _send_file(scope: Scope, send: Any, found: _File, cache: str, *, head: bool) -> None:
    if _matches(scope, found.etag):
        await _send(send, 304, b"", None, cache, head=True, etag=found.etag)
        return
    headers = [
        (b"content-type", content_type(found.path).encode()),
        (b"content-length", str(found.size).encode()),
        (b"cache-control", cache.encode()),
        (b"etag", found.etag.encode()),
        *security_headers(),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if head or found.size == 0:
        await send({"type": "http.response.body", "body": b""})
        return
    async with await trio.open_file(found.path, "rb") as file:
        left = found.size  # what the headers promised, even if the file changes meanwhile
        while left > 0:
            chunk = await file.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
    if left > 0:  # the file shrank under us: end without the promised length (the client sees a cut)
        raise OSError("a UI file changed while it was being sent")


async def _not_found(send: Any, head: bool) -> None:
    await _send(send, 404, b"not found\n", "text/plain; charset=utf-8", "no-cache", head=head)


async def _send(
    send: Any, status: int, body: bytes, media_type: str | None, cache: str, *, head: bool, etag: str = ""
) -> None:
    headers = [(b"cache-control", cache.encode()), *security_headers()]
    if media_type is not None:
        headers.append((b"content-type", media_type.encode()))
    if etag:
        headers.append((b"etag", etag.encode()))
    if status != 304:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
