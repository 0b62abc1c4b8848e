"""Invitations to an organisation (docs/reference/behaviour.md 1.5 and 1.6 "Invites").

An org admin invites an email with a role (``member`` or ``org_admin``) and gets a ``vl_iv_`` token once; the
store keeps only its HMAC and hint. The token is valid for ``expires_in_days`` days (1 to 30, 7 unless
given); inviting the same email again replaces the open invite (the old token stops working). Anyone holding
the token may peek at it (email, organisation, role) and redeem it once with a password, which creates the
user and the membership in one transaction.

Redeeming for an email that already has an account answers 409 and leaves the invite open: the token
proves access to an inbox, not to the existing account, so it must not attach that account to an
organisation (nor set its password). An existing account answers its invite itself, signed in: ``accept``
and ``decline`` take the token and are refused (403) unless the caller's key or session belongs to the user
whose email the invite names. Accepting creates the membership with the invite's role; declining uses the
invite up (its token stops working) and lists it as ``declined``. ``GET /me/invites`` shows the caller the
open invites addressed to their email (without tokens). This is how an org admin brings an existing user of
another organisation in: only system admins add existing users directly (:mod:`voidllm.admin.memberships`).
Inviting an email that is already a member of the organisation is refused with 409.

A declined invite is stored without a column of its own: declining sets ``redeemed_at`` and ``expires_at``
to the same instant, which no redeemed invite has (a token is redeemed strictly before it expires).

Invalid, expired, redeemed and declined tokens, and invites of deleted organisations, all answer 410
``gone`` with the same message; its ``reason`` says which, so the invite page can tell the holder what to do:
``expired``, ``used`` (redeemed or declined) or ``invalid`` (no such token: never issued, withdrawn, replaced
by a newer invite, or of a deleted organisation). Only the token's holder learns the reason, and a token
cannot be guessed, so it tells nobody anything about other invites.

Bounds (declared with :mod:`voidllm.bounds`, checked by the admin codec: a 400 naming the field): ``email``
at most 254 characters, ``display_name`` 256, ``password`` 1,024, ``token`` 256.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

import attrs
import sqlalchemy as sa

from voidllm.admin.context import Actor
from voidllm.admin.pages import Page, PageQuery, paginate
from voidllm.admin.services import Services
from voidllm.admin.users import EMAIL, ORG_ROLES, clean_display_name, email_taken, live_user, normalize_email
from voidllm.auth.passwords import validate_password
from voidllm.auth.sessions import hash_password_off_loop
from voidllm.bounds import NAME, TEXT, Bounds, bounded
from voidllm.crypto import KeyKind, generate_key, is_well_formed, key_hint
from voidllm.errors import BadRequestError, ConflictError, GoneError, NotFoundError, PermissionDeniedError
from voidllm.identity import Role
from voidllm.store import tables as t
from voidllm.store.errors import StoreIntegrityError
from voidllm.store.ids import new_id, utcnow

INVITE_DAYS = Bounds(minimum=1, maximum=30)
"""How many days an invite may be valid (``expires_in_days``; 7 unless given)."""
TOKEN = Bounds(max_length=256)
"""An invite token as sent (a real one has 54 characters)."""
_GONE = "invite is invalid, expired or already redeemed"


@attrs.frozen
class InviteCreate:
    email: str = bounded(EMAIL)
    role: str = "member"
    expires_in_days: int = bounded(INVITE_DAYS, default=7)


@attrs.frozen
class InviteCreated:
    """The new invite with its token, shown only this once."""

    id: str
    org_id: str
    email: str
    role: str
    token: str = attrs.field(repr=False)
    token_hint: str
    expires_at: datetime
    created_at: datetime


@attrs.frozen
class InviteOut:
    id: str
    org_id: str
    email: str
    role: str
    token_hint: str
    status: str  # pending | redeemed | declined | expired
    expires_at: datetime
    redeemed_at: datetime | None
    created_at: datetime
    created_by: str | None

    @classmethod
    def from_row(cls, row: Any, now: datetime) -> InviteOut:
        status = _status(row, now)
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            email=row["email"],
            role=row["role"],
            token_hint=row["token_hint"],
            status=status,
            expires_at=row["expires_at"],
            redeemed_at=row["redeemed_at"] if status == "redeemed" else None,
            created_at=row["created_at"],
            created_by=row["created_by"],
        )


@attrs.frozen
class PeekQuery:
    token: str = bounded(TOKEN, default="", repr=False)


@attrs.frozen
class InvitePeek:
    email: str
    org_name: str
    role: str
    expires_at: datetime


@attrs.frozen
class InviteRedeem:
    token: str = bounded(TOKEN, repr=False)
    password: str = bounded(TEXT, repr=False)
    display_name: str = bounded(NAME, default="")


@attrs.frozen
class Redeemed:
    id: str
    email: str
    display_name: str
    org_id: str
    role: str


@attrs.frozen
class InviteAnswer:
    """An existing account's answer to an invite: the token it received."""

    token: str = bounded(TOKEN, repr=False)


