"""The trio Redis client against this machine's Redis: commands, pool bound, scripts, pub/sub, failures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import trio

from tests.process import delete_prefix, free_port
from voidllm.redis.client import (
    REDIS_UP,
    Endpoint,
    RedisClient,
    RedisReplyError,
    RedisUnavailableError,
    Script,
    open_redis,
    pack,
)

pytestmark = pytest.mark.redis


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisClient]:
    async with open_redis(redis_url, command_timeout=2, pool_size=4) as client:
        yield client


@pytest.fixture
async def prefix(redis: RedisClient) -> AsyncIterator[str]:
    """A key prefix of this test only; its keys are deleted afterwards."""
    value = f"test:{uuid.uuid4().hex[:12]}:"
    yield value
    await delete_prefix(redis, value)


def test_urls_are_parsed_without_showing_the_password() -> None:
    ep = Endpoint.from_url("redis://user:s%40cret@cache.local:6380/2")
    assert (ep.host, ep.port, ep.db, ep.username, ep.password, ep.tls) == (
        "cache.local",
        6380,
        2,
        "user",
        "s@cret",
        False,
    )
    assert "s@cret" not in repr(ep)
    assert Endpoint.from_url("rediss://:pw@h").tls
    assert Endpoint.from_url("rediss://:pw@h").username == ""
    assert Endpoint.from_url("unix:///run/redis.sock?db=3") == Endpoint(path="/run/redis.sock", db=3)
    assert pack(["SET", b"k", 1, 0.5]) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n$3\r\n0.5\r\n"


async def test_commands_pipeline_and_error_replies(redis: RedisClient, prefix: str) -> None:
    assert await redis.execute("SET", prefix + "a", "1") == b"OK"
    assert await redis.execute("INCRBY", prefix + "a", 41) == 42
    assert await redis.pipeline([("GET", prefix + "a"), ("EXISTS", prefix + "missing")]) == [b"42", 0]
    with pytest.raises(RedisReplyError, match="WRONGTYPE"):
        await redis.execute("LPUSH", prefix + "a", "x")
    assert await redis.execute("GET", prefix + "a") == b"42"  # the connection survived the error reply
    assert REDIS_UP._value.get() == 1


async def test_the_pool_is_bounded_and_reused(redis: RedisClient, prefix: str) -> None:
    async def one(i: int) -> None:
        await redis.execute("INCR", prefix + "n")

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(one, i)
    assert await redis.execute("GET", prefix + "n") == b"50"
    assert len(redis._idle) <= 4
    clients = (await redis.execute("CLIENT", "LIST")).count(b"\n")
    assert clients >= len(redis._idle)


async def test_evalsha_loads_the_script_after_noscript(redis: RedisClient, prefix: str) -> None:
    script = Script(f"-- {prefix}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await redis.execute("SCRIPT", "EXISTS", script.sha) == [0]
    assert await redis.evalsha(script, [prefix + "s"], [5]) == 5
    assert await redis.execute("SCRIPT", "EXISTS", script.sha) == [1]
    assert await redis.evalsha(script, [prefix + "s"], [5]) == 10
    with pytest.raises(RedisReplyError):
        await redis.evalsha(Script("return redis.call('NOPE')"), [], [])


async def test_publish_reaches_a_subscriber(redis: RedisClient, prefix: str) -> None:
    received: list[tuple[str, bytes]] = []
    async with redis.subscribe(prefix + "one", prefix + "two") as subscription:
        assert await redis.publish(prefix + "two", b"hello") == 1
        assert await redis.publish(prefix + "other", b"nobody") == 0
        await redis.publish(prefix + "one", "again")
        with trio.fail_after(2):
            async for message in subscription:
                received.append(message)
                if len(received) == 2:
                    break
    assert received == [(prefix + "two", b"hello"), (prefix + "one", b"again")]


async def test_an_unreachable_server_fails_fast_with_unavailable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_redis(f"redis://127.0.0.1:{free_port()}/0", command_timeout=1) as client:
        with pytest.raises(RedisUnavailableError) as caught:
            await client.execute("PING")
        assert caught.value.status == 503
        assert REDIS_UP._value.get() == 0
        began = trio.current_time()
        with pytest.raises(RedisUnavailableError, match="retrying shortly"):  # no new attempt right away
            await client.execute("PING")
        assert trio.current_time() == began  # no timeout was waited for


async def test_a_silent_server_times_out_and_the_connection_is_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    accepted: list[trio.SocketStream] = []

    async def accept_and_ignore() -> None:
        while True:
            accepted.append(await listener.accept())  # reads nothing, answers nothing

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept_and_ignore)
        async with open_redis(f"redis://127.0.0.1:{port}", command_timeout=0.3) as client:
            began = trio.current_time()
            with pytest.raises(RedisUnavailableError, match="in time"):
                await client.execute("GET", "x")
            assert trio.current_time() - began == pytest.approx(0.3)
            assert client._idle == []
        nursery.cancel_scope.cancel()
    await listener.aclose()


async def test_a_subscription_notices_a_dead_server(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that stops answering: the idle ping goes unanswered and receive() raises."""
    import voidllm.redis.client as client_module

    monkeypatch.setattr(client_module, "_IDLE_PING", 0.2)
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]

    async def fake_redis() -> None:
        stream = await listener.accept()
        await stream.receive_some(1024)  # SUBSCRIBE
        await stream.send_all(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n")
        await trio.sleep_forever()  # then silence, pings included

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fake_redis)
        async with open_redis(f"redis://127.0.0.1:{port}", command_timeout=0.3) as client:
            async with client.subscribe("c") as subscription:
                began = trio.current_time()
                with pytest.raises(RedisUnavailableError, match="ping"):
                    await subscription.receive()
                assert trio.current_time() - began == pytest.approx(
                    0.2 + 0.3
                )  # idle, then the ping's timeout
        nursery.cancel_scope.cancel()
    await listener.aclose()


