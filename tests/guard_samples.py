"""Realistic values of every guard finding kind, shared by the guard's tests (tests/test_guard_*.py)."""

from __future__ import annotations

import base64
import json
import random
import string

from voidllm.guard import kinds

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
