"""Finding credentials and personal data in a text: candidates by regular expression, each one validated.

One call, :func:`find`, returns the findings (kind, start, end) of the kinds asked for, sorted and without
overlaps. It never returns, logs or raises with the matched text: callers see positions and kinds only.

**How it is fast enough** (budget: 0.3 ms per 10 KB of text with every kind on, ``scripts/bench --guard``).
Python's ``re`` costs about 10 ns per character for every pattern that has to look at the whole text
(measured: 80-100 us per 10 KB on the benchmark machine, even for a pattern starting with a character set),
so twenty detectors each searching the text would cost ten times the budget. Instead one Hyperscan pass
(:class:`_Gate`: every detector family's prefilter pattern in one database, about 20-40 us per 10 KB) says
which families can find anything at all, and for the frequent ones where: the secret words, the digit runs
and the IBANs are then searched with ``re`` only around the prefilter's match ends. The prefilters are
supersets of their detectors (a test checks that the findings are the same without them), and they skip
what prose is made of: a digit finding needs nine digits (or seven after a ``+``), so dates, amounts and
versions do not even reach the digit detector. Measured: about 0.02 ms per 10 KB of prose without findings,
0.2 ms with six. Without Hyperscan (no wheel for the platform) every detector searches every text: the same
findings, about ten times the time. No pattern starts with a look-behind (that would defeat ``re``'s skip to
a possible first character): word boundaries are checked in Python on the few candidates.

Text made to be expensive (a table of numbers, ``DE12 DE12 ...``, thousands of ``@``) stays linear: past
:data:`MAX_GATE_MATCHES` prefilter matches every family searches the whole text once instead; numbers side by
side are split into findings only up to twelve groups; an IBAN candidate reaches the checksum only with its
country's length. Measured on the benchmark machine: 2-16 ms of CPU per 10 KB of such text.

**Validation**, so that prose, code, UUIDs and hashes do not trigger:

- provider keys and tokens: their documented prefixes and alphabets, a length floor, a letter and a digit in
  the random part (so ``sk-not-a-real-key-at-all`` is prose); JWTs: the header must decode to a JSON object
  with ``alg``;
- ``aws_secret_key``: 40 characters of AWS's alphabet within 80 characters after ``aws`` or ``secret``, with
  upper and lower case letters and a digit, entropy at least 4.0 bits per character;
- ``generic_secret``: a value assigned or given to a secret word (``password``, ``secret``, ``token``,
  ``api_key`` ...: ``DB_PASSWORD=...``, ``token: ...``, ``password is ...``), at least 8 characters with a
  letter and a digit and a Shannon entropy of at least :data:`ENTROPY_MIN` (3.0) bits per character; UUIDs,
  hex digests of 32, 40 or 64 characters (git SHAs) and template references (``${...}``, ``<...>``) are not
  secrets;
- ``url_password``: the password of ``scheme://user:password@host`` (only it is redacted, the URL stays
  readable); masks (``***``), template references and the guard's own placeholders are not;
- e-mail: a local part, ``@``, a dotted domain with a 2-24 letter top-level label (not the ``user:password@``
  of a URL);
- digit runs: payment cards have 13-19 digits (spaces or dashes between groups), a first digit 2-6 and a
  valid Luhn sum (``python-stdnum``); US SSNs are ``ddd-dd-dddd`` with the area and group rules of
  ``python-stdnum``; German tax ids (IdNr) 11 digits with their ISO 7064 check digit, French NIRs 15 digits
  with their key (``python-stdnum``); anything else of 7-15 digits is a phone number when it fits its
  country's numbering plan in ``phonenumbers``' metadata (a possible length and the general pattern of the
  country's numbers, which encodes the valid leading digits): with a ``+`` or ``00`` prefix for any country,
  without one only when written with separators (``(415) 555-2671``, ``020 7946 0958``), with at least 9
  digits (an area code) and fitting one of :data:`NATIONAL_REGIONS`: after its national prefix (``0`` in
  Britain, Germany and France, where a national number is never written without it), or grouped 3-3-4 in
  the North American plan; numbers written side by side and read as one run are tried group by group;
- IBANs: ``python-stdnum`` (country, length, mod-97); Spanish DNI/NIE and Italian codice fiscale:
  ``python-stdnum``'s check letters; UK National Insurance numbers: hand-written from HMRC's prefix rules
  (the number has no check digit and ``python-stdnum`` has no module for it).

``phonenumbers`` carries Google's libphonenumber metadata: hand-written phone rules would be either too loose
(any ten digits) or wrong for most countries. Its full ``is_valid_number`` (parse, then every number type's
pattern) costs about 70 µs of CPU per candidate on the benchmark machine, several times the budget of a whole
text with one phone number in it; matching the country's general pattern ourselves costs about 2 µs and keeps
the numbering plan (lengths, leading digits), so that is what runs. ``python-stdnum`` holds the check-digit
algorithms of the identifiers above.

The credential patterns are written here because no secret-scanning library fits a request's hot path.
Yelp's ``detect-secrets`` (PyPI; read at 1.5.0) is made for files and diffs: ``scan_file`` and ``scan_line``
run every plugin over each line, each plugin with its own ``re`` patterns, which is the one pass per detector
that the prefilter above exists to avoid; a plugin yields the matched values, not their positions, wrapped in
``PotentialSecret`` objects that hold the value and its SHA-1, so redacting would mean finding each value
again, and values would be kept where this module keeps none; its settings are process-wide, and a plugin
may call the provider to verify a secret. gitleaks and TruffleHog are Go programs (gitleaks' rules a TOML
file, TruffleHog's detectors Go code), not libraries to call per request. The token patterns above encode the
same facts those rule sets do (each provider's documented prefix and alphabet) for the kinds in
:mod:`voidllm.guard.kinds`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import orjson

from voidllm.guard import kinds

# ``phonenumbers`` and ``python-stdnum`` (about 3 MB and 30 ms with the ``pydoc`` and ``zipfile`` they pull
# in) are imported by the few functions that validate a candidate, so a gateway that never guards never loads
# them; :func:`prepare` imports them before the first scan when a guard is configured or stored.

hyperscan: Any = None
"""The Hyperscan module once :func:`prepare` imported it (``None`` before, and without a wheel for this
platform)."""

ENTROPY_MIN = 3.0
"""Shannon entropy, bits per character, a ``generic_secret`` value must reach."""
AWS_ENTROPY_MIN = 4.0
"""Shannon entropy, bits per character, of a 40-character ``aws_secret_key``."""
NATIONAL_REGIONS = ("US", "GB", "DE", "FR")
"""Regions whose national phone formats are recognised without a ``+`` country code."""
KEYWORD_WINDOW = 80
"""How far after a secret word its value may start (``aws_secret_key``, ``generic_secret``)."""

_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


@attrs.frozen(order=True)
class Finding:
    """One finding: ``text[start:end]`` is of ``kind``. Holds positions only, never the text."""

    start: int
    end: int
    kind: str


Found = list[tuple[int, int, str]]
_Ends = list[int] | None
"""Where the family's prefilter matched (end offsets), when it reports them; None: look everywhere."""
_Detector = Callable[[str, Found, _Ends], None]


