"""Models through the admin API (docs/reference/behaviour.md 1.6, "Models & deployments"): system
administrators only, except the health view.

A model created here has ``source='api'``. Models of ``voidllm.yaml`` are in the same table with
``source='yaml'`` (:func:`voidllm.routing.catalog_store.sync_yaml_models`) and can be read here, but every
write to them is refused with 409 ``model_managed_by_config``: the file stays authoritative for what it
defines. Provider keys are write-only: stored sealed to their row (AES-GCM, associated data
``model:<id>``), never returned (responses say ``has_api_key``).

Every mutation commits, then reloads the running catalog in this process (so the very next proxied request
sees it) and publishes ``models`` on the bus for the other processes.

Names and aliases share one namespace across models: a name or alias another live model uses is a 409.
A fallback must name (or alias) another live model and must not close a cycle. Deleting a model tombstones
its name (``<name>:deleted:<id>``) and unsets the fallback of models that pointed at it.

Bounds (:mod:`voidllm.bounds`, checked by the codec): names, aliases and provider fields at most 256
characters, at most 64 aliases and none with a comma, ``base_url`` at most 2,048, the provider key printable
ASCII (it is sent in a header), ``max_context_tokens`` at most 10^8, prices 0 to 10^6 per million tokens,
``max_retries`` at most 100, ``timeout`` at most 24h.

Error rates: each model and each deployment carries ``error_rate``, ``{"5m": x, "60m": y, "1440m": z}``, the
share of failed attempts among its decided attempts over the last 5, 60 and 1,440 minutes (``null`` for a
window without attempts; a model's over all its deployments), counted by :mod:`voidllm.routing.error_rates`:
every gateway process's attempts when Redis is on, else this process's (reset at restart; with several
workers or instances each answers with its own).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.pages import Page, PageQuery, paginate
from voidllm.admin.services import Services
from voidllm.bounds import (
    CHOICE,
    CONTEXT_TOKENS,
    HEADER_VALUE,
    MODEL_ALIASES,
    NAME,
    PRICE,
    RETRIES,
    URL,
    Bounds,
    bounded,
    valid_host,
)
from voidllm.bus import TOPIC_MODELS
from voidllm.config.checks import HttpUrl
from voidllm.config.units import parse_duration
from voidllm.config.upstreams import MODEL_TYPES, STRATEGIES
from voidllm.errors import BadRequestError, ConflictError, NotFoundError
from voidllm.identity import Role
from voidllm.providers.registry import NAMES, PROVIDERS
from voidllm.routing.catalog_store import join_aliases, retire_model, seal_secret, split_aliases
from voidllm.routing.error_rates import WINDOWS, combine
from voidllm.store import tables as t
from voidllm.store.errors import StoreIntegrityError
from voidllm.store.ids import new_id
from voidllm.store.policies import delete_policies

RESERVED = ":deleted:"
T = TypeVar("T")

MAX_TIMEOUT = 24 * 3600.0
PROVIDER = Bounds(max_length=32, choices=NAMES)
MODEL_TYPE = Bounds(max_length=32, choices=MODEL_TYPES)


# -------------------------------------------------------------------------------------------- values


@attrs.frozen
class DeploymentOut:
    id: str
    model_id: str
    name: str
    provider: str
    base_url: str
    has_api_key: bool
    azure_deployment: str
    azure_api_version: str
    gcp_project: str
    gcp_location: str
    weight: int
    priority: int
    pii_filter: bool | None
    is_active: bool
    created_at: datetime
    updated_at: datetime
    error_rate: dict[str, float | None] = attrs.field(factory=lambda: no_error_rate())

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> DeploymentOut:
        return cls(
            id=row["id"],
            model_id=row["model_id"],
            name=row["name"],
            provider=row["provider"],
            base_url=row["base_url"],
            has_api_key=bool(row["api_key_encrypted"]),
            azure_deployment=row["azure_deployment"] or "",
            azure_api_version=row["azure_api_version"] or "",
            gcp_project=row["gcp_project"] or "",
            gcp_location=row["gcp_location"] or "",
            weight=row["weight"],
            priority=row["priority"],
            pii_filter=row["pii_filter"],
            is_active=row["is_active"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@attrs.frozen
class ModelOut:
    """A model as the API shows it; never its provider key."""

    id: str
    name: str
    provider: str
    type: str
    base_url: str
    has_api_key: bool
    max_context_tokens: int
    input_price_per_1m: float
    output_price_per_1m: float
    azure_deployment: str
    azure_api_version: str
    gcp_project: str
    gcp_location: str
    aliases: list[str]
    timeout: str
    strategy: str
    max_retries: int
    fallback_model_name: str
    pii_filter: bool | None
    is_active: bool
    source: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    deployments: list[DeploymentOut]
    error_rate: dict[str, float | None] = attrs.field(factory=lambda: no_error_rate())

    @classmethod
    def from_row(cls, row: sa.RowMapping, deployments: Sequence[sa.RowMapping]) -> ModelOut:
        return cls(
            id=row["id"],
            name=row["name"],
            provider=row["provider"],
            type=row["model_type"],
            base_url=row["base_url"],
            has_api_key=bool(row["api_key_encrypted"]),
            max_context_tokens=row["max_context_tokens"],
            input_price_per_1m=row["input_price_per_1m"],
            output_price_per_1m=row["output_price_per_1m"],
            azure_deployment=row["azure_deployment"] or "",
            azure_api_version=row["azure_api_version"] or "",
            gcp_project=row["gcp_project"] or "",
            gcp_location=row["gcp_location"] or "",
            aliases=list(split_aliases(row["aliases"])),
            timeout=row["timeout"] or "",
            strategy=row["strategy"],
            max_retries=row["max_retries"],
            fallback_model_name=row["fallback_name"] or "",
            pii_filter=row["pii_filter"],
            is_active=row["is_active"],
            source=row["source"],
            created_by=row["created_by"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            deployments=[DeploymentOut.from_row(dep) for dep in deployments],
        )


@attrs.frozen
class ModelCreate:
    name: str = bounded(NAME)
    provider: str = bounded(PROVIDER)
    base_url: str = bounded(URL)
    type: str = bounded(MODEL_TYPE, default="chat")
    api_key: str = bounded(HEADER_VALUE, default="", repr=False)
    max_context_tokens: int = bounded(CONTEXT_TOKENS, default=0)
    input_price_per_1m: float = bounded(PRICE, default=0.0)
    output_price_per_1m: float = bounded(PRICE, default=0.0)
    azure_deployment: str = bounded(NAME, default="")
    azure_api_version: str = bounded(NAME, default="")
    gcp_project: str = bounded(NAME, default="")
    gcp_location: str = bounded(NAME, default="")
    aliases: list[str] = bounded(MODEL_ALIASES, factory=list)
    timeout: str = bounded(CHOICE, default="")
    strategy: str = bounded(CHOICE, default="")
    max_retries: int = bounded(RETRIES, default=0)
    fallback_model_name: str = bounded(NAME, default="")
    pii_filter: bool | None = None


@attrs.frozen
class ModelUpdate:
    """Fields to change; ``None`` (or absent) leaves a field as it is. ``api_key: ""`` removes the key,
    ``fallback_model_name: ""`` the fallback, ``timeout: ""`` the timeout."""

    name: str | None = bounded(NAME, default=None)
    provider: str | None = bounded(PROVIDER, default=None)
    base_url: str | None = bounded(URL, default=None)
    type: str | None = bounded(MODEL_TYPE, default=None)
    api_key: str | None = bounded(HEADER_VALUE, default=None, repr=False)
    max_context_tokens: int | None = bounded(CONTEXT_TOKENS, default=None)
    input_price_per_1m: float | None = bounded(PRICE, default=None)
    output_price_per_1m: float | None = bounded(PRICE, default=None)
    azure_deployment: str | None = bounded(NAME, default=None)
    azure_api_version: str | None = bounded(NAME, default=None)
    gcp_project: str | None = bounded(NAME, default=None)
    gcp_location: str | None = bounded(NAME, default=None)
    aliases: list[str] | None = bounded(MODEL_ALIASES, default=None)
    timeout: str | None = bounded(CHOICE, default=None)
    strategy: str | None = bounded(CHOICE, default=None)
    max_retries: int | None = bounded(RETRIES, default=None)
    fallback_model_name: str | None = bounded(NAME, default=None)
    pii_filter: bool | None = None


_OPTIONAL = ("azure_deployment", "azure_api_version", "gcp_project", "gcp_location", "timeout")
"""Text columns that store NULL for unset."""

# Request field -> column, for the fields copied as they are.
_PLAIN_FIELDS = {
    "name": "name",
    "provider": "provider",
    "base_url": "base_url",
    "type": "model_type",
    "max_context_tokens": "max_context_tokens",
    "input_price_per_1m": "input_price_per_1m",
    "output_price_per_1m": "output_price_per_1m",
    "azure_deployment": "azure_deployment",
    "azure_api_version": "azure_api_version",
    "gcp_project": "gcp_project",
    "gcp_location": "gcp_location",
    "timeout": "timeout",
    "strategy": "strategy",
    "max_retries": "max_retries",
    "pii_filter": "pii_filter",
}


# ------------------------------------------------------------------------------------------ use cases


async def create(services: Services, actor: Actor, req: ModelCreate) -> ModelOut:
    """Create an API-managed model (409 on a name or alias in use)."""
    actor.require(Role.SYSTEM_ADMIN)
    tx = partial(_create_tx, req=req, services=services, created_by=actor.actor_id)
    out = await store_write(services, tx)
    await services.catalog_changed(TOPIC_MODELS)
    return (await with_error_rates(services, [out]))[0]


async def list_models(services: Services, actor: Actor, page: PageQuery) -> Page[ModelOut]:
    """Live models (config and API), oldest first."""
    actor.require(Role.SYSTEM_ADMIN)
    found = await services.store.run(partial(_list_tx, page=page))
    return attrs.evolve(found, data=await with_error_rates(services, found.data))


async def get(services: Services, actor: Actor, model_id: str) -> ModelOut:
    actor.require(Role.SYSTEM_ADMIN)
    out = await services.store.run(partial(_get_tx, model_id=model_id))
    return (await with_error_rates(services, [out]))[0]


async def update(services: Services, actor: Actor, model_id: str, req: ModelUpdate) -> ModelOut:
    """Change an API-managed model; the registry serves the change at once."""
    actor.require(Role.SYSTEM_ADMIN)
    out = await store_write(services, partial(_update_tx, model_id=model_id, req=req, services=services))
    await services.catalog_changed(TOPIC_MODELS)
    return (await with_error_rates(services, [out]))[0]


async def set_active(services: Services, actor: Actor, model_id: str, active: bool) -> ModelOut:
    """Activate or deactivate a model; an inactive model answers 404 ``model_not_found`` at once."""
    actor.require(Role.SYSTEM_ADMIN)
    out = await services.store.run(partial(_set_active_tx, model_id=model_id, active=active))
    await services.catalog_changed(TOPIC_MODELS)
    return (await with_error_rates(services, [out]))[0]


async def delete(services: Services, actor: Actor, model_id: str) -> None:
    """Soft-delete a model (its name becomes free); fallbacks to it are unset."""
    actor.require(Role.SYSTEM_ADMIN)
    await services.store.run(partial(_delete_tx, model_id=model_id))
    await services.catalog_changed(TOPIC_MODELS)


def no_error_rate() -> dict[str, float | None]:
    """The ``error_rate`` of something without attempts in any window."""
    return {f"{window}m": None for window in WINDOWS}


async def deployments_error_rates(
    services: Services, model_name: str, deployments: Sequence[DeploymentOut]
) -> list[DeploymentOut]:
    """``deployments`` (of ``model_name``) with their error rates (each upstream is ``<model>/<name>``)."""
    if services.error_rates is None:
        return list(deployments)
    names = [f"{model_name}/{d.name}" for d in deployments]
    sums = await services.error_rates.read(names)
    return [
        attrs.evolve(d, error_rate=combine(sums, name)) for d, name in zip(deployments, names, strict=True)
    ]


async def with_error_rates(services: Services, models: Sequence[ModelOut]) -> list[ModelOut]:
    """``models`` and their deployments with their error rates; a model's over all of its upstreams (its
    deployments, or itself when it has none)."""
    if services.error_rates is None:
        return list(models)
    sums = await services.error_rates.read(name for model in models for name in _upstream_names(model))
    return [
        attrs.evolve(
            model,
            deployments=[
                attrs.evolve(d, error_rate=combine(sums, f"{model.name}/{d.name}")) for d in model.deployments
            ],
            error_rate=combine(sums, *_upstream_names(model)),
        )
        for model in models
    ]


def _upstream_names(model: ModelOut) -> list[str]:
    return [f"{model.name}/{d.name}" for d in model.deployments] or [model.name]


async def store_write(services: Services, fn: Callable[[sa.Connection], T]) -> T:
    """Run a write, turning a unique-constraint race into the same 409 the checks give."""
    try:
        return await services.store.run(fn)
    except StoreIntegrityError as exc:
        if exc.kind == "unique":
            raise ConflictError("a model or deployment with this name already exists") from None
        raise


# ------------------------------------------------------------------------------------------ checks


def check_name(value: str, what: str) -> str:
    """A name or alias: trimmed, not empty, without the reserved ``:deleted:``."""
    value = value.strip()
    if not value:
        raise BadRequestError(f"{what} is required")
    if RESERVED in value:
        raise BadRequestError(f"{what} must not contain '{RESERVED}'")
    return value


def check_upstream(values: Mapping[str, Any]) -> None:
    """Provider, base_url and the provider's required fields of a model or deployment row."""
    if values["provider"] not in PROVIDERS:
        raise BadRequestError(f"provider must be one of {', '.join(NAMES)}")
    if not values["base_url"]:
        raise BadRequestError("base_url is required")
    url = values["base_url"]
    if HttpUrl()(url) is not None or not valid_host(urlsplit(url).hostname or ""):
        raise BadRequestError("base_url must be an http:// or https:// URL")
    required = PROVIDERS[values["provider"]].required_fields
    if not all(values[field] for field in required):
        verb = "is" if len(required) == 1 else "are"
        raise BadRequestError(f"{' and '.join(required)} {verb} required for provider '{values['provider']}'")


