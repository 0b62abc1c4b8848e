"""Routes of the management API: teams (being written)."""
