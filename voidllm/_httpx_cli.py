"""Keep httpx's command-line client out of the ``voidllm`` process (imported first by :mod:`voidllm.cli`).

httpx imports its own CLI (``httpx._main``: click, rich, pygments) whenever those are installed, and they are
(rich draws ``voidllm migrate``'s progress bars): about 60 modules, 2.5 MB and a tenth of a second of every
start, for a command this process never runs. Marking the module as absent before httpx is first imported
makes httpx take its documented fallback (a ``main`` that explains the missing extras); the ``httpx``
command, a process of its own, is unaffected. tests/test_startup.py checks that rich and pygments stay out.
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
