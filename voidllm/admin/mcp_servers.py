"""MCP servers through the admin API (docs/reference/behaviour.md 1.6 "MCP server management", 8.1).

**Scopes.** A server is global (no org, no team; system admins manage them), an org's (its org admins) or a
team's (its team admins: a team key, or a user whose membership in the team is ``team_admin``; a user key's
own role is its org role). Aliases are unique per scope; the same alias in a narrower scope shadows the wider
one (:meth:`voidllm.mcp.registry.McpRegistry.resolve`).

**Who sees what.** Lists: global ones need a system admin; an org's list shows org + global servers to its
members, a team's list team + org + global to the team's members. One server is visible to whoever could
list it (others get 404); changing it needs its scope's admin (403 with a message naming the scope).
Servers of ``voidllm.yaml`` (``source='yaml'``) and the built-in server are read-only here: 409
``mcp_server_managed_by_config``.

**Secrets** (``auth_token``, ``oauth_client_secret``) are sealed to their row (AES-GCM, associated data
``mcp_server:<id>``) and never returned (``has_auth_token``, ``has_oauth_client_secret``). In a PATCH, an
absent secret is kept, ``""`` removes it.

**Validation.** ``url`` and ``oauth_token_url`` must be http(s) URLs without credentials; a host that is
private by the one URL policy (:func:`voidllm.mcp.upstream.ssrf.check_url`, the same as the upstream client's:
a ``localhost`` name, or a private, loopback, link-local, multicast or unspecified address in any notation) is
refused (400 ``private_url_not_allowed``) unless ``settings.mcp.allow_private_urls``. Names that resolve to
such addresses are stopped at connect time by the upstream client's guard. The OAuth token URL must be https
(unless ``allow_private_urls``, for local test identity providers). ``auth_header`` must be an HTTP token and
not a header the gateway itself sets or that frames the request (400 ``invalid_auth_header``, see
:data:`FORBIDDEN_AUTH_HEADERS`). Values sent in headers or the token request (``auth_token``,
``oauth_client_id``, ``oauth_client_secret``) must be printable ASCII; names are at most 256 characters, URLs
2,048, ``oauth_scopes`` 1,024 (:mod:`voidllm.bounds`).

**Probing.** ``test`` and ``refresh-tools`` call the upstream client (``services.mcp.upstreams``,
``probe(server)``); without the MCP runtime (the CLI) they answer 503. A successful probe replaces the
server's cached tool list. ``refresh-tools`` is refused with 429 (``Retry-After``) within 60 s of the previous
refresh of the same server: across all processes through Redis when it is on, else in this process
(``services.cooldowns``).

**Tools.** ``GET .../tools`` is the cached tool list, each tool marked ``blocked`` when it is on the server's
blocklist, which :mod:`voidllm.admin.mcp_blocklist` manages.

Every write reloads this process's MCP registry at once and publishes ``mcp`` on the bus.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs
import sqlalchemy as sa
import trio

from voidllm.admin.context import Actor
from voidllm.admin.pages import Page, PageQuery, paginate
from voidllm.admin.services import McpRuntime, Services
from voidllm.admin.tenancy import check_name, is_team_admin, is_team_member, live_org, live_team
from voidllm.bounds import HEADER_NAME, HEADER_VALUE, MCP_ALIAS, NAME, TEXT, URL, Bounds, bounded
from voidllm.bus import TOPIC_MCP
from voidllm.config.upstreams import MCP_AUTH_TYPES
from voidllm.crypto import CryptoError, aad_for
from voidllm.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    StoreError,
    TooManyRequestsError,
)
from voidllm.identity import Role
from voidllm.mcp.health import PROBE_TIMEOUT
from voidllm.mcp.registry import McpServerEntry, entry_from_row, retire_server
from voidllm.mcp.tools_cache import CachedTool, fetch_tools, read_blocked, read_tools
from voidllm.mcp.upstream.ssrf import BlockedAddress, PrivateAddress, check_url
from voidllm.routing.catalog_store import seal_secret
from voidllm.store import tables as t
from voidllm.store.errors import StoreIntegrityError
from voidllm.store.ids import new_id

log = logging.getLogger(__name__)

T = TypeVar("T")

REFRESH_INTERVAL = 60.0
_ALIAS = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}")
FORBIDDEN_AUTH_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "cookie",
        "accept",
        "accept-encoding",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
    }
)
"""Headers an ``auth_header`` may not name: framing, hop-by-hop, cookies, and what the MCP client sets.
``Authorization`` is allowed (for schemes other than ``Bearer``, such as ``Token <value>``)."""
AUTH_TYPE = Bounds(max_length=16, choices=MCP_AUTH_TYPES)


# -------------------------------------------------------------------------------------------- values


@attrs.frozen
class McpServerOut:
    """A server as the API shows it; never its secrets."""

    id: str
    name: str
    alias: str
    url: str
    auth_type: str
    auth_header: str
    has_auth_token: bool
    oauth_token_url: str
    oauth_client_id: str
    has_oauth_client_secret: bool
    oauth_scopes: str
    scope: str
    org_id: str | None
    team_id: str | None
    is_active: bool
    code_mode_enabled: bool
    source: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> McpServerOut:
        return cls(
            id=row["id"],
            name=row["name"],
            alias=row["alias"],
            url=row["url"],
            auth_type=row["auth_type"],
            auth_header=row["auth_header"] or "",
            has_auth_token=bool(row["auth_token_enc"]),
            oauth_token_url=row["oauth_token_url"] or "",
            oauth_client_id=row["oauth_client_id"] or "",
            has_oauth_client_secret=bool(row["oauth_client_secret_enc"]),
            oauth_scopes=row["oauth_scopes"] or "",
            scope="team" if row["team_id"] else "org" if row["org_id"] else "global",
            org_id=row["org_id"],
            team_id=row["team_id"],
            is_active=row["is_active"],
            code_mode_enabled=row["code_mode_enabled"],
            source=row["source"],
            created_by=row["created_by"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@attrs.frozen
class McpServerCreate:
    name: str = bounded(NAME)
    alias: str = bounded(MCP_ALIAS)
    url: str = bounded(URL)
    auth_type: str = bounded(AUTH_TYPE, default="none")
    auth_header: str = bounded(HEADER_NAME, default="")
    auth_token: str = bounded(HEADER_VALUE, default="", repr=False)
    oauth_token_url: str = bounded(URL, default="")
    oauth_client_id: str = bounded(HEADER_VALUE, default="")
    oauth_client_secret: str = bounded(HEADER_VALUE, default="", repr=False)
    oauth_scopes: str = bounded(TEXT, default="")


@attrs.frozen
class McpServerUpdate:
    """Fields to change; ``None`` (or absent) keeps a field. ``""`` removes a secret."""

    name: str | None = bounded(NAME, default=None)
    alias: str | None = bounded(MCP_ALIAS, default=None)
    url: str | None = bounded(URL, default=None)
    auth_type: str | None = bounded(AUTH_TYPE, default=None)
    auth_header: str | None = bounded(HEADER_NAME, default=None)
    auth_token: str | None = bounded(HEADER_VALUE, default=None, repr=False)
    oauth_token_url: str | None = bounded(URL, default=None)
    oauth_client_id: str | None = bounded(HEADER_VALUE, default=None)
    oauth_client_secret: str | None = bounded(HEADER_VALUE, default=None, repr=False)
    oauth_scopes: str | None = bounded(TEXT, default=None)
    code_mode_enabled: bool | None = None


@attrs.frozen
class McpTestResult:
    """``POST /mcp-servers/{id}/test``: ``tools`` (names) on success, else ``error``; ``legacy_sse`` when the
    server only speaks the deprecated HTTP+SSE transport."""

    success: bool
    tools: list[str] | None = None
    error: str | None = None
    legacy_sse: bool = False


@attrs.frozen
class McpToolOut:
    """A cached tool; ``blocked`` when it is on the server's blocklist
    (:mod:`voidllm.admin.mcp_blocklist`)."""

    name: str
    description: str
    blocked: bool


@attrs.frozen
class McpToolRefresh:
    tool_count: int


@attrs.frozen
class McpHealthOut:
    """One server's latest health probe; ``unknown`` before the first."""

    server_id: str
    name: str
    alias: str
    status: str
    latency_ms: int | None
    tool_count: int | None
    last_error: str | None
    checked_at: datetime | None


