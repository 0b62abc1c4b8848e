"""``scripts/bench --peer``'s pure parts: naming the peers, filling in the placeholders, the ratios and the
table (the run itself is in tests/test_bench.py)."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def peer(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from bench_lib import peer

    return peer


def test_a_peer_is_named_after_its_program(peer: ModuleType) -> None:
    peers = peer.peers_from(
        [
            "LITELLM_LOCAL_MODEL_COST_MAP=True ~/venv/bin/litellm --config {config} --port {port}",
            "echo {upstream} > seen; exec /usr/bin/python3 -m proxy --port {port}",
            "litellm --port {port}",
        ]
    )
    assert [p.name for p in peers] == ["litellm", "python3", "litellm#2"]


def test_placeholders_are_filled_in_and_other_braces_kept(peer: ModuleType, tmp_path: Path) -> None:
    values = {"port": "4000", "config": str(tmp_path / "a b" / "litellm.yaml"), "key": "sk-bench-1"}
    command = peer.expand('printf "%s|" {port} {config} {key} ${HOME:+set} {unknown} a{1,2}', values)
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True).stdout
    assert out == f"4000|{tmp_path}/a b/litellm.yaml|sk-bench-1|set|{{unknown}}|a1|a2|"


def test_ratios_and_the_table_come_from_the_values(peer: ModuleType) -> None:
    keys = [f.key for f in peer.FIGURES]
    voidllm = dict.fromkeys(keys, 2.0) | {"added_latency_p99_ms": -0.1, "errors": 0.0}
    other = dict.fromkeys(keys, 5.0) | {"ready_s": math.nan, "errors": 0.0}
    rows = peer.side_by_side(voidllm, {"litellm 1.0": other})
    assert rows[0] == ["figure", "VoidLLM", "litellm 1.0", "ratio"]
    by_label = {row[0]: row[1:] for row in rows[1:]}
    assert by_label["proxied RPS, 32 connections"] == ["2.0 req/s", "5.0 req/s", "2.50x"]
    assert by_label["added latency p99, 1 connection"] == ["-0.10 ms", "5.00 ms", "n/a"]  # no ratio to <= 0
    assert by_label["start to ready (first 200)"] == ["2.00 s", "n/a", "n/a"]
    assert by_label["errors (RPS, latency, streams)"] == ["0", "0", "n/a"]
    assert peer.ratio(119.0, 922.0) == pytest.approx(0.129, abs=1e-3)
    markdown = peer.markdown(rows).splitlines()
    assert markdown[:2] == ["| figure | VoidLLM | litellm 1.0 | ratio |", "|---|---|---|---|"]
    assert markdown[2] == "| proxied RPS, 32 connections | 2.0 req/s | 5.0 req/s | 2.50x |"


def test_the_litellm_config_routes_the_model_to_the_upstream(peer: ModuleType, tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    path = peer.litellm_config(tmp_path / "litellm.yaml", "http://127.0.0.1:9/v1", "sk-bench-k")
    config = yaml.safe_load(path.read_text())
    assert config["model_list"][0]["model_name"] == "mock"
    assert config["model_list"][0]["litellm_params"] == {
        "model": "openai/mock",
        "api_base": "http://127.0.0.1:9/v1",
        "api_key": "sk-bench-upstream",
    }
    assert config["general_settings"] == {"master_key": "sk-bench-k"}
