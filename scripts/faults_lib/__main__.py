"""``python scripts/faults_lib`` (what ``scripts/faults`` runs): make ``faults_lib``, ``bench_lib`` and the
repository (for ``tests.tcpforward``) importable, then run."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faults_lib.run import main

sys.exit(main())
