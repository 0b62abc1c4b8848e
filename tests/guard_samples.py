"""Realistic values of every guard finding kind, shared by the guard's tests (tests/test_guard_*.py)."""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable

from stdnum import iban, luhn
from stdnum.es import dni
from stdnum.fr import nir
from stdnum.iso7064 import mod_11_10
from stdnum.it import codicefiscale

from voidllm.guard import detect, kinds

ALL = frozenset(kinds.ALL_KINDS)
_RND = random.Random(22)
_ALNUM = string.ascii_letters + string.digits


def _random(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(_RND.choice(alphabet) for _ in range(n))


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


JWT = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64({'sub': '1234567890'})}.{_random(43)}"

# One realistic value per kind, as it would sit in a prompt.
SAMPLES: dict[str, tuple[str, str]] = {
    kinds.OPENAI_KEY: ("use {} for the API", "sk-proj-" + _random(48)),
    kinds.ANTHROPIC_KEY: ("ANTHROPIC_API_KEY is {}", "sk-ant-api03-" + _random(93) + "AA"),
    kinds.AWS_ACCESS_KEY: ("id {} here", "AKIA" + _random(16, string.ascii_uppercase + string.digits)),
    kinds.AWS_SECRET_KEY: ("aws_secret_access_key = {}", _random(38, _ALNUM + "/+") + "a1"),
    kinds.GCP_API_KEY: ("maps key {}", "AIza" + _random(35)),
    kinds.GITHUB_TOKEN: ("clone with {}", "ghp_" + _random(36)),
    kinds.GITLAB_TOKEN: ("token {} works", "glpat-" + _random(20)),
    kinds.SLACK_TOKEN: ("bot {} ok", "xoxb-123456789012-1234567890123-" + _random(24)),
    kinds.STRIPE_KEY: ("charge with {}", "sk_live_" + _random(24)),
    kinds.PRIVATE_KEY: (
        "the key:\n{}\nthanks",
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + _random(70)
        + "\n"
        + _random(70)
        + "\n-----END OPENSSH PRIVATE KEY-----",
    ),
    kinds.JWT: ("Authorization: Bearer {}", JWT),
    kinds.URL_PASSWORD: ("connect to postgres://app:{}@db.internal:5432/shop", "Hx7pq2LmZ9"),
    kinds.GENERIC_SECRET: ("DB_PASSWORD={}", "Xk9pLm2qRt7v"),
    kinds.EMAIL: ("write to {}, please", "jane.doe+billing@example.co.uk"),
    kinds.PHONE: ("call me on {} tomorrow", "+44 20 7946 0958"),
    kinds.CREDIT_CARD: ("my card is {}.", "4111 1111 1111 1111"),
    kinds.IBAN: ("pay to {} by Friday", "DE89 3704 0044 0532 0130 00"),
    kinds.US_SSN: ("SSN {} on file", "536-90-4399"),
    kinds.UK_NINO: ("NI number {}.", "AB 12 34 56 C"),
    kinds.DE_TAX_ID: ("Steuer-IdNr. {}", "36574261809"),
    kinds.FR_NIR: ("NIR {} ok", "2 95 10 99 126 111 93"),
    kinds.ES_DNI: ("DNI {} y", "54362315K"),
    kinds.IT_FISCAL_CODE: ("codice fiscale {}", "RCCMNL83S18D969H"),
}

MORE_POSITIVES: list[tuple[str, str, str]] = [
    (kinds.OPENAI_KEY, "legacy {}", "sk-" + _random(48)),
    (kinds.PHONE, "US {} (office)", "(415) 555-2671"),
    (kinds.PHONE, "intl {} ok", "+1 415-555-2671"),
    (kinds.PHONE, "UK {} ok", "020 7946 0958"),
    (kinds.PHONE, "with 00: {} ok", "0049 30 901820"),
    (kinds.CREDIT_CARD, "no spaces {} ok", "5555555555554444"),
    (kinds.CREDIT_CARD, "amex {} ok", "3782-822463-10005"),
    (kinds.IBAN, "compact {} ok", "GB82WEST12345698765432"),
    (kinds.ES_DNI, "NIE {} ok", "X2482300W"),
    (kinds.GENERIC_SECRET, "the password is {} ok", "hunter2Correct9"),
    (kinds.GENERIC_SECRET, 'config = {{"api_key": "{}"}}', "q8Fz3kL0pW7rT2vB"),
    (kinds.AWS_SECRET_KEY, "AWS secret: {}", _random(39, _ALNUM + "/+") + "7"),
    (kinds.URL_PASSWORD, "redis://:{}@cache:6379/0", "Rp4tw8Zk"),
    (kinds.EMAIL, "<{}>", "ops@voidllm.example"),
]


