"""``Mcp-Session-Id`` as a sealed token: the session state travels with the client, not in a store.

A session-era client (MCP 2025-03-26 .. 2025-11-25) gets an ``Mcp-Session-Id`` on its ``initialize``
response and sends it on every later request. We make that id an AES-256-GCM sealed token over
:class:`SessionState` (the key id it belongs to, the endpoint, the negotiated protocol version, the backend's
own session state such as upstream session ids, issue and expiry times), encoded as base64url without
padding (visible ASCII only, as the spec requires). Any gateway process holding the same encryption key can
open it, so sessions survive restarts and spread over replicas without sticky routing or shared memory
(docs/reference/mcp-transport.md 5.3).

The token is sealed with the keyring's AES-GCM helper under associated data ``mcp-session:<key id>``: a token
presented with another API key fails to open, exactly as a forged or truncated one does, and the transport
answers 404 for all of them (the spec's "session terminated or expired").

Trade-offs, chosen knowingly:

- **Revocation.** A sealed token cannot be withdrawn by forgetting it. ``DELETE`` adds the token's ``sid``
  to a revocation set (:class:`Revocations`) held in process memory until the token's expiry; another
  process does not see it. The expiry (:data:`SESSION_TTL`) bounds the damage, and revoking the API key ends
  every session at once (authentication runs on every request before the token is opened).
- **Size.** The token grows with the backend state (a few hundred bytes for a handful of upstream session
  ids); headers of a few KiB are fine for every HTTP stack we meet. Backends should keep their state small.
- **Key rotation.** Changing ``settings.encryption_key`` invalidates every session (404; clients
  re-initialise), as it invalidates every API key already.
- **No secrets inside.** The state is encrypted, but backends must still never put credentials in it: a
  token leaks through client logs more easily than a database row does.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import orjson

from voidllm.crypto import CryptoError, Keyring
from voidllm.store.ids import utcnow

__all__ = ["SESSION_TTL", "InvalidSession", "Revocations", "SessionSealer", "SessionState"]

SESSION_TTL = timedelta(hours=24)
"""How long a session token is accepted after ``initialize``."""

MAX_TOKEN_CHARS = 8192
"""Longer ``Mcp-Session-Id`` headers are refused without trying to open them."""


class InvalidSession(Exception):
    """The token is malformed, forged, expired, revoked or belongs to another key (all look the same)."""


@attrs.frozen
class SessionState:
    """What a session token carries. ``backend`` is the backend's own state (JSON-serialisable, no
    secrets)."""

    sid: str
    key_id: str
    endpoint: str
    protocol_version: str
    issued_at: datetime
    expires_at: datetime
    backend: dict[str, Any] = attrs.field(factory=dict)

    @classmethod
    def new(
        cls,
        *,
        key_id: str,
        endpoint: str,
        protocol_version: str,
        backend: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> SessionState:
        now = (now or utcnow()).replace(microsecond=0)  # the token carries whole seconds
        return cls(
            sid=secrets.token_hex(16),
            key_id=key_id,
            endpoint=endpoint,
            protocol_version=protocol_version,
            issued_at=now,
            expires_at=now + SESSION_TTL,
            backend=dict(backend or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "kid": self.key_id,
            "ep": self.endpoint,
            "v": self.protocol_version,
            "iat": int(self.issued_at.timestamp()),
            "exp": int(self.expires_at.timestamp()),
            "b": self.backend,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SessionState:
        return cls(
            sid=str(value["sid"]),
            key_id=str(value["kid"]),
            endpoint=str(value["ep"]),
            protocol_version=str(value["v"]),
            issued_at=datetime.fromtimestamp(int(value["iat"]), UTC),
            expires_at=datetime.fromtimestamp(int(value["exp"]), UTC),
            backend=dict(value.get("b") or {}),
        )


def _aad(key_id: str) -> str:
    return f"mcp-session:{key_id}"


@attrs.define(eq=False)
class Revocations:
    """Session ids ended by ``DELETE`` in this process, kept until their token would expire anyway."""

    _ended: dict[str, datetime] = attrs.field(factory=dict)

    def add(self, state: SessionState) -> None:
        self._prune(utcnow())
        self._ended[state.sid] = state.expires_at

    def __contains__(self, sid: str) -> bool:
        return sid in self._ended

    def _prune(self, now: datetime) -> None:
        for sid in [sid for sid, expiry in self._ended.items() if expiry <= now]:
            del self._ended[sid]


@attrs.define(eq=False)
class SessionSealer:
    """Seals and opens session tokens with the gateway's keyring; see the module docstring."""

    keyring: Keyring = attrs.field(repr=False)
    revoked: Revocations = attrs.field(factory=Revocations)

    def seal(self, state: SessionState) -> str:
        """The ``Mcp-Session-Id`` for ``state``: base64url, no padding, visible ASCII only."""
        sealed = self.keyring.encrypt_secret(orjson.dumps(state.to_json()).decode(), aad=_aad(state.key_id))
        raw = base64.b64decode(sealed)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def open(self, token: str, *, key_id: str, endpoint: str, now: datetime | None = None) -> SessionState:
        """The state of a token presented by ``key_id`` on ``endpoint``.

        Raises:
            InvalidSession: malformed, forged, sealed for another key or endpoint, expired or revoked.
        """
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise InvalidSession("invalid session")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            plain = self.keyring.decrypt_secret(base64.b64encode(raw).decode("ascii"), aad=_aad(key_id))
            state = SessionState.from_json(orjson.loads(plain))
        except (binascii.Error, ValueError, CryptoError, KeyError, TypeError, orjson.JSONDecodeError):
            raise InvalidSession("invalid session") from None
        if state.key_id != key_id or state.endpoint != endpoint:
            raise InvalidSession("invalid session")
        if state.expires_at <= (now or utcnow()) or state.sid in self.revoked:
            raise InvalidSession("session expired")
        return state

    def revoke(self, state: SessionState) -> None:
        self.revoked.add(state)
