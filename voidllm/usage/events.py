"""Usage values: what one proxied request cost, as metadata only, and the token counts it came from.

A :class:`UsageEvent` describes a finished request by who made it (key, org, team, user, service account),
what served it (model, provider, deployment), how much it used (tokens, estimated cost) and how it went
(status, duration, time to first token). It never holds prompt or response content; there is no field
that could.

Events are built on the request path, handed to the usage writer through a bounded channel and written
later in batches (:mod:`voidllm.usage.writer`). A row that the database rejects would block or lose a whole
batch, so validity is settled here, at construction and in :meth:`UsageEvent.to_row`:

- required identifiers must be strings and ``created_at`` an aware datetime (attrs validators);
- ``status`` must be one of :class:`UsageStatus`;
- :meth:`~UsageEvent.to_row` clips free-form text (request id, tags, model and deployment names) to its
  column in :data:`voidllm.store.tables.usage_events`, model names to 256 characters as the Go original
  does, so no client-supplied value can fail a length check on PostgreSQL. Ids and counts are the
  gateway's own values (token counts are clamped to the 64-bit column range when parsed).

:meth:`TokenUsage.from_openai` reads the ``usage`` object of an OpenAI-style response. Upstreams are not
trusted to be tidy: a missing field counts as 0, a value that is not a non-negative integer counts as 0,
and only an object with none of the known counters (or something that is not an object) means "no usage".
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa

from voidllm.store.ids import new_id
from voidllm.store.tables import usage_events

__all__ = ["MODEL_NAME_MAX", "TokenUsage", "UsageEvent", "UsageStatus"]

MODEL_NAME_MAX = 256
"""Model names are stored truncated to this many characters."""

_INT64_MAX = 2**63 - 1


def _length(column: str) -> int:
    column_type = usage_events.c[column].type
    if not isinstance(column_type, sa.String) or column_type.length is None:
        raise TypeError(f"usage_events.{column} is not a bounded string column")
    return column_type.length


_REQUEST_ID_MAX = _length("request_id")
_KEY_TYPE_MAX = _length("key_type")
_PROVIDER_MAX = _length("provider")
_TAG_MAX = min(_length("source"), _length("project"))


class UsageStatus(enum.StrEnum):
    """How a request ended, as recorded in ``usage_events.status``."""

    OK = "ok"
    UPSTREAM_ERROR = "upstream_error"
    CLIENT_DISCONNECT = "client_disconnect"
    INCOMPLETE = "incomplete"
    TIMEOUT = "timeout"
    BLOCKED = "blocked"  # refused by the prompt guard (403 content_blocked) before any upstream


@attrs.frozen
class TokenUsage:
    """Token counts of one request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def from_openai(cls, obj: Mapping[str, Any] | object) -> TokenUsage | None:
        """Read an OpenAI-style ``usage`` object; never raises.

        Chat and text completions report ``prompt_tokens``/``completion_tokens``/``total_tokens``, the
        Responses API ``input_tokens``/``output_tokens``/``total_tokens``, embeddings only
        ``prompt_tokens``/``total_tokens``. The first pair wins when both appear. ``total_tokens`` is taken
        as reported but never below prompt + completion (so a missing or broken total is their sum).

        Returns:
            The counts, or ``None`` when ``obj`` is not a mapping or carries none of the known counters.
        """
        if not isinstance(obj, Mapping):
            return None
        if "prompt_tokens" in obj or "completion_tokens" in obj:
            prompt, completion = _count(obj.get("prompt_tokens")), _count(obj.get("completion_tokens"))
        elif "input_tokens" in obj or "output_tokens" in obj:
            prompt, completion = _count(obj.get("input_tokens")), _count(obj.get("output_tokens"))
        elif "total_tokens" in obj:
            prompt = completion = 0
        else:
            return None
        total = min(max(_count(obj.get("total_tokens")), prompt + completion), _INT64_MAX)
        return cls(prompt, completion, total)


