"""Applying a policy to one request: findings counted, redacted or refused; placeholders; the outcome.

A :class:`RequestGuard` lives for one request. The caller hands it every text part of the request
(:mod:`voidllm.guard.walk` walks the bodies) and gets each part back with the findings of ``redact`` (and
``block``) kinds replaced by typed placeholders: ``[EMAIL_1]``, ``[CREDIT_CARD_2]``. A value gets the same
placeholder wherever it appears in the request (across parts, and in the answer): the guard keeps a map from
(kind, normalised value) to placeholder, in memory, for the request's life only; it is never logged, never
stored and not part of any repr. Numbers count per kind from 1 in the order values are first seen.

When it is done, :meth:`RequestGuard.outcome` is the verdict: the kinds found and how often, the mode each
had, and the kinds that block the request (the caller answers 403 ``content_blocked`` naming them). An
outcome holds kinds and counts only, never a matched value, not even hashed, so it can go into a usage event,
a metric label or an exception message as it is.

Answers: with ``policy.responses`` the same guard redacts the upstream's answer, every kind whose mode is
``redact`` or ``block`` (an answer cannot be refused once it streams, so ``block`` redacts there too), with
the same placeholder map: a value the client sent, should the answer repeat it, gets the placeholder it got
in the request. Placeholders are never turned back into values: the upstream saw ``[EMAIL_1]`` and the
client reads what the upstream wrote. :meth:`RequestGuard.redact_response` takes a whole answer;
:class:`voidllm.guard.stream.StreamRedactor` a streamed one. ``flag`` kinds are not looked for in answers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from voidllm.guard import kinds
from voidllm.guard.detect import Finding, find
from voidllm.guard.policy import GuardPolicy, Mode

_SEPARATORS = str.maketrans("", "", " -.()/")
_COMPACT = frozenset(
    (
        kinds.PHONE,
        kinds.CREDIT_CARD,
        kinds.IBAN,
        kinds.US_SSN,
        kinds.UK_NINO,
        kinds.DE_TAX_ID,
        kinds.FR_NIR,
        kinds.ES_DNI,
    )
)


def _normal(kind: str, value: str) -> str:
    """The form under which two spellings of one value share a placeholder (separators, e-mail case)."""
    if kind in _COMPACT:
        return value.translate(_SEPARATORS).upper()
    return value.lower() if kind == kinds.EMAIL else value


@attrs.frozen
class Outcome:
    """What the guard found in a request (and its answer): kinds, modes and counts, never values."""

    findings: tuple[tuple[str, Mode, int], ...] = ()
    """(kind, mode, count) of every kind found in the request, sorted by kind."""
    response_findings: tuple[tuple[str, int], ...] = ()
    """(kind, count) of every kind redacted in the answer, sorted by kind."""

    @property
    def blocked(self) -> tuple[str, ...]:
        """The kinds found whose mode is block: when not empty the request must be refused."""
        return tuple(kind for kind, mode, _ in self.findings if mode is Mode.BLOCK)

    @property
    def counts(self) -> Mapping[str, int]:
        """Findings per kind in the request."""
        return MappingProxyType({kind: count for kind, _, count in self.findings})

    def by_mode(self, mode: Mode) -> Mapping[str, int]:
        """Findings per kind in the request, of the kinds whose mode is ``mode``."""
        return MappingProxyType({kind: count for kind, m, count in self.findings if m is mode})


@attrs.define(eq=False, repr=False)
class RequestGuard:
    """The guard of one request: scans its text parts, keeps the placeholders, tells the outcome.

    Not thread-safe; one request's task uses it. Its repr names the policy's kinds, never a value.
    """

    policy: GuardPolicy
    _wanted: frozenset[str] = attrs.field(init=False)
    _hidden: frozenset[str] = attrs.field(init=False)
    _placeholders: dict[tuple[str, str], str] = attrs.field(init=False, factory=dict)
    _numbers: Counter[str] = attrs.field(init=False, factory=Counter)
    _counts: Counter[str] = attrs.field(init=False, factory=Counter)
    _response_counts: Counter[str] = attrs.field(init=False, factory=Counter)
    redactions: int = attrs.field(init=False, default=0)
    """How many findings were replaced in the request's texts so far (0: the body is unchanged)."""

    def __attrs_post_init__(self) -> None:
        self._wanted = frozenset(self.policy.detectors)
        self._hidden = self.policy.at_least(Mode.REDACT)

    def __repr__(self) -> str:
        return f"<RequestGuard kinds={sorted(self._wanted)} findings={dict(self._counts)}>"

    @property
    def response_kinds(self) -> frozenset[str]:
        """The kinds redacted in answers (none unless ``policy.responses``)."""
        return self._hidden if self.policy.responses else frozenset()

    def scan(self, text: str) -> str:
        """Count the findings in one text part of the request; the text with redact/block kinds replaced."""
        findings = find(text, self._wanted)
        if not findings:
            return text
        self._counts.update(f.kind for f in findings)
        hidden = [f for f in findings if f.kind in self._hidden]
        self.redactions += len(hidden)
        return self.replace(text, hidden)

    def redact_response(self, text: str) -> str:
        """A whole (non-streamed) answer text with the response kinds replaced by placeholders."""
        wanted = self.response_kinds
        findings = find(text, wanted) if wanted else []
        if not findings:
            return text
        self.count_response(findings)
        return self.replace(text, findings)

    def count_response(self, findings: Iterable[Finding]) -> None:
        """Count findings redacted in the answer (:class:`voidllm.guard.stream.StreamRedactor` calls it)."""
        self._response_counts.update(f.kind for f in findings)

    def replace(self, text: str, findings: Iterable[Finding]) -> str:
        """``text`` with each finding (sorted, not overlapping) replaced by its placeholder."""
        parts: list[str] = []
        position = 0
        for finding in findings:
            parts.append(text[position : finding.start])
            parts.append(self.placeholder(finding.kind, text[finding.start : finding.end]))
            position = finding.end
        parts.append(text[position:])
        return "".join(parts)

    def placeholder(self, kind: str, value: str) -> str:
        """The placeholder of ``value`` (a finding of ``kind``) in this request, made at its first sight."""
        key = (kind, _normal(kind, value))
        placeholder = self._placeholders.get(key)
        if placeholder is None:
            self._numbers[kind] += 1
            placeholder = f"[{kinds.LABELS[kind]}_{self._numbers[kind]}]"
            self._placeholders[key] = placeholder
        return placeholder

    def outcome(self) -> Outcome:
        """The verdict so far: kinds, modes and counts of the request's findings and the answer's."""
        return Outcome(
            findings=tuple((kind, self.policy.mode(kind), n) for kind, n in sorted(self._counts.items())),
            response_findings=tuple(sorted(self._response_counts.items())),
        )


def scan(texts: Iterable[str], policy: GuardPolicy) -> tuple[list[str], Outcome]:
    """Scan a request given as its text parts: the parts as they must be forwarded, and the outcome."""
    guard = RequestGuard(policy)
    out = [guard.scan(text) for text in texts]
    return out, guard.outcome()


def redact_text(text: str, policy: GuardPolicy) -> tuple[str, Outcome]:
    """One answer text on its own (no request before it): redacted for ``policy``'s response kinds."""
    guard = RequestGuard(policy)
    return guard.redact_response(text), guard.outcome()
