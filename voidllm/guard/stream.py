"""Redacting a streamed answer: text deltas in, text safe to emit out, only a bounded tail held back.

:class:`StreamRedactor` is sans-IO: the SSE relay feeds it each content delta of a choice and sends on what
:meth:`StreamRedactor.feed` returns (possibly ``""``), then :meth:`StreamRedactor.finish` at the end of the
stream. The text it emits, concatenated, is exactly what :meth:`RequestGuard.redact_response` makes of the
whole answer, wherever the deltas were cut: a finding split across chunks is still found.

How much is held back. Every kind's pattern is made of non-whitespace characters, except that digit and
capital groups may be separated by single spaces (``4111 1111 ...``, ``DE89 3704 ...``, ``+1 (415) 555-2671``)
and a secret's value may follow its secret word (``password: ...``). So the tail held back is the last run of
non-whitespace characters, extended backwards over the space-separated groups of digits, capitals and
``+()-./`` before it: a word of prose is held until the next whitespace arrives, a number until its last
group is followed by something else (so a delta without whitespace is only added to the tail, not even
searched). Secret words need no holding: the last :data:`CONTEXT` characters
already emitted stay with the redactor (in memory, as the answer itself does) and are searched again with
the new text, so a value arriving after its ``password:`` is still recognised. The tail never exceeds
:data:`MAX_HOLD` characters: past it the oldest text is emitted (a finding reaching into it is redacted
whole, as far as it has arrived). A PEM private key can be longer than that: once its header has been held
:data:`MAX_HOLD` characters, its placeholder is emitted and everything up to its footer is dropped.

The placeholder map is the request's (:class:`voidllm.guard.scan.RequestGuard`): a value the client sent
and the answer repeats gets the same placeholder.
"""

from __future__ import annotations

import re

import attrs

from voidllm.guard import kinds
from voidllm.guard.detect import (
    Finding,
    find,
    private_key_footer,
    private_key_open,
    private_key_open_or_partial,
)
from voidllm.guard.scan import RequestGuard

MAX_HOLD = 4096
"""The most characters of an answer held back at any time (a JWT or a long key fits)."""
CONTEXT = 128
"""Characters of already emitted text kept to recognise a value after its secret word."""
_FOOTER_TAIL = 64
"""While dropping a private key: characters kept to find a footer split across deltas."""
_GROUP = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+()-./")
_SPACE = re.compile(r"\s")


def _hold_start(text: str, floor: int) -> int:
    """Where the tail that could still be (the start of) a finding begins, not before ``floor``."""
    j = len(text)
    while j > floor and text[j - 1] in " \t":
        j -= 1
    while j > floor and not text[j - 1].isspace():
        j -= 1
    while j - 1 > floor and text[j - 1] == " ":
        k = j - 1
        while k > floor and text[k - 1] in _GROUP:
            k -= 1
        if k == j - 1 or (k > floor and not text[k - 1].isspace()):
            break  # no group, or the tail of a longer word (which was already complete)
        j = k
    return j


@attrs.define(eq=False, repr=False)
class StreamRedactor:
    """Redacts one streamed answer (one choice's text) for ``guard``'s response kinds.

    Its repr shows sizes only: the held text is content.
    """

    guard: RequestGuard
    _kinds: frozenset[str] = attrs.field(init=False)
    _context: str = attrs.field(init=False, default="")
    _pending: str = attrs.field(init=False, default="")
    _dropping: bool = attrs.field(init=False, default=False)
    """Inside a private key whose placeholder was emitted: drop until its footer."""

    def __attrs_post_init__(self) -> None:
        self._kinds = self.guard.response_kinds

    def __repr__(self) -> str:
        return f"<StreamRedactor held={len(self._pending)} dropping={self._dropping}>"

    @property
    def held(self) -> int:
        """Characters received and not emitted yet (at most :data:`MAX_HOLD`)."""
        return len(self._pending)

    def feed(self, delta: str) -> str:
        """Take the next delta; return the text that can be emitted now (maybe empty)."""
        if not self._kinds:
            return delta
        self._pending += delta
        if _SPACE.search(delta) is None and not self._dropping and len(self._pending) <= MAX_HOLD:
            return ""  # a word goes on: nothing before it can be emitted that could not be emitted before
        return self._drain(final=False)

    def finish(self) -> str:
        """The end of the answer: everything still held, redacted."""
        if not self._kinds:
            return ""
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> str:
        if self._dropping and not self._skip_key(final):
            return ""
        text = self._context + self._pending
        base = len(self._context)
        findings = [f for f in find(text, self._kinds) if f.end > base]
        cut = len(text) if final else self._cut(text, base, findings)
        if cut < 0:  # a private key longer than MAX_HOLD: emitted as its placeholder, the rest dropped
            return self._open_key(text, base, findings)
        emitted = [Finding(max(f.start, base), f.end, f.kind) for f in findings if f.start < cut]
        if emitted:
            self.guard.count_response(emitted)
            out = self.guard.replace(text[:cut], emitted)[base:]  # no finding starts in the context
        else:
            out = text[base:cut]
        self._context, self._pending = text[max(0, cut - CONTEXT) : cut], text[cut:]
        return out

    def _cut(self, text: str, base: int, findings: list[Finding]) -> int:
        cut = _hold_start(text, base)
        if kinds.PRIVATE_KEY in self._kinds:
            key = private_key_open_or_partial(text[base:])
            if key >= 0 and len(text) - (base + key) > MAX_HOLD:
                if private_key_open(text[base:]) >= 0:
                    return -1  # a key's header: its placeholder now, the rest dropped
                key = -1  # "-----BEGIN" and thousands of capitals: no header after all
            if key >= 0:
                cut = min(cut, base + key)
        for finding in findings:
            if finding.start < cut < finding.end:
                cut = finding.start
        if len(text) - cut > MAX_HOLD:
            cut = len(text) - MAX_HOLD
            for finding in findings:
                if finding.start < cut < finding.end:
                    cut = finding.end
        return max(cut, base)

    def _open_key(self, text: str, base: int, findings: list[Finding]) -> str:
        start = base + private_key_open(text[base:])
        before = [f for f in findings if f.end <= start]
        self.guard.count_response([*before, Finding(start, len(text), kinds.PRIVATE_KEY)])
        out = self.guard.replace(text[:start], before)[base:]
        out += self.guard.placeholder(kinds.PRIVATE_KEY, text[start:])
        self._context, self._pending, self._dropping = "", text[start:][-_FOOTER_TAIL:], True
        return out

    def _skip_key(self, final: bool) -> bool:
        """While dropping a key: True once its footer has arrived (the text after it is pending)."""
        end = private_key_footer(self._pending)
        if end < 0:
            self._pending = "" if final else self._pending[-_FOOTER_TAIL:]
            return False
        self._pending, self._dropping = self._pending[end:], False
        return True
