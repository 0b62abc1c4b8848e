"""The fault runner behind ``scripts/faults`` (issue 14 point 5); see ``run.py`` and docs/reliability.md."""
