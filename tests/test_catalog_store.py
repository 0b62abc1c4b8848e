"""The catalog as the store holds it: the config sync, loading API models, allowlists and aliases, and the
reload service that keeps the previous snapshot while the store is down."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import trio

from tests.gateway import ENCRYPTION_KEY
from voidllm.config import parse_config
from voidllm.crypto import Keyring, aad_for
from voidllm.errors import StoreUnavailableError
from voidllm.identity import KeyIdentity, Role
from voidllm.metrics import REGISTRY
from voidllm.routing.catalog import Catalog
from voidllm.routing.catalog_store import CatalogLoader, load_snapshot, serve_catalog, sync_yaml_models
from voidllm.routing.registry import Registry
from voidllm.store import tables as t
from voidllm.store.ids import new_id

KEYRING = Keyring.from_setting(ENCRYPTION_KEY)


def config_models(yaml_models: str) -> Any:
    return parse_config(
        f"settings:\n  encryption_key: {ENCRYPTION_KEY}\nmodels:\n{yaml_models}", environ={}
    ).models


YAML = """
  - name: alpha
    provider: openai
    base_url: http://alpha.test/v1
    api_key: sk-alpha
    aliases: [a]
    fallback: beta
  - name: beta
    strategy: priority
    deployments:
      - {name: one, provider: openai, base_url: "http://one.test/v1", api_key: sk-one, priority: 1}
      - {name: two, provider: vllm, base_url: "http://two.test/v1"}
"""


def models_by_name(conn: sa.Connection) -> dict[str, Any]:
    return {row.name: row for row in conn.execute(sa.select(t.models))}


async def test_the_config_sync_upserts_seals_and_tombstones(store: Any) -> None:
    await store.run(
        lambda conn: conn.execute(
            sa.insert(t.models).values(
                id=new_id(), name="api-owned", provider="openai", base_url="http://api.test/v1", source="api"
            )
        )
    )
    clash = "  - {name: api-owned, provider: vllm, base_url: 'http://yaml.test/v1'}\n"
    await store.run(partial(sync_yaml_models, models=config_models(YAML + clash), keyring=KEYRING))
    rows = await store.run(models_by_name)
    alpha, beta = rows["alpha"], rows["beta"]
    assert (alpha.source, alpha.aliases, alpha.fallback_model_id, beta.provider) == (
        "yaml",
        "a",
        beta.id,
        "openai",
    )
    assert KEYRING.decrypt_secret(alpha.api_key_encrypted, aad=aad_for("model", alpha.id)) == "sk-alpha"
    assert rows["api-owned"].base_url == "http://api.test/v1"  # the API's model is never touched
    deps = await store.run(
        lambda conn: {
            r.name: r
            for r in conn.execute(
                sa.select(t.model_deployments).where(t.model_deployments.c.model_id == beta.id)
            )
        }
    )
    assert (
        KEYRING.decrypt_secret(deps["one"].api_key_encrypted, aad=aad_for("deployment", deps["one"].id))
        == "sk-one"
    )
    assert deps["two"].api_key_encrypted is None
    assert deps["one"].priority == 1

    # again, with beta's deployment "two" and model alpha gone: ids and unchanged ciphertexts stay
    smaller = """
  - name: beta
    strategy: priority
    deployments:
      - {name: one, provider: openai, base_url: "http://one.test/v1", api_key: sk-one, priority: 1}
