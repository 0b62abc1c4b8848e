"""Tests for voidllm.crypto, pinned to fixed vectors.

Every hard-coded vector was computed outside the code under test and cross-checked:
SHA-256 with coreutils ``sha256sum``; HKDF with ``openssl kdf ... HKDF`` and the RFC 5869 construction below;
HMAC with ``openssl dgst -sha256 -mac HMAC``; AES-GCM against the published GCM spec test cases 13 and 14
(McGrew & Viega) and, for a project-shaped vector, ``openssl enc -aes-256-ctr`` for the ciphertext body and
the pure-Python GHASH below for the tag.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import attrs
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from voidllm import crypto
from voidllm.crypto import CryptoError, KeyKind, Keyring
from voidllm.errors import GatewayError

KEY = bytes(range(32))
KEY_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
HMAC_SECRET_HEX = "510330d1fcdfbeba401bd111274a912d469a40dd95f9a8ab43985195efb2f766"
SAMPLE_KEY = "vl_uk_" + "0123456789abcdef" * 3
SAMPLE_KEY_HASH = "5977bec49391ba1e75d5a4a22a7ded890484401f4987cb9ff498a06066f917cf"
PASSPHRASE = "correct horse battery staple"
PASSPHRASE_SHA256 = "c4bbcb1fbec99d65bf59d85c8cb62ee2db963f0fe106f483d9afa73bd4e39a8a"

NONCE = bytes.fromhex("cafebabefacedbaddecaf888")
SECRET = "sk-test-secret"
AAD = "model:0192f0a8-7c1e-7d3a-9b5e-2f4c6a8e0b1d"
SEALED = "yv66vvrO263eyviI+ciNUs8JOzY1bj6vHmlUVL4Kg5k53KkCzsXix138"
SEALED_BODY_HEX = "f9c88d52cf093b36356e3eaf1e69"  # openssl enc -aes-256-ctr, iv = NONCE || 00000002


# --- independent reference implementations ---------------------------------------------------------------


def rfc5869_hkdf_sha256(ikm: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()  # salt absent: HashLen zero bytes
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def _gf_mult(x: int, y: int) -> int:
    z, v = 0, y
    for bit in range(127, -1, -1):
        if (x >> bit) & 1:
            z ^= v
        v = (v >> 1) ^ (0xE1 << 120) if v & 1 else v >> 1
    return z


def _ghash(h: int, aad: bytes, ct: bytes) -> int:
    def blocks(data: bytes) -> list[int]:
        padded = data + b"\x00" * (-len(data) % 16)
        return [int.from_bytes(padded[i : i + 16], "big") for i in range(0, len(padded), 16)]

    lengths = (len(aad) * 8).to_bytes(8, "big") + (len(ct) * 8).to_bytes(8, "big")
    y = 0
    for block in [*blocks(aad), *blocks(ct), int.from_bytes(lengths, "big")]:
        y = _gf_mult(y ^ block, h)
    return y


def reference_gcm_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-GCM (NIST SP 800-38D, 96-bit IV) from raw AES blocks and a pure-Python GHASH."""
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()

    def aes(block: bytes) -> bytes:
        return encryptor.update(block)

    h = int.from_bytes(aes(b"\x00" * 16), "big")
    stream = b"".join(aes(nonce + (2 + i).to_bytes(4, "big")) for i in range(-(-len(plaintext) // 16)))
    ct = bytes(p ^ k for p, k in zip(plaintext, stream, strict=False))
    tag = int.from_bytes(aes(nonce + (1).to_bytes(4, "big")), "big") ^ _ghash(h, aad, ct)
    return ct + tag.to_bytes(16, "big")


def test_reference_hkdf_matches_rfc5869_case_1() -> None:
    ikm = bytes.fromhex("0b" * 22)
    prk = hmac.new(bytes.fromhex("000102030405060708090a0b0c"), ikm, hashlib.sha256).digest()
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
    assert rfc5869_hkdf_sha256(ikm, b"", 42).hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )  # RFC 5869 test case 3 (no salt, no info)


def test_reference_gcm_matches_published_cases() -> None:
    assert reference_gcm_seal(bytes(32), bytes(12), b"", b"").hex() == "530f8afbc74536b9a963b4f1c4cb738b"
    assert reference_gcm_seal(bytes(32), bytes(12), bytes(16), b"").hex() == (
        "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
    )


# --- key setting --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        KEY_B64,
        KEY_B64.rstrip("="),
        KEY_B64 + "\n",
    ],
    ids=["padded", "unpadded", "trailing-newline"],
)
def test_parse_base64_key(value: str) -> None:
    assert crypto.parse_encryption_key(value) == KEY


