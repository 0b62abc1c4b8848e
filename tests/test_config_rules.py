"""Every validation rule of voidllm.yaml, each with the exact message and key path it reports."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from voidllm.config import Config, ConfigError, parse_config

KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 bytes
ENV = {"VOIDLLM_ENCRYPTION_KEY": KEY}


def load(document: dict[str, Any]) -> Config:
    return parse_config(yaml.safe_dump(document), environ=ENV)


def problems(document: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load(document)
    return info.value.problems


def model(name: str = "m", **fields: Any) -> dict[str, Any]:
    return {"name": name, "provider": "openai", "base_url": "http://up:8000/v1", **fields}


def deployment(name: str = "d", **fields: Any) -> dict[str, Any]:
    return {"name": name, "provider": "openai", "base_url": "http://up:8000/v1", **fields}


def mcp(alias: str = "tools", **fields: Any) -> dict[str, Any]:
    return {"name": "Tools", "alias": alias, "url": "https://mcp.example.com/mcp", **fields}


def proxy(**fields: Any) -> dict[str, Any]:
    return {"server": {"proxy": fields}}


def settings(**fields: Any) -> dict[str, Any]:
    return {"settings": fields}


DURATION_HINT = "expected a duration such as 30s, 5m, 1h30m or 7d"
PROVIDERS = "openai, anthropic, azure, gemini, vertex, vllm, ollama, custom, mock"
NOT_A_HEADER_VALUE = (
    "must be printable ASCII without control characters or spaces at either end "
    "(it is sent in an HTTP header)"
)


def case(name: str, document: dict[str, Any], *expected: str) -> Any:
    return pytest.param(document, expected, id=name)


def deployed(*deployments: dict[str, Any], strategy: str = "priority") -> dict[str, Any]:
    return {"models": [model(strategy=strategy, deployments=list(deployments))]}


CASES = [
    # server
    case("port range", proxy(port=70000), "server.proxy.port: must be between 0 and 65535 (got 70000)"),
    case("port negative", proxy(port=-1), "server.proxy.port: must be between 0 and 65535 (got -1)"),
    case("port type", proxy(port="http"), "server.proxy.port: expected an integer, got a string"),
    case("port bool", proxy(port=True), "server.proxy.port: expected an integer, got a boolean"),
    case("read timeout 0", proxy(read_timeout="0s"), "server.proxy.read_timeout: must be > 0 (got 0s)"),
    case(
        "write timeout",
        proxy(write_timeout="500ms"),
        "server.proxy.write_timeout: must be 0 or >= 1s (got 500ms)",
    ),
    case(
        "idle timeout bare",
        proxy(idle_timeout=60),
        f"server.proxy.idle_timeout: invalid duration '60': a bare number has no unit; {DURATION_HINT}",
    ),
    case(
        "request body",
        proxy(max_request_body="101MiB"),
        "server.proxy.max_request_body: must be between 1B and 100MiB (got 101MiB)",
    ),
    case(
        "response body",
        proxy(max_response_body="1GiB"),
        "server.proxy.max_response_body: must be between 1B and 500MiB (got 1GiB)",
    ),
    case(
        "size syntax",
        proxy(max_request_body="20 megs"),
        "server.proxy.max_request_body: invalid size '20 megs': "
        "expected a number of bytes or a size such as 512KiB, 20MiB or 1GB",
    ),
    case(
        "stream too short",
        proxy(max_stream_duration="9s"),
        "server.proxy.max_stream_duration: must be between 10s and 1h (got 9s)",
    ),
    case(
        "stream too long",
        proxy(max_stream_duration="61m"),
        "server.proxy.max_stream_duration: must be between 10s and 1h (got 1h1m)",
    ),
    case(
        "drain short",
        proxy(drain_timeout="4s"),
        "server.proxy.drain_timeout: must be between 5s and 2m (got 4s)",
    ),
    case(
        "drain long",
        proxy(drain_timeout="121s"),
        "server.proxy.drain_timeout: must be between 5s and 2m (got 2m1s)",
    ),
    case(
        "admin port",
        {"server": {"admin": {"port": -1}}},
        "server.admin.port: must be between 0 and 65535 (got -1)",
    ),
    case(
        "tls files",
        {"server": {"admin": {"port": 8443, "tls": {"enabled": True}}}},
        "server.admin.tls.cert: required when tls is enabled",
        "server.admin.tls.key: required when tls is enabled",
    ),
    case("workers", {"server": {"workers": 0}}, "server.workers: must be >= 1 (got 0)"),
    case("section type", {"server": ["proxy"]}, "server: expected a mapping, got a list"),
    # database, cache, redis, logging
    case(
        "driver",
        {"database": {"driver": "mysql"}},
        "database.driver: must be one of sqlite, postgres (got 'mysql')",
    ),
    case(
        "postgres dsn", {"database": {"driver": "postgres"}}, "database.dsn: required for the postgres driver"
    ),
    case("open conns", {"database": {"max_open_conns": 0}}, "database.max_open_conns: must be >= 1 (got 0)"),
    case(
        "idle conns", {"database": {"max_idle_conns": -1}}, "database.max_idle_conns: must be >= 0 (got -1)"
    ),
    case(
        "conn lifetime",
        {"database": {"conn_max_lifetime": "forever"}},
        f"database.conn_max_lifetime: invalid duration 'forever': {DURATION_HINT}",
    ),
    case("cache ttl", {"cache": {"key_ttl": "0s"}}, "cache.key_ttl: must be > 0 (got 0s)"),
    case("redis url", {"redis": {"enabled": True}}, "redis.url: required when redis is enabled"),
    case(
        "redis scheme",
        {"redis": {"url": "http://user:secret@cache:6379"}},
        "redis.url: must be a redis://, rediss:// or unix:// URL",
    ),
    case(
        "redis enabled type",
        {"redis": {"enabled": "yes please"}},
        "redis.enabled: expected true or false, got a string",
    ),
    case(
        "log level",
        {"logging": {"level": "warning"}},
        "logging.level: must be one of debug, info, warn, error (got 'warning'; did you mean 'warn'?)",
    ),
    case(
        "log format", {"logging": {"format": "xml"}}, "logging.format: must be one of json, text (got 'xml')"
    ),
    # models
    case(
        "model name missing",
        {"models": [{"provider": "openai", "base_url": "http://x"}]},
        "models[0].name: required key is missing",
    ),
    case(
        "model name empty",
        {"models": [model("")]},
        "models[0].name: must not be empty or contain ':deleted:'",
    ),
    case(
        "model name deleted",
        {"models": [model("gpt:deleted:1")]},
        "models[0].name: must not be empty or contain ':deleted:'",
    ),
    case(
        "model name unique",
        {"models": [model("a"), model("b"), model("a")]},
        "models[2].name: duplicate model name 'a' (see models[0])",
    ),
    case(
        "provider missing",
        {"models": [{"name": "m", "base_url": "http://x"}]},
        "models[0].provider: required when the model has no deployments",
    ),
    case(
        "provider unknown",
        {"models": [model(provider="antropic")]},
        f"models[0].provider: must be one of {PROVIDERS} (got 'antropic'; did you mean 'anthropic'?)",
    ),
    case(
        "model type",
        {"models": [model(type="vision")]},
        "models[0].type: must be one of chat, embedding, reranking, completion, image, audio_transcription, "
        "tts (got 'vision')",
    ),
    case(
        "base url missing",
        {"models": [{"name": "m", "provider": "openai"}]},
        "models[0].base_url: required when the model has no deployments",
    ),
    case(
        "base url scheme",
        {"models": [model(base_url="api.openai.com/v1")]},
        "models[0].base_url: must be an http:// or https:// URL",
    ),
    case(
        "context tokens",
        {"models": [model(max_context_tokens=-5)]},
        "models[0].max_context_tokens: must be >= 0 (got -5)",
    ),
    case(
        "pricing",
        {"models": [model(pricing={"input_per_1m": -0.5, "output_per_1m": "free"})]},
        "models[0].pricing.input_per_1m: must be >= 0 (got -0.5)",
        "models[0].pricing.output_per_1m: expected a number, got a string",
    ),
    case(
        "azure",
        {"models": [model(provider="azure")]},
        "models[0].azure_deployment: required for provider 'azure'",
    ),
    case(
        "vertex",
        {"models": [model(provider="vertex")]},
        "models[0].gcp_project: required for provider 'vertex'",
        "models[0].gcp_location: required for provider 'vertex'",
    ),
    case(
        "timeout invalid",
        {"models": [model(timeout="2 minutes")]},
        f"models[0].timeout: invalid duration '2 minutes': {DURATION_HINT}",
    ),
    case("timeout zero", {"models": [model(timeout="0s")]}, "models[0].timeout: must be > 0 (got 0s)"),
    case(
        "attempt timeout",
        {"models": [model(attempt_timeout=5)]},
        f"models[0].attempt_timeout: invalid duration '5': a bare number has no unit; {DURATION_HINT}",
    ),
    case(
        "hedge after",
        {"models": [model(hedge_after="soon")]},
        f"models[0].hedge_after: invalid duration 'soon': {DURATION_HINT}",
    ),
    case(
        "strategy without deployments",
        {"models": [model(strategy="weighted")]},
        "models[0].strategy: must be empty when the model has no deployments",
    ),
    case(
        "strategy missing",
        {"models": [model(deployments=[deployment()])]},
        "models[0].strategy: required when the model has deployments",
    ),
    case(
        "strategy unknown",
        deployed(deployment(), strategy="random"),
        "models[0].strategy: must be one of round-robin, least-latency, weighted, priority (got 'random')",
    ),
    case("max retries", {"models": [model(max_retries=-1)]}, "models[0].max_retries: must be >= 0 (got -1)"),
    # bounds shared with the admin API (voidllm.bounds)
    case("name too long", {"models": [model("m" * 257)]}, "models[0].name: must be at most 256 characters"),
    case(
        "alias bounds",
        {"models": [model(aliases=["ok", "a" * 257, "x,y"])]},
        "models[0].aliases[1]: must be at most 256 characters",
        "models[0].aliases[2]: must be without commas (stored comma-joined)",
    ),
    case(
        "api key not a header value",
        {"models": [model(api_key="sk-\u00e9\n")]},
        f"models[0].api_key: {NOT_A_HEADER_VALUE}",
    ),
    case(
        "api key with a trailing space",
        {"models": [model(api_key="sk-x ")]},
        f"models[0].api_key: {NOT_A_HEADER_VALUE}",
    ),
    case(
        "base url too long",
        {"models": [model(base_url="http://up/" + "p" * 2048)]},
        "models[0].base_url: must be at most 2048 characters",
    ),
    case(
        "base url host",
        {"models": [model(base_url="http://a..b/v1")]},
        "models[0].base_url: must have a valid host name",
    ),
    case(
        "mcp url not ascii",
        {"mcp_servers": [mcp(url="https://m\u00fc.example.com/mcp")]},
        "mcp_servers[0].url: must be printable ASCII without spaces (percent-encode other characters)",
    ),
    case(
        "retries and context range",
        {"models": [model(max_retries=101, max_context_tokens=2**63)]},
        "models[0].max_context_tokens: must be between 0 and 100000000",
        "models[0].max_retries: must be between 0 and 100",
    ),
    case(
        "price range",
        {"models": [model(pricing={"input_per_1m": 1e7})]},
        "models[0].pricing.input_per_1m: must be between 0 and 1000000",
    ),
    case(
        "weight and priority range",
        deployed(deployment(weight=2**63, priority=1001)),
        "models[0].deployments[0].weight: must be between 0 and 10000",
        "models[0].deployments[0].priority: must be between 0 and 1000",
    ),
    case(
        "mcp secrets not header values",
        {"mcp_servers": [mcp(auth_type="bearer", auth_token="t\r\nX: 1")]},
        f"mcp_servers[0].auth_token: {NOT_A_HEADER_VALUE}",
    ),
    case(
        "aliases type",
        {"models": [model(aliases="gpt4")]},
        "models[0].aliases: expected a list, got a string",
    ),
    case("alias empty", {"models": [model(aliases=["ok", ""])]}, "models[0].aliases[1]: must not be empty"),
    case(
        "alias is a name",
        {"models": [model("a"), model("b", aliases=["x", "a"])]},
        "models[1].aliases[1]: alias 'a' is the name of models[0]",
    ),
    case(
        "alias is a later name",
        {"models": [model("a", aliases=["b"]), model("b")]},
        "models[0].aliases[0]: alias 'b' is the name of models[1]",
    ),
    case(
        "alias taken",
        {"models": [model("a", aliases=["x"]), model("b", aliases=["y", "x"])]},
        "models[1].aliases[1]: alias 'x' is already an alias of models[0]",
    ),
    case(
        "alias twice in a model",
        {"models": [model("a", aliases=["x", "x"])]},
        "models[0].aliases[1]: alias 'x' is already an alias of models[0]",
    ),
    # deployments
    case(
        "deployment weight",
        deployed(deployment(weight=-1), strategy="weighted"),
        "models[0].deployments[0].weight: must be >= 0 (got -1)",
    ),
    case(
        "deployment priority",
        deployed(deployment(priority=-2)),
        "models[0].deployments[0].priority: must be >= 0 (got -2)",
    ),
    case(
        "deployment names",
        deployed(deployment("x"), deployment("x")),
        "models[0].deployments[1].name: duplicate deployment name 'x' (see deployments[0])",
    ),
    case(
        "deployment required",
        deployed({"api_key": "k"}),
        "models[0].deployments[0].name: required key is missing",
        "models[0].deployments[0].provider: required key is missing",
        "models[0].deployments[0].base_url: required key is missing",
    ),
    case(
        "deployment provider",
        deployed(deployment(provider="x")),
        f"models[0].deployments[0].provider: must be one of {PROVIDERS} (got 'x')",
    ),
    case(
        "deployment url",
        deployed(deployment(base_url="ftp://x")),
        "models[0].deployments[0].base_url: must be an http:// or https:// URL",
    ),
    case(
        "deployment azure",
        deployed(deployment(provider="azure")),
        "models[0].deployments[0].azure_deployment: required for provider 'azure'",
    ),
    case(
        "deployment vertex",
        deployed(deployment(provider="vertex", gcp_project="p")),
        "models[0].deployments[0].gcp_location: required for provider 'vertex'",
    ),
    # fallback
    case(
        "fallback unknown",
        {"models": [model("gpt-4o"), model("b", fallback="gpt-4")]},
        "models[1].fallback: unknown model 'gpt-4' (did you mean 'gpt-4o'?)",
    ),
    case(
        "fallback self",
        {"models": [model("a", fallback="a")]},
        "models[0].fallback: a model cannot fall back to itself",
    ),
    case(
        "fallback self alias",
        {"models": [model("a", aliases=["x"], fallback="x")]},
        "models[0].fallback: a model cannot fall back to itself",
    ),
    case(
        "fallback cycle",
        {"models": [model("a", fallback="b"), model("b", fallback="a")]},
        "models[0].fallback: fallback chain forms a cycle: a -> b -> a",
    ),
    case(
        "fallback cycle via alias",
        {
            "models": [
                model("x", fallback="a"),
                model("a", fallback="bee"),
                model("b", aliases=["bee"], fallback="c"),
                model("c", fallback="a"),
            ]
        },
        "models[1].fallback: fallback chain forms a cycle: a -> b -> c -> a",
    ),
    # mcp servers
    case(
        "mcp alias pattern",
        {"mcp_servers": [mcp("My_Tools")]},
        "mcp_servers[0].alias: must be lowercase letters, digits and '-', starting with a letter or digit "
        "(got 'My_Tools')",
    ),
    case(
        "mcp alias reserved",
        {"mcp_servers": [mcp("voidllm")]},
        "mcp_servers[0].alias: 'voidllm' is reserved for the built-in server",
    ),
    case(
        "mcp alias unique",
        {"mcp_servers": [mcp("a"), mcp("b"), mcp("a")]},
        "mcp_servers[2].alias: duplicate alias 'a' (see mcp_servers[0])",
    ),
    case(
        "mcp required",
        {"mcp_servers": [{"alias": "a"}]},
        "mcp_servers[0].name: required key is missing",
        "mcp_servers[0].url: required key is missing",
    ),
    case(
        "mcp url",
        {"mcp_servers": [mcp(url="ws://mcp")]},
        "mcp_servers[0].url: must be an http:// or https:// URL",
    ),
    case(
        "mcp auth type",
        {"mcp_servers": [mcp(auth_type="basic")]},
        "mcp_servers[0].auth_type: must be one of none, bearer, header, oauth (got 'basic')",
    ),
    case(
        "mcp header",
        {"mcp_servers": [mcp(auth_type="header", auth_token="t")]},
        "mcp_servers[0].auth_header: required when auth_type is 'header'",
    ),
    case(
        "mcp oauth",
        {"mcp_servers": [mcp(auth_type="oauth")]},
        "mcp_servers[0].oauth_client_id: required when auth_type is 'oauth'",
        "mcp_servers[0].oauth_client_secret: required when auth_type is 'oauth'",
    ),
    case(
        "mcp oauth url",
        {
            "mcp_servers": [
                mcp(
                    auth_type="oauth",
                    oauth_token_url="http://idp/token",
                    oauth_client_id="i",
                    oauth_client_secret="s",
                )
            ]
        },
        "mcp_servers[0].oauth_token_url: must be an https:// URL",
    ),
    # settings
    case(
        "admin key",
        settings(admin_key="short"),
        "settings.admin_key: must be at least 32 characters long (got 5)",
    ),
    case(
        "encryption key short",
        settings(encryption_key="fifteen chars!!"),
        "settings.encryption_key: must be base64 of exactly 32 bytes or a passphrase of at least 16 "
        "characters",
    ),
    case(
        "admin email",
        settings(bootstrap={"admin_email": "root"}),
        "settings.bootstrap.admin_email: must be an email address",
    ),
    case(
        "org slug",
        settings(bootstrap={"org_slug": "My Org"}),
        "settings.bootstrap.org_slug: must be a slug (lowercase letters, digits and '-') (got 'My Org')",
    ),
    case("org name", settings(bootstrap={"org_name": ""}), "settings.bootstrap.org_name: must not be empty"),
    case(
        "usage buffer", settings(usage={"buffer_size": 0}), "settings.usage.buffer_size: must be > 0 (got 0)"
    ),
    case(
        "usage flush",
        settings(usage={"flush_interval": "0s"}),
        "settings.usage.flush_interval: must be > 0 (got 0s)",
    ),
    case(
        "usage spill budget",
        settings(usage={"spill_max_mb": 0}),
        "settings.usage.spill_max_mb: must be between 1 and 1000000 (got 0)",
    ),
    case(
        "audit buffer",
        settings(audit={"buffer_size": -1}),
        "settings.audit.buffer_size: must be > 0 (got -1)",
    ),
    case(
        "breaker counts",
        settings(circuit_breaker={"threshold": 0, "half_open_max": 0}),
        "settings.circuit_breaker.threshold: must be >= 1 (got 0)",
        "settings.circuit_breaker.half_open_max: must be >= 1 (got 0)",
    ),
    case(
        "breaker timeout",
        settings(circuit_breaker={"timeout": "0s"}),
        "settings.circuit_breaker.timeout: must be > 0 (got 0s)",
    ),
    case(
        "health intervals",
        settings(
            health_check={
                "health": {"interval": "9s"},
                "models": {"interval": "5s"},
                "functional": {"interval": "59s"},
            }
        ),
        "settings.health_check.health.interval: must be >= 10s (got 9s)",
        "settings.health_check.models.interval: must be >= 10s (got 5s)",
        "settings.health_check.functional.interval: must be >= 1m (got 59s)",
    ),
    case(
        "mcp call timeout",
        settings(mcp={"call_timeout": "0s"}),
        "settings.mcp.call_timeout: must be > 0 (got 0s)",
    ),
    case(
        "mcp health interval",
        settings(mcp={"health": {"interval": "1s"}}),
        "settings.mcp.health.interval: must be >= 10s (got 1s)",
    ),
    case(
        "code mode low",
        settings(
            mcp={"code_mode": {"memory_limit_mb": 0, "timeout": "500ms", "pool_size": 0, "max_tool_calls": 0}}
        ),
        "settings.mcp.code_mode.memory_limit_mb: must be between 4 and 128 (got 0)",
        "settings.mcp.code_mode.timeout: must be between 1s and 2m (got 500ms)",
        "settings.mcp.code_mode.pool_size: must be between 1 and 32 (got 0)",
        "settings.mcp.code_mode.max_tool_calls: must be between 1 and 1000 (got 0)",
    ),
    case(
        "code mode high",
        settings(
            mcp={
                "code_mode": {
                    "memory_limit_mb": 129,
                    "timeout": "121s",
                    "pool_size": 33,
                    "max_tool_calls": 1001,
                }
            }
        ),
        "settings.mcp.code_mode.memory_limit_mb: must be between 4 and 128 (got 129)",
        "settings.mcp.code_mode.timeout: must be between 1s and 2m (got 2m1s)",
        "settings.mcp.code_mode.pool_size: must be between 1 and 32 (got 33)",
        "settings.mcp.code_mode.max_tool_calls: must be between 1 and 1000 (got 1001)",
    ),
    case(
        "schema ttl",
        settings(mcp={"code_mode": {"schema_ttl": "weekly"}}),
        f"settings.mcp.code_mode.schema_ttl: invalid duration 'weekly': {DURATION_HINT}",
    ),
    case(
        "retention",
        settings(retention={"usage_events": "3651d", "audit_logs": "3651d", "interval": "59s"}),
        "settings.retention.usage_events: must be between 0s and 3650d (got 3651d)",
        "settings.retention.audit_logs: must be between 0s and 3650d (got 3651d)",
        "settings.retention.interval: must be >= 1m (got 59s)",
    ),
    case(
        "fallback depth",
        settings(fallback_max_depth=11),
        "settings.fallback_max_depth: must be between 0 and 10 (got 11)",
    ),
    case(
        "fallback depth negative",
        settings(fallback_max_depth=-1),
        "settings.fallback_max_depth: must be between 0 and 10 (got -1)",
    ),
]


@pytest.mark.parametrize(("document", "expected"), CASES)
def test_rule(document: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert problems(document) == expected


def test_a_complete_valid_file_loads() -> None:
    cfg = load(
        {
            "server": {
                "proxy": {"port": 9000, "drain_timeout": "30s", "max_request_body": "50MB"},
                "workers": 2,
            },
            "database": {"dsn": "postgresql://voidllm@db/voidllm"},
            "redis": {"enabled": True, "url": "redis://cache:6379/0", "key_prefix": "gw"},
            "models": [
                model(
                    "gpt-4o",
                    aliases=["default"],
                    fallback="claude",
                    timeout="2m",
                    attempt_timeout="20s",
                    hedge_after="1500ms",
                    pricing={"input_per_1m": 2.5, "output_per_1m": 10},
                ),
                model(
                    "claude",
                    provider="anthropic",
                    max_retries=1,
                    strategy="weighted",
                    deployments=[
                        deployment("a", provider="anthropic", weight=3),
                        deployment(
                            "b", provider="vertex", gcp_project="p", gcp_location="europe-west4", weight=0
                        ),
                    ],
                ),
                model("embed", type="embedding", provider="azure", azure_deployment="text-embedding-3"),
            ],
            "mcp_servers": [
                mcp(
                    "github",
                    auth_type="oauth",
                    oauth_token_url="https://idp/token",
                    oauth_client_id="id",
                    oauth_client_secret="secret",
                    oauth_scopes="repo read:org",
                ),
            ],
            "settings": {
                "admin_key": "a" * 32,
                "bootstrap": {"org_name": "Acme Corp"},
                "fallback_max_depth": 0,
                "retention": {"usage_events": "90d"},
            },
        }
    )
    assert cfg.server.proxy.port == 9000
    assert cfg.server.proxy.drain_timeout == 30.0
    assert cfg.server.proxy.max_request_body == 50_000_000
    assert cfg.server.workers == 2
    assert (cfg.database.driver, cfg.database.dsn) == ("postgres", "postgresql://voidllm@db/voidllm")
    assert cfg.redis.key_prefix == "gw:"
    gpt, claude, embed = cfg.models
    assert (gpt.timeout, gpt.attempt_timeout, gpt.hedge_after) == (120.0, 20.0, 1.5)
    assert gpt.aliases == ("default",)
    assert gpt.pricing.output_per_1m == 10.0
    assert [(d.name, d.weight, d.priority) for d in claude.deployments] == [("a", 3, 0), ("b", 0, 0)]
    assert embed.type == "embedding"
    assert cfg.mcp_servers[0].oauth_scopes == "repo read:org"
    assert cfg.settings.bootstrap.org_slug == "acme-corp"
    assert cfg.settings.retention.usage_events == 90 * 86400.0
    assert cfg.settings.fallback_max_depth == 0


def test_defaults() -> None:
    cfg = load({})
    proxy_cfg = cfg.server.proxy
    assert (proxy_cfg.host, proxy_cfg.port) == ("0.0.0.0", 8080)
    assert (proxy_cfg.read_timeout, proxy_cfg.write_timeout, proxy_cfg.idle_timeout) == (30.0, 120.0, 60.0)
    assert (proxy_cfg.max_request_body, proxy_cfg.max_response_body) == (20 * 1024**2, 50 * 1024**2)
    assert (proxy_cfg.max_stream_duration, proxy_cfg.drain_timeout) == (300.0, 25.0)
    assert (cfg.server.admin.port, cfg.server.admin.tls.enabled, cfg.server.workers) == (0, False, 1)
    db = cfg.database
    assert (db.driver, db.dsn, db.max_open_conns, db.max_idle_conns, db.conn_max_lifetime) == (
        "sqlite",
        "voidllm.db",
        25,
        5,
        300.0,
    )
    assert (cfg.cache.key_ttl, cfg.cache.model_ttl, cfg.cache.alias_ttl) == (30.0, 60.0, 60.0)
    assert (cfg.redis.enabled, cfg.redis.url, cfg.redis.key_prefix) == (False, "", "voidllm:")
    assert (cfg.models, cfg.mcp_servers) == ((), ())
    s = cfg.settings
    assert (s.admin_key, s.encryption_key) == ("", KEY)
    assert (s.bootstrap.org_name, s.bootstrap.org_slug, s.bootstrap.admin_email) == (
        "Default",
        "default",
        "admin@voidllm.local",
    )
    assert (s.usage.buffer_size, s.usage.flush_interval, s.usage.drop_on_full) == (1000, 5.0, True)
    assert (s.audit.enabled, s.audit.buffer_size, s.audit.flush_interval) == (True, 500, 5.0)
    cb = s.circuit_breaker
    assert (cb.enabled, cb.threshold, cb.timeout, cb.half_open_max) == (True, 5, 30.0, 1)
    hc = s.health_check
    assert [(p.enabled, p.interval) for p in (hc.health, hc.models, hc.functional)] == [
        (False, 30.0),
        (False, 60.0),
        (False, 300.0),
    ]
    assert (s.mcp.call_timeout, s.mcp.allow_private_urls) == (30.0, False)
    assert (s.mcp.health.enabled, s.mcp.health.interval) == (True, 60.0)
    cm = s.mcp.code_mode
    assert (cm.enabled, cm.memory_limit_mb, cm.timeout, cm.pool_size, cm.max_tool_calls, cm.schema_ttl) == (
        False,
        16,
        30.0,
        8,
        50,
        168 * 3600.0,
    )
    assert (s.retention.usage_events, s.retention.audit_logs, s.retention.interval) == (0.0, 0.0, 86400.0)
    assert s.fallback_max_depth == 3
    assert (cfg.logging.level, cfg.logging.format) == ("info", "json")


def test_model_defaults() -> None:
    (m,) = load({"models": [model()]}).models
    assert (m.type, m.api_key, m.aliases, m.max_context_tokens, m.strategy, m.max_retries, m.fallback) == (
        "chat",
        "",
        (),
        0,
        "",
        0,
        "",
    )
    assert (m.timeout, m.attempt_timeout, m.hedge_after) == (None, None, None)
    assert (m.pricing.input_per_1m, m.pricing.output_per_1m, m.deployments) == (0.0, 0.0, ())


def test_mcp_defaults() -> None:
    (server,) = load({"mcp_servers": [mcp()]}).mcp_servers
    assert (server.auth_type, server.auth_header, server.auth_token, server.oauth_scopes) == (
        "none",
        "",
        "",
        "",
    )


def test_deployment_model_needs_no_model_level_provider_or_url() -> None:
    cfg = load({"models": [{"name": "m", "strategy": "round-robin", "deployments": [deployment()]}]})
    assert (cfg.models[0].provider, cfg.models[0].base_url) == ("", "")
    assert cfg.models[0].deployments[0].weight == 1


def test_postgres_driver_is_inferred_from_the_dsn_only_when_unset() -> None:
    assert load({"database": {"dsn": "postgres://u@h/db"}}).database.driver == "postgres"
    assert load({"database": {"driver": "", "dsn": "postgresql://u@h/db"}}).database.driver == "postgres"
    explicit = load({"database": {"driver": "sqlite", "dsn": "postgres://odd-file-name"}})
    assert explicit.database.driver == "sqlite"
    assert load({"database": {"dsn": "/srv/voidllm.db"}}).database.driver == "sqlite"


def test_empty_redis_prefix_gets_the_default() -> None:
    assert load({"redis": {"key_prefix": ""}}).redis.key_prefix == "voidllm:"
    assert load({"redis": {"key_prefix": "a:b:"}}).redis.key_prefix == "a:b:"


def test_org_slug_kept_when_given() -> None:
    cfg = load(settings(bootstrap={"org_name": "Acme", "org_slug": "acme-eu"}))
    assert cfg.settings.bootstrap.org_slug == "acme-eu"


def test_encryption_key_as_passphrase_of_16_characters() -> None:
    cfg = parse_config(yaml.safe_dump(settings(encryption_key="sixteen chars!!!")), environ={})
    assert cfg.settings.encryption_key == "sixteen chars!!!"


def test_encryption_key_is_required() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("logging: {level: info}\n", environ={})
    assert info.value.problems == (
        "settings.encryption_key: required; set it here or in VOIDLLM_ENCRYPTION_KEY",
    )


@pytest.mark.parametrize("key", ["license", "license_file", "pii", "token_counting", "soft_limit_threshold"])
def test_go_only_settings_are_unknown_keys(key: str) -> None:
    assert problems(settings(**{key: "x"})) == (
        f"settings.{key}: unknown key (not supported by this version of VoidLLM)",
    )


def test_license_at_the_top_level_is_an_unknown_key() -> None:
    assert problems({"license": "jwt"}) == (
        "license: unknown key (not supported by this version of VoidLLM)",
    )


def test_cycle_is_reported_once_and_not_for_models_leading_into_it() -> None:
    found = problems(
        {
            "models": [
                model("entry", fallback="p"),
                model("p", fallback="q"),
                model("q", fallback="r"),
                model("r", fallback="p"),
                model("s", fallback="t"),
                model("t", fallback="s"),
            ]
        }
    )
    assert found == (
        "models[1].fallback: fallback chain forms a cycle: p -> q -> r -> p",
        "models[4].fallback: fallback chain forms a cycle: s -> t -> s",
    )


def test_acyclic_chain_is_fine() -> None:
    cfg = load({"models": [model("a", fallback="b"), model("b", aliases=["bee"], fallback="c"), model("c")]})
    assert [m.fallback for m in cfg.models] == ["b", "c", ""]


def test_write_timeout_zero_turns_it_off() -> None:
    assert load(proxy(write_timeout=0)).server.proxy.write_timeout == 0.0


SSO = {
    "enabled": True,
    "issuer": "https://login.example.com",
    "client_id": "voidllm",
    "default_org_slug": "acme",
}


def test_sso_defaults_and_a_full_provider() -> None:
    sso = load({}).settings.sso
    assert (sso.enabled, sso.scopes, sso.default_role, sso.group_sync, sso.group_claim) == (
        False,
        ("openid", "email", "profile"),
        "member",
        "additive",
        "groups",
    )
    assert sso.id_token_algorithms == ("RS256", "ES256", "PS256", "EdDSA")
    assert sso.allow_private_issuers is False  # organisations' providers follow the URL policy
    fields = {"allowed_domains": ["example.com"], "group_sync": "exact", "allow_private_issuers": True}
    full = load(settings(sso={**SSO, **fields})).settings.sso
    assert (full.issuer, full.allowed_domains, full.group_sync, full.allow_private_issuers) == (
        "https://login.example.com",
        ("example.com",),
        "exact",
        True,
    )
    alone = load(settings(sso={"allow_private_issuers": True})).settings.sso  # without a global provider
    assert (alone.enabled, alone.allow_private_issuers) == (False, True)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"issuer": "http://login.example.com"},
            "settings.sso.issuer: must be an https:// URL (http only for ",
        ),
        ({"issuer": "ftp://x"}, "settings.sso.issuer: must be an http:// or https:// URL"),
        ({"client_id": ""}, "settings.sso.client_id: required when sso is enabled"),
        ({"default_org_slug": ""}, "settings.sso.default_org_slug: required when sso is enabled with auto_p"),
        ({"default_role": "org_admin"}, "settings.sso.default_role: must be one of member, team_admin"),
        ({"group_sync": "full"}, "settings.sso.group_sync: must be one of off, additive, exact"),
        ({"id_token_algorithms": ["none"]}, "settings.sso.id_token_algorithms: 'none' is not allowed"),
        ({"id_token_algorithms": ["HS256"]}, "settings.sso.id_token_algorithms: 'HS256' is not allowed"),
        ({"id_token_algorithms": []}, "settings.sso.id_token_algorithms: must list at least one algorithm"),
        ({"allowed_domains": ["@x.com"]}, "settings.sso.allowed_domains: '@x.com' is not a lowercase domain"),
        ({"scopes": ["email"]}, "settings.sso.scopes: must include openid"),
        ({"auto_provision": "yes"}, "settings.sso.auto_provision: expected true or false, got a string"),
        (
            {"allow_private_issuers": "yes"},
            "settings.sso.allow_private_issuers: expected true or false, got a string",
        ),
        ({"allow_private_issuers": 1}, "settings.sso.allow_private_issuers: expected true or false"),
        ({"colour": "red"}, "settings.sso.colour: unknown key"),
    ],
)
def test_sso_is_strict(fields: dict[str, Any], expected: str) -> None:
    found = problems(settings(sso={**SSO, **fields}))
    assert len(found) == 1
    assert found[0].startswith(expected), found


def test_sso_loopback_issuer_and_env_secret() -> None:
    sso = load(settings(sso={**SSO, "issuer": "http://127.0.0.1:9000/op"})).settings.sso
    assert sso.issuer == "http://127.0.0.1:9000/op"
    cfg = parse_config(
        yaml.safe_dump(
            settings(encryption_key="sixteen chars!!!", sso={**SSO, "client_secret": "${SSO_SECRET}"})
        ),
        environ={"SSO_SECRET": "s3cret"},
    )
    assert cfg.settings.sso.client_secret == "s3cret"
    assert "s3cret" not in repr(cfg.settings.sso)
