"""Deployments of API-managed models (docs/reference/behaviour.md 1.6): the upstreams a model routes between
by its strategy.

System administrators only. A deployment's provider key is write-only and sealed to its row (associated
data ``deployment:<id>``). Deployments of a config model are read-only here (409
``model_managed_by_config``). Every mutation reloads the running catalog at once and publishes ``models``.
Names are unique within a model; deleting a deployment tombstones its name. Bounds as for models
(:mod:`voidllm.admin.models`), plus ``weight`` 0 to 10,000 and ``priority`` 0 to 1,000. Each deployment
carries its ``error_rate`` over the last 5, 60 and 1,440 minutes (as in the models' view).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.models import (
    PROVIDER,
    DeploymentOut,
    check_name,
    check_upstream,
    deployments_error_rates,
    editable_model,
    live_model,
    store_write,
)
from voidllm.admin.pages import Page, PageQuery, paginate
from voidllm.admin.services import Services
from voidllm.bounds import HEADER_VALUE, NAME, PRIORITY, URL, WEIGHT, bounded
from voidllm.bus import TOPIC_MODELS
from voidllm.errors import BadRequestError, ConflictError, NotFoundError
from voidllm.identity import Role
from voidllm.routing.catalog_store import retire_deployment, seal_secret
from voidllm.store import tables as t
from voidllm.store.ids import new_id

T = TypeVar("T")


@attrs.frozen
class DeploymentCreate:
    name: str = bounded(NAME)
    provider: str = bounded(PROVIDER)
    base_url: str = bounded(URL)
    api_key: str = bounded(HEADER_VALUE, default="", repr=False)
    azure_deployment: str = bounded(NAME, default="")
    azure_api_version: str = bounded(NAME, default="")
    gcp_project: str = bounded(NAME, default="")
    gcp_location: str = bounded(NAME, default="")
    weight: int = bounded(WEIGHT, default=1)
    priority: int = bounded(PRIORITY, default=0)
    pii_filter: bool | None = None


@attrs.frozen
class DeploymentUpdate:
    """Fields to change; ``None`` leaves a field as it is, ``api_key: ""`` removes the key."""

    name: str | None = bounded(NAME, default=None)
    provider: str | None = bounded(PROVIDER, default=None)
    base_url: str | None = bounded(URL, default=None)
    api_key: str | None = bounded(HEADER_VALUE, default=None, repr=False)
    azure_deployment: str | None = bounded(NAME, default=None)
    azure_api_version: str | None = bounded(NAME, default=None)
    gcp_project: str | None = bounded(NAME, default=None)
    gcp_location: str | None = bounded(NAME, default=None)
    weight: int | None = bounded(WEIGHT, default=None)
    priority: int | None = bounded(PRIORITY, default=None)
    pii_filter: bool | None = None


_FIELDS = (
    "name",
    "provider",
    "base_url",
    "azure_deployment",
    "azure_api_version",
    "gcp_project",
    "gcp_location",
    "weight",
    "priority",
    "pii_filter",
)
_OPTIONAL = ("azure_deployment", "azure_api_version", "gcp_project", "gcp_location")


async def create(services: Services, actor: Actor, model_id: str, req: DeploymentCreate) -> DeploymentOut:
    """Add a deployment to an API-managed model (409 on a name in use within the model)."""
    actor.require(Role.SYSTEM_ADMIN)
    tx = partial(_create_tx, model_id=model_id, req=req, services=services)
    name, out = await store_write(services, partial(_named, tx, model_id))
    await services.catalog_changed(TOPIC_MODELS)
    return (await deployments_error_rates(services, name, [out]))[0]


async def list_deployments(
    services: Services, actor: Actor, model_id: str, page: PageQuery
) -> Page[DeploymentOut]:
    actor.require(Role.SYSTEM_ADMIN)
    tx = partial(_list_tx, model_id=model_id, page=page)
    name, found = await services.store.run(partial(_named, tx, model_id))
    return attrs.evolve(found, data=await deployments_error_rates(services, name, found.data))


async def get(services: Services, actor: Actor, model_id: str, deployment_id: str) -> DeploymentOut:
    actor.require(Role.SYSTEM_ADMIN)
    tx = partial(_get_tx, model_id=model_id, deployment_id=deployment_id)
    name, out = await services.store.run(partial(_named, tx, model_id))
    return (await deployments_error_rates(services, name, [out]))[0]


async def update(
    services: Services, actor: Actor, model_id: str, deployment_id: str, req: DeploymentUpdate
) -> DeploymentOut:
    """Change a deployment; the next proxied request uses the new values."""
    actor.require(Role.SYSTEM_ADMIN)
    tx = partial(_update_tx, model_id=model_id, deployment_id=deployment_id, req=req, services=services)
    name, out = await store_write(services, partial(_named, tx, model_id))
    await services.catalog_changed(TOPIC_MODELS)
    return (await deployments_error_rates(services, name, [out]))[0]


async def delete(services: Services, actor: Actor, model_id: str, deployment_id: str) -> None:
    actor.require(Role.SYSTEM_ADMIN)
    await services.store.run(partial(_delete_tx, model_id=model_id, deployment_id=deployment_id))
    await services.catalog_changed(TOPIC_MODELS)


def _named(fn: Callable[[sa.Connection], T], model_id: str, conn: sa.Connection) -> tuple[str, T]:
    """``fn``'s result and the name of its model (for the deployments' error rates), in one transaction."""
    out = fn(conn)
    return live_model(conn, model_id)["name"], out


def _check(values: Mapping[str, Any]) -> None:
    check_upstream(values)
    if values["weight"] < 0 or values["priority"] < 0:
        raise BadRequestError("weight and priority must not be negative")


def _name_free(conn: sa.Connection, model_id: str, name: str, deployment_id: str) -> None:
    d = t.model_deployments
    taken = conn.execute(
        sa.select(d.c.id).where(d.c.model_id == model_id, d.c.name == name, d.c.id != deployment_id)
    ).first()
    if taken is not None:
        raise ConflictError("a deployment with this name already exists in the model")


def _create_tx(
    conn: sa.Connection, *, model_id: str, req: DeploymentCreate, services: Services
) -> DeploymentOut:
    editable_model(conn, model_id)
    deployment_id = new_id()
    values = {field: getattr(req, field) for field in _FIELDS}
    values["name"] = check_name(req.name, "name")
    _check(values)
    _name_free(conn, model_id, values["name"], deployment_id)
    values["api_key_encrypted"] = seal_secret(services.keyring, req.api_key, "deployment", deployment_id)
    conn.execute(sa.insert(t.model_deployments).values(id=deployment_id, model_id=model_id, **_nulls(values)))
    return _get_tx(conn, model_id=model_id, deployment_id=deployment_id)


def _update_tx(
    conn: sa.Connection, *, model_id: str, deployment_id: str, req: DeploymentUpdate, services: Services
) -> DeploymentOut:
    editable_model(conn, model_id)
    row = _live_deployment(conn, model_id, deployment_id)
    values = {field: row[field] for field in _FIELDS} | {field: row[field] or "" for field in _OPTIONAL}
    values |= {field: getattr(req, field) for field in _FIELDS if getattr(req, field) is not None}
    values["name"] = check_name(values["name"], "name")
    _check(values)
    _name_free(conn, model_id, values["name"], deployment_id)
    if req.api_key is not None:
        values["api_key_encrypted"] = seal_secret(services.keyring, req.api_key, "deployment", deployment_id)
    d = t.model_deployments
    conn.execute(sa.update(d).where(d.c.id == deployment_id).values(**_nulls(values)))
    return _get_tx(conn, model_id=model_id, deployment_id=deployment_id)


def _delete_tx(conn: sa.Connection, *, model_id: str, deployment_id: str) -> None:
    editable_model(conn, model_id)
    row = _live_deployment(conn, model_id, deployment_id)
    retire_deployment(conn, deployment_id, row["name"])


def _nulls(values: dict[str, Any]) -> dict[str, Any]:
    return {field: (value or None) if field in _OPTIONAL else value for field, value in values.items()}


def _live_deployment(conn: sa.Connection, model_id: str, deployment_id: str) -> sa.RowMapping:
    d = t.model_deployments
    row = (
        conn.execute(
            sa.select(d).where(d.c.id == deployment_id, d.c.model_id == model_id, d.c.deleted_at.is_(None))
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError("deployment not found")
    return row


def _get_tx(conn: sa.Connection, *, model_id: str, deployment_id: str) -> DeploymentOut:
    live_model(conn, model_id)
    return DeploymentOut.from_row(_live_deployment(conn, model_id, deployment_id))


def _list_tx(conn: sa.Connection, *, model_id: str, page: PageQuery) -> Page[DeploymentOut]:
    live_model(conn, model_id)
    d = t.model_deployments
    query = sa.select(d).where(d.c.model_id == model_id, d.c.deleted_at.is_(None))
    return paginate(conn, query, d.c.id, page, DeploymentOut.from_row)
