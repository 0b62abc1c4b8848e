"""Routing: the model registry (names, aliases, upstreams), the catalog a key sees it through (scoped
aliases, access lists) and its loader from the store; candidate order (strategies, breakers, cooldowns,
latency, health probes), cross-model fallback plans and per-minute error rates per upstream
(``error_rates``). No request I/O: the proxy runs the attempts.
"""
