"""Change notices between gateway processes over Redis pub/sub (``redis.enabled``).

Publishing: :class:`RedisBus` sends ``{"from": <instance id>, "message": ...}`` on the channel
``<prefix>invalidate:<topic>`` (topics in :mod:`voidllm.bus`). The instance id is random per process, so a
process ignores its own notices (it has already applied the change to its caches). Publishing never raises:
a lost notice is caught up by the periodic reloads (``cache.key_ttl`` / ``model_ttl``).

Receiving: :func:`serve_invalidations` holds one dedicated subscriber connection and hands each notice of
another process to :class:`Invalidations`:

- ``keys``: when the message is a key hash, that key is evicted at once (a revocation takes effect before
  any reload), then the key cache reloads from the store;
- ``models`` / ``access`` / ``aliases``: ``services.catalog_reload()``, when the server set one;
- ``mcp``: ``services.extras["mcp_reload"]()`` (the MCP registry), when the server set one.

Reloads are coalesced: a burst of notices causes one reload running and at most one more after it. When the
subscription breaks (Redis restarted, network), the service resubscribes with capped exponential backoff
and, once subscribed again, reloads everything (notices sent meanwhile are lost) and runs ``on_connected``
(the Redis limiter seeds its token counters there, in case Redis came back empty).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import orjson
import trio

from voidllm.auth.cache import reload_key_cache
from voidllm.bus import TOPIC_KEYS, TOPIC_MCP, TOPICS
from voidllm.nursery import Backoff
from voidllm.redis.client import RedisClient, RedisError

log = logging.getLogger(__name__)

_KEY_HASH = re.compile(r"[0-9a-f]{64}")
RESUBSCRIBE = Backoff(initial=0.5, factor=2.0, maximum=10.0)


def channel_of(prefix: str, topic: str) -> str:
    return f"{prefix}invalidate:{topic}"


@attrs.define(eq=False)
class RedisBus:
    """The :class:`voidllm.bus.Bus` of a process connected to Redis."""

    client: RedisClient
    prefix: str
    instance_id: str

    async def publish(self, topic: str, message: str = "") -> None:
        payload = orjson.dumps({"from": self.instance_id, "message": message})
        try:
            await self.client.publish(channel_of(self.prefix, topic), payload)
        except RedisError as exc:
            log.warning("change notice not published",
                        extra={"topic": topic, "error_type": type(exc).__name__})


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
                log.warning("reload after a change notice failed",
                            extra={"cache": self.name, "error_type": type(exc).__name__})


@attrs.define(eq=False)
class Invalidations:
    """Applies other processes' notices to this process's caches (see the module docstring)."""

    keys: Any  # voidllm.auth.cache.KeyCache
    store: Any
    services: Any  # voidllm.admin.services.Services: catalog_reload is read when needed
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
        reload = getattr(self.services, "catalog_reload", None)
        if reload is not None:
            await reload()

    async def _reload_mcp(self) -> None:
        extras = getattr(self.services, "extras", None) or {}
        reload = extras.get("mcp_reload")
        if reload is not None:
            await reload()


async def serve_invalidations(
    *,
    client: RedisClient,
    prefix: str,
    instance_id: str,
    invalidations: Invalidations,
    on_connected: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Subscribe to every topic and apply other processes' notices until cancelled.

    Reports ready after the first attempt to subscribe, whether it worked or not: a gateway starts without
    Redis (``redis.on_error`` decides what limits do meanwhile) and keeps trying in the background.
    """
    channels = {channel_of(prefix, topic): topic for topic in TOPICS}
    ready = False
    failures = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(invalidations.serve)
        while True:
            try:
                async with client.subscribe(*channels) as subscription:
                    if on_connected is not None:
                        await on_connected()
                    if ready:
                        invalidations.reload_all()  # notices may have been missed while disconnected
                        log.info("change notices resubscribed")
                    else:
                        ready = True
                        task_status.started()
                    failures = 0
                    async for channel, data in subscription:
                        _dispatch(invalidations, instance_id, channels.get(channel), data)
            except RedisError as exc:
                failures += 1
                log.warning("change notice subscription lost; retrying", extra={
                    "error_type": type(exc).__name__, "retry_in_s": RESUBSCRIBE.delay(failures)})
            if not ready:
                ready = True
                task_status.started()
            await trio.sleep(RESUBSCRIBE.delay(max(failures, 1)))


def _dispatch(invalidations: Invalidations, instance_id: str, topic: str | None, data: bytes) -> None:
    try:
        notice = orjson.loads(data)
        sender, message = notice["from"], str(notice.get("message", ""))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        log.warning("malformed change notice ignored", extra={"topic": topic})
        return
    if topic is not None and sender != instance_id:
        invalidations.notice(topic, message)
