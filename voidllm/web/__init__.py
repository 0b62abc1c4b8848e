"""The HTTP layer: the ASGI edge in front of everything (request ids, drain tracking, CORS for pages of other
origins (:mod:`voidllm.web.cors`), dispatch of proxied routes to :mod:`voidllm.proxy`), the Quart-trio app
with the management API (:mod:`voidllm.web.api`), health, metrics, docs and ``/v1/models``, the MCP endpoints
and the built-in MCP tools, the web UI and the playground tunnel. Handlers decode, call one use case
(:mod:`voidllm.admin`) and encode; rules live below.
"""
