"""The guard's detectors (voidllm.guard.detect): every kind found and validated, near misses and prose not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.guard_samples import ALL, MORE_POSITIVES, SAMPLES
from voidllm.guard import detect, kinds


def _kinds_found(text: str, wanted: frozenset[str] = ALL) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in detect.find(text, wanted)]


@pytest.mark.parametrize("kind", kinds.ALL_KINDS)
def test_each_kind_is_found_with_its_exact_span(kind: str) -> None:
    template, value = SAMPLES[kind]
    assert _kinds_found(template.format(value)) == [(kind, value)]
    # Asked for alone, it is found alone; not asked for, it is not reported (generic_secret may still
    # recognise a key after a secret word).
    assert _kinds_found(template.format(value), frozenset((kind,))) == [(kind, value)]
    assert {k for k, _ in _kinds_found(template.format(value), ALL - {kind})} <= {kinds.GENERIC_SECRET}


@pytest.mark.parametrize(("kind", "template", "value"), MORE_POSITIVES)
def test_more_formats_are_found(kind: str, template: str, value: str) -> None:
    assert _kinds_found(template.format(value)) == [(kind, value)]


NEGATIVES = [
    # Checksums and structure.
    "card 4111 1111 1111 1112 fails Luhn",
    "number 1234567812345678 fails Luhn",
    "IBAN DE88 3704 0044 0532 0130 00 has a wrong check",
    "SSN 000-12-3456 and 666-12-3456 are never issued",
    "IdNr 36574261808 has a wrong check digit",
    "DNI 54362315Z has the wrong letter",
    "codice RCCMNL83S18D969A has the wrong letter",
    "NINO QQ 12 34 56 C is the specimen prefix, BG 12 34 56 A is not allocated",
    "call 555-0100 or 12345 now",
    # Things that look like secrets but are not.
    "request id 123e4567-e89b-12d3-a456-426614174000 failed",
    "token: 123e4567-e89b-12d3-a456-426614174000",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it",
    "secret: 3f786850e387550fdab836ed7e6dc881de23001b",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "sk-not-a-real-key-at-all-just-words",
    "the token is required; the password was forgotten; set api_key=${OPENAI_API_KEY}",
    "password: ********, password = <your password>",
    "postgres://user:***@host/db and https://example.com/a:b@c",
    "eyJhbGciOi.eyJzdWIiOi.notavalidjwtheader",
    # Ordinary prose and code.
    "On 2024-01-15 at 10:30 we sold 1,234,567 units of v1.2.3 for $4,999.00 (up 12.5%).",
    "Meet me at 10:30 on 15/01/2024; room 1204, floor 12, building 7.",
    "def f(x):\n    return x @ y  # matrix product, email me later",
    "The quick brown fox jumps over the lazy dog. NASA and the ESA launched in 1969.",
    "user@localhost has no dotted domain; @mention and a@b are not addresses",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_near_misses_and_prose_are_not_findings(text: str) -> None:
    assert _kinds_found(text) == []


@pytest.mark.parametrize("kind", [kinds.OPENAI_KEY, kinds.GITHUB_TOKEN, kinds.EMAIL, kinds.CREDIT_CARD])
def test_values_inside_a_longer_word_are_not_findings(kind: str) -> None:
    _, value = SAMPLES[kind]
    glued = "x9" + value.replace(" ", "") + "q7" if kind != kinds.EMAIL else "x" + value + "q"
    found = _kinds_found(f"see {glued} now")
    assert all(k != kind or v == glued for k, v in found)
    if kind != kinds.EMAIL:
        assert found == []


@pytest.mark.parametrize("kind", kinds.ALL_KINDS)
def test_a_placeholder_in_place_of_a_value_is_not_a_finding(kind: str) -> None:
    """An answer repeating a redacted text holds placeholders where the values were: they are not found
    again (``postgres://app:[URL_PASSWORD_1]@db`` was once re-redacted as ``[URL_PASSWORD_2]``)."""
    template, _ = SAMPLES[kind]
    assert _kinds_found(template.format(f"[{kinds.LABELS[kind]}_1]")) == []


def test_only_the_guards_own_placeholders_are_exempt_as_url_passwords() -> None:
    """A password that merely looks like a placeholder (an unknown label, a number 0) is still a finding."""
    for password in ("[NOT_A_KIND_1]", "[URL_PASSWORD_0]", "[url_password_1]"):
        assert _kinds_found(f"postgres://app:{password}@db.internal/x") == [(kinds.URL_PASSWORD, password)]


def test_non_ascii_text_keeps_positions() -> None:
    _, email = SAMPLES[kinds.EMAIL]
    _, card = SAMPLES[kinds.CREDIT_CARD]
    text = f"Grüße 👋 — écrivez à {email} ou payez avec {card} ✓"
    assert _kinds_found(text) == [(kinds.EMAIL, email), (kinds.CREDIT_CARD, card)]


def test_a_specific_key_wins_over_generic_secret_and_findings_do_not_overlap() -> None:
    key = SAMPLES[kinds.OPENAI_KEY][1]
    assert _kinds_found(f"api_key = {key}") == [(kinds.OPENAI_KEY, key)]
    assert _kinds_found(f"OPENAI_API_KEY={key}", frozenset((kinds.GENERIC_SECRET,))) == [
        (kinds.GENERIC_SECRET, key)
    ]


def test_entropy_threshold() -> None:
    assert detect.entropy("aaaaaaaa") == 0
    assert detect.entropy("abcdefgh") == 3.0
    assert _kinds_found("password: aaaa1111") == []  # 1 bit per character
    assert _kinds_found("password: abcd1234") == [(kinds.GENERIC_SECRET, "abcd1234")]  # 3 bits


_PIECES = [value for _, value in SAMPLES.values()] + [v for _, _, v in MORE_POSITIVES] + NEGATIVES


def _ungated(text: str) -> list[detect.Finding]:
    found: list[tuple[int, int, str]] = []
    for _, _, detector in detect._plan(ALL):
        detector(text, found, None)
    return detect._resolve(found, ALL)


@pytest.mark.parametrize(
    "text",
    [
        "1234567890" * 8 + " 4111 1111 1111 1111 " + "9" * 45 + " +44 20 7946 0958",
        "on 2024-03-18, 2024-03-19 and 2024-03-20: 4111-1111-1111-1111 / 5555 5555 5555 4444",
        "THE IBAN DE89 3704 0044 0532 0130 00 AND GB82 WEST 1234 5698 7654 32 ARE BOTH OK 1234 5678",
        "DE89370400440532013000DE89370400440532013000 DE89 3704 0044 0532 0130 00",
        " ".join(["password: Xk9pLm2qRt7v"] * 20) + " aws secret " + "a1B2c3D4e5" * 4,
        "x" * 5000 + " token = q8Fz3kL0pW7rT2vB " + "y" * 5000 + " +1 415-555-2671",
        "(415) 555-2671 (415) 555-2671 (415)555-2671 +1 (415) 555-2671 0044 20 7946 0958",
    ],
)
def test_the_prefilter_windows_find_what_a_whole_search_finds(text: str) -> None:
    assert detect.find(text, ALL) == _ungated(text)
    assert detect.find(text, ALL)  # each text holds findings


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=12)), max_size=8),
    st.sampled_from(["", " ", "\n", ": ", "="]),
)
def test_the_prefilter_never_hides_a_finding(parts: list[str], separator: str) -> None:
    """The Hyperscan gate only skips families that could find nothing: with it and without, the same."""
    text = separator.join(parts)
    assert detect.find(text, ALL) == _ungated(text)


