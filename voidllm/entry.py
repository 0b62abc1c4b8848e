"""The ``voidllm`` console script and ``python -m voidllm``: the collector held back, then the command line.

Full collections are held back while the modules load (:mod:`voidllm.collector`: 0.07 to 0.1 s of a start).
``voidllm serve`` releases the hold once it is running, when it freezes what start-up made
(:func:`voidllm.server.tune_gc_after_start`); every other command, and the parent of ``server.workers``
processes, gets Python's thresholds back before it runs. Here and not in :mod:`voidllm.cli`, so that importing
the command line (tests, an embedding program) changes nothing about its process's collector.
"""

from __future__ import annotations

from voidllm.collector import hold_full_collections

__all__ = ["main"]


def main() -> int:
    """Entry point of the ``voidllm`` console script."""
    hold_full_collections()
    from voidllm.cli import main as run_command_line

    return run_command_line()
