"""API keys, key hashing and encryption of stored upstream secrets.

The scheme, and why each primitive:

- **One operator secret.** ``settings.encryption_key`` is either base64 of exactly 32 bytes (used as is) or
  any passphrase of at least 16 characters (its SHA-256 is the key). Everything else is derived from those
  32 bytes, so rotating it invalidates every API key and every stored secret at once; that is the documented
  contract.
- **API keys** are ``<prefix><48 lowercase hex>``: 24 bytes from :mod:`secrets` (192 bits, far beyond brute
  force), a prefix naming the kind so the auth layer can reject junk without a lookup and humans can tell
  keys apart. They are shown once and stored only as a hash.
- **Key hashes** are ``hex(HMAC-SHA256(hmac_secret, plaintext))``. The keys are already high-entropy, so a
  fast keyed hash is enough (a memory-hard hash would only cost latency on every request); the HMAC key
  means a stolen database alone cannot even confirm a guessed key. ``hmac_secret`` comes from HKDF-SHA256
  (RFC 5869) with a fixed ``info`` label, so the HMAC key and the encryption key are independent even though
  one operator secret produces both. A key is found by its hash (an index or dictionary lookup).
- **Upstream secrets** (provider API keys, MCP tokens, OAuth client secrets) are sealed with AES-256-GCM
  under a random 96-bit nonce (the size GCM is specified for; random nonces are safe far beyond the number
  of secrets a gateway stores) and stored as ``base64(nonce ‖ ciphertext ‖ tag)``. The associated data
  ``<kind>:<row id>`` binds a ciphertext to its row, so copying one row's secret into another row fails to
  decrypt.

**The library** is PyCryptodome (``pycryptodomex``, the ``Cryptodome`` namespace): the same AES-GCM and HKDF
as ``cryptography``, byte for byte (the vectors in ``tests/test_crypto.py`` pin both), at 2.8 MB of resident
memory where ``cryptography``'s Rust extension costs 7.3 MB in every gateway process that loads it (issue 23's
peak-RSS target). Every start needs this module (key hashes, and the stored secrets of the models the
catalog loads); ``cryptography`` is loaded only by single sign-on (Authlib, joserfc). PyCryptodome is bound
through ctypes, not cffi (below: cffi's declaration parser cost every start 20 ms and 1.1 MB).

Messages of :class:`CryptoError` never contain a key, a passphrase, a plaintext or a ciphertext.

Left out deliberately: key rotation with several active keys (not in the reference), and the PII pseudonym
secret (HKDF info ``voidllm-pii-pseudonym-v1``), which belongs to the feature that needs it.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import secrets
import sys
from typing import Literal, cast

import attrs

from voidllm.errors import GatewayError

# PyCryptodome binds its C code through cffi whenever cffi is importable (argon2's bindings install it), and
# cffi then parses each module's C declarations with pycparser at import: about 20 ms of every start and
# 1.1 MB resident for the parser's modules. Without cffi it binds the same C code through ctypes, its
# documented fallback, as good for the few sealing calls a gateway makes. So cffi looks absent while it loads.
_cffi = sys.modules.get("cffi")
sys.modules["cffi"] = None  # type: ignore[assignment]
try:
    from Cryptodome.Cipher import AES
    from Cryptodome.Hash import SHA256
    from Cryptodome.Protocol.KDF import HKDF
finally:
    if _cffi is None:
        del sys.modules["cffi"]
    else:
        sys.modules["cffi"] = _cffi

__all__ = [
    "AadKind",
    "CryptoError",
    "KeyKind",
    "Keyring",
    "aad_for",
    "decrypt_secret",
    "derive_hmac_secret",
    "encrypt_secret",
    "generate_key",
    "hash_key",
    "is_well_formed",
    "key_hint",
    "parse_encryption_key",
]

_KEY_BYTES = 32
_RANDOM_BYTES = 24
_NONCE_BYTES = 12
_TAG_BYTES = 16
_MIN_PASSPHRASE_CHARS = 16
_HMAC_INFO = b"voidllm-hmac-key"
_BODY = re.compile(r"[0-9a-f]{48}")
_AAD_KINDS = frozenset({"model", "deployment", "mcp_server", "org_sso"})

AadKind = Literal["model", "deployment", "mcp_server", "org_sso"]


class CryptoError(GatewayError, ValueError):
    """A key setting is unusable, or a stored secret cannot be decrypted (tampered, wrong row, wrong key)."""


class KeyKind(enum.Enum):
    """The kinds of bearer tokens.

    ``prefix`` starts the plaintext; ``key_type`` is the ``api_keys.key_type`` value (None for invites, which
    are not API keys).
    """

    USER = ("vl_uk_", "user_key")
    TEAM = ("vl_tk_", "team_key")
    SERVICE_ACCOUNT = ("vl_sa_", "sa_key")
    SESSION = ("vl_sk_", "session_key")
    INVITE = ("vl_iv_", None)

    prefix: str
    key_type: str | None

    def __init__(self, prefix: str, key_type: str | None) -> None:
        self.prefix = prefix
        self.key_type = key_type

    @classmethod
    def from_key(cls, plaintext: str) -> KeyKind | None:
        """The kind named by ``plaintext``'s prefix, or None if unknown (the body is not checked)."""
        for kind in cls:
            if plaintext.startswith(kind.prefix):
                return kind
        return None


