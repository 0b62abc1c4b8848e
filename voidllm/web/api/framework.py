"""Declared routes of the management API (``/api/v1``): the one table that the HTTP layer, the RBAC gate,
the audit log and the OpenAPI document are all generated from.

A route module declares each route with :data:`api` and writes a thin handler: it receives a :class:`Call`
(services, acting :class:`~voidllm.admin.context.Actor`, request id) plus its path parameters, ``body`` (an
attrs instance structured from the JSON body) and ``query`` (an attrs instance from the query string), calls
one use case, and returns an attrs object (rendered as JSON), ``None`` (empty body), a :class:`Streamed`
body (a download such as a CSV export; declare its media type with ``produces=``) or a :class:`Redirect`
(declare ``status=302``)::

    @api.post("/orgs", body=OrgCreate, response=OrgOut, status=201, role=Role.SYSTEM_ADMIN,
              tag="organizations", summary="Create an organization", audit=("create", "organization"))
    async def create_org(call: Call, body: OrgCreate) -> OrgOut:
        return await orgs.create(call.services, call.actor, body)

Every route except ``public=True`` ones authenticates ``Authorization: Bearer`` or ``X-Api-Key`` against the
key cache (no database read), or, when the request has neither header, the browser's session cookie; a
cookie-authenticated request that changes state must pass the CSRF check (:mod:`voidllm.web.browser`). A
handler adds cookies to its answer with ``call.set_cookies``. ``role`` is the coarse gate of
docs/reference/behaviour.md 1.6 (403 ``forbidden`` "insufficient permissions"); scope checks (org boundaries,
team membership) belong to the use case. Successful mutations with ``audit`` set are handed to the audit sink,
described by their body (or, without one, by their query string's fields).
Errors are :class:`~voidllm.errors.GatewayError` subclasses rendered in the envelope by
``voidllm.web.errors``.

**Who may call.** Every route that is not public states it with ``allow=``: the relations of a caller to the
route's resource that let it act (:data:`RELATIONS`), e.g. ``allow=("team_admin", "holder(name)")`` on a
key. A relation admits the ones above it on the chain ``member`` < ``team_member`` < ``team_admin`` <
``org_admin`` < ``system_admin`` (``account_admin`` < ``system_admin``); ``self`` and ``holder`` stand
apart. A relation in parentheses-qualified form, ``relation(what)``, may use only that part of the route
(fields or bodies named by ``what``), e.g. an org admin renames its organisation but does not set its limits.
Everyone else is refused with 403 or 404 and nothing changes. ``users_only=True`` says that only user keys
and sessions may call (team and service-account keys are refused). The statement is documentation
(OpenAPI ``x-voidllm-allow``) and the specification of ``tests/test_rbac.py``, which calls every route as
every kind of caller and checks it; ``role`` must never refuse a caller that ``allow`` admits. The use cases
enforce the rules; the statement does not.

Hand-written rather than quart-schema because the stack's models are attrs classes structured by cattrs
(quart-schema validates pydantic and msgspec models only).
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

import attrs
from quart import Blueprint, Response, current_app, request

from voidllm.admin.context import Actor
from voidllm.admin.services import AuditEntry, Services
from voidllm.asgi import SCOPE_KEY, header
from voidllm.codec import parse_json_object, reject_nulls, render, structure, wire_name
from voidllm.errors import ClientRequestError
from voidllm.identity import KeyIdentity, Role
from voidllm.web.browser import BrowserPolicy, authenticate_cookie
from voidllm.web.state import app_state

PREFIX = "/api/v1"
POLICY_KEY = "voidllm.browser"
"""Where the app keeps its :class:`~voidllm.web.browser.BrowserPolicy` (``app.extensions``)."""

Handler = Callable[..., Awaitable[Any]]

RELATIONS: dict[str, str] = {
    "system_admin": "a system administrator",
    "org_admin": "an org admin of the resource's organisation (a user whose membership role there is "
    "org_admin, or an unbound service-account key of it); for a user account: of one of the user's "
    "organisations",
    "account_admin": "for a user account: an org admin of every organisation the user belongs to (a user "
    "without any membership: system admins only)",
    "team_admin": "an admin of the resource's team (a user whose team role is team_admin, the team's key, a "
    "service-account key bound to the team); for a resource of no team: an org admin; for a key: an admin "
    "above it, never its holder below org admin",
    "team_member": "a member of the resource's team (its users, the keys bound to it); for a resource of no "
    "team: a member",
    "member": "any key of the resource's organisation; on a route without one: any caller, within its own "
    "scope",
    "self": "the calling user itself: its own account, its own sessions (user keys and sessions only)",
    "holder": "the user a key belongs to (with any of its keys or sessions)",
}
"""The relations ``allow=`` names, and what each means (see the module docstring for the chain)."""


@attrs.frozen
class Grant:
    """One entry of ``allow=``: a relation, and what of the route it may use (``None``: all of it)."""

    relation: str
    only: str | None = None

    @classmethod
    def parse(cls, text: str) -> Grant:
        """``"team_admin"`` or ``"team_admin(name, slug)"``; :exc:`ValueError` for an unknown relation."""
        relation, _, rest = text.partition("(")
        relation = relation.strip()
        if relation not in RELATIONS:
            raise ValueError(f"unknown relation {relation!r} in allow= (one of: {', '.join(RELATIONS)})")
        if rest and not rest.endswith(")"):
            raise ValueError(f"allow= entry {text!r}: a qualifier is written relation(what)")
        only = rest[:-1].strip() if rest else ""
        return cls(relation, only or None)

    def __str__(self) -> str:
        return self.relation if self.only is None else f"{self.relation}({self.only})"


@attrs.frozen
class ApiRoute:
    """One declared route; ``path`` is a Quart rule below :data:`PREFIX`, e.g. ``/orgs/<org_id>``."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: Any = None
    query: Any = None
    response: Any = None
    status: int = 200
    public: bool = False
    role: Role | None = None
    allow: tuple[Grant, ...] = ()  # who may call; required unless public (tests/test_rbac.py)
    users_only: bool = False
    audit: tuple[str, str] | None = None  # (action, resource_type) recorded on success
    description: str = ""
    produces: str | None = None  # media type of a Streamed success body (instead of JSON)

    @property
    def name(self) -> str:
        return self.handler.__name__

    @property
    def full_path(self) -> str:
        return PREFIX + self.path


