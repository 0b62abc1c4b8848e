"""The prompt guard on the data plane: requests scanned before they leave, answers redacted, findings counted.

The engine is :mod:`voidllm.guard` (sans-IO); this module applies it to one proxied request.

- **Policy.** :func:`effective_policy`: the gateway-wide baseline (``settings.guard``) merged with the
  policies that apply to the request (most restrictive wins, :func:`voidllm.guard.merge`): the model's
  (:attr:`voidllm.routing.catalog.Catalog.policies`) and the key's organisation, team and key policies,
  merged when the key was loaded (:attr:`voidllm.identity.KeyIdentity.guard`); no database on the way.
  When every kind is off the request is not looked at (off costs nothing: no guard object, no walk, no
  copy).
- **Requests** (:func:`guard_json`): the parsed body is walked once in place (the OpenAI walker on ``/v1``,
  Anthropic's on ``/v1/messages``); a kind set to ``block`` refuses the request (403
  :class:`~voidllm.errors.ContentBlockedError` naming the kinds, never a value); when something was redacted
  the body is serialised again (the upstream receives the placeholders), otherwise the client's bytes go on
  untouched. The body was already parsed by the intake, so this adds no JSON parse.
- **Forms** (:func:`guard_form`; ``/v1/audio/transcriptions``, ``/v1/audio/translations``,
  ``/v1/images/edits``, ``/v1/images/variations``): the intake holds the whole multipart body when the
  policy is on (:mod:`voidllm.proxy.intake`), and the text fields the OpenAI walker scans in a JSON body
  (``prompt``, ``input``, ``instructions``, ``suffix``; a name ending in ``[]`` as without it) are scanned
  the same way: ``block`` refuses, ``redact`` rewrites the field's value in the body (the file parts and
  every other byte go on as sent), ``flag`` counts. File parts (audio, images) are not looked at.
- **Answers** (:func:`redact_answer`; streams: :class:`voidllm.proxy.guardstream.GuardedStream`) when the
  policy's ``responses`` is on: the text of a buffered answer (message content, completion text, tool call
  arguments, Anthropic content blocks), re-serialised only when something was replaced.
- **Metadata** (:func:`count`, :func:`findings_of`): kinds and counts, never values, into
  ``voidllm_guard_findings_total{kind,action,direction}``, ``voidllm_guard_blocked_total{route}`` and the
  usage event's ``guard_findings`` / ``guard_action``. The kind, action and route labels come from fixed
  vocabularies (the guard's kinds and modes, the proxied routes and ``mcp``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from voidllm.errors import ContentBlockedError
from voidllm.guard import (
    GuardPolicy,
    Mode,
    Outcome,
    RequestGuard,
    guard_anthropic,
    guard_mcp_call,
    guard_openai,
    map_strings,
    merge,
)
from voidllm.proxy import metrics as m

if TYPE_CHECKING:
    from collections.abc import Sequence

    from voidllm.proxy.endpoints import Endpoint
    from voidllm.proxy.multipart import FormField

_ANSWER_TEXT = frozenset(("content", "text", "arguments", "refusal", "output_text"))
"""Keys of an answer whose string values are text (at any depth: choices, messages, blocks, output items)."""
_SKIP = frozenset(("usage", "id", "model", "object", "role", "type", "finish_reason", "stop_reason"))


def effective_policy(baseline: GuardPolicy, *scoped: GuardPolicy | None) -> GuardPolicy:
    """The guard policy of one request: ``settings.guard`` merged with the scopes' that apply and are set
    (the model's, from the catalog; the key's merged organisation, team and key policy, on its identity).

    The baseline itself when no scope has one (no merge on the hot path then).
    """
    present = [policy for policy in scoped if policy is not None]
    return merge(baseline, *present) if present else baseline


def blocked(guard: RequestGuard, route: str) -> None:
    """Refuse the request when a finding's kind is set to block.

    Raises:
        ContentBlockedError: naming the kinds that block (the metric is counted here).
    """
    kinds = guard.outcome().blocked
    if kinds:
        m.GUARD_BLOCKED.labels(route).inc()
        raise ContentBlockedError(kinds)


def guard_json(payload: dict[str, Any], guard: RequestGuard, *, anthropic: bool, route: str) -> None:
    """Scan a parsed request body in place (``guard.redactions`` > 0 afterwards: the body changed).

    Raises:
        ContentBlockedError: a kind found is set to block.
    """
    if anthropic:
        guard_anthropic(payload, guard)
    else:
        guard_openai(payload, guard)
        if route == "/v1/rerank":
            _guard_rerank(payload, guard)
    blocked(guard, route)


def guard_form(fields: Sequence[FormField], guard: RequestGuard, *, route: str) -> dict[int, str]:
    """Scan a held multipart form's text fields (those :func:`voidllm.guard.guard_openai` scans at the top
    level of a JSON body); the new values of the fields whose findings were redacted, by index in
    ``fields`` (empty: the body goes on unchanged).

    Raises:
        ContentBlockedError: a kind found is set to block.
    """
    changed: dict[int, str] = {}
    for index, field in enumerate(fields):
        if field.value is None:
            continue
        name = field.name.removesuffix("[]")
        payload = {name: field.value}
        before = guard.redactions
        guard_openai(payload, guard)
        if guard.redactions != before:
            changed[index] = payload[name]
    blocked(guard, route)
    return changed


def _guard_rerank(payload: dict[str, Any], guard: RequestGuard) -> None:
    """A rerank body's text: ``query`` and ``documents`` (strings, or objects whose ``text`` is one)."""
    if isinstance(payload.get("query"), str):
        payload["query"] = guard.scan(payload["query"])
    documents = payload.get("documents")
    if not isinstance(documents, list):
        return
    for index, document in enumerate(documents):
        if isinstance(document, str):
            documents[index] = guard.scan(document)
        elif isinstance(document, dict) and isinstance(document.get("text"), str):
            document["text"] = guard.scan(document["text"])


