"""The proxy hot path: one raw ASGI handler (:class:`Proxy`) for every proxied ``POST /v1/...`` route.

It bypasses Quart on purpose (ARCHITECTURE.md section 3: Quart's routing costs 35-50 % of proxied throughput).
Per request, in this order: authenticate from the key cache (no database), read the body within
``max_request_body``, read ``model`` (JSON parsed once; multipart read up to the ``model`` field), count
the request against its key/team/org limits and reserve its estimated tokens (:mod:`voidllm.limits`; keys
without limits skip it), resolve the model in the registry, rewrite the body only where needed (all of it
:mod:`voidllm.proxy.intake`), then run the attempt chain per model and its fallbacks
(:mod:`voidllm.proxy.exchange`) and relay the answer (:mod:`voidllm.proxy.relay`). The token reservation is
settled with the real usage right before the answer's last bytes go out (or, here, when the request ends
without an answer), shielded and bounded. Refusals are answered in the endpoint's envelope (Anthropic's
shape on ``/v1/messages``, ours elsewhere). ``/v1/messages/count_tokens`` for a model not served by Anthropic
only is answered right after the intake, with an estimate and no upstream (:mod:`voidllm.proxy.tokencount`).

Lifetimes. Everything a request starts lives in its own cancel scope (STYLE P1), which the client's
``http.disconnect`` cancels, so a client that goes away cancels the upstream request at once (the transport
closes the upstream socket in its shielded exit). Through hypercorn the request learns of it from its
:class:`~voidllm.asgi.DisconnectNotice` (:mod:`voidllm.web.disconnects`), with no task of its own; under a
server that gives none, a task beside the exchange watches ``receive()``.
Usage is handed to the writer service with ``send_nowait`` after the exchange, never written here; so are
the incidents the exchange noted (:mod:`voidllm.usage.incidents`), with what the client got.

Deadlines (STYLE P3). One deadline per request, computed once: the model's ``timeout``, else
``max_stream_duration`` for streams and ``write_timeout`` otherwise. While waiting for an upstream's answer it
bounds the attempt; once an answer is committed to the client, the relay bounds itself with the same deadline,
every send included (:mod:`voidllm.web.writes` makes hypercorn's writes cancellable), so a client that reads
nothing is cut there: the last message (a stream's ``stream_incomplete`` event) gets
:data:`~voidllm.proxy.relay.END_GRACE` more, then the connection is closed (a write cut part-way closes it at
once), the upstream connection with it, and the usage row says ``timeout``. What a request holds is what is in
flight: one upstream chunk for streams, the answer (at most ``max_response_body``) for non-streamed ones.

Attempts (docs/reference/behaviour.md 6.2). The router orders the model's upstreams (strategy, health,
breakers, cooldowns); each candidate's breaker is asked for a permit right before its attempt, so candidates
never tried reserve nothing. The next candidate is tried after a connection error, an attempt deadline
(``attempt_timeout``, for response headers) or a 500/502/503/504 (breaker failure), and after a 429 (the
upstream is parked in cooldown for its ``Retry-After``; breaker-neutral). A refused attempt's body is drained
with a byte and time bound so its connection may be reused, never read whole. Nothing is retried once a byte
went to the client, and a streamed (multipart) body is sent once; but a non-streamed body that breaks while it
is read (the upstream closed part-way, a Content-Length never reached:
:class:`~voidllm.proxy.attempts.AnswerBroken`) was not sent yet, so the next candidate is tried. The last
candidate's answer goes to the client as it is; when it broke, the client gets 502 ``upstream_unavailable`` in
the endpoint's envelope. Breaker outcomes blame only the upstream: failure for 5xx, a body or stream the
upstream broke or ended without its terminal event, a non-streamed body not read by the deadline; neutral for
429, a client disconnect, and the request's own deadline passing during a stream (whether the client was slow
to take it or the answer was long); success otherwise.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from functools import partial
from typing import Any

import attrs
import trio

from voidllm import tracing
from voidllm.asgi import (
    DISCONNECT_NOTICE,
    SCOPE_KEY,
    ClientDisconnectedError,
    DisconnectNotice,
    Receive,
    Send,
    send_error,
)
from voidllm.auth.cache import KeyCache
from voidllm.errors import ContentBlockedError, GatewayError
from voidllm.guard import OFF, GuardPolicy
from voidllm.limits.base import Limiter, NoLimiter
from voidllm.proxy import guarding, messages, tokencount
from voidllm.proxy import metrics as m
from voidllm.proxy.endpoints import ENDPOINTS
from voidllm.proxy.exchange import Exchange, ProxyLimits, run_hops, usage_event
from voidllm.proxy.intake import Intake
from voidllm.proxy.relay import Relay
from voidllm.request_policy import REFUSAL_CODES
from voidllm.routing.catalog import Catalog
from voidllm.routing.strategy import Router
from voidllm.tracing import conventions as c
from voidllm.transport.base import Transport
from voidllm.usage.batches import Recorder
from voidllm.usage.incidents import IncidentRecord, record_incidents
from voidllm.usage.writer import UsageRecorder

__all__ = ["Proxy", "ProxyLimits"]


@attrs.define(eq=False)
class Proxy:
    """The ASGI app of the proxied routes; see the module docstring."""

    keys: KeyCache
    catalog: Catalog
    transport: Transport
    usage: UsageRecorder
    limits: ProxyLimits
    router: Router
    fallback_max_depth: int = 3
    usage_wait: float | None = None  # settings.usage.drop_on_full false: wait this long for room
    limiter: Limiter = attrs.field(factory=NoLimiter)
    completion_reserve: int = 1024  # settings.limits.default_completion_reserve
    incidents: Recorder[IncidentRecord] | None = None  # the incident log's channel; None: counted only
    guard: GuardPolicy = OFF  # settings.guard: the prompt guard's baseline (proxy/guarding.py)
    _intake: Intake = attrs.field(init=False)
    _relay: Relay = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        limits = self.limits
        self._intake = Intake(
            self.keys,
            self.catalog,
            self.limiter,
            limits.max_request_body,
            limits.read_timeout,
            self.completion_reserve,
            self.guard,
        )
        self._relay = Relay(limits.max_response_body, self.limiter)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id: str = scope[SCOPE_KEY]
        endpoint = ENDPOINTS[scope["path"]]
        try:
            ex = await self._intake.open(scope, endpoint, request_id, started)
            try:
                await self._serve(ex, scope, receive, send)
            finally:
                if ex.guard is not None:
                    guarding.count(ex.guard.outcome())
                if ex.admission is not None:  # not settled before the answer's end (no answer, or an error)
                    await self._relay.settle(ex)
        except GatewayError as exc:
            if exc.code in REFUSAL_CODES:
                m.POLICY_REFUSALS.labels(exc.code).inc()
            if endpoint.dialect == "anthropic":
                await _send_json(send, exc.status, messages.error_body(exc.status, exc.message), exc.headers)
            else:
                await send_error(
                    send, exc.status, exc.code, exc.message, request_id, exc.headers, param=exc.param
                )
        except ClientDisconnectedError:
            return

    async def _serve(self, ex: Exchange, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """Read the body, then run the exchange in a scope the client's disconnect cancels; the usage event
        goes to the writer however it ended."""
        body_done = trio.Event()
        body: bytes | AsyncGenerator[bytes, None]
        length: int | None
        try:
            if ex.endpoint.multipart:
                body, length = await self._intake.multipart_body(ex, scope, receive, body_done)
            else:
                body, length = await self._intake.json_body(ex, scope, receive), None
        except ContentBlockedError:
            ex.outcome, ex.status_code = "blocked", ContentBlockedError.status
            await self._record_usage(ex)
            raise
        if not ex.endpoint.multipart:
            body_done.set()
            if ex.endpoint.count_tokens and ex.model is not None and tokencount.estimated(ex.model):
                assert ex.anthropic is not None
                answer = await tokencount.estimate(ex.anthropic.payload)
                await _send_json(send, 200, answer, (tokencount.ESTIMATE_HEADER,))
                return
        error: GatewayError | None = None
        ended = False  # False in ``finally``: the request was cancelled (shutdown) while it ran
        notice: DisconnectNotice | None = scope.get(DISCONNECT_NOTICE)
        try:
            if notice is not None:  # the server tells of the client leaving (voidllm.web.disconnects)
                with trio.CancelScope() as cancel_scope:
                    notice.watch(partial(_client_left, ex, cancel_scope))
                    try:
                        error = await self._exchange(ex, scope, send, body, length)
                    finally:
                        notice.watch(None)
            else:  # another server: a task watches receive() once the body is read
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_watch_disconnect, receive, body_done, nursery.cancel_scope, ex)
                    error = await self._exchange(ex, scope, send, body, length)
                    nursery.cancel_scope.cancel()
            ended = True
        finally:
            if not isinstance(body, bytes):
                await body.aclose()  # a multipart body the upstream did not read to its end
            if tracing.state.tracer is not None:
                _trace_exchange(ex, scope["path"])
            await self._record_usage(ex)
            if ex.incidents is not None:
                record_incidents(
                    self.incidents,
                    ex.incidents,
                    identity=ex.identity,
                    request_id=ex.request_id,
                    requested_model=ex.requested_model,
                    client_outcome=ex.client_outcome(error) if ended else "cancelled",
                )
        if error is not None and not ex.client_gone:
            raise error

    async def _exchange(
        self,
        ex: Exchange,
        scope: dict[str, Any],
        send: Send,
        body: bytes | AsyncGenerator[bytes, None],
        length: int | None,
    ) -> GatewayError | None:
        """Run the model's hops; the error to answer with (raised by the caller once the exchange's scope is
        left, so it is never wrapped in an exception group), or ``None``."""
        try:
            await run_hops(
                ex,
                scope,
                send,
                body,
                length,
                catalog=self.catalog,
                router=self.router,
                transport=self.transport,
                relay=self._relay,
                limits=self.limits,
                fallback_max_depth=self.fallback_max_depth,
            )
        except GatewayError as exc:
            return exc
        except ClientDisconnectedError:  # while a multipart body was still streaming upstream
            ex.client_gone = True
        return None

    async def _record_usage(self, ex: Exchange) -> None:
        """The request's usage event to the writer (none when it never reached a model)."""
        event = usage_event(ex)
        if event is None:
            return
        if self.usage_wait is None:
            self.usage.record(event)
        else:
            await self.usage.record_waiting(event, limit=self.usage_wait)