@attrs.frozen
class Streamed:
    """A handler's result sent as a download: ``chunks`` are written as they come, with the client's reading
    pace as backpressure, and without Quart's response timeout (a large export runs for minutes).

    Resource handling: the response closes ``chunks`` when it ends, also when the client disconnects. An
    error raised by ``chunks`` after the status line was sent aborts the connection, so the client sees an
    incomplete body rather than a truncated one that looks whole.
    """

    content_type: str
    filename: str
    chunks: AsyncIterator[bytes]


@attrs.frozen
class Redirect:
    """A handler's result sent as a redirect (the route's ``status``, 302) to ``location``, without a body:
    the steps of a browser's single sign-on."""

    location: str


@attrs.define
class Call:
    """What a handler gets besides its parameters.

    A public route that is audited names its actor by setting ``audit_actor`` (login: the new session);
    otherwise it is recorded as unauthenticated. ``set_cookies`` are sent as ``Set-Cookie`` headers with
    the answer (also an empty one).
    """

    services: Services
    actor_or_none: Actor | None
    request_id: str | None
    ip: str | None
    route: ApiRoute
    audit_actor: Actor | None = None
    scope: Mapping[str, Any] = attrs.Factory(dict)  # the request's ASGI scope
    policy: BrowserPolicy = BrowserPolicy()
    set_cookies: list[str] = attrs.Factory(list)

    @property
    def secure(self) -> bool:
        """Whether the request came over https (directly or through a trusted proxy)."""
        return self.policy.is_https(self.scope)

    @property
    def actor(self) -> Actor:
        """The authenticated caller (every route except public ones has one)."""
        assert self.actor_or_none is not None, f"{self.route.name} is public and has no actor"
        return self.actor_or_none


class ApiRoutes:
    """The route table; see the module docstring."""

    def __init__(self) -> None:
        self.routes: list[ApiRoute] = []

    def route(self, method: str, path: str, **options: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            summary = (
                options.pop("summary", None) or (handler.__doc__ or handler.__name__).strip().splitlines()[0]
            )
            options["allow"] = tuple(Grant.parse(text) for text in options.get("allow", ()))
            if options.get("public") and options["allow"]:
                raise ValueError(f"{method} {path} is public: it takes no allow=")
            self.routes.append(
                ApiRoute(method=method, path=path, handler=handler, summary=summary, **options)
            )
            return handler

        return register

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **options)

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **options)

    def blueprint(self) -> Blueprint:
        """A Quart blueprint serving every declared route under :data:`PREFIX`."""
        bp = Blueprint("api", __name__, url_prefix=PREFIX)
        for route in self.routes:
            bp.add_url_rule(
                route.path,
                endpoint=f"{route.method.lower()}_{route.name}",
                view_func=_view(route),
                methods=[route.method],
            )
        return bp


api = ApiRoutes()
"""The management API's routes; route modules register on it at import (``voidllm.web.api``)."""