@attrs.frozen
class McpScope:
    """Where a server lives: global (neither id), an org, or a team of that org."""

    org_id: str | None = None
    team_id: str | None = None


_TEXT_FIELDS = (
    "name",
    "alias",
    "url",
    "auth_type",
    "auth_header",
    "oauth_token_url",
    "oauth_client_id",
    "oauth_scopes",
)
_NULLABLE = ("auth_header", "oauth_token_url", "oauth_client_id", "oauth_scopes")


# ------------------------------------------------------------------------------------------ use cases


async def create(services: Services, actor: Actor, scope: McpScope, req: McpServerCreate) -> McpServerOut:
    """Register a server in ``scope`` (409 on an alias the scope already uses)."""
    _gate_scope(actor, scope, write=True)
    values = {field: getattr(req, field) for field in _TEXT_FIELDS}
    tx = partial(
        _create_tx,
        scope=scope,
        actor=actor,
        values=values,
        services=services,
        secrets=(req.auth_token, req.oauth_client_secret),
    )
    out = await _write(services, tx)
    await mcp_changed(services)
    return out


async def list_servers(
    services: Services, actor: Actor, scope: McpScope, page: PageQuery
) -> Page[McpServerOut]:
    """Global servers (system admins); an org's with the global ones; a team's with its org's and the
    global."""
    _gate_scope(actor, scope, write=False)
    return await services.store.run(partial(_list_tx, scope=scope, actor=actor, page=page))


