"""Authentication: the API-key cache (every live key by its HMAC; no database on the hot path) and its loader,
the first-start bootstrap, password hashing, login sessions, login throttling (in memory or over Redis), and
the OpenID Connect protocol of single sign-on (:mod:`voidllm.auth.oidc`).

The identity a key resolves to is a plain value of :mod:`voidllm.identity`, below this package, because the
limiters, the catalog, the proxy and the MCP gateway read it too; :mod:`voidllm.auth.identity` decides the
role a key acts with.
"""
