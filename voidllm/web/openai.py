"""The locally answered part of the OpenAI-compatible API: ``GET /v1/models`` and ``/v1/models/{id}``.

Both show only what the calling key may use (docs/reference/behaviour.md 1.3): models its org, team and key
allowlists permit, each with its global aliases followed by the scoped aliases of the key's org and team that
lead to it. A model the key may not use is 404 ``model_not_found``, exactly like one that does not exist.
"""

from __future__ import annotations

from typing import NoReturn

from quart import Blueprint, request

from voidllm.errors import BadRequestError, MethodNotAllowedError, model_not_found
from voidllm.identity import KeyIdentity
from voidllm.providers.registry import PROVIDERS
from voidllm.proxy.endpoints import ENDPOINTS
from voidllm.routing.catalog import Catalog
from voidllm.routing.registry import Model
from voidllm.web.state import app_state

blueprint = Blueprint("openai", __name__, url_prefix="/v1")


def _caller() -> KeyIdentity:
    return app_state().keys.authenticate(request.headers.get("Authorization"))


def _entry(model: Model, scoped: list[str]) -> dict[str, object]:
    aliases = [*model.aliases, *(alias for alias in scoped if alias not in model.aliases)]
    demo = all(PROVIDERS[upstream.provider].builtin_demo for upstream in model.upstreams)
    owner = "voidllm-demo" if demo else "voidllm"  # the built-in demo provider says what it is
    return {"id": model.name, "object": "model", "created": 0, "owned_by": owner, "aliases": aliases}


@blueprint.get("/models")
async def list_models() -> dict[str, object]:
    identity = _caller()
    catalog: Catalog = app_state().catalog
    scoped = catalog.aliases_of(identity)
    return {"object": "list", "data": [_entry(m, scoped.get(m.name, [])) for m in catalog.visible(identity)]}


@blueprint.get("/models/<path:model_id>")
async def get_model(model_id: str) -> dict[str, object]:
    identity = _caller()
    catalog: Catalog = app_state().catalog
    model = catalog.resolve(identity, model_id)
    if model is None or not catalog.allowed(identity, model.name):
        raise model_not_found(model_id)
    return _entry(model, catalog.aliases_of(identity).get(model.name, []))


@blueprint.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def unsupported(rest: str) -> NoReturn:
    """An endpoint we do not serve is 400, as in the reference; a known one with the wrong method is 405."""
    _caller()
    path = f"/v1/{rest}"
    if path in ENDPOINTS:  # proxied: POST only (the edge sends POSTs of these paths to the proxy)
        raise MethodNotAllowedError.allowing("POST")
    if path == "/v1/models" or path.startswith("/v1/models/"):
        raise MethodNotAllowedError.allowing("GET")
    raise BadRequestError("unsupported API endpoint")
