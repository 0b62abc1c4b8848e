"""First-start bootstrap (docs/reference/behaviour.md 11).

On a start with ``settings.admin_key`` set (>= 32 characters; config validation enforces it) and no live API
key in the store, one transaction creates the organisation, a system-admin user with a random password, the
user's org-admin membership and a ``vl_uk_`` key. The admin key itself is only the trigger: it is never a
usable API key. The credentials are returned so the caller can print them once, after the server listens.
Every later start finds keys in the store and changes nothing.

A start without ``settings.admin_key`` on a store that has no user at all cannot be used by anyone: it
prints :class:`BootstrapHint` once (how to bootstrap, and how to reset a lost password) and ``/readyz``
answers ``bootstrap_pending`` until a user exists (:func:`has_live_user`).

Two replicas starting together on one PostgreSQL database cannot both bootstrap: the organisation slug and the
admin email are unique, so the second transaction fails and is reported as "already bootstrapped".
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

import attrs
import sqlalchemy as sa
import trio

from voidllm.auth.passwords import hash_password, random_password
from voidllm.crypto import KeyKind, Keyring, generate_key, hash_key, key_hint
from voidllm.store import tables as t
from voidllm.store.errors import StoreIntegrityError
from voidllm.store.ids import new_id, utcnow
from voidllm.store.store import Store

log = logging.getLogger(__name__)


@attrs.frozen
class BootstrapCredentials:
    """What the operator must copy once: the first API key and the admin's login."""

    api_key: str = attrs.field(repr=False)
    email: str
    password: str = attrs.field(repr=False)

    def banner(self) -> str:
        """The text printed once to stderr after the server listens."""
        rule = "=" * 66
        return "\n".join(
            [
                rule,
                "  BOOTSTRAP COMPLETE — COPY THESE NOW (they are shown only once)",
                f"  API Key:  {self.api_key}",
                f"  Email:    {self.email}",
                f"  Password: {self.password}",
                rule,
                "",
            ]
        )


@attrs.frozen
class BootstrapHint:
    """What a start on an empty store without ``settings.admin_key`` prints once, in place of the banner."""

    def banner(self) -> str:
        rule = "=" * 66
        return "\n".join(
            [
                rule,
                "  NOBODY CAN SIGN IN YET: the store has no user and settings.admin_key is not set.",
                "  To create the first organisation, admin user and API key, either",
                "    - set settings.admin_key (or VOIDLLM_ADMIN_KEY, 32+ characters) and restart, or",
                '    - run  voidllm orgs create --name "My Org"',
                "           voidllm users create --email you@example.com --org my-org --system-admin",
                "  A lost admin password:  voidllm users reset-password --email you@example.com",
                rule,
                "",
            ]
        )


def has_live_user(conn: sa.Connection) -> bool:
    """Whether the store holds at least one user who is not deleted."""
    u = t.users
    return conn.execute(sa.select(u.c.id).where(u.c.deleted_at.is_(None)).limit(1)).first() is not None


@attrs.frozen
class BootstrapPlan:
    org_name: str
    org_slug: str
    admin_email: str


async def bootstrap(store: Store, keyring: Keyring, plan: BootstrapPlan) -> BootstrapCredentials | None:
    """Create the first organisation, admin and key when the store holds no live key.

    Returns:
        The credentials to print, or ``None`` when the store already had keys.
    """
    # Every restart with settings.admin_key still set comes here: a cheap query first, so that the argon2 hash
    # (half a second of CPU and 64 MiB) is only made for a store that needs it. The transaction checks again.
    if await store.run(_has_live_key):
        log.info("bootstrap not needed: the store already has keys")  # every normal restart
        return None
    password = random_password()
    password_hash = await trio.to_thread.run_sync(hash_password, password)
    api_key = generate_key(KeyKind.USER)
    write = partial(
        _bootstrap_tx,
        plan=plan,
        password_hash=password_hash,
        key_hash=hash_key(keyring.hmac_secret, api_key),
        hint=key_hint(api_key),
        now=utcnow(),
    )
    try:
        created = await store.run(write)
    except StoreIntegrityError:
        log.info("bootstrap not needed: another process created the first organisation and admin")
        return None
    if not created:
        log.info("bootstrap not needed: the store already has keys")  # every normal restart
        return None
    log.info("bootstrap created the first organisation, admin user and API key")
    return BootstrapCredentials(api_key=api_key, email=plan.admin_email, password=password)


def _has_live_key(conn: sa.Connection) -> bool:
    return (
        conn.execute(sa.select(t.api_keys.c.id).where(t.api_keys.c.deleted_at.is_(None)).limit(1)).first()
        is not None
    )


def _bootstrap_tx(
    conn: sa.Connection, *, plan: BootstrapPlan, password_hash: str, key_hash: str, hint: str, now: datetime
) -> bool:
    if _has_live_key(conn):
        return False
    org_id, user_id = new_id(), new_id()
    conn.execute(
        t.organizations.insert().values(
            id=org_id, name=plan.org_name, slug=plan.org_slug, created_at=now, updated_at=now
        )
    )
    conn.execute(
        t.users.insert().values(
            id=user_id,
            email=plan.admin_email,
            display_name="Admin",
            password_hash=password_hash,
            auth_provider="local",
            is_system_admin=True,
            created_at=now,
            updated_at=now,
        )
    )
    conn.execute(
        t.org_memberships.insert().values(
            id=new_id(), org_id=org_id, user_id=user_id, role="org_admin", created_at=now, updated_at=now
        )
    )
    conn.execute(
        t.api_keys.insert().values(
            id=new_id(),
            key_hash=key_hash,
            key_hint=hint,
            key_type="user_key",
            name="Bootstrap Admin Key",
            org_id=org_id,
            user_id=user_id,
            created_by=user_id,
            created_at=now,
            updated_at=now,
        )
    )
    return True
