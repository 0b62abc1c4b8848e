"""Intake of a proxied request: who sends it, what it asks for, and whether it may (before any upstream).

In this order, each refusal an error of :mod:`voidllm.errors` in the endpoint's envelope: one pass over the
headers reads the key (``X-Api-Key``, else ``Authorization: Bearer``; on every route) and the client
tags, and the key is looked up in the key cache (no database); the body is read within
``max_request_body`` and ``read_timeout`` (:func:`voidllm.asgi.read_body`) and parsed once
(:mod:`voidllm.proxy.jsonbody`; Anthropic's Messages API translated once to the OpenAI shape,
:mod:`voidllm.proxy.messages`), or, for multipart, read up to its ``model`` field
(:mod:`voidllm.proxy.multipart`) and the rest streamed on (when a file part came first, or the prompt guard
or a request policy's parameter rules apply, the whole body is read and held in memory within
``max_request_body``, then sent in one piece); the request is counted
against its key, team and org limits with its estimated tokens reserved (:mod:`voidllm.limits`; keys
without limits skip it, and it comes before model resolution, as in the Go original); the model is
resolved and its access checked; the prompt guard scans the parsed body, or a multipart body's text fields,
when the request's policy has a kind on (:mod:`voidllm.proxy.guarding`: refused, or redacted and serialised
again, or the fields' values rewritten in the multipart body); the body is rewritten only where needed (the
canonical model, ``stream_options.include_usage``).

Request policies (:mod:`voidllm.request_policy`): a key whose identity carries one has the page's ``Origin``
(when the policy lists allowed origins) and the required headers checked right after authentication (403),
and the body's top-level parameters checked as the client sent them (Anthropic's names on ``/v1/messages``)
right after the parse and before admission (400 naming the parameter); the model's policy, from the
catalog, is checked once the model is resolved. A multipart body (audio, images) has its fields checked the
same way (:meth:`~voidllm.request_policy.RequestPolicy.check_form`: names as parameters, values read as
numbers where bounded): when the key's policy has parameter rules, or the gateway's or the key's guard policy
is on, the whole body is held before admission and the key's rules checked then; when only the model's
policy (guard or parameters) needs it, once the model is resolved. Without guard and parameter rules the
multipart body streams on as before: nothing is held and nothing of this runs.

Client tags. ``X-Source`` and ``X-Project`` are optional labels the client chooses to send (which tool, which
project); they are validated (:func:`client_tag`: at most 64 characters of ``[A-Za-z0-9._:/@-]``, else 400
naming the header, never echoing the value) and stored on the usage event as metadata. An empty value counts
as absent; a repeated header counts by its first value.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import Any

import attrs
import orjson
import trio

from voidllm.asgi import BodyReader, Receive, read_body
from voidllm.auth.cache import KeyCache
from voidllm.clock import utcnow
from voidllm.errors import BadRequestError, PermissionDeniedError, model_not_found
from voidllm.guard import OFF, GuardPolicy, RequestGuard
from voidllm.identity import KeyIdentity
from voidllm.limits.base import Limiter, limited
from voidllm.limits.estimate import estimate_tokens
from voidllm.proxy import guarding, messages
from voidllm.proxy.endpoints import Endpoint
from voidllm.proxy.exchange import Exchange
from voidllm.proxy.headers import header
from voidllm.proxy.jsonbody import JsonRequest
from voidllm.proxy.multipart import FormField, MultipartHead, boundary_from_content_type
from voidllm.request_policy import ORIGIN_VERDICT, RequestPolicy
from voidllm.routing.catalog import Catalog
from voidllm.routing.registry import Model

_READ_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-source", b"x-project", b"origin"})
_TAG = re.compile(rb"[A-Za-z0-9._:/@-]{1,64}")


@attrs.frozen
class Intake:
    """Checks and reads proxied requests; see the module docstring."""

    keys: KeyCache
    catalog: Catalog
    limiter: Limiter
    max_request_body: int
    read_timeout: float
    completion_reserve: int  # settings.limits.default_completion_reserve
    guard: GuardPolicy = OFF  # settings.guard: the prompt guard's baseline

    async def open(
        self, scope: dict[str, Any], endpoint: Endpoint, request_id: str, started: float
    ) -> Exchange:
        """The request's exchange, for an authenticated key with valid client tags.

        Raises:
            AuthenticationError: no key, or one the key cache does not know.
            BadRequestError: an invalid client tag.
            PermissionDeniedError: the key's request policy refuses the page's origin or misses a header.
        """
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:  # one pass: credentials, client tags, origin
            if name in _READ_HEADERS:
                found.setdefault(name, value)
        identity = await self._authenticate(found)
        if identity.policy is not None:
            check_origin_and_headers(identity.policy, scope, found.get(b"origin"))
        return Exchange(
            request_id,
            identity,
            endpoint,
            started,
            utcnow(),
            source=client_tag(found.get(b"x-source"), "X-Source"),
            project=client_tag(found.get(b"x-project"), "X-Project"),
        )

    async def _authenticate(self, headers: dict[bytes, bytes]) -> KeyIdentity:
        """``X-Api-Key`` (Anthropic's SDKs send it) or ``Authorization: Bearer`` (KeyCache.resolve)."""
        authorization, api_key = headers.get(b"authorization"), headers.get(b"x-api-key")
        return await self.keys.resolve(
            authorization.decode("latin-1") if authorization else None,
            api_key.decode("latin-1") if api_key else None,
        )

    async def json_body(self, ex: Exchange, scope: dict[str, Any], receive: Receive) -> bytes:
        """Read and parse a JSON body, admit the request, resolve its model; the body to send upstream."""
        raw = await read_body(scope, receive, limit=self.max_request_body, read_timeout=self.read_timeout)
        if ex.endpoint.dialect == "anthropic":
            ex.anthropic = messages.MessagesRequest.parse(
                raw, count_tokens=ex.endpoint.upstream_path.endswith("count_tokens")
            )
            ex.anthropic_raw, raw = raw, orjson.dumps(ex.anthropic.openai.payload)
            request = ex.anthropic.openai
        else:
            request = JsonRequest.parse(raw)
        ex.json, ex.raw = request, raw
        sent = ex.anthropic.payload if ex.anthropic is not None else request.payload
        if ex.identity.policy is not None and ex.identity.policy.checks_params:
            ex.identity.policy.check_params(sent)  # before admission: a refused request counts nothing
        if limited(ex.identity):  # counted before model resolution, as in the Go original
            if ex.anthropic is not None:
                reserve = estimate_tokens(
                    len(ex.anthropic_raw), ex.anthropic.payload, self.completion_reserve
                )
            else:
                reserve = estimate_tokens(len(raw), request.payload, self.completion_reserve)
            ex.admission = await self.limiter.admit(ex.identity, reserve_tokens=reserve)
        model = self._resolve(ex, request.model)
        model_policy = self.catalog.policies.get(model.name) if self.catalog.policies else None
        if model_policy is not None and model_policy.request is not None:
            model_policy.request.check_params(sent)
        model_guard = model_policy.guard if model_policy is not None else None
        policy = guarding.effective_policy(self.guard, model_guard, ex.identity.guard)
        if policy.active:
            raw = self._guard(ex, policy, raw)
            request = ex.json
        ex.stream = request.stream
        ex.inject_usage = ex.endpoint.usage_option and request.stream and not request.client_wants_usage
        return request.upstream_body(raw, canonical_model=model.name, inject_usage=ex.endpoint.usage_option)

    def _guard(self, ex: Exchange, policy: GuardPolicy, raw: bytes) -> bytes:
        """Scan the parsed body with the prompt guard (:mod:`voidllm.proxy.guarding`); the body to send on:
        ``raw`` when nothing was redacted, else the redacted body (and the exchange's parsed request with it).

        Raises:
            ContentBlockedError: a kind found is set to block.
        """
        anthropic = ex.anthropic
        payload = anthropic.payload if anthropic is not None else ex.json.payload  # type: ignore[union-attr]
        ex.guard = RequestGuard(policy)
        guarding.guard_json(
            payload, ex.guard, anthropic=anthropic is not None, route=guarding.route_of(ex.endpoint)
        )
        if not ex.guard.redactions:
            return raw
        if anthropic is not None:
            ex.anthropic = anthropic.retranslated(count_tokens=ex.endpoint.count_tokens)
            ex.anthropic_raw = orjson.dumps(anthropic.payload)
            ex.json = ex.anthropic.openai
        assert ex.json is not None
        ex.raw = orjson.dumps(ex.json.payload)
        return ex.raw

    async def multipart_body(
        self, ex: Exchange, scope: dict[str, Any], receive: Receive, body_done: trio.Event
    ) -> tuple[bytes | AsyncGenerator[bytes, None], int | None]:
        """Read a multipart body up to its ``model`` field, admit the request, resolve its model; the body to
        send upstream and its length, when declared (``body_done`` is set once all of it was read).

        Model first, the body is streamed on as it arrives. When a file part (or more than the head limit of
        other parts) came before ``model``, or the prompt guard or a request policy's parameter rules must see
        every field (:meth:`_form`), the rest is read too, all of it within ``read_timeout`` and
        ``max_request_body``, and the whole rewritten body is returned as bytes (held in memory,
        never written anywhere).

        Raises:
            ContentBlockedError: the prompt guard found a kind set to block in a text field.
        """
        content_type = (header(scope["headers"], b"content-type") or b"").decode("latin-1")
        head = MultipartHead(boundary_from_content_type(content_type))  # MultipartError is a 400
        reader = BodyReader.start(scope, receive, limit=self.max_request_body, read_timeout=self.read_timeout)
        while reader.more and not head.done:
            if not head.feed(await reader.next()) and not reader.more:
                head.finish()
        assert head.model is not None
        form: list[FormField] | None = None
        key_policy = ex.identity.policy
        key_guard = guarding.effective_policy(self.guard, ex.identity.guard)
        if key_guard.active or (key_policy is not None and key_policy.checks_params):
            form = await _form(head, reader)  # before admission: a refused request counts nothing
            if key_policy is not None and key_policy.checks_params:
                key_policy.check_form((field.name, field.value) for field in form)
        if limited(ex.identity):
            reserve = estimate_tokens(0, None, self.completion_reserve)
            ex.admission = await self.limiter.admit(ex.identity, reserve_tokens=reserve)
        model = self._resolve(ex, head.model)
        values = await self._check_form(ex, model, key_guard, head, reader, form)
        if head.holds_body:
            if reader.more:  # the rest within read_timeout in all, like a JSON body
                head.feed(await reader.rest())  # refuses a second `model` field
            body_done.set()
            return head.rewrite(model.name, values), None
        first = head.rewrite(model.name)
        length = None if reader.declared is None else reader.declared + head.length_delta(model.name)

        async def stream() -> AsyncGenerator[bytes, None]:  # closed by Proxy._serve
            yield first
            while reader.more:
                out = head.relay(await reader.next())  # refuses a second `model` field later in the body
                if out:
                    yield out
            body_done.set()

        if not reader.more:
            body_done.set()
        return stream(), length

    async def _check_form(
        self,
        ex: Exchange,
        model: Model,
        key_guard: GuardPolicy,
        head: MultipartHead,
        reader: BodyReader,
        form: list[FormField] | None,
    ) -> dict[int, str]:
        """Once the model is resolved: its policy's parameter rules and the prompt guard over the form's
        fields (the body held now if the key's policies did not need it already); the new values of the text
        fields the guard redacted, by index (:meth:`MultipartHead.rewrite`).

        Raises:
            BadRequestError: the model's policy refuses a field.
            ContentBlockedError: the prompt guard found a kind set to block in a text field.
        """
        model_policy = self.catalog.policies.get(model.name) if self.catalog.policies else None
        if model_policy is None:
            if not key_guard.active:
                return {}
            policy, rules = key_guard, None
        else:
            policy = guarding.effective_policy(key_guard, model_policy.guard)
            rules = model_policy.request
            if rules is not None and not rules.checks_params:
                rules = None
        if form is None and (policy.active or rules is not None):
            form = await _form(head, reader)
        if rules is not None:
            assert form is not None
            rules.check_form((field.name, field.value) for field in form)
        if not policy.active:
            return {}
        assert form is not None
        ex.guard = RequestGuard(policy)
        return guarding.guard_form(form, ex.guard, route=guarding.route_of(ex.endpoint))

    def _resolve(self, ex: Exchange, name: str) -> Model:
        ex.requested_model = name
        model = self.catalog.resolve(ex.identity, name)
        if model is None:
            raise model_not_found(name)
        if not self.catalog.allowed(ex.identity, model.name):
            raise PermissionDeniedError("access to the requested model is denied", code="model_access_denied")
        ex.model = model
        return model


async def _form(head: MultipartHead, reader: BodyReader) -> list[FormField]:
    """Hold the whole multipart body (read within ``read_timeout`` in all and ``max_request_body``, as a body
    whose file came first is) and list its fields: the prompt guard and the parameter rules of request
    policies see every text field before anything goes upstream.

    Raises:
        MultipartError: the body is incomplete, or a text field cannot be read (:meth:`MultipartHead.fields`).
        RequestTooLargeError: the body exceeds ``max_request_body``.
    """
    head.hold()
    if reader.more:
        head.feed(await reader.rest())
    return head.fields()


def check_origin_and_headers(policy: RequestPolicy, scope: dict[str, Any], origin: bytes | None) -> None:
    """The key's request policy on the request's headers: the page's ``Origin`` (when the policy lists
    allowed origins; the verdict is left in the scope for the edge's CORS headers, :data:`ORIGIN_VERDICT`),
    then the required headers.

    Raises:
        PermissionDeniedError: ``origin_not_allowed``, or ``required_header`` naming the header.
    """
    if origin is not None and policy.allowed_origins is not None:
        allowed = policy.allows_origin(origin.decode("latin-1"))
        scope[ORIGIN_VERDICT] = allowed
        if not allowed:
            raise PermissionDeniedError(
                "this API key may not be used from this page's origin (request policy)",
                code="origin_not_allowed",
            )
    policy.check_headers(scope["headers"])


def client_tag(value: bytes | None, name: str) -> str | None:
    """A client tag header's value (``None`` when absent or empty).

    Raises:
        BadRequestError: longer than 64 characters or outside ``[A-Za-z0-9._:/@-]``; names the header only.
    """
    if not value:
        return None
    if _TAG.fullmatch(value) is None:
        raise BadRequestError(f"invalid {name} header: use at most 64 characters of A-Z a-z 0-9 . _ : / @ -")
    return value.decode("ascii")
