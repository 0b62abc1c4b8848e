"""Issue 15, docs/reference/behaviour.md 1.4: the playground tunnel, ``ANY /api/v1/playground/<rest>``
answered as ``/v1/<rest>`` in process (:mod:`voidllm.web.playground`).

Against a real gateway: a stream reaches the browser token by token (an upstream that sends each piece only
after the client has seen the one before, so a buffering tunnel would hang), with the session cookie (CSRF
required) and with an explicit ``Authorization: Bearer`` key (the API-key override: no CSRF); the models list;
errors in the proxy's envelope; the stream-duration cap; drain tracking; and zero knowledge: a marker sent
through the tunnel is in no log record, no database row and no file.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio

from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway, usage_rows
from tests.test_browser_sessions import Browser, credentials, set_cookies
from tests.test_zero_knowledge import Evidence, Watch, chat_body, watched_gateway
from voidllm.testing.mock_openai import Behaviour, open_mock_upstream
from voidllm.web.playground import capped_proxy, stream_cap

TUNNEL = "/api/v1/playground"
PIECES = ["Hel", "lo ", "from ", "the ", "gate"]


# -- an upstream that streams one piece per release --------------------------------------------------------


@attrs.define(eq=False)
class Gate:
    """Each piece waits for its :meth:`release`; ``requests`` are the bodies the upstream received."""

    pieces: list[str]
    released: list[trio.Event] = attrs.Factory(list)
    requests: list[bytes] = attrs.Factory(list)
    port: int = 0

    def __attrs_post_init__(self) -> None:
        self.released = [trio.Event() for _ in self.pieces]

    def release(self, index: int) -> None:
        self.released[index].set()

    async def handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some()
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += await stream.receive_some()
            self.requests.append(body)
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                b"connection: close\r\n\r\n"
            )
            for index, piece in enumerate(self.pieces):
                await self.released[index].wait()
                await _send_event(stream, _chunk({"content": piece}))
            await _send_event(stream, _chunk({}, finish="stop"))
            await _send_event(stream, b"[DONE]")
            await stream.send_all(b"0\r\n\r\n")


def _chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-gate",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "gpt-gate",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


async def _send_event(stream: trio.SocketStream, data: bytes) -> None:
    event = b"data: " + data + b"\n\n"
    await stream.send_all(b"%x\r\n%s\r\n" % (len(event), event))


@asynccontextmanager
async def open_gate(pieces: list[str]) -> AsyncIterator[Gate]:
    gate = Gate(pieces)
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        gate.port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, gate.handle, listeners)
        yield gate
        nursery.cancel_scope.cancel()


# -- a gateway with the gated model, the demo model and a signed-in browser --------------------------------


@attrs.define
class Playground:
    gw: RunningGateway
    gate: Gate
    browser: Browser


@asynccontextmanager
async def open_playground(dsn: str, settings: str = "") -> AsyncIterator[Playground]:
    async with open_gate(PIECES) as gate:
        models = "models:" + model_yaml("gpt-gate", f"http://127.0.0.1:{gate.port}/v1")
        models += "\n  - name: demo\n    provider: mock\n"
        async with run_gateway(make_config(dsn, models, settings=settings)) as gw:
            no_jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
            async with httpx.AsyncClient(base_url=gw.url, cookies=no_jar, timeout=10) as client:
                signed = await client.post("/api/v1/auth/session", json=credentials(gw))
                cookies = {name: parts[0] for name, parts in set_cookies(signed).items()}
                yield Playground(gw, gate, Browser(client, cookies, gw.url))


@pytest.fixture
async def pg(sqlite_dsn: str) -> AsyncIterator[Playground]:
    async with open_playground(sqlite_dsn) as playground:
        yield playground


def stream_body(model: str = "gpt-gate") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}


async def read_token_by_token(response: httpx.Response, gate: Gate) -> list[Any]:
    """Release one piece, read until the client has it, then release the next; the events seen."""
    events: list[Any] = []
    lines = response.aiter_lines()
    gate.release(0)
    with trio.fail_after(10):  # a tunnel that buffered would never deliver a piece before the next release
        async for line in lines:
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            events.append(data if data == "[DONE]" else orjson.loads(data))
            chunks = [e for e in events if e != "[DONE]" and e["choices"]]
            deltas = [c["choices"][0]["delta"] for c in chunks]
            got = [d["content"] for d in deltas if d.get("content")]
            if got and len(got) < len(PIECES) and not gate.released[len(got)].is_set():
                assert got == PIECES[: len(got)]
                gate.release(len(got))
    return events


async def test_a_stream_arrives_token_by_token_with_the_cookie(pg: Playground) -> None:
    async with pg.browser.client.stream(
        "POST", f"{TUNNEL}/chat/completions", json=stream_body(), headers=_browser_headers(pg.browser)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = await read_token_by_token(response, pg.gate)
    assert events[-1] == "[DONE]"
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e["choices"])
    assert text == "".join(PIECES)
    assert orjson.loads(pg.gate.requests[0])["model"] == "gpt-gate"


async def test_the_bearer_override_needs_no_csrf(pg: Playground) -> None:
    """The playground's API-key override; the key (not the cookie) acts: see the zero-knowledge test's
    usage rows."""
    headers = {"Authorization": f"Bearer {pg.gw.api_key()}", "Cookie": _cookie_header(pg.browser)}
    async with pg.browser.client.stream(
        "POST", f"{TUNNEL}/chat/completions", json=stream_body(), headers=headers
    ) as response:
        assert response.status_code == 200
        events = await read_token_by_token(response, pg.gate)
    assert events[-1] == "[DONE]"


async def test_csrf_is_required_with_the_cookie_and_nothing_reaches_the_upstream(pg: Playground) -> None:
    for headers in (
        {"Cookie": _cookie_header(pg.browser)},
        {"Cookie": _cookie_header(pg.browser), "X-CSRF-Token": "forged"},
        {**_browser_headers(pg.browser), "Origin": "https://evil.example"},
    ):
        response = await pg.browser.client.post(
            f"{TUNNEL}/chat/completions", json=stream_body(), headers=headers
        )
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert error["code"] == "csrf_failed"
        assert error["request_id"] == response.headers["x-request-id"]
    assert pg.gate.requests == []


async def test_models_and_non_streamed_answers_through_the_tunnel(pg: Playground) -> None:
    cookie = {"Cookie": _cookie_header(pg.browser)}
    models = await pg.browser.client.get(f"{TUNNEL}/models", headers=cookie)
    assert models.status_code == 200
    assert [m["id"] for m in models.json()["data"]] == ["demo", "gpt-gate"]
    one = await pg.browser.client.get(f"{TUNNEL}/models/demo", headers=cookie)
    assert one.json()["id"] == "demo"
    chat = await pg.browser.client.post(
        f"{TUNNEL}/chat/completions",
        headers=_browser_headers(pg.browser),
        json={"model": "demo", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat.status_code == 200
    assert chat.json()["system_fingerprint"] == "voidllm-demo"
    embedded = await pg.browser.client.post(
        f"{TUNNEL}/embeddings",
        headers=_browser_headers(pg.browser),
        json={"model": "demo", "input": ["a", "b"]},
    )
    assert embedded.status_code == 200
    assert len(embedded.json()["data"]) == 2


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("POST", "/chat/completions", "browser", 404, "model_not_found"),
        ("POST", "/chat/completions", "none", 401, "unauthorized"),
        ("POST", "/chat/completions", "bad key", 401, "unauthorized"),
        ("GET", "/models", "none", 401, "unauthorized"),
        ("POST", "/nope", "browser", 400, "bad_request"),
        ("GET", "/chat/completions", "browser", 405, "method_not_allowed"),
    ],
)
async def test_errors_come_in_the_proxy_envelope(
    pg: Playground, method: str, path: str, headers: str, status: int, code: str
) -> None:
    sent = {
        "browser": _browser_headers(pg.browser),
        "none": {},
        "bad key": {**_browser_headers(pg.browser), "Authorization": "Bearer vl_uk_nope"},
    }[headers]
    body = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}
    response = await pg.browser.client.request(
        method, TUNNEL + path, headers=sent, json=body if method == "POST" else None
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["request_id"] == response.headers["x-request-id"]


async def test_dot_segments_never_leave_the_proxy(pg: Playground) -> None:
    host, port = pg.gw.url.removeprefix("http://").split(":")
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            request = (
                f"GET {TUNNEL}/../../orgs HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                f"Cookie: {_cookie_header(pg.browser)}\r\n\r\n"
            )
            await stream.send_all(request.encode())
            data = b""
            while chunk := await stream.receive_some():
                data += chunk
    assert data.startswith(b"HTTP/1.1 400"), data[:200]
    assert b'"organizations"' not in data
    assert b'"data"' not in data


async def test_the_tunnel_is_drain_tracked(pg: Playground) -> None:
    pg.gw.state.drain.start_draining()
    response = await pg.browser.client.get(f"{TUNNEL}/models", headers={"Cookie": _cookie_header(pg.browser)})
    assert (response.status_code, response.json()["error"]["code"]) == (503, "service_unavailable")


def test_the_stream_cap_follows_the_reference() -> None:
    assert stream_cap(120.0) == 105.0
    assert stream_cap(15.0) == 7.5
    assert stream_cap(2.0) == 1.0
    assert stream_cap(0.0) == math.inf


async def test_a_tunnelled_stream_is_cut_at_the_cap(sqlite_dsn: str) -> None:
    """write_timeout 2 s: streams through the tunnel end after 1 s with the content-free abort event."""
    yaml_cap = "server:\n  proxy:\n    write_timeout: 2s\n"
    async with open_gate(PIECES) as gate:
        models = "models:" + model_yaml("gpt-gate", f"http://127.0.0.1:{gate.port}/v1")
        async with run_gateway(make_config(sqlite_dsn + ".cap", yaml_cap + models)) as gw:
            no_jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
            async with httpx.AsyncClient(base_url=gw.url, cookies=no_jar, timeout=10) as client:
                headers = {"Authorization": f"Bearer {gw.api_key()}"}
                gate.release(0)  # the first piece only: the upstream then stalls
                with trio.fail_after(10):
                    path = f"{TUNNEL}/chat/completions"
                    response = await client.post(path, json=stream_body(), headers=headers)
    events = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    assert orjson.loads(events[0])["choices"][0]["delta"]["content"] == "Hel"
    assert orjson.loads(events[-1])["error"]["code"] == "stream_incomplete"


def test_the_capped_proxy_shares_everything_but_the_stream_limit() -> None:
    @attrs.frozen
    class Limits:
        max_stream_duration: float

    @attrs.frozen
    class Fake:
        limits: Limits
        keys: object

    keys = object()
    capped = capped_proxy(Fake(Limits(300.0), keys), 120.0)
    assert capped.limits.max_stream_duration == 105.0
    assert capped.keys is keys
    short = Fake(Limits(30.0), keys)
    assert capped_proxy(short, 120.0) is short, "a shorter max_stream_duration stays"
    assert capped_proxy(short, 0.0) is short


# -- zero knowledge ----------------------------------------------------------------------------------------


async def test_a_marker_sent_through_the_playground_is_written_nowhere(
    tmp_path: Path,
    sqlite_dsn: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = f"ZK-{uuid.uuid4().hex}"  # fresh, as tests/test_zero_knowledge.py's marker fixture
    evidence, watch = Evidence(), Watch()
    text = f"{marker} " * 3
    async with open_mock_upstream(Behaviour(completion_text=text, stream_chunks=3)) as upstream:
        models = "models:" + model_yaml("gpt-zk", upstream.base_url)
        async with watched_gateway(tmp_path, sqlite_dsn, models, evidence, capfd, monkeypatch, watch) as gw:
            no_jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
            async with httpx.AsyncClient(base_url=gw.url, cookies=no_jar, timeout=10) as client:
                signed = await client.post("/api/v1/auth/session", json=credentials(gw))
                browser = Browser(client, {n: p[0] for n, p in set_cookies(signed).items()}, gw.url)
                answers = []
                for extra in ({}, {"stream": True}):
                    sent = await client.post(
                        f"{TUNNEL}/chat/completions",
                        json=chat_body(marker, "gpt-zk", **extra),
                        headers=_browser_headers(browser),
                    )
                    answers.append(sent)
                override = {"Authorization": f"Bearer {gw.api_key()}"}
                answers.append(
                    await client.post(
                        f"{TUNNEL}/chat/completions",
                        json=chat_body(marker, "gpt-zk", stream=True),
                        headers=override,
                    )
                )
                answers.append(
                    await client.post(
                        f"{TUNNEL}/embeddings",
                        json={"model": "gpt-zk", "input": [marker]},
                        headers=_browser_headers(browser),
                    )
                )
                refused = await client.post(
                    f"{TUNNEL}/chat/completions",
                    json=chat_body(marker, "gpt-zk"),
                    headers={"Cookie": _cookie_header(browser)},
                )
                assert refused.status_code == 403
                assert marker not in refused.text
                assert [a.status_code for a in answers] == [200, 200, 200, 200]
                assert all(marker in a.text for a in answers[:3]), "the answers themselves carry it"
    assert watch.table_rows["usage_events"] == 4, "the requests were made and recorded (as metadata)"
    evidence.assert_clean(marker)
    rows = await usage_rows("sqlite", sqlite_dsn)
    assert sorted(row["key_type"] for row in rows) == ["session_key"] * 3 + ["user_key"]


def _cookie_header(browser: Browser) -> str:
    return "; ".join(f"{name}={value}" for name, value in browser.cookies.items())


def _browser_headers(browser: Browser) -> dict[str, str]:
    return {"Cookie": _cookie_header(browser), "X-CSRF-Token": browser.csrf, "Origin": browser.origin}