def entropy(value: str) -> float:
    """Shannon entropy of ``value`` in bits per character."""
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values()) if n else 0.0


def _isolated(text: str, start: int, end: int, alphabet: frozenset[str] = _WORD) -> bool:
    """True when the characters around ``text[start:end]`` are not part of the same word."""
    return (start == 0 or text[start - 1] not in alphabet) and (end == len(text) or text[end] not in alphabet)


# Prefixed tokens --------------------------------------------------------------------------------------------

_TOKEN_CHARS = frozenset(_WORD | {"-"})
_TOKEN_PATTERNS = {
    kinds.ANTHROPIC_KEY: (r"sk-ant-[A-Za-z0-9_\-]{32,}", 7),
    kinds.OPENAI_KEY: (r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}", 3),
    kinds.STRIPE_KEY: (r"[sr]k_(?:live|test)_[A-Za-z0-9]{20,}", 8),
    kinds.GITHUB_TOKEN: (r"gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,}", 4),
    kinds.GITLAB_TOKEN: (r"gl(?:pat|dt|rt|ptt|cbt|soat)-[A-Za-z0-9_\-]{20,}", 6),
    kinds.SLACK_TOKEN: (r"xox[abposr]-[A-Za-z0-9\-]{10,}", 5),
    kinds.AWS_ACCESS_KEY: (r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}", 4),
    kinds.GCP_API_KEY: (r"AIza[A-Za-z0-9_\-]{35}", 4),
    kinds.JWT: (r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", 0),
}
"""Per kind: the token's pattern (its documented prefix and alphabet) and the length of its fixed prefix."""


def _token(kind: str) -> _Detector:
    pattern, prefix = re.compile(_TOKEN_PATTERNS[kind][0]), _TOKEN_PATTERNS[kind][1]

    def detect(text: str, out: Found, _ends: _Ends = None) -> None:
        for match in pattern.finditer(text):
            start, end = match.span()
            if not _isolated(text, start, end, _TOKEN_CHARS):
                continue
            body = match.group()[prefix:]
            if kind == kinds.JWT:
                if _jwt_header(body):
                    out.append((start, end, kind))
            elif kind == kinds.AWS_ACCESS_KEY or (_letter_and_digit(body) and entropy(body) >= ENTROPY_MIN):
                out.append((start, end, kind))

    return detect


def _letter_and_digit(value: str) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def _jwt_header(body: str) -> bool:
    """True when the text before the first dot (after ``eyJ``) is base64url of a JSON object with ``alg``."""
    segment = body.split(".", 1)[0]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and "alg" in header


# Secret words: aws_secret_key and generic_secret ------------------------------------------------------------

_KEYWORDS = re.compile(
    r"aws|secret|passw(?:or)?d|pwd|token|api[_\-]?key|access[_\-]?key|auth|credential|private[_\-]?key",
    re.IGNORECASE | re.ASCII,
)
_AWS_SECRET = re.compile(r"[A-Za-z0-9/+]{40}")
_AWS_CHARS = frozenset(_WORD | {"/", "+", "="})
_ASSIGNED = re.compile(
    r"""[A-Za-z0-9_.\-]{0,24}["']?"""
    r"""(?:[ \t]{0,3}(?::=|=>|[:=])|[ \t]{1,3}(?:is|was|are|=)(?=[ \t]))[ \t]{0,3}["'`]?"""
    r"""([^\s"'`,;<>()\[\]{}]{8,256})"""
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX_DIGEST = re.compile(r"(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64})")
_AWS_REACH = 300
"""How far before the end of its prefilter match an aws_secret_key's secret word can be."""
_GENERIC_REACH = 64
"""How far before the end of its prefilter match a generic_secret's secret word can be."""


def _keywords(text: str, ends: _Ends, reach: int) -> list[re.Match[str]]:
    """The secret words in ``text``: everywhere, or only within ``reach`` characters before each end."""
    if ends is None:
        return list(_KEYWORDS.finditer(text))
    windows: list[list[int]] = []
    for end in sorted(ends):
        if windows and end - reach <= windows[-1][1]:
            windows[-1][1] = end
        else:
            windows.append([max(0, end - reach), end])
    return [match for begin, end in windows for match in _KEYWORDS.finditer(text, begin, end)]


def _aws_secret(text: str, out: Found, ends: _Ends = None) -> None:
    for keyword in _keywords(text, ends, _AWS_REACH):
        if keyword.group().lower() not in ("aws", "secret"):
            continue
        for match in _AWS_SECRET.finditer(text, keyword.end(), keyword.end() + KEYWORD_WINDOW + 40):
            start, end = match.span()
            value = match.group()
            if (
                _isolated(text, start, end, _AWS_CHARS)
                and any(c.isupper() for c in value)
                and any(c.islower() for c in value)
                and any(c.isdigit() for c in value)
                and entropy(value) >= AWS_ENTROPY_MIN
            ):
                out.append((start, end, kinds.AWS_SECRET_KEY))


def _generic_secret(text: str, out: Found, ends: _Ends = None) -> None:
    for keyword in _keywords(text, ends, _GENERIC_REACH):
        match = _ASSIGNED.match(text, keyword.end())
        if match is None:
            continue
        start, end = match.span(1)
        value = match.group(1).rstrip(".")
        end = start + len(value)
        if (
            len(value) >= 8
            and _letter_and_digit(value)
            and not value.startswith(("$", "%", "*"))
            and not _UUID.fullmatch(value)
            and not _HEX_DIGEST.fullmatch(value)
            and entropy(value) >= ENTROPY_MIN
        ):
            out.append((start, end, kinds.GENERIC_SECRET))


# URLs with passwords, PEM private keys ----------------------------------------------------------------------

_URL_CREDENTIALS = re.compile(r"://[^\s:/?#@\[\]]{0,128}:([^\s/?#@]{1,256})@[A-Za-z0-9\[]")
_PLACEHOLDER = re.compile(r"\[(?:" + "|".join(kinds.LABELS.values()) + r")_[1-9][0-9]*\]")
"""The guard's own placeholders (``[URL_PASSWORD_1]``, :mod:`voidllm.guard.scan`): an answer repeating a
redacted URL holds one, and it is no password."""


def _url_password(text: str, out: Found, _ends: _Ends = None) -> None:
    if "://" not in text:
        return
    for match in _URL_CREDENTIALS.finditer(text):
        value = match.group(1)
        if (
            value.strip("*x")
            and not value.startswith(("$", "<", "{", "%"))
            and not _PLACEHOLDER.fullmatch(value)
        ):
            out.append((*match.span(1), kinds.URL_PASSWORD))


_PEM_BEGIN = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----")


def _private_key(text: str, out: Found, _ends: _Ends = None) -> None:
    position = text.find("-----BEGIN ")
    while position >= 0:
        match = _PEM_BEGIN.match(text, position)
        if match is None:
            position = text.find("-----BEGIN ", position + 1)
            continue
        footer = f"-----END {match.group(1)}PRIVATE KEY{match.group(2) or ''}-----"
        end = text.find(footer, match.end())
        end = len(text) if end < 0 else end + len(footer)
        out.append((match.start(), end, kinds.PRIVATE_KEY))
        position = text.find("-----BEGIN ", end)


def private_key_open(text: str) -> int:
    """The start of a PEM private-key header in ``text`` with no footer after it yet, else -1 (streams)."""
    position = text.rfind("-----BEGIN ")
    while position >= 0:
        match = _PEM_BEGIN.match(text, position)
        if match is not None:
            footer = f"-----END {match.group(1)}PRIVATE KEY{match.group(2) or ''}-----"
            return position if text.find(footer, match.end()) < 0 else -1
        position = text.rfind("-----BEGIN ", 0, position)
    return -1


_PEM_HEADER_PREFIX = re.compile(r"-----BEGIN(?: [A-Z0-9 ]*)?-{0,4}")


def private_key_open_or_partial(text: str) -> int:
    """Like :func:`private_key_open`, and also the start of a header still arriving at the end of ``text``
    (``-----BEGIN RSA PRIV``): a stream must hold it until it knows (for streams)."""
    start = private_key_open(text)
    if start >= 0:
        return start
    position = text.rfind("-----BEGIN")
    return position if position >= 0 and _PEM_HEADER_PREFIX.fullmatch(text, position) else -1


def private_key_footer(text: str) -> int:
    """The end of the first PEM private-key footer in ``text``, else -1 (for streams)."""
    match = _PEM_END.search(text)
    return match.end() if match else -1


_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")


# E-mail -----------------------------------------------------------------------------------------------------

_LOCAL_CHARS = frozenset(_WORD | set(".%+-'"))
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])")


