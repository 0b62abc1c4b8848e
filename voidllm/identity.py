"""Who a request is: the identity an API key resolves to, with its role and the limits that apply to it.

Plain frozen values below every package that reads them: the key cache (:mod:`voidllm.auth`) builds them,
the limiters (:mod:`voidllm.limits`), the catalog (:mod:`voidllm.routing`), the proxy, the MCP gateway and
the admin use cases read them. A key's merged request and guard policies (:mod:`voidllm.request_policy`,
:mod:`voidllm.guard`) ride along, ``None`` when no scope has one. How a key's role is decided is auth policy:
:func:`voidllm.auth.identity.effective_role`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from voidllm.guard import GuardPolicy
    from voidllm.request_policy import RequestPolicy


class Role(enum.IntEnum):
    """The four roles, ordered: a higher role passes every gate of a lower one."""

    MEMBER = 0
    TEAM_ADMIN = 1
    ORG_ADMIN = 2
    SYSTEM_ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@attrs.frozen
class Limits:
    """Request and token limits of one scope; 0 means unlimited."""

    requests_per_minute: int = 0
    requests_per_day: int = 0
    daily_token_limit: int = 0
    monthly_token_limit: int = 0

    @classmethod
    def from_row(cls, row: Mapping[Any, Any], prefix: str = "") -> Limits:
        """The limits in ``row``'s ``{prefix}requests_per_minute``... columns (a store row, whose keys may
        also be column objects, hence ``Mapping[Any, Any]``)."""
        return cls(
            requests_per_minute=int(row[f"{prefix}requests_per_minute"] or 0),
            requests_per_day=int(row[f"{prefix}requests_per_day"] or 0),
            daily_token_limit=int(row[f"{prefix}daily_token_limit"] or 0),
            monthly_token_limit=int(row[f"{prefix}monthly_token_limit"] or 0),
        )


UNLIMITED = Limits()


@attrs.frozen
class KeyIdentity:
    """A live API key as the key cache holds it: everything the hot path needs, no secret material."""

    key_id: str
    key_type: str
    name: str
    role: Role
    org_id: str
    team_id: str | None = None
    user_id: str | None = None
    service_account_id: str | None = None
    expires_at: datetime | None = None
    key_limits: Limits = UNLIMITED
    team_limits: Limits = UNLIMITED
    org_limits: Limits = UNLIMITED
    policy: RequestPolicy | None = None
    """The merged request policy of the key's organisation, team and key (``None``: none restricts it)."""
    guard: GuardPolicy | None = None
    """The merged prompt guard policy of the key's organisation, team and key (``None``: none is set)."""

    def expired(self, now: datetime) -> bool:
        """Whether the key's expiry has passed at ``now`` (an aware UTC datetime)."""
        return self.expires_at is not None and self.expires_at <= now
