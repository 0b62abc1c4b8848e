"""Issue 13 point 2: a working model on the first run — ``provider: mock``, the built-in demo provider.

The README's quick start is run as written (its ``curl`` commands, extracted from README.md) against
``voidllm serve`` on ``config.example.yaml``; the official ``openai`` SDK then uses ``default`` for chat,
streams, text completions and embeddings, and every answer says it comes from the demo.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import openai
import orjson
import pytest
import trio

from tests.gateway import ADMIN_KEY, ENCRYPTION_KEY, make_config, run_gateway, usage_rows
from tests.process import spawn_gateway

ROOT = Path(__file__).resolve().parent.parent
DEMO = "models:\n  - name: demo\n    provider: mock\n    aliases: [default]\n"


def readme_curls() -> list[str]:
    """The ``curl`` commands of the README's Quick start, continuation lines joined."""
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", quick, re.DOTALL):
        joined = block.replace("\\\n", " ")
        commands += [line.strip() for line in joined.splitlines() if line.strip().startswith("curl ")]
    return commands


@pytest.mark.slow
async def test_the_readme_quick_start_works_on_the_example_config(tmp_path: Path) -> None:
    env = {
        "VOIDLLM_PORT": "0",
        "VOIDLLM_DATABASE_DSN": str(tmp_path / "voidllm.db"),
        "VOIDLLM_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "VOIDLLM_ADMIN_KEY": ADMIN_KEY,
    }
    curls = readme_curls()
    assert any('"model": "default"' in command for command in curls), curls
    async with spawn_gateway(ROOT / "config.example.yaml", env=env) as gw:
        port = gw.url.rsplit(":", 1)[1]
        for command in curls:
            command = command.replace("localhost:8080", f"127.0.0.1:{port}").replace("vl_uk_…", gw.api_key)
            done = await trio.run_process(["bash", "-c", command], capture_stdout=True, check=False)
            assert done.returncode == 0, command
            answer = orjson.loads(done.stdout)
            assert "error" not in answer, (command, answer)
            if "chat/completions" in command:
                assert answer["system_fingerprint"] == "voidllm-demo"
                assert "demo model" in answer["choices"][0]["message"]["content"]
            if command.split()[2].endswith("/v1/models"):
                assert [(m["id"], m["owned_by"], m["aliases"]) for m in answer["data"]] == [
                    ("demo", "voidllm-demo", ["default"])
                ]


async def test_the_demo_model_answers_the_openai_sdk_in_every_shape(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn, DEMO)) as gw:
        client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=gw.api_key(), max_retries=0)
        hello = [{"role": "user", "content": "hi"}]
        chat = await client.chat.completions.create(model="default", messages=hello)
        assert chat.model == "demo"
        assert chat.system_fingerprint == "voidllm-demo"
        assert chat.choices[0].message.content
        assert "VoidLLM demo model" in chat.choices[0].message.content
        assert chat.usage is not None
        assert chat.usage.completion_tokens > 0

        pieces = []
        stream = await client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            assert chunk.system_fingerprint == "voidllm-demo"
            pieces += [choice.delta.content or "" for choice in chunk.choices]
        assert len([p for p in pieces if p]) == 8
        assert "".join(pieces) == chat.choices[0].message.content

        text = await client.completions.create(model="default", prompt="hi")
        assert text.system_fingerprint == "voidllm-demo"
        assert text.choices[0].text == chat.choices[0].message.content

        embedded = await client.embeddings.create(model="default", input=["a", "b"])
        assert [len(item.embedding) for item in embedded.data] == [8, 8]
        again = await client.embeddings.create(model="default", input=["a", "b"])
        assert again.data[0].embedding == embedded.data[0].embedding  # deterministic
    rows = await usage_rows("sqlite", sqlite_dsn)  # the gateway flushed its usage writer on the way out
    assert [(row["model_name"], row["requested_model_name"], row["status"]) for row in rows] == [
        ("demo", "default", "ok")
    ] * 5
    assert all(row["total_tokens"] > 0 for row in rows)


def test_config_example_ships_the_demo_as_default() -> None:
    from voidllm.config import parse_config

    config = parse_config(
        (ROOT / "config.example.yaml").read_text(),
        environ={
            "VOIDLLM_ENCRYPTION_KEY": ENCRYPTION_KEY,
            **{k: v for k, v in os.environ.items() if k == "PATH"},
        },
    )
    [demo] = config.models
    assert (demo.name, demo.provider, demo.aliases, demo.base_url) == (
        "demo",
        "mock",
        ("default",),
        "http://demo.voidllm.invalid/v1",
    )
    assert subprocess.run(["curl", "--version"], capture_output=True).returncode == 0  # the README uses curl
