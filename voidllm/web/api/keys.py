"""Routes of the management API: keys (being written)."""