def fresh_samples(rng: random.Random) -> dict[str, tuple[str, str]]:
    """A new value of every kind, drawn from ``rng``, in the context :data:`SAMPLES` gives the kind.

    For tests that search outputs for the values (the zero-knowledge test): seeded from the system's
    randomness, no value can have been written by an earlier run. Numbers carry valid check digits, and
    every value is checked to be found, as exactly its kind and its whole self, in its context (a draw that
    misses a validation rule, such as the German tax id's repeated digit, is drawn again)."""
    return {kind: (SAMPLES[kind][0], _fresh(kind, rng)) for kind in kinds.ALL_KINDS}


def _fresh(kind: str, rng: random.Random) -> str:
    template = SAMPLES[kind][0]
    for _ in range(10_000):
        value = _DRAW[kind](rng)
        text = template.format(value)
        start = text.index(value)
        if [(f.kind, f.start, f.end) for f in detect.find(text, ALL)] == [(kind, start, start + len(value))]:
            return value
    raise AssertionError(f"no {kind} drawn was found")  # pragma: no cover


def _chars(rng: random.Random, n: int, alphabet: str = _ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _digits(rng: random.Random, n: int) -> str:
    return _chars(rng, n, string.digits)


def _card(rng: random.Random) -> str:
    body = "4" + _digits(rng, 14)
    return body + luhn.calc_check_digit(body)


def _iban(rng: random.Random) -> str:
    bban = _digits(rng, 18)
    compact = "DE" + iban.calc_check_digits("DE00" + bban) + bban
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _nir(rng: random.Random) -> str:
    sex, year, month, department = rng.choice("12"), _digits(rng, 2), rng.randint(1, 12), rng.randint(1, 95)
    head = f"{sex}{year}{month:02d}{department:02d}{_digits(rng, 6)}"
    n = head + nir.calc_check_digits(head)
    return " ".join((n[0], n[1:3], n[3:5], n[5:7], n[7:10], n[10:13], n[13:]))


def _fiscal_code(rng: random.Random) -> str:
    head = (
        _chars(rng, 6, string.ascii_uppercase)
        + _digits(rng, 2)
        + rng.choice("ABCDEHLMPRST")
        + f"{rng.randint(1, 28) + rng.choice((0, 40)):02d}"
        + rng.choice("ABCDEFGHILM")
        + _digits(rng, 3)
    )
    return head + codicefiscale.calc_check_digit(head)


def _tax_id(rng: random.Random) -> str:
    head = str(rng.randint(1, 9)) + _digits(rng, 9)
    return head + mod_11_10.calc_check_digit(head)


_PEM = "-----{} OPENSSH PRIVATE KEY-----"
_JWT_HEADER = _b64({"alg": "HS256", "typ": "JWT"})
_DRAW: dict[str, Callable[[random.Random], str]] = {
    kinds.OPENAI_KEY: lambda r: "sk-proj-" + _chars(r, 48),
    kinds.ANTHROPIC_KEY: lambda r: "sk-ant-api03-" + _chars(r, 93) + "AA",
    kinds.AWS_ACCESS_KEY: lambda r: "AKIA" + _chars(r, 16, string.ascii_uppercase + string.digits),
    kinds.AWS_SECRET_KEY: lambda r: _chars(r, 37, _ALNUM + "/+") + "Za1",
    kinds.GCP_API_KEY: lambda r: "AIza" + _chars(r, 35),
    kinds.GITHUB_TOKEN: lambda r: "ghp_" + _chars(r, 36),
    kinds.GITLAB_TOKEN: lambda r: "glpat-" + _chars(r, 20),
    kinds.SLACK_TOKEN: lambda r: f"xoxb-{_digits(r, 12)}-{_digits(r, 13)}-{_chars(r, 24)}",
    kinds.STRIPE_KEY: lambda r: "sk_live_" + _chars(r, 24),
    kinds.PRIVATE_KEY: lambda r: "\n".join(
        (_PEM.format("BEGIN"), _chars(r, 70), _chars(r, 70), _PEM.format("END"))
    ),
    kinds.JWT: lambda r: f"{_JWT_HEADER}.{_b64({'sub': _digits(r, 12)})}.{_chars(r, 43)}",
    kinds.URL_PASSWORD: lambda r: _chars(r, 14),
    kinds.GENERIC_SECRET: lambda r: _chars(r, 16),
    kinds.EMAIL: lambda r: f"{_chars(r, 10, string.ascii_lowercase)}.{_digits(r, 6)}@example.com",
    kinds.PHONE: lambda r: f"+44 20 7{_digits(r, 3)} {_digits(r, 4)}",
    kinds.CREDIT_CARD: _card,
    kinds.IBAN: _iban,
    kinds.US_SSN: lambda r: f"{r.randint(100, 665)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
    kinds.UK_NINO: lambda r: (
        f"{r.choice('ACEHJKLMPRSTWY')}{r.choice('ABCEHJKLMPRSTWY')} "
        + " ".join(_digits(r, 2) for _ in range(3))
        + f" {r.choice('ABCD')}"
    ),
    kinds.DE_TAX_ID: _tax_id,
    kinds.FR_NIR: _nir,
    kinds.ES_DNI: lambda r: (number := _digits(r, 8)) + dni.calc_check_digit(number),
    kinds.IT_FISCAL_CODE: _fiscal_code,
}
