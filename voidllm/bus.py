"""Change notices between gateway processes: "this key was revoked", "the registry changed".

A process that changes something applies it to its own caches first and then publishes a notice on a
topic. With Redis (``redis.enabled``) the notice reaches every other process within milliseconds through
pub/sub (:mod:`voidllm.redis.bus`); without Redis, :class:`LocalBus` publishes nowhere and the other
processes pick the change up at their next periodic cache reload (``cache.key_ttl`` / ``model_ttl``).
"""

from __future__ import annotations

from typing import Protocol

TOPIC_KEYS = "keys"
"""Message: the hash of a key to evict at once (then the key cache reloads), or ``*`` to reload only."""
TOPIC_MODELS = "models"
"""Message ignored: reload the model registry from the store."""
TOPIC_ACCESS = "access"
"""Message ignored: reload the model-access allowlists."""
TOPIC_ALIASES = "aliases"
"""Message ignored: reload the scoped model aliases."""

TOPIC_MCP = "mcp"
"""Message ignored: reload the MCP servers and MCP access allowlists (``voidllm.mcp.registry``)."""

TOPICS = (TOPIC_KEYS, TOPIC_MODELS, TOPIC_ACCESS, TOPIC_ALIASES, TOPIC_MCP)


class Bus(Protocol):
    async def publish(self, topic: str, message: str = "") -> None:
        """Tell the other processes; never raises (a lost notice is caught up by the periodic reload)."""


class LocalBus:
    """One process, or several without Redis: nothing to tell; periodic reloads converge the others."""

    async def publish(self, topic: str, message: str = "") -> None:
        return None
