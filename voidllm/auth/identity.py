"""How a key's role is decided (docs/reference/behaviour.md 4); the identity values themselves (``Role``,
``Limits``, ``KeyIdentity``) are in :mod:`voidllm.identity`, below every package that reads them.
"""

from __future__ import annotations

from voidllm.identity import Role

__all__ = ["effective_role"]


def effective_role(key_type: str, *, is_system_admin: bool, org_role: str | None, has_team: bool) -> Role:
    """The role a key acts with (docs/reference/behaviour.md 4).

    User and session keys take the user's role: system admin, else the org membership role. Team keys are
    team admins; service-account keys are team admins when bound to a team, else org admins.
    """
    if key_type in ("user_key", "session_key"):
        if is_system_admin:
            return Role.SYSTEM_ADMIN
        return Role.ORG_ADMIN if org_role == "org_admin" else Role.MEMBER
    if key_type == "team_key":
        return Role.TEAM_ADMIN
    if key_type == "sa_key":
        return Role.TEAM_ADMIN if has_team else Role.ORG_ADMIN
    return Role.MEMBER
