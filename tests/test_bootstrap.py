"""Bootstrap creates the first organisation, admin and key exactly once; the key loader sees only live
keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from voidllm.auth.bootstrap import BootstrapPlan, bootstrap
from voidllm.auth.cache import KeyCache, reload_key_cache
from voidllm.auth.loader import load_live_keys
from voidllm.auth.passwords import verify_password
from voidllm.crypto import KeyKind, Keyring, generate_key, hash_key, key_hint
from voidllm.errors import AuthenticationError
from voidllm.identity import Role
from voidllm.store import tables as t
from voidllm.store.ids import new_id, utcnow

KEYRING = Keyring.from_setting("a passphrase of enough length")
PLAN = BootstrapPlan(org_name="Acme", org_slug="acme", admin_email="root@acme.test")


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


async def test_bootstrap_creates_everything_once(store: Any) -> None:
    creds = await bootstrap(store, KEYRING, PLAN)
    assert creds is not None
    assert KeyKind.from_key(creds.api_key) is KeyKind.USER
    assert creds.email == "root@acme.test"
    assert len(creds.password) == 16
    assert "vl_uk_" not in repr(creds)
    assert creds.password not in repr(creds)

    assert await bootstrap(store, KEYRING, PLAN) is None

    def check(conn: sa.Connection) -> dict[str, Any]:
        counts = {
            name: _count(conn, table)
            for name, table in [
                ("orgs", t.organizations),
                ("users", t.users),
                ("members", t.org_memberships),
                ("keys", t.api_keys),
            ]
        }
        user = conn.execute(sa.select(t.users)).mappings().one()
        key = conn.execute(sa.select(t.api_keys)).mappings().one()
        member = conn.execute(sa.select(t.org_memberships)).mappings().one()
        org = conn.execute(sa.select(t.organizations)).mappings().one()
        return {
            "counts": counts,
            "user": dict(user),
            "key": dict(key),
            "member": dict(member),
            "org": dict(org),
        }

    rows = await store.run(check)
    assert rows["counts"] == {"orgs": 1, "users": 1, "members": 1, "keys": 1}
    assert rows["org"]["slug"] == "acme"
    assert rows["org"]["name"] == "Acme"
    assert rows["user"]["is_system_admin"] is True
    assert rows["user"]["display_name"] == "Admin"
    assert verify_password(rows["user"]["password_hash"], creds.password)
    assert rows["member"]["role"] == "org_admin"
    assert rows["key"]["key_hash"] == hash_key(KEYRING.hmac_secret, creds.api_key)
    assert rows["key"]["key_hint"] == key_hint(creds.api_key)
    assert rows["key"]["name"] == "Bootstrap Admin Key"
    assert rows["key"]["key_type"] == "user_key"

    cache = KeyCache(KEYRING.hmac_secret)
    await reload_key_cache(cache, store)
    identity = cache.authenticate(f"Bearer {creds.api_key}")
    assert identity.role is Role.SYSTEM_ADMIN
    assert identity.org_id == rows["org"]["id"]


async def test_loader_excludes_dead_keys_and_computes_roles(store: Any) -> None:
    now = utcnow()
    org, dead_org, user, gone_user, team = new_id(), new_id(), new_id(), new_id(), new_id()
    keys: dict[str, str] = {}

    def seed(conn: sa.Connection) -> None:
        stamps = {"created_at": now, "updated_at": now}
        conn.execute(
            t.organizations.insert().values(id=org, name="O", slug="o", requests_per_minute=7, **stamps)
        )
        conn.execute(
            t.organizations.insert().values(id=dead_org, name="D", slug="d", is_active=False, **stamps)
        )
        conn.execute(
            t.users.insert().values(id=user, email="u@x", display_name="U", auth_provider="local", **stamps)
        )
        conn.execute(
            t.users.insert().values(
                id=gone_user, email="g@x", display_name="G", auth_provider="local", deleted_at=now, **stamps
            )
        )
        conn.execute(
            t.org_memberships.insert(),
            [
                {
                    "id": new_id(),
                    "org_id": org,
                    "user_id": user,
                    "role": "member",
                    "created_at": now,
                    "updated_at": now,
                },
            ],
        )
        conn.execute(
            t.teams.insert(),
            [
                {
                    "id": team,
                    "org_id": org,
                    "name": "T",
                    "slug": "t",
                    "daily_token_limit": 1000,
                    "created_at": now,
                    "updated_at": now,
                },
            ],
        )

        def key(name: str, **values: Any) -> None:
            plaintext = generate_key(KeyKind.USER)
            keys[name] = plaintext
            conn.execute(
                t.api_keys.insert().values(
                    id=new_id(),
                    key_hash=hash_key(KEYRING.hmac_secret, plaintext),
                    key_hint=key_hint(plaintext),
                    name=name,
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            )

        key("member", key_type="user_key", org_id=org, user_id=user, requests_per_day=5)
        key("team", key_type="team_key", org_id=org, team_id=team)
        key("sa-org", key_type="sa_key", org_id=org)
        key("deleted", key_type="user_key", org_id=org, user_id=user, deleted_at=now)
        key("expired", key_type="user_key", org_id=org, user_id=user, expires_at=now - timedelta(minutes=1))
        key("future", key_type="user_key", org_id=org, user_id=user, expires_at=now + timedelta(days=1))
        key("dead-org", key_type="team_key", org_id=dead_org)
        key("gone-user", key_type="user_key", org_id=org, user_id=gone_user)

    await store.run(seed)
    cache = KeyCache(KEYRING.hmac_secret)
    await reload_key_cache(cache, store)
    live = {name for name, plaintext in keys.items() if _accepted(cache, plaintext)}
    assert live == {"member", "team", "sa-org", "future"}

    member = cache.authenticate_key(keys["member"])
    assert member.role is Role.MEMBER
    assert member.key_limits.requests_per_day == 5
    assert member.org_limits.requests_per_minute == 7
    team_key = cache.authenticate_key(keys["team"])
    assert team_key.role is Role.TEAM_ADMIN
    assert team_key.team_limits.daily_token_limit == 1000
    assert cache.authenticate_key(keys["sa-org"]).role is Role.ORG_ADMIN

    snapshot = await store.run(lambda conn: load_live_keys(conn, now=now + timedelta(days=2)))
    assert hash_key(KEYRING.hmac_secret, keys["future"]) not in snapshot


def _accepted(cache: KeyCache, plaintext: str) -> bool:
    try:
        cache.authenticate_key(plaintext)
    except AuthenticationError:
        return False
    return True


@pytest.mark.parametrize("key_type", ["user_key", "session_key"])
def test_system_admin_flag_wins_over_membership(key_type: str) -> None:
    from voidllm.auth.identity import effective_role

    assert (
        effective_role(key_type, is_system_admin=True, org_role="member", has_team=False) is Role.SYSTEM_ADMIN
    )
    assert (
        effective_role(key_type, is_system_admin=False, org_role="org_admin", has_team=True) is Role.ORG_ADMIN
    )
    assert effective_role(key_type, is_system_admin=False, org_role=None, has_team=True) is Role.MEMBER
    assert effective_role("sa_key", is_system_admin=False, org_role=None, has_team=True) is Role.TEAM_ADMIN


async def test_a_store_with_keys_costs_no_password_hash(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every restart with settings.admin_key still set calls bootstrap: it must not pay for an argon2 hash
    (half a second of CPU and 64 MiB at the production parameters) when the store already has keys."""
    from voidllm.auth import bootstrap as bootstrap_module

    assert await bootstrap(store, KEYRING, PLAN) is not None
    hashed: list[str] = []
    monkeypatch.setattr(bootstrap_module, "hash_password", hashed.append)

    assert await bootstrap(store, KEYRING, PLAN) is None
    assert hashed == []
