"""Routes of the management API: me (being written)."""
