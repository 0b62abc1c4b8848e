"""Config classes of the ``settings:`` section: secrets, bootstrap, background services and their limits.

Field names are the YAML keys; durations are ``float`` seconds. Two deliberate differences from the Go
original: ``circuit_breaker.enabled`` defaults to true, and ``fallback_max_depth`` defaults to 3.
"""

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any

import attrs

from voidllm.config.checks import (
    ENCRYPTION_KEY,
    NOT_EMPTY,
    FieldCheck,
    HttpUrl,
    MinLength,
    OneOf,
    Origins,
    Pattern,
    Predicate,
    Range,
)
from voidllm.config.units import Duration, Unit
from voidllm.guard import OFF, GuardPolicy

__all__ = [
    "AuditConfig",
    "BootstrapConfig",
    "CircuitBreakerConfig",
    "CodeModeConfig",
    "FunctionalProbeConfig",
    "HealthCheckConfig",
    "HealthProbeConfig",
    "LimitsConfig",
    "MCPConfig",
    "MCPHealthConfig",
    "ModelsProbeConfig",
    "OtelConfig",
    "RetentionConfig",
    "SSOConfig",
    "SettingsConfig",
    "UsageConfig",
    "slugify",
]

_POSITIVE = Range(positive=True)
_POSITIVE_DURATION = Range(positive=True, unit=Unit.DURATION)
_TEN_YEARS = 10 * 365 * 86400.0
_SLUG = Pattern(r"[a-z0-9][a-z0-9-]*", "a slug (lowercase letters, digits and '-')", allow_empty=True)


def _seconds(low: float | None = None, high: float | None = None) -> Range:
    return Range(min=low, max=high, unit=Unit.DURATION)


def slugify(name: str) -> str:
    """The URL slug of an organisation name: lowercase ASCII letters and digits joined by single hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "default"


@attrs.frozen
class _Networks(FieldCheck):
    """Every entry an IP address or network (``10.0.0.0/8``, ``::1``); names the first that is not."""

    def __call__(self, value: Any) -> str | None:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                return f"{entry!r} is not an IP address or network (e.g. 10.0.0.0/8 or ::1)"
        return None


def _is_ui_build(value: str) -> bool:
    return value == "" or (Path(value) / "index.html").is_file()


_UI_BUILD = Predicate(_is_ui_build, "must be a directory holding index.html (a built UI, e.g. ui/dist)")


def _slug_or_derived(slug: str, bootstrap: "BootstrapConfig") -> str:
    return slug or slugify(bootstrap.org_name)


@attrs.frozen
class BootstrapConfig:
    """The organisation and admin user created on first start (only when ``settings.admin_key`` is set)."""

    org_name: Annotated[str, NOT_EMPTY] = "Default"
    # mypy's attrs plugin supports only plain converters, and attrs' stub wants the converter to take any
    # AttrsInstance as self: neither can express a converter that reads another field of this class.
    org_slug: Annotated[str, _SLUG] = attrs.field(
        default="",
        converter=attrs.Converter(_slug_or_derived, takes_self=True),  # type: ignore[misc, call-overload]
    )
    admin_email: Annotated[str, Predicate(lambda email: "@" in email, "must be an email address")] = (
        "admin@voidllm.local"
    )


@attrs.frozen
class UsageConfig:
    """The usage writer (events wait in a bounded channel and are written in batches) and the hourly rollups.

    ``rollup_interval`` is how often ``usage_hourly`` is brought up to date; ``rollup_lateness`` is how long
    an event may take from getting its id to being committed (a slow batch transaction, clocks of several
    gateways disagreeing), see :mod:`voidllm.usage.rollups`.

    ``spill_dir`` is where batches go that cannot wait in memory (a store outage, a store slower than the
    traffic), one file per process and kind of row (usage events, MCP tool calls, audit rows), replayed
    when the store answers again and at the next start; empty means ``spill`` next to the SQLite file, or
    ``voidllm-spill/<digest of the DSN>`` in the system's temporary directory on PostgreSQL (one
    directory per database). ``spill_max_mb`` bounds each file;
    beyond it batches are dropped and counted (:mod:`voidllm.usage.spill`).
    """

    buffer_size: Annotated[int, _POSITIVE] = 1000
    flush_interval: Annotated[Duration, _POSITIVE_DURATION] = 5.0
    drop_on_full: bool = True
    spill_dir: str = ""
    spill_max_mb: Annotated[int, Range(min=1, max=1_000_000)] = 256
    rollup_interval: Annotated[Duration, _seconds(1, 3600)] = 60.0
    rollup_lateness: Annotated[Duration, _seconds(1, 86400)] = 300.0


@attrs.frozen
class AuditConfig:
    """The audit-log writer (admin mutations), on by default."""

    enabled: bool = True
    buffer_size: Annotated[int, _POSITIVE] = 500
    flush_interval: Annotated[Duration, _POSITIVE_DURATION] = 5.0


@attrs.frozen
class CircuitBreakerConfig:
    """Per-deployment breakers: open after ``threshold`` failures, probe again after ``timeout``."""

    enabled: bool = True
    threshold: Annotated[int, Range(min=1)] = 5
    timeout: Annotated[Duration, _POSITIVE_DURATION] = 30.0
    half_open_max: Annotated[int, Range(min=1)] = 1


@attrs.frozen
class HealthProbeConfig:
    """Reachability probe: GET the upstream's root; any HTTP answer counts as up."""

    enabled: bool = False
    interval: Annotated[Duration, _seconds(10)] = 30.0


