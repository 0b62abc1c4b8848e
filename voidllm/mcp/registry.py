"""Which MCP server an alias means for a key, and whether the key may use it (docs/reference/behaviour.md 8.1
and section 4).

:class:`McpRegistry` holds one snapshot of the live (not deleted) MCP servers and the MCP access allowlists,
read from the store in one transaction by :class:`McpRegistryLoader` and swapped in whole, so a request
sees one consistent state and lookups are dict reads:

- **Resolution** (:meth:`McpRegistry.resolve`): a team server of the key's team shadows an org server of its
  org, which shadows a global server of the same alias. Inactive servers resolve too (``is_active`` False):
  the proxy answers them 503 "MCP server is disabled" rather than falling through to a shadowed server.
- **Access** (:meth:`McpRegistry.allowed`): system admins may use every server. Org- and team-scoped servers
  need no grant (they are reachable only within their scope). A global server is **closed by default**: the
  key's org must list it; the key's team list and the key's own list further restrict when non-empty.

Where servers come from: the admin API (``source='api'``) and ``mcp_servers`` of ``voidllm.yaml``, written
into the table at startup as global servers with ``source='yaml'`` (:func:`sync_yaml_servers`; upsert by
alias, secrets sealed to their row, a server that left the file is tombstoned, an API server of the same alias
wins). Secrets are decrypted once per reload and held only in memory.

With the servers the snapshot carries what Code Mode needs of each
(:class:`~voidllm.mcp.tools_cache.ToolCatalog`): its cached tool list (``mcp_server_tools``, with input
schemas), its per-tool blocklist (``mcp_tool_blocklist``) and the output schemas learned from results
(``output_schemas``). All of it is in the store, so every process sees the same catalog after its next
reload; whoever changes one of them publishes ``mcp``.

Freshness: admin writes reload this process at once and publish ``mcp`` on the bus; :func:`serve_mcp_registry`
reloads every ``cache.model_ttl`` (the MCP snapshot shares the model cache's period; no separate setting), so
other processes converge without Redis. A failed periodic reload keeps the previous snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa
import trio

from voidllm.config import MCPServerConfig
from voidllm.crypto import CryptoError, Keyring, aad_for
from voidllm.identity import KeyIdentity, Role
from voidllm.mcp.tools_cache import ToolCatalog, load_tool_catalog
from voidllm.mcp.upstream.client import UpstreamServer
from voidllm.metrics import CACHE_SIZE
from voidllm.nursery.periodic import keep_reloading
from voidllm.routing.catalog_store import seal_secret, tombstone
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow

if TYPE_CHECKING:
    from voidllm.store.store import Store

log = logging.getLogger(__name__)

__all__ = [
    "McpAccessRules",
    "McpRegistry",
    "McpRegistryLoader",
    "McpServerEntry",
    "ToolCatalog",
    "entry_from_row",
    "load_registry_snapshot",
    "retire_server",
    "serve_mcp_registry",
    "sync_yaml_servers",
]


@attrs.frozen
class McpServerEntry:
    """A live MCP server with its secrets decrypted: what the proxy, the prober and the health service use.

    Carries every field of :class:`~voidllm.mcp.upstream.client.UpstreamServer` under the same names
    (:attr:`upstream`).
    """

    id: str
    name: str
    alias: str
    url: str
    auth_type: str = "none"
    auth_header: str = ""
    auth_token: str = attrs.field(default="", repr=False)
    oauth_token_url: str = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = attrs.field(default="", repr=False)
    oauth_scopes: str = ""
    org_id: str | None = None
    team_id: str | None = None
    is_active: bool = True
    code_mode_enabled: bool = True
    source: str = "api"

    @property
    def scope(self) -> str:
        """``global``, ``org`` or ``team``."""
        return "team" if self.team_id else "org" if self.org_id else "global"

    @property
    def upstream(self) -> UpstreamServer:
        """The server as the upstream client needs it."""
        return UpstreamServer(
            id=self.id,
            alias=self.alias,
            url=self.url,
            auth_type=self.auth_type,
            auth_header=self.auth_header,
            auth_token=self.auth_token,
            oauth_token_url=self.oauth_token_url,
            oauth_client_id=self.oauth_client_id,
            oauth_client_secret=self.oauth_client_secret,
            oauth_scopes=self.oauth_scopes,
        )


def entry_from_row(row: sa.RowMapping, keyring: Keyring) -> McpServerEntry:
    """The entry of one ``mcp_servers`` row; a secret that no longer decrypts (a changed encryption key) is
    left empty and logged, so one bad row never blocks the others."""
    aad = aad_for("mcp_server", row["id"])

    def opened(sealed: str | None, field: str) -> str:
        if not sealed:
            return ""
        try:
            return keyring.decrypt_secret(sealed, aad=aad)
        except CryptoError:
            log.warning("MCP server secret does not decrypt", extra={"server": row["alias"], "field": field})
            return ""

    return McpServerEntry(
        id=row["id"],
        name=row["name"],
        alias=row["alias"],
        url=row["url"],
        auth_type=row["auth_type"],
        auth_header=row["auth_header"] or "",
        auth_token=opened(row["auth_token_enc"], "auth_token"),
        oauth_token_url=row["oauth_token_url"] or "",
        oauth_client_id=row["oauth_client_id"] or "",
        oauth_client_secret=opened(row["oauth_client_secret_enc"], "oauth_client_secret"),
        oauth_scopes=row["oauth_scopes"] or "",
        org_id=row["org_id"],
        team_id=row["team_id"],
        is_active=bool(row["is_active"]),
        code_mode_enabled=bool(row["code_mode_enabled"]),
        source=row["source"],
    )


@attrs.frozen
class McpAccessRules:
    """Server-id allowlists by org, team and key id."""

    orgs: Mapping[str, frozenset[str]] = attrs.field(factory=dict)
    teams: Mapping[str, frozenset[str]] = attrs.field(factory=dict)
    keys: Mapping[str, frozenset[str]] = attrs.field(factory=dict)

    def allows(self, identity: KeyIdentity, server: McpServerEntry) -> bool:
        if identity.role >= Role.SYSTEM_ADMIN:
            return True
        if server.org_id is not None or server.team_id is not None:
            return server.org_id == identity.org_id and server.team_id in (None, identity.team_id)
        if server.id not in self.orgs.get(identity.org_id, frozenset()):
            return False
        for allowed in (
            self.teams.get(identity.team_id) if identity.team_id else None,
            self.keys.get(identity.key_id),
        ):
            if allowed and server.id not in allowed:
                return False
        return True


@attrs.define(eq=False)
class McpRegistry:
    """The MCP servers and access rules in force; see the module docstring."""

    servers: tuple[McpServerEntry, ...] = ()
    access: McpAccessRules = attrs.field(factory=McpAccessRules)
    catalog: ToolCatalog = attrs.field(factory=ToolCatalog)
    _by_key: dict[tuple[str, str | None, str | None], McpServerEntry] = attrs.field(factory=dict, init=False)
    _by_id: dict[str, McpServerEntry] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        self.replace(self.servers, self.access, self.catalog)

    def replace(
        self, servers: Sequence[McpServerEntry], access: McpAccessRules, catalog: ToolCatalog | None = None
    ) -> None:
        """Swap in a new snapshot (one assignment per lookup table; trio runs tasks on one thread)."""
        self._by_key = {(s.alias, s.org_id, s.team_id): s for s in servers}
        self._by_id = {s.id: s for s in servers}
        self.servers = tuple(servers)
        self.access = access
        if catalog is not None:
            self.catalog = catalog

    def resolve(self, identity: KeyIdentity, alias: str) -> McpServerEntry | None:
        """The server ``alias`` means for this key: its team's, else its org's, else the global one."""
        if identity.team_id:
            found = self._by_key.get((alias, identity.org_id, identity.team_id))
            if found is not None:
                return found
        return self._by_key.get((alias, identity.org_id, None)) or self._by_key.get((alias, None, None))

    def allowed(self, identity: KeyIdentity, server: McpServerEntry) -> bool:
        """Whether the key may call ``server`` (section 4: global servers closed by default)."""
        return self.access.allows(identity, server)

    def get(self, server_id: str) -> McpServerEntry | None:
        return self._by_id.get(server_id)

    def active(self) -> tuple[McpServerEntry, ...]:
        """Active servers the gateway proxies to (the built-in server is served in-process)."""
        return tuple(s for s in self.servers if s.is_active and s.source != "builtin")


# ----------------------------------------------------------------------------------------- loading


def load_registry_snapshot(
    conn: sa.Connection, *, keyring: Keyring
) -> tuple[tuple[McpServerEntry, ...], McpAccessRules, ToolCatalog]:
    """Every live server (active or not), the three allowlists and the tool catalog, in one transaction."""
    s = t.mcp_servers
    rows = conn.execute(sa.select(s).where(s.c.deleted_at.is_(None)).order_by(s.c.id)).mappings()
    servers = tuple(entry_from_row(row, keyring) for row in rows)

    def lists(table: sa.Table, scope: str) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {}
        for scope_id, server_id in conn.execute(sa.select(table.c[scope], table.c.server_id)):
            found.setdefault(scope_id, set()).add(server_id)
        return {scope_id: frozenset(ids) for scope_id, ids in found.items()}

    access = McpAccessRules(
        orgs=lists(t.org_mcp_access, "org_id"),
        teams=lists(t.team_mcp_access, "team_id"),
        keys=lists(t.key_mcp_access, "key_id"),
    )
    return servers, access, load_tool_catalog(conn, {server.id for server in servers})


@attrs.define(eq=False)
class McpRegistryLoader:
    """Reloads ``registry`` from the store; reloads run one at a time, so the last one holds the newest
    state."""

    registry: McpRegistry
    store: Store
    keyring: Keyring = attrs.field(repr=False)
    _lock: trio.Lock = attrs.field(factory=trio.Lock, init=False)

    async def reload(self) -> None:
        """Raises: StoreError: the store could not be read; the registry is unchanged."""
        async with self._lock:
            servers, access, catalog = await self.store.run(
                partial(load_registry_snapshot, keyring=self.keyring)
            )
            self.registry.replace(servers, access, catalog)
        CACHE_SIZE.labels(cache="mcp_servers").set(len(servers))
        grants = (*access.orgs.values(), *access.teams.values(), *access.keys.values())
        CACHE_SIZE.labels(cache="mcp_access").set(sum(len(ids) for ids in grants))
        CACHE_SIZE.labels(cache="mcp_tools").set(sum(len(tools) for tools in catalog.tools.values()))


async def serve_mcp_registry(
    *,
    loader: McpRegistryLoader,
    ttl: float,
    task_status: trio.TaskStatus[McpRegistry] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Load the registry, report ready, then reload it every ``ttl`` seconds until cancelled.

    A failed periodic reload is logged and counted (``voidllm_cache_refresh_failures_total{cache="mcp"}``).
    """
    await loader.reload()
    task_status.started(loader.registry)
    await keep_reloading(loader.reload, ttl=ttl, cache="mcp")