def generate_key(kind: KeyKind) -> str:
    """A fresh key: ``kind.prefix`` + 48 lowercase hex chars from 24 random bytes (54 chars in all)."""
    return kind.prefix + secrets.token_hex(_RANDOM_BYTES)


def is_well_formed(plaintext: str) -> bool:
    """Whether ``plaintext`` has a known prefix followed by exactly 48 lowercase hex chars."""
    kind = KeyKind.from_key(plaintext)
    return kind is not None and _BODY.fullmatch(plaintext, len(kind.prefix)) is not None


def key_hint(plaintext: str) -> str:
    """The displayable hint: first 6 chars, ``...``, last 4 (for a 54-char key: ``vl_uk_...1a2b``)."""
    return f"{plaintext[:6]}...{plaintext[-4:]}"


def parse_encryption_key(value: str) -> bytes:
    """Turn the ``encryption_key`` setting into the 32-byte master key.

    Base64 that decodes to exactly 32 bytes (standard or URL-safe alphabet, padding optional) is the key
    itself; line breaks are ignored there, as Go's decoder does. Otherwise any string of at least 16
    characters is a passphrase whose SHA-256 is the key.

    Compatibility: the Go original accepted only padded standard base64, so a setting that is unpadded or
    URL-safe base64 of 32 bytes was a passphrase there and is a raw key here. Real passphrases almost never
    have that shape, but an operator migrating such a setting must pad it or keep the old key material.

    Raises:
        CryptoError: ``value`` is neither; the message does not repeat it.
    """
    decoded = _decode_base64_key(value)
    if decoded is not None:
        return decoded
    if len(value) >= _MIN_PASSPHRASE_CHARS:
        return hashlib.sha256(value.encode("utf-8")).digest()
    raise CryptoError(
        "encryption key must be base64 of 32 bytes or a passphrase of at least "
        f"{_MIN_PASSPHRASE_CHARS} characters"
    )


def _decode_base64_key(value: str) -> bytes | None:
    # Line breaks are skipped as Go's decoder does, so a key pasted from a file parses the same in both.
    text = value.replace("\r", "").replace("\n", "").replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == _KEY_BYTES else None


def derive_hmac_secret(encryption_key: bytes) -> bytes:
    """HKDF-SHA256(IKM = ``encryption_key``, salt = none, info = ``voidllm-hmac-key``), 32 bytes.

    Raises:
        CryptoError: ``encryption_key`` is not 32 bytes.
    """
    _check_key(encryption_key)
    # An empty salt is RFC 5869's HashLen zero bytes; one key asked for comes back as bytes, not a tuple.
    return cast("bytes", HKDF(encryption_key, _KEY_BYTES, b"", SHA256, context=_HMAC_INFO))


