"""Provider adapters: pure translation between the OpenAI-compatible API and each provider's own (no I/O)."""