def _check_model(values: Mapping[str, Any]) -> None:
    check_upstream(values)
    if values["model_type"] not in MODEL_TYPES:
        raise BadRequestError(f"type must be one of {', '.join(MODEL_TYPES)}")
    if values["strategy"] and values["strategy"] not in STRATEGIES:
        raise BadRequestError(f"strategy must be one of {', '.join(STRATEGIES)}", code="invalid_strategy")
    for column in ("max_context_tokens", "input_price_per_1m", "output_price_per_1m", "max_retries"):
        if values[column] < 0:
            raise BadRequestError(f"{column} must not be negative")
    if values["timeout"]:
        try:
            seconds = parse_duration(values["timeout"])
        except ValueError:
            seconds = 0.0
        if seconds <= 0:
            raise BadRequestError("timeout must be a positive duration such as 30s or 2m")
        if seconds > MAX_TIMEOUT:
            raise BadRequestError("timeout must be at most 24h")


@attrs.frozen
class _Live:
    """Every live model's id, name, aliases and fallback: the namespace and the fallback graph."""

    rows: Mapping[str, Any]

    @classmethod
    def load(cls, conn: sa.Connection) -> _Live:
        m = t.models
        query = sa.select(m.c.id, m.c.name, m.c.aliases, m.c.fallback_model_id)
        return cls({row.id: row for row in conn.execute(query.where(m.c.deleted_at.is_(None)))})

    def owner(self, name: str) -> str | None:
        """The id of the live model called ``name``, else of the one with that alias."""
        for row in self.rows.values():
            if row.name == name:
                return str(row.id)
        for row in self.rows.values():
            if name in split_aliases(row.aliases):
                return str(row.id)
        return None

    def check_names(self, model_id: str, name: str, aliases: Sequence[str]) -> None:
        if self.owner(name) not in (None, model_id):
            raise ConflictError("a model with this name or alias already exists")
        if len(set(aliases)) != len(aliases) or name in aliases:
            raise BadRequestError("aliases must be distinct and differ from the model name")
        for alias in aliases:
            if self.owner(alias) not in (None, model_id):
                raise ConflictError("an alias is already the name or alias of another model")

    def fallback_target(self, model_id: str, fallback: str) -> str | None:
        """The id ``fallback`` names, checked: it exists, is not the model itself, and closes no cycle."""
        if not fallback:
            return None
        target = self.owner(fallback)
        if target is None:
            raise BadRequestError("fallback_model_name is not a known model")
        if target == model_id:
            raise BadRequestError("a model cannot fall back to itself")
        current: str | None = target
        visited: set[str] = set()
        while current is not None and current not in visited:
            if current == model_id:
                raise BadRequestError("the fallback chain would form a cycle")
            visited.add(current)
            row = self.rows.get(current)
            current = row.fallback_model_id if row is not None else None
        return target


