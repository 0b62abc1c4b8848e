"""Routes of the management API: the request and guard policies of organisations, teams, keys and models
(:mod:`voidllm.admin.policies`: the documents, who may read and change them, how changes propagate)."""

from __future__ import annotations

import re
from typing import Any

from voidllm.admin import policies
from voidllm.admin.policies import PolicyIn, PolicyOut
from voidllm.identity import Role
from voidllm.web.api.framework import Call, api

TAG = "policies"
ORG = "/orgs/<org_id>/policy"
TEAM = "/orgs/<org_id>/teams/<team_id>/policy"
KEY = "/orgs/<org_id>/keys/<key_id>/policy"
MODEL = "/models/<model_id>/policy"
DOCUMENT = (
    "Body: request (params: allow, deny, bounds; required_headers; allowed_origins) and guard (detectors, "
    "responses), each an object or null; see the README, Request policy. An invalid document is a 400 naming "
    "its path (field), e.g. request.params.bounds.max_tokens.max."
)


def _declare(
    scope_type: str,
    path: str,
    *,
    noun: str,
    read: tuple[Role, tuple[str, ...]],
    change: tuple[Role, tuple[str, ...]],
    effective: bool = False,
    put_note: str = "",
) -> None:
    """Declare the GET, PUT and DELETE routes of one scope's policies on ``path``: handlers named
    ``get_/put_/delete_{scope_type}_policy`` passing the path's ids, in order, to
    :mod:`voidllm.admin.policies`. ``read`` and ``change`` are the role and ``allow=`` of reading and of
    changing them."""
    names = re.findall(r"<(\w+)>", path)
    name = f"{scope_type}_policy"

    async def get(call: Call, **ids: str) -> PolicyOut:
        return await policies.get(call.services, call.actor, scope_type, *(ids[n] for n in names))

    async def put(call: Call, body: PolicyIn, **ids: str) -> PolicyOut:
        return await policies.put(call.services, call.actor, scope_type, *(ids[n] for n in names), body=body)

    async def delete(call: Call, **ids: str) -> None:
        await policies.delete(call.services, call.actor, scope_type, *(ids[n] for n in names))

    for handler, verb in ((get, "get"), (put, "put"), (delete, "delete")):
        handler.__name__ = handler.__qualname__ = f"{verb}_{name}"
    get.__doc__ = f"Get {noun} policies" + (", with the effective ones" if effective else "")
    put.__doc__ = f"Set {noun} policies"
    delete.__doc__ = f"Remove {noun} policies"
    changing: dict[str, Any] = {"role": change[0], "allow": change[1], "tag": TAG}
    api.get(path, response=PolicyOut, role=read[0], allow=read[1], tag=TAG)(get)
    api.put(
        path,
        body=PolicyIn,
        response=PolicyOut,
        audit=("update", "policy"),
        description=DOCUMENT + put_note,
        **changing,
    )(put)
    api.delete(path, status=204, audit=("delete", "policy"), **changing)(delete)


_SYSTEM_ADMIN = (Role.SYSTEM_ADMIN, ("system_admin",))
_ORG_ADMIN = (Role.ORG_ADMIN, ("org_admin",))
_TEAM_ADMIN = (Role.MEMBER, ("team_admin",))

_declare("org", ORG, noun="an organization's", read=_ORG_ADMIN, change=_SYSTEM_ADMIN)
_declare("team", TEAM, noun="a team's", read=_TEAM_ADMIN, change=_ORG_ADMIN, effective=True)
_declare(
    "key",
    KEY,
    noun="an API key's",
    read=(Role.MEMBER, ("team_admin", "holder")),
    change=_TEAM_ADMIN,
    effective=True,
    put_note=" Set by the admins above the key, never by its holder below org admin.",
)
_declare(
    "model",
    MODEL,
    noun="a model's",
    read=_SYSTEM_ADMIN,
    change=_SYSTEM_ADMIN,
    put_note=" A model's request policy applies its params only.",
)
