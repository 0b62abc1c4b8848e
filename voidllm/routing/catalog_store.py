"""The catalog as the store holds it: loading it, keeping it fresh, and writing the config's models into it.

Where a model comes from decides how it is built:

- A model of ``voidllm.yaml`` is built from its config (:meth:`Model.from_config`, full fidelity: the table
  has no ``attempt_timeout`` or ``hedge_after``). At startup :func:`sync_yaml_models` also writes it into
  ``models``/``model_deployments`` with ``source='yaml'`` (upsert by name, provider keys sealed to their
  row), so it has an id, shows in the admin API and can be named in allowlists, aliases and fallbacks. A
  config model that left the file is tombstoned. A row created through the API (``source='api'``) is never
  touched by the sync, even when the config names a model the same: the API's model wins.
- A model created through the admin API is built from its row and its active deployments, with its secrets
  decrypted (:func:`load_snapshot`). Inactive and deleted models are left out, which is what makes them
  answer 404 at once.

:class:`CatalogLoader` reads the API models, the model-access allowlists, the scoped aliases and the models'
request and guard policies (``policies`` rows of scope ``model``, by model name) in one transaction and swaps
them into the running :class:`~voidllm.routing.catalog.Catalog`. Admin mutations call it right after their
write (so the change holds in this process before the response is sent), notices from other processes call it
(``voidllm.bus``), and :func:`serve_catalog` calls it every ``min(cache.model_ttl, cache.alias_ttl)`` (the
snapshot is read together, so the shorter period wins), which is how other processes converge without Redis. A
failed periodic reload keeps the previous snapshot.

Health probes follow the running registry on their own (``voidllm.routing.health``, resync every 5 s).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
import trio

from voidllm.config import ModelConfig
from voidllm.config.units import format_duration, parse_duration
from voidllm.crypto import AadKind, CryptoError, Keyring, aad_for
from voidllm.metrics import CACHE_SIZE
from voidllm.nursery.periodic import keep_reloading
from voidllm.request_policy import ScopePolicy
from voidllm.routing.catalog import AccessRules, Catalog, ScopedAliases
from voidllm.routing.registry import Model, Pricing, Registry, Upstream
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow
from voidllm.store.policies import read_scope_policies

if TYPE_CHECKING:
    from voidllm.store.store import Store

log = logging.getLogger(__name__)

__all__ = [
    "CatalogLoader",
    "Snapshot",
    "join_aliases",
    "load_snapshot",
    "retire_deployment",
    "retire_model",
    "seal_secret",
    "serve_catalog",
    "split_aliases",
    "sync_yaml_models",
    "tombstone",
]


def split_aliases(text: str | None) -> tuple[str, ...]:
    """The ``models.aliases`` column (comma-joined, as the Go original stores it) as a tuple."""
    return tuple(alias for alias in (text or "").split(",") if alias)


def join_aliases(aliases: Iterable[str]) -> str:
    return ",".join(aliases)


def tombstone(value: str, row_id: str) -> str:
    """A unique value made free for reuse by a soft delete: ``<value>:deleted:<id>``."""
    return f"{value}:deleted:{row_id}"


def seal_secret(
    keyring: Keyring, plaintext: str, kind: AadKind, row_id: str, previous: str | None = None
) -> str | None:
    """The stored form of an upstream secret bound to its row; ``None`` for no secret.

    ``previous`` is kept when it already seals ``plaintext``, so re-syncing an unchanged config rewrites
    nothing.
    """
    if not plaintext:
        return None
    aad = aad_for(kind, row_id)
    if previous:
        try:
            if keyring.decrypt_secret(previous, aad=aad) == plaintext:
                return previous
        except CryptoError:
            pass
    return keyring.encrypt_secret(plaintext, aad=aad)


# ------------------------------------------------------------------------------------------- loading


@attrs.frozen
class Snapshot:
    """What the store adds to the catalog: API models, allowlists and scoped aliases."""

    models: tuple[Model, ...]
    access: AccessRules
    aliases: ScopedAliases
    policies: Mapping[str, ScopePolicy] = attrs.field(factory=dict)


def load_snapshot(conn: sa.Connection, *, keyring: Keyring) -> Snapshot:
    """Read the API models, the allowlists, the scoped aliases and the models' policies (run it in one
    transaction)."""
    return Snapshot(
        _load_models(conn, keyring), _load_access(conn), _load_aliases(conn), _load_model_policies(conn)
    )


def _load_model_policies(conn: sa.Connection) -> dict[str, ScopePolicy]:
    """Each live model's policies (config and API models alike) by its canonical name."""
    stored = read_scope_policies(conn, "model")
    if not stored:
        return {}
    m = t.models
    names = conn.execute(
        sa.select(m.c.id, m.c.name).where(
            m.c.id.in_([scope_id for _, scope_id in stored]), m.c.deleted_at.is_(None)
        )
    )
    return {row.name: stored["model", row.id] for row in names}


