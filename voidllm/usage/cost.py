"""The cost estimate of one request, from its token counts and the serving model's prices.

Same formula, in the same order of floating-point operations, as the Go original (so both compute the same
bits)::

    prompt_tokens / 1e6 * input_per_1m + completion_tokens / 1e6 * output_per_1m

Prices are in currency units per one million tokens, taken from the model that *served* the request (after
aliasing and fallback). A model without pricing (both prices 0) has no estimate, stored as NULL, which is
not the same as a cost of 0. Cached-token discounts and per-request fees are deliberately left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voidllm.usage.events import TokenUsage

__all__ = ["MONEY_DECIMALS", "cost_estimate", "money"]

MONEY_DECIMALS = 9
"""Decimals of a cost shown in a report: a billionth of the currency unit, far below one token's price."""


def cost_estimate(usage: TokenUsage, *, input_per_1m: float, output_per_1m: float) -> float | None:
    """Estimate the cost of ``usage``; ``None`` when the model has no pricing (both prices are 0)."""
    if input_per_1m == 0 and output_per_1m == 0:
        return None
    return usage.prompt_tokens / 1e6 * input_per_1m + usage.completion_tokens / 1e6 * output_per_1m


def money(value: float | None) -> float:
    """A sum of costs as reports show it: rounded to :data:`MONEY_DECIMALS`, so the float noise of adding many
    estimates (``0.30000000000000004``) never reaches a client. Stored estimates keep their exact bits."""
    return round(float(value or 0.0), MONEY_DECIMALS)
