"""Looking at upstreams from the admin API: ``POST /models/test-connection`` and ``GET /models/health``.

The connection test sends ``GET <base_url>/models`` with the provider's credential headers
(:func:`voidllm.providers.registry.credential_headers`, the same as the health probes': Anthropic's
``x-api-key`` and ``anthropic-version``, Azure's ``api-key``, Gemini's ``x-goog-api-key``, otherwise a bearer
token) and reports whether the upstream accepted it, with the number of models it listed. The key must be
printable ASCII, as any header value (the codec refuses others with 400 naming ``api_key``). It is only sent
upstream: it is never logged or echoed, and failures are reduced to fixed short texts (``connection
refused``, ``request timeout``, ``HTTP 401``), so nothing the upstream says reaches the caller. The whole
test runs under a :data:`TEST_TIMEOUT` cancel scope, and at most :data:`MAX_BODY` bytes of the answer are
read.

The health view lists every upstream of the registry with the latest report of the health prober
(``unknown`` for upstreams it does not probe).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import attrs
import orjson
import trio

from voidllm.admin.context import Actor
from voidllm.admin.models import PROVIDER, check_upstream
from voidllm.admin.services import Services
from voidllm.bounds import HEADER_VALUE, URL, bounded
from voidllm.identity import Role
from voidllm.lazyhttp import plain_client, resolved
from voidllm.providers.registry import credential_headers
from voidllm.routing.health import HealthReport

if TYPE_CHECKING:
    import httpx

TEST_TIMEOUT = 10.0
MAX_BODY = 4 * 1024 * 1024


@attrs.frozen
class ConnectionTest:
    provider: str = bounded(PROVIDER)
    base_url: str = bounded(URL)
    api_key: str = bounded(HEADER_VALUE, default="", repr=False)


@attrs.frozen
class ConnectionResult:
    success: bool
    message: str


@attrs.frozen
class UpstreamHealth:
    name: str
    status: str
    last_check: datetime | None
    last_error: str | None
    latency_ms: int | None
    health_ok: bool | None
    models_ok: bool | None
    functional_ok: bool | None

    @classmethod
    def from_report(cls, report: HealthReport) -> UpstreamHealth:
        return cls(
            name=report.name,
            status=report.status,
            last_check=report.last_check,
            last_error=report.last_error,
            latency_ms=report.latency_ms,
            health_ok=report.health_ok,
            models_ok=report.models_ok,
            functional_ok=report.functional_ok,
        )


@attrs.frozen
class HealthList:
    models: list[UpstreamHealth]


async def health(services: Services, actor: Actor) -> HealthList:
    """The latest probe report of every upstream the registry serves."""
    actor.require(Role.MEMBER)
    board = services.health.board if services.health is not None else None
    if services.catalog is None:
        return HealthList(models=[])
    names = [u.name for model in services.catalog.registry.models for u in model.upstreams]
    reports = [board.report(name) if board is not None else HealthReport(name) for name in names]
    return HealthList(models=[UpstreamHealth.from_report(report) for report in reports])


async def test_connection(services: Services, actor: Actor, req: ConnectionTest) -> ConnectionResult:
    """Try the credentials against ``<base_url>/models``; never raises for an upstream failure."""
    actor.require(Role.SYSTEM_ADMIN)
    check_upstream(
        {
            "provider": req.provider,
            "base_url": req.base_url,
            "azure_deployment": "-",
            "gcp_project": "-",
            "gcp_location": "-",
        }
    )
    import httpx  # loaded at first use (voidllm.lazyhttp)

    url = req.base_url.rstrip("/") + "/models"
    async with _client(services) as client:
        with trio.move_on_after(TEST_TIMEOUT):
            try:
                return await _probe(client, url, credential_headers(req.provider, req.api_key))
            except httpx.HTTPError as exc:
                return ConnectionResult(False, f"connection failed: {_describe(exc)}")
            except (httpx.InvalidURL, UnicodeError):  # a host name the client's IDNA rules refuse
                return ConnectionResult(False, "connection failed: invalid URL")
    return ConnectionResult(False, "connection failed: request timeout")


async def _probe(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> ConnectionResult:
    async with client.stream("GET", url, headers=headers, follow_redirects=False) as response:
        if not 200 <= response.status_code < 300:
            return ConnectionResult(False, f"upstream answered HTTP {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_BODY:
                return ConnectionResult(True, "connection successful")
    count = _model_count(bytes(body))
    if count is None:
        return ConnectionResult(True, "connection successful")
    return ConnectionResult(True, f"connection successful: {count} models available")


def _model_count(body: bytes) -> int | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict):
        for key in ("data", "models"):
            if isinstance(data.get(key), list):
                return len(data[key])
    return None


def _describe(exc: httpx.HTTPError) -> str:
    """A fixed short description; never the exception's text, which may quote the URL or the answer."""
    import httpx  # loaded at first use (voidllm.lazyhttp)

    if isinstance(exc, httpx.TimeoutException):
        return "request timeout"
    seen: list[BaseException] = []
    stack: list[BaseException] = [exc]
    while stack and len(seen) < 32:
        current = stack.pop()
        if any(current is known for known in seen):
            continue
        seen.append(current)
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        stack.extend(getattr(current, "exceptions", ()))
    for kind, text in (
        (ssl.SSLError, "tls error"),
        (socket.gaierror, "dns resolution failed"),
        (ConnectionRefusedError, "connection refused"),
    ):
        if any(isinstance(cause, kind) for cause in seen):
            return text
    return "network error"


@asynccontextmanager
async def _client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The process's shared admin client when the server runs; a short-lived one for the CLI."""
    if services.health is not None:
        yield resolved(services.health.http_client)
        return
    async with plain_client() as client:
        yield client
