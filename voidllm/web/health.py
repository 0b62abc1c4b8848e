"""Health, readiness and metrics endpoints (no authentication; docs/reference/behaviour.md 1.2)."""

from __future__ import annotations

import trio
from quart import Blueprint, Response

from voidllm import metrics
from voidllm.auth.bootstrap import has_live_user
from voidllm.errors import StoreError
from voidllm.web.state import app_state

blueprint = Blueprint("health", __name__)

READY_PING_TIMEOUT = 2.0
BOOTSTRAP_PENDING = (
    "no user exists yet: set settings.admin_key and restart, or create one with `voidllm users create`"
)


@blueprint.get("/healthz")
@blueprint.get("/health")
async def health() -> dict[str, object]:
    state = app_state()
    return {"status": "ok", "version": state.version, "uptime_seconds": state.uptime_seconds()}


@blueprint.get("/readyz")
async def ready() -> tuple[dict[str, str], int]:
    state = app_state()
    if state.drain.draining:
        return {"status": "draining"}, 503
    if not state.ready:
        return {"status": "not ready"}, 503
    try:
        with trio.fail_after(READY_PING_TIMEOUT):
            await state.store.ping()
            if state.bootstrap_pending:
                state.bootstrap_pending = not await state.store.run(has_live_user)
    except (StoreError, trio.TooSlowError):
        return {"status": "not ready", "database": "error"}, 503
    if state.bootstrap_pending:
        return {"status": "bootstrap_pending", "database": "ok", "hint": BOOTSTRAP_PENDING}, 503
    return {"status": "ok", "database": "ok"}, 200


@blueprint.get("/metrics")
async def prometheus() -> Response:
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)