def test_parse_urlsafe_base64_key() -> None:
    key = bytes(range(224, 256))
    standard = "4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8="
    urlsafe = "4OHi4-Tl5ufo6err7O3u7_Dx8vP09fb3-Pn6-_z9_v8="
    assert base64.b64decode(standard) == key
    assert crypto.parse_encryption_key(standard) == key
    assert crypto.parse_encryption_key(urlsafe) == key
    assert crypto.parse_encryption_key(urlsafe.rstrip("=")) == key


def test_parse_passphrase_is_sha256() -> None:
    assert crypto.parse_encryption_key(PASSPHRASE).hex() == PASSPHRASE_SHA256


def test_base64_of_wrong_length_is_a_passphrase() -> None:
    value = base64.b64encode(bytes(24)).decode()  # 32 chars of valid base64, but 24 bytes
    assert crypto.parse_encryption_key(value) == hashlib.sha256(value.encode()).digest()


def test_sixteen_characters_is_enough() -> None:
    assert crypto.parse_encryption_key("x" * 16) == hashlib.sha256(b"x" * 16).digest()


@pytest.mark.parametrize("value", ["", "short", "fifteen-chars!!"])
def test_too_short_is_rejected_without_echo(value: str) -> None:
    with pytest.raises(CryptoError) as info:
        crypto.parse_encryption_key(value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, GatewayError)
    if value:
        assert value not in str(info.value)


def test_hkdf_vector() -> None:
    secret = crypto.derive_hmac_secret(KEY)
    assert secret.hex() == HMAC_SECRET_HEX
    assert secret == rfc5869_hkdf_sha256(KEY, b"voidllm-hmac-key", 32)


def test_hkdf_rejects_wrong_length() -> None:
    with pytest.raises(CryptoError):
        crypto.derive_hmac_secret(bytes(16))


# --- keys ------------------------------------------------------------------------------------------------


def test_hmac_vector() -> None:
    digest = crypto.hash_key(bytes.fromhex(HMAC_SECRET_HEX), SAMPLE_KEY)
    assert digest == SAMPLE_KEY_HASH
    assert digest == hmac.new(bytes.fromhex(HMAC_SECRET_HEX), SAMPLE_KEY.encode(), "sha256").hexdigest()


@pytest.mark.parametrize(
    ("kind", "prefix", "key_type"),
    [
        (KeyKind.USER, "vl_uk_", "user_key"),
        (KeyKind.TEAM, "vl_tk_", "team_key"),
        (KeyKind.SERVICE_ACCOUNT, "vl_sa_", "sa_key"),
        (KeyKind.SESSION, "vl_sk_", "session_key"),
        (KeyKind.INVITE, "vl_iv_", None),
    ],
)
def test_generated_key_format(kind: KeyKind, prefix: str, key_type: str | None) -> None:
    assert kind.prefix == prefix
    assert kind.key_type == key_type
    key = crypto.generate_key(kind)
    assert len(key) == 54
    assert re.fullmatch(re.escape(prefix) + "[0-9a-f]{48}", key)
    assert crypto.is_well_formed(key)
    assert KeyKind.from_key(key) is kind
    assert crypto.generate_key(kind) != key


@pytest.mark.parametrize(
    "value",
    [
        "",
        "vl_uk_",
        "vl_xx_" + "0" * 48,
        "vl_uk_" + "0" * 47,
        "vl_uk_" + "0" * 49,
        "vl_uk_" + "A" * 48,
        "vl_uk_" + "g" * 48,
        "vl_uk_" + "0" * 48 + "\n",
        "VL_UK_" + "0" * 48,
    ],
)
def test_malformed_keys(value: str) -> None:
    assert not crypto.is_well_formed(value)


def test_from_key_unknown_prefix() -> None:
    assert KeyKind.from_key("sk-abc") is None
    assert KeyKind.from_key("vl_sa_junk") is KeyKind.SERVICE_ACCOUNT


def test_key_hint() -> None:
    assert crypto.key_hint(SAMPLE_KEY) == "vl_uk_...cdef"
    hint = crypto.key_hint(crypto.generate_key(KeyKind.TEAM))
    assert re.fullmatch(r"vl_tk_\.\.\.[0-9a-f]{4}", hint)


# --- secrets ------------------------------------------------------------------------------------------------