async def get(services: Services, actor: Actor, server_id: str) -> McpServerOut:
    return await services.store.run(partial(_get_tx, server_id=server_id, actor=actor))


async def update(services: Services, actor: Actor, server_id: str, req: McpServerUpdate) -> McpServerOut:
    """Change a server; the registry serves the change at once."""
    out = await _write(
        services, partial(_update_tx, server_id=server_id, actor=actor, req=req, services=services)
    )
    await mcp_changed(services)
    return out


async def set_active(services: Services, actor: Actor, server_id: str, active: bool) -> McpServerOut:
    """Activate or deactivate a server; an inactive server answers 503 at once."""
    out = await services.store.run(partial(_set_active_tx, server_id=server_id, actor=actor, active=active))
    await mcp_changed(services)
    return out


async def delete(services: Services, actor: Actor, server_id: str) -> None:
    """Soft-delete a server (its alias becomes free); its grants and cached tools go with it."""
    await services.store.run(partial(_delete_tx, server_id=server_id, actor=actor))
    await mcp_changed(services)


async def test(services: Services, actor: Actor, server_id: str) -> McpTestResult:
    """Probe the server (``initialize`` + ``tools/list``); a success refreshes its cached tool list."""
    entry = await services.store.run(partial(_entry_tx, server_id=server_id, actor=actor, services=services))
    result = await _probe(services, entry)
    if result is None:
        return McpTestResult(success=False, error="request timeout")
    if result.legacy_sse:
        return McpTestResult(
            success=False,
            legacy_sse=True,
            error=("the server only supports the deprecated HTTP+SSE transport; Streamable HTTP is required"),
        )
    if not result.ok:
        return McpTestResult(success=False, error=result.error or "probe failed")
    try:
        tools = await _fetch_tools(services, entry)
    except ServiceUnavailableError as exc:
        return McpTestResult(success=False, error=exc.message)
    return McpTestResult(success=True, tools=[tool.name for tool in tools])


async def list_tools(services: Services, actor: Actor, server_id: str) -> list[McpToolOut]:
    """The server's cached tool list (empty until a test, refresh or health probe fetched one)."""
    return await services.store.run(partial(_tools_tx, server_id=server_id, actor=actor))


async def refresh_tools(services: Services, actor: Actor, server_id: str) -> McpToolRefresh:
    """Fetch the tool list from the upstream now (429 within 60 s of this server's previous refresh)."""
    entry = await services.store.run(partial(_entry_tx, server_id=server_id, actor=actor, services=services))
    _runtime(services)  # 503 without the MCP runtime, before the period is claimed
    wait = await services.cooldowns.claim(f"mcp-refresh:{entry.id}", REFRESH_INTERVAL)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise TooManyRequestsError(
            f"the tool list was refreshed recently; retry in {seconds} seconds",
            code="refresh_too_soon",
            headers=(("retry-after", str(seconds)),),
        )
    return McpToolRefresh(tool_count=len(await _fetch_tools(services, entry)))


async def health(services: Services, actor: Actor) -> list[McpHealthOut]:
    """The latest probe of every active server the caller can see; before a server's first probe its tool
    count is that of its cached list (a test or refresh fetched it), when there is one."""
    if services.mcp is None:
        return []
    registry, board = services.mcp.registry, services.mcp.health
    seen = [s for s in registry.active() if actor.is_system_admin or s.org_id in (None, actor.org_id)]
    listed = registry.catalog.tools
    reports = []
    for server in seen:
        report = McpHealthOut(**attrs.asdict(board.report(server)))
        if report.tool_count is None and server.id in listed:
            report = attrs.evolve(report, tool_count=len(listed[server.id]))
        reports.append(report)
    return reports


