"""Routes of the management API: users (being written)."""
