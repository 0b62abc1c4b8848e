"""Zero knowledge, proven (ARCHITECTURE.md section 5).

A unique marker goes through every path the data plane has: the system prompt, user messages, a tool
definition, tool-call arguments, a tool result, the upstream's completion (whole and streamed, with and
without ``stream_options.include_usage``), text completions, embeddings, the Responses API, a multipart
transcription's file bytes and ``prompt`` field, an upstream 400 that echoes the request (which must reach
the client), upstream failures (a dropped stream, a hang past the model's timeout, a refused connection,
a client that leaves mid-stream) and requests the gateway refuses itself (whose answers must not quote it).
With Code Mode on (``/api/v1/mcp``), the marker is in a script's source, its tool calls' arguments and hence
their results (upstream and built-in), its console output, a structured result whose output type is learned
(the stored schema holds the keys, never the values), and in scripts that fail: a thrown error, syntax and
runtime errors quoting it, a tool error, a tool timeout, a script timeout, running out of memory, a refused
``import()``, an oversized script, and a client that leaves while its script runs.

Then everything the gateway wrote is searched for it: every log record at every level the gateway emits
(the configured JSON stream at ``debug``, and a catch-all handler that sees each record's message, args,
extras and formatted exception before any formatter or handler filter), every row of every SQLite table,
the raw bytes of every file under the test directory (the database, its ``-wal`` and ``-shm``, taken both
while the gateway runs and after it stopped, and temporary files, whose directory is redirected there: the
Code Mode compile cache, which must hold compiled QuickJS only, is among them),
``/metrics``, whatever reached file descriptors 1 and 2, and every byte of the trace spans the gateway
exported (tracing is on, to a real OTLP receiver). The marker is searched as bytes, as its hex
part alone (upper and lower case), as UTF-16 and as base64 in the three alignments, so a log line that
escapes or encodes it is caught as well.

A negative control plants the marker once in each of those channels and checks that the same search finds
it, so the clean result of the real test means something. One test runs the real ``voidllm serve``
process and searches its stdout, stderr and data directory. The last two do it with the prompt guard on:
markers shaped like findings (a fresh value of every kind the guard detects, in the last one) in flag,
redact and block modes, with the usage rows and metrics showing that the guard saw each of them.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio
from prometheus_client import Counter

from tests import guard_samples
from tests.admin_tenancy import API, admin, create_key, default_org
from tests.gateway import (
    ADMIN_KEY,
    ENCRYPTION_KEY,
    RunningGateway,
    make_config,
    metric_sample,
    model_yaml,
    run_gateway,
)
from tests.mcp_calls import (
    STATELESS,
    initialize_request,
    stateless_headers,
    stateless_meta,
    stateless_request,
)
from tests.otlp_receiver import otel_settings
from tests.polling import poll_until
from voidllm import logs
from voidllm.guard import detect, kinds
from voidllm.metrics import REGISTRY
from voidllm.testing.mock_mcp import MockMcp, open_mock_mcp
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream
from voidllm.testing.otlp_sink import open_otlp_sink

CHUNKS = 3  # streamed pieces of the completion; each piece holds the whole marker
MAX_BODY = 64 * 1024


# ------------------------------------------------------------------------------------------- the search


@pytest.fixture
def marker() -> str:
    """Fresh for every test run, so nothing left over from an earlier run can be mistaken for a leak."""
    return f"ZK-{uuid.uuid4().hex}"


def needles(marker: str) -> dict[str, bytes]:
    """The byte strings that betray ``marker``: as it is, its hex part, UTF-16, base64 at each alignment."""
    raw = marker.encode()
    hex_part = marker.removeprefix("ZK-")
    found = {
        "plain": raw,
        "hex": hex_part.encode(),
        "HEX": hex_part.upper().encode(),
        "utf-16-le": marker.encode("utf-16-le"),
        "utf-16-be": marker.encode("utf-16-be"),
    }
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        found[f"base64+{shift}"] = encoded[
            4 if shift else 0 : -4
        ]  # only the groups made of marker bytes alone
    return found


@attrs.define
class Evidence:
    """Everything the gateway wrote, by where it was found."""

    sources: dict[str, bytes] = attrs.Factory(dict)

    def add(self, name: str, content: str | bytes) -> None:
        data = content if isinstance(content, bytes) else content.encode("utf-8", "backslashreplace")
        self.sources[name] = self.sources.get(name, b"") + data

    def add_tree(self, root: Path, label: str) -> None:
        """The raw bytes of every file under ``root``."""
        for path in sorted(root.rglob("*")):
            try:
                if path.is_file() and not path.is_symlink():
                    self.add(f"{label}{path.relative_to(root)}", path.read_bytes())
            except FileNotFoundError:  # a -wal or -shm removed while we walked
                continue

    def hits(self, marker: str) -> dict[str, str]:
        """Source name -> where the marker was found in it, with some context."""
        found: dict[str, str] = {}
        for name, data in self.sources.items():
            for form, needle in needles(marker).items():
                at = data.find(needle)
                if at >= 0:
                    context = data[max(0, at - 300) : at + len(needle) + 300]
                    found[name] = f"as {form} at byte {at}: ...{context!r}..."
                    break
        return found

    def assert_clean(self, marker: str) -> None:
        hits = self.hits(marker)
        report = "\n".join(f"- {name}: {where}" for name, where in hits.items())
        assert not hits, f"zero knowledge violated, the marker {marker} was written to:\n{report}"


class CatchAll(logging.Handler):
    """Records every log record in full: message, msg, args, each attribute (the extras), the exception."""

    def __init__(self) -> None:
        super().__init__(level=1)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        parts = [f"{record.levelname} {record.name}"]
        try:
            parts.append(record.getMessage())
        except Exception as exc:  # a bad format string must not hide the args
            parts.append(f"<getMessage failed: {exc!r}>")
        parts += [repr(record.msg), repr(record.args)]
        parts += [f"{key}={_safe_repr(value)}" for key, value in vars(record).items()]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append("".join(traceback.format_exception(record.exc_info[1])))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        self.lines.append("\n".join(parts))


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<repr failed: {exc!r}>"


@contextmanager
def captured_logs(evidence: Evidence, *, every_level: bool = False) -> Iterator[None]:
    """Logging as ``voidllm serve`` sets it up at ``debug`` (into a buffer), plus :class:`CatchAll`.

    Everything it changes is restored afterwards.

    With ``every_level``, every logger (libraries included, whatever ``configure_logging`` holds them at) is
    then opened down to level 1, so the catch-all also sees the records no level would ever let out.
    """
    touched = ["", "voidllm", *logs._QUIET, *logging.Logger.manager.loggerDict]
    levels = {name: logging.getLogger(name).level for name in touched}
    root = logging.getLogger()
    handlers = list(root.handlers)
    stream = io.StringIO()
    catch_all = CatchAll()
    logs.configure_logging("debug", "json", stream=stream)
    if every_level:
        for name in touched:
            logging.getLogger(name).setLevel(1)
    root.addHandler(catch_all)
    isolated = [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    for logger in isolated:
        logger.addHandler(catch_all)
    try:
        yield
    finally:
        for logger in isolated:
            logger.removeHandler(catch_all)
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        evidence.add("log stream (json, debug)", stream.getvalue())
        evidence.add("log records (catch-all handler)", "\n\n".join(catch_all.lines))


def dump_sqlite(path: Path) -> tuple[str, bytes, dict[str, int]]:
    """Every row of every table as text, the raw bytes of every blob, and the row count per table."""
    text: list[str] = []
    blobs: list[bytes] = []
    counts: dict[str, int] = {}
    with closing(sqlite3.connect(path)) as conn:
        schema = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
        text += [repr(row) for row in schema]
        names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
        for (table,) in names:
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            counts[table] = len(rows)
            text.append(f"-- {table}: {len(rows)} rows")
            for row in rows:
                text.append(repr(row))
                blobs += [value for value in row if isinstance(value, bytes)]
    return "\n".join(text), b"\n".join(blobs), counts


def learned_shapes(path: Path) -> dict[str, Any]:
    """Tool name -> its learned output schema, from the ``output_schemas`` table."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT tool_name, json_schema FROM output_schemas").fetchall()
    return {tool: orjson.loads(schema) for tool, schema in rows}


