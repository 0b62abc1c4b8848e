"""The fuzz test of the management API (issue 12 point 6): schemathesis over /api/docs/openapi.json against a
real gateway, as the bootstrap system administrator. No answer may be a 5xx, and every error answer must be
the error envelope carrying the response's request id.

The gateway runs in this trio test on an ephemeral port; schemathesis' own CLI (``st run``) runs as a
subprocess with a fixed seed, deterministic generation and at most :data:`MAX_EXAMPLES` cases per operation
and phase, so a run is reproducible and bounded (about 4,500 requests, well under 90 s on two cores). Its
phases: ``examples``; ``coverage``, which sends the boundaries of every declared range and length and the
values just beyond them (integers past 2^63 among them), wrong types, missing required fields, bad formats;
``fuzzing``, random valid and invalid inputs (long and non-ASCII strings).

Every case is checked by two checks of ``tests/schemathesis_hooks.py`` (loaded through
``SCHEMATHESIS_HOOKS``): ``no_server_error`` (no 5xx, but an upstream's failure on the operations that call
one) and ``error_envelope``. The same module closes the document's object schemas, so invalid bodies carry
unknown fields, and puts the ids of real resources (created here first) into most path parameters, so the
fuzzed bodies reach the use cases instead of a 404. A failure prints schemathesis' report, which names the
operation and a ``curl`` command reproducing the request; the gateway's log must hold no unhandled error.

Operations that can take the caller's own key away (deletes, then deactivations) run last, in their own
passes: in a single pass schemathesis soon deletes the very key it authenticates with, and every later
operation would only be tested for its 401.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.gateway import RunningGateway, make_config, run_gateway

MAX_EXAMPLES = 8
SEED = 20260110
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
SETTINGS = "audit:\n  flush_interval: 100ms\nmcp:\n  allow_private_urls: true"


def st_command(url: str, key: str, report: Path, *filters: str) -> list[str]:
    return [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{url}/api/docs/openapi.json",
        "--checks",
        "no_server_error,error_envelope",
        "--header",
        f"Authorization: Bearer {key}",
        "--phases",
        "examples,coverage,fuzzing",
        "--mode",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--suppress-health-check",
        "all",
        "--no-color",
        "--output-sanitize",
        "true",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        *filters,
    ]


async def run_st(command: list[str], cwd: Path, ids: dict[str, str]) -> str:
    with trio.fail_after(240):
        done = await trio.run_process(
            command,
            capture_stdout=True,
            stderr=subprocess.STDOUT,
            check=False,
            cwd=cwd,
            env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "VOIDLLM_FUZZ_IDS": json.dumps(ids)},
        )
    output = done.stdout.decode(errors="replace")
    assert done.returncode == 0, output[-20000:]
    return output


async def real_ids(gw: RunningGateway, key: str) -> dict[str, str]:
    """One resource of each kind a path names, created for the fuzzer (their ids by path parameter)."""
    headers = {"Authorization": f"Bearer {key}"}

    async def create(path: str, body: dict[str, Any]) -> str:
        response = await gw.client.post(f"/api/v1{path}", json=body, headers=headers)
        assert response.status_code == 201, (path, response.text)
        return str(response.json()["id"])

    ids = {"user_id": (await gw.client.get("/api/v1/me", headers=headers)).json()["id"]}
    org = ids["org_id"] = (await gw.client.get("/api/v1/orgs", headers=headers)).json()["data"][0]["id"]
    members = (await gw.client.get(f"/api/v1/orgs/{org}/members", headers=headers)).json()["data"]
    ids["membership_id"] = members[0]["id"]
    ids["team_id"] = await create(f"/orgs/{org}/teams", {"name": "fuzz"})
    user_key = {"name": "fuzz", "key_type": "user_key", "user_id": ids["user_id"]}
    ids["key_id"] = await create(f"/orgs/{org}/keys", user_key)
    ids["sa_id"] = await create(f"/orgs/{org}/service-accounts", {"name": "fuzz"})
    base_url = "http://127.0.0.1:9/v1"  # refused at once: calls to it fail fast
    model = {"name": "fuzz-model", "provider": "openai", "base_url": base_url}
    ids["model_id"] = await create("/models", model)
    deployment = {"name": "fuzz", "provider": "openai", "base_url": base_url}
    ids["deployment_id"] = await create(f"/models/{ids['model_id']}/deployments", deployment)
    alias = {"alias": "fuzz-alias", "model_name": "fuzz-model"}
    ids["alias_id"] = await create(f"/orgs/{org}/model-aliases", alias)
    server = {"name": "fuzz", "alias": "fuzz", "url": "http://127.0.0.1:9/mcp"}
    ids["server_id"] = await create("/mcp-servers", server)
    ids["invite_id"] = await create(f"/orgs/{org}/invites", {"email": "fuzz@example.com"})
    return ids


@pytest.mark.slow
async def test_fuzzing_the_api_finds_no_server_error_and_no_bare_error(
    sqlite_dsn: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with run_gateway(make_config(sqlite_dsn, settings=SETTINGS)) as gw:
        key = gw.api_key()
        ids = await real_ids(gw, key)
        keep = ["--exclude-method", "DELETE", "--exclude-path-regex", "/deactivate$"]
        first = await run_st(st_command(gw.url, key, tmp_path / "keep.xml", *keep), tmp_path, ids)
        me = await gw.client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200, "the first pass must keep its key, or it tested little beyond 401s"
        assert "Tested: " in first
        assert " passed" in first
        deletes = st_command(gw.url, key, tmp_path / "destructive.xml", "--include-method", "DELETE")
        await run_st(deletes, tmp_path, ids)
        deactivations = st_command(
            gw.url, key, tmp_path / "deactivate.xml", "--include-path-regex", "/deactivate$"
        )
        await run_st(deactivations, tmp_path, ids)
    server = [r for r in caplog.records if r.name == "hypercorn.error" and r.levelno >= logging.WARNING]
    assert not server, [r.getMessage() for r in server]
    unhandled = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert not unhandled, [(vars(r)["error_type"], vars(r)["path"]) for r in unhandled]


async def read_response(stream: trio.SocketStream) -> bytes:
    """One whole response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    declared = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    length = int(declared.split(b":")[1])
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
