"""Routes of the management API: auth (being written)."""
