"""Rate-limit cooldowns (docs/reference/behaviour.md 6.2): how long a 429 parks a deployment, and when the
parking ends."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import trio
import trio.testing

from voidllm.metrics import REGISTRY
from voidllm.routing.cooldown import DEFAULT_COOLDOWN, MAX_COOLDOWN, CooldownRegistry, parse_retry_after

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)  # a Wednesday

PARSED = [
    # retry-after-ms: milliseconds, decimals allowed
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "250.5"}, 0.2505),
    ({"retry-after-ms": "0"}, 0.0),
    # Retry-After: delta-seconds, integer or decimal
    ({"retry-after": "7"}, 7.0),
    ({"retry-after": "2.5"}, 2.5),
    ({"retry-after": " 5 "}, 5.0),
    ({"retry-after": "0"}, 0.0),
    # Retry-After: the three HTTP-date forms of RFC 9110, other zones, dates in the past
    ({"retry-after": "Wed, 01 Jan 2025 12:00:10 GMT"}, 10.0),
    ({"retry-after": "Wednesday, 01-Jan-25 12:00:20 GMT"}, 20.0),
    ({"retry-after": "Wed Jan  1 12:00:30 2025"}, 30.0),
    ({"retry-after": "Wed, 01 Jan 2025 13:00:40 +0100"}, 40.0),
    ({"retry-after": "Wed, 01 Jan 2025 12:00:10 -0000"}, 10.0),
    ({"retry-after": "Wed, 01 Jan 2025 11:59:00 GMT"}, 0.0),
    ({"retry-after": "Tue, 31 Dec 2024 12:00:00 GMT"}, 0.0),
    # absent or garbage: the default
    ({}, DEFAULT_COOLDOWN),
    ({"content-type": "application/json"}, DEFAULT_COOLDOWN),
    ({"retry-after": "soon"}, DEFAULT_COOLDOWN),
    ({"retry-after": ""}, DEFAULT_COOLDOWN),
    ({"retry-after": "1e3"}, DEFAULT_COOLDOWN),
    ({"retry-after": "inf"}, DEFAULT_COOLDOWN),
    ({"retry-after": "nan"}, DEFAULT_COOLDOWN),
    ({"retry-after": "1_000"}, DEFAULT_COOLDOWN),
    ({"retry-after": "Mon, 99 Foo 2025 12:00:00 GMT"}, DEFAULT_COOLDOWN),
    ({"retry-after-ms": "later"}, DEFAULT_COOLDOWN),
    # clamped to [0, 60]
    ({"retry-after": "120"}, MAX_COOLDOWN),
    ({"retry-after": "60.5"}, MAX_COOLDOWN),
    ({"retry-after-ms": "3600000"}, MAX_COOLDOWN),
    ({"retry-after": "Wed, 01 Jan 2025 13:00:00 GMT"}, MAX_COOLDOWN),
    ({"retry-after": "99999999999999999999999"}, MAX_COOLDOWN),
    ({"retry-after": "-5"}, 0.0),
    ({"retry-after-ms": "-100"}, 0.0),
    # both present: milliseconds win; unusable milliseconds fall through to Retry-After
    ({"retry-after-ms": "500", "retry-after": "10"}, 0.5),
    ({"retry-after": "10", "retry-after-ms": "500"}, 0.5),
    ({"retry-after-ms": "x", "retry-after": "4"}, 4.0),
    # header names are case-insensitive
    ({"RETRY-AFTER-MS": "2000"}, 2.0),
    ({"Retry-After": "8"}, 8.0),
]


@pytest.mark.parametrize(("headers", "seconds"), PARSED)
def test_parse_retry_after(headers: dict[str, str], seconds: float) -> None:
    assert parse_retry_after(headers, NOW) == seconds


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ([(b"retry-after", b"5")], 5.0),
        ([(b"Retry-After-Ms", b"100")], 0.1),
        ([(b"retry-after", b"9"), (b"RETRY-AFTER-MS", b"1500")], 1.5),
        ([(b"retry-after", b"Wed, 01 Jan 2025 12:00:10 GMT")], 10.0),
        ([(b"content-length", b"0")], DEFAULT_COOLDOWN),
        ([], DEFAULT_COOLDOWN),
    ],
)
def test_parse_retry_after_from_raw_byte_headers(headers: list[tuple[bytes, bytes]], seconds: float) -> None:
    assert parse_retry_after(headers, NOW) == seconds


def test_parse_retry_after_from_httpx_headers() -> None:
    headers = httpx.Headers([("Retry-After", "3"), ("Retry-After-MS", "750")])
    assert parse_retry_after(headers, NOW) == 0.75


def test_a_naive_wall_clock_is_taken_as_utc() -> None:
    naive_now = datetime(2025, 1, 1, 12, 0, 0)
    assert parse_retry_after({"retry-after": "Wed, 01 Jan 2025 12:00:15 GMT"}, naive_now) == 15.0


async def test_cooldown_expires_at_the_exact_time(autojump_clock: trio.testing.MockClock) -> None:
    cooldowns = CooldownRegistry()
    await trio.sleep_until(10)
    cooldowns.park("m/a", 3.0)
    assert cooldowns.cooling("m/a")
    assert not cooldowns.cooling("m/b")
    assert cooldowns.remaining("m/a") == 3.0
    await trio.sleep_until(12)
    assert cooldowns.remaining("m/a") == 1.0
    await trio.sleep_until(12.999)
    assert cooldowns.cooling("m/a")
    await trio.sleep_until(13)
    assert not cooldowns.cooling("m/a")
    assert cooldowns.remaining("m/a") == 0.0
    assert cooldowns.active() == {}


async def test_parking_again_keeps_the_later_deadline(autojump_clock: trio.testing.MockClock) -> None:
    cooldowns = CooldownRegistry()
    cooldowns.park("m/a", 30.0)
    await trio.sleep(5)
    cooldowns.park("m/a", 2.0)  # a racing 429 cannot shorten it
    assert cooldowns.remaining("m/a") == 25.0
    cooldowns.park("m/a", 40.0)  # but can lengthen it
    assert cooldowns.remaining("m/a") == 40.0
    await trio.sleep(40)
    assert trio.current_time() == 45
    assert not cooldowns.cooling("m/a")
    cooldowns.park("m/a", 1.0)  # after expiry a new park starts afresh
    assert cooldowns.remaining("m/a") == 1.0


async def test_parking_for_zero_seconds_parks_nothing(autojump_clock: trio.testing.MockClock) -> None:
    cooldowns = CooldownRegistry()
    cooldowns.park("m/a", parse_retry_after({"retry-after": "-1"}, NOW))
    assert not cooldowns.cooling("m/a")
    assert cooldowns.active() == {}


async def test_active_cooldowns_and_their_gauge(autojump_clock: trio.testing.MockClock) -> None:
    cooldowns = CooldownRegistry()

    def gauge() -> float | None:
        return REGISTRY.get_sample_value("voidllm_cooldowns_active")

    cooldowns.park("m/a", 1.0)
    cooldowns.park("m/b", 5.0)
    assert gauge() == 2
    assert cooldowns.active() == {"m/a": 1.0, "m/b": 5.0}
    await trio.sleep(1)
    assert cooldowns.active() == {"m/b": 4.0}
    assert gauge() == 1
    await trio.sleep(4)
    assert not cooldowns.cooling("m/b")
    assert gauge() == 0
