"""Mounts the MCP endpoints in front of the Quart app.

MCP endpoints speak JSON-RPC over streamable HTTP, not the JSON admin API, so they are plain ASGI apps
(:class:`~voidllm.mcp.gateway.server.McpEndpoint`) dispatched by exact path before Quart routing: they are not
in the declared route table, the OpenAPI document or the admin error envelope. :class:`McpMount` holds one
endpoint per path; the built-in server is ``/api/v1/mcp/voidllm``, Code Mode (when enabled) ``/api/v1/mcp``.
Other MCP endpoints (proxied upstream servers) register with :meth:`McpMount.add` or through
:attr:`McpMount.resolvers`: :func:`mount_mcp` adds one that serves ``/api/v1/mcp/<alias>`` for every other
alias with a :class:`~voidllm.mcp.gateway.proxy.ProxiedServer` (which answers 404 for aliases the caller
cannot resolve).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from voidllm.mcp.gateway.builtin import BuiltinBackend
from voidllm.mcp.gateway.codemode import CodeModeBackend
from voidllm.mcp.gateway.proxy import ProxiedServer, ProxyState
from voidllm.mcp.gateway.server import McpEndpoint
from voidllm.mcp.gateway.sessions import SessionSealer
from voidllm.web.cors import mcp_origins
from voidllm.web.state import AppState

MCP_PREFIX = "/api/v1/mcp"
BUILTIN_PATH = MCP_PREFIX + "/voidllm"
MAX_ALIAS = 128


@attrs.define(eq=False)
class McpMount:
    """ASGI: MCP endpoint paths go to their endpoint, every other request to ``app``."""

    app: Any
    state: AppState
    endpoints: dict[str, McpEndpoint] = attrs.field(factory=dict)
    resolvers: list[Callable[[str], Any]] = attrs.field(factory=list)
    _sealer: SessionSealer | None = None

    def sealer(self) -> SessionSealer:
        """One sealer per process (it holds the in-memory revocation set)."""
        if self._sealer is None:
            services = self.state.services
            assert services is not None, "MCP endpoints need the process's services"
            self._sealer = SessionSealer(services.keyring)
        return self._sealer

    def allowed_origins(self) -> frozenset[str]:
        """Browser origins allowed besides the gateway's own (``settings.mcp.allowed_origins`` and the exact
        origins of ``server.cors.allowed_origins``: :func:`~voidllm.web.cors.mcp_origins`)."""
        return mcp_origins(self.state.config)

    def add(self, path: str, backend: Any) -> McpEndpoint:
        endpoint = McpEndpoint(
            path=path,
            backend=backend,
            services=lambda: self.state.services,  # type: ignore[arg-type,return-value]
            keys=lambda: self.state.keys,
            sealer=self.sealer,
            allowed_origins=self.allowed_origins(),
            read_timeout=self.state.config.server.proxy.read_timeout,
            write_timeout=self.state.config.server.proxy.write_timeout,
        )
        self.endpoints[path] = endpoint
        return endpoint

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(MCP_PREFIX):
            endpoint = self.endpoints.get(scope["path"].rstrip("/") or scope["path"])
            for resolve in self.resolvers:
                if endpoint is not None:
                    break
                endpoint = resolve(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


def mount_mcp(app: Any, state: AppState) -> McpMount:
    """Wrap ``app`` with the MCP endpoints: the built-in ``voidllm`` server, Code Mode on ``/api/v1/mcp`` when
    ``settings.mcp.code_mode.enabled``, and the proxy for every other alias. Code Mode and the proxy share
    one :class:`ProxyState` (the per-(server, key) upstream sessions)."""
    mount = McpMount(app, state)
    proxy_state = ProxyState()
    mount.add(BUILTIN_PATH, BuiltinBackend())
    if state.config.settings.mcp.code_mode.enabled:
        mount.add(MCP_PREFIX, CodeModeBackend(proxy_state))
    mount.resolvers.append(_proxy_resolver(mount, proxy_state))
    return mount


def _proxy_resolver(mount: McpMount, proxy_state: ProxyState) -> Callable[[str], McpEndpoint | None]:
    """``/api/v1/mcp/<alias>`` (one path segment) -> an endpoint proxying to the server ``alias`` resolves to.

    The endpoint is built per request (cheap): aliases come from clients, so nothing is cached by them.
    """

    def resolve(path: str) -> McpEndpoint | None:
        if not path.startswith(MCP_PREFIX + "/"):
            return None
        alias = path[len(MCP_PREFIX) + 1 :].rstrip("/")
        if not alias or "/" in alias or len(alias) > MAX_ALIAS:
            return None
        return McpEndpoint(
            path=f"{MCP_PREFIX}/{alias}",
            backend=ProxiedServer(alias, proxy_state),
            services=lambda: mount.state.services,  # type: ignore[arg-type,return-value]
            keys=lambda: mount.state.keys,
            sealer=mount.sealer,
            allowed_origins=mount.allowed_origins(),
            read_timeout=mount.state.config.server.proxy.read_timeout,
            write_timeout=mount.state.config.server.proxy.write_timeout,
        )

    return resolve
