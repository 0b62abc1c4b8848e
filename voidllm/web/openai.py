"""The locally answered part of the OpenAI-compatible API: ``GET /v1/models`` and ``/v1/models/{id}``.

Both show only what the calling key may use (docs/reference/behaviour.md 1.3): models its org, team and key
allowlists permit, each with its global aliases followed by the scoped aliases of the key's org and team that
lead to it. A model the key may not use is 404 ``model_not_found``, exactly like one that does not exist.

Two shapes. OpenAI's (``{"object": "list", "data": [{"id", "object", "created", "owned_by", "aliases"}]}``,
every model at once) by default; Anthropic's when the request carries an ``anthropic-version`` header, as
Anthropic's SDKs always send: ``{"data": [{"type": "model", "id", "display_name", "created_at"}], "has_more",
"first_id", "last_id"}``, paged with ``limit`` (1 to 1000, default 20), ``after_id`` or ``before_id`` (one
of them; the ids are model names, compared in the list's order, by name, so a page boundary needs no model
to still exist). The gateway keeps no display names or creation times for models: ``display_name`` is the
name and ``created_at`` the epoch, as OpenAI's ``created`` is 0. The key is read from ``X-Api-Key`` or
``Authorization: Bearer``; its request policy's allowed origins and required headers apply as on the proxied
routes (403 ``origin_not_allowed`` / ``required_header``), so a page its key allows can list the models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn, cast

from quart import Blueprint, request

from voidllm.errors import BadRequestError, GatewayError, MethodNotAllowedError, model_not_found
from voidllm.identity import KeyIdentity
from voidllm.providers.registry import PROVIDERS
from voidllm.proxy import metrics as m
from voidllm.proxy.endpoints import ENDPOINTS
from voidllm.proxy.intake import check_origin_and_headers
from voidllm.routing.catalog import Catalog
from voidllm.routing.registry import Model
from voidllm.web.state import app_state

blueprint = Blueprint("openai", __name__, url_prefix="/v1")


ANTHROPIC_LIMIT = (1, 1000, 20)
"""``limit`` of an Anthropic-shaped list: the smallest, the largest and the default."""

_EPOCH = "1970-01-01T00:00:00Z"


async def _caller() -> KeyIdentity:
    """The calling key, once its request policy allows the page's ``Origin`` and the request has the
    headers it requires, as on the proxied routes (the verdict on the origin goes into the scope for the
    edge's CORS headers)."""
    headers = request.headers
    identity = await app_state().keys.resolve(headers.get("Authorization"), headers.get("X-Api-Key"))
    if identity.policy is not None:
        origin = headers.get("Origin")
        try:
            scope = cast("dict[str, Any]", request.scope)  # the edge's own scope dict, shared with the app
            sent = origin.encode("latin-1") if origin is not None else None
            check_origin_and_headers(identity.policy, scope, sent)
        except GatewayError as exc:
            m.POLICY_REFUSALS.labels(exc.code).inc()
            raise
    return identity


def _entry(model: Model, scoped: list[str]) -> dict[str, object]:
    aliases = [*model.aliases, *(alias for alias in scoped if alias not in model.aliases)]
    demo = all(PROVIDERS[upstream.provider].builtin_demo for upstream in model.upstreams)
    owner = "voidllm-demo" if demo else "voidllm"  # the built-in demo provider says what it is
    return {"id": model.name, "object": "model", "created": 0, "owned_by": owner, "aliases": aliases}


def _anthropic_entry(model: Model) -> dict[str, object]:
    return {"type": "model", "id": model.name, "display_name": model.name, "created_at": _EPOCH}


def _anthropic_wanted() -> bool:
    return "anthropic-version" in request.headers


def anthropic_page(models: list[Model], query: Mapping[str, str]) -> dict[str, object]:
    """One page of an Anthropic-shaped model list; ``models`` sorted by name.

    Raises:
        BadRequestError: ``limit`` not an integer in :data:`ANTHROPIC_LIMIT`'s range, or both ``after_id``
            and ``before_id`` given; names the field.
    """
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None and before is not None:
        raise BadRequestError("after_id, before_id: give at most one of them", extra={"field": "before_id"})
    low, high, default = ANTHROPIC_LIMIT
    raw_limit = query.get("limit")
    limit = default
    if raw_limit is not None:
        digits = raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= len(str(high))
        if not digits or not low <= int(raw_limit) <= high:
            raise BadRequestError(f"limit: must be an integer from {low} to {high}", extra={"field": "limit"})
        limit = int(raw_limit)
    if before is not None:
        candidates = [m for m in models if m.name < before]
        page = candidates[-limit:]
    else:
        candidates = [m for m in models if after is None or m.name > after]
        page = candidates[:limit]
    return {
        "data": [_anthropic_entry(m) for m in page],
        "has_more": len(candidates) > limit,
        "first_id": page[0].name if page else None,
        "last_id": page[-1].name if page else None,
    }


@blueprint.get("/models")
async def list_models() -> dict[str, object]:
    identity = await _caller()
    catalog: Catalog = app_state().catalog
    if _anthropic_wanted():
        return anthropic_page(catalog.visible(identity), request.args)
    scoped = catalog.aliases_of(identity)
    return {"object": "list", "data": [_entry(m, scoped.get(m.name, [])) for m in catalog.visible(identity)]}


@blueprint.get("/models/<path:model_id>")
async def get_model(model_id: str) -> dict[str, object]:
    identity = await _caller()
    catalog: Catalog = app_state().catalog
    model = catalog.resolve(identity, model_id)
    if model is None or not catalog.allowed(identity, model.name):
        raise model_not_found(model_id)
    if _anthropic_wanted():
        return _anthropic_entry(model)
    return _entry(model, catalog.aliases_of(identity).get(model.name, []))


@blueprint.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def unsupported(rest: str) -> NoReturn:
    """An endpoint we do not serve is 400, as in the reference; a known one with the wrong method is 405."""
    await _caller()
    path = f"/v1/{rest}"
    if path in ENDPOINTS:  # proxied: POST only (the edge sends POSTs of these paths to the proxy)
        raise MethodNotAllowedError.allowing("POST")
    if path == "/v1/models" or path.startswith("/v1/models/"):
        raise MethodNotAllowedError.allowing("GET")
    raise BadRequestError("unsupported API endpoint")