@attrs.frozen
class ModelsProbeConfig:
    """API probe: GET ``<base_url>/models``, a 2xx answer counts as up."""

    enabled: bool = False
    interval: Annotated[Duration, _seconds(10)] = 60.0


@attrs.frozen
class FunctionalProbeConfig:
    """End-to-end probe: a billable one-token request to each model."""

    enabled: bool = False
    interval: Annotated[Duration, _seconds(60)] = 300.0


@attrs.frozen
class HealthCheckConfig:
    """The three levels of upstream health probing, each off unless enabled."""

    health: HealthProbeConfig = HealthProbeConfig()
    models: ModelsProbeConfig = ModelsProbeConfig()
    functional: FunctionalProbeConfig = FunctionalProbeConfig()


@attrs.frozen
class MCPHealthConfig:
    """Periodic health probes of the configured MCP servers."""

    enabled: bool = True
    interval: Annotated[Duration, _seconds(10)] = 60.0


@attrs.frozen
class CodeModeConfig:
    """The Code Mode sandbox; ``schema_ttl`` 0 means inferred output schemas are never refreshed."""

    enabled: bool = False
    memory_limit_mb: Annotated[int, Range(4, 128)] = 16  # below 4 MB not even `return 1` runs
    timeout: Annotated[Duration, _seconds(1, 120)] = 30.0
    pool_size: Annotated[int, Range(1, 32)] = 8
    max_tool_calls: Annotated[int, Range(1, 1000)] = 50
    schema_ttl: Duration = 168 * 3600.0


@attrs.frozen
class MCPConfig:
    """The MCP gateway: upstream call timeout, private-address policy, health probes and Code Mode."""

    call_timeout: Annotated[Duration, _POSITIVE_DURATION] = 30.0
    allow_private_urls: bool = False
    allowed_origins: Annotated[tuple[str, ...], Origins()] = ()
    health: MCPHealthConfig = MCPHealthConfig()
    code_mode: CodeModeConfig = CodeModeConfig()


@attrs.frozen
class LimitsConfig:
    """Token budgets: what a request reserves before its real usage is known (``voidllm.limits``).

    ``default_completion_reserve`` is reserved for the answer when a request sets no ``max_tokens``
    (``max_completion_tokens``, ``max_output_tokens``); ``reservation_ttl`` is how long a reservation of a
    process that died mid-request holds budget back (Redis backend), longer than any request may run.
    """

    default_completion_reserve: Annotated[int, Range(min=0)] = 1024
    reservation_ttl: Annotated[Duration, _seconds(60, 86400)] = 900.0


