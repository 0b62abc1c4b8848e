"""The guard's vocabulary: every finding kind, its group and its placeholder label.

A kind is a plain string constant (``"email"``); it is what a policy names, what an outcome counts and what a
metric label or usage event may carry. The set is fixed here: a policy naming anything else is refused
(:mod:`voidllm.guard.policy`). Two groups, ``credentials`` and ``pii``, are shorthands in a policy for every
kind in them.

Left out on purpose: IP addresses (pasted logs and code carry them constantly; redacting them would break
ordinary debugging prompts, and an address alone rarely identifies a person) and names or postal addresses
(no checksum or structure to validate, so any detector would be guesswork with many false positives).
"""

from __future__ import annotations

from types import MappingProxyType

# Credentials.
OPENAI_KEY = "openai_key"
ANTHROPIC_KEY = "anthropic_key"
AWS_ACCESS_KEY = "aws_access_key"
AWS_SECRET_KEY = "aws_secret_key"
GCP_API_KEY = "gcp_api_key"
GITHUB_TOKEN = "github_token"
GITLAB_TOKEN = "gitlab_token"
SLACK_TOKEN = "slack_token"
STRIPE_KEY = "stripe_key"
PRIVATE_KEY = "private_key"
JWT = "jwt"
URL_PASSWORD = "url_password"
GENERIC_SECRET = "generic_secret"

# Personal data.
EMAIL = "email"
PHONE = "phone"
CREDIT_CARD = "credit_card"
IBAN = "iban"
US_SSN = "us_ssn"
UK_NINO = "uk_nino"
DE_TAX_ID = "de_tax_id"
FR_NIR = "fr_nir"
ES_DNI = "es_dni"
IT_FISCAL_CODE = "it_fiscal_code"

CREDENTIALS: tuple[str, ...] = (
    OPENAI_KEY,
    ANTHROPIC_KEY,
    AWS_ACCESS_KEY,
    AWS_SECRET_KEY,
    GCP_API_KEY,
    GITHUB_TOKEN,
    GITLAB_TOKEN,
    SLACK_TOKEN,
    STRIPE_KEY,
    PRIVATE_KEY,
    JWT,
    URL_PASSWORD,
    GENERIC_SECRET,
)
PII: tuple[str, ...] = (
    EMAIL,
    PHONE,
    CREDIT_CARD,
    IBAN,
    US_SSN,
    UK_NINO,
    DE_TAX_ID,
    FR_NIR,
    ES_DNI,
    IT_FISCAL_CODE,
)
ALL_KINDS: tuple[str, ...] = CREDENTIALS + PII

GROUPS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType({"credentials": CREDENTIALS, "pii": PII})
"""Policy shorthands: a group name stands for every kind in it."""

LABELS: MappingProxyType[str, str] = MappingProxyType({kind: kind.upper() for kind in ALL_KINDS})
"""The placeholder label of each kind: ``email`` is redacted as ``[EMAIL_1]``, ``[EMAIL_2]`` ..."""
