"""The key cache: authentication outcomes per the reference, journaling across reloads, outage tolerance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
import trio.testing

from voidllm.auth.cache import KeyCache, reload_key_cache, serve_key_cache
from voidllm.crypto import KeyKind, generate_key, hash_key
from voidllm.errors import AuthenticationError, StoreUnavailableError
from voidllm.identity import KeyIdentity, Role
from voidllm.metrics import REGISTRY

SECRET = b"s" * 32


def identity(key_id: str = "k1", **overrides: Any) -> KeyIdentity:
    values: dict[str, Any] = {
        "key_id": key_id,
        "key_type": "user_key",
        "name": "n",
        "role": Role.MEMBER,
        "org_id": "o1",
    }
    values.update(overrides)
    return KeyIdentity(**values)


def cache_with(*entries: tuple[str, KeyIdentity]) -> KeyCache:
    cache = KeyCache(SECRET)
    for plaintext, ident in entries:
        cache.put(hash_key(SECRET, plaintext), ident)
    return cache


def test_valid_bearer_key_resolves_to_its_identity() -> None:
    key = generate_key(KeyKind.USER)
    cache = cache_with((key, identity("abc")))
    assert cache.authenticate(f"Bearer {key}").key_id == "abc"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing API key: send the header Authorization: Bearer <key>"),
        ("", "missing API key: send the header Authorization: Bearer <key>"),
        ("bearer vl_uk_" + "a" * 48, "invalid API key"),  # the scheme is case-insensitive
        ("vl_uk_" + "a" * 48, "the Bearer prefix is missing: use Authorization: Bearer <key>"),
        ("Basic dXNlcjpwYXNz", "unsupported scheme: use Authorization: Bearer <key>"),
        ("Bearer sk-" + "a" * 48, "invalid API key format"),
        ("Bearer vl_uk_" + "A" * 48, "invalid API key format"),
        ("Bearer vl_uk_" + "a" * 47, "invalid API key format"),
        # fresh keys get fixed ids: pytest-xdist's workers must collect the same test names
        pytest.param("Bearer " + generate_key(KeyKind.INVITE), "invalid API key format", id="an invite"),
        pytest.param("Bearer " + generate_key(KeyKind.USER), "invalid API key", id="an unknown user key"),
    ],
)
def test_rejections_follow_the_reference(header: str | None, message: str) -> None:
    cache = cache_with((generate_key(KeyKind.USER), identity()))
    with pytest.raises(AuthenticationError) as caught:
        cache.authenticate(header)
    assert caught.value.message == message
    assert caught.value.status == 401


def test_expired_key_is_rejected_and_evicted() -> None:
    key = generate_key(KeyKind.TEAM)
    cache = cache_with((key, identity(expires_at=datetime.now(UTC) - timedelta(seconds=1))))
    with pytest.raises(AuthenticationError, match="API key expired"):
        cache.authenticate_key(key)
    assert len(cache) == 0


def test_future_expiry_is_accepted() -> None:
    key = generate_key(KeyKind.SERVICE_ACCOUNT)
    cache = cache_with((key, identity(expires_at=datetime.now(UTC) + timedelta(hours=1))))
    assert cache.authenticate_key(key).key_id == "k1"


def test_evict_revokes_at_once() -> None:
    key = generate_key(KeyKind.USER)
    cache = cache_with((key, identity()))
    cache.evict(hash_key(SECRET, key))
    with pytest.raises(AuthenticationError, match="invalid API key"):
        cache.authenticate_key(key)


def test_evict_where_removes_every_key_of_a_user() -> None:
    keys = [generate_key(KeyKind.USER) for _ in range(3)]
    cache = cache_with(
        (keys[0], identity("a", user_id="u1")),
        (keys[1], identity("b", user_id="u1")),
        (keys[2], identity("c", user_id="u2")),
    )
    assert cache.evict_where(user_id="u1") == 2
    assert cache.authenticate_key(keys[2]).key_id == "c"


class SlowStore:
    """A store whose reads return a prepared snapshot after a delay, or fail."""

    def __init__(self, snapshots: list[dict[str, KeyIdentity] | Exception], delay: float = 0.0) -> None:
        self.snapshots = snapshots
        self.delay = delay
        self.reads = 0

    async def run(self, fn: Any) -> Any:
        self.reads += 1
        await trio.sleep(self.delay)
        result = self.snapshots.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


async def test_mutations_during_a_reload_survive_it(autojump_clock: trio.testing.MockClock) -> None:
    old, new = generate_key(KeyKind.USER), generate_key(KeyKind.USER)
    old_hash, new_hash = hash_key(SECRET, old), hash_key(SECRET, new)
    cache = cache_with((old, identity("old")))
    # the snapshot was read before the mutations below committed: it still has "old" and lacks "new"
    store = SlowStore([{old_hash: identity("old")}], delay=1.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reload_key_cache, cache, store)
        await trio.sleep(0.5)
        cache.put(new_hash, identity("new"))
        cache.evict(old_hash)
    assert cache.authenticate_key(new).key_id == "new"
    with pytest.raises(AuthenticationError):
        cache.authenticate_key(old)


async def test_store_outage_keeps_cached_keys_and_counts_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    key = generate_key(KeyKind.USER)
    key_hash = hash_key(SECRET, key)
    before = REGISTRY.get_sample_value("voidllm_cache_refresh_failures_total", {"cache": "keys"}) or 0
    store = SlowStore([{key_hash: identity("v1")}, StoreUnavailableError("down"), {key_hash: identity("v2")}])
    cache = KeyCache(SECRET)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: serve_key_cache(cache=cache, store=store, ttl=30, task_status=task_status)
        )
        assert cache.authenticate_key(key).key_id == "v1"
        await trio.sleep(31)  # the reload at t=30 failed
        assert cache.authenticate_key(key).key_id == "v1"
        await trio.sleep(30)  # the reload at t=60 succeeded
        assert cache.authenticate_key(key).key_id == "v2"
        nursery.cancel_scope.cancel()
    after = REGISTRY.get_sample_value("voidllm_cache_refresh_failures_total", {"cache": "keys"})
    assert after == before + 1
    assert store.reads == 3


class Lookups:
    """A store lookup by hash: answers from ``known`` after ``delay``, or raises ``error``; counts calls."""

    def __init__(self, known: dict[str, KeyIdentity], delay: float = 0.0) -> None:
        self.known = known
        self.delay = delay
        self.error: Exception | None = None
        self.calls: list[str] = []

    async def __call__(self, key_hash: str) -> KeyIdentity | None:
        self.calls.append(key_hash)
        await trio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.known.get(key_hash)


async def test_a_key_another_process_created_is_found_in_the_store_once() -> None:
    key = generate_key(KeyKind.USER)
    lookups = Lookups({hash_key(SECRET, key): identity("fresh")})
    cache = KeyCache(SECRET, lookup=lookups)
    with pytest.raises(AuthenticationError, match="invalid API key"):
        cache.authenticate_key(key)  # the cache alone does not know it
    assert (await cache.resolve(f"Bearer {key}")).key_id == "fresh"
    assert (await cache.resolve(None, key)).key_id == "fresh"  # now cached: no second query
    assert cache.authenticate_key(key).key_id == "fresh"
    assert lookups.calls == [hash_key(SECRET, key)]


async def test_a_key_the_store_does_not_know_is_asked_for_once_per_reload() -> None:
    key = generate_key(KeyKind.USER)
    lookups = Lookups({})
    cache = KeyCache(SECRET, lookup=lookups)
    before = REGISTRY.get_sample_value("voidllm_auth_failures_total", {"reason": "unknown"}) or 0
    for _ in range(3):
        with pytest.raises(AuthenticationError, match="invalid API key"):
            await cache.resolve_key(key)
    assert len(lookups.calls) == 1
    assert REGISTRY.get_sample_value("voidllm_auth_failures_total", {"reason": "unknown"}) == before + 3
    cache.begin_reload()
    cache.finish_reload({})  # a reload forgets what was absent: the next miss asks again
    with pytest.raises(AuthenticationError):
        await cache.resolve_key(key)
    assert len(lookups.calls) == 2


async def test_malformed_keys_and_a_cache_without_a_lookup_never_ask() -> None:
    lookups = Lookups({})
    with pytest.raises(AuthenticationError, match="invalid API key format"):
        await KeyCache(SECRET, lookup=lookups).resolve("Bearer vl_uk_" + "A" * 48)
    with pytest.raises(AuthenticationError, match="missing API key"):
        await KeyCache(SECRET, lookup=lookups).resolve(None)
    assert lookups.calls == []
    with pytest.raises(AuthenticationError, match="invalid API key"):
        await KeyCache(SECRET).resolve_key(generate_key(KeyKind.USER))


async def test_at_most_four_lookups_run_at_once(autojump_clock: trio.testing.MockClock) -> None:
    lookups = Lookups({}, delay=1.0)
    cache = KeyCache(SECRET, lookup=lookups)
    refused_at: list[float] = []

    async def one() -> None:
        with pytest.raises(AuthenticationError):
            await cache.resolve_key(generate_key(KeyKind.USER))
        refused_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(one)
    assert len(lookups.calls) == 4
    assert sorted(refused_at) == [0, 0, 1, 1, 1, 1]  # the two beyond the bound are refused at once


async def outcome(cache: KeyCache, key: str, into: list[str]) -> None:
    """Resolve ``key``; append the key id, or the refusal's message."""
    try:
        into.append((await cache.resolve_key(key)).key_id)
    except AuthenticationError as exc:
        into.append(exc.message)