@attrs.frozen
class Joined:
    """The membership an accepted invite created."""

    id: str
    org_id: str
    org_name: str
    role: str


@attrs.frozen
class MyInvite:
    """An open invite addressed to the caller's email (the token is only in the invitation itself)."""

    id: str
    org_id: str
    org_name: str
    role: str
    expires_at: datetime
    created_at: datetime


@attrs.frozen
class MyInvites:
    data: list[MyInvite]


def _status(row: Any, now: datetime) -> str:
    if row["redeemed_at"] is not None:
        return "declined" if row["expires_at"] <= row["redeemed_at"] else "redeemed"
    return "expired" if row["expires_at"] <= now else "pending"


def _live_org(conn: sa.Connection, org_id: str) -> Any:
    o = t.organizations
    return conn.execute(sa.select(o).where(o.c.id == org_id, o.c.deleted_at.is_(None))).mappings().first()


# -- org admins --------------------------------------------------------------------------------------


async def create_invite(services: Services, actor: Actor, org_id: str, req: InviteCreate) -> InviteCreated:
    """Invite an email into ``org_id``, replacing any open invite for it."""
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)
    if req.role not in ORG_ROLES:
        raise BadRequestError("role must be member or org_admin")
    email = normalize_email(req.email)
    token = generate_key(KeyKind.INVITE)
    now = utcnow()
    values: dict[str, Any] = dict(
        id=new_id(),
        token_hash=services.keyring.hash_key(token),
        token_hint=key_hint(token),
        org_id=org_id,
        email=email,
        role=req.role,
        expires_at=now + timedelta(days=req.expires_in_days),
        created_by=actor.actor_id,
        created_at=now,
    )
    try:
        await services.store.run(partial(_create_tx, values=values))
    except StoreIntegrityError as exc:  # a concurrent invite for the same email won
        raise ConflictError("an invite for this email is being created") from exc
    return InviteCreated(
        id=values["id"],
        org_id=org_id,
        email=email,
        role=req.role,
        token=token,
        token_hint=values["token_hint"],
        expires_at=values["expires_at"],
        created_at=now,
    )


def _create_tx(conn: sa.Connection, *, values: dict[str, Any]) -> None:
    if _live_org(conn, values["org_id"]) is None:
        raise NotFoundError("organization not found")
    user = live_user(conn, t.users.c.email == values["email"])
    m = t.org_memberships
    if (
        user is not None
        and conn.execute(
            sa.select(m.c.id).where(m.c.user_id == user["id"], m.c.org_id == values["org_id"])
        ).first()
    ):
        raise ConflictError("this user is already a member of the organization")
    i = t.invite_tokens
    open_for_email = (i.c.org_id == values["org_id"], i.c.email == values["email"], i.c.redeemed_at.is_(None))
    conn.execute(i.delete().where(*open_for_email))
    conn.execute(i.insert().values(**values))


