"""The names traces use: the OpenTelemetry semantic conventions VoidLLM follows, pinned to one version.

Every attribute name a span of VoidLLM carries is a constant here, so a reader (and the zero-knowledge test)
sees in one place what a trace can hold: identifiers, enumerations and counts, never content. The GenAI names
are those of semantic conventions **1.44.0** (:data:`SCHEMA_URL`, given to the tracer so a backend knows which
version the names follow); ``voidllm.*`` are our own, for what the conventions do not name.

Values that come from the request are limited to names the administrators configured (model and deployment
names, MCP server aliases, tool names of the registry) and ids (keys, teams, organisations, the request id);
no prompt, completion, tool argument, tool result, Code Mode script or a name a client typed is ever set.
"""

from __future__ import annotations

import functools
from typing import Final
from urllib.parse import urlsplit

SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.44.0"
"""The semantic conventions version of every name below (``opentelemetry-semantic-conventions`` 0.66b2)."""

# HTTP, URL, server, error (stable conventions)
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
URL_PATH: Final = "url.path"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"

# GenAI (development status in 1.44.0)
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
MCP_METHOD_NAME: Final = "mcp.method.name"

FIRST_TOKEN_EVENT: Final = "gen_ai.first_token"
"""The event on an attempt's span when its stream's first data arrives (the conventions name no event for
it; its attribute :data:`GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK` is theirs: seconds since the request came)."""

# VoidLLM's own
REQUEST_ID: Final = "voidllm.request_id"
KEY_ID: Final = "voidllm.key_id"
TEAM_ID: Final = "voidllm.team_id"
ORG_ID: Final = "voidllm.org_id"
ATTEMPT: Final = "voidllm.attempt"
DEPLOYMENT: Final = "voidllm.deployment"
OUTCOME: Final = "voidllm.outcome"
FAILOVER: Final = "voidllm.failover"
FALLBACK: Final = "voidllm.fallback"
HEDGE: Final = "voidllm.hedge"
MCP_SERVER: Final = "voidllm.mcp.server"
TOOL_CALLS: Final = "voidllm.code_mode.tool_calls"

EXECUTE_TOOL: Final = "execute_tool"
EXECUTE_CODE: Final = "execute_code"

PROVIDERS: Final = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure.ai.openai",
    "gemini": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
}
"""``gen_ai.provider.name`` of our provider names; the others (vllm, ollama, custom, mock) are their own."""

OPERATIONS: Final = {
    "/v1/chat/completions": "chat",
    "/v1/messages": "chat",
    "/v1/responses": "chat",
    "/v1/completions": "text_completion",
    "/v1/embeddings": "embeddings",
}
"""``gen_ai.operation.name`` of the proxied routes the conventions name; the other routes use their path
after ``/v1/`` (``images/generations``, ``audio/speech``, ``messages/count_tokens``, ...)."""


def operation_of(path: str) -> str:
    """The ``gen_ai.operation.name`` of a proxied route."""
    return OPERATIONS.get(path) or path.removeprefix("/v1/")


def provider_of(provider: str) -> str:
    """The ``gen_ai.provider.name`` of one of our provider names."""
    return PROVIDERS.get(provider, provider)


@functools.lru_cache(maxsize=1024)
def server_of(base_url: str) -> tuple[str, int]:
    """``(server.address, server.port)`` of an upstream's base URL (the port defaulted by the scheme)."""
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname or "", port or (443 if parts.scheme == "https" else 80)
