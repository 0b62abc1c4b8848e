"""Routes of the management API: service_accounts (being written)."""
