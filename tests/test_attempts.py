"""The attempt chain on trio's autojump clock with an in-memory transport: exact deadlines and order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson
import trio
import trio.testing

from voidllm.asgi import SCOPE_KEY
from voidllm.auth.cache import KeyCache
from voidllm.config import parse_config
from voidllm.crypto import KeyKind, generate_key, hash_key
from voidllm.identity import KeyIdentity, Role
from voidllm.proxy.handler import Proxy, ProxyLimits
from voidllm.routing.breaker import BreakerRegistry, BreakerSettings
from voidllm.routing.catalog import AccessRules, Catalog
from voidllm.routing.cooldown import CooldownRegistry
from voidllm.routing.latency import LatencyTracker
from voidllm.routing.registry import Registry
from voidllm.routing.strategy import Router
from voidllm.transport.base import UpstreamClosedError, UpstreamConnectError
from voidllm.usage.writer import open_usage_channel

SECRET = b"k" * 32
KEY = generate_key(KeyKind.USER)


@attrs.define
class Reply:
    delay: float = 0.0  # before response headers
    status: int = 200
    refuse: bool = False
    broken: bool = False  # the body closes part-way
    body_delay: float = 0.0  # between the headers and the body


@attrs.define
class FakeResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    http_version: bytes = b"1.1"
    broken: bool = False
    body_delay: float = 0.0

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        await trio.sleep(self.body_delay)
        if self.broken:
            yield b'{"usage":'
            raise UpstreamClosedError("closed in the middle of the response body")
        yield b'{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'

    def body_at_hand(self) -> bool:
        return self.body_delay == 0

    async def aclose(self) -> None:
        return None


@attrs.define
class FakeTransport:
    replies: dict[str, Reply]
    calls: list[tuple[str, float]] = attrs.field(factory=list)
    cancelled: list[tuple[str, float]] = attrs.field(factory=list)

    @asynccontextmanager
    async def request(
        self, method: bytes, url: str, headers: Any, body: Any, *, content_length: Any = None
    ) -> AsyncIterator[FakeResponse]:
        host = url.split("/")[2]
        self.calls.append((host, trio.current_time()))
        reply = self.replies[host]
        try:
            await trio.sleep(reply.delay)
        except trio.Cancelled:
            self.cancelled.append((host, trio.current_time()))
            raise
        if reply.refuse:
            raise UpstreamConnectError("connection refused")
        yield FakeResponse(
            reply.status,
            [(b"content-type", b"application/json")],
            broken=reply.broken,
            body_delay=reply.body_delay,
        )

    async def aclose(self) -> None:
        return None


def make_proxy(models_yaml: str, replies: dict[str, Reply]) -> tuple[Proxy, FakeTransport]:
    config = parse_config(
        "settings:\n  encryption_key: sixteen-chars-or-more\nmodels:\n" + models_yaml, environ={}
    )
    keys = KeyCache(SECRET)
    keys.put(hash_key(SECRET, KEY), KeyIdentity("k", "user_key", "n", Role.MEMBER, "org"))
    transport = FakeTransport(replies)
    recorder, _ = open_usage_channel(100)
    router = Router(BreakerRegistry(BreakerSettings()), CooldownRegistry(), LatencyTracker())
    limits = ProxyLimits(
        max_request_body=1 << 20, max_response_body=1 << 20, max_stream_duration=300, request_timeout=120
    )
    return Proxy(
        keys, Catalog(Registry.from_config(config.models)), transport, recorder, limits, router
    ), transport


async def call(proxy: Proxy, model: str = "m") -> tuple[int, dict[str, Any]]:
    body = orjson.dumps({"model": model})
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await trio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        SCOPE_KEY: "rid",
        "headers": [(b"authorization", f"Bearer {KEY}".encode()), (b"content-type", b"application/json")],
    }
    await proxy(scope, receive, send)
    return sent[0]["status"], orjson.loads(sent[1]["body"])


MODEL = """
  - name: m
    strategy: priority
    timeout: 10s
{extra}
    deployments:
      - {{name: a, provider: openai, base_url: "http://a/v1", priority: 0}}
      - {{name: b, provider: openai, base_url: "http://b/v1", priority: 1}}
      - {{name: c, provider: openai, base_url: "http://c/v1", priority: 2}}
