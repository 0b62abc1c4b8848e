"""The attempt chain of one model: candidates in order, hedged requests, and when to give up
(docs/reference/behaviour.md 6.2).

The router orders the model's upstreams (strategy, health, breakers, cooldowns). Each candidate's breaker
is asked for a permit right before its attempt, so candidates that are never tried reserve nothing.

With hedging (or tracing) on, an attempt lives in its own task inside the chain's nursery (the request's
lifetime, STYLE P1) and runs only the *header phase*: it opens the upstream request under its attempt
deadline (``attempt_timeout``, else the model's deadline) and, once response headers are in, hands an
:class:`Opened` to the chain and waits until the chain releases it; leaving the transport's context then
closes or pools the connection. Without hedging the attempts cannot overlap, so each runs in the chain's own
task, relay included (:meth:`AttemptChain._in_turn`): the same decisions, without a task and its hand-over
(two scheduler rounds of every request, one of them between the upstream's answer and the client's). Tracing
keeps the tasks: an attempt's span is current in its own task only. The chain:

- takes the first :class:`Opened` whose status it will answer with as the **winner**: every other running
  attempt is cancelled at once (its upstream connection closed) and counts as breaker-neutral;
- fails over on a refused connection, an attempt deadline, a 500/502/503/504 (breaker failure) or a 429
  (cooldown for its ``Retry-After``, breaker-neutral); a refused answer's body is drained with a byte and time
  bound before its connection is released, never read whole;
- **hedges** (``hedge_after``): when no candidate has produced response headers that long after the last
  start, the next candidate starts beside the running one; the first to answer wins;
- never retries once a byte went to the client: the winner is handed to the caller, who relays it; only when
  its body breaks before anything was sent (the caller raises :class:`AnswerBroken`: the upstream closed in
  the middle of a buffered body) is that a breaker failure and the next candidate is tried;
- relays the answer of the last candidate whatever its status, unless the caller may still fall back to
  another model (``final=False``), in which case a 5xx/429 or a transport failure ends the chain with
  :class:`ChainExhausted` instead.

Only the winner's outcome reaches its breaker as success or failure (decided by the caller after relaying,
see :meth:`Opened.settle`).

While tracing is on, each attempt is a ``CLIENT`` span (:mod:`voidllm.tracing`), started in the chain's task
(the request's span is current there) and current in the attempt's own task, whose upstream request carries
its ``traceparent``; it ends with the attempt, after the relay for the winner, with the attempt's outcome.

Every decided attempt (failed, or relayed) is counted in the router's per-minute error rates
(:mod:`voidllm.routing.error_rates`), and every failure, failover away from a deployment and model whose
every breaker was open is handed to the chain's ``note`` hook as an incident (kinds and error classes of
:mod:`voidllm.usage.incidents`: metadata only, never an answer's body). Incidents number attempts from
``attempts_before + 1`` in the order they start, so a request's fallback hops continue the count.
"""

from __future__ import annotations

import contextlib
import math
import operator
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import trio

from voidllm import tracing
from voidllm.asgi import ClientDisconnectedError
from voidllm.errors import BadGatewayError, CircuitOpenError, GatewayError, GatewayTimeoutError
from voidllm.proxy import metrics as m
from voidllm.routing.breaker import Permit
from voidllm.routing.cooldown import parse_retry_after
from voidllm.routing.metrics import (
    deployment_label,
    record_attempt,
    record_failover,
    record_hedge,
    record_retry,
)
from voidllm.routing.registry import Model, Upstream
from voidllm.routing.strategy import Router
from voidllm.tracing import conventions as c
from voidllm.transport.base import Transport, UpstreamError, UpstreamResponse, UpstreamTimeoutError

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
CREDENTIALS_REFUSED = frozenset({401, 403})
"""Relayed 4xx statuses that are the upstream's incident (it refused the gateway's key), not the client's."""
_NOT_ERRORS = frozenset({"ok", "cancelled"})
"""Attempt outcomes that do not make its span an error (a hedge that lost, a request that went away)."""
DRAIN_BYTES = 64 * 1024
DRAIN_SECONDS = 2.0