def _email(text: str, out: Found, _ends: _Ends = None) -> None:
    at = text.find("@")
    while at >= 0:
        start = at
        while start > 0 and at - start < 64 and text[start - 1] in _LOCAL_CHARS:
            start -= 1
        while start < at and text[start] in ".'":
            start += 1
        url_user = start > 0 and text[start - 1] in ":/"  # scheme://user:password@host is no address
        domain = _DOMAIN.match(text, at + 1) if start < at and not url_user else None
        if domain is not None:
            out.append((start, domain.end(), kinds.EMAIL))
            at = text.find("@", domain.end())
        else:
            at = text.find("@", at + 1)


# Digit runs: cards, SSNs, national numbers, phones ----------------------------------------------------------

_DIGIT_RUN = re.compile(r"[0-9+(][0-9 \-.()/]{5,62}[0-9]")
_CARD = re.compile(r"[0-9]{4}(?:[ \-]?[0-9]{2,7}){2,5}")
_SSN = re.compile(r"[0-9]{3}([\- ])[0-9]{2}\1[0-9]{4}")
_IDNR = re.compile(r"[0-9]{11}|[0-9]{2} [0-9]{3} [0-9]{3} [0-9]{3}")
_NIR = re.compile(r"[12](?: ?[0-9]{2}){2} ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}")
_DATE = re.compile(r"[0-9]{1,4}[\-./][0-9]{1,2}[\-./][0-9]{1,4}")
_PHONE_SHAPE = re.compile(
    r"\(?[0-9]{2,5}\)?(?:[ \-.][0-9]{2,5}){1,4}|\([0-9]{2,5}\)[0-9]{3,5}[\-.][0-9]{3,5}"
)


