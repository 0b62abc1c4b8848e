"""Routes of the management API: audit (being written)."""
