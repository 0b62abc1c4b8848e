"""The process's services as the use cases see them: one container, built once by the server (or the CLI)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from voidllm.admin.context import Actor
from voidllm.bus import Bus, LocalBus
from voidllm.errors import StoreError
from voidllm.redis.cooldown import Cooldowns, MemoryCooldowns

if TYPE_CHECKING:
    from voidllm.auth.cache import KeyCache
    from voidllm.auth.oidc import OidcClient
    from voidllm.auth.throttle import Throttle
    from voidllm.codemode.sandbox import Sandbox
    from voidllm.config import CodeModeConfig, Config
    from voidllm.crypto import Keyring
    from voidllm.lazyhttp import Client
    from voidllm.mcp.health import McpHealthBoard
    from voidllm.mcp.registry import McpRegistry
    from voidllm.mcp.tools_cache import LearnedOutput
    from voidllm.mcp.upstream.client import McpUpstreams
    from voidllm.mcp.usage import ToolCallRecord
    from voidllm.routing.catalog import Catalog
    from voidllm.routing.error_rates import ErrorRates
    from voidllm.routing.health import HealthBoard
    from voidllm.store.store import Store
    from voidllm.usage.batches import Recorder


log = logging.getLogger(__name__)


@attrs.frozen
class AuditEntry:
    """One admin mutation, as the audit log records it (docs/reference/behaviour.md 3, ``audit_logs``)."""

    actor: Actor
    action: str  # create | update | delete | rotate | login | ...
    resource_type: str  # organization | user | team | api_key | model | ...
    resource_id: str | None
    org_id: str | None
    status_code: int
    description: Mapping[str, Any] | None = None  # the request body; the writer redacts secrets


class AuditSink(Protocol):
    def record(self, entry: AuditEntry) -> None:
        """Queue one entry; never blocks and never raises."""


class NullAudit:
    """Audit logging switched off (``settings.audit.enabled: false``)."""

    def record(self, entry: AuditEntry) -> None:
        return None


@attrs.define(eq=False)
class HealthRuntime:
    """The running upstream health service as the use cases see it (set by the server)."""

    board: HealthBoard  # the health prober's latest report per upstream
    http_client: Client  # shared by the admin connection test; the server closes it


@attrs.define(eq=False)
class McpRuntime:
    """The running MCP services as the use cases and the gateway see them (set by the server)."""

    registry: McpRegistry
    reload: Callable[[], Awaitable[None]]  # reload ``registry`` from the store now
    upstreams: McpUpstreams  # the upstream client; the server closes it
    health: McpHealthBoard
    tool_calls: Recorder[ToolCallRecord] | None = None  # ``mcp_tool_calls`` rows; ``None``: not written
    changed: Callable[[], Awaitable[None]] | None = None  # reload ``registry`` now and publish ``mcp``
    codemode: CodeModeRuntime | None = None  # ``None``: Code Mode is off


@attrs.define(eq=False)
class CodeModeRuntime:
    """Code Mode as the gateway sees it (set by the server when ``settings.mcp.code_mode.enabled``)."""

    sandbox: Sandbox
    settings: CodeModeConfig
    learn: Callable[[LearnedOutput], None]  # queue a learned output schema to be stored (never blocks)


@attrs.define(eq=False)
class Services:
    """Everything a use case may touch. ``catalog_reload`` reloads registry, allowlists and aliases from the
    store into ``catalog``. The server sets ``catalog``, ``catalog_reload``, ``health``, ``mcp``, ``oidc``
    (single sign-on's client of OpenID Providers, over the probes' httpx client) and ``error_rates``; the
    CLI runs none of them and leaves them ``None``. ``throttle`` is the login throttle (Redis-backed when
    Redis is on; ``None`` until the login use case keeps one in memory). ``cooldowns`` limit actions to once
    per period (the MCP tool refresh): in Redis when it is on, else in this process."""

    config: Config
    store: Store
    keyring: Keyring
    keys: KeyCache
    catalog: Catalog | None = None
    bus: Bus = attrs.field(factory=LocalBus)
    audit: AuditSink = attrs.field(factory=NullAudit)
    throttle: Throttle | None = None
    cooldowns: Cooldowns = attrs.field(factory=MemoryCooldowns)
    catalog_reload: Callable[[], Awaitable[None]] | None = None
    health: HealthRuntime | None = None
    mcp: McpRuntime | None = None
    oidc: OidcClient | None = None  # single sign-on's provider client (set by the server)
    error_rates: ErrorRates | None = None  # the proxy's per-minute attempt outcomes (this process)

    async def catalog_changed(self, topic: str) -> None:
        """After a committed write to models, allowlists or aliases: reload this process's catalog at once,
        then tell the other processes on ``topic``.

        A failed reload is logged, not raised: the write is committed and the periodic reload catches up.
        """
        if self.catalog_reload is not None:
            try:
                await self.catalog_reload()
            except StoreError as exc:
                log.warning(
                    "catalog reload after a change failed",
                    extra={"topic": topic, "error_type": type(exc).__name__},
                )
        await self.bus.publish(topic)