def _view(route: ApiRoute) -> Callable[..., Awaitable[Response]]:
    async def view(**params: str) -> Response:
        services = app_state().services
        if services is None:  # only an app assembled without them (to read its routes) lacks services
            raise RuntimeError("the management API is served without the process's services")
        request_id = cast("str | None", request.scope.get(SCOPE_KEY))  # set by the edge (voidllm.web.edge)
        policy: BrowserPolicy = current_app.extensions.get(POLICY_KEY) or BrowserPolicy()
        ip = policy.client_address(request.scope)
        actor = None
        if not route.public:
            identity = await authenticate(request.scope, services, policy)
            actor = Actor(identity, ip=ip, request_id=request_id)
            if route.role is not None:
                actor.require(route.role)
        kwargs: dict[str, Any] = dict(params)
        payload = None
        try:
            if route.body is not None:
                payload = parse_json_object(
                    await request.get_data(cache=True, as_text=False, parse_form_data=False)
                )
                kwargs["body"] = structure(payload, route.body)
                if route.method == "PATCH":
                    reject_nulls(payload)
            if route.query is not None:
                arguments = dict(request.args.items())
                kwargs["query"] = structure(arguments, route.query)
                if route.method != "GET" and payload is None:
                    payload = arguments  # what a mutation without a body acted on, for its audit entry
            call = Call(services, actor, request_id, ip, route, scope=request.scope, policy=policy)
            result = await route.handler(call, **kwargs)
        except ClientRequestError as exc:
            name_the_field(exc, route)
            raise
        if route.audit is not None:
            recorded = call.audit_actor or actor or Actor.unauthenticated(ip, request_id)
            services.audit.record(_audit_entry(route, recorded, params, payload, result))
        if result is None:
            response = _empty(route.status)
        elif isinstance(result, Streamed):
            response = _streamed(result, route.status)
        elif isinstance(result, Redirect):
            response = _empty(route.status)
            response.headers["Location"] = result.location
        else:
            body = render(result, route.response)
            response = Response(body, status=route.status, content_type="application/json")
        for cookie in call.set_cookies:
            response.headers.add("Set-Cookie", cookie)
        if call.set_cookies:
            response.headers["Cache-Control"] = "no-store"
        return response

    view.__name__ = route.name
    return view


_UNKNOWN_FIELD = re.compile(r"^unknown field '([^']+)'")
_AT_PATH = re.compile(r" @ \$\.([\w.\[\]]+)")
_FIRST_WORD = re.compile(r"^([A-Za-z_][\w.\[\]]*)[:,]? ")


def name_the_field(exc: ClientRequestError, route: ApiRoute) -> None:
    """Add ``field`` to a 400's error object when its message is about one field of the request: an unknown
    field, a cattrs path (``... @ $.limits.rpm``), or a message that starts with the name of a field of the
    route's body, query or path (``expires_at must be in the future``). The name is checked against the
    route's own fields, so a message that merely starts with a word never names a field."""
    if exc.status != 400 or "field" in exc.extra:
        return
    if unknown := _UNKNOWN_FIELD.match(exc.message):
        exc.extra = {**exc.extra, "field": unknown.group(1)}
        return
    found = _AT_PATH.search(exc.message) or _FIRST_WORD.match(exc.message)
    if found is None:
        return
    path = found.group(1)
    if re.split(r"[.\[]", path, maxsplit=1)[0] in _field_names(route):
        exc.extra = {**exc.extra, "field": path}


@functools.cache
def _field_names(route: ApiRoute) -> frozenset[str]:
    """The wire names of a route's body and query fields and its path parameters."""
    names = set(re.findall(r"<(?:\w+:)?(\w+)>", route.path))
    for cls in (route.body, route.query):
        if cls is not None and attrs.has(cls):
            names.update(wire_name(field.name) for field in attrs.fields(cls))
    return frozenset(names)


async def authenticate(scope: Mapping[str, Any], services: Services, policy: BrowserPolicy) -> KeyIdentity:
    """The caller: ``X-Api-Key`` or ``Authorization: Bearer``, or without either the session cookie,
    CSRF-checked (:func:`~voidllm.web.browser.authenticate_cookie`).

    Raises:
        AuthenticationError: no credentials, or an unknown, expired or revoked key.
        CsrfError: a cookie-authenticated request that changes state failed the CSRF check.
    """
    session = await authenticate_cookie(scope, services.keys, policy)
    if session is None:
        return await services.keys.resolve(header(scope, b"authorization"), header(scope, b"x-api-key"))
    return session[1]


def _empty(status: int) -> Response:
    """A response without a body: no content type, and for 204 no Content-Length either (RFC 9110 8.6)."""
    response = Response(b"", status=status)
    del response.headers["Content-Type"]
    if status == 204:
        del response.headers["Content-Length"]
    return response


def _streamed(result: Streamed, status: int) -> Response:
    headers = {
        "Content-Disposition": f'attachment; filename="{result.filename}"',
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
    }
    response = Response(result.chunks, status=status, content_type=result.content_type, headers=headers)
    response.timeout = None
    return response


def _audit_entry(
    route: ApiRoute, actor: Actor, params: dict[str, str], payload: Any, result: Any
) -> AuditEntry:
    assert route.audit is not None
    action, resource_type = route.audit
    resource_id = getattr(result, "id", None)
    if resource_id is None:
        ids = [value for name, value in params.items() if name.endswith("_id")]
        resource_id = ids[-1] if ids else None
    org_id = params.get("org_id") or getattr(result, "org_id", None) or actor.org_id
    return AuditEntry(
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        org_id=org_id,
        status_code=route.status,
        description=payload,
    )
