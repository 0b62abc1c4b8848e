"""Tests for voidllm.auth.passwords, run with argon2's cheapest parameters to stay fast."""

from __future__ import annotations

import string

import argon2
import pytest
from argon2.profiles import CHEAPEST

from voidllm.auth import passwords
from voidllm.errors import BadRequestError


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> passwords._Scheme:
    scheme = passwords._Scheme.of(passwords.build_hasher(CHEAPEST))
    monkeypatch.setattr(passwords, "_SCHEME", scheme)
    return scheme


def test_production_hasher_uses_library_defaults() -> None:
    hasher = passwords.build_hasher()
    defaults = argon2.profiles.get_default_parameters()
    assert hasher.type is argon2.Type.ID
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (
        defaults.time_cost,
        defaults.memory_cost,
        defaults.parallelism,
    )


def test_default_scheme_is_built_lazily_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_SCHEME", None)
    monkeypatch.setattr(passwords, "build_hasher", lambda: argon2.PasswordHasher.from_parameters(CHEAPEST))
    scheme = passwords._scheme()
    assert passwords._scheme() is scheme
    assert scheme.dummy_hash().startswith("$argon2id$")
    assert scheme.dummy_hash() is scheme.dummy_hash()


def test_hash_and_verify() -> None:
    stored = passwords.hash_password("correct horse")
    assert stored.startswith("$argon2id$v=19$")
    assert "correct horse" not in stored
    assert passwords.verify_password(stored, "correct horse")
    assert not passwords.verify_password(stored, "correct hors")
    assert not passwords.verify_password(stored, "")


def test_salted() -> None:
    assert passwords.hash_password("same password") != passwords.hash_password("same password")


def test_unicode_and_long_passwords() -> None:
    long = "пароль🔑" * 120  # far beyond bcrypt's 72 bytes; the tail must matter
    stored = passwords.hash_password(long)
    assert passwords.verify_password(stored, long)
    assert not passwords.verify_password(stored, long[:-1] + "x")


@pytest.mark.parametrize(
    "stored", [None, "", "not a hash", "$2a$10$abcdefghijklmnopqrstuv", "$argon2id$v=19$"]
)
def test_verify_never_raises(stored: str | None) -> None:
    assert passwords.verify_password(stored, "whatever1") is False


@pytest.mark.parametrize("stored", [None, "", "garbage", "$argon2id$v=19$"])
def test_missing_or_malformed_hash_costs_one_dummy_verification(
    monkeypatch: pytest.MonkeyPatch, cheap_hashing: passwords._Scheme, stored: str | None
) -> None:
    calls: list[str] = []
    hasher = cheap_hashing.hasher
    real_verify = hasher.verify

    class Counting(argon2.PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            calls.append(str(hash))
            return real_verify(hash, password)

    counting = Counting.from_parameters(CHEAPEST)
    monkeypatch.setattr(passwords, "_SCHEME", passwords._Scheme(counting, dummy=cheap_hashing.dummy_hash()))
    # The dummy's own password is unknown, so even the "right" guess cannot succeed through it.
    assert passwords.verify_password(stored, "whatever1") is False
    assert calls[-1] == cheap_hashing.dummy_hash()
    assert len(calls) == (2 if stored else 1)  # a malformed hash is tried, then the dummy


def test_needs_rehash() -> None:
    cheap = passwords.hash_password("pw-12345")
    assert not passwords.needs_rehash(cheap)
    stronger = argon2.PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash("pw-12345")
    assert passwords.needs_rehash(stronger)
    assert passwords.verify_password(stronger, "pw-12345")  # old parameters still verify
    assert passwords.needs_rehash("garbage")


@pytest.mark.parametrize("pw", ["12345678", "x" * 1024, "ü" * 8, "a" * 73])
def test_validate_accepts(pw: str) -> None:
    passwords.validate_password(pw)


@pytest.mark.parametrize("pw", ["", "1234567", "x" * 1025])
def test_validate_rejects(pw: str) -> None:
    with pytest.raises(BadRequestError, match="between 8 and 1024 characters") as info:
        passwords.validate_password(pw)
    if pw:
        assert pw not in info.value.message


def test_random_password() -> None:
    pw = passwords.random_password()
    assert len(pw) == 16
    assert set(pw) <= set(string.ascii_letters + string.digits)
    passwords.validate_password(pw)
    assert passwords.random_password() != pw
    assert len(passwords.random_password(40)) == 40


@pytest.mark.parametrize("length", [0, 7, 1025])
def test_random_password_rejects_bad_length(length: int) -> None:
    with pytest.raises(ValueError, match="length"):
        passwords.random_password(length)


def test_repr_hides_dummy(cheap_hashing: passwords._Scheme) -> None:
    assert cheap_hashing.dummy_hash() not in repr(cheap_hashing)


class _CountingHashes(argon2.PasswordHasher):
    made: int = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        type(self).made += 1
        return super().hash(password, salt=salt)


@pytest.mark.parametrize("first", ["known account", "unknown account"])
def test_the_dummy_is_made_at_the_first_verification_whatever_the_account(
    monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    hasher = _CountingHashes.from_parameters(CHEAPEST)
    _CountingHashes.made = 0
    monkeypatch.setattr(passwords, "_SCHEME", passwords._Scheme.of(hasher))
    stored = passwords.hash_password("correct horse")
    assert _CountingHashes.made == 1  # hashing a password (a bootstrap's admin) makes no dummy
    assert passwords.verify_password(stored if first == "known account" else None, "correct horse") is (
        first == "known account"
    )
    assert _CountingHashes.made == 2  # the first verification makes it, on either path
    passwords.verify_password(stored, "correct horse")
    passwords.verify_password(None, "correct horse")
    assert _CountingHashes.made == 2