"""
    await store.run(partial(sync_yaml_models, models=config_models(smaller), keyring=KEYRING))
    rows = await store.run(models_by_name)
    assert rows["beta"].id == beta.id
    retired = rows[f"alpha:deleted:{alpha.id}"]
    assert retired.deleted_at is not None
    assert not retired.is_active
    deps_after = await store.run(
        lambda conn: {
            r.name: r
            for r in conn.execute(
                sa.select(t.model_deployments).where(t.model_deployments.c.model_id == beta.id)
            )
        }
    )
    assert deps_after["one"].api_key_encrypted == deps["one"].api_key_encrypted
    assert deps_after[f"two:deleted:{deps['two'].id}"].deleted_at is not None


def _api_model(conn: sa.Connection, name: str, **values: Any) -> str:
    model_id = new_id()
    key = values.pop("api_key", None)
    sealed = KEYRING.encrypt_secret(key, aad=aad_for("model", model_id)) if key else None
    conn.execute(
        sa.insert(t.models).values(
            id=model_id,
            name=name,
            provider="openai",
            source="api",
            base_url=f"http://{name}.test/v1",
            api_key_encrypted=sealed,
            **values,
        )
    )
    return model_id


async def test_snapshot_holds_active_api_models_allowlists_and_aliases(store: Any) -> None:
    org_id, team_id, other_team = new_id(), new_id(), new_id()

    def seed(conn: sa.Connection) -> None:
        conn.execute(sa.insert(t.organizations).values(id=org_id, name="o", slug="o"))
        for team in (team_id, other_team):
            conn.execute(sa.insert(t.teams).values(id=team, org_id=org_id, name=team, slug=team))
        pool = _api_model(conn, "pool", strategy="priority", timeout="90s", aliases="p,q", api_key="sk-pool")
        for name, priority in (("late", 5), ("early", 1)):
            dep_id = new_id()
            conn.execute(
                sa.insert(t.model_deployments).values(
                    id=dep_id,
                    model_id=pool,
                    name=name,
                    provider="openai",
                    base_url=f"http://{name}.test/v1/",
                    priority=priority,
                    api_key_encrypted=KEYRING.encrypt_secret(f"sk-{name}", aad=aad_for("deployment", dep_id)),
                )
            )
        _api_model(conn, "off", is_active=False)
        broken = _api_model(conn, "broken", fallback_model_id=pool)
        conn.execute(
            sa.update(t.models)
            .where(t.models.c.id == broken)
            .values(api_key_encrypted=KEYRING.encrypt_secret("sk", aad=aad_for("model", pool)))
        )
        _api_model(conn, "plain", fallback_model_id=pool)
        conn.execute(sa.insert(t.org_model_access).values(org_id=org_id, model_name="pool"))
        conn.execute(
            sa.insert(t.team_model_access), [{"team_id": team_id, "model_name": n} for n in ("pool", "plain")]
        )
        conn.execute(
            sa.insert(t.model_aliases),
            [
                {
                    "id": new_id(),
                    "alias": "fast",
                    "model_name": "plain",
                    "scope_type": "org",
                    "org_id": org_id,
                    "team_id": None,
                },
                {
                    "id": new_id(),
                    "alias": "fast",
                    "model_name": "pool",
                    "scope_type": "team",
                    "org_id": org_id,
                    "team_id": team_id,
                },
            ],
        )

    await store.run(seed)
    snapshot = await store.run(lambda conn: load_snapshot(conn, keyring=KEYRING))
    by_name = {m.name: m for m in snapshot.models}
    assert sorted(by_name) == ["plain", "pool"]  # inactive left out; a secret sealed to another row too
    pool = by_name["pool"]
    assert [(u.name, u.base_url, u.api_key) for u in pool.upstreams] == [
        ("pool/early", "http://early.test/v1", "sk-early"),
        ("pool/late", "http://late.test/v1", "sk-late"),
    ]
    assert (pool.timeout, pool.strategy, pool.aliases) == (90.0, "priority", ("p", "q"))
    assert by_name["plain"].fallback == "pool"
    assert by_name["plain"].strategy == "round-robin"

    catalog = Catalog(Registry.build(snapshot.models), snapshot.access, snapshot.aliases)
    member = KeyIdentity(key_id=new_id(), key_type="user_key", name="k", role=Role.MEMBER, org_id=org_id)
    in_team = KeyIdentity(
        key_id=new_id(), key_type="team_key", name="k", role=Role.TEAM_ADMIN, org_id=org_id, team_id=team_id
    )
    in_other = KeyIdentity(
        key_id=new_id(),
        key_type="team_key",
        name="k",
        role=Role.TEAM_ADMIN,
        org_id=org_id,
        team_id=other_team,
    )
    assert [m.name for m in catalog.visible(member)] == ["pool"]  # the org lists only pool
    assert catalog.resolve(member, "fast") is by_name["plain"]
    assert catalog.resolve(in_team, "fast") is pool
    assert catalog.resolve(in_other, "fast") is by_name["plain"]
    assert catalog.aliases_of(in_team) == {"pool": ["fast"]}


class InlineStore:
    """A store that runs each transaction inline on the trio thread, and can be taken down: keeps tests on
    the autojump clock free of real thread I/O."""

    def __init__(self, path: Path) -> None:
        self.engine = sa.create_engine(f"sqlite:///{path}")
        t.metadata.create_all(self.engine)
        self.down = False

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        await trio.lowlevel.checkpoint()
        if self.down:
            raise StoreUnavailableError("database unavailable: test")
        with self.engine.begin() as conn:
            return fn(conn, *args)


def _failures() -> float:
    return REGISTRY.get_sample_value("voidllm_cache_refresh_failures_total", {"cache": "models"}) or 0.0


async def test_reload_service_keeps_the_previous_snapshot_while_the_store_is_down(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    store = InlineStore(tmp_path / "catalog.db")
    await store.run(_api_model, "first")
    yaml_registry = Registry.from_config(
        config_models("  - {name: static, provider: vllm, base_url: 'http://s.test/v1'}\n")
    )
    catalog = Catalog(yaml_registry)
    loader = CatalogLoader(catalog, store, KEYRING, yaml_models=yaml_registry.models)
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await nursery.start(
            lambda task_status: serve_catalog(loader=loader, ttl=60.0, task_status=task_status)
        )
        assert [m.name for m in catalog.registry.models] == ["first", "static"]
        loaded, failures = catalog.registry, _failures()

        store.down = True
        await trio.sleep_until(start + 3 * 60.0 + 1)
        assert catalog.registry is loaded  # three failed reloads, the snapshot from before them stays
        assert _failures() == failures + 3

        store.down = False
        await store.run(_api_model, "second")
        await trio.sleep_until(start + 4 * 60.0 - 1)
        assert catalog.resolve(KeyIdentity("k", "user_key", "k", Role.MEMBER, "o"), "second") is None
        await trio.sleep_until(start + 4 * 60.0 + 1)
        assert [m.name for m in catalog.registry.models] == ["first", "second", "static"]
        nursery.cancel_scope.cancel()
