"""The API-key cache: every live key by its HMAC, so authentication never touches the database.

The cache is loaded completely before the server turns ready and reloaded every ``cache.key_ttl`` by
:func:`serve_key_cache`, a supervised service. Admin mutations call :meth:`KeyCache.put` and
:meth:`KeyCache.evict` so a new key works, and a revoked key stops working, at once.

A reload reads the store while requests and mutations go on. Mutations that land while a reload is running
are journaled and replayed over the freshly loaded snapshot, so a key created (or revoked) during a reload
is neither lost nor resurrected by it. When a reload fails (store outage) the previous contents stay in use:
valid keys keep working through a database blip.

Other processes (the workers of this instance, other instances) learn of a new key from a change notice and
reload a moment later. A request that arrives in that moment must not be refused, so the request paths call
:meth:`KeyCache.resolve`: on a miss it asks the store for that one key (:attr:`KeyCache.lookup`, one indexed
query). Those lookups are bounded: at most :data:`MAX_LOOKUPS` at a time and :data:`LOOKUP_RATE` a second
on average (a miss beyond either is refused without one), and a hash the store did not know is remembered
until the next reload (:data:`MAX_ABSENT` of them), so a client repeating a revoked key, or a flood of
made-up ones, costs the store little. ``voidllm_key_lookups_total`` counts them by outcome.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, NoReturn

import attrs
import trio

from voidllm.auth.loader import load_live_key_by_hash, load_live_keys
from voidllm.crypto import KeyKind, hash_key, is_well_formed
from voidllm.errors import AuthenticationError, StoreError
from voidllm.identity import KeyIdentity
from voidllm.metrics import AUTH_FAILURES, CACHE_SIZE, KEY_LOOKUPS
from voidllm.nursery.periodic import keep_reloading

if TYPE_CHECKING:
    from voidllm.store.store import Store

log = logging.getLogger(__name__)

MISSING = "missing API key: send the header Authorization: Bearer <key>"

MAX_LOOKUPS = 4
"""Store lookups of missed keys running at once per process; a miss beyond them is refused at once."""
LOOKUP_RATE = 20.0
"""Store lookups of missed keys a second per process on average, in bursts of as many (a token bucket)."""
MAX_ABSENT = 10_000
"""Hashes remembered as unknown to the store; when full the memory starts again empty."""

Lookup = Callable[[str], Awaitable[KeyIdentity | None]]
"""One key by hash from the store, or ``None`` when it cannot authenticate
(:func:`voidllm.auth.loader.load_live_key_by_hash`)."""


@attrs.define(eq=False)
class KeyCache:
    """Live keys by HMAC-SHA256 hex digest."""

    hmac_secret: bytes = attrs.field(repr=False)
    lookup: Lookup | None = None
    """Asked on a miss by :meth:`resolve`; without it a miss is refused (a process with no other writer)."""
    _by_hash: dict[str, KeyIdentity] = attrs.field(factory=dict)
    _journal: list[tuple[str, KeyIdentity | None]] | None = None
    _origins: frozenset[str] | None = None  # None: recompute (a key changed)
    _headers: frozenset[str] | None = None
    _absent: set[str] = attrs.field(factory=set)  # hashes the store did not know since the last reload
    _lookups: int = 0  # store lookups running
    _tokens: float = LOOKUP_RATE  # the lookups' token bucket, as of ``_tokens_at`` (trio's clock)
    _tokens_at: float = -math.inf
    _changes: int = 0  # evictions and finished reloads: a lookup that overlaps one trusts the cache instead

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, authorization: str | None, api_key: str | None = None) -> KeyIdentity:
        """Resolve a request's credentials to a live key: the ``X-Api-Key`` header's value (Anthropic's
        convention, which its SDKs follow) when the request has a non-empty one, else the ``Authorization``
        header's (``Bearer <key>``). Every route that takes a key takes it either way.

        Raises:
            AuthenticationError: missing or malformed header, unknown key, or expired key. The message says
                which, never what was sent.
        """
        return self.authenticate_key(self._presented(authorization, api_key))

    def authenticate_key(self, plaintext: str) -> KeyIdentity:
        """Resolve a presented key (without the ``Bearer`` prefix) from the cache alone; see
        :meth:`authenticate`. For keys this process has just put (a sign-in's session)."""
        digest = self._digest(plaintext)
        identity = self._by_hash.get(digest)
        if identity is None:
            self._reject("unknown", "invalid API key")
        return self._live(digest, identity)

    async def resolve(self, authorization: str | None, api_key: str | None = None) -> KeyIdentity:
        """:meth:`authenticate`, asking the store on a miss (see the module docstring). The request paths
        use it: a key another process created a moment ago works here too."""
        return await self.resolve_key(self._presented(authorization, api_key))

    async def resolve_key(self, plaintext: str) -> KeyIdentity:
        """:meth:`authenticate_key`, asking the store on a miss; see :meth:`resolve`."""
        digest = self._digest(plaintext)
        identity = self._by_hash.get(digest)
        if identity is None:
            identity = await self._look_up(digest)
        return self._live(digest, identity)

    async def _look_up(self, digest: str) -> KeyIdentity:
        if self.lookup is None:
            self._reject("unknown", "invalid API key")
        if digest in self._absent or self._lookups >= MAX_LOOKUPS or not self._take_token():
            KEY_LOOKUPS.labels("skipped").inc()
            self._reject("unknown", "invalid API key")
        changes = self._changes
        self._lookups += 1
        try:
            identity = await self.lookup(digest)
        except StoreError as exc:  # the store is down: a key it cannot confirm is refused, and not remembered
            KEY_LOOKUPS.labels("error").inc()
            log.warning("key lookup failed", extra={"error_type": type(exc).__name__})
            self._reject("unknown", "invalid API key")
        finally:
            self._lookups -= 1
        KEY_LOOKUPS.labels("absent" if identity is None else "found").inc()
        if self._changes != changes:  # a revocation or a reload overlapped the query: the cache knows better
            identity = self._by_hash.get(digest)
        elif identity is None:
            if len(self._absent) >= MAX_ABSENT:
                self._absent.clear()
            self._absent.add(digest)
        elif self._journal is None:  # (during a reload the snapshot brings it, if it is still live)
            self.put(digest, identity)
        if identity is None:
            self._reject("unknown", "invalid API key")
        return identity

    def _take_token(self) -> bool:
        now = trio.current_time()
        self._tokens = min(LOOKUP_RATE, self._tokens + (now - self._tokens_at) * LOOKUP_RATE)
        self._tokens_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _presented(self, authorization: str | None, api_key: str | None) -> str:
        """The presented key: ``X-Api-Key``'s value when not empty, else ``Authorization``'s after Bearer."""
        if api_key:
            return api_key.strip()
        if not authorization:
            self._reject("missing", MISSING)
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer":  # the scheme is case-insensitive (RFC 9110)
            hint = "the Bearer prefix is missing" if authorization.startswith("vl_") else "unsupported scheme"
            self._reject("format", f"{hint}: use Authorization: Bearer <key>")
        return key.strip()

    def _digest(self, plaintext: str) -> str:
        kind = KeyKind.from_key(plaintext)
        if kind is None or kind is KeyKind.INVITE or not is_well_formed(plaintext):
            self._reject("format", "invalid API key format")
        return hash_key(self.hmac_secret, plaintext)

    def _live(self, digest: str, identity: KeyIdentity) -> KeyIdentity:
        if identity.expired(datetime.now(UTC)):
            self.evict(digest)
            self._reject("expired", "API key expired")
        return identity

    def allowed_origins(self) -> frozenset[str]:
        """Every origin some live key's request policy allows (CORS preflights carry no key, so they are
        answered for any of them: :mod:`voidllm.web.cors`); recomputed after a change, else cached."""
        if self._origins is None:
            self._origins = frozenset().union(
                *(
                    ident.policy.allowed_origins
                    for ident in self._by_hash.values()
                    if ident.policy is not None and ident.policy.allowed_origins
                )
            )
        return self._origins

    def required_headers(self) -> frozenset[str]:
        """Every header name some live key's request policy requires (lowercase): a page may send them."""
        if self._headers is None:
            self._headers = frozenset(
                header.name
                for ident in self._by_hash.values()
                if ident.policy is not None
                for header in ident.policy.required_headers
            )
        return self._headers

    def put(self, key_hash: str, identity: KeyIdentity) -> None:
        """Insert or replace one key at once (admin mutation)."""
        self._by_hash[key_hash] = identity
        self._origins = self._headers = None
        self._record(key_hash, identity)

    def evict(self, key_hash: str) -> None:
        """Remove one key at once (revocation); unknown hashes are ignored."""
        if self._by_hash.pop(key_hash, None) is not None:
            self._origins = self._headers = None
        self._changes += 1
        self._record(key_hash, None)

    def evict_where(self, **match: str) -> int:
        """Remove every key whose identity has all the given attribute values; returns how many."""
        doomed = [
            h for h, ident in self._by_hash.items() if all(getattr(ident, k) == v for k, v in match.items())
        ]
        for key_hash in doomed:
            self.evict(key_hash)
        return len(doomed)

    def begin_reload(self) -> None:
        """Start journaling mutations; call before reading the snapshot from the store."""
        self._journal = []

    def finish_reload(self, snapshot: Mapping[str, KeyIdentity]) -> None:
        """Replace the contents with ``snapshot``, then replay mutations made since :meth:`begin_reload`."""
        journal, self._journal = self._journal or [], None
        self._by_hash = dict(snapshot)
        for key_hash, identity in journal:
            if identity is None:
                self._by_hash.pop(key_hash, None)
            else:
                self._by_hash[key_hash] = identity
        self._origins = self._headers = None
        self._absent.clear()
        self._changes += 1
        CACHE_SIZE.labels(cache="keys").set(len(self._by_hash))

    def abort_reload(self) -> None:
        """Stop journaling after a failed reload; the current contents stay."""
        self._journal = None

    def _record(self, key_hash: str, identity: KeyIdentity | None) -> None:
        if self._journal is not None:
            self._journal.append((key_hash, identity))
        CACHE_SIZE.labels(cache="keys").set(len(self._by_hash))

    @staticmethod
    def _reject(reason: str, message: str) -> NoReturn:
        AUTH_FAILURES.labels(reason=reason).inc()
        raise AuthenticationError(message)


def store_lookup(store: Store) -> Lookup:
    """The :attr:`KeyCache.lookup` that reads one key from ``store``."""

    async def lookup(key_hash: str) -> KeyIdentity | None:
        return await store.run(partial(load_live_key_by_hash, key_hash=key_hash, now=datetime.now(UTC)))

    return lookup


async def reload_key_cache(cache: KeyCache, store: Store) -> None:
    """Reload every live key from the store into ``cache``.

    Raises:
        StoreError: the store could not be read; the cache keeps its previous contents.
    """
    cache.begin_reload()
    try:
        snapshot = await store.run(partial(load_live_keys, now=datetime.now(UTC)))
    except BaseException:
        cache.abort_reload()
        raise
    cache.finish_reload(snapshot)


async def serve_key_cache(
    *,
    cache: KeyCache,
    store: Store,
    ttl: float,
    task_status: trio.TaskStatus[KeyCache] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Load the key cache, report ready, then reload it every ``ttl`` seconds until cancelled."""
    await reload_key_cache(cache, store)
    task_status.started(cache)
    await keep_reloading(partial(reload_key_cache, cache, store), ttl=ttl, cache="keys")
