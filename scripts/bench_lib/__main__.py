"""``python scripts/bench_lib`` (what ``scripts/bench`` runs): make ``bench_lib`` importable, then run it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_lib.run import main

sys.exit(main())
