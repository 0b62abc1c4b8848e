"""Config classes for upstreams: LLM models with their deployments, and MCP servers.

Field names are the YAML keys. Optional strings default to ``""`` (unset); optional durations to ``None``.
Rules that relate several fields (per-provider required fields, ``strategy`` iff ``deployments``) are in
``validate.py``; rules across models (unique names, aliases, fallback chains) are checked on the whole file.
"""

from typing import Annotated

import attrs

from voidllm.config.checks import NOT_EMPTY, HttpUrl, OneOf, Pattern, Predicate, Range
from voidllm.config.units import Unit
from voidllm.providers.registry import NAMES

__all__ = [
    "DEMO_BASE_URL",
    "DeploymentConfig",
    "MCPServerConfig",
    "ModelConfig",
    "PricingConfig",
]

DEMO_BASE_URL = "http://demo.voidllm.invalid/v1"
"""Where ``provider: mock`` upstreams point (``.invalid`` never resolves): the transport answers them in
process (:mod:`voidllm.proxy.demo`); the loader fills it in when such a model gives no ``base_url``."""
MODEL_TYPES = ("chat", "embedding", "reranking", "completion", "image", "audio_transcription", "tts")
STRATEGIES = ("round-robin", "least-latency", "weighted", "priority")
MCP_AUTH_TYPES = ("none", "bearer", "header", "oauth")

_MODEL_NAME = Predicate(
    lambda name: bool(name) and ":deleted:" not in name, "must not be empty or contain ':deleted:'"
)
_NOT_NEGATIVE = Range(min=0)
_OPTIONAL_TIMEOUT = Range(positive=True, unit=Unit.DURATION)
_MCP_ALIAS = Pattern(
    r"[a-z0-9][a-z0-9-]*", "lowercase letters, digits and '-', starting with a letter or digit"
)
_NOT_RESERVED = Predicate(lambda alias: alias != "voidllm", "'voidllm' is reserved for the built-in server")


@attrs.frozen
class PricingConfig:
    """Prices in currency units per one million tokens; used to compute the cost of usage."""

    input_per_1m: Annotated[float, _NOT_NEGATIVE] = 0.0
    output_per_1m: Annotated[float, _NOT_NEGATIVE] = 0.0


@attrs.frozen
class DeploymentConfig:
    """One upstream serving a model; a model with deployments routes between them by ``strategy``."""

    name: Annotated[str, NOT_EMPTY]
    provider: Annotated[str, OneOf(NAMES)]
    base_url: Annotated[str, NOT_EMPTY, HttpUrl()]
    api_key: str = ""
    azure_deployment: str = ""
    azure_api_version: str = ""
    gcp_project: str = ""
    gcp_location: str = ""
    weight: Annotated[int, _NOT_NEGATIVE] = 1
    priority: Annotated[int, _NOT_NEGATIVE] = 0


@attrs.frozen
class ModelConfig:
    """A model clients can ask for by ``name`` or by one of its ``aliases``.

    Without ``deployments`` the model is served by its own ``provider``/``base_url``; with them, those two are
    ignored and each deployment names its own. ``timeout`` bounds a whole request (including a stream),
    ``attempt_timeout`` the wait for one upstream's response headers, ``hedge_after`` when a second upstream
    is tried in parallel. ``fallback`` names (or aliases) the model to try when this one fails.
    """

    name: Annotated[str, _MODEL_NAME]
    provider: Annotated[str, OneOf(NAMES, allow_empty=True)] = ""
    type: Annotated[str, OneOf(MODEL_TYPES)] = "chat"
    base_url: Annotated[str, HttpUrl()] = ""
    api_key: str = ""
    aliases: tuple[Annotated[str, NOT_EMPTY], ...] = ()
    max_context_tokens: Annotated[int, _NOT_NEGATIVE] = 0
    pricing: PricingConfig = PricingConfig()
    azure_deployment: str = ""
    azure_api_version: str = ""
    gcp_project: str = ""
    gcp_location: str = ""
    timeout: Annotated[float | None, Unit.DURATION, _OPTIONAL_TIMEOUT] = None
    attempt_timeout: Annotated[float | None, Unit.DURATION, _OPTIONAL_TIMEOUT] = None
    hedge_after: Annotated[float | None, Unit.DURATION, _OPTIONAL_TIMEOUT] = None
    strategy: Annotated[str, OneOf(STRATEGIES, allow_empty=True)] = ""
    max_retries: Annotated[int, _NOT_NEGATIVE] = 0
    fallback: str = ""
    deployments: tuple[DeploymentConfig, ...] = ()


@attrs.frozen
class MCPServerConfig:
    """An upstream MCP server exposed through the gateway under ``alias``.

    ``oauth_scopes`` is one space-separated string, as sent in an OAuth token request.
    """

    name: Annotated[str, NOT_EMPTY]
    alias: Annotated[str, _MCP_ALIAS, _NOT_RESERVED]
    url: Annotated[str, NOT_EMPTY, HttpUrl()]
    auth_type: Annotated[str, OneOf(MCP_AUTH_TYPES)] = "none"
    auth_header: str = ""
    auth_token: str = ""
    oauth_token_url: Annotated[str, HttpUrl(https_only=True)] = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = ""
    oauth_scopes: str = ""