@attrs.define
class Watch:
    """What :func:`watched_gateway` learned besides the evidence."""

    table_rows: dict[str, int] = attrs.Factory(dict)
    log_text: str = ""


@asynccontextmanager
async def watched_gateway(
    tmp_path: Path,
    dsn: str,
    yaml_text: str,
    evidence: Evidence,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    watch: Watch,
    *,
    every_level: bool = False,
    settings: str = "",
) -> AsyncIterator[RunningGateway]:
    """Run a gateway in-process with everything it writes captured into ``evidence``.

    ``/metrics`` and the data directory are taken just before shutdown, the logs around the whole life of
    the gateway, the files and tables after it stopped (the usage writer has flushed by then).
    """
    data_dir = Path(dsn).parent
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))
    capfd.readouterr()  # what was printed before the gateway started is not its output
    with captured_logs(evidence, every_level=every_level):
        async with run_gateway(make_config(dsn, yaml_text, settings=settings)) as gw:
            yield gw
            metrics = await gw.client.get("/metrics")
            assert metrics.status_code == 200
            evidence.add("/metrics", metrics.content)
            evidence.add_tree(data_dir, "data dir while running: ")
        evidence.add("bootstrap banner", gw.banner.getvalue())
    out, err = capfd.readouterr()
    evidence.add("fd 1 (stdout)", out)
    evidence.add("fd 2 (stderr)", err)
    evidence.add_tree(tmp_path, "after shutdown: ")
    tables, blobs, watch.table_rows = dump_sqlite(Path(dsn))
    evidence.add("sqlite tables", tables)
    evidence.add("sqlite blobs", blobs)
    watch.log_text = evidence.sources["log stream (json, debug)"].decode()


# ---------------------------------------------------------------------------------------- the requests


def completion_text(marker: str, pieces: int = CHUNKS) -> str:
    """Split by the mock into ``pieces`` equal parts, each part is ``marker + " "``: every chunk holds it."""
    return f"{marker} " * pieces


def chat_body(marker: str, model: str, **extra: Any) -> dict[str, Any]:
    """A chat request with the marker in the system prompt, user messages, a tool, its arguments and
    result."""
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": f"You guard the secret {marker}."},
            {"role": "user", "content": f"Tell me about {marker}, please."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_zk",
                        "type": "function",
                        "function": {
                            "name": "lookup",
                            "arguments": json.dumps({"query": marker, "depth": 2}),
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_zk", "content": f"lookup result: {marker}"},
            {"role": "user", "content": [{"type": "text", "text": f"And {marker} again."}]},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": f"Looks things up, for instance {marker}.",
                    "parameters": {
                        "type": "object",
                        "properties": {"query": {"type": "string", "description": marker}},
                    },
                },
            }
        ],
        **extra,
    }


def transcription_form(marker: str, model: str | None) -> dict[str, Any]:
    audio = b"RIFF\x00\x00\x00\x00WAVEfmt " + marker.encode() + bytes(range(256)) * 8 + marker.encode()
    data = {"model": model} if model is not None else {}
    return {
        "data": {**data, "prompt": f"Vocabulary: {marker}", "language": "en"},
        "files": {"file": ("zk.wav", audio, "audio/wav")},
    }


def upstream_behaviours(marker: str) -> dict[str, Behaviour]:
    return {
        "gpt-echo": Behaviour(fail="echo_400"),
        "gpt-echo5": Behaviour(fail="echo_500"),
        "gpt-echo5-fb": Behaviour(fail="echo_500"),
        "gpt-drop": Behaviour(
            completion_text=completion_text(marker, 4), stream_chunks=4, fail="drop_mid_stream"
        ),
        "gpt-hang": Behaviour(fail="hang"),
        "gpt-trickle": Behaviour(
            completion_text=completion_text(marker, 20), stream_chunks=20, chunk_interval=0.05
        ),
    }


def models_yaml(base_url: str, mcp_url: str | None = None) -> str:
    text = (
        f"server:\n  proxy:\n    max_request_body: {MAX_BODY}\nmodels:"
        + model_yaml("gpt-zk", base_url, aliases="[zk-alias]")
        + model_yaml("gpt-echo", base_url)
        + model_yaml("gpt-echo5", base_url)
        + model_yaml("gpt-echo5-fb", base_url, extra="    fallback: gpt-zk\n")
        + model_yaml("gpt-drop", base_url)
        + model_yaml("gpt-hang", base_url, extra="    timeout: 300ms")
        + model_yaml("gpt-trickle", base_url)
        + model_yaml("gpt-down", "http://127.0.0.1:9/v1")
    )
    if mcp_url is not None:
        text += f"\nmcp_servers:\n  - {{name: ZK, alias: zk, url: '{mcp_url}'}}\n"
    return text


# Bounds, not measures: with every logger at level 1 on a loaded machine, a stateless call (an upstream
# session opened, then the call) took longer than 500 ms, and a script longer than 1 s. The slow tool (30 s)
# still outlasts call_timeout, and a looping script still outlasts the script's timeout.
MCP_SETTINGS = """
mcp:
  allow_private_urls: true
  call_timeout: 2s
  code_mode:
    enabled: true
    timeout: 5s
    pool_size: 2
"""


def auth(gw: RunningGateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.api_key()}"}


async def post_stream(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any
) -> httpx.Response:
    async with client.stream("POST", path, headers=headers, json=body) as response:
        await response.aread()
    return response


