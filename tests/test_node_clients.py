"""The client matrix: the official Node SDKs (``openai``, ``@anthropic-ai/sdk``,
``@modelcontextprotocol/sdk``) against a real gateway.

The packages are pinned by ``tests/clients/node/package-lock.json`` and installed by ``scripts/test`` (``npm
ci`` when ``node_modules`` is older than the lockfile). One gateway serves the whole module: it runs in a
thread of its own (its own trio run, with a mock OpenAI-compatible upstream, a second one that always answers
429, and a mock MCP server registered in the YAML as ``files``), and each test runs one ESM script of
``tests/clients/node`` with ``node``, the gateway's URL and key in its environment. A script calls the cases
named on its command line and prints one JSON object, case name -> result (or the SDK's typed error).

Without ``node`` or the installed packages the tests skip, unless ``VOIDLLM_REQUIRE_SERVICES=1``, which makes
them fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import trio

from tests.conftest import REQUIRE_SERVICES
from tests.gateway import make_config, model_yaml, run_gateway
from voidllm.testing.mock_mcp import open_mock_mcp
from voidllm.testing.mock_openai import Behaviour, MockUpstream, open_mock_upstream

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).parent / "clients" / "node"
SCRIPT_LIMIT = 60.0
"""Seconds one script may run (each does a handful of calls to a local gateway)."""
START_LIMIT = 30.0
"""Seconds the gateway thread may take to listen."""

SETTINGS = """
mcp:
  allow_private_urls: true
  health:
    enabled: false
  code_mode:
    enabled: true
