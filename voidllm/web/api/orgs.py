"""Routes of the management API: orgs (being written)."""
