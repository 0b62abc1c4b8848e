"""Routing: the model registry (names, aliases, upstreams) and, later, strategies, breakers and fallbacks."""