"""


async def test_attempt_deadlines_then_the_chain_deadline(autojump_clock: trio.testing.MockClock) -> None:
    proxy, transport = make_proxy(
        MODEL.format(extra="    attempt_timeout: 4s"),
        {"a": Reply(delay=100), "b": Reply(delay=100), "c": Reply(delay=100)},
    )
    status, body = await call(proxy)
    # a: 0..4 (attempt deadline), b: 4..8, c: 8..10 (the chain's 10 s deadline cuts it short)
    assert transport.calls == [("a", 0.0), ("b", 4.0), ("c", 8.0)]
    assert transport.cancelled == [("a", 4.0), ("b", 8.0), ("c", 10.0)]
    assert trio.current_time() == 10.0
    assert (status, body["error"]["code"]) == (504, "upstream_timeout")


async def test_refused_and_5xx_fail_over_at_once(autojump_clock: trio.testing.MockClock) -> None:
    proxy, transport = make_proxy(
        MODEL.format(extra=""),
        {"a": Reply(delay=1, refuse=True), "b": Reply(delay=2, status=503), "c": Reply(delay=3)},
    )
    status, body = await call(proxy)
    assert status == 200
    assert body["usage"]["total_tokens"] == 2
    assert transport.calls == [("a", 0.0), ("b", 1.0), ("c", 3.0)]
    assert trio.current_time() == 6.0


async def test_a_body_broken_before_sending_fails_over(autojump_clock: trio.testing.MockClock) -> None:
    replies = {"a": Reply(broken=True), "b": Reply(), "c": Reply()}
    proxy, transport = make_proxy(MODEL.format(extra=""), replies)
    status, _ = await call(proxy)
    assert status == 200
    assert [host for host, _ in transport.calls] == ["a", "b"]
    assert proxy.router.breakers.get("m/a").consecutive_failures == 1  # a breaker failure


async def test_a_body_not_read_by_the_deadline_is_504_and_a_breaker_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    proxy, _ = make_proxy(MODEL.format(extra=""), {"a": Reply(body_delay=100), "b": Reply(), "c": Reply()})
    status, body = await call(proxy)
    assert (status, body["error"]["code"]) == (504, "upstream_timeout")
    assert trio.current_time() == 10.0
    assert proxy.router.breakers.get("m/a").consecutive_failures == 1


async def test_a_broken_body_of_every_candidate_is_502(autojump_clock: trio.testing.MockClock) -> None:
    proxy, transport = make_proxy(
        MODEL.format(extra="    hedge_after: 1s"),
        {
            "a": Reply(delay=2, broken=True),
            "b": Reply(delay=1, broken=True),
            "c": Reply(delay=5, broken=True),
        },
    )
    status, body = await call(proxy)
    assert (status, body["error"]["code"]) == (502, "upstream_unavailable")
    assert [host for host, _ in transport.calls] == ["a", "b", "c"]


async def test_the_last_candidates_answer_goes_to_the_client(autojump_clock: trio.testing.MockClock) -> None:
    proxy, transport = make_proxy(
        MODEL.format(extra=""), {"a": Reply(status=500), "b": Reply(status=502), "c": Reply(status=504)}
    )
    status, _ = await call(proxy)
    assert status == 504
    assert [host for host, _ in transport.calls] == ["a", "b", "c"]


async def test_hedge_starts_the_next_candidate_and_the_first_answer_wins(
    autojump_clock: trio.testing.MockClock,
) -> None:
    proxy, transport = make_proxy(
        MODEL.format(extra="    hedge_after: 2s"),
        {"a": Reply(delay=10), "b": Reply(delay=1), "c": Reply(delay=0)},
    )
    status, _ = await call(proxy)
    assert status == 200
    assert transport.calls == [("a", 0.0), ("b", 2.0)]
    assert transport.cancelled == [("a", 3.0)]  # the loser is cancelled the moment b answers
    assert trio.current_time() == 3.0
    breakers = proxy.router.breakers
    assert breakers.get("m/a").consecutive_failures == 0  # the loser is neutral


async def test_hedges_chain_when_each_is_slow(autojump_clock: trio.testing.MockClock) -> None:
    proxy, transport = make_proxy(
        MODEL.format(extra="    hedge_after: 1s"),
        {"a": Reply(delay=10), "b": Reply(delay=10), "c": Reply(delay=0.5)},
    )
    status, _ = await call(proxy)
    assert status == 200
    assert transport.calls == [("a", 0.0), ("b", 1.0), ("c", 2.0)]
    assert sorted(transport.cancelled) == [("a", 2.5), ("b", 2.5)]


FALLBACKS = """
  - name: a
    base_url: "http://a/v1"
    provider: openai
    fallback: b
  - name: b
    base_url: "http://b/v1"
    provider: openai
    fallback: c
  - name: c
    base_url: "http://c/v1"
    provider: openai
