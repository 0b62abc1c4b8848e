"""Schemathesis against a real gateway: every operation of /api/docs/openapi.json, valid and invalid inputs,
as the bootstrap system administrator; no request may get a 5xx answer.

The gateway runs in this trio test on an ephemeral port; schemathesis' own CLI (``st run``) runs as a
subprocess, with a fixed seed, deterministic generation and a bounded number of examples per operation, so
a run is reproducible and takes well under a minute. A failure prints schemathesis' report, which names the
operation and a ``curl`` command reproducing the request.

Operations that can take the caller's own key away (deletes, then deactivations) run last, in their own
passes: in a single pass schemathesis soon deletes the very key it authenticates with, and every later
operation would only be tested for its 401.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import trio

from tests.gateway import make_config, run_gateway

MAX_EXAMPLES = 8
SEED = 20260110


def st_command(url: str, key: str, report: Path, *filters: str) -> list[str]:
    return [
        str(Path(sys.executable).with_name("st")), "run", f"{url}/api/docs/openapi.json",
        "--checks", "not_a_server_error",
        "--header", f"Authorization: Bearer {key}",
        "--phases", "examples,coverage,fuzzing",
        "--mode", "all",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--generation-deterministic",
        "--workers", "1",
        "--request-timeout", "10",
        "--suppress-health-check", "all",
        "--no-color",
        "--output-sanitize", "true",
        "--report", "junit", "--report-junit-path", str(report),
        *filters,
    ]


async def run_st(command: list[str], cwd: Path) -> str:
    with trio.fail_after(240):
        done = await trio.run_process(
            command, capture_stdout=True, stderr=subprocess.STDOUT, check=False, cwd=cwd,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        )
    output = done.stdout.decode(errors="replace")
    assert done.returncode == 0, output[-20000:]
    return output


async def test_no_operation_answers_with_a_server_error(sqlite_dsn: str, tmp_path: Path) -> None:
    settings = "audit:\n  flush_interval: 100ms"
    async with run_gateway(make_config(sqlite_dsn, settings=settings)) as gw:
        key = gw.api_key()
        keep = ["--exclude-method", "DELETE", "--exclude-path-regex", "/deactivate$"]
        first = await run_st(st_command(gw.url, key, tmp_path / "keep.xml", *keep), tmp_path)
        me = await gw.client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200, "the first pass must keep its key, or it tested little beyond 401s"
        assert "Tested: " in first and " passed" in first
        await run_st(st_command(gw.url, key, tmp_path / "destructive.xml", "--include-method", "DELETE"), tmp_path)
        await run_st(st_command(gw.url, key, tmp_path / "deactivate.xml", "--include-path-regex", "/deactivate$"), tmp_path)


async def read_response(stream: trio.SocketStream) -> bytes:
    """One whole response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")).split(b":")[1])
    while len(body) < length:
        chunk = await stream.receive_some()
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


async def test_keep_alive_survives_a_response_sent_before_the_request_body(sqlite_dsn: str) -> None:
    """Found by schemathesis: a 405 for a PUT whose body arrived after the answer made hypercorn close the
    connection under a client that was already sending its next request, which then hung."""
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        host, port = gw.url.removeprefix("http://").split(":")
        body = b'{"email": "x@example.com"}'
        with trio.fail_after(10):
            stream = await trio.open_tcp_stream(host, int(port))
            await stream.send_all(
                b"PUT /api/v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            await trio.sleep(0.2)  # the route is refused (405) before the body is sent
            await stream.send_all(body)
            first = await read_response(stream)
            await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            second = await read_response(stream)
            await stream.aclose()
    assert first.startswith(b"HTTP/1.1 405")
    assert second.startswith(b"HTTP/1.1 200"), second