"""


@attrs.frozen
class Gateway:
    url: str
    key: str
    token: trio.lowlevel.TrioToken
    """The trio run serving the gateway (to stop it from the test thread)."""
    upstream: MockUpstream
    """The mock behind ``gpt-test`` (read its ``requests`` once a script has ended)."""


async def _serve(root: Path, started: Callable[[Gateway, trio.Event], None]) -> None:
    """Serve the mocks and the gateway until the event handed to ``started`` is set (from any thread, through
    ``trio.from_thread`` with the run's token)."""
    async with (
        open_mock_upstream(Behaviour(stream_chunks=4)) as upstream,
        open_mock_upstream(Behaviour(status=429)) as limited,
        open_mock_mcp() as mcp,
    ):
        assert upstream.base_url
        assert limited.base_url
        models = model_yaml("gpt-test", upstream.base_url, aliases="[speech-to-text]") + model_yaml(
            "limited", limited.base_url
        )
        servers = f"mcp_servers:\n  - {{name: Files, alias: files, url: '{mcp.url}'}}\n"
        config = make_config(
            str(root / "data" / "voidllm.db"), f"models:{models}\n{servers}", settings=SETTINGS
        )
        async with run_gateway(config) as gw:
            stop = trio.Event()
            started(Gateway(gw.url, gw.api_key(), trio.lowlevel.current_trio_token(), upstream), stop)
            await stop.wait()


@pytest.fixture(scope="module")
def node() -> str:
    """The ``node`` executable, with the matrix's packages installed."""
    found = shutil.which("node")
    problem = None
    if found is None:
        problem = "node is not installed (Node.js 20+ runs the client matrix)"
    elif not (NODE_DIR / "node_modules" / ".package-lock.json").exists():
        problem = "the client matrix's npm packages are not installed: run npm ci in tests/clients/node"
    if problem is not None:
        if REQUIRE_SERVICES:
            pytest.fail(f"{problem} and VOIDLLM_REQUIRE_SERVICES is set")
        pytest.skip(problem)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def gateway(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway for the module, served by a trio run in a thread until the module's tests are done."""
    root = tmp_path_factory.mktemp("node-clients")
    ready = threading.Event()
    served: list[tuple[Gateway, trio.Event]] = []
    failed: list[BaseException] = []

    def started(gateway: Gateway, stop: trio.Event) -> None:
        served.append((gateway, stop))
        ready.set()

    def serve() -> None:
        try:
            trio.run(_serve, root, started)
        except BaseException as error:  # re-raised in the test thread
            failed.append(error)
        finally:
            ready.set()

    thread = threading.Thread(target=serve, name="node-clients-gateway", daemon=True)
    thread.start()
    ready.wait(START_LIMIT)
    if failed:
        raise failed[0]
    assert served, "the gateway did not start in time"
    gateway, stop = served[0]
    try:
        yield gateway
    finally:
        trio.from_thread.run_sync(stop.set, trio_token=gateway.token)
        thread.join(START_LIMIT)
        if failed:
            raise failed[0]


def run_script(node: str, gateway: Gateway, script: str, *cases: str, **env: str) -> dict[str, Any]:
    """Run ``node <script> <cases>`` against the gateway; its JSON output, case name -> result."""
    environ = {"PATH": os.environ.get("PATH", ""), "GATEWAY_URL": gateway.url, "GATEWAY_KEY": gateway.key}
    result = subprocess.run(
        [node, script, *cases],
        cwd=NODE_DIR,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=SCRIPT_LIMIT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = orjson.loads(result.stdout)
    return output


def test_openai_chat_stream_and_embeddings(node: str, gateway: Gateway) -> None:
    out = run_script(node, gateway, "openai.mjs", "chat", "stream", "embeddings")
    assert out["chat"] == {
        "content": "Hello from the mock.",
        "finish_reason": "stop",
        "usage": out["chat"]["usage"] | {"prompt_tokens": 10, "completion_tokens": 8, "total_tokens": 18},
    }
    assert out["stream"]["text"] == "Hello from the mock."
    assert out["stream"]["chunks"] >= 4
    assert out["stream"]["usage"]["total_tokens"] == 18
    assert out["embeddings"]["count"] == 2
    assert out["embeddings"]["indexes"] == [0, 1]
    assert out["embeddings"]["dimensions"] > 0


def test_openai_errors_are_the_sdks_typed_errors(node: str, gateway: Gateway) -> None:
    errors = run_script(node, gateway, "openai.mjs", "errors")["errors"]
    expected = {
        "unauthorized": ("AuthenticationError", 401),
        "bad_request": ("BadRequestError", 400),
        "not_found": ("NotFoundError", 404),
        "rate_limited": ("RateLimitError", 429),
    }
    assert {case: (e["name"], e["status"]) for case, e in errors.items()} == expected
    assert all(error["typed"] for error in errors.values())
    assert "model" in errors["bad_request"]["message"]  # names the missing field
    assert {case: (e["type"], e["param"]) for case, e in errors.items()} == {  # OpenAI's type and param
        "unauthorized": ("authentication_error", None),
        "bad_request": ("invalid_request_error", "model"),
        "not_found": ("not_found_error", None),
        "rate_limited": ("requests", None),  # the upstream's own 429, relayed as it is (OpenAI's type)
    }


def test_openai_transcription_in_the_sdks_multipart_order(node: str, gateway: Gateway) -> None:
    out = run_script(node, gateway, "openai.mjs", "transcription")
    assert out["transcription"] == {"text": "Hello from the mock."}
    sent = gateway.upstream.requests[-1]
    assert sent.path == "/v1/audio/transcriptions"
    assert (sent.form["model"], sent.file_fields, sent.file_bytes) == ("gpt-test", ("file",), 44)


def test_anthropic_messages_plain_and_streamed(node: str, gateway: Gateway) -> None:
    out = run_script(node, gateway, "anthropic.mjs", "message", "stream")
    assert out["message"] == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Hello from the mock."}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 8},
    }
    assert out["stream"] == {
        "text": "Hello from the mock.",
        "first": "message_start",
        "last": "message_stop",
        "final_text": "Hello from the mock.",
        "stop_reason": "end_turn",
        "output_tokens": 8,
    }


def test_anthropic_errors_are_the_sdks_typed_errors(node: str, gateway: Gateway) -> None:
    errors = run_script(node, gateway, "anthropic.mjs", "errors")["errors"]
    expected = {
        "unauthorized": ("AuthenticationError", 401),
        "bad_request": ("BadRequestError", 400),
        "not_found": ("NotFoundError", 404),
        "rate_limited": ("RateLimitError", 429),
    }
    assert {case: (e["name"], e["status"]) for case, e in errors.items()} == expected
    assert all(error["typed"] for error in errors.values())
    assert {case: e["type"] for case, e in errors.items()} == {
        "unauthorized": "authentication_error",
        "bad_request": "invalid_request_error",
        "not_found": "not_found_error",
        "rate_limited": "rate_limit_error",
    }
    assert "max_tokens" in errors["bad_request"]["message"]


def test_mcp_streamable_http_client_through_the_proxy(node: str, gateway: Gateway) -> None:
    out = run_script(node, gateway, "mcp.mjs", "session", "unauthorized", MCP_PATH="/api/v1/mcp/files")
    session = out["session"]
    assert (session["server"], session["protocol"]) == ("files", "2025-11-25")
    assert session["tools"] == ["big", "echo", "fail", "slow"]
    assert session["echoed"] == {"structured": {"text": "from node"}, "is_error": False}
    assert session["failed"] == {"is_error": True}
    assert out["unauthorized"]["thrown"]["status"] == 401


def test_mcp_client_runs_a_code_mode_script(node: str, gateway: Gateway) -> None:
    """Issue 17 point 1: Node's MCP SDK on /api/v1/mcp runs a script that calls the upstream's echo."""
    out = run_script(node, gateway, "mcp.mjs", "codemode", MCP_PATH="/api/v1/mcp")
    codemode = out["codemode"]
    assert codemode["server"] == "voidllm-code-mode"
    assert codemode["tools"] == ["list_servers", "search_tools", "execute_code"]
    answer = codemode["ran"]["answer"]
    assert (answer["result"], answer["logs"], codemode["ran"]["is_error"]) == (
        "from a node script",
        [{"level": "info", "msg": "seen"}],
        False,
    )
    assert [(c["server"], c["tool"], c["status"]) for c in answer["tool_calls"]] == [
        ("files", "echo", "success")
    ]
    assert codemode["failed"] == {"text": "TypeError: nope", "is_error": True}
