"""Request rate limits and token budgets at key, team and org level: one policy, two backends.

:mod:`voidllm.limits.base` holds the policy and the :class:`Limiter` interface, :mod:`.memory` the
one-process backend, :mod:`.redis` the shared one, :mod:`.estimate` the token reservation of a request.
"""

from voidllm.limits.base import Admission as Admission
from voidllm.limits.base import Limiter as Limiter
from voidllm.limits.base import NoLimiter as NoLimiter
from voidllm.limits.base import limited as limited
from voidllm.limits.estimate import estimate_tokens as estimate_tokens
from voidllm.limits.memory import MemoryLimiter as MemoryLimiter
from voidllm.limits.redis import RedisLimiter as RedisLimiter

__all__ = ["Admission", "Limiter", "MemoryLimiter", "NoLimiter", "RedisLimiter", "estimate_tokens", "limited"]