"""


async def test_fallback_to_the_next_model_on_5xx(autojump_clock: trio.testing.MockClock) -> None:
    proxy, transport = make_proxy(FALLBACKS, {"a": Reply(status=503), "b": Reply(status=200), "c": Reply()})
    status, _ = await call(proxy, model="a")
    assert status == 200
    assert [host for host, _ in transport.calls] == ["a", "b"]


async def test_fallback_depth_limits_the_chain(autojump_clock: trio.testing.MockClock) -> None:
    proxy, transport = make_proxy(FALLBACKS, {"a": Reply(status=500), "b": Reply(status=502), "c": Reply()})
    proxy.fallback_max_depth = 1
    status, _ = await call(proxy, model="a")
    assert status == 502  # b is the last hop allowed: its answer is relayed as it is
    assert [host for host, _ in transport.calls] == ["a", "b"]


async def test_fallback_never_follows_a_client_error(autojump_clock: trio.testing.MockClock) -> None:
    proxy, transport = make_proxy(FALLBACKS, {"a": Reply(status=400), "b": Reply(), "c": Reply()})
    status, _ = await call(proxy, model="a")
    assert status == 400
    assert [host for host, _ in transport.calls] == ["a"]


async def test_fallback_stops_silently_at_a_model_the_key_may_not_use(
    autojump_clock: trio.testing.MockClock,
) -> None:
    proxy, transport = make_proxy(FALLBACKS, {"a": Reply(refuse=True), "b": Reply(), "c": Reply()})
    proxy.catalog.access = AccessRules(keys={"k": frozenset({"a", "c"})})  # the test key may not use b
    status, body = await call(proxy, model="a")
    assert (status, body["error"]["code"]) == (502, "upstream_unavailable")  # the primary's error
    assert [host for host, _ in transport.calls] == ["a"]


def test_fallback_plan_stops_at_a_runtime_cycle() -> None:
    from voidllm.routing.fallback import fallback_plan
    from voidllm.routing.registry import Model, Upstream

    def model(name: str, fallback: str) -> Model:
        return Model(name, "chat", (), (Upstream(name, "openai", "http://x/v1"),), fallback=fallback)

    a, b, c = model("a", "b"), model("b", "c"), model("c", "a")
    registry = Registry((a, b, c), {"a": a, "b": b, "c": c})
    assert [m.name for m in fallback_plan(a, registry, 10, lambda name: True)] == ["a", "b", "c"]
    assert [m.name for m in fallback_plan(a, registry, 1, lambda name: True)] == ["a", "b"]
    assert [m.name for m in fallback_plan(a, registry, 0, lambda name: True)] == ["a"]


async def test_usage_waits_for_room_only_when_configured(autojump_clock: trio.testing.MockClock) -> None:
    proxy, _ = make_proxy(MODEL.format(extra=""), {"a": Reply(), "b": Reply(), "c": Reply()})
    recorder, receive = open_usage_channel(1)
    proxy.usage = recorder
    await call(proxy)  # fills the channel
    await call(proxy)  # drop_on_full (the default): dropped at once
    assert trio.current_time() == 0.0
    proxy.usage_wait = 3.0
    async with trio.open_nursery() as nursery:

        async def writer_catches_up() -> None:
            await trio.sleep(1)
            await receive.receive()

        nursery.start_soon(writer_catches_up)
        await call(proxy)  # waits until the writer took an event, then queues its own
    assert trio.current_time() == 1.0
    assert receive.statistics().current_buffer_used == 1
