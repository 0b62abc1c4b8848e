"""Streamed answers (voidllm.guard.stream): every split of a finding is found, the held tail is bounded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.guard_samples import MORE_POSITIVES, SAMPLES
from tests.test_guard_detect import NEGATIVES
from voidllm.guard import kinds
from voidllm.guard.policy import GuardPolicy, parse_policy
from voidllm.guard.scan import RequestGuard
from voidllm.guard.stream import MAX_HOLD, StreamRedactor

EVERYTHING = parse_policy({"detectors": {"credentials": "redact", "pii": "redact"}, "responses": True})
SENTENCES = [template.format(value) for template, value in SAMPLES.values()] + [
    template.format(value) for _, template, value in MORE_POSITIVES
]


POOL = [
    *SENTENCES,
    *NEGATIVES,
    *("plain words here.", "\n", " ", "42", "x", "AB", "1", "DE89", "(415)", "+1", "password:", "secret"),
    *("-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "-----BEGIN CERTIFICATE-----"),
]
"""Sentences with findings, near misses, and fragments that could start or end one."""


def _whole(text: str, policy: GuardPolicy = EVERYTHING) -> str:
    return RequestGuard(policy).redact_response(text)


def _streamed(chunks: list[str], policy: GuardPolicy = EVERYTHING) -> str:
    redactor = StreamRedactor(RequestGuard(policy))
    out = [redactor.feed(chunk) for chunk in chunks]
    return "".join(out) + redactor.finish()


@pytest.mark.parametrize("text", SENTENCES, ids=[s[:24] for s in SENTENCES])
def test_every_split_point_of_a_finding(text: str) -> None:
    expected = _whole(text)
    assert expected != text  # the sentence holds a finding
    for split in range(len(text) + 1):
        assert _streamed([text[:split], text[split:]]) == expected, split


def test_every_pair_of_split_points_in_a_mixed_answer() -> None:
    card, email = SAMPLES[kinds.CREDIT_CARD][1], SAMPLES[kinds.EMAIL][1]
    text = f"Sure. Card {card}, mail {email}; password: Xk9pLm2qRt7v ok"
    expected = _whole(text)
    assert expected == "Sure. Card [CREDIT_CARD_1], mail [EMAIL_1]; password: [GENERIC_SECRET_1] ok"
    for first in range(len(text) + 1):
        for second in range(first, len(text) + 1, 3):
            assert _streamed([text[:first], text[first:second], text[second:]]) == expected, (first, second)


def test_one_character_at_a_time() -> None:
    for text in SENTENCES:
        assert _streamed(list(text)) == _whole(text)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(POOL), min_size=1, max_size=7),
    st.sampled_from([" ", "", "\n", ": "]),
    st.lists(st.integers(min_value=0, max_value=600), max_size=10),
)
def test_any_chunking_gives_the_whole_answer_redaction(parts: list[str], joint: str, cuts: list[int]) -> None:
    text = joint.join(parts)
    points = sorted({min(c, len(text)) for c in cuts})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    assert _streamed(chunks) == _whole(text)


def test_a_word_ending_in_digits_before_a_number_is_not_cut() -> None:
    """Found by hypothesis: the held tail's number groups stop at a word that merely ends in a digit (here
    a JWT whose header is also a 40-character AWS secret after ``AWS secret``)."""
    aws = next(s for s in SENTENCES if s.startswith("AWS secret"))
    jwt = next(s for s in SENTENCES if s.startswith("Authorization"))
    nir = next(s for s in SENTENCES if s.startswith("NIR"))
    text = f"{aws} {jwt} {nir}"
    for split in range(len(text) + 1):
        assert _streamed([text[:split], text[split:]]) == _whole(text), split
    assert _streamed([text]) == _whole(text)


def test_the_placeholder_map_is_the_requests() -> None:
    policy = parse_policy({"detectors": {"email": "redact"}, "responses": True})
    guard = RequestGuard(policy)
    assert guard.scan("from ops@example.org") == "from [EMAIL_1]"
    redactor = StreamRedactor(guard)
    out = redactor.feed("Hi jane@exa") + redactor.feed("mple.com and ops@example") + redactor.feed(".org!")
    assert out + redactor.finish() == "Hi [EMAIL_2] and [EMAIL_1]!"
    assert guard.outcome().response_findings == ((kinds.EMAIL, 2),)


def test_prose_flows_with_at_most_one_word_held() -> None:
    redactor = StreamRedactor(RequestGuard(EVERYTHING))
    assert redactor.feed("Hello there, how") == "Hello there, "
    assert redactor.held == len("how")
    assert redactor.feed(" are you") == "how are "
    assert redactor.feed("?\n") == "you?\n"
    assert redactor.held == 0
    assert redactor.finish() == ""


def test_the_held_tail_is_bounded() -> None:
    redactor = StreamRedactor(RequestGuard(EVERYTHING))
    emitted = []
    for _ in range(100):
        emitted.append(redactor.feed("a1B2" * 100))  # one endless word
        assert redactor.held <= MAX_HOLD
    emitted.append(redactor.finish())
    assert "".join(emitted) == "a1B2" * 10_000


def test_a_private_key_longer_than_the_bound_is_dropped_to_its_footer() -> None:
    body = "\n".join("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC" + str(i % 10) for i in range(200))
    key = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----"
    text = f"Here it is:\n{key}\nand a card 4111 1111 1111 1111."
    assert len(key) > MAX_HOLD
    expected = "Here it is:\n[PRIVATE_KEY_1]\nand a card [CREDIT_CARD_1]."
    assert _whole(text) == expected
    for size in (1, 7, 64, 1000, 5000):
        redactor = StreamRedactor(RequestGuard(EVERYTHING))
        out = []
        for start in range(0, len(text), size):
            out.append(redactor.feed(text[start : start + size]))
            assert redactor.held <= MAX_HOLD
        assert "".join(out) + redactor.finish() == expected, size
    # A key that never ends is dropped to the end of the answer.
    unterminated = f"key:\n-----BEGIN PRIVATE KEY-----\n{body}"
    assert (
        _streamed([unterminated[i : i + 100] for i in range(0, len(unterminated), 100)])
        == "key:\n[PRIVATE_KEY_1]"
    )
    assert _whole(unterminated) == "key:\n[PRIVATE_KEY_1]"


def test_a_header_still_arriving_is_held_and_a_false_one_is_bounded() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow" + "Ab3" * 30 + "\n-----END RSA PRIVATE KEY-----"
    text = f"DE89{key} and more"
    expected = "DE89[PRIVATE_KEY_1] and more"
    assert _whole(text) == expected
    for split in range(len(text) + 1):
        assert _streamed([text[:split], text[split:]]) == expected, split
    redactor = StreamRedactor(RequestGuard(EVERYTHING))
    assert redactor.feed("x -----BEGIN RSA PRIV") == "x "
    assert redactor.held == len("-----BEGIN RSA PRIV")
    never = "-----BEGIN " + "A " * 5000
    assert _streamed([never[i : i + 100] for i in range(0, len(never), 100)]) == never
    redactor = StreamRedactor(RequestGuard(EVERYTHING))
    for i in range(0, len(never), 100):
        redactor.feed(never[i : i + 100])
        assert redactor.held <= MAX_HOLD


def test_no_response_kinds_pass_deltas_through() -> None:
    redactor = StreamRedactor(RequestGuard(parse_policy({"detectors": {"email": "redact"}})))
    assert redactor.feed("jane@exa") == "jane@exa"
    assert redactor.finish() == ""
    flag_only = StreamRedactor(
        RequestGuard(parse_policy({"detectors": {"email": "flag"}, "responses": True}))
    )
    assert flag_only.feed("jane@example.com ") == "jane@example.com "


def test_repr_shows_no_content() -> None:
    redactor = StreamRedactor(RequestGuard(EVERYTHING))
    redactor.feed("my card 4111 1111")
    assert "4111" not in repr(redactor)
