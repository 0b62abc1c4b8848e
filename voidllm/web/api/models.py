"""Routes of the management API: models (being written)."""