async def list_invites(services: Services, actor: Actor, org_id: str, page: PageQuery) -> Page[InviteOut]:
    """The organisation's invites, open and redeemed, with their status."""
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)
    now = utcnow()
    i = t.invite_tokens
    query = sa.select(i).where(i.c.org_id == org_id)
    return await services.store.run(
        lambda conn: paginate(conn, query, i.c.id, page, lambda row: InviteOut.from_row(row, now))
    )


async def delete_invite(services: Services, actor: Actor, org_id: str, invite_id: str) -> None:
    """Withdraw an invite (its token stops working)."""
    actor.require(Role.ORG_ADMIN)
    actor.require_org(org_id)
    i = t.invite_tokens
    delete = i.delete().where(i.c.id == invite_id, i.c.org_id == org_id)
    if (await services.store.run(lambda conn: conn.execute(delete).rowcount)) == 0:
        raise NotFoundError("invite not found")


# -- token holders (public) --------------------------------------------------------------------------


def _gone(reason: str) -> GoneError:
    """The 410 of an unusable token, with why (module docstring)."""
    return GoneError(_GONE, extra={"reason": reason})


_GONE_REASONS = {"expired": "expired", "redeemed": "used", "declined": "used"}


def _open_invite(conn: sa.Connection, token_hash: str, now: datetime) -> tuple[Any, Any]:
    i = t.invite_tokens
    invite = conn.execute(sa.select(i).where(i.c.token_hash == token_hash)).mappings().first()
    org = _live_org(conn, invite["org_id"]) if invite is not None else None
    if invite is None or org is None:
        raise _gone("invalid")
    status = _status(invite, now)
    if status != "pending":
        raise _gone(_GONE_REASONS[status])
    return invite, org


def _token_hash(services: Services, token: str) -> str:
    if not token:
        raise BadRequestError("token is required")
    if KeyKind.from_key(token) is not KeyKind.INVITE or not is_well_formed(token):
        raise _gone("invalid")
    return services.keyring.hash_key(token)


async def peek_invite(services: Services, token: str) -> InvitePeek:
    """What an invite token offers, for the sign-up page."""
    token_hash = _token_hash(services, token)
    invite, org = await services.store.run(partial(_open_invite, token_hash=token_hash, now=utcnow()))
    return InvitePeek(
        email=invite["email"], org_name=org["name"], role=invite["role"], expires_at=invite["expires_at"]
    )


async def redeem_invite(services: Services, req: InviteRedeem) -> Redeemed:
    """Create the invited user with ``req.password`` and their membership; the token is used up."""
    token_hash = _token_hash(services, req.token)
    validate_password(req.password)
    name = clean_display_name(req.display_name)
    await services.store.run(partial(_open_invite, token_hash=token_hash, now=utcnow()))  # 410 before hashing
    password_hash = await hash_password_off_loop(req.password)
    write = partial(_redeem_tx, token_hash=token_hash, name=name, password_hash=password_hash, now=utcnow())
    try:
        return await services.store.run(write)
    except StoreIntegrityError as exc:  # the email was registered concurrently
        raise ConflictError("a user with this email already exists") from exc


def _redeem_tx(
    conn: sa.Connection, *, token_hash: str, name: str, password_hash: str, now: datetime
) -> Redeemed:
    invite, _ = _open_invite(conn, token_hash, now)
    i = t.invite_tokens
    claimed = conn.execute(
        i.update().where(i.c.id == invite["id"], i.c.redeemed_at.is_(None)).values(redeemed_at=now)
    ).rowcount
    if claimed != 1:  # a concurrent redeem won
        raise _gone("used")
    if email_taken(conn, invite["email"]):
        raise ConflictError("a user with this email already exists")
    user_id = new_id()
    conn.execute(
        t.users.insert().values(
            id=user_id,
            email=invite["email"],
            display_name=name,
            password_hash=password_hash,
            auth_provider="local",
            is_system_admin=False,
            created_at=now,
            updated_at=now,
        )
    )
    conn.execute(
        t.org_memberships.insert().values(
            id=new_id(),
            org_id=invite["org_id"],
            user_id=user_id,
            role=invite["role"],
            created_at=now,
            updated_at=now,
        )
    )
    return Redeemed(
        id=user_id, email=invite["email"], display_name=name, org_id=invite["org_id"], role=invite["role"]
    )


