"""Applies other processes' change notices (:mod:`voidllm.bus`) to this process's caches: server wiring.

The server hands one :class:`Invalidations` to the receiver of the notices, over Redis pub/sub
(:func:`voidllm.redis.bus.serve_invalidations`) or over the store's ``change_notices`` table
(:func:`voidllm.bus.serve_store_notices`). Per topic:

- ``keys``: when the message is a key hash, that key is evicted at once (a revocation takes effect before
  any reload), then the key cache reloads from the store;
- ``models`` / ``access`` / ``aliases``: ``services.catalog_reload()``, when the server set one;
- ``mcp``: ``services.mcp.reload()`` (the MCP registry), when the server set one.

Reloads are coalesced: a burst of notices causes one reload running and at most one more after it.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import attrs
import trio

from voidllm.auth.cache import reload_key_cache
from voidllm.bus import TOPIC_KEYS, TOPIC_MCP, TOPICS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from voidllm.admin.services import Services
    from voidllm.auth.cache import KeyCache
    from voidllm.store.store import Store

log = logging.getLogger(__name__)

_KEY_HASH = re.compile(r"[0-9a-f]{64}")


@attrs.define(eq=False)
class _Coalesced:
    """Runs ``action`` after :meth:`request`; requests made while it runs cause exactly one more run."""

    name: str
    action: Callable[[], Awaitable[None]]
    _wanted: trio.Event = attrs.field(factory=trio.Event)

    def request(self) -> None:
        self._wanted.set()

    async def serve(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            try:
                await self.action()
            except Exception as exc:  # the next notice or periodic reload tries again
                log.warning(
                    "reload after a change notice failed",
                    extra={"cache": self.name, "error_type": type(exc).__name__},
                )


@attrs.define(eq=False)
class Invalidations:
    """Applies other processes' notices to this process's caches (see the module docstring)."""

    keys: KeyCache
    store: Store
    services: Services  # its ``catalog_reload`` and ``mcp`` are read when needed
    _key_reload: _Coalesced = attrs.field(init=False)
    _catalog_reload: _Coalesced = attrs.field(init=False)
    _mcp_reload: _Coalesced = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._key_reload = _Coalesced("keys", lambda: reload_key_cache(self.keys, self.store))
        self._catalog_reload = _Coalesced("catalog", self._reload_catalog)
        self._mcp_reload = _Coalesced("mcp", self._reload_mcp)

    async def serve(self) -> None:
        """Run the coalesced reloads until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._key_reload.serve)
            nursery.start_soon(self._catalog_reload.serve)
            nursery.start_soon(self._mcp_reload.serve)

    def notice(self, topic: str, message: str) -> None:
        if topic == TOPIC_KEYS:
            if _KEY_HASH.fullmatch(message):
                self.keys.evict(message)
            self._key_reload.request()
        elif topic == TOPIC_MCP:
            self._mcp_reload.request()
        elif topic in TOPICS:
            self._catalog_reload.request()

    def reload_all(self) -> None:
        self._key_reload.request()
        self._catalog_reload.request()
        self._mcp_reload.request()

    async def _reload_catalog(self) -> None:
        if self.services.catalog_reload is not None:
            await self.services.catalog_reload()

    async def _reload_mcp(self) -> None:
        if self.services.mcp is not None:
            await self.services.mcp.reload()