# -------------------------------------------------------------------------------------- transactions


def _create_tx(
    conn: sa.Connection, *, req: ModelCreate, services: Services, created_by: str | None
) -> ModelOut:
    model_id = new_id()
    values = {column: getattr(req, field) for field, column in _PLAIN_FIELDS.items()}
    values = _prepared(conn, model_id, values, req.aliases, req.fallback_model_name, req.api_key, services)
    conn.execute(sa.insert(t.models).values(id=model_id, source="api", created_by=created_by, **values))
    return _get_tx(conn, model_id=model_id)


def _update_tx(conn: sa.Connection, *, model_id: str, req: ModelUpdate, services: Services) -> ModelOut:
    row = editable_model(conn, model_id)
    values = {column: row[column] for column in _PLAIN_FIELDS.values()}
    values |= {column: values[column] or "" for column in _OPTIONAL}
    for field, column in _PLAIN_FIELDS.items():
        if getattr(req, field) is not None:
            values[column] = getattr(req, field)
    aliases = split_aliases(row["aliases"]) if req.aliases is None else req.aliases
    values = _prepared(conn, model_id, values, aliases, req.fallback_model_name, req.api_key, services)
    conn.execute(sa.update(t.models).where(t.models.c.id == model_id).values(**values))
    if values["name"] != row["name"]:
        _rename_references(conn, row["name"], values["name"])
    return _get_tx(conn, model_id=model_id)


