"""Assembles the HTTP application: the Quart-trio app, its blueprints and error table, behind the ASGI
edge (with its CORS policy)."""

from __future__ import annotations

from typing import Any

from quart_trio import QuartTrio

from voidllm.proxy.endpoints import ENDPOINTS
from voidllm.web import docs, health, openai
from voidllm.web.api import api
from voidllm.web.api.framework import POLICY_KEY
from voidllm.web.browser import BrowserPolicy
from voidllm.web.cors import CorsPolicy
from voidllm.web.edge import Edge
from voidllm.web.errors import register_error_handlers
from voidllm.web.mcp import MCP_PREFIX, mount_mcp
from voidllm.web.playground import Playground, capped_proxy
from voidllm.web.spa import SpaApp
from voidllm.web.state import AppState


def create_quart_app(state: AppState) -> QuartTrio:
    """The Quart-trio app with every route; without the edge (request ids, drain tracking)."""
    app = QuartTrio("voidllm")
    proxy = state.config.server.proxy
    app.config.update(
        MAX_CONTENT_LENGTH=proxy.max_request_body,
        BODY_TIMEOUT=proxy.read_timeout,
        RESPONSE_TIMEOUT=proxy.write_timeout,
        JSON_SORT_KEYS=False,
        PROVIDE_AUTOMATIC_OPTIONS=False,
    )
    app.extensions["voidllm"] = state
    app.extensions[POLICY_KEY] = BrowserPolicy.from_settings(state.config.settings.trusted_proxies)
    register_error_handlers(app)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(openai.blueprint)
    app.register_blueprint(api.blueprint())
    app.register_blueprint(docs.blueprint)
    return app


def create_app(state: AppState, proxy: Any) -> Any:
    """The ASGI application the server runs: the edge, dispatching proxied routes to ``proxy``, the web UI
    to its files and the playground tunnel to ``proxy`` (streams capped) and the app."""
    quart = create_quart_app(state)
    app = mount_mcp(quart, state)  # MCP endpoints are plain ASGI, before Quart routing
    paths = frozenset(ENDPOINTS)
    settings = state.config.settings
    playground = Playground(
        keys=state.keys,
        policy=quart.extensions[POLICY_KEY],
        app=app,
        proxy_paths=paths,
        proxy=capped_proxy(proxy, state.config.server.proxy.write_timeout),
    )
    spa = SpaApp(settings.ui_dir)
    cors = CorsPolicy.from_config(state.config, api_prefix="/v1/", mcp_prefix=MCP_PREFIX + "/")
    return Edge(app, state.drain, proxy=proxy, proxy_paths=paths, spa=spa, playground=playground, cors=cors)