def test_aad_for() -> None:
    assert crypto.aad_for("model", "m1") == "model:m1"
    assert crypto.aad_for("deployment", "d1") == "deployment:d1"
    assert crypto.aad_for("mcp_server", "s1") == "mcp_server:s1"
    with pytest.raises(ValueError, match="row kind"):
        crypto.aad_for("user", "u1")  # type: ignore[arg-type]


def test_fixed_nonce_vector() -> None:
    sealed = crypto._encrypt_with_nonce(KEY, SECRET, aad=AAD, nonce=NONCE)
    assert sealed == SEALED
    raw = base64.b64decode(SEALED)
    assert raw[:12] == NONCE
    assert raw[12:-16].hex() == SEALED_BODY_HEX
    assert raw[12:] == reference_gcm_seal(KEY, NONCE, SECRET.encode(), AAD.encode())


def test_decrypt_fixed_vector() -> None:
    assert crypto.decrypt_secret(KEY, SEALED, aad=AAD) == SECRET


def test_decrypt_published_vectors() -> None:
    empty = base64.b64encode(bytes(12) + bytes.fromhex("530f8afbc74536b9a963b4f1c4cb738b")).decode()
    assert crypto.decrypt_secret(bytes(32), empty, aad="") == ""
    zeros = bytes.fromhex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919")
    assert crypto.decrypt_secret(bytes(32), base64.b64encode(bytes(12) + zeros).decode(), aad="") == "\0" * 16


def test_round_trip_uses_fresh_nonces() -> None:
    aad = crypto.aad_for("deployment", "d-1")
    first = crypto.encrypt_secret(KEY, "ключ-🔑", aad=aad)
    second = crypto.encrypt_secret(KEY, "ключ-🔑", aad=aad)
    assert first != second
    assert crypto.decrypt_secret(KEY, first, aad=aad) == "ключ-🔑"
    assert crypto.decrypt_secret(KEY, second, aad=aad) == "ключ-🔑"


def test_aad_mismatch_fails() -> None:
    with pytest.raises(CryptoError):
        crypto.decrypt_secret(KEY, SEALED, aad="model:another-row")
    with pytest.raises(CryptoError):
        crypto.decrypt_secret(KEY, SEALED, aad=AAD.replace("model", "deployment"))


@pytest.mark.parametrize("position", [0, 11, 12, 20, -1])
def test_tamper_fails(position: int) -> None:
    raw = bytearray(base64.b64decode(SEALED))
    raw[position] ^= 0x01
    with pytest.raises(CryptoError) as info:
        crypto.decrypt_secret(KEY, base64.b64encode(bytes(raw)).decode(), aad=AAD)
    assert SECRET not in str(info.value)


def test_wrong_key_fails() -> None:
    with pytest.raises(CryptoError):
        crypto.decrypt_secret(bytes(32), SEALED, aad=AAD)


@pytest.mark.parametrize("token", ["", "not base64!", base64.b64encode(bytes(27)).decode(), SEALED[:-4]])
def test_malformed_token_fails(token: str) -> None:
    with pytest.raises(CryptoError):
        crypto.decrypt_secret(KEY, token, aad=AAD)


def test_wrong_key_length_fails() -> None:
    with pytest.raises(CryptoError):
        crypto.encrypt_secret(bytes(16), SECRET, aad=AAD)
    with pytest.raises(CryptoError):
        crypto.decrypt_secret(bytes(16), SEALED, aad=AAD)


# --- keyring ------------------------------------------------------------------------------------------------


def test_keyring_from_setting() -> None:
    ring = Keyring.from_setting(KEY_B64)
    assert ring.encryption_key == KEY
    assert ring.hmac_secret.hex() == HMAC_SECRET_HEX
    assert ring.hash_key(SAMPLE_KEY) == SAMPLE_KEY_HASH
    assert ring.decrypt_secret(SEALED, aad=AAD) == SECRET
    assert ring.decrypt_secret(ring.encrypt_secret("x", aad="model:1"), aad="model:1") == "x"


def test_keyring_is_frozen_and_repr_is_opaque() -> None:
    ring = Keyring.from_setting(PASSPHRASE)
    text = repr(ring)
    assert text == "Keyring()"
    assert PASSPHRASE_SHA256 not in text
    assert HMAC_SECRET_HEX not in text
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ring.encryption_key = KEY  # type: ignore[misc]


def test_keyring_bad_setting() -> None:
    with pytest.raises(CryptoError):
        Keyring.from_setting("too short")


def test_exports() -> None:
    defined = {
        name
        for name, value in vars(crypto).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == crypto.__name__
    }
    assert set(crypto.__all__) == defined | {"AadKind"}
