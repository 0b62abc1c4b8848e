"""Management commands of the CLI: ``voidllm orgs create``, ``voidllm users create | reset-password`` and
``voidllm keys create | list | revoke | rotate``.

``users reset-password`` is the way back in when the bootstrap password is lost: it sets a new password
(generated and printed once, or read from standard input) and ends the user's sign-in sessions.

They run the same use cases as the admin API (:mod:`voidllm.admin`), as :meth:`Actor.system` (the operator
at the command line acts as a system administrator), against the store of the configuration. A change is
announced to running gateways as the admin API announces it (over Redis with ``redis.enabled``, else
through the store's change notices), so they apply it within a second.

Organisations, users and teams may be named by id or by slug / email. Output is a short text block, or
JSON with ``--json``. A new key or a generated password is printed once and never stored in plain text.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import orjson
import sqlalchemy as sa

from voidllm.admin import keys as keys_uc
from voidllm.admin import orgs as orgs_uc
from voidllm.admin import users as users_uc
from voidllm.admin.context import Actor
from voidllm.admin.pages import MAX_LIMIT, PageQuery
from voidllm.admin.services import Services
from voidllm.admin.tenancy import slug_from
from voidllm.auth.cache import KeyCache
from voidllm.auth.passwords import random_password
from voidllm.bus import Bus, StoreBus
from voidllm.codec import converter
from voidllm.config import Config
from voidllm.config.units import parse_duration
from voidllm.crypto import Keyring
from voidllm.errors import GatewayError, NotFoundError
from voidllm.store import tables as t
from voidllm.store.migrate import migrate
from voidllm.store.store import Store, open_store

LIMIT_OPTIONS = ("requests_per_minute", "requests_per_day", "daily_token_limit", "monthly_token_limit")


def add_commands(commands: Any) -> None:
    """Add the ``orgs``, ``users`` and ``keys`` command groups to the CLI's subparsers."""
    orgs = _group(commands, "orgs", "manage organisations")
    create = _command(orgs, "create", "create an organisation")
    create.add_argument("--name", required=True)
    create.add_argument("--slug", default="", help="URL slug (default: derived from the name)")
    create.add_argument("--timezone", default="UTC")
    _limit_options(create)

    users = _group(commands, "users", "manage users")
    create = _command(users, "create", "create a user (the password is generated and printed unless given)")
    create.add_argument("--email", required=True)
    create.add_argument("--org", required=True, help="organisation id or slug")
    create.add_argument("--role", default="member", choices=("member", "org_admin"))
    create.add_argument("--display-name", default="")
    create.add_argument("--system-admin", action="store_true", help="make the user a system administrator")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    reset = _command(users, "reset-password", "set a new password (generated and printed once unless given)")
    reset.add_argument("--email", required=True, help="the user's email (or id)")
    reset.add_argument(
        "--password-stdin", action="store_true", help="read the new password from standard input"
    )

    keys = _group(commands, "keys", "manage API keys")
    create = _command(keys, "create", "create an API key (printed once)")
    create.add_argument("--org", required=True, help="organisation id or slug")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--type", dest="key_type", default="user_key", choices=("user_key", "team_key", "sa_key")
    )
    create.add_argument("--user", help="user id or email (user keys)")
    create.add_argument("--team", help="team id or slug (team keys)")
    create.add_argument("--service-account", help="service account id (service-account keys)")
    create.add_argument("--expires-in", help="lifetime, e.g. 30d or 12h (default: no expiry)")
    _limit_options(create)
    listing = _command(keys, "list", "list the API keys of an organisation")
    listing.add_argument("--org", required=True, help="organisation id or slug")
    revoke = _command(keys, "revoke", "revoke an API key at once")
    revoke.add_argument("key_id")
    rotate = _command(keys, "rotate", "issue a replacement key; the old one works for 24 more hours at most")
    rotate.add_argument("key_id")


