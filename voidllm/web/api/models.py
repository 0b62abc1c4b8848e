"""Routes of the management API: models, their deployments, connection tests and upstream health."""

from __future__ import annotations

from voidllm.admin import deployments, models, probes
from voidllm.admin.deployments import DeploymentCreate, DeploymentUpdate
from voidllm.admin.models import DeploymentOut, ModelCreate, ModelOut, ModelUpdate
from voidllm.admin.pages import Page, PageQuery
from voidllm.admin.probes import ConnectionResult, ConnectionTest, HealthList
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api

_ADMIN = {"role": Role.SYSTEM_ADMIN, "allow": ("system_admin",), "tag": "models"}


@api.get(
    "/models/health",
    response=HealthList,
    role=Role.MEMBER,
    allow=("member",),
    tag="models",
    summary="Health of every upstream",
)
async def models_health(call: Call) -> HealthList:
    return await probes.health(call.services, call.actor)


@api.post(
    "/models/test-connection",
    body=ConnectionTest,
    response=ConnectionResult,
    **_ADMIN,
    summary="Test a provider's base URL and key",
    audit=("test_connection", "model"),
)
async def test_connection(call: Call, body: ConnectionTest) -> ConnectionResult:
    return await probes.test_connection(call.services, call.actor, body)


@api.post(
    "/models",
    body=ModelCreate,
    response=ModelOut,
    status=201,
    **_ADMIN,
    summary="Create a model",
    audit=("create", "model"),
)
async def create_model(call: Call, body: ModelCreate) -> ModelOut:
    return await models.create(call.services, call.actor, body)


@api.get("/models", query=PageQuery, response=Page[ModelOut], **_ADMIN, summary="List models")
async def list_models(call: Call, query: PageQuery) -> Page[ModelOut]:
    return await models.list_models(call.services, call.actor, query)


@api.get("/models/<model_id>", response=ModelOut, **_ADMIN, summary="Get a model")
async def get_model(call: Call, model_id: str) -> ModelOut:
    return await models.get(call.services, call.actor, model_id)


@api.patch(
    "/models/<model_id>",
    body=ModelUpdate,
    response=ModelOut,
    **_ADMIN,
    summary="Update a model",
    audit=("update", "model"),
)
async def update_model(call: Call, model_id: str, body: ModelUpdate) -> ModelOut:
    return await models.update(call.services, call.actor, model_id, body)


@api.delete("/models/<model_id>", status=204, **_ADMIN, summary="Delete a model", audit=("delete", "model"))
async def delete_model(call: Call, model_id: str) -> None:
    await models.delete(call.services, call.actor, model_id)


@api.patch(
    "/models/<model_id>/activate",
    response=ModelOut,
    **_ADMIN,
    summary="Activate a model",
    audit=("activate", "model"),
)
async def activate_model(call: Call, model_id: str) -> ModelOut:
    return await models.set_active(call.services, call.actor, model_id, True)


@api.patch(
    "/models/<model_id>/deactivate",
    response=ModelOut,
    **_ADMIN,
    summary="Deactivate a model",
    audit=("deactivate", "model"),
)
async def deactivate_model(call: Call, model_id: str) -> ModelOut:
    return await models.set_active(call.services, call.actor, model_id, False)


@api.post(
    "/models/<model_id>/deployments",
    body=DeploymentCreate,
    response=DeploymentOut,
    status=201,
    **_ADMIN,
    summary="Add a deployment to a model",
    audit=("create", "deployment"),
)
async def create_deployment(call: Call, model_id: str, body: DeploymentCreate) -> DeploymentOut:
    return await deployments.create(call.services, call.actor, model_id, body)


@api.get(
    "/models/<model_id>/deployments",
    query=PageQuery,
    response=Page[DeploymentOut],
    **_ADMIN,
    summary="List a model's deployments",
)
async def list_deployments(call: Call, model_id: str, query: PageQuery) -> Page[DeploymentOut]:
    return await deployments.list_deployments(call.services, call.actor, model_id, query)


@api.get(
    "/models/<model_id>/deployments/<deployment_id>",
    response=DeploymentOut,
    **_ADMIN,
    summary="Get a deployment",
)
async def get_deployment(call: Call, model_id: str, deployment_id: str) -> DeploymentOut:
    return await deployments.get(call.services, call.actor, model_id, deployment_id)


@api.patch(
    "/models/<model_id>/deployments/<deployment_id>",
    body=DeploymentUpdate,
    response=DeploymentOut,
    **_ADMIN,
    summary="Update a deployment",
    audit=("update", "deployment"),
)
async def update_deployment(
    call: Call, model_id: str, deployment_id: str, body: DeploymentUpdate
) -> DeploymentOut:
    return await deployments.update(call.services, call.actor, model_id, deployment_id, body)


@api.delete(
    "/models/<model_id>/deployments/<deployment_id>",
    status=204,
    **_ADMIN,
    summary="Delete a deployment",
    audit=("delete", "deployment"),
)
async def delete_deployment(call: Call, model_id: str, deployment_id: str) -> None:
    await deployments.delete(call.services, call.actor, model_id, deployment_id)
