"""Which paths each listening port serves (docs/reference/behaviour.md 0, ``server.admin``).

In single-port mode (``server.admin.port: 0``, the default) the proxy port serves everything. In dual-port
mode the proxy port is the public one and serves only the OpenAI-compatible API (``/v1`` and below) and
health (``/healthz``, ``/health``, ``/readyz``, ``/metrics``); the admin port serves the rest: the admin API
(``/api/v1``), the MCP endpoints (``/api/v1/mcp/...``), the playground tunnel, the API docs, the web UI, and
health too, but never ``/v1``. A path a port does not serve is answered 404 by the edge, before any app,
authentication or CORS preflight, in the envelope of the endpoint it names (:func:`voidllm.web.edge`).
"""

from __future__ import annotations

import enum

HEALTH_PATHS = frozenset({"/healthz", "/health", "/readyz", "/metrics"})
"""Served on every port."""

PROXY_PREFIX = "/v1"


def is_proxy_path(path: str) -> bool:
    """``/v1`` or a path below it."""
    return path == PROXY_PREFIX or path.startswith(PROXY_PREFIX + "/")


class Listener(enum.Enum):
    """The role of one listening port."""

    ALL = "all"
    """Single-port mode: the proxy port serves every path."""
    PUBLIC = "public"
    """Dual-port mode, the proxy port: ``/v1`` and health only."""
    ADMIN = "admin"
    """Dual-port mode, the admin port: everything but ``/v1``."""

    def serves(self, path: str) -> bool:
        """Whether a request for ``path`` is answered on this port (else 404)."""
        if self is Listener.PUBLIC:
            return is_proxy_path(path) or path in HEALTH_PATHS
        if self is Listener.ADMIN:
            return not is_proxy_path(path)
        return True