async def mcp_changed(services: Services) -> None:
    """After a committed write: reload this process's MCP registry, then tell the other processes."""
    if services.mcp is not None:
        try:
            await services.mcp.reload()
        except StoreError as exc:
            log.warning("MCP registry reload after a change failed", extra={"error_type": type(exc).__name__})
    await services.bus.publish(TOPIC_MCP)


def _runtime(services: Services) -> McpRuntime:
    """The server's MCP runtime; 503 ``mcp_unavailable`` without one (the CLI runs no upstream client)."""
    if services.mcp is None:
        raise ServiceUnavailableError("the MCP upstream client is not available", code="mcp_unavailable")
    return services.mcp


async def _probe(services: Services, entry: McpServerEntry) -> Any:
    """The prober's ``ProbeResult``, or ``None`` after :data:`PROBE_TIMEOUT`; 503 without an upstream
    client."""
    upstreams = _runtime(services).upstreams
    with trio.move_on_after(PROBE_TIMEOUT):
        return await upstreams.probe(entry.upstream)
    return None


async def _fetch_tools(services: Services, entry: McpServerEntry) -> tuple[CachedTool, ...]:
    """Fetch the tool list from the upstream into the cache (a changed list reloads the registry and
    publishes ``mcp``); 503 ``mcp_server_unavailable`` on any failure."""
    tools = await fetch_tools(
        services.store,
        _runtime(services).upstreams,
        entry.upstream,
        changed=partial(mcp_changed, services),
    )
    if tools is None:
        raise ServiceUnavailableError("the MCP server did not list its tools", code="mcp_server_unavailable")
    return tools


async def _write(services: Services, fn: Callable[[sa.Connection], T]) -> T:
    try:
        return await services.store.run(fn)
    except StoreIntegrityError as exc:
        if exc.kind == "unique":
            raise ConflictError("an MCP server with this alias already exists in this scope") from None
        raise


# ------------------------------------------------------------------------------------------ checks


def _gate_scope(actor: Actor, scope: McpScope, *, write: bool) -> None:
    """The coarse checks of a scope's list and create routes (the team admin check needs the store)."""
    if scope.org_id is None:
        actor.require(Role.SYSTEM_ADMIN)
        return
    actor.require_org(scope.org_id)
    if write and scope.team_id is None:
        actor.require(Role.ORG_ADMIN)


def _check_scope_tx(conn: sa.Connection, actor: Actor, scope: McpScope, *, write: bool) -> None:
    if scope.org_id is None:
        return
    live_org(conn, scope.org_id)
    if scope.team_id is not None:
        live_team(conn, scope.org_id, scope.team_id)
        if not is_team_member(conn, actor, scope.team_id):
            raise NotFoundError("team not found")
        if write and not is_team_admin(conn, actor, scope.team_id):
            raise PermissionDeniedError("only a team admin of this team can manage its MCP servers")


def _checked_url(value: str, field: str, *, allow_private: bool, https_only: bool = False) -> str:
    """``value`` trimmed, when the URL policy (:func:`voidllm.mcp.upstream.ssrf.check_url`) allows it and it
    carries no credentials (they would be stored in clear in the URL; use ``auth_type`` instead)."""
    value = value.strip()
    try:
        check_url(value, allow_private=allow_private, https_only=https_only)
    except PrivateAddress as exc:
        raise BadRequestError(f"{field} {exc.reason}", code="private_url_not_allowed") from None
    except BlockedAddress as exc:
        raise BadRequestError(f"{field} {exc.reason}") from None
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        raise BadRequestError(f"{field} must not contain credentials")
    return value


