"""A small Redis client on trio streams: RESP2 commands, a bounded pool, Lua scripts and pub/sub.

Why our own: redis-py offers a synchronous client and an asyncio one, and neither runs under plain trio (the
asyncio client needs an asyncio loop; trio-asyncio costs more than the whole command, ARCHITECTURE.md section
4). The protocol part we need is small: commands go out as RESP2 arrays of bulk strings, and replies are
parsed by ``hiredis.Reader`` (C, incremental: feed it bytes, ``gets()`` returns one reply or ``False``).

What it does:

- :func:`open_redis` parses a ``redis://[user:password@]host[:port][/db]`` (also ``rediss://`` for TLS
  and ``unix:///path?db=N``) URL and yields a :class:`RedisClient` whose pool holds at most ``pool_size``
  connections; a caller waits for a free one (bounded by the timeout).
- Every operation (taking a connection, connecting, writing, reading the reply) is bounded by ``timeout``;
  a socket error, a timeout or a malformed reply raises :class:`RedisUnavailableError` and the connection
  is discarded, never returned to the pool (its protocol state is unknown). A cancelled command discards
  its connection the same way.
- After a failed connect, further connects fail fast for ``RETRY_AFTER`` seconds, so a blackholed server
  does not make every request wait the whole timeout (callers apply their own failure policy at once).
- The same after a command that got no answer in time (a frozen server accepts connections but answers
  nothing): commands fail fast for ``RETRY_AFTER`` seconds, then one command at a time probes the server
  (the others still fail fast for as long as that probe may take) until one succeeds. So a frozen server
  costs one request a timeout per probe, not every request (issue 14's fault run: a frozen Redis cut the
  limited throughput to a tenth).
- An error reply (``-ERR ...``) raises :class:`RedisReplyError`; the connection stays usable.
- :meth:`RedisClient.evalsha` runs a :class:`Script` by digest and falls back to ``EVAL`` on ``NOSCRIPT``
  (a restarted or flushed server), which caches it again.
- :meth:`RedisClient.subscribe` opens a dedicated connection in subscribe mode; the
  :class:`Subscription` yields ``(channel, data)`` and pings an idle server so a dead connection is noticed.

The gauge ``voidllm_redis_up`` is 1 after a successful operation and 0 after a failed one.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import hiredis
import trio
from prometheus_client import Gauge

from voidllm.errors import GatewayError, ServiceUnavailableError
from voidllm.metrics import REGISTRY

__all__ = [
    "RedisClient",
    "RedisError",
    "RedisReplyError",
    "RedisUnavailableError",
    "Script",
    "Subscription",
    "open_redis",
    "serve_redis_client",
]

REDIS_UP = Gauge(
    "voidllm_redis_up",
    "1 while Redis answers, 0 after a failed operation.",
    registry=REGISTRY,
    multiprocess_mode="livemin",  # 0 while any live worker's last operation failed
)

RETRY_AFTER = 0.5
"""Seconds during which connects fail fast after a failed one."""
_IDLE_PING = 5.0
"""A subscription with no traffic for this long sends PING to prove the connection is alive."""

Arg = str | bytes | int | float


class RedisError(GatewayError):
    """Base class of this client's errors."""


class RedisUnavailableError(RedisError, ServiceUnavailableError):
    """Redis could not be reached or did not answer in time (connection discarded)."""


class RedisReplyError(RedisError):
    """Redis answered a command with an error reply (a script error, a wrong type)."""


@attrs.frozen
class Endpoint:
    """Where and how to connect: parsed from the URL, password kept out of ``repr``."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str = ""  # unix socket
    tls: bool = False
    db: int = 0
    username: str = ""
    password: str = attrs.field(default="", repr=False)

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        password = unquote(parts.password or "")
        username = unquote(parts.username or "") if parts.password is not None else ""
        if parts.scheme == "unix":
            db = int(query.get("db", ["0"])[0])
            return cls(path=parts.path, db=db, username=username, password=password)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError("a redis://, rediss:// or unix:// URL is required")
        db_text = parts.path.strip("/") or query.get("db", ["0"])[0]
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            tls=parts.scheme == "rediss",
            db=int(db_text),
            username=username,
            password=password,
        )


@attrs.frozen
class Script:
    """A Lua script and its SHA1 digest (what ``EVALSHA`` takes)."""

    source: str = attrs.field(repr=False)
    sha: str = attrs.field(init=False)

    @sha.default
    def _digest(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()


def pack(args: Sequence[Arg]) -> bytes:
    """One command as a RESP2 array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, float):
            data = repr(arg).encode()
        else:
            data = str(int(arg)).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


