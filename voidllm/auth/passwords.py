"""Password hashing for local accounts: argon2id with argon2-cffi's default (RFC 9106 low-memory) parameters.

Why argon2id and not bcrypt as in the Go original: it is memory-hard (64 MiB per hash by default), which makes
GPU and ASIC guessing far more expensive, and it has no 72-byte input limit, so a long passphrase is never
silently truncated. Hashes are self-describing (``$argon2id$v=19$m=...``), so :func:`needs_rehash` can upgrade
them after a successful login when the library's defaults move.

Timing: :func:`verify_password` does the same work whether the account exists or not. For an unknown user, an
SSO-only account (no password) or a corrupt stored hash it verifies against a dummy hash made with the same
parameters, so the response time does not reveal which emails have local accounts.

Cost and concurrency: every function here except :func:`validate_password` and :func:`random_password` burns
tens of milliseconds of CPU and 64 MiB of memory. Callers on the event loop run them with
``await trio.to_thread.run_sync(verify_password, stored, password, limiter=...)`` and pass a small dedicated
``trio.CapacityLimiter``: trio's default limiter allows 40 threads, which here means up to 2.5 GiB at once.
"""

from __future__ import annotations

import secrets
import string

import argon2
import attrs
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from voidllm.errors import BadRequestError

__all__ = [
    "MAX_PASSWORD_CHARS",
    "MIN_PASSWORD_CHARS",
    "build_hasher",
    "hash_password",
    "needs_rehash",
    "random_password",
    "validate_password",
    "verify_password",
]

MIN_PASSWORD_CHARS = 8
# Go's bcrypt cannot hash more than 72 bytes, hence its 8..72-byte rule. argon2 pre-hashes any length, so the
# only reason for a ceiling is to bound the work one request can cause; every password the Go version accepted
# is still accepted.
MAX_PASSWORD_CHARS = 1024
_ALPHABET = string.ascii_letters + string.digits


def build_hasher(parameters: argon2.Parameters | None = None) -> argon2.PasswordHasher:
    """An argon2id hasher; ``None`` means argon2-cffi's defaults (the production setting).

    Tests pass cheap parameters (``argon2.profiles.CHEAPEST``) to stay fast.
    """
    if parameters is None:
        return argon2.PasswordHasher()
    return argon2.PasswordHasher.from_parameters(parameters)


@attrs.define
class _Scheme:
    """A hasher and the dummy hash made with it, swapped together so their costs always match."""

    hasher: argon2.PasswordHasher
    _dummy: str | None = attrs.field(default=None, repr=False, alias="dummy")

    @classmethod
    def of(cls, hasher: argon2.PasswordHasher) -> _Scheme:
        return cls(hasher=hasher)

    def dummy_hash(self) -> str:
        """The dummy hash, made at the first verification rather than with the scheme: hashing a password
        does not need it, and a first start that bootstraps an admin would otherwise pay for two argon2
        hashes (0.17 s each on a 2-core VM). Two threads racing here make two equivalent dummies."""
        if self._dummy is None:
            self._dummy = self.hasher.hash(random_password(32))
        return self._dummy


def hash_password(pw: str) -> str:
    """The argon2id hash string to store (PHC format, salt included). CPU-heavy: run in a thread."""
    return _scheme().hasher.hash(pw)


def verify_password(hash: str | None, pw: str) -> bool:
    """Whether ``pw`` matches the stored ``hash``. Never raises for a wrong password or a malformed hash.

    ``None`` or ``""`` (unknown user, SSO-only account) and malformed hashes are checked against the dummy
    hash, so every path costs one argon2 verification. CPU-heavy: run in a thread.
    """
    scheme = _scheme()
    dummy = scheme.dummy_hash()  # first, on every path: the first verification costs the same for any account
    if hash:
        try:
            return scheme.hasher.verify(hash, pw)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            pass  # a corrupt stored hash: fall through to the dummy, like an unknown user
    try:
        scheme.hasher.verify(dummy, pw)
    except VerificationError:
        pass
    return False


def needs_rehash(hash: str) -> bool:
    """Whether ``hash`` was made with parameters other than the current ones (True for a malformed hash)."""
    try:
        return _scheme().hasher.check_needs_rehash(hash)
    except InvalidHashError:
        return True


def validate_password(pw: str) -> None:
    """Check a new password's length: 8 to 1024 characters.

    Raises:
        BadRequestError: the length is out of range; the message does not repeat the password.
    """
    if not MIN_PASSWORD_CHARS <= len(pw) <= MAX_PASSWORD_CHARS:
        raise BadRequestError(
            f"password must be between {MIN_PASSWORD_CHARS} and {MAX_PASSWORD_CHARS} characters"
        )


def random_password(length: int = 16) -> str:
    """A random password of ASCII letters and digits (about 5.95 bits each), e.g. for the bootstrap admin.

    Raises:
        ValueError: ``length`` would not pass :func:`validate_password`.
    """
    if not MIN_PASSWORD_CHARS <= length <= MAX_PASSWORD_CHARS:
        raise ValueError(f"length must be between {MIN_PASSWORD_CHARS} and {MAX_PASSWORD_CHARS}")
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


_SCHEME: _Scheme | None = None


def _scheme() -> _Scheme:
    # Built on first use rather than at import, so importing the module costs nothing. Races between threads
    # on the first call only build two equivalent schemes; either one is fine.
    global _SCHEME
    if _SCHEME is None:
        _SCHEME = _Scheme.of(build_hasher())
    return _SCHEME