def _prepared(
    conn: sa.Connection,
    model_id: str,
    values: dict[str, Any],
    aliases: Sequence[str],
    fallback: str | None,
    api_key: str | None,
    services: Services,
) -> dict[str, Any]:
    """The column values to write, checked: fields, names and aliases, fallback (``None``: unchanged),
    the sealed key (``None``: unchanged)."""
    names = [check_name(alias, "alias") for alias in aliases]
    values |= {
        "name": check_name(values["name"], "name"),
        "timeout": values["timeout"].strip(),
        "aliases": join_aliases(names),
    }
    _check_model(values)
    live = _Live.load(conn)
    live.check_names(model_id, values["name"], names)
    if fallback is not None:
        values["fallback_model_id"] = live.fallback_target(model_id, fallback.strip())
    if api_key is not None:
        values["api_key_encrypted"] = seal_secret(services.keyring, api_key, "model", model_id)
    return {column: (value or None) if column in _OPTIONAL else value for column, value in values.items()}


def _set_active_tx(conn: sa.Connection, *, model_id: str, active: bool) -> ModelOut:
    editable_model(conn, model_id)
    conn.execute(sa.update(t.models).where(t.models.c.id == model_id).values(is_active=active))
    return _get_tx(conn, model_id=model_id)


def _delete_tx(conn: sa.Connection, *, model_id: str) -> None:
    row = editable_model(conn, model_id)
    retire_model(conn, model_id, row["name"])
    delete_policies(conn, "model", [model_id])