def _load_models(conn: sa.Connection, keyring: Keyring) -> tuple[Model, ...]:
    m, target = t.models, t.models.alias("target")
    rows = (
        conn.execute(
            sa.select(m, target.c.name.label("fallback_name"))
            .outerjoin(target, sa.and_(target.c.id == m.c.fallback_model_id, target.c.deleted_at.is_(None)))
            .where(m.c.deleted_at.is_(None), m.c.is_active.is_(True), m.c.source == "api")
            .order_by(m.c.name)
        )
        .mappings()
        .all()
    )
    d = t.model_deployments
    deployments: dict[str, list[sa.RowMapping]] = {}
    if rows:
        live = sa.and_(d.c.model_id.in_([row["id"] for row in rows]), d.c.deleted_at.is_(None), d.c.is_active)
        query = sa.select(d).where(live).order_by(d.c.priority, d.c.created_at, d.c.id)
        for dep in conn.execute(query).mappings():
            deployments.setdefault(dep["model_id"], []).append(dep)
    built = (_model_from_rows(row, deployments.get(row["id"], []), keyring) for row in rows)
    return tuple(model for model in built if model is not None)


def _model_from_rows(
    row: sa.RowMapping, deployments: Sequence[sa.RowMapping], keyring: Keyring
) -> Model | None:
    """A registry model from its row and active deployments; ``None`` (logged) when it cannot be served."""
    name = row["name"]
    try:
        if deployments:
            upstreams = tuple(
                _upstream(f"{name}/{dep['name']}", dep, "deployment", keyring) for dep in deployments
            )
        elif row["base_url"]:
            upstreams = (_upstream(name, row, "model", keyring),)
        else:
            log.warning(
                "model has no active deployment and no base_url; not served", extra={"model_id": row["id"]}
            )
            return None
    except CryptoError:
        log.warning("model's upstream secret cannot be decrypted; not served", extra={"model_id": row["id"]})
        return None
    return Model(
        name=row["name"],
        type=row["model_type"],
        aliases=split_aliases(row["aliases"]),
        upstreams=upstreams,
        timeout=_timeout(row),
        pricing=Pricing(row["input_price_per_1m"], row["output_price_per_1m"]),
        strategy=row["strategy"] or "round-robin",
        max_retries=row["max_retries"],
        fallback=row["fallback_name"],
    )


def _upstream(name: str, row: sa.RowMapping, kind: AadKind, keyring: Keyring) -> Upstream:
    sealed = row["api_key_encrypted"]
    api_key = keyring.decrypt_secret(sealed, aad=aad_for(kind, row["id"])) if sealed else ""
    return Upstream(
        name,
        row["provider"],
        row["base_url"].rstrip("/"),
        api_key,
        azure_deployment=row["azure_deployment"] or "",
        azure_api_version=row["azure_api_version"] or "",
        gcp_project=row["gcp_project"] or "",
        gcp_location=row["gcp_location"] or "",
        weight=row.get("weight", 1),
        priority=row.get("priority", 0),
    )


def _timeout(row: sa.RowMapping) -> float | None:
    if not row["timeout"]:
        return None
    try:
        return parse_duration(row["timeout"]) or None
    except ValueError:
        log.warning("model timeout is not a duration; ignored", extra={"model_id": row["id"]})
        return None


