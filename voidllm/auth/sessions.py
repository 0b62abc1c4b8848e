"""Login sessions (``vl_sk_`` keys) in the store, key revocation, and password work off the event loop.

A session is an ``api_keys`` row with ``key_type = 'session_key'``, named "Login session", expiring 24 hours
after the login, in the organisation the user logs in to. Unlike the Go original (one session per user,
every login revoking the previous one) a user may hold up to :data:`MAX_LIVE_SESSIONS` live sessions, one per
browser or device; a login beyond that revokes the oldest ones.

The functions taking a connection run inside ``Store.run`` (one transaction); they return the hashes of the
keys they revoked so the caller can evict them with :func:`forget_keys` once the transaction committed.

Passwords: argon2 costs tens of milliseconds of CPU and 64 MiB per call, so :func:`hash_password_off_loop`
and :func:`verify_password_off_loop` run it in worker threads behind a limiter of :data:`PASSWORD_THREADS`
(one per trio run), never on the event loop and never more than that many at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
import trio

from voidllm.auth.passwords import hash_password, verify_password
from voidllm.bus import TOPIC_KEYS
from voidllm.crypto import KeyKind, generate_key, key_hint
from voidllm.store import tables as t
from voidllm.store.ids import new_id
from voidllm.store.policies import delete_policies

if TYPE_CHECKING:
    from voidllm.admin.services import Services

SESSION_KEY_TYPE = KeyKind.SESSION.key_type
SESSION_NAME = "Login session"
SESSION_TTL = timedelta(hours=24)
MAX_LIVE_SESSIONS = 10
PASSWORD_THREADS = 2

_password_limiter: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("password_limiter")


def _limiter() -> trio.CapacityLimiter:
    try:
        return _password_limiter.get()
    except LookupError:
        limiter = trio.CapacityLimiter(PASSWORD_THREADS)
        _password_limiter.set(limiter)
        return limiter


async def hash_password_off_loop(password: str) -> str:
    """:func:`~voidllm.auth.passwords.hash_password` in a worker thread behind the password limiter."""
    return await trio.to_thread.run_sync(hash_password, password, limiter=_limiter())


async def verify_password_off_loop(stored: str | None, password: str) -> bool:
    """:func:`~voidllm.auth.passwords.verify_password` in a worker thread behind the password limiter."""
    return await trio.to_thread.run_sync(verify_password, stored, password, limiter=_limiter())


def new_session_key(services: Services) -> tuple[str, str, str]:
    """A fresh session key: ``(plaintext, hash, hint)``."""
    plaintext = generate_key(KeyKind.SESSION)
    return plaintext, services.keyring.hash_key(plaintext), key_hint(plaintext)


def live_sessions(user_id: str, now: datetime) -> sa.Select[tuple[object, ...]]:
    """The user's live session rows, oldest first."""
    k = t.api_keys
    return (
        sa.select(k.c.id, k.c.key_hash, k.c.key_hint, k.c.created_at, k.c.expires_at)
        .where(
            k.c.user_id == user_id,
            k.c.key_type == SESSION_KEY_TYPE,
            k.c.deleted_at.is_(None),
            sa.or_(k.c.expires_at.is_(None), k.c.expires_at > now),
        )
        .order_by(k.c.created_at, k.c.id)
    )


def insert_session(
    conn: sa.Connection, *, user_id: str, org_id: str, key_hash: str, hint: str, now: datetime
) -> tuple[str, list[str]]:
    """Insert a session key for ``user_id`` in ``org_id``, revoking the oldest live sessions beyond the cap.

    Returns:
        The new key's id and the hashes of the sessions revoked to make room.
    """
    live = conn.execute(live_sessions(user_id, now)).mappings().all()
    surplus = live[: max(0, len(live) - MAX_LIVE_SESSIONS + 1)]
    revoked: list[str] = []
    if surplus:
        revoked = revoke_keys(conn, t.api_keys.c.id.in_([row["id"] for row in surplus]), now=now)
    key_id = new_id()
    conn.execute(
        t.api_keys.insert().values(
            id=key_id,
            key_hash=key_hash,
            key_hint=hint,
            key_type=SESSION_KEY_TYPE,
            name=SESSION_NAME,
            org_id=org_id,
            user_id=user_id,
            expires_at=now + SESSION_TTL,
            created_by=user_id,
            created_at=now,
            updated_at=now,
        )
    )
    return key_id, revoked


def revoke_keys(conn: sa.Connection, *where: sa.ColumnElement[bool], now: datetime) -> list[str]:
    """Soft-delete every live key matching ``where`` and delete their policies; returns their hashes for
    :func:`forget_keys`."""
    k = t.api_keys
    condition = sa.and_(k.c.deleted_at.is_(None), *where)
    rows = conn.execute(sa.select(k.c.id, k.c.key_hash).where(condition)).all()
    hashes = [row.key_hash for row in rows]
    if hashes:
        revoke = k.update().where(condition, k.c.key_hash.in_(hashes)).values(deleted_at=now, updated_at=now)
        conn.execute(revoke)
        delete_policies(conn, "key", [row.id for row in rows])
    return hashes


async def forget_keys(services: Services, hashes: list[str]) -> None:
    """Evict revoked keys from this process's cache at once and tell the other processes."""
    for key_hash in hashes:
        services.keys.evict(key_hash)
    for key_hash in hashes:
        await services.bus.publish(TOPIC_KEYS, key_hash)