@attrs.define(eq=False)
class _Connection:
    stream: trio.abc.Stream
    reader: Any = attrs.field(factory=hiredis.Reader)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def read_reply(self) -> Any:
        """The next reply; an error reply is returned as a ``hiredis.ReplyError`` value, not raised."""
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                raise RedisUnavailableError("malformed reply from redis") from exc
            if reply is not False:
                return reply
            data = await self.stream.receive_some(65536)
            if not data:
                raise RedisUnavailableError("redis closed the connection")
            self.reader.feed(data)

    async def call(self, *args: Arg) -> Any:
        await self.send(pack(args))
        return _checked(await self.read_reply())

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


def _checked(reply: Any) -> Any:
    if isinstance(reply, hiredis.ReplyError):
        raise RedisReplyError(f"redis error reply: {str(reply)[:200]}")  # server text: no request content
    return reply


@attrs.define(eq=False)
class RedisClient:
    """A bounded pool of connections to one Redis server; see the module docstring."""

    endpoint: Endpoint
    timeout: float = 2.0
    pool_size: int = 16
    _idle: list[_Connection] = attrs.field(factory=list, init=False)
    _slots: trio.Semaphore = attrs.field(init=False)
    _down_until: float = attrs.field(default=0.0, init=False)
    _suspect: bool = attrs.field(default=False, init=False)  # the last command timed out: probe one at a time
    _probing_until: float = attrs.field(default=0.0, init=False)  # while a probe may still be running
    _closed: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        self._slots = trio.Semaphore(self.pool_size)

    async def execute(self, *args: Arg) -> Any:
        """Run one command and return its reply.

        Raises:
            RedisUnavailableError: no connection, no answer within the timeout, or a broken reply.
            RedisReplyError: Redis answered with an error.
        """
        return (await self._run([args]))[0]

    async def pipeline(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Send several commands at once and return their replies in order (error replies raise)."""
        return await self._run(commands) if commands else []

    async def evalsha(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """Run ``script`` by digest; on ``NOSCRIPT`` send its source once with ``EVAL``."""
        tail = (len(keys), *keys, *args)
        try:
            return await self.execute("EVALSHA", script.sha, *tail)
        except RedisReplyError as exc:
            if "NOSCRIPT" not in exc.message:
                raise
        return await self.execute("EVAL", script.source, *tail)

    async def publish(self, channel: str, message: bytes | str) -> int:
        """Publish on ``channel``; returns how many subscribers received it."""
        return int(await self.execute("PUBLISH", channel, message))

    @asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[Subscription]:
        """A dedicated connection subscribed to ``channels``, closed on exit."""
        conn = await self._guard(self._connect())
        try:
            subscription = Subscription(conn, self.timeout)
            await subscription.start(channels)
            yield subscription
        finally:
            await conn.aclose()

    async def aclose(self) -> None:
        """Close every idle connection; connections in use are closed when returned."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.aclose()

    async def _run(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        now = trio.current_time()
        if now < self._down_until or now < self._probing_until:
            REDIS_UP.set(0)
            raise RedisUnavailableError("redis did not answer in time (retrying shortly)")
        if self._suspect:
            self._probing_until = now + self.timeout  # this command probes; the others fail fast meanwhile

        async def run() -> list[Any]:
            async with self._slots:
                conn = self._idle.pop() if self._idle else await self._connect()
                try:
                    await conn.send(b"".join(pack(c) for c in commands))
                    replies = [await conn.read_reply() for _ in commands]
                except BaseException:
                    await conn.aclose()
                    raise
                if self._closed:
                    await conn.aclose()
                else:
                    self._idle.append(conn)
            return [_checked(r) for r in replies]

        replies: list[Any] = await self._guard(run())
        if self._suspect:  # answered: the server is back
            self._down_until, self._probing_until, self._suspect = 0.0, 0.0, False
        return replies

    async def _guard(self, work: Any) -> Any:
        """Await ``work`` within the timeout, translating socket errors and keeping ``voidllm_redis_up``."""
        try:
            with trio.fail_after(self.timeout):
                result = await work
        except trio.TooSlowError as exc:
            REDIS_UP.set(0)
            self._down_until, self._suspect = trio.current_time() + RETRY_AFTER, True
            raise RedisUnavailableError("redis did not answer in time") from exc
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            REDIS_UP.set(0)
            raise RedisUnavailableError("redis connection failed") from exc
        except RedisUnavailableError:
            REDIS_UP.set(0)
            raise
        REDIS_UP.set(1)
        return result

    async def _connect(self) -> _Connection:
        if trio.current_time() < self._down_until:
            raise RedisUnavailableError("redis is unreachable (retrying shortly)")
        try:
            conn = _Connection(await self._open_stream())
            if self.endpoint.password:
                auth = (
                    (self.endpoint.username, self.endpoint.password)
                    if self.endpoint.username
                    else (self.endpoint.password,)
                )
                await conn.call("AUTH", *auth)
            if self.endpoint.db:
                await conn.call("SELECT", self.endpoint.db)
        except (OSError, trio.BrokenResourceError, RedisError):
            self._down_until = trio.current_time() + RETRY_AFTER
            raise
        return conn

    async def _open_stream(self) -> trio.abc.Stream:
        ep = self.endpoint
        if ep.path:
            return await trio.open_unix_socket(ep.path)
        stream: trio.abc.Stream = await trio.open_tcp_stream(ep.host, ep.port)
        if ep.tls:
            tls = trio.SSLStream(stream, ssl.create_default_context(), server_hostname=ep.host)
            await tls.do_handshake()
            stream = tls
        return stream


@attrs.define(eq=False)
class Subscription:
    """Messages of the subscribed channels, as ``(channel, data)``; iterate with ``async for``."""

    _conn: _Connection
    _timeout: float
    _pinged: bool = False

    async def start(self, channels: Sequence[str]) -> None:
        with trio.fail_after(self._timeout):
            await self._conn.send(pack(("SUBSCRIBE", *channels)))
            for _ in channels:
                _checked(await self._conn.read_reply())

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> tuple[str, bytes]:
        return await self.receive()

    async def receive(self) -> tuple[str, bytes]:
        """The next published message.

        Raises:
            RedisUnavailableError: the connection broke, or an idle ping went unanswered.
        """
        try:
            while True:
                reply = await self._next_reply()
                if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                    return reply[1].decode(), reply[2]
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            REDIS_UP.set(0)
            raise RedisUnavailableError("redis subscription broke") from exc

    async def _next_reply(self) -> Any:
        conn = self._conn
        while True:
            reply = conn.reader.gets()
            if reply is not False:
                return _checked(reply)
            wait = self._timeout if self._pinged else _IDLE_PING
            with trio.move_on_after(wait):  # a cancelled receive_some loses no data (trio's guarantee)
                data = await conn.stream.receive_some(65536)
                if not data:
                    raise RedisUnavailableError("redis closed the subscription")
                conn.reader.feed(data)
                self._pinged = False
                continue
            if self._pinged:
                REDIS_UP.set(0)
                raise RedisUnavailableError("redis did not answer a ping")
            await conn.send(pack(("PING",)))
            self._pinged = True


@asynccontextmanager
async def open_redis(
    url: str, *, command_timeout: float = 2.0, pool_size: int = 16
) -> AsyncIterator[RedisClient]:
    """A :class:`RedisClient` for ``url``; no connection is made until the first command.

    ``command_timeout`` is the client's bound on each of its operations (the ``timeout`` of the module
    docstring, ``redis.timeout``), a per-operation limit like httpx's, not a deadline for this block.
    """
    client = RedisClient(Endpoint.from_url(url), timeout=command_timeout, pool_size=pool_size)
    try:
        yield client
    finally:
        with trio.move_on_after(command_timeout, shield=True):
            await client.aclose()


async def serve_redis_client(
    *,
    url: str,
    command_timeout: float,
    pool_size: int,
    task_status: trio.TaskStatus[RedisClient] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Own the process's :class:`RedisClient` (a supervised service): hand it out, close it when cancelled."""
    async with open_redis(url, command_timeout=command_timeout, pool_size=pool_size) as client:
        task_status.started(client)
        await trio.sleep_forever()