class AnswerBroken(Exception):
    """Raised by the relay: the winner's body broke (closed, malformed) before a byte went to the client."""


IncidentHook = Callable[[str, Model, Upstream, str, "int | None", int], None]
"""``(kind, model, upstream, error_class, status_code, attempt)``: note one incident of the request."""


class ChainExhausted(Exception):
    """No candidate of this model gave an answer worth relaying; the caller may fall back to another model.

    ``error`` is what the client gets when there is nowhere to fall back to.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(type(error).__name__)
        self.error = error


@attrs.define(eq=False)
class Opened:
    """An attempt that has response headers; the caller relays ``response`` and then calls :meth:`settle`."""

    model: Model
    upstream: Upstream
    permit: Permit
    response: UpstreamResponse
    router: Router
    span: Any = None  # the attempt's span while tracing is on
    outcome: str = "cancelled"  # the span's voidllm.outcome: decided by the chain (settle, refuse, broken)
    attempt: int = 0  # its number in the request (incidents)
    note: IncidentHook | None = None
    _release: trio.Event = attrs.field(factory=trio.Event)

    def settle(self, *, broken: bool, timeout: bool = False) -> None:
        """Record the breaker outcome of the relayed answer (``broken``: a stream that did not finish;
        ``timeout``: its body was not read by the deadline) and its incident, if it failed."""
        label = deployment_label(self.model.name, self.upstream.name)
        status = self.response.status
        if status == 429:
            self.permit.neutral()
            self.router.cooldowns.park(self.upstream.name, parse_retry_after(self.response.headers, _wall()))
            record_attempt(self.model.name, label, "rate_limited")
            self.outcome = "rate_limited"
            self._decided("http_429")
        elif status >= 500 or broken:
            self.permit.failure()
            record_attempt(self.model.name, label, "failure")
            self.outcome = "broken" if broken else "status_5xx"
            self._decided("http_5xx" if status >= 500 else "timeout" if timeout else "protocol_error")
        else:
            self.permit.success()
            record_attempt(self.model.name, label, "success")
            self.outcome = "ok"
            self._decided("http_4xx" if status in CREDENTIALS_REFUSED else None)

    def _decided(self, error_class: str | None) -> None:
        """Count the attempt in the error rates; note its incident when it failed."""
        self.router.error_rates.record(self.upstream.name, failed=error_class is not None)
        if error_class is not None and self.note is not None:
            self.note("failure", self.model, self.upstream, error_class, self.response.status, self.attempt)


@attrs.define(eq=False)
class _Failed:
    upstream: Upstream
    timeout: bool  # the attempt deadline passed (else the connection failed)
    attempt: int


@attrs.define(eq=False)
class _ClientFault:
    """The client's streamed body failed while the upstream read it (too large, too slow, a second
    ``model`` field, gone): the client's error, raised unwrapped by :meth:`AttemptChain.run`, not the
    upstream's fault."""

    error: GatewayError | ClientDisconnectedError


Request = Callable[[Upstream], tuple[str, list[tuple[bytes, bytes]], Any]]
"""Builds one upstream's request: ``(url, headers, body)``; may raise a client error (untranslatable)."""


