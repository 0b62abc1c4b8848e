"""A real OpenID Provider for the single sign-on tests: ``oidc-provider`` (npm, certified) run by
``tests/clients/node/op.mjs`` on an ephemeral port, for the protocol tests (httpx) and the browser tests.

``async with open_oidc_provider() as op:`` yields an :class:`OidcOp`: its ``issuer``, the test client's
``client_id``/``client_secret`` (confidential, PKCE required), the :data:`USERS` (verified and unverified
emails, groups), and hooks: :meth:`OidcOp.allow_redirect` registers the gateway's callback URL (known only
once the gateway listens), :meth:`OidcOp.rotate` switches to a new signing key (the old one is no longer
published), :meth:`OidcOp.set_users` changes the users' claims (e.g. other groups). :func:`sign_in_at_op`
walks the provider's sign-in page with an httpx client: from the authorization URL to the redirect back to
the gateway. In a browser, the page has one field ``login`` (an email of the users) and a submit button.

Without ``node`` or the installed package (``tests/clients/node/node_modules/oidc-provider``) the fixture
skips, unless ``VOIDLLM_REQUIRE_SERVICES=1`` (then it fails).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio

from tests.conftest import REQUIRE_SERVICES

NODE_DIR = Path(__file__).parent / "clients" / "node"
CLIENT_ID = "voidllm-test"
CLIENT_SECRET = "op-client-secret-4f2a9c"
START_LIMIT = 30.0
"""Seconds the provider may take to listen."""


@attrs.frozen
class OpUser:
    sub: str
    email: str
    email_verified: bool = True
    name: str = ""
    groups: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name or self.email,
            "groups": list(self.groups),
        }


USERS = (
    OpUser("alice-sub", "alice@acme.test", groups=("engineering", "oncall")),
    OpUser("bob-sub", "bob@acme.test", groups=("sales",)),
    OpUser("eve-sub", "eve@acme.test", email_verified=False),
    OpUser("mallory-sub", "mallory@elsewhere.test"),
    OpUser("carol-sub", "carol@beta.test", groups=("research",)),
)
"""The provider's users: verified and unverified emails, two domains besides acme.test, groups."""


def node_available() -> bool:
    """Whether ``node`` and the installed ``oidc-provider`` are there; skips (or fails under
    ``VOIDLLM_REQUIRE_SERVICES``) when not."""
    ok = shutil.which("node") is not None and (NODE_DIR / "node_modules" / "oidc-provider").is_dir()
    if not ok:
        message = (
            "node or tests/clients/node/node_modules/oidc-provider is missing (npm ci in tests/clients/node)"
        )
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return ok


@attrs.define(eq=False)
class OidcOp:
    """The running provider (see the module docstring)."""

    issuer: str
    client_id: str
    client_secret: str
    users: tuple[OpUser, ...]
    kid: str
    redirect_uris: list[str] = attrs.Factory(list)

    async def _hook(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(f"{self.issuer}/_test/{name}", json=body)
        response.raise_for_status()
        return dict(response.json())

    def _clients(self) -> list[dict[str, Any]]:
        return [
            {
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "redirect_uris": self.redirect_uris or ["http://127.0.0.1/unused"],
            }
        ]

    async def allow_redirect(self, *uris: str) -> None:
        """Register redirect URIs of the test client (a gateway's ``.../api/v1/auth/oidc/callback``)."""
        self.redirect_uris.extend(uri for uri in uris if uri not in self.redirect_uris)
        await self._hook("clients", {"clients": self._clients()})

    async def rotate(self) -> str:
        """Sign with a new key from now on (the old one leaves the JWKS); returns the new key id."""
        self.kid = str((await self._hook("rotate", {}))["kid"])
        return self.kid

    async def set_users(self, users: Sequence[OpUser]) -> None:
        """Replace the users (their claims in the next ID tokens)."""
        self.users = tuple(users)
        await self._hook("users", {"users": [user.to_json() for user in users]})


@asynccontextmanager
async def open_oidc_provider(users: Sequence[OpUser] = USERS) -> AsyncIterator[OidcOp]:
    """Start ``op.mjs`` and yield the running provider; stopped (stdin closed, then killed) on exit."""
    node_available()
    spec = {"users": [user.to_json() for user in users], "clients": []}
    process = await trio.lowlevel.open_process(
        ["node", str(NODE_DIR / "op.mjs"), orjson.dumps(spec).decode()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=NODE_DIR,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    try:
        line = b""
        with trio.fail_after(START_LIMIT):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(4096)
                if not chunk:
                    raise AssertionError(f"op.mjs exited before listening (code {await process.wait()})")
                line += chunk
        started = orjson.loads(line)
        op = OidcOp(started["issuer"], CLIENT_ID, CLIENT_SECRET, tuple(users), started["kid"])
        await op.allow_redirect()
        yield op
    finally:
        with trio.move_on_after(5, shield=True):
            await process.stdin.aclose()
            with trio.move_on_after(3):
                await process.wait()
        if process.returncode is None:
            process.kill()
            with trio.move_on_after(5, shield=True):
                await process.wait()


async def sign_in_at_op(client: httpx.AsyncClient, authorization_url: str, login: str) -> httpx.URL:
    """Follow the provider's sign-in from ``authorization_url`` as ``login`` (an email) until it redirects
    away from the provider; returns that URL (the gateway's callback with ``code`` and ``state``)."""
    url = httpx.URL(authorization_url)
    op_origin = (url.scheme, url.host, url.port)
    response = await client.get(url)
    for _ in range(10):
        if response.status_code in (302, 303):
            target = response.url.join(response.headers["location"])
            if (target.scheme, target.host, target.port) != op_origin:
                return target
            response = await client.get(target)
            continue
        assert response.status_code == 200, (response.status_code, response.text[:300])
        assert 'name="login"' in response.text, response.text[:300]
        action = response.text.split('action="', 1)[1].split('"', 1)[0]
        response = await client.post(response.url.join(action), data={"login": login})
    raise AssertionError("the provider's sign-in did not redirect back")
