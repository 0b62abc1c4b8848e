"""The locally answered part of the OpenAI-compatible API: ``GET /v1/models`` and ``/v1/models/{id}``."""

from __future__ import annotations

from quart import Blueprint, request

from voidllm.auth.identity import KeyIdentity
from voidllm.errors import BadRequestError, NotFoundError
from voidllm.web.state import app_state

blueprint = Blueprint("openai", __name__, url_prefix="/v1")


def _caller() -> KeyIdentity:
    return app_state().keys.authenticate(request.headers.get("Authorization"))


def _model_entries() -> list[dict[str, object]]:
    models = app_state().registry.models
    return [
        {"id": m.name, "object": "model", "created": 0, "owned_by": "voidllm", "aliases": list(m.aliases)}
        for m in models
    ]


@blueprint.get("/models")
async def list_models() -> dict[str, object]:
    _caller()
    return {"object": "list", "data": _model_entries()}


@blueprint.get("/models/<path:model_id>")
async def get_model(model_id: str) -> dict[str, object]:
    _caller()
    for entry in _model_entries():
        if entry["id"] == model_id or model_id in entry["aliases"]:  # type: ignore[operator]
            return entry
    raise NotFoundError("the requested model was not found", code="model_not_found")


@blueprint.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def unsupported(rest: str) -> None:
    _caller()
    raise BadRequestError("unsupported API endpoint")
