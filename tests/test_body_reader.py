"""The one request-body reader (voidllm.asgi): size limit (declared and counted), read deadlines, disconnect.

Each case feeds the reader a script of ASGI messages, each arriving after a delay, on trio's autojump clock,
and checks what it returns or raises and at what time.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from voidllm.asgi import BodyReader, ClientDisconnectedError, read_body
from voidllm.errors import BadRequestError, RequestTimeoutError, RequestTooLargeError

LIMIT = 10
TIMEOUT = 30.0
NEVER = 1e9


def _scope(length: str | None = None) -> dict[str, Any]:
    return {"headers": [] if length is None else [(b"content-length", length.encode())]}


def _receive(script: list[tuple[float, dict[str, Any]]]) -> Any:
    """An ASGI ``receive`` that delivers each message of ``script`` after its delay in seconds."""
    messages = iter(script)

    async def receive() -> dict[str, Any]:
        delay, message = next(messages, (NEVER, {}))
        await trio.sleep(delay)
        return message

    return receive


def _part(body: bytes, delay: float = 0.0, more: bool = True) -> tuple[float, dict[str, Any]]:
    return delay, {"type": "http.request", "body": body, "more_body": more}


_GONE = (1.0, {"type": "http.disconnect"})


@pytest.mark.parametrize(
    ("length", "script", "expected", "at"),
    [
        pytest.param(None, [_part(b"hello", more=False)], b"hello", 0.0, id="one message"),
        pytest.param(
            "10", [_part(b"hello"), _part(b"world", 5.0, False)], b"helloworld", 5.0, id="at the limit"
        ),
        pytest.param(None, [_part(b"", more=False)], b"", 0.0, id="empty"),
        pytest.param("11", [_part(b"hello", more=False)], RequestTooLargeError, 0.0, id="declared too large"),
        pytest.param(None, [_part(b"hello"), _part(b"world!", 1.0)], RequestTooLargeError, 1.0, id="counted"),
        pytest.param(
            "5", [_part(b"hell"), _part(b"o world", 1.0)], RequestTooLargeError, 1.0, id="lied length"
        ),
        # every declared byte is here: the server's empty last message is not waited for
        pytest.param("5", [_part(b"hello")], b"hello", 0.0, id="declared length complete"),
        pytest.param("10", [_part(b"hello"), _part(b"world", 2.0)], b"helloworld", 2.0, id="complete in two"),
        pytest.param("0", [], b"", 0.0, id="declared empty"),
        pytest.param("x", [_part(b"hello", more=False)], BadRequestError, 0.0, id="bad length"),
        pytest.param(None, [_part(b"h"), _part(b"e", 20.0)], RequestTimeoutError, TIMEOUT, id="stall"),
        pytest.param(
            None,
            [_part(b"h"), *(_part(b"e", 9.0) for _ in range(8))],
            RequestTimeoutError,
            TIMEOUT,
            id="trickle: each read in time, the whole not",
        ),
        pytest.param(None, [_part(b"hel"), _GONE], ClientDisconnectedError, 1.0, id="disconnect"),
    ],
)
async def test_read_body(
    autojump_clock: trio.abc.Clock, length: str | None, script: list[Any], expected: Any, at: float
) -> None:
    start = trio.current_time()
    receive = _receive(script)
    if isinstance(expected, bytes):
        assert await read_body(_scope(length), receive, limit=LIMIT, read_timeout=TIMEOUT) == expected
    else:
        with pytest.raises(expected):
            await read_body(_scope(length), receive, limit=LIMIT, read_timeout=TIMEOUT)
    assert trio.current_time() - start == at


@pytest.mark.parametrize(
    ("script", "expected", "at"),
    [
        pytest.param(
            [_part(b"h"), *(_part(b"e", 9.0) for _ in range(4)), _part(b"!", 9.0, False)],
            b"heeee!",
            45.0,
            id="a slow stream whose every read is in time",
        ),
        pytest.param([_part(b"h"), _part(b"e", 31.0)], RequestTimeoutError, TIMEOUT, id="one read too late"),
        pytest.param([_part(b"hello"), _part(b"world!", 1.0)], RequestTooLargeError, 1.0, id="counted"),
        pytest.param([_part(b"hel"), _GONE], ClientDisconnectedError, 1.0, id="disconnect"),
    ],
)
async def test_body_reader_next_bounds_each_read(
    autojump_clock: trio.abc.Clock, script: list[Any], expected: Any, at: float
) -> None:
    start = trio.current_time()
    reader = BodyReader.start(_scope(), _receive(script), limit=LIMIT, read_timeout=TIMEOUT)

    async def read_all() -> bytes:
        chunks = []
        while reader.more:
            chunks.append(await reader.next())
        return b"".join(chunks)

    if isinstance(expected, bytes):
        assert await read_all() == expected
    else:
        with pytest.raises(expected):
            await read_all()
    assert trio.current_time() - start == at


async def test_rest_after_next_returns_what_is_left() -> None:
    reader = BodyReader.start(
        _scope("10"), _receive([_part(b"hello"), _part(b"world", more=False)]), limit=LIMIT
    )
    assert (await reader.next(), await reader.rest(), await reader.rest()) == (b"hello", b"world", b"")
    assert (reader.declared, reader.received, reader.more) == (10, 10, False)
