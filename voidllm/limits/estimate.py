"""How many tokens a request reserves before it goes upstream (sans-IO).

The estimate is deliberately simple and cheap: about four bytes per prompt token (``ceil(len(body) / 4)``),
plus the completion the client allows itself (``max_tokens``, ``max_completion_tokens`` or
``max_output_tokens``, whichever is given first), else ``default_completion`` (the setting
``settings.limits.default_completion_reserve``). A multipart body (audio) reserves only the default.
The reservation bounds how far concurrent requests can overspend a budget; the real count settles it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_COMPLETION_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def completion_allowance(payload: Mapping[str, Any], default_completion: int) -> int:
    """The completion tokens the request allows itself, or ``default_completion`` when it does not say."""
    for name in _COMPLETION_FIELDS:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return default_completion


def estimate_tokens(body_size: int, payload: Mapping[str, Any] | None, default_completion: int) -> int:
    """The reservation of a JSON request of ``body_size`` bytes, or of a multipart one (``payload`` None)."""
    if payload is None:
        return default_completion
    return -(-body_size // 4) + completion_allowance(payload, default_completion)
