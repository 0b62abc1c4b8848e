"""Relaying an upstream's answer to the client: :class:`Relay` (buffered, binary and event-stream answers,
in the client's dialect), and the token usage read from each.

- **Buffered** (JSON, and every error): read whole within ``max_response_body`` and the request's deadline,
  translated when the provider or the client's dialect needs it, sent with its ``Content-Length`` and
  ``X-VoidLLM-Overhead-Ms``. A body that breaks while it is read was not sent yet (:class:`AnswerBroken`: the
  chain fails over); one not read by the deadline is 504.
- **Event streams**: one relay (:meth:`Relay._relay_stream`) over an :class:`EventStream`: the SSE relay of
  :mod:`voidllm.proxy.sse` for OpenAI-shaped upstreams, or a provider's translator (Anthropic, Gemini,
  Vertex; OpenAI chunks to Anthropic events on ``/v1/messages``; Anthropic's own stream as it is) in a
  :class:`Translated`. Each upstream chunk is fed, and what it yields is sent at once (no extra copy or
  await per chunk). When the upstream's first chunk came with its head (``body_at_hand``), the client's head
  waits for what that chunk yields and both go out in one write (:data:`~voidllm.asgi.HEAD_WITH_FIRST_PART`);
  otherwise the head goes at once, as the upstream's did. A stream that does not reach its terminal event
  ends with one abort event in the client's dialect, and the connection ends normally. An error the upstream
  reported mid-stream (:class:`~voidllm.providers.base.UpstreamStreamError`) keeps its type and status in
  that event; where the upstream's own error event is relayed as it is (an OpenAI-shaped stream,
  Anthropic's passthrough), it is the one error event and none of ours follows.
- **Binary** (audio and the like): relayed chunk by chunk within ``max_response_body``; cut short, it ends
  without its end so the client sees a broken response.
- **The prompt guard** (the request's policy has ``responses`` on): a buffered 2xx answer's text is redacted
  (:func:`voidllm.proxy.guarding.redact_answer`; a transcript answered as text, srt or vtt is read whole
  like a JSON answer and redacted as text, :func:`~voidllm.proxy.guarding.redact_text`), a stream's events
  through :class:`~voidllm.proxy.guardstream.GuardedStream` (a finding split across chunks is still found).

The request's deadline bounds every send (:mod:`voidllm.web.writes`); the last message gets :data:`END_GRACE`
more. The token reservation is settled (:meth:`Relay.settle`) right before the last message goes out, so a
client that sends its next request as soon as it has read this one finds the budget settled.
:func:`_stream_cut` decides whom a cut answer blames (the breaker hears only of the upstream's faults).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import orjson
import trio

from voidllm import tracing
from voidllm.asgi import HEAD_WITH_FIRST_PART, Send
from voidllm.errors import GatewayTimeoutError, UpstreamResponseTooLargeError
from voidllm.limits.base import Limiter
from voidllm.providers.anthropic import OpenAIToMessagesStream, anthropic_stream_error
from voidllm.providers.base import Adapter, StreamTranslationError, UpstreamStreamError, Usage
from voidllm.providers.registry import PROVIDERS
from voidllm.proxy import messages
from voidllm.proxy import metrics as m
from voidllm.proxy.attempts import AnswerBroken
from voidllm.proxy.guarding import redact_answer, redact_text
from voidllm.proxy.guardstream import Dialect, GuardedStream
from voidllm.proxy.headers import SSE_HEADERS, client_response_headers, header
from voidllm.proxy.sse import UPSTREAM_STREAM_ERROR, SSERelay, abort_event
from voidllm.transport.base import UpstreamError, UpstreamResponse
from voidllm.usage.events import TokenUsage

if TYPE_CHECKING:
    from voidllm.proxy.exchange import Exchange

_TEXT_ANSWERS = (b"text/", b"application/x-subrip")
"""Content types of answers that are text as a whole (a transcript as text, srt or vtt)."""
SETTLE_LIMIT = 2.0
"""Seconds a finished request may spend settling its token reservation (shielded from cancellation)."""
END_GRACE = 1.0
"""Seconds the last message of an answer may take when the request's deadline has passed (a stream's end)."""


@attrs.frozen
class Relay:
    """Relays upstream answers to clients; see the module docstring."""

    max_response_body: int
    limiter: Limiter

    async def respond(
        self, ex: Exchange, provider: str, resp: UpstreamResponse, send: Send, deadline: float
    ) -> None:
        """Relay ``resp`` (from an upstream of ``provider``) in the shape the client asked for."""
        adapter = PROVIDERS[provider].translator
        if ex.anthropic is not None:
            await self._respond_messages(ex, provider, resp, send, deadline)
        elif adapter is not None:
            await self._respond_translated(ex, adapter, resp, send, deadline)
        else:
            await self._respond(ex, resp, send, deadline)

    async def _respond_messages(
        self, ex: Exchange, provider: str, resp: UpstreamResponse, send: Send, deadline: float
    ) -> None:
        """An answer for an Anthropic client: as it is from Anthropic, translated from anyone else."""
        ex.status_code = resp.status
        ok = 200 <= resp.status < 300
        streamed = b"text/event-stream" in (header(resp.headers, b"content-type") or b"")
        if PROVIDERS[provider].native_messages:
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
        egress = PROVIDERS[provider].translator
        if not ok:
            await self._relay_buffered(
                ex,
                resp,
                send,
                deadline,
                translate=lambda body: (messages.error_to_anthropic(resp.status, body), None),
            )
        elif ex.stream:
            first = egress.stream_translator(model=ex.requested_model, include_usage=True) if egress else None
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

    async def _respond(self, ex: Exchange, resp: UpstreamResponse, send: Send, deadline: float) -> None:
        ex.status_code = resp.status
        content_type = header(resp.headers, b"content-type") or b""
        if b"text/event-stream" in content_type:
            relay = SSERelay(strip_injected_usage=ex.inject_usage, terminal=ex.endpoint.terminal)
            await self._relay_stream(ex, relay, resp, send, deadline, _sse_headers(resp, as_is=True))
        elif content_type.startswith(b"application/json") or resp.status >= 400:
            await self._relay_buffered(ex, resp, send, deadline)
        elif ex.guard is not None and ex.guard.response_kinds and content_type.startswith(_TEXT_ANSWERS):
            # a transcript as text, srt or vtt: read whole (within max_response_body) and redacted as text
            await self._relay_buffered(ex, resp, send, deadline, text=True)
        else:
            await self._relay_binary(ex, resp, send, deadline)

    async def _respond_translated(
        self, ex: Exchange, adapter: Adapter, resp: UpstreamResponse, send: Send, deadline: float
    ) -> None:
        """An answer of a translated provider in the OpenAI shape (streamed event by event; errors too)."""
        ex.status_code = resp.status
        if ex.stream and 200 <= resp.status < 300:
            include_usage = ex.json is not None and ex.json.client_wants_usage
            translator = adapter.stream_translator(model=ex.requested_model, include_usage=include_usage)
            await self._relay_stream(ex, Translated(translator), resp, send, deadline, _sse_headers(resp))
            return

        def translate(body: bytes) -> tuple[bytes, TokenUsage | None]:
            translated, usage = adapter.translate_response(body, model=ex.requested_model)
            return translated, _token_usage(usage)

        await self._relay_buffered(ex, resp, send, deadline, translate=translate)

    async def _relay_buffered(
        self,
        ex: Exchange,
        resp: UpstreamResponse,
        send: Send,
        deadline: float,
        translate: Callable[[bytes], tuple[bytes, TokenUsage | None]] | None = None,
        *,
        text: bool = False,
    ) -> None:
        with trio.move_on_at(deadline) as timer:
            try:
                body = await _read_bounded(resp, self.max_response_body)
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
        elif 200 <= resp.status < 300 and not text:
            ex.usage = _usage_from_json(body, ex if ex.attempt_span is not None else None)
        if ex.guard is not None and 200 <= resp.status < 300:
            body = redact_text(body, ex.guard) if text else redact_answer(body, ex.guard)
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
        if ex.guard is not None and ex.guard.response_kinds:
            stream = GuardedStream(stream, ex.guard, _guard_dialect(ex))
        head = {"type": "http.response.start", "status": resp.status, "headers": headers}
        start: dict[str, Any] | None = head
        if not resp.body_at_hand():  # nothing of the body yet: the client gets the head at once
            await send(head)
            start = None
        abort_code = "stream_incomplete"
        reported: UpstreamStreamError | None = None
        m.ACTIVE_STREAMS.inc()
        try:
            with trio.move_on_at(deadline) as timer:
                try:
                    async for chunk in resp.aiter_bytes():
                        out = stream.feed(chunk)
                        if start is not None:  # the first chunk came with the upstream's head: our head
                            # goes with what it yields, one write (HEAD_WITH_FIRST_PART), or alone at once
                            await send({**start, HEAD_WITH_FIRST_PART: bool(out)})
                            start = None
                        if out:
                            if ex.ttft is None and stream.saw_data:
                                ex.ttft = time.perf_counter() - ex.started
                                tracing.first_token(ex.attempt_span, ex.ttft)
                            if ex.attempt_span is not None and b'"finish_reason"' in out:
                                _stream_finish_reasons(ex, out)
                            await _send_part(ex, send, out)
                        if stream.done or stream.aborted:
                            break
                    else:
                        abort_code = ""  # the upstream's end: the stream's own end follows
                except UpstreamStreamError as exc:
                    abort_code, reported = UPSTREAM_STREAM_ERROR, exc
                except StreamTranslationError:
                    abort_code = "stream_transform_aborted"
                except UpstreamError:
                    ex.upstream_fault = True
                    m.UPSTREAM_ERRORS.labels(
                        ex.model.name if ex.model else "", ex.upstream.provider if ex.upstream else ""
                    ).inc()
            if start is not None:  # the body ended or broke before its first chunk: the head goes first,
                with trio.move_on_at(max(deadline, trio.current_time() + END_GRACE)):  # bounded as the end is
                    await send(start)
            tail = stream.abort(abort_code, reported) if abort_code else stream.finish()
            ex.usage = _token_usage(stream.usage)
            if not stream.done:
                _stream_cut(ex, timer.cancelled_caught)
            await self._end(ex, send, tail, deadline)
        finally:
            m.ACTIVE_STREAMS.dec()
            if ex.usage is None:
                ex.usage = _token_usage(stream.usage)

    async def _relay_binary(self, ex: Exchange, resp: UpstreamResponse, send: Send, deadline: float) -> None:
        headers = client_response_headers(resp.headers)
        length = header(resp.headers, b"content-length")
        if length is not None:
            if int(length) > self.max_response_body:
                raise UpstreamResponseTooLargeError("upstream response is larger than max_response_body")
            headers.append((b"content-length", length))
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        sent = 0
        with trio.move_on_at(deadline) as timer:
            try:
                async for chunk in resp.aiter_bytes():
                    sent += len(chunk)
                    if sent > self.max_response_body:
                        break
                    await _send_part(ex, send, chunk)
            except UpstreamError:
                ex.upstream_fault = True
        if timer.cancelled_caught or ex.upstream_fault or sent > self.max_response_body:
            # Cut short: the answer ends without its end, so the server closes the connection and the client
            # sees a broken response, not a truncated one passed off as whole.
            _stream_cut(ex, timer.cancelled_caught)
            if ex.admission is not None:
                await self.settle(ex)
            return
        await self._end(ex, send, b"", deadline)

    async def _end(self, ex: Exchange, send: Send, body: bytes, deadline: float) -> None:
        """Settle the reservation, then send the answer's last body message within the request's deadline
        (:data:`END_GRACE` when it has passed); a client that takes no more is cut there."""
        if ex.admission is not None:
            await self.settle(ex)
        ex.final_send = True
        with trio.move_on_at(max(deadline, trio.current_time() + END_GRACE)) as timer:
            await send({"type": "http.response.body", "body": body, "more_body": False})
        if timer.cancelled_caught:
            ex.outcome = "timeout"

    async def settle(self, ex: Exchange) -> None:
        """Release the request's token reservation and count its real usage (0 when it failed), once.

        The relays call it right before the last bytes of an answer go out, so a client that sends its next
        request as soon as it has read this one already finds the budget settled."""
        admission, ex.admission = ex.admission, None
        if admission is None:
            return
        used = ex.usage.total_tokens if ex.usage is not None else 0
        with trio.move_on_after(SETTLE_LIMIT, shield=True):
            await self.limiter.settle(admission, used_tokens=used)


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


def _usage_from_json(body: bytes, traced: Exchange | None = None) -> TokenUsage | None:
    r"""The ``usage`` of an OpenAI-style answer; with ``traced`` (tracing on) also its choices'
    ``finish_reason``\ s into ``traced.finish_reasons``."""
    if b'"usage"' not in body and traced is None:
        return None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    if traced is not None:
        traced.finish_reasons = finish_reasons(payload.get("choices"))
    usage = payload.get("usage")
    return TokenUsage.from_openai(usage) if isinstance(usage, dict) else None


FINISH_REASONS_MAX = 16
FINISH_REASON_LENGTH = 32


_FINISH_REASON = re.compile(rb'"finish_reason"[ \t]*:[ \t]*"([a-z_]{1,32})"')
"""A ``finish_reason`` member of a streamed chunk: inside a JSON string a quote is escaped, so the pattern can
only match the member itself, and only an enumeration-like value (``stop``, ``length``, ``tool_calls``)."""


def _stream_finish_reasons(ex: Exchange, data: bytes) -> None:
    """Add each ``finish_reason`` of streamed chunks to ``ex.finish_reasons`` (tracing on only)."""
    for match in _FINISH_REASON.finditer(data):
        reason = match.group(1).decode()
        if reason not in ex.finish_reasons and len(ex.finish_reasons) < FINISH_REASONS_MAX:
            ex.finish_reasons = (*ex.finish_reasons, reason)


def finish_reasons(choices: object) -> tuple[str, ...]:
    """The ``finish_reason`` of each choice (an enumeration such as ``stop``, ``length``, ``tool_calls``):
    short strings only, at most :data:`FINISH_REASONS_MAX`, so an upstream cannot put text in a span."""
    if not isinstance(choices, list):
        return ()
    reasons = (
        choice.get("finish_reason") for choice in choices[:FINISH_REASONS_MAX] if isinstance(choice, dict)
    )
    return tuple(
        r for r in reasons if isinstance(r, str) and 0 < len(r) <= FINISH_REASON_LENGTH and r.isidentifier()
    )


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


def _openai_abort(code: str, reported: UpstreamStreamError | None) -> bytes:
    return abort_event(code, reported=reported)


def _anthropic_abort(code: str, reported: UpstreamStreamError | None) -> bytes:
    if reported is None:
        return anthropic_stream_error()
    return anthropic_stream_error(reported.status, f"the upstream reported {reported.kind} during the stream")


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

    def abort(self, code: str, reported: UpstreamStreamError | None = None) -> bytes:
        """The stream was cut (``code`` says why; ``reported``: the upstream's error): its abort event, or
        ``b""`` when already closed."""


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
    makes the abort event in the client's dialect. A passthrough that relayed the upstream's own error event
    (``error_relayed``) closes the stream as aborted, with no abort event of ours after it."""

    translator: Translator
    abort_with: Callable[[str, UpstreamStreamError | None], bytes] = _openai_abort
    aborted: bool = False
    saw_data = True  # every output of a translator carries a token or the start of one

    @property
    def done(self) -> bool:
        return self.translator.done

    @property
    def usage(self) -> Usage | None:
        return self.translator.usage

    def feed(self, data: bytes) -> bytes:
        out = self.translator.feed(data)
        if getattr(self.translator, "error_relayed", False):
            self.aborted = True  # a passthrough relayed the upstream's error event: the stream's one error
        return out

    def finish(self) -> bytes:
        try:
            tail = self.translator.finish()
        except UpstreamStreamError as exc:
            return self.abort(UPSTREAM_STREAM_ERROR, exc)
        except StreamTranslationError:
            return self.abort("stream_transform_aborted")
        return tail if self.translator.done else tail + self.abort("stream_incomplete")

    def abort(self, code: str, reported: UpstreamStreamError | None = None) -> bytes:
        if self.translator.done or self.aborted:
            return b""
        self.aborted = True
        return self.abort_with(code, reported)


def _guard_dialect(ex: Exchange) -> Dialect:
    """How the stream the client reads is shaped, for :class:`GuardedStream`."""
    if ex.anthropic is not None:
        return "anthropic"
    return "responses" if ex.endpoint.terminal == "responses" else "openai"


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
