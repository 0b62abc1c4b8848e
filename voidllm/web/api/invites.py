"""Routes of the management API: invites (being written)."""