@attrs.frozen
class RetentionConfig:
    """How long rows of each log table are kept (0 = forever), how often old rows are deleted, and how
    many rows one delete statement removes (:mod:`voidllm.usage.retention`)."""

    usage_events: Annotated[Duration, _seconds(0, _TEN_YEARS)] = 0.0
    audit_logs: Annotated[Duration, _seconds(0, _TEN_YEARS)] = 0.0
    mcp_tool_calls: Annotated[Duration, _seconds(0, _TEN_YEARS)] = 0.0
    usage_hourly: Annotated[Duration, _seconds(0, _TEN_YEARS)] = 0.0
    incidents: Annotated[Duration, _seconds(0, _TEN_YEARS)] = 0.0
    interval: Annotated[Duration, _seconds(60)] = 24 * 3600.0
    batch_size: Annotated[int, Range(1, 100_000)] = 10_000

    @property
    def enabled(self) -> bool:
        """Whether any table has a retention period."""
        return any(
            (self.usage_events, self.audit_logs, self.mcp_tool_calls, self.usage_hourly, self.incidents)
        )


SSO_ROLES = ("member", "team_admin")
"""The roles a user provisioned by single sign-on may get in the provider's organisation."""
GROUP_SYNC_MODES = ("off", "additive", "exact")
ID_TOKEN_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
"""The asymmetric JWS algorithms an ID token may be signed with; never ``none``, never HMAC (the key would be
the client secret, which a public client does not have)."""


@attrs.frozen
class _Algorithms(FieldCheck):
    """A non-empty list of :data:`ID_TOKEN_ALGORITHMS`; names the first that is not one."""

    def __call__(self, value: Any) -> str | None:
        if not value:
            return "must list at least one algorithm"
        for entry in value:
            if entry not in ID_TOKEN_ALGORITHMS:
                return f"{entry!r} is not allowed (one of: {', '.join(ID_TOKEN_ALGORITHMS)})"
        return None


@attrs.frozen
class _Domains(FieldCheck):
    """Every entry a bare DNS domain (``example.com``), lowercase; names the first that is not."""

    def __call__(self, value: Any) -> str | None:
        for entry in value:
            if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", entry):
                return f"{entry!r} is not a lowercase domain such as example.com"
        return None


@attrs.frozen
class SSOConfig:
    """The global OpenID Connect provider (README "Single sign-on", :mod:`voidllm.auth.oidc`).

    ``issuer`` is an https URL (http only for ``127.0.0.1``/``localhost``, for tests); ``redirect_url`` empty
    means the request's own origin + ``/api/v1/auth/oidc/callback``. New users whose verified email's domain
    is in ``allowed_domains`` are created (``auto_provision``) with ``default_role`` in the organisation
    ``default_org_slug``; an empty list refuses every new user. ``group_sync`` maps the ``group_claim`` of the
    ID token to teams: ``off``, ``additive`` (join, never leave) or ``exact`` (also leave the teams made from
    groups that are no longer claimed; hand-made teams are never touched). Per-organisation providers are set
    in the admin API and win for their users; as their issuers are set by organisation admins, the gateway
    fetches nothing of theirs (discovery document, key set, token endpoint) from a private, loopback or
    link-local address unless ``allow_private_issuers`` (the URL policy of
    :mod:`voidllm.mcp.upstream.ssrf`); this provider, set by the operator, may be anywhere.
    """

    enabled: bool = False
    issuer: Annotated[str, HttpUrl()] = ""
    client_id: str = ""
    client_secret: str = attrs.field(default="", repr=False)
    redirect_url: Annotated[str, HttpUrl()] = ""
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    allowed_domains: Annotated[tuple[str, ...], _Domains()] = ()
    auto_provision: bool = True
    default_role: Annotated[str, OneOf(SSO_ROLES)] = "member"
    default_org_slug: Annotated[str, _SLUG] = ""
    group_sync: Annotated[str, OneOf(GROUP_SYNC_MODES)] = "additive"
    group_claim: Annotated[str, NOT_EMPTY] = "groups"
    id_token_algorithms: Annotated[tuple[str, ...], _Algorithms()] = ("RS256", "ES256", "PS256", "EdDSA")
    allow_private_issuers: bool = False


