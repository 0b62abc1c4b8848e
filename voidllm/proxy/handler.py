"""The proxy hot path: one raw ASGI handler for every proxied ``POST /v1/...`` route.

It bypasses Quart on purpose (ARCHITECTURE.md section 3: Quart's routing costs 35-50 % of proxied throughput).
Per request, in this order: authenticate from the key cache (no database), read the body within
``max_request_body``, read ``model`` (JSON parsed once; multipart read only up to the ``model`` field), count
the request against its key/team/org limits and reserve its estimated tokens (:mod:`voidllm.limits`; keys
without limits skip it), resolve the model in the registry, rewrite the body only where needed, then run the
attempt chain and relay the answer. The token reservation is settled with the real usage right before the
answer's last bytes go out (or when the request ends without an answer), shielded and bounded.

Lifetimes. Everything a request starts lives in its own nursery (STYLE P1): the upstream exchange and a
watcher that turns the client's ``http.disconnect`` into cancellation of that nursery, so a client that goes
away cancels the upstream request at once (the transport closes the upstream socket in its shielded exit).
Usage is handed to the writer service with ``send_nowait`` after the exchange, never written here.

Deadlines (STYLE P3). One deadline per request, computed once: the model's ``timeout``, else
``max_stream_duration`` for streams and ``write_timeout`` otherwise. While waiting for an upstream's answer
it bounds the attempt; once an answer is committed to the client, the relay bounds itself with the same
deadline, every send included (:mod:`voidllm.web.writes` makes hypercorn's writes cancellable), so a client
that reads nothing is cut there: the last message (a stream's ``stream_incomplete`` event) gets
:data:`END_GRACE` more, then the connection is closed (a write cut part-way closes it at once), the upstream
connection with it, and the usage row says ``timeout``. What a request holds is what is in flight: one
upstream chunk for streams, the answer (at most ``max_response_body``) for non-streamed ones.

Attempts (docs/reference/behaviour.md 6.2). The router orders the model's upstreams (strategy, health,
breakers, cooldowns); each candidate's breaker is asked for a permit right before its attempt, so candidates
never tried reserve nothing. The next candidate is tried after a connection error, an attempt deadline
(``attempt_timeout``, for response headers) or a 500/502/503/504 (breaker failure), and after a 429 (the
upstream is parked in cooldown for its ``Retry-After``; breaker-neutral). A refused attempt's body is drained
with a byte and time bound so its connection may be reused, never read whole. Nothing is retried once a byte
went to the client, and a streamed (multipart) body is sent once; but a non-streamed body that breaks while it
is read (the upstream closed part-way, a Content-Length never reached: :class:`AnswerBroken`) was not sent
yet, so the next candidate is tried. The last candidate's answer goes to the client as it is; when it broke,
the client gets 502 ``upstream_unavailable`` in the endpoint's envelope. Breaker outcomes blame only the
upstream: failure for 5xx, a body or stream the upstream broke or ended without its terminal event, a
non-streamed body not read by the deadline; neutral for 429, a client disconnect, and the request's own
deadline passing during a stream (whether the client was slow to take it or the answer was long); success
otherwise.

Client tags. ``X-Source`` and ``X-Project`` are optional labels the client chooses to send (which tool, which
project); they are read in the same pass over the headers as the key, validated (:func:`client_tag`: at most
64 characters of ``[A-Za-z0-9._:/@-]``, else 400 naming the header, never echoing the value) and stored on the
usage event as metadata. An empty value counts as absent; a repeated header counts by its first value.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Protocol

import attrs
import orjson
import trio

from voidllm.asgi import SCOPE_KEY, BodyReader, ClientDisconnectedError, read_body, send_error
from voidllm.auth.cache import KeyCache
from voidllm.clock import utcnow
from voidllm.errors import (
    BadGatewayError,
    BadRequestError,
    GatewayError,
    GatewayTimeoutError,
    PermissionDeniedError,
    ServiceUnavailableError,
    UpstreamResponseTooLargeError,
    model_not_found,
)
from voidllm.identity import KeyIdentity
from voidllm.limits.base import Admission, Limiter, NoLimiter, limited
from voidllm.limits.estimate import estimate_tokens
from voidllm.providers.anthropic import OpenAIToMessagesStream, anthropic_stream_error
from voidllm.providers.base import Adapter, StreamTranslationError, TranslationError, Usage
from voidllm.proxy import messages
from voidllm.proxy import metrics as m
from voidllm.proxy.attempts import AnswerBroken, AttemptChain, ChainExhausted, Opened
from voidllm.proxy.calls import TRANSLATED, build_call, is_translated
from voidllm.proxy.endpoints import ENDPOINTS, Endpoint
from voidllm.proxy.headers import SSE_HEADERS, client_response_headers, header
from voidllm.proxy.jsonbody import JsonRequest
from voidllm.proxy.multipart import MultipartHead, boundary_from_content_type
from voidllm.proxy.sse import SSERelay, abort_event
from voidllm.proxy.transport import Transport, UpstreamError, UpstreamResponse
from voidllm.routing.catalog import Catalog
from voidllm.routing.fallback import fallback_plan
from voidllm.routing.registry import Model, Upstream
from voidllm.routing.strategy import Router
from voidllm.usage.cost import cost_estimate
from voidllm.usage.events import TokenUsage, UsageEvent
from voidllm.usage.writer import UsageRecorder

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

CLIENT_CLOSED_STATUS = 499
_READ_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-source", b"x-project"})
_TAG = re.compile(rb"[A-Za-z0-9._:/@-]{1,64}")
SETTLE_LIMIT = 2.0
"""Seconds a finished request may spend settling its token reservation (shielded from cancellation)."""
END_GRACE = 1.0
"""Seconds the last message of an answer may take when the request's deadline has passed (a stream's end)."""


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

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id: str = scope[SCOPE_KEY]
        endpoint = ENDPOINTS[scope["path"]]
        try:
            found: dict[bytes, bytes] = {}
            for name, value in scope["headers"]:  # one pass: credentials and client tags
                if name in _READ_HEADERS:
                    found.setdefault(name, value)
            identity = self._authenticate(found, endpoint)
            ex = Exchange(
                request_id,
                identity,
                endpoint,
                started,
                utcnow(),
                source=client_tag(found.get(b"x-source"), "X-Source"),
                project=client_tag(found.get(b"x-project"), "X-Project"),
            )
            try:
                await self._serve(ex, scope, receive, send)
            finally:
                if ex.admission is not None:  # not settled before the answer's end (no answer, or an error)
                    await self._settle(ex)
        except GatewayError as exc:
            if endpoint.dialect == "anthropic":
                await _send_json(send, exc.status, messages.error_body(exc.status, exc.message), exc.headers)
            else:
                await send_error(send, exc.status, exc.code, exc.message, request_id, exc.headers)
        except ClientDisconnectedError:
            return

    def _authenticate(self, headers: dict[bytes, bytes], endpoint: Endpoint) -> KeyIdentity:
        """``Authorization: Bearer``; on the Anthropic route also ``x-api-key`` (Anthropic's SDK sends it)."""
        if endpoint.dialect == "anthropic":
            api_key = headers.get(b"x-api-key")
            if api_key is not None:
                return self.keys.authenticate_key(api_key.decode("latin-1"))
        authorization = headers.get(b"authorization")
        return self.keys.authenticate(authorization.decode("latin-1") if authorization else None)

    async def _serve(self, ex: Exchange, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        body_done = trio.Event()
        body: bytes | AsyncGenerator[bytes, None]
        length: int | None
        if ex.endpoint.multipart:
            body, length = await self._multipart_body(ex, scope, receive, body_done)
        else:
            body, length = await self._json_body(ex, scope, receive), None
            body_done.set()
        error: GatewayError | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_disconnect, receive, body_done, nursery.cancel_scope, ex)
                try:
                    await self._hops(ex, scope, send, body, length)
                except GatewayError as exc:
                    error = exc  # raised after the nursery, so it is not wrapped in an exception group
                except ClientDisconnectedError:  # while a multipart body was still streaming upstream
                    ex.client_gone = True
                nursery.cancel_scope.cancel()
        finally:
            if not isinstance(body, bytes):
                await body.aclose()  # a multipart body the upstream did not read to its end
            event = self._finish(ex)
            if event is not None:
                if self.usage_wait is None:
                    self.usage.record(event)
                else:
                    await self.usage.record_waiting(event, limit=self.usage_wait)
        if error is not None and not ex.client_gone:
            raise error

    async def _hops(
        self, ex: Exchange, scope: dict[str, Any], send: Send, body: Any, length: int | None
    ) -> None:
        """The requested model, then its fallbacks (docs/reference/behaviour.md 6.5), until one gives an
        answer to relay."""
        assert ex.model is not None
        catalog = self.catalog
        plan = fallback_plan(
            ex.model, catalog.registry, self.fallback_max_depth, lambda m: catalog.allowed(ex.identity, m)
        )
        if ex.json is None:
            plan = plan[:1]  # a streamed (multipart) body is sent once
        for hop, model in enumerate(plan):
            if hop and ex.json is not None:  # a multipart body has no fallbacks
                body = ex.json.upstream_body(
                    ex.raw, canonical_model=model.name, inject_usage=ex.endpoint.usage_option
                )
            timeout = model.timeout or (
                self.limits.max_stream_duration if ex.stream else self.limits.request_timeout
            )
            deadline = trio.current_time() + timeout

            def build(upstream: Upstream, body: Any = body, model: Model = model) -> tuple[str, Any, Any]:
                if ex.anthropic is not None:
                    return self._build_messages_call(ex, scope, upstream, model, body)
                return build_call(
                    upstream,
                    model_name=model.name,
                    endpoint=ex.endpoint,
                    request=ex.json,
                    body=body,
                    client_headers=scope["headers"],
                    request_id=ex.request_id,
                )

            async def relay(opened: Opened, deadline: float = deadline, model: Model = model) -> None:
                ex.model, ex.upstream, ex.deadline = model, opened.upstream, deadline
                provider, resp = opened.upstream.provider, opened.response
                try:
                    if ex.anthropic is not None:
                        await self._respond_messages(ex, provider, resp, send, deadline)
                    elif is_translated(provider):
                        await self._respond_translated(ex, TRANSLATED[provider], resp, send, deadline)
                    else:
                        await self._respond(ex, resp, send, deadline)
                except GatewayTimeoutError:  # a whole body not read by the deadline: the upstream's slowness
                    opened.settle(broken=True)
                    raise
                opened.settle(broken=ex.upstream_fault)

            chain = AttemptChain(
                model,
                self.router,
                self.transport,
                build,
                body,
                length,
                deadline,
                final=hop == len(plan) - 1,
                on_attempt=functools.partial(self._attempting, ex, model),
            )
            try:
                await chain.run(relay)
                return
            except ChainExhausted as exhausted:
                log.info("falling back", extra={"model": model.name, "fallback": plan[hop + 1].name})
                error = exhausted.error
            except (BadGatewayError, GatewayTimeoutError, ServiceUnavailableError) as exc:
                ex.outcome, ex.status_code = (
                    ("timeout", 504)
                    if isinstance(exc, GatewayTimeoutError)
                    else ("upstream_error", exc.status)
                )
                raise
        raise error  # unreachable: the last hop is final

    def _build_messages_call(
        self, ex: Exchange, scope: dict[str, Any], upstream: Upstream, model: Model, body: Any
    ) -> tuple[str, Any, Any]:
        assert ex.anthropic is not None
        if upstream.provider == "anthropic":
            return messages.anthropic_call(
                upstream,
                path=ex.endpoint.upstream_path,
                body=ex.anthropic.anthropic_body(ex.anthropic_raw, model.name),
                client_headers=scope["headers"],
                request_id=ex.request_id,
                stream=ex.stream,
            )
        if ex.endpoint.upstream_path.endswith("count_tokens"):
            raise TranslationError(
                "count_tokens is only available for models served by an anthropic upstream"
            )
        return build_call(
            upstream,
            model_name=model.name,
            endpoint=ex.endpoint,
            request=ex.json,
            body=body,
            client_headers=scope["headers"],
            request_id=ex.request_id,
        )

    async def _respond_messages(
        self, ex: Exchange, provider: str, resp: UpstreamResponse, send: Send, deadline: float
    ) -> None:
        """An answer for an Anthropic client: as it is from Anthropic, translated from anyone else."""
        ex.status_code = resp.status
        ok = 200 <= resp.status < 300
        streamed = b"text/event-stream" in (header(resp.headers, b"content-type") or b"")
        if provider == "anthropic":
            if ok and streamed:
                passthrough = Translated(messages.AnthropicPassthrough(), _anthropic_abort)
                await self._relay_stream(
                    ex, passthrough, resp, send, deadline, _sse_headers(resp, as_is=True)
                )
            else:
                await self._relay_buffered(
                    ex,
                    resp,
                    send,
                    deadline,
                    translate=(
                        (lambda body: (body, _token_usage(messages.usage_of_message(body)))) if ok else None
                    ),
                )
            return
        egress = TRANSLATED.get(provider)
        if not ok:
            await self._relay_buffered(
                ex,
                resp,
                send,
                deadline,
                translate=lambda body: (messages.error_to_anthropic(resp.status, body), None),
            )
        elif ex.stream:
            first = egress.stream_translator(model=ex.requested_model, include_usage=True) if egress else None  # type: ignore[call-arg]
            translator = messages.ToMessagesStream(first, OpenAIToMessagesStream(model=ex.requested_model))
            stream = Translated(translator, _anthropic_abort)
            await self._relay_stream(ex, stream, resp, send, deadline, _sse_headers(resp))
        else:

            def translate(body: bytes) -> tuple[bytes, TokenUsage | None]:
                translated, usage = messages.to_messages_response(
                    body, model=ex.requested_model, egress=egress
                )
                return translated, _token_usage(usage)

            await self._relay_buffered(ex, resp, send, deadline, translate=translate)

    def _attempting(self, ex: Exchange, model: Model, upstream: Upstream) -> None:
        ex.model, ex.upstream = model, upstream
        if not ex.upstream_started:
            ex.upstream_started = time.perf_counter()

    async def _json_body(self, ex: Exchange, scope: dict[str, Any], receive: Receive) -> bytes:
        raw = await read_body(
            scope, receive, limit=self.limits.max_request_body, read_timeout=self.limits.read_timeout
        )
        if ex.endpoint.dialect == "anthropic":
            ex.anthropic = messages.MessagesRequest.parse(
                raw, count_tokens=ex.endpoint.upstream_path.endswith("count_tokens")
            )
            ex.anthropic_raw, raw = raw, orjson.dumps(ex.anthropic.openai.payload)
            request = ex.anthropic.openai
        else:
            request = JsonRequest.parse(raw)
        ex.json, ex.raw = request, raw
        if limited(ex.identity):  # counted before model resolution, as in the Go original
            if ex.anthropic is not None:
                reserve = estimate_tokens(
                    len(ex.anthropic_raw), ex.anthropic.payload, self.completion_reserve
                )
            else:
                reserve = estimate_tokens(len(raw), request.payload, self.completion_reserve)
            ex.admission = await self.limiter.admit(ex.identity, reserve_tokens=reserve)
        model = self._resolve(ex, request.model)
        ex.stream = request.stream
        ex.inject_usage = ex.endpoint.usage_option and request.stream and not request.client_wants_usage
        return request.upstream_body(raw, canonical_model=model.name, inject_usage=ex.endpoint.usage_option)

    async def _multipart_body(
        self, ex: Exchange, scope: dict[str, Any], receive: Receive, body_done: trio.Event
    ) -> tuple[AsyncGenerator[bytes, None], int | None]:
        content_type = (header(scope["headers"], b"content-type") or b"").decode("latin-1")
        head = MultipartHead(boundary_from_content_type(content_type))  # MultipartError is a 400
        reader = BodyReader.start(
            scope, receive, limit=self.limits.max_request_body, read_timeout=self.limits.read_timeout
        )
        while reader.more and not head.done:
            if not head.feed(await reader.next()) and not reader.more:
                head.finish()
        assert head.model is not None
        if limited(ex.identity):
            reserve = estimate_tokens(0, None, self.completion_reserve)
            ex.admission = await self.limiter.admit(ex.identity, reserve_tokens=reserve)
        model = self._resolve(ex, head.model)
        first = head.rewrite(model.name)
        length = None if reader.declared is None else reader.declared + head.length_delta(model.name)

        async def stream() -> AsyncGenerator[bytes, None]:  # closed by _serve
            yield first
            while reader.more:
                out = head.relay(await reader.next())  # refuses a second `model` field later in the body
                if out:
                    yield out
            body_done.set()

        if not reader.more:
            body_done.set()
        return stream(), length

    async def _settle(self, ex: Exchange) -> None:
        """Release the request's token reservation and count its real usage (0 when it failed), once.

        The relays call it right before the last bytes of an answer go out, so a client that sends its next
        request as soon as it has read this one already finds the budget settled."""
        admission, ex.admission = ex.admission, None
        if admission is None:
            return
        used = ex.usage.total_tokens if ex.usage is not None else 0
        with trio.move_on_after(SETTLE_LIMIT, shield=True):
            await self.limiter.settle(admission, used_tokens=used)

    def _resolve(self, ex: Exchange, name: str) -> Model:
        ex.requested_model = name
        model = self.catalog.resolve(ex.identity, name)
        if model is None:
            raise model_not_found(name)
        if not self.catalog.allowed(ex.identity, model.name):
            raise PermissionDeniedError("access to the requested model is denied", code="model_access_denied")
        ex.model = model
        return model

    async def _respond(self, ex: Exchange, resp: UpstreamResponse, send: Send, deadline: float) -> None:
        ex.status_code = resp.status
        content_type = header(resp.headers, b"content-type") or b""
        if b"text/event-stream" in content_type:
            relay = SSERelay(strip_injected_usage=ex.inject_usage, terminal=ex.endpoint.terminal)
            await self._relay_stream(ex, relay, resp, send, deadline, _sse_headers(resp, as_is=True))
        elif content_type.startswith(b"application/json") or resp.status >= 400:
            await self._relay_buffered(ex, resp, send, deadline)
        else:
            await self._relay_binary(ex, resp, send, deadline)

    async def _relay_buffered(
        self,
        ex: Exchange,
        resp: UpstreamResponse,
        send: Send,
        deadline: float,
        translate: Callable[[bytes], tuple[bytes, TokenUsage | None]] | None = None,
    ) -> None:
        with trio.move_on_at(deadline) as timer:
            try:
                body = await _read_bounded(resp, self.limits.max_response_body)
            except UpstreamError as exc:  # nothing was sent yet: the chain fails over
                raise AnswerBroken from exc
        upstream_time = time.perf_counter() - ex.upstream_started
        if timer.cancelled_caught:
            ex.outcome, ex.status_code, ex.upstream_fault = "timeout", 504, True
            raise GatewayTimeoutError("upstream did not answer in time")
        headers = client_response_headers(resp.headers)
        if resp.status >= 300:
            ex.outcome = "upstream_error"
        if translate is not None:
            body, ex.usage = translate(body)
            headers = [h for h in headers if h[0] != b"content-type"] + [
                (b"content-type", b"application/json")
            ]
        elif 200 <= resp.status < 300:
            ex.usage = _usage_from_json(body)
        overhead = (time.perf_counter() - ex.started) - upstream_time
        headers.append((b"content-length", str(len(body)).encode()))
        headers.append((b"x-voidllm-overhead-ms", f"{overhead * 1000:.3f}".encode()))
        m.PROXY_OVERHEAD.observe(overhead)
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        await self._end(ex, send, body, deadline)

    async def _relay_stream(
        self,
        ex: Exchange,
        stream: EventStream,
        resp: UpstreamResponse,
        send: Send,
        deadline: float,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        """Relay an event stream through ``stream`` (an :class:`SSERelay`, or a provider's translator in a
        :class:`Translated`) event by event, flushing each; a stream that does not reach its terminal event
        ends with one abort event."""
        ex.stream = True
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        abort_code = "stream_incomplete"
        m.ACTIVE_STREAMS.inc()
        try:
            with trio.move_on_at(deadline) as timer:
                try:
                    async for chunk in resp.aiter_bytes():
                        out = stream.feed(chunk)
                        if out:
                            if ex.ttft is None and stream.saw_data:
                                ex.ttft = time.perf_counter() - ex.started
                            await _send_part(ex, send, out)
                        if stream.done or stream.aborted:
                            break
                    else:
                        abort_code = ""  # the upstream's end: the stream's own end follows
                except StreamTranslationError:
                    abort_code = "stream_transform_aborted"
                except UpstreamError:
                    ex.upstream_fault = True
                    m.UPSTREAM_ERRORS.labels(
                        ex.model.name if ex.model else "", ex.upstream.provider if ex.upstream else ""
                    ).inc()
            tail = stream.abort(abort_code) if abort_code else stream.finish()
            ex.usage = _token_usage(stream.usage)
            if not stream.done:
                _stream_cut(ex, timer.cancelled_caught)
            await self._end(ex, send, tail, deadline)
        finally:
            m.ACTIVE_STREAMS.dec()
            if ex.usage is None:
                ex.usage = _token_usage(stream.usage)

    async def _respond_translated(
        self, ex: Exchange, adapter: Adapter, resp: UpstreamResponse, send: Send, deadline: float
    ) -> None:
        """An answer of a translated provider in the OpenAI shape (streamed event by event; errors too)."""
        ex.status_code = resp.status
        if ex.stream and 200 <= resp.status < 300:
            include_usage = ex.json is not None and ex.json.client_wants_usage
            translator = adapter.stream_translator(model=ex.requested_model, include_usage=include_usage)  # type: ignore[call-arg]
            await self._relay_stream(ex, Translated(translator), resp, send, deadline, _sse_headers(resp))
            return

        def translate(body: bytes) -> tuple[bytes, TokenUsage | None]:
            translated, usage = adapter.translate_response(body, model=ex.requested_model)
            return translated, _token_usage(usage)

        await self._relay_buffered(ex, resp, send, deadline, translate=translate)

    async def _relay_binary(self, ex: Exchange, resp: UpstreamResponse, send: Send, deadline: float) -> None:
        headers = client_response_headers(resp.headers)
        length = header(resp.headers, b"content-length")
        if length is not None:
            if int(length) > self.limits.max_response_body:
                raise UpstreamResponseTooLargeError("upstream response is larger than max_response_body")
            headers.append((b"content-length", length))
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        sent = 0
        with trio.move_on_at(deadline) as timer:
            try:
                async for chunk in resp.aiter_bytes():
                    sent += len(chunk)
                    if sent > self.limits.max_response_body:
                        break
                    await _send_part(ex, send, chunk)
            except UpstreamError:
                ex.upstream_fault = True
        if timer.cancelled_caught or ex.upstream_fault or sent > self.limits.max_response_body:
            # Cut short: the answer ends without its end, so the server closes the connection and the client
            # sees a broken response, not a truncated one passed off as whole.
            _stream_cut(ex, timer.cancelled_caught)
            if ex.admission is not None:
                await self._settle(ex)
            return
        await self._end(ex, send, b"", deadline)

    async def _end(self, ex: Exchange, send: Send, body: bytes, deadline: float) -> None:
        """Settle the reservation, then send the answer's last body message within the request's deadline
        (:data:`END_GRACE` when it has passed); a client that takes no more is cut there."""
        if ex.admission is not None:
            await self._settle(ex)
        ex.final_send = True
        with trio.move_on_at(max(deadline, trio.current_time() + END_GRACE)) as timer:
            await send({"type": "http.response.body", "body": body, "more_body": False})
        if timer.cancelled_caught:
            ex.outcome = "timeout"

    def _finish(self, ex: Exchange) -> UsageEvent | None:
        """Count the request in the metrics and return its usage event (None if it never reached a model)."""
        model, upstream = ex.model, ex.upstream
        if model is None or upstream is None:
            return None
        duration = time.perf_counter() - ex.started
        if ex.client_gone:
            ex.outcome, ex.status_code = "client_disconnect", CLIENT_CLOSED_STATUS
        usage = ex.usage or TokenUsage(0, 0, 0)
        ttft = ex.ttft if ex.stream else duration
        labels_model = model.name
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
            provider=upstream.provider,
            deployment_name=upstream.name,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            cost_estimate=cost_estimate(
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
            created_at=ex.started_wall,
        )


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


async def _watch_disconnect(
    receive: Receive, body_done: trio.Event, scope: trio.CancelScope, ex: Exchange
) -> None:
    await body_done.wait()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not ex.final_send and trio.current_time() < ex.deadline:  # past it, the gateway cut the client
                ex.client_gone = True
                scope.cancel()
            return


async def _read_bounded(resp: UpstreamResponse, limit: int) -> bytes:
    declared = header(resp.headers, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UpstreamResponseTooLargeError("upstream response is larger than max_response_body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise UpstreamResponseTooLargeError("upstream response is larger than max_response_body")
        chunks.append(chunk)
    return b"".join(chunks)


def _usage_from_json(body: bytes) -> TokenUsage | None:
    if b'"usage"' not in body:
        return None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    usage = payload.get("usage") if isinstance(payload, dict) else None
    return TokenUsage.from_openai(usage) if isinstance(usage, dict) else None


async def _send_part(ex: Exchange, send: Send, body: bytes) -> None:
    """One body message that more will follow; ``ex.sending`` tells whom a deadline striking now blames."""
    ex.sending = True
    await send({"type": "http.response.body", "body": body, "more_body": True})
    ex.sending = False


def _stream_cut(ex: Exchange, deadline_passed: bool) -> None:
    """An answer that did not reach its end: how its usage row ends, and whether its breaker hears of it.

    The request's own deadline is never the upstream's fault (breaker-neutral): striking while the client
    was taking a send it ends the row as ``timeout``, while waiting for the upstream's next bytes as
    ``incomplete``. An upstream that broke, or ended without its terminal event, is a breaker failure
    (``incomplete``).
    """
    if deadline_passed and ex.sending:
        ex.outcome = "timeout"
        return
    ex.outcome, ex.status_code = "incomplete", 502
    ex.upstream_fault = ex.upstream_fault or not deadline_passed


def _anthropic_abort(code: str) -> bytes:
    return anthropic_stream_error()


async def _send_json(send: Send, status: int, body: bytes, extra: tuple[tuple[str, str], ...] = ()) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class EventStream(Protocol):
    """What the stream relay feeds: :class:`SSERelay` itself, or a provider's translator in a
    :class:`Translated`."""

    @property
    def done(self) -> bool:
        """The terminal event went out: stop reading, the stream is whole."""

    @property
    def aborted(self) -> bool:
        """The stream was cut and its abort event made: stop reading."""

    @property
    def saw_data(self) -> bool:
        """Output so far counts as the first token (time to first token)."""

    @property
    def usage(self) -> Any:
        """The last token counts seen (prompt, completion, total), or None."""

    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes:
        """The upstream ended: the stream's last events, with the abort event if it is not whole."""

    def abort(self, code: str) -> bytes:
        """The stream was cut (``code`` says why): its abort event, or ``b""`` when already closed."""


class Translator(Protocol):
    """A provider's stream translator (:class:`voidllm.providers.base.StreamTranslator`), read-only."""

    @property
    def done(self) -> bool: ...

    @property
    def usage(self) -> Usage | None: ...

    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


@attrs.define(eq=False)
class Translated:
    """A provider's stream translator (or Anthropic's passthrough) as an :class:`EventStream`; ``abort_with``
    makes the abort event in the client's dialect."""

    translator: Translator
    abort_with: Callable[[str], bytes] = abort_event
    aborted: bool = False
    saw_data = True  # every output of a translator carries a token or the start of one

    @property
    def done(self) -> bool:
        return self.translator.done

    @property
    def usage(self) -> Usage | None:
        return self.translator.usage

    def feed(self, data: bytes) -> bytes:
        return self.translator.feed(data)

    def finish(self) -> bytes:
        tail = self.translator.finish()
        return tail if self.translator.done else tail + self.abort("stream_incomplete")

    def abort(self, code: str) -> bytes:
        if self.translator.done or self.aborted:
            return b""
        self.aborted = True
        return self.abort_with(code)


def _token_usage(usage: Any) -> TokenUsage | None:
    """A provider adapter's usage as the usage event's value."""
    if usage is None:
        return None
    return TokenUsage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)


def _sse_headers(resp: UpstreamResponse, *, as_is: bool = False) -> list[tuple[bytes, bytes]]:
    """The client's headers for an event stream: the upstream's own (``as_is``: a relay byte for byte), or
    with ``Content-Type: text/event-stream`` (a translated stream); never buffered by proxies."""
    headers = client_response_headers(resp.headers)
    if not as_is:
        headers = [h for h in headers if h[0] != b"content-type"]
        headers.append((b"content-type", b"text/event-stream"))
    return headers + SSE_HEADERS