def redact_answer(body: bytes, guard: RequestGuard) -> bytes:
    """A buffered 2xx JSON answer with the guard's response kinds redacted; ``body`` itself if none was found
    (or it is not JSON)."""
    if not guard.response_kinds:
        return body
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    before = guard.outcome().response_findings
    redacted = _redact_value(payload, guard)
    if guard.outcome().response_findings == before:
        return body
    return orjson.dumps(redacted)


def redact_text(body: bytes, guard: RequestGuard) -> bytes:
    """A buffered 2xx answer that is text as a whole (a transcript as text, srt or vtt) with the guard's
    response kinds redacted; ``body`` itself if none was found. UTF-8, as OpenAI's transcripts are; a body
    that is not is left as it is (it cannot be read as text)."""
    if not guard.response_kinds:
        return body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    redacted = guard.redact_response(text)
    return body if redacted is text else redacted.encode("utf-8")


def _redact_value(value: Any, guard: RequestGuard, text: bool = False) -> Any:
    """Text strings of an answer redacted in place: under :data:`_ANSWER_TEXT` keys, and every string of an
    Anthropic ``tool_use`` block's ``input``."""
    if isinstance(value, str):
        return guard.redact_response(value) if text else value
    if isinstance(value, dict):
        tool_input = value.get("type") == "tool_use"
        for key, item in value.items():
            if key in _SKIP:
                continue
            inner = text or key in _ANSWER_TEXT or (tool_input and key == "input")
            value[key] = _redact_value(item, guard, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            value[index] = _redact_value(item, guard, text)
    return value


def count(outcome: Outcome) -> None:
    """Count an outcome's findings in ``voidllm_guard_findings_total`` (request: the kind's mode; response:
    ``redact``)."""
    for kind, mode, n in outcome.findings:
        m.GUARD_FINDINGS.labels(kind, mode.label, "request").inc(n)
    for kind, n in outcome.response_findings:
        m.GUARD_FINDINGS.labels(kind, "redact", "response").inc(n)


def findings_of(outcome: Outcome) -> tuple[str | None, str | None]:
    """The usage event's ``guard_findings`` (JSON: kind counts of the request and of the answer) and
    ``guard_action`` (the most restrictive mode among the request's findings; ``redact`` when only the answer
    had some), or ``(None, None)`` when nothing was found."""
    if not outcome.findings and not outcome.response_findings:
        return None, None
    document: dict[str, dict[str, int]] = {}
    if outcome.findings:
        document["request"] = dict(outcome.counts)
    if outcome.response_findings:
        document["response"] = dict(outcome.response_findings)
    strictest = max((mode for _, mode, _ in outcome.findings), default=Mode.REDACT)
    return orjson.dumps(document).decode(), strictest.label


def route_of(endpoint: Endpoint) -> str:
    """The ``route`` label of a proxied endpoint: its path under ``/v1``."""
    if endpoint.dialect == "anthropic":
        return "/v1/messages/count_tokens" if endpoint.count_tokens else "/v1/messages"
    return "/v1/" + endpoint.upstream_path


def guard_tool_call(params: dict[str, Any], policy: GuardPolicy, route: str) -> RequestGuard | None:
    """Scan an MCP ``tools/call``'s ``params`` (its arguments) in place; the call's guard, or None when the
    policy is off. A blocked call's findings are counted here (no usage row follows it).

    Raises:
        ContentBlockedError: a kind found is set to block.
    """
    if not policy.active:
        return None
    guard = RequestGuard(policy)
    guard_mcp_call(params, guard)
    try:
        blocked(guard, route)
    except ContentBlockedError:
        count(guard.outcome())
        raise
    return guard


def redact_tool_result(result: dict[str, Any], guard: RequestGuard) -> None:
    """An MCP tool result with the guard's response kinds redacted in place: its ``content`` blocks' text
    and every string of ``structuredContent``."""
    if not guard.response_kinds:
        return
    content = result.get("content")
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            block["text"] = guard.redact_response(block["text"])
    if "structuredContent" in result:
        result["structuredContent"] = map_strings(result["structuredContent"], guard.redact_response)
