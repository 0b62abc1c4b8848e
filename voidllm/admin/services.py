"""The process's services as the use cases see them: one container, built once by the server (or the CLI)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from voidllm.admin.context import Actor
from voidllm.bus import Bus, LocalBus
from voidllm.errors import StoreError

if TYPE_CHECKING:
    from voidllm.auth.cache import KeyCache
    from voidllm.config import Config
    from voidllm.crypto import Keyring
    from voidllm.routing.catalog import Catalog
    from voidllm.store.store import Store


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
class Services:
    """Everything a use case may touch. ``catalog_reload`` reloads registry, allowlists and aliases from the
    store into ``catalog`` (set by the server; the CLI has no running catalog and leaves it ``None``)."""

    config: Config
    store: Store
    keyring: Keyring
    keys: KeyCache
    catalog: Catalog | None = None
    bus: Bus = attrs.field(factory=LocalBus)
    audit: AuditSink = attrs.field(factory=NullAudit)
    throttle: Any = None  # voidllm.auth.throttle.Throttle (in memory, or Redis-backed when Redis is on)
    catalog_reload: Any = None  # async () -> None
    extras: dict[str, Any] = attrs.field(factory=dict)

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