def hash_key(hmac_secret: bytes, plaintext: str) -> str:
    """The stored form of an API key: lowercase hex of HMAC-SHA256(``hmac_secret``, UTF-8 ``plaintext``)."""
    return hmac.new(hmac_secret, plaintext.encode("utf-8"), hashlib.sha256).hexdigest()


def aad_for(kind: AadKind, row_id: str) -> str:
    """The associated data binding a secret to its row: ``"<kind>:<row_id>"``.

    Raises:
        ValueError: ``kind`` is not one of ``model``, ``deployment``, ``mcp_server``, ``org_sso`` (a
            programming error).
    """
    if kind not in _AAD_KINDS:
        raise ValueError(f"unknown secret row kind {kind!r}")
    return f"{kind}:{row_id}"


def encrypt_secret(encryption_key: bytes, plaintext: str, *, aad: str) -> str:
    """Seal ``plaintext`` with AES-256-GCM under a fresh random nonce; returns ``base64(nonce ‖ ct ‖ tag)``.

    Raises:
        CryptoError: ``encryption_key`` is not 32 bytes.
    """
    return _encrypt_with_nonce(encryption_key, plaintext, aad=aad, nonce=secrets.token_bytes(_NONCE_BYTES))


def _encrypt_with_nonce(encryption_key: bytes, plaintext: str, *, aad: str, nonce: bytes) -> str:
    """:func:`encrypt_secret` with a caller-chosen nonce; only for deterministic test vectors."""
    _check_key(encryption_key)
    cipher = AES.new(encryption_key, AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
    cipher.update(aad.encode("utf-8"))
    body, tag = cipher.encrypt_and_digest(plaintext.encode("utf-8"))
    return base64.b64encode(nonce + body + tag).decode("ascii")


def decrypt_secret(encryption_key: bytes, token: str, *, aad: str) -> str:
    """Open a value made by :func:`encrypt_secret` with the same key and ``aad``.

    Raises:
        CryptoError: the token is malformed, was tampered with, belongs to another row (``aad`` differs)
            or was sealed under another key. These cases are indistinguishable by design.
    """
    _check_key(encryption_key)
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CryptoError("stored secret is not valid base64") from exc
    if len(raw) < _NONCE_BYTES + _TAG_BYTES:
        raise CryptoError("stored secret is too short")
    cipher = AES.new(encryption_key, AES.MODE_GCM, nonce=raw[:_NONCE_BYTES], mac_len=_TAG_BYTES)
    cipher.update(aad.encode("utf-8"))
    try:
        opened = cipher.decrypt_and_verify(raw[_NONCE_BYTES:-_TAG_BYTES], raw[-_TAG_BYTES:])
        return opened.decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:  # a tag that does not verify is a ValueError
        raise CryptoError("stored secret cannot be decrypted (wrong key, wrong row or tampered)") from exc


def _check_key(encryption_key: bytes) -> None:
    if len(encryption_key) != _KEY_BYTES:
        raise CryptoError(f"encryption key must be {_KEY_BYTES} bytes")


@attrs.frozen
class Keyring:
    """The master key and the HMAC secret derived from it; ``repr`` shows neither."""

    encryption_key: bytes = attrs.field(repr=False)
    hmac_secret: bytes = attrs.field(repr=False)

    @classmethod
    def from_setting(cls, value: str) -> Keyring:
        """Build from the ``encryption_key`` setting (see :func:`parse_encryption_key`).

        Raises:
            CryptoError: the setting is unusable.
        """
        key = parse_encryption_key(value)
        return cls(encryption_key=key, hmac_secret=derive_hmac_secret(key))

    def hash_key(self, plaintext: str) -> str:
        """:func:`hash_key` with this keyring's HMAC secret."""
        return hash_key(self.hmac_secret, plaintext)

    def encrypt_secret(self, plaintext: str, *, aad: str) -> str:
        """:func:`encrypt_secret` with this keyring's key."""
        return encrypt_secret(self.encryption_key, plaintext, aad=aad)

    def decrypt_secret(self, token: str, *, aad: str) -> str:
        """:func:`decrypt_secret` with this keyring's key."""
        return decrypt_secret(self.encryption_key, token, aad=aad)
