"""The use cases without the server's runtimes (``Services.health`` and ``Services.mcp`` left ``None``, as in
the CLI): every reader handles their absence, directly against a store (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from voidllm.admin import mcp_servers, probes
from voidllm.admin.context import Actor
from voidllm.admin.services import McpRuntime, Services
from voidllm.auth.cache import KeyCache
from voidllm.bus import TOPIC_MCP
from voidllm.config import Config, parse_config
from voidllm.crypto import Keyring
from voidllm.errors import ServiceUnavailableError
from voidllm.mcp.health import McpHealthBoard
from voidllm.mcp.registry import McpRegistry
from voidllm.mcp.upstream.client import McpUpstreams
from voidllm.routing.catalog import Catalog
from voidllm.routing.registry import Registry

KEYRING = Keyring.from_setting("a passphrase of enough length for the tests")


class RecordingBus:
    def __init__(self) -> None:
        self.topics: list[str] = []

    async def publish(self, topic: str, message: str = "") -> None:
        self.topics.append(topic)


def bare_services(store: Any) -> Services:
    return Services(
        config=Config(), store=store, keyring=KEYRING, keys=KeyCache(KEYRING.hmac_secret), bus=RecordingBus()
    )


async def create_server(services: Services) -> str:
    req = mcp_servers.McpServerCreate(name="Docs", alias="docs", url="https://mcp.example.com/mcp")
    out = await mcp_servers.create(services, Actor.system(), mcp_servers.McpScope(), req)
    return out.id


async def test_without_the_mcp_runtime_writes_publish_and_probes_answer_503(store: Any) -> None:
    services = bare_services(store)
    server_id = await create_server(services)
    assert services.bus.topics == [TOPIC_MCP]  # type: ignore[attr-defined]
    assert await mcp_servers.health(services, Actor.system()) == []
    for _ in range(2):  # no refresh is counted without the runtime: never 429
        with pytest.raises(ServiceUnavailableError) as refused:
            await mcp_servers.refresh_tools(services, Actor.system(), server_id)
        assert refused.value.code == "mcp_unavailable"
    with pytest.raises(ServiceUnavailableError) as refused:
        await mcp_servers.test(services, Actor.system(), server_id)
    assert refused.value.code == "mcp_unavailable"


async def test_with_the_mcp_runtime_a_write_reloads_its_registry(store: Any) -> None:
    services = bare_services(store)
    reloads: list[str] = []

    async def reload() -> None:
        reloads.append("mcp")

    upstreams = McpUpstreams()
    services.mcp = McpRuntime(
        registry=McpRegistry(), reload=reload, upstreams=upstreams, health=McpHealthBoard()
    )
    try:
        await create_server(services)
    finally:
        await upstreams.aclose()
    assert reloads == ["mcp"]
    assert services.bus.topics == [TOPIC_MCP]  # type: ignore[attr-defined]


async def test_without_the_health_runtime_every_upstream_is_unknown(store: Any) -> None:
    services = bare_services(store)
    config = parse_config(
        "settings:\n  encryption_key: sixteen-chars-or-more\nmodels:\n"
        "  - name: alpha\n    provider: vllm\n    base_url: http://127.0.0.1:8000/v1\n",
        environ={},
    )
    services.catalog = Catalog(Registry.from_config(config.models))
    listing = await probes.health(services, Actor.system())
    assert [(m.name, m.status) for m in listing.models] == [("alpha", "unknown")]
