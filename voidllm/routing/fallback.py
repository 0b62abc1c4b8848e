"""Cross-model fallback chains (docs/reference/behaviour.md 6.5).

When every candidate of a model failed with a transport error, a 5xx or a 429, the request moves on to the
model's ``fallback`` (resolved through aliases), then to that model's fallback, at most
``settings.fallback_max_depth`` hops (0 turns fallback off). The plan is computed once per request:

- a cycle ends the plan at the first repeated model (config validation rejects cycles; this guards the
  registry at run time too);
- a hop the caller may not use ends the plan silently: the client gets the previous model's error, so a
  fallback never reveals a model the key cannot see;
- 4xx answers other than 429 never fall back, and neither does a request whose own deadline passed.

Each hop uses its own model's timeout, and the body's ``model`` is rewritten to that model's canonical name.
Usage records the model that served and the model the client asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from voidllm.routing.registry import Model, Registry

log = logging.getLogger(__name__)


def fallback_plan(
    model: Model, registry: Registry, max_depth: int, allowed: Callable[[str], bool]
) -> list[Model]:
    """``[model, fallback, fallback's fallback, ...]`` as far as depth, cycles and access allow."""
    plan = [model]
    seen = {model.name}
    current = model
    while current.fallback and len(plan) <= max_depth:
        target = registry.resolve(current.fallback)
        if target is None or target.name in seen:
            log.warning("fallback chain stops at a cycle or an unknown model", extra={"model": current.name})
            break
        if not allowed(target.name):
            break
        plan.append(target)
        seen.add(target.name)
        current = target
    return plan
