"""The root :class:`Config` of ``voidllm.yaml`` and its infrastructure sections.

Every class is an immutable value (``attrs.frozen``, slotted) whose field names are the YAML keys, so
``cfg.server.proxy.drain_timeout`` is the value of ``server: {proxy: {drain_timeout: ...}}``. Durations are
``float`` seconds, sizes ``int`` bytes. ``Config()`` is the all-defaults configuration; it is not validated
(use ``parse_config``/``load_config`` for that), and its ``settings.encryption_key`` is empty.

Derived defaults are computed by attrs converters, so they hold however a value is built: ``database.dsn``
is ``voidllm.db`` for SQLite when left empty, ``redis.key_prefix`` always ends with ``:``, and
``settings.bootstrap.org_slug`` defaults to the slug of ``org_name``. (Choosing the ``postgres`` driver from a
``postgres://`` DSN happens while loading, because it needs to know whether ``driver`` was given at all.)
"""

from typing import Annotated

import attrs

from voidllm.config.checks import OneOf, Origins, Predicate, Range
from voidllm.config.settings import SettingsConfig
from voidllm.config.units import ByteSize, Duration, MiB, Unit
from voidllm.config.upstreams import MCPServerConfig, ModelConfig

__all__ = [
    "AdminServerConfig",
    "CacheConfig",
    "Config",
    "CorsConfig",
    "DatabaseConfig",
    "LoggingConfig",
    "ProxyServerConfig",
    "RedisConfig",
    "ServerConfig",
    "TLSConfig",
]

_REDIS_URL = Predicate(  # the URL may hold a password, so the message does not repeat it
    lambda url: url == "" or url.startswith(("redis://", "rediss://", "unix://")),
    "must be a redis://, rediss:// or unix:// URL",
)
_POSITIVE_DURATION = Range(positive=True, unit=Unit.DURATION)


@attrs.frozen
class TLSConfig:
    """TLS for the admin listener; ``cert`` and ``key`` are PEM file paths, both required when enabled and
    set only then (``voidllm serve`` also loads them before it binds, :mod:`voidllm.config.tls`)."""

    enabled: bool = False
    cert: str = ""
    key: str = ""


@attrs.frozen
class ProxyServerConfig:
    """The client-facing listener and the limits of proxied requests.

    ``max_stream_duration`` caps a streamed response unless the model sets its own ``timeout``;
    ``drain_timeout`` is how long shutdown waits for in-flight requests. ``port: 0`` binds an ephemeral port
    (the bound address is logged in the ``listening`` line), for tests and side-by-side benchmarks.
    """

    host: str = "0.0.0.0"
    port: Annotated[int, Range(0, 65535)] = 8080
    read_timeout: Annotated[Duration, _POSITIVE_DURATION] = 30.0
    write_timeout: Annotated[Duration, Range(min=1.0, unit=Unit.DURATION, zero_ok=True)] = 120.0
    idle_timeout: Annotated[Duration, _POSITIVE_DURATION] = 60.0
    max_request_body: Annotated[ByteSize, Range(1, 100 * MiB, unit=Unit.SIZE)] = 20 * MiB
    max_response_body: Annotated[ByteSize, Range(1, 500 * MiB, unit=Unit.SIZE)] = 50 * MiB
    max_stream_duration: Annotated[Duration, Range(10.0, 3600.0, unit=Unit.DURATION)] = 300.0
    drain_timeout: Annotated[Duration, Range(5.0, 120.0, unit=Unit.DURATION)] = 25.0


@attrs.frozen
class AdminServerConfig:
    """A separate listener for the admin API, the MCP endpoints, the playground, the API docs and the UI
    (dual-port mode; the proxy port then serves only ``/v1`` and health). ``port: 0`` (the default) serves
    them all on the proxy port. ``host`` empty listens on ``server.proxy.host``; ``tls`` only applies with a
    separate port."""

    host: str = ""
    port: Annotated[int, Range(0, 65535)] = 0
    tls: TLSConfig = TLSConfig()

    def listen_host(self, proxy: ProxyServerConfig) -> str:
        """The address the admin port listens on."""
        return self.host or proxy.host


