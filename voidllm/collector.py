"""The garbage collector held back while a gateway process loads its modules (:mod:`voidllm.entry` holds,
:func:`voidllm.server.tune_gc_after_start` and :func:`voidllm.cli.main` release).

A gateway process makes about 120,000 objects while it starts (modules, classes, the app), and nearly all of
them live as long as the process. With Python's thresholds, the collector walked them while they were made:
two full collections and about two dozen of the middle generation during the imports alone, 0.07 to 0.1 s of
the 0.8 s they took (2-core VM, docs/performance.md "Start-up"). Held, full collections wait until the process
is running; young ones still run, so start-up's short-lived cycles are freed as before (the memory at ready
did not change).
"""

from __future__ import annotations

import gc

__all__ = ["hold_full_collections", "release_full_collections"]

_HELD = 1 << 30  # a threshold for the oldest generation that start-up's middle collections never reach
_held_from: tuple[int, int, int] | None = None


def hold_full_collections() -> None:
    """No full collections from now until :func:`release_full_collections` (idempotent)."""
    global _held_from
    if _held_from is None:
        _held_from = gc.get_threshold()
        gc.set_threshold(_held_from[0], _held_from[1], _HELD)


def release_full_collections(young: int | None = None) -> None:
    """The thresholds from before the hold (or the current ones when nothing is held), with ``young`` as the
    young generation's when given."""
    global _held_from
    thresholds = _held_from or gc.get_threshold()
    _held_from = None
    gc.set_threshold(young or thresholds[0], thresholds[1], thresholds[2])
