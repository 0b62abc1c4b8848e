"""Issue 7 point 3: the client tags ``X-Source`` and ``X-Project``.

They are validated on the proxy path (400 in the route's own error shape, naming the header and never echoing
the value, before any upstream is contacted), stored on the usage event as sent, and can be grouped by in the
usage API, whose numbers equal the raw rows. Through the real proxy with a mock upstream.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
import trio

from tests.admin_tenancy import API, MODEL, bearer
from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway
from tests.polling import poll_until
from tests.test_usage_api import expected_usage
from voidllm.codec import format_datetime
from voidllm.errors import BadRequestError
from voidllm.proxy.intake import client_tag
from voidllm.store import tables as t
from voidllm.store.ids import utcnow
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream

LONGEST = "a" * 60 + "._:/"  # 64 characters, the limit
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("value", [b"cli", b"my-app", b"sdk@2.1.0", b"team/project:x_y", LONGEST.encode()])
def test_valid_tags_are_kept_as_sent(value: bytes) -> None:
    assert client_tag(value, "X-Source") == value.decode()


def test_an_absent_or_empty_tag_is_none() -> None:
    assert client_tag(None, "X-Source") is None
    assert client_tag(b"", "X-Project") is None


@pytest.mark.parametrize(
    "value",
    [LONGEST.encode() + b"b", b"two words", b"semi;colon", b'quote"', "caf\u00e9".encode(), b"tab\t", b"x\n"],
)
def test_invalid_tags_are_refused_without_echo(value: bytes) -> None:
    with pytest.raises(BadRequestError) as caught:
        client_tag(value, "X-Project")
    assert "X-Project" in caught.value.message
    assert value.decode("latin-1") not in caught.value.message


@attrs.define
class Tagged:
    gw: RunningGateway
    upstream: MockUpstream
    key: str

    async def rows(self) -> list[dict[str, Any]]:
        select = sa.select(t.usage_events).order_by(t.usage_events.c.created_at)
        return await self.gw.state.services.store.run(
            lambda conn: [dict(r) for r in conn.execute(select).mappings()]
        )

    async def wait_rows(self, count: int) -> list[dict[str, Any]]:
        """The usage rows once ``count`` have been written (the writer flushes every 50 ms)."""

        async def written() -> bool:
            return len(await self.rows()) >= count

        with trio.fail_after(10):
            await poll_until(written, interval=0.05)
        return await self.rows()


@pytest.fixture
async def tagged(db_target: tuple[str, str]) -> AsyncIterator[Tagged]:
    driver, dsn = db_target
    async with open_mock_upstream(Behaviour()) as upstream:
        config = make_config(
            dsn,
            "models:" + model_yaml(MODEL, upstream.base_url),
            driver=driver,
            settings="usage:\n  flush_interval: 50ms",
        )
        async with run_gateway(config) as gw:
            yield Tagged(gw, upstream, gw.api_key())


async def test_tags_are_stored_and_groupable(tagged: Tagged) -> None:
    client, auth = tagged.gw.client, bearer(tagged.key)
    sent: list[tuple[str, dict[str, Any], dict[str, str], tuple[str | None, str | None]]] = [
        ("/v1/chat/completions", CHAT, {"X-Source": "cli", "X-Project": "alpha"}, ("cli", "alpha")),
        ("/v1/chat/completions", CHAT, {"X-Source": "cli", "X-Project": "alpha"}, ("cli", "alpha")),
        ("/v1/chat/completions", {**CHAT, "stream": True}, {"X-Source": "web-app"}, ("web-app", None)),
        ("/v1/messages", MESSAGES, {"x-source": "sdk@2.1", "x-project": "team/p:x"}, ("sdk@2.1", "team/p:x")),
        ("/v1/messages", MESSAGES, {"x-api-key": tagged.key, "x-project": LONGEST}, (None, LONGEST)),
        ("/v1/chat/completions", CHAT, {}, (None, None)),
        (
            "/v1/chat/completions",
            CHAT,
            {"X-Source": "", "X-Project": "beta"},
            (None, "beta"),
        ),  # empty = absent
    ]
    for path, body, tags, _ in sent:
        headers = tags if "x-api-key" in tags else {**auth, **tags}
        response = await client.post(path, headers=headers, json=body)
        assert response.status_code == 200, (path, tags, response.text)
    rows = await tagged.wait_rows(len(sent))
    assert len(rows) == len(sent)
    assert Counter((row["source"], row["project"]) for row in rows) == Counter(
        expected for *_, expected in sent
    )
    now = utcnow()
    window = {
        "from": format_datetime(now - timedelta(hours=1)),
        "to": format_datetime(now + timedelta(hours=1)),
    }
    for path in ("/usage", "/usage/me"):
        for group_by in ("source", "project"):
            response = await client.get(API + path, headers=auth, params={**window, "group_by": group_by})
            assert response.status_code == 200, response.text
            got = {p.pop("group_key"): p for p in response.json()["data"]}
            assert all(p.pop("group_label") == key for key, p in got.items())
            assert got == expected_usage(rows, group_by), (path, group_by)


@pytest.mark.parametrize("db_target", ["sqlite"], indirect=True)
async def test_invalid_tags_are_refused_before_the_upstream(tagged: Tagged) -> None:
    client, auth = tagged.gw.client, bearer(tagged.key)
    marker = "zk-marker-4711"
    bad = [f"{marker} with spaces", f"{marker};x", marker + "x" * 60]
    for header in ("X-Source", "X-Project"):
        for value in bad:
            response = await client.post("/v1/chat/completions", headers={**auth, header: value}, json=CHAT)
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert set(response.json()) == {"error"}
            assert error["code"] == "bad_request"
            assert error["request_id"] == response.headers["x-request-id"]
            assert header in error["message"]
            assert marker not in response.text

            response = await client.post("/v1/messages", headers={**auth, header: value}, json=MESSAGES)
            assert response.status_code == 400, response.text
            body = response.json()
            assert body["type"] == "error"
            assert body["error"]["type"] == "invalid_request_error"
            assert header in body["error"]["message"]
            assert marker not in response.text
    response = await client.post("/v1/chat/completions", headers={"X-Source": "bad value"}, json=CHAT)
    assert response.status_code == 401, "authentication comes first"
    assert tagged.upstream.requests == []
    response = await client.post("/v1/chat/completions", headers={**auth, "X-Source": "ok"}, json=CHAT)
    assert response.status_code == 200
    rows = await tagged.wait_rows(1)
    assert [(row["source"], row["project"]) for row in rows] == [("ok", None)], (
        "refused requests record nothing"
    )