# ------------------------------------------------------------------------------------- config sync


def sync_yaml_servers(conn: sa.Connection, servers: Sequence[MCPServerConfig], *, keyring: Keyring) -> None:
    """Write the config's MCP servers into the store as global ``source='yaml'`` servers; one transaction."""
    s = t.mcp_servers
    global_scope = sa.and_(s.c.org_id.is_(None), s.c.team_id.is_(None), s.c.deleted_at.is_(None))
    live = {row.alias: row for row in conn.execute(sa.select(s).where(global_scope))}
    for cfg in servers:
        row = live.get(cfg.alias)
        if row is not None and row.source != "yaml":
            log.info(
                "config MCP server skipped: the admin API manages a global server of that alias",
                extra={"server": cfg.alias},
            )
            continue
        server_id = row.id if row is not None else new_id()
        values = {
            "name": cfg.name,
            "url": cfg.url,
            "auth_type": cfg.auth_type,
            "auth_header": cfg.auth_header or None,
            "auth_token_enc": seal_secret(
                keyring,
                cfg.auth_token,
                "mcp_server",
                server_id,
                row.auth_token_enc if row is not None else None,
            ),
            "oauth_token_url": cfg.oauth_token_url or None,
            "oauth_client_id": cfg.oauth_client_id or None,
            "oauth_client_secret_enc": seal_secret(
                keyring,
                cfg.oauth_client_secret,
                "mcp_server",
                server_id,
                row.oauth_client_secret_enc if row is not None else None,
            ),
            "oauth_scopes": cfg.oauth_scopes or None,
        }
        if row is None:
            conn.execute(sa.insert(s).values(id=server_id, alias=cfg.alias, source="yaml", **values))
        else:
            conn.execute(sa.update(s).where(s.c.id == server_id).values(**values))
    wanted = {cfg.alias for cfg in servers}
    for row in live.values():
        if row.source == "yaml" and row.alias not in wanted:
            retire_server(conn, row.id, row.alias)


def retire_server(conn: sa.Connection, server_id: str, alias: str) -> None:
    """Soft-delete a server: tombstone its alias, drop its grants, its cached tool list, its tool blocklist
    and its learned output schemas (their foreign keys cascade only on a hard delete; the server row
    stays)."""
    s = t.mcp_servers
    conn.execute(
        sa.update(s)
        .where(s.c.id == server_id)
        .values(alias=tombstone(alias, server_id), is_active=False, deleted_at=utcnow())
    )
    dependents = (
        t.org_mcp_access,
        t.team_mcp_access,
        t.key_mcp_access,
        t.mcp_server_tools,
        t.mcp_tool_blocklist,
        t.output_schemas,
    )
    for table in dependents:
        conn.execute(sa.delete(table).where(table.c.server_id == server_id))