@attrs.frozen
class CorsConfig:
    """The web pages (browser origins) that may call ``/v1`` and the MCP endpoints (:mod:`voidllm.web.cors`).

    ``allowed_origins`` lists exact origins (``https://app.example.com``), or ``*`` for any page, which is
    refused with ``allow_credentials`` (browsers refuse it too) and does not open the MCP endpoints.
    ``max_age`` is how long a browser may reuse a preflight's answer.
    """

    allowed_origins: Annotated[tuple[str, ...], Origins(wildcard=True)] = ()
    allow_credentials: bool = False
    max_age: Annotated[Duration, Range(0.0, 86400.0, unit=Unit.DURATION)] = 600.0


@attrs.frozen
class ServerConfig:
    """Listeners, browser access (``cors``), and ``workers``: the number of gateway processes sharing the
    listening socket."""

    proxy: ProxyServerConfig = ProxyServerConfig()
    admin: AdminServerConfig = AdminServerConfig()
    cors: CorsConfig = CorsConfig()
    workers: Annotated[int, Range(min=1)] = 1


def _dsn_or_default(dsn: str, database: "DatabaseConfig") -> str:
    return dsn or ("voidllm.db" if database.driver == "sqlite" else "")


@attrs.frozen
class DatabaseConfig:
    """The store: a SQLite file path or a PostgreSQL URL; pool settings apply to PostgreSQL only."""

    driver: Annotated[str, OneOf(("sqlite", "postgres"))] = "sqlite"
    # mypy's attrs plugin supports only plain converters, and attrs' stub wants the converter to take any
    # AttrsInstance as self: neither can express a converter that reads another field of this class.
    dsn: str = attrs.field(
        default="",
        converter=attrs.Converter(_dsn_or_default, takes_self=True),  # type: ignore[misc, call-overload]
    )
    max_open_conns: Annotated[int, Range(min=1)] = 25
    max_idle_conns: Annotated[int, Range(min=0)] = 5
    conn_max_lifetime: Duration = 300.0


@attrs.frozen
class CacheConfig:
    """Reload periods of the in-memory caches of API keys, model access and scoped aliases."""

    key_ttl: Annotated[Duration, _POSITIVE_DURATION] = 30.0
    model_ttl: Annotated[Duration, _POSITIVE_DURATION] = 60.0
    alias_ttl: Annotated[Duration, _POSITIVE_DURATION] = 60.0


def _with_colon(prefix: str) -> str:
    prefix = prefix or "voidllm:"
    return prefix if prefix.endswith(":") else prefix + ":"


@attrs.frozen
class RedisConfig:
    """Shared state across processes (rate counters, budgets, invalidation); ``url`` required when enabled.

    ``on_error`` is what the rate limiter does while Redis cannot be reached: ``allow`` requests uncounted
    (the Go original's behaviour) or ``deny`` them with 503. ``timeout`` bounds every Redis operation;
    ``pool_size`` caps the connections per process.
    """

    enabled: bool = False
    url: Annotated[str, _REDIS_URL] = ""
    key_prefix: str = attrs.field(default="voidllm:", converter=_with_colon)
    on_error: Annotated[str, OneOf(("allow", "deny"))] = "allow"
    timeout: Annotated[Duration, Range(0.05, 30.0, unit=Unit.DURATION)] = 2.0
    pool_size: Annotated[int, Range(1, 1024)] = 16


@attrs.frozen
class LoggingConfig:
    """Log level and format (``json`` for machines, ``text`` for people)."""

    level: Annotated[str, OneOf(("debug", "info", "warn", "error"))] = "info"
    format: Annotated[str, OneOf(("json", "text"))] = "json"


@attrs.frozen
class Config:
    """The whole of ``voidllm.yaml``."""

    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    cache: CacheConfig = CacheConfig()
    redis: RedisConfig = RedisConfig()
    models: tuple[ModelConfig, ...] = ()
    mcp_servers: tuple[MCPServerConfig, ...] = ()
    settings: SettingsConfig = SettingsConfig()
    logging: LoggingConfig = LoggingConfig()