# -- existing accounts (signed in) --------------------------------------------------------------------


def _addressee(conn: sa.Connection, actor: Actor, invite: Any) -> str:
    """The calling user's id; 403 unless the invite names the caller's email."""
    user = live_user(conn, t.users.c.id == actor.user_id) if actor.user_id is not None else None
    if user is None or user["email"] != invite["email"]:
        raise PermissionDeniedError("this invite is addressed to another account")
    return str(user["id"])


def _use_up(conn: sa.Connection, invite: Any, **values: Any) -> None:
    """Mark the open invite used (410 when a concurrent answer or redeem got there first)."""
    i = t.invite_tokens
    used = i.update().where(i.c.id == invite["id"], i.c.redeemed_at.is_(None)).values(**values)
    if conn.execute(used).rowcount != 1:
        raise _gone("used")


async def accept_invite(services: Services, actor: Actor, req: InviteAnswer) -> Joined:
    """Join the invite's organisation with its role, as the signed-in user the invite is addressed to."""
    token_hash = _token_hash(services, req.token)
    write = partial(_accept_tx, actor=actor, token_hash=token_hash, now=utcnow())
    try:
        return await services.store.run(write)
    except StoreIntegrityError as exc:  # a concurrent add of the same membership
        raise ConflictError("you are already a member of this organization") from exc


def _accept_tx(conn: sa.Connection, *, actor: Actor, token_hash: str, now: datetime) -> Joined:
    invite, org = _open_invite(conn, token_hash, now)
    user_id = _addressee(conn, actor, invite)
    m = t.org_memberships
    if conn.execute(sa.select(m.c.id).where(m.c.user_id == user_id, m.c.org_id == org["id"])).first():
        raise ConflictError("you are already a member of this organization")
    _use_up(conn, invite, redeemed_at=now)
    membership_id = new_id()
    conn.execute(
        m.insert().values(
            id=membership_id,
            org_id=org["id"],
            user_id=user_id,
            role=invite["role"],
            created_at=now,
            updated_at=now,
        )
    )
    return Joined(id=membership_id, org_id=org["id"], org_name=org["name"], role=invite["role"])


async def decline_invite(services: Services, actor: Actor, req: InviteAnswer) -> None:
    """Refuse the invite, as the signed-in user it is addressed to; its token stops working."""
    token_hash = _token_hash(services, req.token)
    await services.store.run(partial(_decline_tx, actor=actor, token_hash=token_hash, now=utcnow()))


def _decline_tx(conn: sa.Connection, *, actor: Actor, token_hash: str, now: datetime) -> None:
    invite, _ = _open_invite(conn, token_hash, now)
    _addressee(conn, actor, invite)
    _use_up(conn, invite, redeemed_at=now, expires_at=now)  # the mark of a declined invite (module docstring)


async def my_invites(services: Services, actor: Actor) -> MyInvites:
    """The open invites addressed to the calling user's email, oldest first."""
    user_id = actor.require_user()
    return await services.store.run(partial(_my_invites, user_id=user_id, now=utcnow()))


def _my_invites(conn: sa.Connection, *, user_id: str, now: datetime) -> MyInvites:
    user = live_user(conn, t.users.c.id == user_id)
    if user is None:
        raise NotFoundError("user not found")
    i, o = t.invite_tokens, t.organizations
    rows = conn.execute(
        sa.select(i, o.c.name.label("org_name"))
        .select_from(i.join(o, o.c.id == i.c.org_id))
        .where(i.c.email == user["email"], i.c.redeemed_at.is_(None), i.c.expires_at > now)
        .where(o.c.deleted_at.is_(None))
        .order_by(i.c.created_at, i.c.id)
    ).mappings()
    return MyInvites(
        data=[
            MyInvite(
                id=row["id"],
                org_id=row["org_id"],
                org_name=row["org_name"],
                role=row["role"],
                expires_at=row["expires_at"],
                created_at=row["created_at"],
            )
            for row in rows
        ]
    )
