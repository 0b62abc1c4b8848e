"""The management API under ``/api/v1``: route modules declare their routes on
:data:`voidllm.web.api.framework.api` when imported here."""

from voidllm.web.api import (  # noqa: F401  (imported for their route declarations)
    access,
    audit,
    auth,
    export,
    incidents,
    invites,
    keys,
    mcp_servers,
    me,
    models,
    orgs,
    policies,
    service_accounts,
    sso,
    teams,
    usage,
    users,
)
from voidllm.web.api.framework import api

__all__ = ["api"]
