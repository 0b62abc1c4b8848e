"""Routing: the model registry (names, aliases, upstreams), the catalog a key sees it through (scoped
aliases, access lists) and its loader from the store; candidate order (strategies, breakers, cooldowns,
latency, health probes) and cross-model fallback plans. No request I/O: the proxy runs the attempts.
"""
