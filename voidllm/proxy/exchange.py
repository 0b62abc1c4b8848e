"""One proxied exchange: the :class:`Exchange` record a request fills on its way, the attempt orchestration
(:func:`run_hops`), and the usage event it becomes (:func:`usage_event`).

Hops (docs/reference/behaviour.md 6.5): the requested model, then its fallbacks, each the model's own
:class:`~voidllm.proxy.attempts.AttemptChain` under one deadline per hop (the model's ``timeout``, else
``max_stream_duration`` for streams and ``request_timeout`` otherwise). Each candidate's upstream request is
built by its provider adapter (:mod:`voidllm.proxy.calls`; Anthropic's Messages API as it is for an
Anthropic upstream, translated for anyone else), and the first answer is relayed by
:class:`~voidllm.proxy.relay.Relay`. A multipart body has no fallbacks (its model was rewritten once); when it
is streamed it is sent once, when held (a file part came before ``model``) it may go to the model's other
upstreams like a JSON body. Only a chain that ran out of candidates before anything went to the client falls
back; the last hop's failure is the client's answer.

Incidents (:mod:`voidllm.usage.incidents`): the chains note each failed attempt and failover on the exchange
(:meth:`Exchange.note_incident`), and :func:`run_hops` notes each fallback from one model to the next; the
handler records them with the client's outcome once the request has ended. A request whose first attempt
succeeds notes nothing and allocates nothing for it.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import attrs
import trio

from voidllm.errors import BadGatewayError, GatewayTimeoutError, ServiceUnavailableError
from voidllm.guard import RequestGuard
from voidllm.identity import KeyIdentity
from voidllm.limits.base import Admission
from voidllm.providers.base import TranslationError
from voidllm.providers.registry import PROVIDERS
from voidllm.proxy import messages
from voidllm.proxy import metrics as m
from voidllm.proxy.attempts import AttemptChain, ChainExhausted, Opened
from voidllm.proxy.calls import build_call
from voidllm.proxy.endpoints import Endpoint
from voidllm.proxy.guarding import findings_of
from voidllm.proxy.jsonbody import JsonRequest
from voidllm.routing.fallback import fallback_plan
from voidllm.routing.metrics import deployment_label
from voidllm.routing.registry import Model, Upstream
from voidllm.store.ids import utcnow
from voidllm.tracing.conventions import operation_of
from voidllm.usage.cost import cost_estimate
from voidllm.usage.events import TokenUsage, UsageEvent
from voidllm.usage.incidents import Incident

if TYPE_CHECKING:
    from voidllm.asgi import Send
    from voidllm.proxy.relay import Relay
    from voidllm.routing.catalog import Catalog
    from voidllm.routing.strategy import Router
    from voidllm.transport.base import Transport

log = logging.getLogger(__name__)

CLIENT_CLOSED_STATUS = 499


@attrs.frozen
class ProxyLimits:
    max_request_body: int
    max_response_body: int
    max_stream_duration: float
    request_timeout: float
    read_timeout: float = 30.0  # a JSON body in whole; each chunk of a streamed multipart body


@attrs.define
class Exchange:
    """What one proxied request learned on its way; becomes a usage event at the end."""

    request_id: str
    identity: KeyIdentity
    endpoint: Endpoint
    started: float
    started_wall: Any
    upstream_started: float = 0.0
    json: JsonRequest | None = attrs.field(default=None, repr=False)
    raw: bytes = attrs.field(default=b"", repr=False)
    anthropic: messages.MessagesRequest | None = attrs.field(default=None, repr=False)  # /v1/messages body
    anthropic_raw: bytes = attrs.field(default=b"", repr=False)
    requested_model: str = ""
    model: Model | None = None
    upstream: Upstream | None = None
    stream: bool = False
    inject_usage: bool = False
    status_code: int = 0
    outcome: str = "ok"
    usage: TokenUsage | None = None
    ttft: float | None = None
    client_gone: bool = False
    admission: Admission | None = None  # limits counted and tokens reserved; settled when the request ends
    final_send: bool = False  # set just before the last body message: a disconnect after it is a normal close
    deadline: float = math.inf  # of the answer being relayed; the gateway cuts the client there
    sending: bool = False  # inside a send to the client: a deadline that strikes now is the client's doing
    upstream_fault: bool = False  # the relayed answer broke on the upstream's side: a breaker failure
    source: str | None = None  # client tags (X-Source, X-Project), validated
    project: str | None = None
    attempt_span: Any = None  # the relayed attempt's span while tracing is on (its first-token event)
    finish_reasons: tuple[str, ...] = ()  # of a buffered OpenAI-style answer, read while tracing is on
    incidents: list[Incident] | None = None  # made on the first incident; recorded when the request ends
    guard: RequestGuard | None = attrs.field(default=None, repr=False)  # the prompt guard, when a kind is on

    def note_incident(
        self, kind: str, model: Model, upstream: Upstream, error_class: str, status: int | None, attempt: int
    ) -> None:
        """Note one incident of this request (:data:`~voidllm.proxy.attempts.IncidentHook`)."""
        if self.incidents is None:
            self.incidents = []
        deployment = deployment_label(model.name, upstream.name)
        self.incidents.append(
            Incident(kind, model.name, deployment, upstream.provider, error_class, status, attempt, utcnow())
        )

    def client_outcome(self, error: BaseException | None) -> str:
        """What the client got, for the incident log: ``cancelled``, ``served`` or ``error``."""
        if self.client_gone:
            return "cancelled"
        if error is None and self.outcome == "ok" and 0 < self.status_code < 400:
            return "served"
        return "error"


async def run_hops(
    ex: Exchange,
    scope: dict[str, Any],
    send: Send,
    body: Any,
    length: int | None,
    *,
    catalog: Catalog,
    router: Router,
    transport: Transport,
    relay: Relay,
    limits: ProxyLimits,
    fallback_max_depth: int,
) -> None:
    """The requested model, then its fallbacks (docs/reference/behaviour.md 6.5), until one gives an answer
    to relay.

    Raises:
        BadGatewayError, GatewayTimeoutError, ServiceUnavailableError: the last hop gave no answer; the
            exchange's outcome and status say so.
    """
    assert ex.model is not None
    plan = fallback_plan(
        ex.model, catalog.registry, fallback_max_depth, lambda m: catalog.allowed(ex.identity, m)
    )
    if ex.json is None:
        plan = plan[:1]  # a multipart body's model was rewritten once: no fallbacks
    attempts = 0  # over every hop, so each chain numbers its attempts on from the last
    for hop, model in enumerate(plan):
        if hop and ex.json is not None:  # a multipart body has no fallbacks
            body = ex.json.upstream_body(
                ex.raw, canonical_model=model.name, inject_usage=ex.endpoint.usage_option
            )
        timeout = model.timeout or (limits.max_stream_duration if ex.stream else limits.request_timeout)
        deadline = trio.current_time() + timeout

        def build(upstream: Upstream, body: Any = body, model: Model = model) -> tuple[str, Any, Any]:
            if ex.anthropic is not None:
                return _build_messages_call(ex, scope, upstream, model, body)
            return _build_openai_call(ex, scope, upstream, model, body)

        async def answer(opened: Opened, deadline: float = deadline, model: Model = model) -> None:
            ex.model, ex.upstream, ex.deadline, ex.attempt_span = (
                model,
                opened.upstream,
                deadline,
                opened.span,
            )
            try:
                await relay.respond(ex, opened.upstream.provider, opened.response, send, deadline)
            except GatewayTimeoutError:  # a whole body not read by the deadline: the upstream's slowness
                opened.settle(broken=True, timeout=True)
                raise
            opened.settle(broken=ex.upstream_fault)

        chain = AttemptChain(
            model,
            router,
            transport,
            build,
            body,
            length,
            deadline,
            final=hop == len(plan) - 1,
            on_attempt=functools.partial(_attempting, ex, model),
            operation=operation_of(scope["path"]),
            fallback=hop > 0,
            note=ex.note_incident,
            attempts_before=attempts,
        )
        try:
            await chain.run(answer)
            return
        except ChainExhausted as exhausted:
            log.info("falling back", extra={"model": model.name, "fallback": plan[hop + 1].name})
            error = exhausted.error
            attempts += chain.started
            _note_fallback(ex, model, attempts)
        except (BadGatewayError, GatewayTimeoutError, ServiceUnavailableError) as exc:
            ex.outcome, ex.status_code = (
                ("timeout", 504) if isinstance(exc, GatewayTimeoutError) else ("upstream_error", exc.status)
            )
            raise
    raise error  # unreachable: the last hop is final


def _note_fallback(ex: Exchange, model: Model, attempts: int) -> None:
    """Note the move from ``model`` to its fallback, with the deployment, class and status of the model's
    last failure (the chain that gave up noted at least one)."""
    last = ex.incidents[-1] if ex.incidents else None
    if last is None:  # not reached: a chain ends exhausted only after noting why
        ex.note_incident("fallback", model, model.upstreams[0], "breaker_open", None, attempts)
        return
    assert ex.incidents is not None
    ex.incidents.append(attrs.evolve(last, kind="fallback", attempt=attempts, at=utcnow()))


def _build_messages_call(
    ex: Exchange, scope: dict[str, Any], upstream: Upstream, model: Model, body: Any
) -> tuple[str, Any, Any]:
    assert ex.anthropic is not None
    if PROVIDERS[upstream.provider].native_messages:
        return messages.anthropic_call(
            upstream,
            path=ex.endpoint.upstream_path,
            body=ex.anthropic.anthropic_body(ex.anthropic_raw, model.name),
            client_headers=scope["headers"],
            request_id=ex.request_id,
            stream=ex.stream,
        )
    if ex.endpoint.upstream_path.endswith("count_tokens"):
        raise TranslationError("count_tokens is only available for models served by an anthropic upstream")
    return _build_openai_call(ex, scope, upstream, model, body)


def _build_openai_call(
    ex: Exchange, scope: dict[str, Any], upstream: Upstream, model: Model, body: Any
) -> tuple[str, Any, Any]:
    """The upstream request of an OpenAI-shaped exchange (or a translated /v1/messages one)."""
    return build_call(
        upstream,
        model_name=model.name,
        endpoint=ex.endpoint,
        request=ex.json,
        body=body,
        client_headers=scope["headers"],
        request_id=ex.request_id,
    )


def _attempting(ex: Exchange, model: Model, upstream: Upstream) -> None:
    ex.model, ex.upstream = model, upstream
    if not ex.upstream_started:
        ex.upstream_started = time.perf_counter()


def usage_event(ex: Exchange) -> UsageEvent | None:
    """Count the request in the metrics and return its usage event (None if it never reached a model)."""
    model, upstream = ex.model, ex.upstream
    if model is None or (upstream is None and ex.outcome != "blocked"):
        return None
    duration = time.perf_counter() - ex.started
    if ex.client_gone:
        ex.outcome, ex.status_code = "client_disconnect", CLIENT_CLOSED_STATUS
    usage = ex.usage or TokenUsage(0, 0, 0)
    ttft = ex.ttft if ex.stream else duration
    labels_model = model.name
    guard_findings, guard_action = (None, None) if ex.guard is None else findings_of(ex.guard.outcome())
    if upstream is None:  # refused by the prompt guard before any upstream: no tokens, no cost, no TTFT
        ttft = None
    else:
        m.UPSTREAM_REQUESTS.labels(labels_model, upstream.provider, str(ex.status_code)).inc()
        m.PROXY_DURATION.labels(labels_model, "true" if ex.stream else "false").observe(duration)
        if ttft is not None:
            m.PROXY_TTFT.labels(labels_model).observe(ttft)
        if usage.prompt_tokens:
            m.TOKENS.labels(labels_model, "prompt").inc(usage.prompt_tokens)
        if usage.completion_tokens:
            m.TOKENS.labels(labels_model, "completion").inc(usage.completion_tokens)
    identity = ex.identity
    return UsageEvent(
        request_id=ex.request_id,
        key_id=identity.key_id,
        key_type=identity.key_type,
        org_id=identity.org_id,
        team_id=identity.team_id,
        user_id=identity.user_id,
        service_account_id=identity.service_account_id,
        model_name=model.name,
        requested_model_name=ex.requested_model,
        provider="" if upstream is None else upstream.provider,
        deployment_name=None if upstream is None else upstream.name,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cost_estimate=None
        if upstream is None
        else cost_estimate(
            usage, input_per_1m=model.pricing.input_per_1m, output_per_1m=model.pricing.output_per_1m
        ),
        duration_ms=int(duration * 1000),
        ttft_ms=None if ttft is None else int(ttft * 1000),
        tokens_per_second=(usage.completion_tokens / duration)
        if usage.completion_tokens and duration
        else None,
        status_code=ex.status_code,
        status=ex.outcome,
        stream=ex.stream,
        source=ex.source,
        project=ex.project,
        guard_findings=guard_findings,
        guard_action=guard_action,
        created_at=ex.started_wall,
    )