def sse_data(raw: bytes) -> list[Any]:
    return [orjson.loads(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: {")]


async def successful_requests(gw: RunningGateway, mock: MockUpstream, marker: str) -> int:
    """Every proxied path on success; each answer carries the marker back. Returns the requests sent."""
    client, headers = gw.client, auth(gw)
    mk = marker.encode()

    # non-streaming chat, by an alias (so the body is re-serialised on its way)
    chat = await client.post("/v1/chat/completions", headers=headers, json=chat_body(marker, "zk-alias"))
    assert chat.status_code == 200, chat.text
    assert marker in chat.json()["choices"][0]["message"]["content"]
    sent = mock.requests[-1].json()
    assert sent["model"] == "gpt-zk"
    assert marker in sent["tools"][0]["function"]["description"]
    assert marker in sent["messages"][2]["tool_calls"][0]["function"]["arguments"]

    # streaming chat without usage (the gateway injects include_usage, then strips the usage chunk)
    plain = await post_stream(
        client, "/v1/chat/completions", headers, chat_body(marker, "gpt-zk", stream=True)
    )
    assert plain.status_code == 200
    assert plain.content.endswith(b"data: [DONE]\n\n")
    assert plain.content.count(mk) == CHUNKS
    assert b'"usage"' not in plain.content
    assert mock.requests[-1].json()["stream_options"] == {"include_usage": True}

    # streaming chat that asks for usage
    body = chat_body(marker, "gpt-zk", stream=True, stream_options={"include_usage": True})
    usage = await post_stream(client, "/v1/chat/completions", headers, body)
    assert usage.status_code == 200
    assert usage.content.count(mk) == CHUNKS
    assert sse_data(usage.content)[-1]["usage"]["total_tokens"] == 18

    # text completions, whole and streamed
    completion = await client.post(
        "/v1/completions", headers=headers, json={"model": "gpt-zk", "prompt": marker}
    )
    assert completion.status_code == 200
    assert marker in completion.json()["choices"][0]["text"]
    streamed = await post_stream(
        client, "/v1/completions", headers, {"model": "gpt-zk", "prompt": [marker], "stream": True}
    )
    assert streamed.status_code == 200
    assert streamed.content.count(mk) == CHUNKS

    # embeddings
    embeddings = await client.post(
        "/v1/embeddings", headers=headers, json={"model": "gpt-zk", "input": [marker, f"more {marker}"]}
    )
    assert embeddings.status_code == 200
    assert len(embeddings.json()["data"]) == 2
    assert marker in mock.requests[-1].json()["input"][0]

    # the Responses API, whole and streamed
    response = await client.post(
        "/v1/responses", headers=headers, json={"model": "gpt-zk", "input": marker, "instructions": marker}
    )
    assert response.status_code == 200
    assert mk in response.content
    responses_stream = await post_stream(
        client, "/v1/responses", headers, {"model": "gpt-zk", "input": marker, "stream": True}
    )
    assert responses_stream.status_code == 200
    assert mk in responses_stream.content

    # a multipart transcription: the marker in the file bytes and in the prompt field
    transcription = await client.post(
        "/v1/audio/transcriptions", headers=headers, **transcription_form(marker, "zk-alias")
    )
    assert transcription.status_code == 200
    assert marker in transcription.json()["text"]
    received = mock.requests[-1]
    assert received.form["model"] == "gpt-zk"
    assert marker in received.form["prompt"]
    assert received.file_bytes > 2 * len(mk)
    return 9


async def upstream_failures(gw: RunningGateway, mock: MockUpstream, marker: str) -> int:
    """Upstream errors and broken exchanges. Returns the requests sent."""
    client, headers = gw.client, auth(gw)
    mk = marker.encode()

    # an upstream 400 quoting the request: the client gets it as it is
    for body in (chat_body(marker, "gpt-echo"), chat_body(marker, "gpt-echo", stream=True)):
        echoed = await client.post("/v1/chat/completions", headers=headers, json=body)
        assert echoed.status_code == 400
        assert mk in echoed.content
        assert marker in echoed.json()["error"]["message"]
    echoed = await client.post("/v1/embeddings", headers=headers, json={"model": "gpt-echo", "input": marker})
    assert echoed.status_code == 400
    assert mk in echoed.content
    form = transcription_form(marker, "gpt-echo")
    echoed = await client.post("/v1/audio/transcriptions", headers=headers, **form)
    assert echoed.status_code == 400
    assert echoed.content.count(mk) >= 3

    # an upstream failure whose error body quotes the request: relayed as it is when it is the last
    # candidate; drained and left for the fallback model otherwise (both are incidents, metadata only)
    failed = await client.post("/v1/chat/completions", headers=headers, json=chat_body(marker, "gpt-echo5"))
    assert failed.status_code == 500
    assert mk in failed.content
    body = chat_body(marker, "gpt-echo5-fb")
    fell_back = await client.post("/v1/chat/completions", headers=headers, json=body)
    assert fell_back.status_code == 200

    # a stream the upstream drops half way: what came is relayed, then one stream_incomplete event
    body = chat_body(marker, "gpt-drop", stream=True)
    dropped = await post_stream(client, "/v1/chat/completions", headers, body)
    assert dropped.status_code == 200
    assert mk in dropped.content
    assert b"stream_incomplete" in dropped.content

    # no answer within the model's timeout; an upstream that refuses the connection
    hung = await client.post("/v1/chat/completions", headers=headers, json=chat_body(marker, "gpt-hang"))
    assert hung.status_code == 504
    assert mk not in hung.content
    down = await client.post("/v1/chat/completions", headers=headers, json=chat_body(marker, "gpt-down"))
    assert down.status_code == 502
    assert mk not in down.content

    # a client that leaves mid-stream
    closed_before = len(mock.client_closed)
    async with client.stream(
        "POST", "/v1/chat/completions", headers=headers, json=chat_body(marker, "gpt-trickle", stream=True)
    ) as trickle:
        async for chunk in trickle.aiter_bytes():
            if mk in chunk:
                break
    with trio.fail_after(3):
        await mock.wait_client_closed(closed_before + 1)
    return 10


async def refused_requests(gw: RunningGateway, mock: MockUpstream, marker: str) -> None:
    """Requests the gateway answers itself: its answers never quote the request."""
    client, headers = gw.client, auth(gw)
    mk = marker.encode()
    padding = (f" {marker} " * (MAX_BODY // len(marker) + 10)).encode()
    before = len(mock.requests)

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b'{"model":"gpt-zk","prompt":"' + padding[:10_000] + b'"}'

    json_headers = {**headers, "Content-Type": "application/json"}
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("unknown model", "/v1/chat/completions", {"json": chat_body(marker, "no-such-model")}, 404),
        (
            "invalid JSON",
            "/v1/chat/completions",
            {
                "content": b'{"model": "gpt-zk", "messages": [{"role": "user", "content": "' + mk + b'"',
                "headers": json_headers,
            },
            400,
        ),
        ("not an object", "/v1/chat/completions", {"json": [marker]}, 400),
        (
            "no model",
            "/v1/chat/completions",
            {"json": {"messages": [{"role": "user", "content": marker}]}},
            400,
        ),
        ("model not a string", "/v1/embeddings", {"json": {"model": 7, "input": marker}}, 400),
        (
            "too large, declared",
            "/v1/chat/completions",
            {"content": b'{"model":"gpt-zk","prompt":"' + padding + b'"}', "headers": json_headers},
            413,
        ),
        ("too large, chunked", "/v1/completions", {"content": chunked(), "headers": json_headers}, 413),
        ("multipart without a model", "/v1/audio/transcriptions", transcription_form(marker, None), 400),
        (
            "multipart too large",
            "/v1/audio/transcriptions",
            {
                "data": {"model": "gpt-zk", "prompt": marker},
                "files": {"file": ("zk.wav", padding, "audio/wav")},
            },
            413,
        ),
        (
            "multipart without a boundary",
            "/v1/audio/transcriptions",
            {"content": b"--x\r\n" + mk, "headers": {**headers, "Content-Type": "multipart/form-data"}},
            400,
        ),
        ("unsupported endpoint", "/v1/zk/nowhere", {"json": chat_body(marker, "gpt-zk")}, 400),
        ("outside /v1", "/zk", {"json": chat_body(marker, "gpt-zk")}, 404),
    ]
    for name, path, kwargs, status in cases:
        kwargs = {"headers": headers, **kwargs}
        answer = await client.post(path, **kwargs)
        assert answer.status_code == status, (name, answer.status_code, answer.text)
        assert mk not in answer.content, name
        assert marker not in str(answer.headers), name
    for bad in ({"Authorization": "Bearer vl_uk_" + "1" * 48}, {}):
        answer = await client.post("/v1/chat/completions", headers=bad, json=chat_body(marker, "gpt-zk"))
        assert answer.status_code == 401
        assert mk not in answer.content
    assert len(mock.requests) == before, "a refused request reached the upstream"

    # a second model field after the file: refused while the body already streams upstream
    form = (
        b'--zkb\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-zk\r\n'
        b'--zkb\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n' + mk + b"\r\n"
        b'--zkb\r\nContent-Disposition: form-data; name="model"\r\n\r\n' + mk + b"\r\n"
        b"--zkb--\r\n"
    )
    answer = await client.post(
        "/v1/audio/transcriptions",
        content=form,
        headers={**headers, "Content-Type": "multipart/form-data; boundary=zkb"},
    )
    assert answer.status_code >= 400
    assert mk not in answer.content


@contextmanager
def upstream_mcp_logs_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The mock upstream MCP server (the SDK's server side on starlette) runs in this process and logs tool
    errors and SSE chunks with their text; those are the upstream's logs, not the gateway's (which imports
    neither the SDK nor starlette)."""
    upstream = ("mcp.server", "sse_starlette", "starlette")
    names = [
        name
        for name in logging.Logger.manager.loggerDict
        if name == "mcp" or any(name == u or name.startswith(u + ".") for u in upstream)
    ]
    with monkeypatch.context() as patch:
        for name in names:
            patch.setattr(logging.getLogger(name), "disabled", True)
        yield


async def mcp_requests(gw: RunningGateway, mcp: MockMcp, marker: str) -> int:
    """Proxied MCP tool calls (/api/v1/mcp/zk) with the marker as argument and in the results, a tool error, a
    timeout, a notification, and upstream progress and log notifications relayed to the client, in both
    protocol eras. Returns the tool calls sent."""
    client, mk, path = gw.client, marker.encode(), "/api/v1/mcp/zk"
    base = {**auth(gw), "Accept": "application/json, text/event-stream"}
    opened = await client.post(path, headers=base, json=initialize_request(client="zk"))
    assert opened.status_code == 200, opened.text
    session = {**base, "Mcp-Session-Id": opened.headers["mcp-session-id"]}

    def call(name: str, id: int, **arguments: Any) -> dict[str, Any]:
        params = {"name": name, "arguments": arguments}
        return {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}

    echoed = await client.post(path, headers=session, json=call("echo", 2, text=marker))
    assert echoed.status_code == 200, echoed.text
    assert mk in echoed.content, echoed.text
    failed = await client.post(path, headers=session, json=call("fail", 3, reason=marker))
    assert failed.json()["result"]["isError"] is True
    assert mk in failed.content
    slow = await client.post(path, headers=session, json=call("slow", 4, seconds=30, note=marker))
    assert slow.status_code == 502
    assert mk not in slow.content
    progress = call("progress", 6, steps=2, note=marker)
    progress["params"]["_meta"] = {"progressToken": "zk-progress"}
    relayed = await client.post(path, headers=session, json=progress)
    assert relayed.headers["content-type"] == "text/event-stream", relayed.text
    assert relayed.content.count(mk) == 4, relayed.text  # two progress messages, two log messages
    assert b'"notifications/progress"' in relayed.content
    cancelled = {"requestId": 4, "reason": marker}
    note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancelled}
    assert (await client.post(path, headers=session, json=note)).status_code == 202
    modern = {**auth(gw), **stateless_headers("tools/call", "echo", accept=base["Accept"])}
    stateless = call("echo", 5, text=marker)
    stateless["params"]["_meta"] = stateless_meta("zk")
    answer = await client.post(path, headers=modern, json=stateless)
    assert answer.status_code == 200, answer.text
    assert mk in answer.content, answer.text
    assert (await client.delete(path, headers=session)).status_code == 204
    assert len(mcp.rpc("tools/call")) >= 5, "the calls reached the upstream MCP server"
    return 5


CODE_MODE_PATH = "/api/v1/mcp"


def orchestration_script(marker: str) -> str:
    """A script with the marker in its source (a comment, a string literal, a property name it calls), in the
    arguments and so in the results of tool calls, in console output, in a caught tool error and in the
    values (never the keys) of a structured result whose output type the gateway learns."""
    return f"""
        // the comment holds {marker}
        const secret = "{marker}";
        const echoed = await tools.zk.echo({{text: secret}});
        const shape = {{
            label: secret, items: [{{value: secret, rank: 1}}], nested: {{deep: secret}}, ok: true,
        }};
        const shaped = await tools.zk.chatty({{text: JSON.stringify(shape)}});
        const [again, progressed] = await Promise.all([
            tools.zk.echo({{text: "again " + secret}}),
            tools.zk.progress({{steps: 2, note: secret}}),
        ]);
        console.log("log", secret);
        console.info({{info: secret}});
        console.debug(secret);
        console.warn([secret]);
        console.error("error " + secret);
        const caught = [];
        for (const call of [
            () => tools.zk.fail({{reason: secret}}),
            () => tools.zk[secret]({{text: secret}}),
            () => tools[secret].echo({{text: secret}}),
            () => tools.zk.echo(secret),
        ]) {{
            try {{ await call(); caught.push("no error"); }} catch (e) {{ caught.push(e.message); }}
        }}
        return {{echoed: echoed.text, shaped, again: again.text, progressed, caught}};
    """


def builtin_script(marker: str) -> str:
    """The built-in ``voidllm`` tools (run in-process) with the marker in their arguments and an argument's
    name; each call is an ``mcp_tool_calls`` row. (``create_key`` is left out: storing the name it is given
    is what it is for.)"""
    return f"""
        const secret = "{marker}";
        const out = [];
        for (const call of [
            () => tools.voidllm.get_model_health({{model: secret}}),
            () => tools.voidllm.list_deployments({{model_id: secret}}),
            () => tools.voidllm.get_usage({{from: secret, group_by: secret}}),
            () => tools.voidllm.list_models({{[secret]: secret}}),
        ]) {{
            try {{ out.push(await call()); }} catch (e) {{ out.push(e.message); }}
        }}
        return out;
    """


BUILTIN_CALLS = 4


def failing_scripts(marker: str) -> list[tuple[str, str]]:
    """Scripts that fail, holding the marker, with a text the error answer must contain (the client gets its
    script's own words back; a limit's answer is the gateway's fixed text)."""
    name = marker.replace("-", "_")  # an identifier; the search finds its hex part
    hex_part = marker.removeprefix("ZK-")
    return [
        (f"throw new Error('{marker}')", f"Error: {marker}"),
        (f"throw '{marker}'", marker),
        (f"class Hidden {{ peek() {{ return this.#{name}; }} }} // {marker}", hex_part),
        (f"return {name} + '{marker}'", hex_part),
        (f"const s = '{marker}'; return s.no.such.thing", "TypeError"),
        (f"await tools.zk.fail({{reason: '{marker}'}})", f"Error executing tool fail: {marker}"),
        (f"await tools.zk.slow({{seconds: 30, note: '{marker}'}})", "Error"),
        (f"const s = '{marker}'; while (true) {{}}", "ran out of time"),
        (
            f"const held = []; while (true) held.push('{marker}' + held.length, new Float64Array(1 << 17))",
            "ran out of memory",  # typed arrays fill the limit long before the deadline, even when busy
        ),
        (f"return await import('{marker}')", "import()"),
        (f"// {marker}\n" + "x" * (256 * 1024), "larger than"),
    ]


async def cancelled_executions(client: httpx.AsyncClient) -> float:
    """``voidllm_code_mode_executions_total{status="cancelled"}`` as ``/metrics`` shows it (0 when absent)."""
    metrics = (await client.get("/metrics")).text
    found = re.search(r'^voidllm_code_mode_executions_total\{status="cancelled"\} (\S+)$', metrics, re.M)
    return float(found[1]) if found else 0.0


async def codemode_requests(
    client: httpx.AsyncClient, headers: dict[str, str], mcp: MockMcp, marker: str
) -> int:
    """Code Mode (/api/v1/mcp): ``search_tools`` for the marker, a script that orchestrates the upstream's
    tools with the marker everywhere, the built-in tools given the marker, and scripts that fail in every way
    a script can, in both protocol eras, and a client that leaves mid-execution. Returns the tool calls made
    (each is an ``mcp_tool_calls`` row)."""
    mk = marker.encode()
    upstream_calls = len(mcp.rpc("tools/call"))

    async def call(tool: str, arguments: dict[str, Any], id: int = 1) -> dict[str, Any]:
        modern = {
            **headers,
            **stateless_headers("tools/call", tool, accept="application/json, text/event-stream"),
        }
        body = stateless_request("tools/call", id, client="zk", name=tool, arguments=arguments)
        answer = await client.post(CODE_MODE_PATH, headers=modern, json=body)
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["result"])

    found = await call("search_tools", {"query": marker, "server": marker})
    assert mk in found["content"][0]["text"].encode()
    servers = await call("list_servers", {})
    assert [s["alias"] for s in orjson.loads(servers["content"][0]["text"])] == ["voidllm", "zk"]

    ran = await call("execute_code", {"code": orchestration_script(marker), "servers": ["zk", marker]})
    assert ran.get("isError") is not True, ran
    answer = orjson.loads(ran["content"][0]["text"])
    result = answer["result"]
    assert result["echoed"] == marker
    assert result["again"] == f"again {marker}"
    assert result["shaped"] == {
        "label": marker,
        "items": [{"value": marker, "rank": 1}],
        "nested": {"deep": marker},
        "ok": True,
    }
    assert result["progressed"] == "2 steps done"
    assert result["caught"] == [
        f"Error executing tool fail: {marker}",
        f"unknown tool: zk/{marker}",
        f"unknown tool: {marker}/echo",
        "zk/echo: arguments must be an object",
    ]
    assert [line["level"] for line in answer["logs"]] == ["info", "info", "debug", "warn", "error"]
    assert all(marker in line["msg"] for line in answer["logs"]), answer["logs"]
    assert [c["status"] for c in answer["tool_calls"]].count("success") == 4

    builtin = await call("execute_code", {"code": builtin_script(marker)})
    outcomes = orjson.loads(builtin["content"][0]["text"])["result"]
    assert len(outcomes) == BUILTIN_CALLS, outcomes
    assert outcomes[0] == f"model '{marker}' not found"
    assert outcomes[3] == f"voidllm/list_models: unknown argument(s): {marker}"

    for index, (code, expected) in enumerate(failing_scripts(marker)):
        failed = await call("execute_code", {"code": code}, id=index + 2)
        assert failed["isError"] is True, (code[:80], failed)
        assert expected in failed["content"][0]["text"], (code[:80], failed)

    # the older protocol era, in a session
    base = {**headers, "Accept": "application/json, text/event-stream"}
    opened = await client.post(CODE_MODE_PATH, headers=base, json=initialize_request(client="zk"))
    assert opened.status_code == 200, opened.text
    session = {**base, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
    code = f"const t = await tools.zk.echo({{text: '{marker}'}}); console.log(t.text); return t"
    params = {"name": "execute_code", "arguments": {"code": code}}
    legacy = await client.post(
        CODE_MODE_PATH,
        headers=session,
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params},
    )
    assert legacy.status_code == 200, legacy.text
    assert legacy.content.count(mk) >= 2, legacy.text
    assert (await client.delete(CODE_MODE_PATH, headers=session)).status_code == 204

    # a client that leaves while its script (which called a tool with the marker) runs
    code = f"await tools.zk.echo({{text: '{marker}'}}); while (true) {{}}"
    body = stateless_request("tools/call", client="zk", name="execute_code", arguments={"code": code})
    modern = {**headers, "MCP-Protocol-Version": STATELESS, "Mcp-Method": "tools/call"}
    before, cancelled = len(mcp.rpc("tools/call")), await cancelled_executions(client)
    async with httpx.AsyncClient(base_url=client.base_url) as leaving, trio.open_nursery() as nursery:
        modern["Mcp-Name"] = "execute_code"
        nursery.start_soon(partial(leaving.post, CODE_MODE_PATH, headers=modern, json=body))
        with trio.fail_after(5):
            await poll_until(lambda: len(mcp.rpc("tools/call")) > before)
        nursery.cancel_scope.cancel()

    async def stopped() -> bool:
        return await cancelled_executions(client) > cancelled

    with trio.fail_after(5):
        await poll_until(stopped, interval=0.05)

    # orchestration: echo, chatty, echo, progress, fail; failing: fail, slow; legacy: echo; leaving: echo
    made = len(mcp.rpc("tools/call")) - upstream_calls
    assert made == 9, made
    return made + BUILTIN_CALLS


# -------------------------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("every_level", [False, True], ids=["configured-levels", "every-logger-at-level-1"])
async def test_no_content_is_written_anywhere(
    tmp_path: Path,
    sqlite_dsn: str,
    marker: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    every_level: bool,
) -> None:
    """Every path, then every output searched. The second run opens every logger, libraries included, down to
    level 1: not even a record that no configuration would ever print may hold content. (It also sees the
    test's own HTTP client, which logs request lines, never bodies.)"""
    evidence, watch = Evidence(), Watch()
    behaviour = Behaviour(completion_text=completion_text(marker), stream_chunks=CHUNKS)
    upstreams = open_mock_upstream(behaviour, by_model=upstream_behaviours(marker))
    async with upstreams as mock, open_mock_mcp(chatty=True) as mcp, open_otlp_sink() as collector:
        yaml_text = models_yaml(mock.base_url, mcp.url)
        async with watched_gateway(
            tmp_path,
            sqlite_dsn,
            yaml_text,
            evidence,
            capfd,
            monkeypatch,
            watch,
            every_level=every_level,
            settings=MCP_SETTINGS
            + otel_settings(collector.url),  # traces on: every exported byte is searched
        ) as gw:
            proxied = await successful_requests(gw, mock, marker)
            proxied += await upstream_failures(gw, mock, marker)
            await refused_requests(gw, mock, marker)
            with upstream_mcp_logs_off(monkeypatch):
                tool_calls = await mcp_requests(gw, mcp, marker)
                tool_calls += await codemode_requests(gw.client, auth(gw), mcp, marker)
            with trio.fail_after(5):  # the learner stores output types in the background
                await poll_until(lambda: len(learned_shapes(Path(sqlite_dsn))) == 3)
            await trio.sleep(0.05)  # let the gateway notice the client that left
    evidence.add("exported trace spans (OTLP)", b"".join(collector.bodies))
    # the capture saw the gateway's whole life and its data: an empty search proves nothing
    assert {span.kind for span in collector.spans} == {"SERVER", "CLIENT", "INTERNAL"}
    assert any(span.name == "execute_tool execute_code" for span in collector.spans)
    assert '"msg":"listening"' in watch.log_text
    assert '"msg":"shutdown complete"' in watch.log_text
    assert watch.table_rows["usage_events"] >= proxied
    assert watch.table_rows["mcp_tool_calls"] == tool_calls
    # gpt-echo5, its fallback (failure and fallback), the dropped stream, the hang, the refused connection
    assert watch.table_rows["incidents"] >= 6

    def strings(*keys: str) -> dict[str, Any]:
        properties = {key: {"type": "string"} for key in keys}
        return {"type": "object", "properties": properties, "required": list(keys)}

    item = {
        "type": "object",
        "properties": {"value": {"type": "string"}, "rank": {"type": "integer"}},
        "required": ["value", "rank"],
    }
    chatty = {
        "label": {"type": "string"},
        "items": {"type": "array", "items": item},
        "nested": strings("deep"),
        "ok": {"type": "boolean"},
    }
    assert learned_shapes(Path(sqlite_dsn)) == {  # the shapes were learned, with no value in them
        "echo": strings("text"),
        "chatty": {"type": "object", "properties": chatty, "required": list(chatty)},
        "progress": {"type": "string"},
    }
    assert any(name.endswith("voidllm.db") for name in evidence.sources)
    compiled = [
        name for name in evidence.sources if "tmp/voidllm-codemode-" in name and name.endswith(".cwasm")
    ]
    assert compiled, "the Code Mode compile cache was written under the watched temporary directory"
    assert "voidllm_upstream_requests_total" in evidence.sources["/metrics"].decode()
    if every_level:
        assert b"sqlalchemy.engine" in evidence.sources["log records (catch-all handler)"]
    evidence.assert_clean(marker)


async def test_negative_control_the_search_finds_a_planted_marker(
    tmp_path: Path,
    sqlite_dsn: str,
    marker: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Plant the marker once in each channel the real test searches; the same search must find every one."""
    deleted = f"ZK-{uuid.uuid4().hex}"  # only ever in a row that is deleted again
    evidence, watch = Evidence(), Watch()
    planted = Path(sqlite_dsn).parent / "zk-control.txt"
    counter = Counter(
        "zk_control_planted", "A throwaway metric for the negative control.", ["label"], registry=REGISTRY
    )
    try:
        async with open_mock_upstream() as mock:
            async with watched_gateway(
                tmp_path, sqlite_dsn, models_yaml(mock.base_url), evidence, capfd, monkeypatch, watch
            ):
                logging.getLogger("voidllm.zk_control").debug("planted %s", marker)
                logging.getLogger("zk_control").warning("planted", extra={"detail": {"deep": [marker]}})
                logging.getLogger("zk_control.quiet").log(
                    5, "below every threshold %s", marker
                )  # filtered out
                try:
                    raise ValueError(marker)
                except ValueError:
                    logging.getLogger("voidllm.zk_control.exc").debug("planted", exc_info=True)
                counter.labels(marker).inc()
                planted.write_text(f"planted {marker}\n")
                cache = Path(tempfile.gettempdir()) / "voidllm-codemode-zk"  # where compiled QuickJS goes
                cache.mkdir()
                (cache / "planted.cwasm").write_bytes(b"\0asm" + marker.encode("utf-16-le"))
                os.write(2, f"planted {marker}\n".encode())
                with closing(sqlite3.connect(sqlite_dsn, timeout=5)) as conn:
                    conn.execute("PRAGMA secure_delete = OFF")
                    conn.execute("CREATE TABLE zk_control (value TEXT)")
                    rows = [("before " * 20,), (f"planted {marker}",), (f"gone {deleted}",), ("after",)]
                    conn.executemany("INSERT INTO zk_control VALUES (?)", rows)
                    conn.execute("DELETE FROM zk_control WHERE value LIKE 'gone %'")
                    conn.commit()
    finally:
        REGISTRY.unregister(counter)
    expected = {
        "log stream (json, debug)",
        "log records (catch-all handler)",
        "/metrics",
        "fd 2 (stderr)",
        "sqlite tables",
        "data dir while running: zk-control.txt",
        "after shutdown: data/zk-control.txt",
        "after shutdown: data/voidllm.db",
        "after shutdown: tmp/voidllm-codemode-zk/planted.cwasm",
    }
    hits = evidence.hits(marker)
    assert expected <= set(hits), f"the search missed planted markers in {expected - set(hits)}"
    log_lines = [orjson.loads(line) for line in watch.log_text.splitlines()]
    planted_lines = [line for line in log_lines if marker in orjson.dumps(line).decode()]
    assert len(planted_lines) == 3  # the level-5 record never became a line
    assert any("ValueError" in line.get("exc", "") for line in planted_lines)
    # a deleted row leaves its bytes in the file: the raw scan sees them, the table dump does not
    deleted_hits = evidence.hits(deleted)
    assert "sqlite tables" not in deleted_hits
    assert any(name.startswith(("data dir while running: ", "after shutdown: ")) for name in deleted_hits)
    with pytest.raises(AssertionError, match="zero knowledge violated"):
        evidence.assert_clean(marker)
    # every encoding the search knows is found on its own
    for form, needle in needles(marker).items():
        assert Evidence({"probe": b"<" + needle + b">"}).hits(marker), form
    planted.unlink()
    assert not planted.exists()


# ------------------------------------------------------------------------------- the real process


def process_config(tmp_path: Path, base_url: str, mcp_url: str) -> Path:
    path = tmp_path / "voidllm.yaml"
    mcp_settings = "".join(f"\n  {line}" for line in MCP_SETTINGS.splitlines() if line)
    path.write_text(
        f"""
server:
  proxy:
    host: 127.0.0.1
    port: 0
database:
  driver: sqlite
  dsn: {tmp_path / "data" / "voidllm.db"}
settings:
  encryption_key: {ENCRYPTION_KEY}
  admin_key: {ADMIN_KEY}{mcp_settings}
logging:
  level: debug
  format: json
mcp_servers:
  - {{name: ZK, alias: zk, url: '{mcp_url}'}}
models:"""
        + model_yaml("gpt-zk", base_url)
        + model_yaml("gpt-echo", base_url)
    )
    return path


async def wait_until_listening(process: trio.Process, stderr: Path) -> tuple[str, str]:
    """The URL from the ``listening`` log line and the API key from the banner, both on stderr."""
    url = key = ""
    # a bound on start-up, not a measure of it: importing and migrating takes a few seconds of CPU, far more
    # on a loaded two-core machine running the other test worker beside this one
    with trio.fail_after(30):
        while not (url and key):
            text = await trio.Path(stderr).read_text(errors="replace")  # written by the process
            if process.returncode is not None:
                raise AssertionError(f"voidllm exited early ({process.returncode}):\n{text}")
            await trio.sleep(0.02)
            for line in text.splitlines():
                if line.startswith("  API Key:"):
                    key = line.split("API Key:")[1].strip()
                elif line.startswith("{") and '"msg":"listening"' in line:
                    url = orjson.loads(line)["binds"][0]
    return url, key


@pytest.mark.slow
async def test_real_process_writes_no_content(tmp_path: Path, marker: str) -> None:
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("VOIDLLM_")}
    env |= {"TMPDIR": str(temp_dir), "PYTHONUNBUFFERED": "1"}
    mk = marker.encode()
    behaviour = Behaviour(completion_text=completion_text(marker), stream_chunks=CHUNKS)
    upstreams = open_mock_upstream(behaviour, by_model={"gpt-echo": Behaviour(fail="echo_400")})
    async with upstreams as mock, open_mock_mcp(chatty=True) as mcp:
        config = process_config(tmp_path, mock.base_url, mcp.url)
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "voidllm", "serve", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=tmp_path,
            )
        try:
            url, key = await wait_until_listening(process, stderr)
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                body = chat_body(marker, "gpt-zk")
                chat = await client.post("/v1/chat/completions", headers=headers, json=body)
                assert chat.status_code == 200
                assert marker in chat.json()["choices"][0]["message"]["content"]
                for extra in ({}, {"stream_options": {"include_usage": True}}):
                    body = chat_body(marker, "gpt-zk", stream=True, **extra)
                    streamed = await post_stream(client, "/v1/chat/completions", headers, body)
                    assert streamed.status_code == 200
                    assert streamed.content.count(mk) == CHUNKS
                body = chat_body(marker, "gpt-echo")
                echoed = await client.post("/v1/chat/completions", headers=headers, json=body)
                assert echoed.status_code == 400
                assert mk in echoed.content
                unknown = await client.post(
                    "/v1/chat/completions", headers=headers, json=chat_body(marker, "no-such-model")
                )
                assert unknown.status_code == 404
                assert mk not in unknown.content
                broken = await client.post(
                    "/v1/chat/completions",
                    content=b'{"model": "gpt-zk", "x": "' + mk,
                    headers={**headers, "Content-Type": "application/json"},
                )
                assert broken.status_code == 400
                assert mk not in broken.content
                tool_calls = await codemode_requests(client, headers, mcp, marker)
                metrics = await client.get("/metrics")
                assert metrics.status_code == 200
            assert len(mock.requests) == 4
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(8):
                code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                with trio.move_on_after(5, shield=True):
                    await process.wait()
    assert code == 0, stderr.read_text()
    log_text = stderr.read_text()
    assert '"msg":"listening"' in log_text
    assert '"msg":"shutdown complete"' in log_text
    evidence = Evidence()
    evidence.add("/metrics", metrics.content)
    evidence.add_tree(tmp_path, "after shutdown: ")  # stdout.log, stderr.log, data/, tmp/
    tables, blobs, counts = dump_sqlite(tmp_path / "data" / "voidllm.db")
    evidence.add("sqlite tables", tables)
    evidence.add("sqlite blobs", blobs)
    assert counts["usage_events"] == 4
    assert counts["mcp_tool_calls"] == tool_calls
    assert any("tmp/voidllm-codemode-" in name and name.endswith(".cwasm") for name in evidence.sources)
    searched = {"after shutdown: stdout.log", "after shutdown: stderr.log", "after shutdown: data/voidllm.db"}
    assert searched <= set(evidence.sources)
    evidence.assert_clean(marker)


# ------------------------------------------------------------------ the prompt guard: finding-shaped markers


def luhn_card(digits: str) -> str:
    """A 16-digit Visa-like number starting with 4 and ``digits``, completed with its Luhn check digit."""
    body = ("4" + digits)[:15]
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


GUARD_SETTINGS = """
guard:
  detectors: {email: redact, credit_card: flag, openai_key: block}
  responses: true
"""


async def test_guard_findings_are_never_written(
    tmp_path: Path,
    sqlite_dsn: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Markers shaped like findings (an e-mail address, a card number, an API key) go through every ingress
    with the guard on in each mode (redact, flag, block; answers redacted, streamed too) and are found, the
    guard's work shows in the usage rows and metrics, and none of the values reaches a log, a row, a metric
    or a file."""
    token = uuid.uuid4().hex
    email = f"zk{token[:16]}@example.com"
    card = luhn_card(str(int(token[:14], 16))[:14])
    api_key = "sk-proj-" + token + token[:16].upper()
    markers = (email, card, api_key)
    evidence, watch = Evidence(), Watch()
    behaviour = Behaviour(completion_text=f"Mail {email} or pay with {card}.", stream_chunks=7)
    async with open_mock_upstream(behaviour) as mock, open_mock_mcp() as mcp:
        async with watched_gateway(
            tmp_path,
            sqlite_dsn,
            models_yaml(mock.base_url, mcp.url),
            evidence,
            capfd,
            monkeypatch,
            watch,
            settings=MCP_SETTINGS + GUARD_SETTINGS,
        ) as gw:
            client, headers = gw.client, auth(gw)
            both = chat_body(f"{email} / {card}", "gpt-zk")
            answer = await client.post("/v1/chat/completions", headers=headers, json=both)
            assert answer.status_code == 200, answer.text
            assert email.encode() not in answer.content  # the answer was redacted too
            sent = mock.requests[-1].json()["messages"]
            assert sent[0]["content"] == f"You guard the secret [EMAIL_1] / {card}."
            streamed = await post_stream(client, "/v1/chat/completions", headers, {**both, "stream": True})
            assert b"[EMAIL_1]" in streamed.content
            assert email.encode() not in streamed.content
            blocked = chat_body(f"key {api_key}", "gpt-zk")
            for path in ("/v1/chat/completions", "/api/v1/playground/chat/completions"):
                refused = await client.post(path, headers=headers, json=blocked)
                assert refused.status_code == 403, refused.text
                assert api_key.encode() not in refused.content
            messages = {
                "model": "gpt-zk",
                "max_tokens": 8,
                "system": f"key {api_key}",
                "messages": [{"role": "user", "content": email}],
            }
            refused = await client.post("/v1/messages", headers=headers, json=messages)
            assert refused.status_code == 403, refused.text
            messages["system"] = f"card {card}"
            assert (await client.post("/v1/messages", headers=headers, json=messages)).status_code == 200
            mcp_headers = {**headers, **stateless_headers("tools/call", "echo")}
            for text in (f"{email} {card}", api_key):
                call = stateless_request("tools/call", 1, name="echo", arguments={"text": text})
                echoed = await client.post("/api/v1/mcp/zk", headers=mcp_headers, json=call)
                assert echoed.status_code == 200, echoed.text
                assert email.encode() not in echoed.content
                assert api_key.encode() not in echoed.content
            code = f'return (await tools.zk.echo({{text: "{email} {card}"}})).text;'
            call = stateless_request("tools/call", 2, name="execute_code", arguments={"code": code})
            ran = await client.post(
                CODE_MODE_PATH,
                headers={**headers, **stateless_headers("tools/call", "execute_code")},
                json=call,
            )
            assert ran.status_code == 200, ran.text
            assert b"[EMAIL_1] " + card.encode() in ran.content
            metrics = (await client.get("/metrics")).text
            assert 'voidllm_guard_blocked_total{route="/v1/messages"}' in metrics
            assert 'kind="credit_card"' in metrics
    assert watch.table_rows["usage_events"] >= 5
    rows = evidence.sources["sqlite tables"].decode()
    assert '"email":' in rows
    assert "'blocked'" in rows
    for value in markers:
        evidence.assert_clean(value)


def finding_document(samples: dict[str, tuple[str, str]]) -> str:
    """Every sample in its context, one per paragraph, far enough apart that no secret word reaches the next
    one's value; checked to hold exactly one finding of each kind."""
    document = f"\n{'~' * 160}\n".join(template.format(value) for template, value in samples.values())
    found = [(f.kind, document[f.start : f.end]) for f in detect.find(document, guard_samples.ALL)]
    assert found == [(kind, value) for kind, (_, value) in samples.items()]
    return document


def written_forms(kind: str, value: str) -> set[str]:
    """The spellings of ``value`` a leak could take: as sent, lower case, the guard's normalised form (no
    separators, upper case); a private key's body lines (its armour is the same in every key) and a JWT's
    payload and signature (its header is the same in every token) on their own too."""
    forms = {value, value.lower(), value.translate(str.maketrans("", "", " -.()/")).upper()}
    if kind == kinds.PRIVATE_KEY:
        forms = set(value.splitlines()[1:-1])
    elif kind == kinds.JWT:
        forms.add(value.split(".", 1)[1])
    return forms


REDACT_ALL = {"detectors": {"credentials": "redact", "pii": "redact"}, "responses": True}


async def redacting_key(gw: RunningGateway) -> dict[str, str]:
    """A new key of the admin whose own guard policy redacts every kind (above the baseline's flag), answers
    too."""
    org = await default_org(gw)
    me = (await gw.client.get(f"{API}/me", headers=admin(gw))).json()["id"]
    key = await create_key(gw, org, user_id=me)
    path = f"{API}/orgs/{org}/keys/{key['id']}/policy"
    response = await gw.client.put(path, headers=admin(gw), json={"guard": REDACT_ALL})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {key['key']}"}


async def every_ingress(
    client: httpx.AsyncClient, headers: dict[str, str], mock: MockUpstream, document: str
) -> list[bytes]:
    """``document`` through the chat API (whole and streamed), ``/v1/messages``, a proxied MCP tool call and a
    Code Mode script's tool call. Returns what the upstreams sent back through the gateway, in that order
    (the MCP ones echo the arguments as they left the gateway)."""
    chat = {"model": "gpt-zk", "messages": [{"role": "user", "content": document}]}
    whole = await client.post("/v1/chat/completions", headers=headers, json=chat)
    assert whole.status_code == 200, whole.text
    sent_chat = mock.requests[-1].json()["messages"][0]["content"]
    streamed = await post_stream(client, "/v1/chat/completions", headers, {**chat, "stream": True})
    assert streamed.status_code == 200
    messages = {"model": "gpt-zk", "max_tokens": 8, "messages": [{"role": "user", "content": document}]}
    answered = await client.post("/v1/messages", headers=headers, json=messages)
    assert answered.status_code == 200, answered.text
    assert mock.requests[-1].json()["messages"][0]["content"] == sent_chat
    call = stateless_request("tools/call", 1, name="echo", arguments={"text": document})
    mcp_headers = {**headers, **stateless_headers("tools/call", "echo")}
    echoed = await client.post("/api/v1/mcp/zk", headers=mcp_headers, json=call)
    assert echoed.status_code == 200, echoed.text
    code = f"return (await tools.zk.echo({{text: {json.dumps(document)}}})).text;"
    call = stateless_request("tools/call", 2, name="execute_code", arguments={"code": code})
    code_headers = {**headers, **stateless_headers("tools/call", "execute_code")}
    ran = await client.post(CODE_MODE_PATH, headers=code_headers, json=call)
    assert ran.status_code == 200, ran.text
    assert b'"isError":true' not in ran.content, ran.text
    return [
        sent_chat.encode(),
        whole.content,
        streamed.content,
        answered.content,
        echoed.content,
        ran.content,
    ]


def counted_since(before: dict[str, float], direction: str, action: str) -> dict[str, float]:
    after = findings_counted(direction, action)
    return {kind: after[kind] - before[kind] for kind in kinds.ALL_KINDS}


def findings_counted(direction: str, action: str) -> dict[str, float]:
    return {
        kind: metric_sample("voidllm_guard_findings_total", kind=kind, action=action, direction=direction)
        for kind in kinds.ALL_KINDS
    }


async def test_no_finding_kind_is_ever_written(
    tmp_path: Path,
    sqlite_dsn: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fresh value of every kind the guard finds (each checked to be found, as its kind) goes through every
    ingress: the chat API (whole and streamed), ``/v1/messages``, a proxied MCP tool call and a Code Mode
    tool call, once with a key the baseline flags every kind for (forwarded as sent) and once with a key
    whose own policy redacts every kind, answers too. The usage rows and ``voidllm_guard_findings_total``
    show each kind counted on every ingress, so the search below searched for values the guard saw; then no
    spelling of any value is in a log record of any logger at any level, a row, ``/metrics`` or a file."""
    samples = guard_samples.fresh_samples(random.Random(uuid.uuid4().int))
    document = finding_document(samples)
    values = {kind: value for kind, (_, value) in samples.items()}
    evidence, watch = Evidence(), Watch()
    flagged, redacted = findings_counted("request", "flag"), findings_counted("request", "redact")
    answered = findings_counted("response", "redact")
    settings = MCP_SETTINGS + "guard:\n  detectors: {credentials: flag, pii: flag}\n"
    behaviour = Behaviour(completion_text=document, stream_chunks=9)
    async with open_mock_upstream(behaviour) as mock, open_mock_mcp() as mcp:
        async with watched_gateway(
            tmp_path,
            sqlite_dsn,
            models_yaml(mock.base_url, mcp.url),
            evidence,
            capfd,
            monkeypatch,
            watch,
            every_level=True,
            settings=settings,
        ) as gw:
            with upstream_mcp_logs_off(monkeypatch):
                as_sent = await every_ingress(gw.client, auth(gw), mock, document)
                as_redacted = await every_ingress(gw.client, await redacting_key(gw), mock, document)
    # flag: every value left the gateway and came back as the upstream sent it
    assert as_sent[0] == document.encode()
    for answer in as_sent[1:]:
        assert values[kinds.EMAIL].encode() in answer
    # redact: no value left the gateway, none came back; every kind has its placeholder
    for answer in as_redacted:
        for kind, value in values.items():
            assert value.encode() not in answer, kind
    for kind in kinds.ALL_KINDS:
        assert f"[{kind.upper()}_1]".encode() in as_redacted[0]
    # the guard saw each kind on each of the five ingresses in each mode, and in each of the three answers
    once, five, three = (dict.fromkeys(kinds.ALL_KINDS, n) for n in (1, 5, 3))
    expected = [({"request": once}, "flag")] * 3 + [({"request": once, "response": once}, "redact")] * 3
    rows = [(json.loads(findings), action) for findings, action in usage_findings(Path(sqlite_dsn))]
    assert sorted(rows, key=lambda row: row[1]) == expected
    assert counted_since(flagged, "request", "flag") == five
    assert counted_since(redacted, "request", "redact") == five
    assert counted_since(answered, "response", "redact") == three
    assert b"sqlalchemy.engine" in evidence.sources["log records (catch-all handler)"]  # every logger open
    for kind, value in values.items():
        for form in written_forms(kind, value):
            evidence.assert_clean(form)


def usage_findings(path: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        query = "SELECT guard_findings, guard_action FROM usage_events ORDER BY rowid"
        return conn.execute(query).fetchall()