_DIGIT_RUN_CHARS = frozenset("0123456789+( -.)/")
_DIGITS_GATE = r"\+[ \-.()/]*[0-9](?:[ \-.()/]*[0-9]){6}|[0-9](?:[ \-.()/]*[0-9]){8}"
"""Where a digit finding can be: seven digits after a ``+``, or nine digits (every kind of digit finding
has as many: an SSN 9, a national phone number 9, a card 13 ...), separators allowed between them. Dates,
amounts and versions of prose have fewer, so the digit detector is not even called for them."""
_IBAN_RUN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")


def _windows(text: str, ends: _Ends, before: int, run: frozenset[str]) -> list[tuple[int, int]]:
    """The stretches of ``text`` to search: all of it, or around each prefilter match end.

    Each end ``e`` stands for a candidate within ``[e - before, e]``; the stretch is widened to the whole run
    of ``run`` characters it sits in, so that a search started at its beginning meets the same candidates as
    a search of the whole text would (no candidate straddles a run's edge).
    """
    if ends is None:
        return [(0, len(text))]
    windows: list[tuple[int, int]] = []
    for end in sorted(ends):
        begin = max(0, end - before)
        if windows and begin <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(end, windows[-1][1]))
            continue
        while begin > 0 and text[begin - 1] in run:
            begin -= 1
        windows.append((begin, end))
    out: list[tuple[int, int]] = []
    for begin, end in windows:
        while end < len(text) and text[end] in run:
            end += 1
        if out and begin <= out[-1][1]:
            out[-1] = (out[-1][0], end)
        else:
            out.append((begin, end))
    return out