def test_nothing_wanted_costs_nothing() -> None:
    assert detect.find(SAMPLES[kinds.EMAIL][1], frozenset()) == []


def test_a_finding_repr_holds_positions_only() -> None:
    text = "mail jane.doe+billing@example.co.uk"
    (finding,) = detect.find(text, ALL)
    assert "jane" not in repr(finding)
    assert repr(finding) == "Finding(start=5, end=35, kind='email')"


def test_a_text_full_of_candidates_is_searched_whole() -> None:
    """Past MAX_GATE_MATCHES prefilter matches the scan stops and every family searches the whole text."""
    text = "2024-01-01 " * (detect.MAX_GATE_MATCHES // 2) + "card 4111 1111 1111 1111 " + "DE12 " * 400
    assert detect.prepare().families(text) is None
    assert _kinds_found(text) == [(kinds.CREDIT_CARD, "4111 1111 1111 1111")]
    assert detect.find(text, ALL) == _ungated(text)


def test_a_long_list_of_small_numbers_is_not_split_into_findings() -> None:
    # Side by side, up to twelve groups are tried group by group; a longer run is one number.
    assert _kinds_found("(415) 555-2671 (415) 555-2672") == [
        (kinds.PHONE, "(415) 555-2671"),
        (kinds.PHONE, "(415) 555-2672"),
    ]
    assert _kinds_found("1 2 3 4 5 6 7 8 9 10 11 12 13 (415) 555-2671") == []