def _checked(values: dict[str, Any], secrets: tuple[str, str], *, allow_private: bool) -> dict[str, Any]:
    """The text columns of a server, trimmed and checked as a whole (auth fields by ``auth_type``)."""
    values = {key: (value or "").strip() for key, value in values.items()}
    values["name"] = check_name(values["name"])
    if not _ALIAS.fullmatch(values["alias"]):
        raise BadRequestError(
            "alias must be 1-63 lowercase letters, digits or '-', starting with a letter or digit"
        )
    if values["alias"] == "voidllm":
        raise BadRequestError("alias 'voidllm' is reserved for the built-in server")
    values["url"] = _checked_url(values["url"], "url", allow_private=allow_private)
    kind = values["auth_type"]
    if kind not in MCP_AUTH_TYPES:
        raise BadRequestError(f"auth_type must be one of {', '.join(MCP_AUTH_TYPES)}")
    token, client_secret = secrets
    if kind in ("bearer", "header") and not token:
        raise BadRequestError(f"auth_token is required for auth_type '{kind}'")
    if kind == "header":
        header = values["auth_header"]
        if not _TOKEN.fullmatch(header) or header.lower() in FORBIDDEN_AUTH_HEADERS:
            raise BadRequestError(
                "auth_header must be a valid HTTP header name the gateway does not set itself",
                code="invalid_auth_header",
            )
    else:
        values["auth_header"] = ""
    if kind == "oauth":
        if not values["oauth_client_id"] or not client_secret:
            raise BadRequestError(
                "oauth_client_id and oauth_client_secret are required for auth_type 'oauth'"
            )
        if values["oauth_token_url"]:
            values["oauth_token_url"] = _checked_url(
                values["oauth_token_url"],
                "oauth_token_url",
                allow_private=allow_private,
                https_only=not allow_private,
            )
    return {key: (value or None) if key in _NULLABLE else value for key, value in values.items()}


def _server_row(conn: sa.Connection, server_id: str) -> sa.RowMapping:
    s = t.mcp_servers
    row = conn.execute(sa.select(s).where(s.c.id == server_id, s.c.deleted_at.is_(None))).mappings().first()
    if row is None:
        raise NotFoundError("MCP server not found")
    return row


def visible_server(conn: sa.Connection, actor: Actor, server_id: str) -> sa.RowMapping:
    """The live server if the actor may see it (a global one, or one of its org or team), else 404."""
    row = _server_row(conn, server_id)
    if actor.is_system_admin or row["org_id"] is None:
        return row
    if row["org_id"] != actor.org_id or (row["team_id"] and not is_team_member(conn, actor, row["team_id"])):
        raise NotFoundError("MCP server not found")
    return row


def owned_server(
    conn: sa.Connection, actor: Actor, server_id: str, *, editable: bool = True
) -> sa.RowMapping:
    """:func:`visible_server`, 403 unless the actor administers its scope; with ``editable``, 409 for a
    server of the config file or the built-in one."""
    row = visible_server(conn, actor, server_id)
    if row["org_id"] is None:
        if not actor.is_system_admin:
            raise PermissionDeniedError("only a system admin can manage global MCP servers")
    elif row["team_id"] is None:
        if actor.role < Role.ORG_ADMIN:
            raise PermissionDeniedError("only an org admin of this organization can manage its MCP servers")
    elif not is_team_admin(conn, actor, row["team_id"]):
        raise PermissionDeniedError("only a team admin of this team can manage its MCP servers")
    if editable and row["source"] != "api":
        raise ConflictError(
            "this MCP server is defined in the config file; change it in voidllm.yaml and restart",
            code="mcp_server_managed_by_config",
        )
    return row


def _alias_taken(conn: sa.Connection, scope: McpScope, alias: str, server_id: str) -> None:
    s = t.mcp_servers
    same_scope = [
        s.c.org_id.is_(None) if scope.org_id is None else s.c.org_id == scope.org_id,
        s.c.team_id.is_(None) if scope.team_id is None else s.c.team_id == scope.team_id,
    ]
    query = sa.select(s.c.id).where(
        s.c.alias == alias, s.c.id != server_id, s.c.deleted_at.is_(None), *same_scope
    )
    if conn.execute(query).first() is not None:
        raise ConflictError("an MCP server with this alias already exists in this scope")


# -------------------------------------------------------------------------------------- transactions


def _create_tx(
    conn: sa.Connection,
    *,
    scope: McpScope,
    actor: Actor,
    values: dict[str, Any],
    services: Services,
    secrets: tuple[str, str],
) -> McpServerOut:
    _check_scope_tx(conn, actor, scope, write=True)
    allow_private = services.config.settings.mcp.allow_private_urls
    values = _checked(values, secrets, allow_private=allow_private)
    server_id = new_id()
    _alias_taken(conn, scope, values["alias"], server_id)
    keyring = services.keyring
    conn.execute(
        sa.insert(t.mcp_servers).values(
            id=server_id,
            org_id=scope.org_id,
            team_id=scope.team_id,
            source="api",
            created_by=actor.actor_id,
            auth_token_enc=seal_secret(
                keyring, _secret_for(values, "token", secrets[0]), "mcp_server", server_id
            ),
            oauth_client_secret_enc=seal_secret(
                keyring, _secret_for(values, "oauth", secrets[1]), "mcp_server", server_id
            ),
            **values,
        )
    )
    return McpServerOut.from_row(_server_row(conn, server_id))