async def test_a_frozen_server_costs_one_timeout_per_probe_not_one_per_command(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A server that accepts connections but answers nothing (SIGSTOP): after the first timeout, commands
    fail fast; after ``RETRY_AFTER`` one command probes (the rest still fail fast) until the server
    answers."""
    from voidllm.redis.client import RETRY_AFTER

    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    frozen = True
    thawed = trio.Event()

    async def serve(stream: trio.SocketStream) -> None:
        async with stream:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                if frozen:
                    await thawed.wait()
                await stream.send_all(b"+PONG\r\n" * data.count(b"PING"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, serve, [listener])
        async with open_redis(f"redis://127.0.0.1:{port}", command_timeout=1.0) as client:
            began = trio.current_time()
            with pytest.raises(RedisUnavailableError, match="in time"):
                await client.execute("PING")
            assert trio.current_time() - began == pytest.approx(1.0)
            began = trio.current_time()
            with pytest.raises(RedisUnavailableError, match="retrying shortly"):
                await client.execute("PING")  # no wait at all
            assert trio.current_time() == began
            await trio.sleep(RETRY_AFTER)
            waits: list[float] = []

            async def command() -> None:
                start = trio.current_time()
                with pytest.raises(RedisUnavailableError):
                    await client.execute("PING")
                waits.append(trio.current_time() - start)

            async with trio.open_nursery() as probes:
                for _ in range(5):
                    probes.start_soon(command)
            assert sorted(waits) == [0, 0, 0, 0, pytest.approx(1.0)]  # one probe, four failed fast
            frozen = False
            thawed.set()
            await trio.sleep(RETRY_AFTER)
            assert await client.execute("PING") == b"PONG"
            assert await client.execute("PING") == b"PONG"  # back to normal
        nursery.cancel_scope.cancel()
