"""Who performs an admin action, and the permission checks every use case applies (docs/reference/behaviour.md
1.6 and 4)."""

from __future__ import annotations

import attrs

from voidllm.errors import BadRequestError, PermissionDeniedError
from voidllm.identity import KeyIdentity, Role


@attrs.frozen
class Actor:
    """The caller of a use case: the key it authenticated with, plus request metadata for the audit log.

    The CLI acts as :meth:`system` (a system administrator without a key).
    """

    identity: KeyIdentity | None
    ip: str | None = None
    request_id: str | None = None
    anonymous: bool = False

    @classmethod
    def system(cls) -> Actor:
        """The operator at the command line: every permission, no key, no organisation."""
        return cls(identity=None)

    @classmethod
    def unauthenticated(cls, ip: str | None, request_id: str | None) -> Actor:
        """A caller of a public route (redeeming an invite), for the audit log only: no permissions."""
        return cls(identity=None, ip=ip, request_id=request_id, anonymous=True)

    @property
    def role(self) -> Role:
        if self.anonymous:
            return Role.MEMBER
        return Role.SYSTEM_ADMIN if self.identity is None else self.identity.role

    @property
    def is_system_admin(self) -> bool:
        return self.role >= Role.SYSTEM_ADMIN

    @property
    def org_id(self) -> str | None:
        return None if self.identity is None else self.identity.org_id

    @property
    def user_id(self) -> str | None:
        return None if self.identity is None else self.identity.user_id

    @property
    def team_id(self) -> str | None:
        return None if self.identity is None else self.identity.team_id

    @property
    def key_id(self) -> str | None:
        return None if self.identity is None else self.identity.key_id

    @property
    def actor_id(self) -> str | None:
        """The user or service account acting (audit ``actor_id``)."""
        if self.identity is None:
            return None
        return self.identity.user_id or self.identity.service_account_id

    @property
    def actor_type(self) -> str:
        """``user``, ``service_account`` or ``system`` (audit ``actor_type``)."""
        if self.identity is None:
            return "anonymous" if self.anonymous else "system"
        if self.identity.user_id:
            return "user"
        if self.identity.service_account_id:
            return "service_account"
        return "system"

    def require(self, role: Role) -> None:
        """Refuse with 403 ``forbidden`` unless the actor's role is at least ``role``."""
        if self.role < role:
            raise PermissionDeniedError("insufficient permissions")

    def require_org(self, org_id: str) -> None:
        """Refuse with 403 unless the actor is a system admin or acts for ``org_id``."""
        if not self.is_system_admin and self.org_id != org_id:
            raise PermissionDeniedError("access to this organization is denied")

    def require_user(self) -> str:
        """The acting user's id; 400 when the key is not a user's (team, service-account key)."""
        if self.user_id is None:
            raise BadRequestError("this endpoint needs a user key")
        return self.user_id
