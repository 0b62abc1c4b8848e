"""Change notices between gateway processes over Redis pub/sub (``redis.enabled``).

Publishing: :class:`RedisBus` sends ``{"from": <instance id>, "message": ...}`` on the channel
``<prefix>invalidate:<topic>`` (topics in :mod:`voidllm.bus`). The instance id is random per process, so a
process ignores its own notices (it has already applied the change to its caches). Publishing never raises:
a lost notice is caught up by the periodic reloads (``cache.key_ttl`` / ``model_ttl``).

Receiving: :func:`serve_invalidations` holds one dedicated subscriber connection and hands each notice of
another process to a :class:`~voidllm.bus.Notices` (the server's
:class:`~voidllm.invalidations.Invalidations`, which applies it to this process's caches). When the
subscription breaks (Redis restarted, network), the service resubscribes with capped exponential backoff and,
once subscribed again, reloads everything (notices sent meanwhile are lost) and runs ``on_connected``
(the Redis limiter seeds its token counters there, in case Redis came back empty).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import attrs
import orjson
import trio

from voidllm.bus import TOPICS, Notices
from voidllm.nursery import Backoff
from voidllm.redis.client import RedisClient, RedisError

log = logging.getLogger(__name__)

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
            log.warning(
                "change notice not published", extra={"topic": topic, "error_type": type(exc).__name__}
            )


async def serve_invalidations(
    *,
    client: RedisClient,
    prefix: str,
    instance_id: str,
    invalidations: Notices,
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
                log.warning(
                    "change notice subscription lost; retrying",
                    extra={"error_type": type(exc).__name__, "retry_in_s": RESUBSCRIBE.delay(failures)},
                )
            if not ready:
                ready = True
                task_status.started()
            await trio.sleep(RESUBSCRIBE.delay(max(failures, 1)))


def _dispatch(invalidations: Notices, instance_id: str, topic: str | None, data: bytes) -> None:
    try:
        notice = orjson.loads(data)
        sender, message = notice["from"], str(notice.get("message", ""))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        log.warning("malformed change notice ignored", extra={"topic": topic})
        return
    if topic is not None and sender != instance_id:
        invalidations.notice(topic, message)
