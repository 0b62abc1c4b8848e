"""Redis: a trio client (:mod:`voidllm.redis.client`) and the cross-process change bus
(:mod:`voidllm.redis.bus`)."""

from voidllm.redis.client import RedisClient as RedisClient
from voidllm.redis.client import RedisError as RedisError
from voidllm.redis.client import RedisReplyError as RedisReplyError
from voidllm.redis.client import RedisUnavailableError as RedisUnavailableError
from voidllm.redis.client import Script as Script
from voidllm.redis.client import Subscription as Subscription
from voidllm.redis.client import open_redis as open_redis

__all__ = [
    "RedisClient",
    "RedisError",
    "RedisReplyError",
    "RedisUnavailableError",
    "Script",
    "Subscription",
    "open_redis",
]