def _digit_runs(wanted: frozenset[str]) -> _Detector:
    def detect(text: str, out: Found, ends: _Ends = None) -> None:
        for begin, stop in _windows(text, ends, 64, _DIGIT_RUN_CHARS):
            _digit_candidates(text, begin, stop, wanted, out)

    return detect


def _digit_candidates(text: str, begin: int, stop: int, wanted: frozenset[str], out: Found) -> None:
    for match in _DIGIT_RUN.finditer(text, begin, stop):
        start, end = match.span()
        candidate = match.group()
        if candidate[0] in "(+":
            if start > 0 and text[start - 1] in _WORD:
                continue
        elif not _isolated(text, start, end):
            continue
        if (start > 0 and text[start - 1] in "+-.") or (end < len(text) and text[end] == "-"):
            continue
        kind = _digit_kind(candidate, wanted)
        if kind is not None:
            out.append((start, end, kind))
        elif (" " in candidate or "/" in candidate) and len(
            _DIGIT_GROUP.findall(candidate)
        ) <= _MAX_RUN_GROUPS:
            _digit_parts(candidate, start, wanted, out)


_DIGIT_GROUP = re.compile(r"[^ /]+")
_MAX_GROUPS = 8
"""The most space-separated groups of one finding (a French NIR has 7)."""
_MAX_RUN_GROUPS = 12
"""A run of more groups is not split into findings: a few numbers side by side have fewer, and a long list
of small numbers (a table, noise) would cost a validation per pair of groups."""


def _digit_parts(candidate: str, offset: int, wanted: frozenset[str], out: Found) -> None:
    """Numbers side by side (``(415) 555-2671 (415) 555-2672``, ``4111-1111-1111-1111 / 5555 ...``) read as
    one run: from each group on, the longest run of whole groups that is a finding, left to right."""
    groups = [match.span() for match in _DIGIT_GROUP.finditer(candidate)]
    i = 0
    while i < len(groups):
        for j in range(min(len(groups), i + _MAX_GROUPS) - 1, i - 1, -1):
            begin, end = groups[i][0], groups[j][1]
            part = candidate[begin:end]
            plausible = len(part) >= 7 and part[-1].isdigit() and 7 <= len(part.translate(_NOT_DIGITS)) <= 19
            kind = _digit_kind(part, wanted) if plausible else None
            if kind is not None:
                out.append((offset + begin, offset + end, kind))
                i = j
                break
        i += 1


_NOT_DIGITS = str.maketrans("", "", "+( -.)/")


def _digit_kind(candidate: str, wanted: frozenset[str]) -> str | None:
    digits = candidate.translate(_NOT_DIGITS)
    n = len(digits)
    from stdnum import luhn
    from stdnum.de import idnr
    from stdnum.fr import nir
    from stdnum.us import ssn

    if kinds.CREDIT_CARD in wanted and 13 <= n <= 19 and _CARD.fullmatch(candidate):
        if digits[0] in "23456" and luhn.is_valid(digits):
            return kinds.CREDIT_CARD
    if kinds.US_SSN in wanted and n == 9 and _SSN.fullmatch(candidate) and ssn.is_valid(digits):
        return kinds.US_SSN
    if kinds.DE_TAX_ID in wanted and n == 11 and _IDNR.fullmatch(candidate) and idnr.is_valid(digits):
        return kinds.DE_TAX_ID
    if kinds.FR_NIR in wanted and n == 15 and _NIR.fullmatch(candidate) and nir.is_valid(digits):
        return kinds.FR_NIR
    if kinds.PHONE in wanted and 7 <= n <= 15 and _phone(candidate):
        return kinds.PHONE
    return None