def _secret_for(values: Mapping[str, Any], which: str, secret: str) -> str:
    """A secret is kept only for the auth types that use it."""
    if which == "token":
        return secret if values["auth_type"] in ("bearer", "header") else ""
    return secret if values["auth_type"] == "oauth" else ""


def _update_tx(
    conn: sa.Connection, *, server_id: str, actor: Actor, req: McpServerUpdate, services: Services
) -> McpServerOut:
    row = owned_server(conn, actor, server_id)
    keyring = services.keyring
    values = {field: row[field] for field in _TEXT_FIELDS}
    values |= {field: getattr(req, field) for field in _TEXT_FIELDS if getattr(req, field) is not None}
    aad = aad_for("mcp_server", server_id)
    token = _opened(keyring, row["auth_token_enc"], aad) if req.auth_token is None else req.auth_token
    client_secret = req.oauth_client_secret
    if client_secret is None:
        client_secret = _opened(keyring, row["oauth_client_secret_enc"], aad)
    values = _checked(
        values, (token, client_secret), allow_private=services.config.settings.mcp.allow_private_urls
    )
    _alias_taken(conn, McpScope(row["org_id"], row["team_id"]), values["alias"], server_id)
    if req.code_mode_enabled is not None:
        values["code_mode_enabled"] = req.code_mode_enabled
    values["auth_token_enc"] = seal_secret(
        keyring, _secret_for(values, "token", token), "mcp_server", server_id, row["auth_token_enc"]
    )
    values["oauth_client_secret_enc"] = seal_secret(
        keyring,
        _secret_for(values, "oauth", client_secret),
        "mcp_server",
        server_id,
        row["oauth_client_secret_enc"],
    )
    conn.execute(sa.update(t.mcp_servers).where(t.mcp_servers.c.id == server_id).values(**values))
    return McpServerOut.from_row(_server_row(conn, server_id))


def _opened(keyring: Any, sealed: str | None, aad: str) -> str:
    """A stored secret in plain text; ``""`` when there is none or it no longer decrypts (a changed
    encryption key: the PATCH then needs the secret again, or the server goes without it)."""
    if not sealed:
        return ""
    try:
        return str(keyring.decrypt_secret(sealed, aad=aad))
    except CryptoError:
        return ""


def _set_active_tx(conn: sa.Connection, *, server_id: str, actor: Actor, active: bool) -> McpServerOut:
    owned_server(conn, actor, server_id)
    conn.execute(sa.update(t.mcp_servers).where(t.mcp_servers.c.id == server_id).values(is_active=active))
    return McpServerOut.from_row(_server_row(conn, server_id))


def _delete_tx(conn: sa.Connection, *, server_id: str, actor: Actor) -> None:
    row = owned_server(conn, actor, server_id)
    retire_server(conn, server_id, row["alias"])


def _get_tx(conn: sa.Connection, *, server_id: str, actor: Actor) -> McpServerOut:
    return McpServerOut.from_row(visible_server(conn, actor, server_id))


def _entry_tx(conn: sa.Connection, *, server_id: str, actor: Actor, services: Services) -> McpServerEntry:
    return entry_from_row(owned_server(conn, actor, server_id, editable=False), services.keyring)


def _tools_tx(conn: sa.Connection, *, server_id: str, actor: Actor) -> list[McpToolOut]:
    visible_server(conn, actor, server_id)
    blocked = read_blocked(conn, server_id)
    return [
        McpToolOut(name=name, description=description, blocked=name in blocked)
        for name, description in read_tools(conn, server_id)
    ]


def _list_tx(conn: sa.Connection, *, scope: McpScope, actor: Actor, page: PageQuery) -> Page[McpServerOut]:
    _check_scope_tx(conn, actor, scope, write=False)
    s = t.mcp_servers
    global_ = sa.and_(s.c.org_id.is_(None), s.c.team_id.is_(None))
    where: sa.ColumnElement[bool] = global_
    if scope.org_id is not None:
        where = sa.or_(where, sa.and_(s.c.org_id == scope.org_id, s.c.team_id.is_(None)))
    if scope.team_id is not None:
        where = sa.or_(where, s.c.team_id == scope.team_id)
    query = sa.select(s).where(s.c.deleted_at.is_(None), where)
    return paginate(conn, query, s.c.id, page, McpServerOut.from_row)