async def test_a_revocation_during_a_lookup_wins(autojump_clock: trio.testing.MockClock) -> None:
    key = generate_key(KeyKind.USER)
    key_hash = hash_key(SECRET, key)
    # the query read the row before the revocation committed
    cache = KeyCache(SECRET, lookup=Lookups({key_hash: identity()}, delay=1.0))
    seen: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outcome, cache, key, seen)
        await trio.sleep(0.5)
        cache.evict(key_hash)  # the revocation's notice
    assert seen == ["invalid API key"]
    assert len(cache) == 0


async def test_a_reload_during_a_lookup_is_trusted(autojump_clock: trio.testing.MockClock) -> None:
    """A reload that finished while the query ran read the store at least as late: its answer counts."""
    live, deleted = generate_key(KeyKind.USER), generate_key(KeyKind.USER)
    live_hash, deleted_hash = hash_key(SECRET, live), hash_key(SECRET, deleted)
    # the lookups read both keys; the reload, later, only the one that is still live
    lookups = Lookups({live_hash: identity("live"), deleted_hash: identity("deleted")}, delay=1.0)
    cache = KeyCache(SECRET, lookup=lookups)
    seen: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outcome, cache, live, seen)
        nursery.start_soon(outcome, cache, deleted, seen)
        await trio.sleep(0.5)
        cache.begin_reload()
        cache.finish_reload({live_hash: identity("live")})
    assert sorted(seen) == ["invalid API key", "live"]
    assert len(cache) == 1