def _phone(candidate: str) -> bool:
    digits = candidate.translate(_NOT_DIGITS)
    if candidate.startswith("+"):
        return _international(digits)
    if candidate.startswith("00"):
        return _international(digits[2:])
    if _DATE.fullmatch(candidate) or not _PHONE_SHAPE.fullmatch(candidate):
        return False
    if len(digits) < 9:  # a local number without its area code: too ambiguous
        return False
    return any(_national(candidate, digits, region) for region in NATIONAL_REGIONS)


def _international(digits: str) -> bool:
    import phonenumbers

    for size in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:size] or "0"))
        if regions:
            national = digits[size:]
            return any(_national_number_valid(region, national, int(digits[:size])) for region in regions)
    return False


_NANP = re.compile(r"(?:1[ \-.])?(?:\([0-9]{3}\) ?|[0-9]{3}[ \-.])[0-9]{3}[ \-.][0-9]{4}")
"""How North American numbers are written: (415) 555-2671, 415-555-2671, 1 415 555 2671."""


def _national(candidate: str, digits: str, region: str) -> bool:
    if region == "US":  # the national prefix (1) is optional; the 3-3-4 grouping is not
        national = digits[1:] if digits.startswith("1") else digits
        return _NANP.fullmatch(candidate) is not None and _national_number_valid(region, national, 0)
    prefix = _metadata(region, 0).national_prefix or ""
    return digits.startswith(prefix) and _national_number_valid(region, digits[len(prefix) :], 0)


def _national_number_valid(region: str, national: str, country_code: int) -> bool:
    """True when ``national`` has a possible length and fits the general pattern of ``region``'s numbers."""
    metadata = _metadata(region, country_code)
    if metadata is None:
        return False
    general = metadata.general_desc
    lengths = general.possible_length or ()
    return (not lengths or len(national) in lengths) and _pattern(general.national_number_pattern).fullmatch(
        national
    ) is not None


@functools.cache
def _metadata(region: str, country_code: int) -> Any:
    import phonenumbers

    if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return phonenumbers.PhoneMetadata.metadata_for_nongeo_region(country_code)
    return phonenumbers.PhoneMetadata.metadata_for_region(region)


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# Capitalised identifiers: IBAN, UK NINO, codice fiscale, DNI/NIE --------------------------------------------

_IBAN = re.compile(r"[A-Z][A-Z][0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?")
_NINO = re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]")
_NINO_NOT = frozenset(("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"))
_FISCAL_CODE = re.compile(
    r"[A-Z][A-Z]{5}[0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]"
)
_DNI = re.compile(r"[0-9XYZ]-?[0-9]{7}-?[A-Z]")


def _iban(text: str, out: Found, ends: _Ends = None) -> None:
    for begin, stop in _windows(text, ends, 16, _IBAN_RUN_CHARS):
        _iban_candidates(text, begin, stop, out)


def _iban_candidates(text: str, begin: int, stop: int, out: Found) -> None:
    from stdnum import iban as stdnum_iban

    for match in _IBAN.finditer(text, begin, stop):
        start, end = match.span()
        if start > 0 and text[start - 1] in _WORD:
            continue
        candidate = match.group()
        length = _iban_length(candidate[:2])
        if not length:
            continue
        while True:
            valid_length = len(candidate) - candidate.count(" ") == length
            if valid_length and _isolated(text, start, end) and stdnum_iban.is_valid(candidate):
                out.append((start, end, kinds.IBAN))
                break
            cut = candidate.rfind(" ")
            if cut < 0:
                break
            candidate = candidate[:cut]
            end = start + cut


@functools.cache
def _iban_length(code: str) -> int:
    """The length of the IBANs of the country with these two letters (``python-stdnum``'s registry), or 0."""
    from stdnum import iban as stdnum_iban

    bban = stdnum_iban._ibandb.info(code + "00")[0][1].get("bban", "")
    return 4 + sum(int(n) for n in re.findall(r"[0-9]+", bban)) if bban else 0


def _uk_nino(text: str, out: Found, _ends: _Ends = None) -> None:
    for match in _NINO.finditer(text):
        start, end = match.span()
        if _isolated(text, start, end) and match.group()[:2] not in _NINO_NOT:
            out.append((start, end, kinds.UK_NINO))