def _trace_exchange(ex: Exchange, path: str) -> None:
    """The GenAI attributes of the request's span (``tracing.conventions``): the operation, the model as
    requested (only once it resolved: a configured name or alias, never an unknown name a client typed) and
    as served, token usage, finish reasons, and the key's ids."""
    span = tracing.request_span()
    if span is None or not span.is_recording():
        return
    identity = ex.identity
    operation = c.operation_of(path)
    attributes: dict[str, Any] = {
        c.GEN_AI_OPERATION_NAME: operation,
        c.KEY_ID: identity.key_id,
        c.ORG_ID: identity.org_id,
    }
    if identity.team_id is not None:
        attributes[c.TEAM_ID] = identity.team_id
    if ex.model is not None:
        span.update_name(f"{operation} {ex.requested_model}")
        attributes[c.GEN_AI_REQUEST_MODEL] = ex.requested_model
        attributes[c.GEN_AI_RESPONSE_MODEL] = ex.model.name
        attributes[c.GEN_AI_REQUEST_STREAM] = ex.stream
    if ex.upstream is not None:
        attributes[c.GEN_AI_PROVIDER_NAME] = c.provider_of(ex.upstream.provider)
    if ex.usage is not None:
        attributes[c.GEN_AI_USAGE_INPUT_TOKENS] = ex.usage.prompt_tokens
        attributes[c.GEN_AI_USAGE_OUTPUT_TOKENS] = ex.usage.completion_tokens
    if ex.finish_reasons:
        attributes[c.GEN_AI_RESPONSE_FINISH_REASONS] = ex.finish_reasons
    if ex.ttft is not None and ex.stream:
        attributes[c.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ex.ttft
    span.set_attributes(attributes)


async def _watch_disconnect(
    receive: Receive, body_done: trio.Event, scope: trio.CancelScope, ex: Exchange
) -> None:
    if not body_done.is_set():  # (a JSON body is read before: no yield for a set event)
        await body_done.wait()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            _client_left(ex, scope)
            return


def _client_left(ex: Exchange, scope: trio.CancelScope) -> None:
    """The client went away: the exchange is cancelled, unless its answer's last message is going out or its
    deadline has passed (then the gateway cut the client)."""
    if not ex.final_send and trio.current_time() < ex.deadline:
        ex.client_gone = True
        scope.cancel()


async def _send_json(send: Send, status: int, body: bytes, extra: tuple[tuple[str, str], ...] = ()) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