@attrs.frozen
class _HeaderMap(FieldCheck):
    """Header names without spaces or colons, values of printable ASCII (they are sent as they are)."""

    def __call__(self, value: Any) -> str | None:
        for name, text in value.items():
            if not name or any(ch.isspace() or ch == ":" for ch in name):
                return f"{name!r} is not an HTTP header name"
            if any(not " " <= ch <= "~" for ch in text):
                return f"the value of {name!r} must be printable ASCII"
        return None


OTEL_PROTOCOLS = ("http/protobuf", "grpc")


@attrs.frozen
class OtelConfig:
    """OpenTelemetry traces (:mod:`voidllm.tracing`), off by default; never content, whatever is set here.

    ``endpoint`` empty means the protocol's default: ``http://localhost:4318`` for ``http/protobuf`` (the
    traces path ``/v1/traces`` is appended when the endpoint has no path), ``localhost:4317`` for ``grpc``
    (``insecure`` there means plain text instead of TLS). ``sample_rate`` is the ratio of new traces kept (a
    trace an incoming ``traceparent`` continues follows its parent's decision). Finished spans wait in a
    queue of ``queue_size`` (full: dropped and counted) and are exported in batches of up to ``batch_size``
    every ``export_interval``; one export, retries included, gives up after ``export_timeout``.
    """

    enabled: bool = False
    endpoint: str = ""
    protocol: Annotated[
        str, Predicate(lambda value: value in OTEL_PROTOCOLS, "must be one of http/protobuf, grpc")
    ] = "http/protobuf"
    insecure: bool = False
    headers: Annotated[dict[str, str], _HeaderMap()] = attrs.field(factory=dict, hash=False)
    sample_rate: Annotated[float, Range(0.0, 1.0)] = 1.0
    service_name: Annotated[str, NOT_EMPTY] = "voidllm"
    queue_size: Annotated[int, Range(1, 1_000_000)] = 2048
    batch_size: Annotated[int, Range(1, 100_000)] = 512
    export_interval: Annotated[Duration, _seconds(0.01, 60)] = 1.0
    export_timeout: Annotated[Duration, _seconds(0.1, 300)] = 10.0


@attrs.frozen
class SettingsConfig:
    """Secrets and application settings.

    ``encryption_key`` is required (here or in ``VOIDLLM_ENCRYPTION_KEY``); ``admin_key`` only triggers the
    first-start bootstrap. ``fallback_max_depth`` bounds model fallback chains (0 turns fallback off).
    ``guard`` is the prompt guard's gateway-wide policy (:func:`voidllm.guard.parse_policy`, strictly): the
    baseline every request's policy is merged with; off for every kind by default, which costs nothing.
    """

    admin_key: Annotated[str, MinLength(32)] = ""
    encryption_key: Annotated[str, ENCRYPTION_KEY] = ""
    bootstrap: BootstrapConfig = BootstrapConfig()
    usage: UsageConfig = UsageConfig()
    audit: AuditConfig = AuditConfig()
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    health_check: HealthCheckConfig = HealthCheckConfig()
    mcp: MCPConfig = MCPConfig()
    retention: RetentionConfig = RetentionConfig()
    limits: LimitsConfig = LimitsConfig()
    otel: OtelConfig = OtelConfig()
    sso: SSOConfig = SSOConfig()
    guard: GuardPolicy = OFF
    fallback_max_depth: Annotated[int, Range(0, 10)] = 3
    trusted_proxies: Annotated[tuple[str, ...], _Networks()] = ()
    ui_dir: Annotated[str, _UI_BUILD] = ""