def _count(value: object) -> int:
    """A token counter from JSON: a non-negative integer (or an integral float), else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return min(max(value, 0), _INT64_MAX)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return min(max(int(value), 0), _INT64_MAX)
    return 0


def _aware(_instance: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be a timezone-aware datetime")


_str = attrs.validators.instance_of(str)
_opt_str = attrs.validators.optional(_str)


@attrs.frozen(kw_only=True)
class UsageEvent:
    """Metadata of one finished proxied request; never its content.

    ``model_name`` is the canonical model that served the request, ``requested_model_name`` what the
    client asked for (an alias, or the model a fallback replaced). ``created_at`` is when the request
    started (aware; stored as UTC). ``ttft_ms`` is set for streams only.
    """

    request_id: str | None = attrs.field(validator=_opt_str)
    key_id: str = attrs.field(validator=_str)
    key_type: str = attrs.field(validator=_str)
    org_id: str = attrs.field(validator=_str)
    team_id: str | None = attrs.field(default=None, validator=_opt_str)
    user_id: str | None = attrs.field(default=None, validator=_opt_str)
    service_account_id: str | None = attrs.field(default=None, validator=_opt_str)
    model_name: str = attrs.field(validator=_str)
    requested_model_name: str | None = attrs.field(default=None, validator=_opt_str)
    provider: str = attrs.field(default="", validator=_str)
    deployment_name: str | None = attrs.field(default=None, validator=_opt_str)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_estimate: float | None = None
    duration_ms: int = 0
    ttft_ms: int | None = None
    tokens_per_second: float | None = None
    status_code: int = 200
    status: UsageStatus = attrs.field(default=UsageStatus.OK, converter=UsageStatus)
    stream: bool = False
    source: str | None = attrs.field(default=None, validator=_opt_str)
    project: str | None = attrs.field(default=None, validator=_opt_str)
    guard_findings: str | None = attrs.field(default=None, validator=_opt_str)
    """The prompt guard's findings as JSON, kinds and counts only: ``{"request": {"email": 2}, "response":
    {"email": 1}}`` (:func:`voidllm.proxy.guarding.findings_of`); None when nothing was found."""
    guard_action: str | None = attrs.field(default=None, validator=_opt_str)
    """The most restrictive guard mode among the request's findings (``flag``, ``redact``, ``block``)."""
    created_at: datetime = attrs.field(validator=_aware)
    id: str = attrs.field(factory=new_id)
    """The row's UUIDv7, made with the event: a batch written twice (a retry after a lost commit
    acknowledgement, a spill replayed after a crash) inserts it once
    (:func:`voidllm.usage.batches.insert_rows`)."""

    def to_row(self) -> dict[str, Any]:
        """The ``usage_events`` row for this event (always with the event's own ``id``).

        Free-form text
        (request id, model and deployment names, tags) is clipped to fit its column; ids and counts are
        the gateway's own values and go in as they are.
        """
        return {
            "id": self.id,
            "request_id": _clip(self.request_id, _REQUEST_ID_MAX),
            "key_id": self.key_id,
            "key_type": self.key_type[:_KEY_TYPE_MAX],
            "org_id": self.org_id,
            "team_id": self.team_id,
            "user_id": self.user_id,
            "service_account_id": self.service_account_id,
            "model_name": self.model_name[:MODEL_NAME_MAX],
            "requested_model_name": _clip(self.requested_model_name, MODEL_NAME_MAX),
            "deployment_name": _clip(self.deployment_name, MODEL_NAME_MAX),
            "provider": self.provider[:_PROVIDER_MAX],
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost_estimate": self.cost_estimate,
            "request_duration_ms": self.duration_ms,
            "ttft_ms": self.ttft_ms,
            "tokens_per_second": self.tokens_per_second,
            "status_code": self.status_code,
            "status": self.status.value,
            "stream": self.stream,
            "source": _clip(self.source, _TAG_MAX),
            "project": _clip(self.project, _TAG_MAX),
            "guard_findings": self.guard_findings,
            "guard_action": self.guard_action,
            "created_at": self.created_at.astimezone(UTC),
        }


def _clip(value: str | None, length: int) -> str | None:
    return None if value is None else value[:length]
