"""The audit log: redaction, the batched writer (interval, drops, shutdown flush), the rows a real admin
mutation leaves, and ``GET /api/v1/audit-logs`` (filters, newest-first pages, RBAC)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import attrs
import orjson
import sqlalchemy as sa
import trio

from tests.gateway import make_config, run_gateway
from tests.polling import poll_until
from voidllm.admin.audit_writer import (
    MAX_DESCRIPTION,
    REDACTED,
    AuditRecord,
    AuditRecorder,
    describe,
    insert_audit_records,
    open_audit_channel,
    record_of,
    redact,
    serve_audit_writer,
)
from voidllm.admin.context import Actor
from voidllm.admin.services import AuditEntry
from voidllm.crypto import KeyKind, generate_key
from voidllm.identity import KeyIdentity, Role
from voidllm.metrics import REGISTRY
from voidllm.store.store import open_store
from voidllm.store.tables import audit_logs, metadata

T0 = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def identity(
    role: Role, org_id: str, *, user_id: str | None = "user-1", sa_id: str | None = None
) -> KeyIdentity:
    return KeyIdentity(
        key_id=f"key-{role.name.lower()}-{org_id}",
        key_type="user_key" if user_id else "sa_key",
        name="test",
        role=role,
        org_id=org_id,
        user_id=user_id,
        service_account_id=sa_id,
    )


def entry(
    n: int = 0,
    *,
    org_id: str = "org-a",
    action: str = "create",
    resource_type: str = "team",
    actor: Actor | None = None,
    description: Any = None,
    status_code: int = 201,
) -> AuditEntry:
    actor = actor or Actor(
        identity(Role.ORG_ADMIN, org_id, user_id=f"user-{n}"), ip="10.0.0.1", request_id=f"req-{n}"
    )
    return AuditEntry(
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=f"res-{n}",
        org_id=org_id,
        status_code=status_code,
        description=description,
    )


# -- redaction -------------------------------------------------------------------------------------------


def test_secret_keys_are_redacted_at_any_depth_and_case() -> None:
    body = {
        "name": "prod",
        "Password": "hunter2!",
        "current_password": "a",
        "new_password": "b",
        "api_key": "x",
        "KEY": "y",
        "token": "z",
        "auth_token": "t",
        "client_secret": "s",
        "Authorization": "Basic abc",
        "oauth_client_secret": "o",
        "X-Api-Key": "h",
        "nested": {"deeper": [{"secret": "s2", "ok": 1}], "private_key": "pk"},
        "daily_token_limit": 100,
        "max_context_tokens": 8000,
        "key_type": "user_key",
        "key_id": "k1",
        "token_hint": "vl_uk_...abcd",
        "base_url": "https://api.example.com/v1",
    }
    out = redact(body)
    secrets = [
        "Password",
        "current_password",
        "new_password",
        "api_key",
        "KEY",
        "token",
        "auth_token",
        "client_secret",
        "Authorization",
        "oauth_client_secret",
        "X-Api-Key",
    ]
    assert {name: out[name] for name in secrets} == dict.fromkeys(secrets, REDACTED)
    assert out["nested"] == {"deeper": [{"secret": REDACTED, "ok": 1}], "private_key": REDACTED}
    kept = ["name", "daily_token_limit", "max_context_tokens", "key_type", "key_id", "base_url"]
    assert {name: out[name] for name in kept} == {name: body[name] for name in kept}
    assert out["token_hint"] == REDACTED  # a value that starts like a key is never kept


def test_key_like_values_are_redacted_under_any_name() -> None:
    out = redact(
        {"note": "vl_uk_" + "a" * 48, "upstream": "sk-proj-123", "h": "Bearer abc", "list": ["sk-x", "fine"]}
    )
    assert out == {"note": REDACTED, "upstream": REDACTED, "h": REDACTED, "list": [REDACTED, "fine"]}


def test_description_is_capped_and_stays_json() -> None:
    assert describe(None) == ""
    assert describe({}) == ""
    big = {f"field_{i}": "x" * 1000 for i in range(50)}
    text = describe(big)
    assert len(text.encode()) <= MAX_DESCRIPTION
    parsed = orjson.loads(text)
    assert parsed["truncated"] is True
    assert "field_0" in parsed["fields"]
    long_string = orjson.loads(describe({"description": "y" * 10_000}))["description"]
    assert len(long_string) < 300


def test_record_carries_actor_request_and_redacted_body() -> None:
    actor = Actor(
        identity(Role.ORG_ADMIN, "org-a", user_id=None, sa_id="sa-1"), ip="192.0.2.7", request_id="r-1"
    )
    record = record_of(entry(actor=actor, description={"name": "n", "api_key": "sk-secret"}), now=T0)
    assert (record.actor_type, record.actor_id, record.actor_key_id) == (
        "service_account",
        "sa-1",
        actor.key_id,
    )
    assert (record.ip_address, record.request_id, record.timestamp, record.status_code) == (
        "192.0.2.7",
        "r-1",
        T0,
        201,
    )
    assert orjson.loads(record.description) == {"name": "n", "api_key": REDACTED}
    assert "sk-secret" not in repr(record)
    system = record_of(entry(actor=Actor.system()))
    assert (system.actor_type, system.actor_id, system.actor_key_id) == ("system", None, None)


# -- the writer (MockClock) ------------------------------------------------------------------------------


@attrs.define(eq=False)
class MemoryStore:
    """A real in-memory SQLite database, written synchronously so autojump never races a worker thread."""

    engine: sa.Engine = attrs.Factory(lambda: _memory_engine())
    written_at: list[float] = attrs.Factory(list)

    async def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        await trio.lowlevel.checkpoint()
        with self.engine.begin() as conn:
            result = fn(conn, *args)
        self.written_at.append(trio.current_time())
        return result

    def request_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(audit_logs.c.request_id).order_by(audit_logs.c.id)).scalars())


def _memory_engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    metadata.create_all(engine, tables=[audit_logs])
    return engine


@asynccontextmanager
async def running_writer(
    store: MemoryStore, *, buffer_size: int = 100, **options: Any
) -> AsyncIterator[AuditRecorder]:
    sink, receive = open_audit_channel(buffer_size)
    options = {"batch_size": 10, "flush_interval": 5.0, **options}
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_audit_writer, store=store, receive=receive, **options))
        try:
            yield sink
        finally:
            nursery.cancel_scope.cancel()


async def test_writer_writes_a_batch_when_its_interval_is_over(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryStore()
    async with running_writer(store) as sink:
        sink.record(entry(1))
        await trio.sleep(1)
        sink.record(entry(2))
        await trio.sleep(3.9)
        assert store.request_ids() == []
        await trio.sleep(0.2)
        assert store.request_ids() == ["req-1", "req-2"]
        assert store.written_at == [5.0]


async def test_writer_flushes_everything_accepted_on_shutdown(autojump_clock: trio.testing.MockClock) -> None:
    store = MemoryStore()
    async with running_writer(store, flush_interval=3600.0) as sink:
        for n in range(25):
            sink.record(entry(n))
    assert store.request_ids() == [f"req-{n}" for n in range(25)]
    assert trio.current_time() == 0.0


async def test_full_channel_drops_and_counts() -> None:
    sink, receive = open_audit_channel(2)
    before = metric("voidllm_audit_events_dropped_total")
    for n in range(3):
        sink.record(entry(n))
    assert metric("voidllm_audit_events_dropped_total") - before == 1
    assert [receive.receive_nowait().request_id for _ in range(2)] == ["req-0", "req-1"]


# -- through the real API --------------------------------------------------------------------------------


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def audit_rows(dsn: str) -> list[dict[str, Any]]:
    async with open_store("sqlite", dsn) as store:
        return await store.run(
            lambda conn: [
                dict(r) for r in conn.execute(sa.select(audit_logs).order_by(audit_logs.c.id)).mappings()
            ]
        )


async def test_admin_mutation_is_audited_and_flushed_at_shutdown(sqlite_dsn: str) -> None:
    config = make_config(sqlite_dsn, settings="audit:\n  flush_interval: 1h")
    async with run_gateway(config) as gw:
        key = gw.api_key()
        admin = gw.state.keys.authenticate(f"Bearer {key}")
        body = {
            "email": "audited@example.com",
            "password": "correct horse battery",
            "org_id": admin.org_id,
            "role": "member",
            "display_name": "Audited",
        }  # unknown fields are refused (400) before anything is audited: secrets in them never get this far
        created = await gw.client.post("/api/v1/users", json=body, headers=auth(key))
        assert created.status_code == 201, created.text
        request_id = created.headers["x-request-id"]
        assert (await gw.client.get("/api/v1/users", headers=auth(key))).status_code == 200  # reads: no row
    rows = await audit_rows(sqlite_dsn)
    assert len(rows) == 1
    row = rows[0]
    assert {k: row[k] for k in ("action", "resource_type", "resource_id", "org_id", "status_code")} == {
        "action": "create",
        "resource_type": "user",
        "resource_id": created.json()["id"],
        "org_id": admin.org_id,
        "status_code": 201,
    }
    assert (row["actor_type"], row["actor_id"], row["actor_key_id"]) == ("user", admin.user_id, admin.key_id)
    assert (row["ip_address"], row["request_id"]) == ("127.0.0.1", request_id)
    description = orjson.loads(row["description"])
    assert description["password"] == REDACTED
    assert description["email"] == "audited@example.com"
    assert "correct horse battery" not in row["description"]


async def test_audit_disabled_writes_nothing(sqlite_dsn: str) -> None:
    config = make_config(sqlite_dsn, settings="audit:\n  enabled: false")
    async with run_gateway(config) as gw:
        key = gw.api_key()
        org_id = gw.state.keys.authenticate(f"Bearer {key}").org_id
        body = {"email": "quiet@example.com", "password": "correct horse battery", "org_id": org_id}
        assert (await gw.client.post("/api/v1/users", json=body, headers=auth(key))).status_code == 201
    assert await audit_rows(sqlite_dsn) == []


def seeded_records() -> list[AuditRecord]:
    """Five entries a minute apart: org-a (create team, update team answered 200, delete key by user-9),
    org-b (two creates); the others answered 201."""
    specs = [
        ("org-a", "create", "team", 1),
        ("org-b", "create", "user", 2),
        ("org-a", "update", "team", 3),
        ("org-b", "create", "team", 4),
        ("org-a", "delete", "api_key", 9),
    ]
    return [
        record_of(
            entry(
                n,
                org_id=org,
                action=action,
                resource_type=rtype,
                status_code=200 if action == "update" else 201,
            ),
            now=T0 + timedelta(minutes=i),
        )
        for i, (org, action, rtype, n) in enumerate(specs)
    ]


def add_key(gw: Any, role: Role, org_id: str) -> str:
    plaintext = generate_key(KeyKind.USER)
    gw.state.keys.put(gw.state.services.keyring.hash_key(plaintext), identity(role, org_id))
    return plaintext


async def listing(gw: Any, key: str, **params: Any) -> Any:
    return await gw.client.get("/api/v1/audit-logs", params=params, headers=auth(key))


def ids_of(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["request_id"] for item in response.json()["data"]]


async def test_list_filters_and_pages_newest_first(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        await gw.state.store.run(insert_audit_records, seeded_records())
        key = gw.api_key()
        everything = await listing(gw, key)
        assert ids_of(everything) == ["req-9", "req-4", "req-3", "req-2", "req-1"]
        first = everything.json()["data"][0]
        assert first["timestamp"] == "2026-01-10T12:04:00Z"
        assert first["status_code"] == 201
        assert set(first) == {
            "id",
            "request_id",
            "timestamp",
            "org_id",
            "actor_id",
            "actor_type",
            "actor_key_id",
            "action",
            "resource_type",
            "resource_id",
            "description",
            "ip_address",
            "status_code",
        }
        assert ids_of(await listing(gw, key, org_id="org-b")) == ["req-4", "req-2"]
        assert ids_of(await listing(gw, key, actor_id="user-9")) == ["req-9"]
        assert ids_of(await listing(gw, key, resource_type="team")) == ["req-4", "req-3", "req-1"]
        assert ids_of(await listing(gw, key, action="create", org_id="org-a")) == ["req-1"]
        assert ids_of(await listing(gw, key, status_code=200)) == ["req-3"]
        assert ids_of(await listing(gw, key, status_code=201, resource_type="team")) == ["req-4", "req-1"]
        window = {"from": "2026-01-10T12:01:00Z", "to": "2026-01-10T14:03:00+02:00"}
        assert ids_of(await listing(gw, key, **window)) == ["req-4", "req-3", "req-2"]

        page1 = (await listing(gw, key, limit=2)).json()
        assert [d["request_id"] for d in page1["data"]] == ["req-9", "req-4"]
        assert page1["has_more"] is True
        page2 = (await listing(gw, key, limit=2, cursor=page1["next_cursor"])).json()
        assert [d["request_id"] for d in page2["data"]] == ["req-3", "req-2"]
        page3 = (await listing(gw, key, limit=2, cursor=page2["next_cursor"])).json()
        assert page3 == {"data": [page3["data"][0]], "has_more": False, "next_cursor": None}

        for bad in (
            {"limit": 0},
            {"limit": 101},
            {"from": "yesterday"},
            {"from": "2026-01-10T12:00:00"},
            {"status_code": "ok"},
            {"status_code": 99},
            {"status_code": 600},
            {"from": "2026-01-11T00:00:00Z", "to": "2026-01-10T00:00:00Z"},
        ):
            response = await listing(gw, key, **bad)
            assert response.status_code == 400, bad
            assert response.json()["error"]["code"] == "validation_error"


async def test_default_page_size_is_fifty(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        records = [record_of(entry(n), now=T0 + timedelta(seconds=n)) for n in range(51)]
        await gw.state.store.run(insert_audit_records, records)
        page = (await listing(gw, gw.api_key())).json()
        assert len(page["data"]) == 50
        assert page["has_more"] is True


async def test_org_admins_see_only_their_org_and_members_nothing(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        await gw.state.store.run(insert_audit_records, seeded_records())
        org_admin = add_key(gw, Role.ORG_ADMIN, "org-a")
        assert ids_of(await listing(gw, org_admin)) == ["req-9", "req-3", "req-1"]
        assert ids_of(await listing(gw, org_admin, org_id="org-a", action="update")) == ["req-3"]
        denied = await listing(gw, org_admin, org_id="org-b")
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "forbidden"
        for role in (Role.MEMBER, Role.TEAM_ADMIN):
            response = await listing(gw, add_key(gw, role, "org-a"))
            assert response.status_code == 403
        assert (await gw.client.get("/api/v1/audit-logs")).status_code == 401


async def test_entries_become_visible_after_the_flush_interval(sqlite_dsn: str) -> None:
    """The running server's writer flushes on its interval, not only at shutdown."""
    config = make_config(sqlite_dsn, settings="audit:\n  flush_interval: 50ms")
    async with run_gateway(config) as gw:
        gw.state.services.audit.record(entry(7, org_id="org-z"))
        key = gw.api_key()

        async def flushed() -> bool:
            return bool(ids_of(await listing(gw, key, org_id="org-z")))

        with trio.fail_after(5):
            await poll_until(flushed)
        assert ids_of(await listing(gw, key, org_id="org-z")) == ["req-7"]
