"""Assembles the HTTP application: the Quart-trio app, its blueprints and error table, behind the ASGI
edge (with its CORS policy); in dual-port mode (``server.admin.port``) one edge per port over the same app,
each serving its port's paths (:mod:`voidllm.web.listeners`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from types import MethodType
from typing import Any

import attrs
from quart.routing import QuartRule
from quart_trio import QuartTrio

from voidllm.proxy.endpoints import ENDPOINTS
from voidllm.web import docs, health, openai
from voidllm.web.api import api
from voidllm.web.api.framework import POLICY_KEY
from voidllm.web.browser import BrowserPolicy
from voidllm.web.cors import CorsPolicy
from voidllm.web.edge import Edge
from voidllm.web.errors import register_error_handlers
from voidllm.web.listeners import Listener
from voidllm.web.mcp import MCP_PREFIX, mount_mcp
from voidllm.web.playground import Playground, capped_proxy
from voidllm.web.spa import SpaApp
from voidllm.web.state import AppState


class LazyBuilderRule(QuartRule):
    """Quart's URL rule with its URL builders made at their first use: werkzeug writes and compiles two Python
    functions per rule when the rule is added (about 75 ms of every start for our 150 rules), to build URLs
    that the gateway never builds (it has no ``url_for``)."""

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        compile_builder = super()._compile_builder
        built: Callable[..., tuple[str, str]] | None = None

        def build(rule: QuartRule, **values: Any) -> tuple[str, str]:
            nonlocal built
            if built is None:
                built = MethodType(compile_builder(append_unknown), rule)
            return built(**values)

        return build


def create_quart_app(state: AppState) -> QuartTrio:
    """The Quart-trio app with every route; without the edge (request ids, drain tracking)."""
    app = QuartTrio("voidllm")
    app.url_rule_class = LazyBuilderRule
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


@attrs.frozen
class Apps:
    """The ASGI applications the server runs: ``proxy_port``'s, and ``admin_port``'s in dual-port mode."""

    proxy_port: Any
    admin_port: Any | None = None


def create_apps(state: AppState, proxy: Any) -> Apps:
    """The edge (of each port), dispatching proxied routes to ``proxy``, the web UI to its files and the
    playground tunnel to ``proxy`` (streams capped) and the app."""
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
    cors = CorsPolicy.from_config(
        state.config,
        api_prefix="/v1/",
        mcp_prefix=MCP_PREFIX + "/",
        key_origins=state.keys.allowed_origins,
        key_headers=state.keys.required_headers,
    )
    edge = partial(
        Edge, app, state.drain, proxy=proxy, proxy_paths=paths, spa=spa, playground=playground, cors=cors
    )
    if not state.config.server.admin.port:
        return Apps(edge())
    return Apps(edge(listener=Listener.PUBLIC), edge(listener=Listener.ADMIN, lifespan=False))