@attrs.define(eq=False)
class AttemptChain:
    """Runs the candidates of one model for one request; see the module docstring."""

    model: Model
    router: Router
    transport: Transport
    build: Request
    body: bytes | Any  # as the client sent it (after rewriting); only its replayability matters here
    length: int | None
    deadline: float
    final: bool = True
    on_attempt: Callable[[Upstream], None] = lambda upstream: None
    operation: str = "chat"  # gen_ai.operation.name, for the attempts' spans
    fallback: bool = False  # this model is a fallback of the requested one (the spans' voidllm.fallback)
    note: IncidentHook | None = None
    attempts_before: int = 0  # attempts of the request's earlier hops (incidents number on from there)
    _scopes: dict[Upstream, trio.CancelScope] = attrs.field(factory=dict)
    _last_started: float = 0.0
    _started: int = 0
    _skipped: list[Upstream] | None = None  # candidates whose breaker refused a permit

    @property
    def started(self) -> int:
        """Attempts this chain started."""
        return self._started

    async def run(self, relay: Callable[[Opened], Awaitable[None]]) -> None:
        """Find the winner and hand it to ``relay`` (which relays and then calls :meth:`Opened.settle`).

        Raises:
            ChainExhausted: when ``final`` is False and the model failed in a way another model may fix.
            CircuitOpenError, BadGatewayError, GatewayTimeoutError: when the chain failed and is final.
        """
        candidates = self.router.order(
            self.model.upstreams,
            strategy=self.model.strategy,
            model=self.model.name,
            max_retries=self.model.max_retries,
        )
        if not isinstance(self.body, bytes):
            candidates = candidates[:1]  # a streamed (multipart) body cannot be sent twice
        if self.model.hedge_after is None and tracing.state.tracer is None:
            await self._run_in_turn(candidates, relay)
            return
        error: Exception | None = None
        async with trio.open_nursery() as nursery:
            try:
                await self._run(nursery, candidates, relay)
            except Exception as exc:  # re-raised below, outside the nursery, so it is not wrapped in a group
                error = exc
            nursery.cancel_scope.cancel()
        if error is not None:
            raise error

    async def _run_in_turn(
        self, candidates: list[Upstream], relay: Callable[[Opened], Awaitable[None]]
    ) -> None:
        """The chain without hedging or tracing: one attempt after another, each in this task."""
        waiting = iter(candidates)
        tried = 0
        last_error: Exception | None = None
        while (started := self._next_candidate(waiting, hedging=False)) is not None:
            if tried:
                record_retry(self.model.name, self.model.strategy)
            tried += 1
            upstream, request, permit, _span, attempt = started
            last_error = await self._in_turn(upstream, request, permit, attempt, relay, waiting)
            if last_error is None:
                return
        raise self._exhausted(tried, last_error)

    async def _in_turn(
        self,
        upstream: Upstream,
        request: tuple[str, list[tuple[bytes, bytes]], Any],
        permit: Permit,
        attempt: int,
        relay: Callable[[Opened], Awaitable[None]],
        waiting: Iterator[Upstream],
    ) -> Exception | None:
        """One attempt in the chain's task: open it under its deadline, then refuse (fail over) or relay its
        answer, as :meth:`_run` decides for an attempt task's; ``None`` once relayed, else the error the
        client would get if no other candidate answers. The client's streamed body failing while the
        upstream reads it raises that error, as :meth:`run` does."""
        url, headers, body = request
        began = time.perf_counter()
        attempt_deadline = self.deadline
        if self.model.attempt_timeout is not None:
            attempt_deadline = min(self.deadline, trio.current_time() + self.model.attempt_timeout)
        # Leaving ``permit`` without an outcome (a request that went away) is neutral.
        with permit:
            async with contextlib.AsyncExitStack() as stack:
                resp: UpstreamResponse | None = None
                with trio.move_on_at(attempt_deadline):
                    try:
                        resp = await stack.enter_async_context(
                            self.transport.request(b"POST", url, headers, body, content_length=self.length)
                        )
                    except UpstreamError as exc:
                        permit.failure()
                        failed = _Failed(
                            upstream, timeout=isinstance(exc, UpstreamTimeoutError), attempt=attempt
                        )
                        return self._failed(failed, more=_has_more(waiting))
                if resp is None:  # the attempt deadline passed before the headers
                    permit.failure()
                    return self._failed(
                        _Failed(upstream, timeout=True, attempt=attempt), more=_has_more(waiting)
                    )
                self.router.latency.observe(upstream.name, time.perf_counter() - began)
                opened = Opened(
                    self.model, upstream, permit, resp, self.router, attempt=attempt, note=self.note
                )
                if self._refuse(opened, last=not _has_more(waiting)):
                    await _drain(resp)
                    return BadGatewayError("upstream provider is unavailable")
                try:
                    await relay(opened)
                except AnswerBroken:
                    return self._broken(opened, more=_has_more(waiting))
                return None

    async def _run(
        self, nursery: trio.Nursery, candidates: list[Upstream], relay: Callable[[Opened], Awaitable[None]]
    ) -> None:
        send, receive = trio.open_memory_channel[Opened | _Failed | _ClientFault](len(candidates))
        waiting = iter(candidates)
        running = tried = 0
        last_error: Exception | None = None
        hedge = self.model.hedge_after
        while True:
            if running == 0 or (hedge is not None and trio.current_time() >= self._last_started + hedge):
                if self._start_next(nursery, waiting, send, hedging=running > 0):
                    if running and hedge is not None:
                        record_hedge(self.model.name, "started")
                    elif tried:
                        record_retry(self.model.name, self.model.strategy)
                    running, tried = running + 1, tried + 1
                elif running == 0:
                    break
            with trio.move_on_at(self._next_hedge_at(hedge, running, waiting)):
                result = await receive.receive()
                running -= 1
                if isinstance(result, _ClientFault):
                    raise result.error
                if isinstance(result, _Failed):
                    last_error = self._failed(result, more=running > 0 or _has_more(waiting))
                    continue
                if self._refuse(result, last=not running and not _has_more(waiting)):
                    result.outcome = "rate_limited" if result.response.status == 429 else "status_5xx"
                    await _drain(result.response)
                    result._release.set()
                    last_error = BadGatewayError("upstream provider is unavailable")
                    continue
                if hedge is not None and tried > 1:
                    record_hedge(self.model.name, "won")
                self._cancel_others(result.upstream)
                try:
                    await relay(result)
                except AnswerBroken:
                    result.outcome = "broken"
                    running = 0  # the others were cancelled when this one won
                    _discard(receive)
                    last_error = self._broken(result, more=_has_more(waiting))
                    continue
                finally:
                    result._release.set()
                return
        raise self._exhausted(tried, last_error)

    def _exhausted(self, tried: int, last_error: Exception | None) -> Exception:
        """The chain's error when no candidate's answer was relayed (see :meth:`_final`)."""
        if tried == 0:
            for upstream in self._skipped or ():
                self._note("failure", upstream, "breaker_open", None, 0)
            return self._final(CircuitOpenError("upstream temporarily unavailable"))
        return self._final(last_error or BadGatewayError("upstream provider is unavailable"))

    def _start_next(self, nursery: trio.Nursery, waiting: Any, send: Any, *, hedging: bool) -> bool:
        started = self._next_candidate(waiting, hedging=hedging)
        if started is None:
            return False
        upstream, request, permit, span, attempt = started
        scope = self._scopes[upstream] = trio.CancelScope()
        nursery.start_soon(self._attempt, upstream, request, permit, scope, send, span, attempt)
        return True

    def _next_candidate(
        self, waiting: Iterator[Upstream], *, hedging: bool
    ) -> tuple[Upstream, tuple[str, list[tuple[bytes, bytes]], Any], Permit, Any, int] | None:
        """The next candidate whose breaker gives a permit, its request, the permit, its span (while tracing)
        and its attempt number; ``None`` when none is left. Candidates refused a permit are counted."""
        for upstream in waiting:
            request = self.build(upstream)  # in this task, so an untranslatable request is the client's 400
            permit = self.router.breakers.try_acquire(upstream.name)
            if permit is None:
                record_attempt(
                    self.model.name, deployment_label(self.model.name, upstream.name), "breaker_open"
                )
                if self._skipped is None:
                    self._skipped = []
                self._skipped.append(upstream)
                continue
            self._last_started = trio.current_time()
            self.on_attempt(upstream)
            self._started += 1
            span = None
            if tracing.state.tracer is not None:  # started here: the attempt task inherits this context
                span = self._attempt_span(upstream, self._started, hedging=hedging)
            return upstream, request, permit, span, self.attempts_before + self._started
        return None

    def _next_hedge_at(self, hedge: float | None, running: int, waiting: Any) -> float:
        if hedge is None or running == 0 or not _has_more(waiting):
            return math.inf
        return self._last_started + hedge

    async def _attempt(
        self,
        upstream: Upstream,
        request: tuple[str, list[tuple[bytes, bytes]], Any],
        permit: Permit,
        scope: trio.CancelScope,
        send: Any,
        span: Any,
        attempt: int,
    ) -> None:
        if span is None:
            await self._exchange(upstream, request, permit, scope, send, None, None, attempt)
            return
        url, headers, body = request
        request = (url, [*headers, *tracing.traceparent_header(span)], body)
        token = tracing.use(span)
        opened: list[Opened] = []
        outcome = "cancelled"
        try:
            outcome = await self._exchange(upstream, request, permit, scope, send, span, opened, attempt)
        finally:
            if opened:
                outcome = opened[0].outcome
                span.set_attributes({c.HTTP_RESPONSE_STATUS_CODE: opened[0].response.status})
            span.set_attributes({c.OUTCOME: outcome})
            tracing.end_span(span, error_type=None if outcome in _NOT_ERRORS else outcome, token=token)

    def _attempt_span(self, upstream: Upstream, number: int, *, hedging: bool) -> Any:
        address, port = c.server_of(upstream.base_url)
        attributes: dict[str, Any] = {
            c.GEN_AI_OPERATION_NAME: self.operation,
            c.GEN_AI_PROVIDER_NAME: c.provider_of(upstream.provider),
            c.GEN_AI_REQUEST_MODEL: self.model.name,
            c.DEPLOYMENT: upstream.name,
            c.ATTEMPT: number,
            c.SERVER_ADDRESS: address,
            c.SERVER_PORT: port,
        }
        if number > 1 and not hedging:  # the flags only when true: each attribute costs per span
            attributes[c.FAILOVER] = True
        if hedging:
            attributes[c.HEDGE] = True
        if self.fallback:
            attributes[c.FALLBACK] = True
        return tracing.start_child(f"{self.operation} {self.model.name}", attributes)

    async def _exchange(
        self,
        upstream: Upstream,
        request: tuple[str, list[tuple[bytes, bytes]], Any],
        permit: Permit,
        scope: trio.CancelScope,
        send: Any,
        span: Any,
        opened_out: list[Opened] | None,
        attempt: int,
    ) -> str:
        """One attempt's header phase (see the module docstring); returns its outcome unless it opened (then
        the chain decides it, in ``Opened.outcome``)."""
        url, headers, body = request
        began = time.perf_counter()
        attempt_deadline = self.deadline
        if self.model.attempt_timeout is not None:
            attempt_deadline = min(self.deadline, trio.current_time() + self.model.attempt_timeout)
        # Leaving ``permit`` without an outcome (a hedge that lost, a request that went away) is neutral.
        with permit, scope:
            with trio.CancelScope(deadline=attempt_deadline) as waiting:
                try:
                    async with self.transport.request(
                        b"POST", url, headers, body, content_length=self.length
                    ) as resp:
                        waiting.deadline = math.inf
                        self.router.latency.observe(upstream.name, time.perf_counter() - began)
                        opened = Opened(
                            self.model,
                            upstream,
                            permit,
                            resp,
                            self.router,
                            span,
                            attempt=attempt,
                            note=self.note,
                        )
                        if opened_out is not None:
                            opened_out.append(opened)
                        await send.send(opened)
                        await opened._release.wait()
                        return "ok"
                except UpstreamError as exc:
                    permit.failure()
                    timeout = isinstance(exc, UpstreamTimeoutError)
                    await send.send(_Failed(upstream, timeout=timeout, attempt=attempt))
                    return "timeout" if timeout else type(exc).__name__
                except (GatewayError, ClientDisconnectedError) as exc:  # raised by the client's streamed body
                    await send.send(_ClientFault(exc))  # the permit is left without an outcome: neutral
                    return "client_error"
            permit.failure()
            await send.send(_Failed(upstream, timeout=True, attempt=attempt))
            return "timeout"
        return "cancelled"

    def _failed(self, result: _Failed, *, more: bool) -> Exception:
        """Record a failed attempt (its breaker already knows) and return what the client would get."""
        label = deployment_label(self.model.name, result.upstream.name)
        m.UPSTREAM_ERRORS.labels(self.model.name, result.upstream.provider).inc()
        record_attempt(self.model.name, label, "failure")
        error_class = "timeout" if result.timeout else "connect_error"
        self._failure(result.upstream, error_class, None, result.attempt, failover=more)
        if more:
            record_failover(self.model.name, label, error_class)
        if result.timeout:
            return GatewayTimeoutError("upstream did not answer in time")
        return BadGatewayError("upstream provider is unavailable")

    def _broken(self, opened: Opened, *, more: bool) -> Exception:
        """Record a winner whose body broke before it was relayed (a breaker failure); the client's error."""
        label = deployment_label(self.model.name, opened.upstream.name)
        opened.permit.failure()
        m.UPSTREAM_ERRORS.labels(self.model.name, opened.upstream.provider).inc()
        record_attempt(self.model.name, label, "failure")
        status = opened.response.status
        error_class = "http_5xx" if status >= 500 else "protocol_error"
        self._failure(opened.upstream, error_class, status, opened.attempt, failover=more)
        if more:
            record_failover(self.model.name, label, "broken_body")
        return BadGatewayError("upstream provider is unavailable")

    def _refuse(self, opened: Opened, *, last: bool) -> bool:
        """Whether to fail over instead of relaying this answer (recording why)."""
        status = opened.response.status
        retryable = status == 429 or status in RETRYABLE_STATUS or (last and status >= 500)
        if not retryable or (last and self.final):
            return False
        label = deployment_label(self.model.name, opened.upstream.name)
        if status == 429:
            opened.permit.neutral()
            self.router.cooldowns.park(
                opened.upstream.name, parse_retry_after(opened.response.headers, _wall())
            )
            record_attempt(self.model.name, label, "rate_limited")
            record_failover(self.model.name, label, "rate_limited")
        else:
            opened.permit.failure()
            m.UPSTREAM_ERRORS.labels(self.model.name, opened.upstream.provider).inc()
            record_attempt(self.model.name, label, "failure")
            record_failover(self.model.name, label, "status_5xx")
        error_class = "http_429" if status == 429 else "http_5xx"
        self._failure(opened.upstream, error_class, status, opened.attempt, failover=not last)
        return True

    def _failure(
        self, upstream: Upstream, error_class: str, status: int | None, attempt: int, *, failover: bool
    ) -> None:
        """Count a failed attempt in the error rates and note it (and the failover it causes)."""
        self.router.error_rates.record(upstream.name, failed=True)
        self._note("failure", upstream, error_class, status, attempt)
        if failover:
            self._note("failover", upstream, error_class, status, attempt)

    def _note(
        self, kind: str, upstream: Upstream, error_class: str, status: int | None, attempt: int
    ) -> None:
        if self.note is not None:
            self.note(kind, self.model, upstream, error_class, status, attempt)

    def _cancel_others(self, winner: Upstream) -> None:
        for upstream, scope in self._scopes.items():
            if upstream is not winner:
                scope.cancel()

    def _final(self, error: Exception) -> Exception:
        deadline_passed = trio.current_time() >= self.deadline
        if self.final or deadline_passed:
            return error
        return ChainExhausted(error)


def _has_more(iterator: Iterator[Any]) -> bool:
    """Whether a list iterator has items left (without consuming one)."""
    return operator.length_hint(iterator) > 0


def _discard(receive: Any) -> None:
    """Drop what cancelled attempts left in the channel (a hedge that had its headers as the winner won)."""
    while True:
        try:
            stale = receive.receive_nowait()
        except trio.WouldBlock:
            return
        if isinstance(stale, Opened):
            stale._release.set()


def _wall() -> datetime:
    return datetime.now(UTC)


async def _drain(resp: UpstreamResponse) -> None:
    """Read a little of a refused attempt's body so its connection may be reused; never all of it."""
    read = 0
    with trio.move_on_after(DRAIN_SECONDS):
        async for chunk in resp.aiter_bytes():
            read += len(chunk)
            if read > DRAIN_BYTES:
                return