async def test_a_lookup_during_a_reload_is_not_cached(autojump_clock: trio.testing.MockClock) -> None:
    """The reload's snapshot decides what is cached; the request that asked is answered all the same."""
    key = generate_key(KeyKind.USER)
    key_hash = hash_key(SECRET, key)
    cache = KeyCache(SECRET, lookup=Lookups({key_hash: identity("k")}))
    cache.begin_reload()
    assert (await cache.resolve_key(key)).key_id == "k"
    assert len(cache) == 0
    cache.finish_reload({})  # (read before the key was created)
    assert len(cache) == 0


async def test_a_store_outage_refuses_the_missed_key_and_remembers_nothing() -> None:
    key = generate_key(KeyKind.USER)
    lookups = Lookups({hash_key(SECRET, key): identity("k")})
    lookups.error = StoreUnavailableError("down")
    cache = KeyCache(SECRET, lookup=lookups)
    with pytest.raises(AuthenticationError, match="invalid API key"):
        await cache.resolve_key(key)
    lookups.error = None
    assert (await cache.resolve_key(key)).key_id == "k"


def lookups_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("voidllm_key_lookups_total", {"outcome": outcome}) or 0


async def test_lookups_are_bounded_to_twenty_a_second(autojump_clock: trio.testing.MockClock) -> None:
    lookups = Lookups({})
    cache = KeyCache(SECRET, lookup=lookups)
    before = {outcome: lookups_counted(outcome) for outcome in ("absent", "skipped")}

    async def misses(count: int) -> None:
        for _ in range(count):
            with pytest.raises(AuthenticationError, match="invalid API key"):
                await cache.resolve_key(generate_key(KeyKind.USER))

    await misses(25)  # a burst of made-up keys: twenty are asked for, five refused without a query
    assert len(lookups.calls) == 20
    await trio.sleep(0.5)
    await misses(15)  # half a second later, ten more
    assert len(lookups.calls) == 30
    assert lookups_counted("absent") == before["absent"] + 30
    assert lookups_counted("skipped") == before["skipped"] + 10

    key = generate_key(KeyKind.USER)
    lookups.known[hash_key(SECRET, key)] = identity("new")
    with pytest.raises(AuthenticationError):
        await cache.resolve_key(key)  # the bucket is empty: even a real key waits for a token
    await trio.sleep(0.05)
    assert (await cache.resolve_key(key)).key_id == "new"