def _rename_references(conn: sa.Connection, old: str, new: str) -> None:
    """Allowlists and scoped aliases follow a renamed model."""
    for table in (t.org_model_access, t.team_model_access, t.key_model_access):
        scope = table.c[table.primary_key.columns.keys()[0]]
        already = sa.select(scope).where(table.c.model_name == new)
        conn.execute(
            sa.update(table).where(table.c.model_name == old, scope.not_in(already)).values(model_name=new)
        )
        conn.execute(sa.delete(table).where(table.c.model_name == old))
    conn.execute(sa.update(t.model_aliases).where(t.model_aliases.c.model_name == old).values(model_name=new))


def live_model(conn: sa.Connection, model_id: str) -> sa.RowMapping:
    """The live model row with ``fallback_name``; 404 when there is none."""
    m, target = t.models, t.models.alias("target")
    row = (
        conn.execute(
            sa.select(m, target.c.name.label("fallback_name"))
            .outerjoin(target, target.c.id == m.c.fallback_model_id)
            .where(m.c.id == model_id, m.c.deleted_at.is_(None))
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError("model not found")
    return row


def editable_model(conn: sa.Connection, model_id: str) -> sa.RowMapping:
    """:func:`live_model`, refused with 409 ``model_managed_by_config`` for a model of the config file."""
    row = live_model(conn, model_id)
    if row["source"] == "yaml":
        raise ConflictError(
            "this model is defined in the config file; change it in voidllm.yaml and restart",
            code="model_managed_by_config",
        )
    return row


def _deployments(conn: sa.Connection, model_ids: Sequence[str]) -> dict[str, list[sa.RowMapping]]:
    d = t.model_deployments
    found: dict[str, list[sa.RowMapping]] = {model_id: [] for model_id in model_ids}
    if model_ids:
        query = (
            sa.select(d)
            .where(d.c.model_id.in_(model_ids), d.c.deleted_at.is_(None))
            .order_by(d.c.priority, d.c.created_at, d.c.id)
        )
        for dep in conn.execute(query).mappings():
            found[dep["model_id"]].append(dep)
    return found


def _get_tx(conn: sa.Connection, *, model_id: str) -> ModelOut:
    row = live_model(conn, model_id)
    return ModelOut.from_row(row, _deployments(conn, [model_id])[model_id])


def _list_tx(conn: sa.Connection, *, page: PageQuery) -> Page[ModelOut]:
    m, target = t.models, t.models.alias("target")
    query = (
        sa.select(m, target.c.name.label("fallback_name"))
        .outerjoin(target, target.c.id == m.c.fallback_model_id)
        .where(m.c.deleted_at.is_(None))
    )
    rows = paginate(conn, query, m.c.id, page, lambda row: row)
    deployments = _deployments(conn, [row["id"] for row in rows.data])
    data = [ModelOut.from_row(row, deployments[row["id"]]) for row in rows.data]
    return Page(data=data, has_more=rows.has_more, next_cursor=rows.next_cursor)