def _group(commands: Any, name: str, help_text: str) -> Any:
    parser = commands.add_parser(name, help=help_text)
    return parser.add_subparsers(dest="action", required=True)


def _command(group: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(name, help=help_text)
    parser.add_argument("--config", help="path to voidllm.yaml")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _limit_options(parser: argparse.ArgumentParser) -> None:
    for name in LIMIT_OPTIONS:
        parser.add_argument(
            f"--{name.replace('_', '-')}", dest=name, type=int, default=0, help="0 = unlimited"
        )


async def run_command(config: Config, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run one management command; returns the exit code (1 with a message on stderr when it is refused)."""
    handler = _HANDLERS[(args.command, args.action)]
    try:
        async with open_services(config) as services:
            result = await handler(services, args)
    except GatewayError as exc:
        print(f"voidllm: {exc.message}", file=sys.stderr)
        return 1
    _print(result, args.json, out)
    return 0


@asynccontextmanager
async def open_services(config: Config) -> AsyncIterator[Services]:
    """The use cases' services over the configured store (migrated first), for one command."""
    db = config.database
    keyring = Keyring.from_setting(config.settings.encryption_key)
    async with open_store(db.driver, db.dsn) as store:
        await migrate(store)
        async with _open_bus(config, store) as bus:
            yield Services(
                config=config, store=store, keyring=keyring, keys=KeyCache(keyring.hmac_secret), bus=bus
            )


@asynccontextmanager
async def _open_bus(config: Config, store: Store) -> AsyncIterator[Bus]:
    """Redis pub/sub with ``redis.enabled``, else the store's change notices: running gateways see what a
    command changed within a second either way."""
    if not config.redis.enabled:
        yield StoreBus(store, f"cli-{secrets.token_hex(4)}")
        return
    from voidllm.redis.bus import RedisBus
    from voidllm.redis.client import open_redis
    from voidllm.store.ids import new_id

    redis = config.redis
    async with open_redis(redis.url, command_timeout=redis.timeout, pool_size=1) as client:
        yield RedisBus(client, redis.key_prefix, f"cli-{new_id()}")


# -- commands ---------------------------------------------------------------------------------------------

Handler = Callable[[Services, argparse.Namespace], Any]


async def _orgs_create(services: Services, args: argparse.Namespace) -> Any:
    req = orgs_uc.OrgCreate(
        name=args.name, slug=args.slug or slug_from(args.name), timezone=args.timezone, **_limits(args)
    )
    return await orgs_uc.create(services, Actor.system(), req)


async def _users_create(services: Services, args: argparse.Namespace) -> Any:
    org_id = await _org_id(services, args.org)
    generated = not args.password_stdin
    password = random_password() if generated else sys.stdin.readline().rstrip("\n")
    req = users_uc.UserCreate(
        email=args.email,
        password=password,
        display_name=args.display_name,
        is_system_admin=args.system_admin,
        org_id=org_id,
        role=args.role,
    )
    user = await users_uc.create_user(services, Actor.system(), req)
    shown = converter.unstructure(user)
    if generated:
        shown["password"] = password  # printed once; only its hash is stored
    return shown


async def _users_reset_password(services: Services, args: argparse.Namespace) -> Any:
    user_id = await _user_id(services, args.email.strip().lower())
    generated = not args.password_stdin
    password = random_password() if generated else sys.stdin.readline().rstrip("\n")
    user = await users_uc.update_user(
        services, Actor.system(), user_id, users_uc.UserUpdate(password=password)
    )
    shown = {"id": user.id, "email": user.email}
    if generated:
        shown["password"] = password  # printed once; only its hash is stored
    return shown


async def _keys_create(services: Services, args: argparse.Namespace) -> Any:
    org_id = await _org_id(services, args.org)
    expires_at = None
    if args.expires_in:
        expires_at = datetime.now(UTC) + timedelta(seconds=parse_duration(args.expires_in))
    req = keys_uc.KeyCreate(
        name=args.name,
        key_type=args.key_type,
        user_id=await _user_id(services, args.user) if args.user else None,
        team_id=await _team_id(services, org_id, args.team) if args.team else None,
        service_account_id=args.service_account,
        expires_at=expires_at,
        **_limits(args),
    )
    return await keys_uc.create(services, Actor.system(), org_id, req)


async def _keys_list(services: Services, args: argparse.Namespace) -> Any:
    org_id = await _org_id(services, args.org)
    found: list[Any] = []
    cursor = None
    while True:
        page = await keys_uc.list_keys(
            services, Actor.system(), org_id, PageQuery(limit=MAX_LIMIT, cursor=cursor)
        )
        found.extend(page.data)
        if not page.has_more:
            return found
        cursor = page.next_cursor


async def _keys_revoke(services: Services, args: argparse.Namespace) -> Any:
    org_id = await _org_of_key(services, args.key_id)
    await keys_uc.delete(services, Actor.system(), org_id, args.key_id)
    return {"id": args.key_id, "revoked": True}


async def _keys_rotate(services: Services, args: argparse.Namespace) -> Any:
    org_id = await _org_of_key(services, args.key_id)
    return await keys_uc.rotate(services, Actor.system(), org_id, args.key_id)


_HANDLERS: dict[tuple[str, str], Handler] = {
    ("orgs", "create"): _orgs_create,
    ("users", "create"): _users_create,
    ("users", "reset-password"): _users_reset_password,
    ("keys", "create"): _keys_create,
    ("keys", "list"): _keys_list,
    ("keys", "revoke"): _keys_revoke,
    ("keys", "rotate"): _keys_rotate,
}


def _limits(args: argparse.Namespace) -> dict[str, int]:
    return {name: getattr(args, name) for name in LIMIT_OPTIONS}


# -- names to ids -----------------------------------------------------------------------------------------


async def _lookup(services: Services, query: sa.Select[Any], what: str, given: str) -> str:
    found = await services.store.run(lambda conn: conn.execute(query).scalar())
    if found is None:
        raise NotFoundError(f"no {what} called {given!r}")
    return str(found)


async def _org_id(services: Services, given: str) -> str:
    o = t.organizations
    query = sa.select(o.c.id).where(sa.or_(o.c.id == given, o.c.slug == given), o.c.deleted_at.is_(None))
    return await _lookup(services, query, "organisation", given)


async def _user_id(services: Services, given: str) -> str:
    u = t.users
    query = sa.select(u.c.id).where(sa.or_(u.c.id == given, u.c.email == given), u.c.deleted_at.is_(None))
    return await _lookup(services, query, "user", given)


async def _team_id(services: Services, org_id: str, given: str) -> str:
    tm = t.teams
    query = sa.select(tm.c.id).where(
        tm.c.org_id == org_id, sa.or_(tm.c.id == given, tm.c.slug == given), tm.c.deleted_at.is_(None)
    )
    return await _lookup(services, query, "team", given)


async def _org_of_key(services: Services, key_id: str) -> str:
    k = t.api_keys
    query = sa.select(k.c.org_id).where(k.c.id == key_id, k.c.deleted_at.is_(None))
    return await _lookup(services, query, "API key", key_id)


# -- output -----------------------------------------------------------------------------------------------


def _print(result: Any, as_json: bool, out: TextIO) -> None:
    data = result if isinstance(result, dict) else converter.unstructure(result)
    if as_json:
        out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if isinstance(data, list):
        for item in data:
            out.write(_line(item) + "\n")
        if not data:
            out.write("(none)\n")
        return
    for name, value in _flatten(data):
        out.write(f"{name}: {value}\n")


def _line(item: dict[str, Any]) -> str:
    expires = item.get("expires_at") or "never"
    return f"{item['id']}  {item['key_hint']}  {item['key_type']:<9} {item['name']}  (expires {expires})"


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for name, value in data.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{name}."))
        elif value is not None:
            rows.append((prefix + name, value))
    return rows
