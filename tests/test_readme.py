"""Issue 13 point 7: the README a newcomer needs, within the repository.

The quick start itself is run in tests/test_demo_model.py (its curl commands against ``voidllm serve`` on
the example config); this file checks what the README must say and that it points at nothing outside the
repository.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "examples" / "README.md"]


def test_no_document_points_outside_the_repository() -> None:
    for doc in DOCS:
        text = doc.read_text()
        assert "../" not in text, doc
        assert "shared/" not in text, doc
        for target in re.findall(r"`((?:scripts|examples|voidllm|tests|docs)/[\w./-]+)`", text):
            assert (ROOT / target).exists() or (doc.parent / target).exists(), (doc.name, target)


def test_the_quick_start_covers_what_a_newcomer_needs() -> None:
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    for needed in (
        '"model": "default"',
        "provider: mock",
        "--port",
        "voidllm.testing.mock_openai",
        "bootstrap_pending",
        "aliases: [default]",
    ):
        assert needed in quick, needed
    assert "## Usage" in text
    assert "/usage/me" in text
    setup = re.findall(r"^\./scripts/\w+", quick, flags=re.MULTILINE)
    assert setup == ["./scripts/serve", "./scripts/test"]  # exactly two set-up commands