def _fiscal_code(text: str, out: Found, _ends: _Ends = None) -> None:
    from stdnum.it import codicefiscale

    for match in _FISCAL_CODE.finditer(text):
        start, end = match.span()
        if _isolated(text, start, end) and codicefiscale.is_valid(match.group()):
            out.append((start, end, kinds.IT_FISCAL_CODE))


def _es_dni(text: str, out: Found, _ends: _Ends = None) -> None:
    from stdnum.es import dni, nie

    for match in _DNI.finditer(text):
        start, end = match.span()
        value = match.group().replace("-", "")
        if _isolated(text, start, end) and (
            nie.is_valid(value) if value[0] in "XYZ" else dni.is_valid(value)
        ):
            out.append((start, end, kinds.ES_DNI))


# The plan for a set of kinds --------------------------------------------------------------------------------

_DIGIT_KINDS = frozenset((kinds.PHONE, kinds.CREDIT_CARD, kinds.US_SSN, kinds.DE_TAX_ID, kinds.FR_NIR))
_SECRET_WORD = (
    r"(?:aws|secret|passw(?:or)?d|pwd|token|api[_\-]?key|access[_\-]?key|auth|credential|private[_\-]?key)"
)


@attrs.frozen
class _Family:
    """Detectors that share one prefilter: ``gate`` must match wherever ``detector`` could find something."""

    kinds: frozenset[str]
    gate: str
    caseless: bool
    detector: Callable[[frozenset[str]], _Detector]
    where: bool = False
    """Report every end offset of the gate's matches to the detector (it looks only around them)."""


def _fixed(detector: _Detector) -> Callable[[frozenset[str]], _Detector]:
    return lambda _wanted: detector


_FAMILIES: tuple[_Family, ...] = (
    *(
        # The gate of openai_key is its prefix: its pattern has a look-ahead, which Hyperscan does not take.
        _Family(
            frozenset((kind,)), "sk-" if kind == kinds.OPENAI_KEY else pattern, False, _fixed(_token(kind))
        )
        for kind, (pattern, _prefix) in _TOKEN_PATTERNS.items()
    ),
    _Family(frozenset((kinds.PRIVATE_KEY,)), r"-----BEGIN ", False, _fixed(_private_key)),
    _Family(frozenset((kinds.URL_PASSWORD,)), r"://[^\s:/?#@]*:[^\s/?#@]+@", False, _fixed(_url_password)),
    _Family(
        frozenset((kinds.AWS_SECRET_KEY,)),
        r"(?:aws|secret).{0,200}[A-Za-z0-9/+]{40}",
        True,
        _fixed(_aws_secret),
        where=True,
    ),
    _Family(
        frozenset((kinds.GENERIC_SECRET,)),
        _SECRET_WORD + r"""[A-Za-z0-9_.\-]{0,24}["']?(?:[ \t]{0,3}[:=]|[ \t]{1,3}(?:is|was|are|=)[ \t])""",
        True,
        _fixed(_generic_secret),
        where=True,
    ),
    _Family(frozenset((kinds.EMAIL,)), r"[A-Za-z0-9_.%+\-']@[A-Za-z0-9]", False, _fixed(_email)),
    _Family(_DIGIT_KINDS, _DIGITS_GATE, False, _digit_runs, where=True),
    _Family(
        frozenset((kinds.IBAN,)),
        r"[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4} ?[A-Z0-9]{4}",
        False,
        _fixed(_iban),
        where=True,
    ),
    _Family(frozenset((kinds.UK_NINO,)), _NINO.pattern, False, _fixed(_uk_nino)),
    _Family(frozenset((kinds.IT_FISCAL_CODE,)), _FISCAL_CODE.pattern, False, _fixed(_fiscal_code)),
    _Family(frozenset((kinds.ES_DNI,)), _DNI.pattern, False, _fixed(_es_dni)),
)
_PRIORITY = {kind: index for index, kind in enumerate(kinds.ALL_KINDS)}
"""Of two findings starting at the same place, the kind listed first wins (specific keys before
``generic_secret``); a finding overlapping an earlier one is dropped."""