def _load_access(conn: sa.Connection) -> AccessRules:
    def lists(table: sa.Table, scope: str) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {}
        for scope_id, name in conn.execute(sa.select(table.c[scope], table.c.model_name)):
            found.setdefault(scope_id, set()).add(name)
        return {scope_id: frozenset(names) for scope_id, names in found.items()}

    return AccessRules(
        orgs=lists(t.org_model_access, "org_id"),
        teams=lists(t.team_model_access, "team_id"),
        keys=lists(t.key_model_access, "key_id"),
    )


def _load_aliases(conn: sa.Connection) -> ScopedAliases:
    a = t.model_aliases
    orgs: dict[str, dict[str, str]] = {}
    teams: dict[str, dict[str, str]] = {}
    for row in conn.execute(sa.select(a.c.alias, a.c.model_name, a.c.org_id, a.c.team_id)):
        if row.team_id is not None:
            teams.setdefault(row.team_id, {})[row.alias] = row.model_name
        else:
            orgs.setdefault(row.org_id, {})[row.alias] = row.model_name
    return ScopedAliases(orgs=orgs, teams=teams)


# ----------------------------------------------------------------------------------------- reloading


@attrs.define(eq=False)
class CatalogLoader:
    """Reloads ``catalog`` from the store; ``yaml_models`` are the config's models, built once at startup."""

    catalog: Catalog
    store: Store
    keyring: Keyring = attrs.field(repr=False)
    yaml_models: tuple[Model, ...] = ()
    _lock: trio.Lock = attrs.field(factory=trio.Lock, init=False)

    async def reload(self) -> None:
        """Read the store and swap registry, allowlists and aliases into the catalog.

        Reloads run one at a time, each reading after the previous one finished, so the last to finish
        holds the newest state.

        Raises:
            StoreError: the store could not be read; the catalog is unchanged.
        """
        async with self._lock:
            snapshot: Snapshot = await self.store.run(partial(load_snapshot, keyring=self.keyring))
            self.catalog.registry = Registry.build([*self.yaml_models, *snapshot.models])
            self.catalog.access = snapshot.access
            self.catalog.aliases = snapshot.aliases
            self.catalog.policies = snapshot.policies
        CACHE_SIZE.labels(cache="models").set(len(self.catalog.registry.models))


async def serve_catalog(
    *, loader: CatalogLoader, ttl: float, task_status: trio.TaskStatus[Catalog] = trio.TASK_STATUS_IGNORED
) -> None:
    """Load the catalog, report ready, then reload it every ``ttl`` seconds until cancelled.

    A failed periodic reload is logged and counted (``voidllm_cache_refresh_failures_total{cache="models"}``);
    the previous snapshot stays in use. A failure of the first load fails the start.
    """
    await loader.reload()
    task_status.started(loader.catalog)
    await keep_reloading(loader.reload, ttl=ttl, cache="models")


# ------------------------------------------------------------------------------------- config sync


def sync_yaml_models(conn: sa.Connection, models: Sequence[ModelConfig], *, keyring: Keyring) -> None:
    """Write the config's models into the store (see the module docstring); one transaction."""
    m = t.models
    live = {
        row.name: row
        for row in conn.execute(
            sa.select(m.c.id, m.c.name, m.c.source, m.c.api_key_encrypted).where(m.c.deleted_at.is_(None))
        )
    }
    ids: dict[str, str] = {}
    for cfg in models:
        row = live.get(cfg.name)
        if row is not None and row.source != "yaml":
            log.info(
                "config model skipped: the admin API manages a model of that name", extra={"model": cfg.name}
            )
            continue
        model_id = row.id if row is not None else new_id()
        values = _yaml_model_values(cfg) | {
            "api_key_encrypted": seal_secret(
                keyring, cfg.api_key, "model", model_id, row.api_key_encrypted if row is not None else None
            )
        }
        if row is None:
            conn.execute(sa.insert(m).values(id=model_id, name=cfg.name, source="yaml", **values))
        else:
            conn.execute(sa.update(m).where(m.c.id == model_id).values(**values))
        _sync_deployments(conn, model_id, cfg, keyring)
        ids[cfg.name] = model_id
    _sync_fallbacks(conn, models, ids)
    wanted = {cfg.name for cfg in models}
    for row in live.values():
        if row.source == "yaml" and row.name not in wanted:
            retire_model(conn, row.id, row.name)


