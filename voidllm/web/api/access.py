"""Routes of the management API: access (being written)."""