class _Gate:
    """One Hyperscan pass over the text that tells which families could find anything in it.

    Every family's gate is compiled into one block-mode database, ``SINGLEMATCH`` (the first match of a
    pattern is enough) except for the secret-word families, which are told where each match ended and look
    for the secret word only just before. Hyperscan reads bytes: the text is encoded as ASCII with every
    other character replaced by one ``x`` (so offsets and lengths stay those of the text, and a non-ASCII
    character reads as a letter, as the detectors' ASCII classes see it: never a digit, a space or a
    separator). Without
    Hyperscan (a platform with no wheel) every family runs: the same findings, more time.

    The scan runs on the calling thread with the database's scratch space: one thread at a time (the trio
    thread); it is not shared with worker threads.
    """

    def __init__(self) -> None:
        self._db: Any = None
        if hyperscan is None:  # pragma: no cover (no wheel for this platform)
            return
        flags = [
            (0 if f.where else hyperscan.HS_FLAG_SINGLEMATCH)
            | hyperscan.HS_FLAG_DOTALL
            | (hyperscan.HS_FLAG_CASELESS if f.caseless else 0)
            for f in _FAMILIES
        ]
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(
            expressions=[f.gate.encode() for f in _FAMILIES],
            ids=list(range(len(_FAMILIES))),
            elements=len(_FAMILIES),
            flags=flags,
        )
        self._db = db

    def families(self, text: str) -> dict[int, list[int]] | None:
        """The families whose gate matches ``text``, each with the end offsets of its matches (all of them
        for the secret-word families, the first for the others); None: no Hyperscan, run them all."""
        if self._db is None:
            return None
        hits: dict[int, list[int]] = {}
        data = text.encode("ascii", "voidllm-guard-ascii")
        try:
            self._db.scan(data, match_event_handler=_on_match, context=hits)
        except hyperscan.ScanTerminated:
            return None  # too many matches: search everything
        return hits


MAX_GATE_MATCHES = 1024
"""Prefilter matches reported before the scan stops and every family searches the whole text: a text full of
candidates (a table of numbers, noise) costs one regular-expression pass per family instead of a Python call
per match."""


def _on_match(family: int, _start: int, end: int, _flags: int, hits: dict[int, list[int]]) -> bool:
    ends = hits.setdefault(family, [])
    ends.append(end)
    return len(ends) > MAX_GATE_MATCHES  # True stops the scan


def _as_letter(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeEncodeError)
    return "x" * (error.end - error.start), error.end


codecs.register_error("voidllm-guard-ascii", _as_letter)
_GATE: _Gate | None = None


def prepare() -> _Gate:
    """Import Hyperscan and compile the prefilter, once (about 0.1 s of CPU and 10 MB with the library), and
    import the validators' libraries: the gateway calls it at start when a guard policy is configured or
    stored, so that no request pays for it, and a gateway that never guards never loads them
    (tests/test_startup.py); else the first scan does."""
    global _GATE, hyperscan
    if _GATE is None:
        import phonenumbers  # noqa: F401 (loaded here so that no candidate's validation pays for the import)
        import stdnum.de.idnr
        import stdnum.es.dni
        import stdnum.es.nie
        import stdnum.fr.nir
        import stdnum.iban
        import stdnum.it.codicefiscale
        import stdnum.luhn
        import stdnum.us.ssn  # noqa: F401

        try:
            import hyperscan as module

            hyperscan = module
        except ImportError:  # pragma: no cover (no wheel for this platform: every family runs)
            hyperscan = None
        _GATE = _Gate()
    return _GATE


@functools.lru_cache(maxsize=256)
def _plan(wanted: frozenset[str]) -> tuple[tuple[int, bool, _Detector], ...]:
    return tuple(
        (index, family.where, family.detector(wanted & family.kinds))
        for index, family in enumerate(_FAMILIES)
        if wanted & family.kinds
    )


def find(text: str, wanted: frozenset[str]) -> list[Finding]:
    """The findings of the ``wanted`` kinds in ``text``, in order, none overlapping another.

    Args:
        text: any text (a message, a tool call's arguments, a piece of an answer).
        wanted: the kinds to look for (see :mod:`voidllm.guard.kinds`); empty finds nothing at no cost.
    """
    if not wanted or not text:
        return []
    hits = (_GATE or prepare()).families(text)
    if not hits:
        if hits is not None:
            return []  # no family's prefilter matched: the common case for a piece of prose
        found: Found = []
        for _, _, detector in _plan(wanted):
            detector(text, found, None)
        return _resolve(found, wanted)
    found = []
    for index, where, detector in _plan(wanted):
        if index in hits:
            detector(text, found, hits[index] if where else None)
    return _resolve(found, wanted)


def _resolve(found: Iterable[tuple[int, int, str]], wanted: frozenset[str]) -> list[Finding]:
    kept: list[Finding] = []
    last_end = 0
    for start, end, kind in sorted(found, key=lambda f: (f[0], _PRIORITY[f[2]], -f[1])):
        if kind in wanted and start >= last_end and end > start:
            kept.append(Finding(start, end, kind))
            last_end = end
    return kept