def _yaml_model_values(cfg: ModelConfig) -> dict[str, Any]:
    return {
        "provider": cfg.provider or (cfg.deployments[0].provider if cfg.deployments else ""),
        "model_type": cfg.type,
        "base_url": cfg.base_url,
        "max_context_tokens": cfg.max_context_tokens,
        "input_price_per_1m": cfg.pricing.input_per_1m,
        "output_price_per_1m": cfg.pricing.output_per_1m,
        "azure_deployment": cfg.azure_deployment or None,
        "azure_api_version": cfg.azure_api_version or None,
        "gcp_project": cfg.gcp_project or None,
        "gcp_location": cfg.gcp_location or None,
        "aliases": join_aliases(cfg.aliases),
        "timeout": format_duration(cfg.timeout) if cfg.timeout else None,
        "strategy": cfg.strategy,
        "max_retries": cfg.max_retries,
        "is_active": True,
    }


def _sync_deployments(conn: sa.Connection, model_id: str, cfg: ModelConfig, keyring: Keyring) -> None:
    d = t.model_deployments
    query = sa.select(d.c.id, d.c.name, d.c.api_key_encrypted).where(d.c.model_id == model_id)
    live = {row.name: row for row in conn.execute(query.where(d.c.deleted_at.is_(None)))}
    for dep in cfg.deployments:
        row = live.pop(dep.name, None)
        dep_id = row.id if row is not None else new_id()
        values = {
            "provider": dep.provider,
            "base_url": dep.base_url,
            "weight": dep.weight,
            "priority": dep.priority,
            "azure_deployment": dep.azure_deployment or None,
            "azure_api_version": dep.azure_api_version or None,
            "gcp_project": dep.gcp_project or None,
            "gcp_location": dep.gcp_location or None,
            "is_active": True,
            "api_key_encrypted": seal_secret(
                keyring, dep.api_key, "deployment", dep_id, row.api_key_encrypted if row is not None else None
            ),
        }
        if row is None:
            conn.execute(sa.insert(d).values(id=dep_id, model_id=model_id, name=dep.name, **values))
        else:
            conn.execute(sa.update(d).where(d.c.id == dep_id).values(**values))
    for row in live.values():
        retire_deployment(conn, row.id, row.name)


def _sync_fallbacks(conn: sa.Connection, models: Sequence[ModelConfig], ids: Mapping[str, str]) -> None:
    by_alias = {alias: ids[cfg.name] for cfg in models if cfg.name in ids for alias in cfg.aliases}
    for cfg in models:
        if cfg.name in ids:
            target = (ids.get(cfg.fallback) or by_alias.get(cfg.fallback)) if cfg.fallback else None
            update = sa.update(t.models).where(t.models.c.id == ids[cfg.name])
            conn.execute(update.values(fallback_model_id=target))


def retire_model(conn: sa.Connection, model_id: str, name: str) -> None:
    """Soft-delete a model: tombstone its name, drop it from fallbacks, retire its deployments."""
    m, d = t.models, t.model_deployments
    now = utcnow()
    conn.execute(sa.update(m).where(m.c.fallback_model_id == model_id).values(fallback_model_id=None))
    conn.execute(
        sa.update(m)
        .where(m.c.id == model_id)
        .values(name=tombstone(name, model_id), is_active=False, deleted_at=now, fallback_model_id=None)
    )
    live = sa.select(d.c.id, d.c.name).where(d.c.model_id == model_id, d.c.deleted_at.is_(None))
    for row in conn.execute(live).all():
        retire_deployment(conn, row.id, row.name)


def retire_deployment(conn: sa.Connection, deployment_id: str, name: str) -> None:
    """Soft-delete a deployment, freeing its name within the model."""
    d = t.model_deployments
    conn.execute(
        sa.update(d)
        .where(d.c.id == deployment_id)
        .values(name=tombstone(name, deployment_id), is_active=False, deleted_at=utcnow())
    )
