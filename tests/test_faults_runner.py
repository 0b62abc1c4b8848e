"""The fault runner (``scripts/faults``, issue 14 point 5) from the outside: it lists its scenarios, and one
short scenario runs in quick mode against a real ``voidllm serve``, prints its figure against its goal, writes
its table into a markdown file between the markers, and leaves no process behind.

``hung_upstream`` is the scenario: it needs neither PostgreSQL nor Redis, and takes about 12 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).resolve().parents[1] / "scripts" / "faults_lib"
SCENARIOS = {
    "saturation",
    "store_cut",
    "sigkill_spill",
    "deployment_killed",
    "hung_upstream",
    "redis_faults",
    "sigterm_drain",
    "slowloris",
    "slow_readers",
    "soak",
}


def faults(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIDLLM_")}
    return subprocess.run(
        [sys.executable, str(RUNNER), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_list_names_every_scenario() -> None:
    done = faults("--list", timeout=30)
    assert done.returncode == 0, done.stderr
    assert {line.split()[0] for line in done.stdout.splitlines()} == SCENARIOS


def test_an_unknown_scenario_is_refused() -> None:
    done = faults("no_such_scenario", timeout=30)
    assert done.returncode == 2
    assert "unknown scenario: no_such_scenario" in done.stderr


def test_a_quick_scenario_runs_and_writes_its_table(tmp_path: Path) -> None:
    doc = tmp_path / "reliability.md"
    doc.write_text("# Reliability\n\n<!-- faults:table -->\nold table\n<!-- /faults:table -->\n\nafter\n")
    done = faults("hung_upstream", "--quick", "--table", str(doc), timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "hung_upstream: PASS" in done.stdout
    text = doc.read_text()
    assert "old table" not in text
    assert text.startswith("# Reliability\n")
    assert text.endswith("\nafter\n")
    row = next(line for line in text.splitlines() if line.startswith("| hung_upstream |"))
    assert "**PASS**" in row
    assert "504 upstream_timeout" in row
    assert "cores" in text
    assert "load average" in text
    leftovers = subprocess.run(
        ["pgrep", "-f", "voidllm-faults-hung_upstream"], capture_output=True, check=False
    )
    assert leftovers.stdout == b""  # every process of the scenario (started in its work directory) is gone
