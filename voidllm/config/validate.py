"""Rules that relate several config values, in two groups.

*Object rules* (:func:`check_object`) relate fields of one object: a provider's required fields, ``strategy``
if and only if there are ``deployments``, TLS files when TLS is on (and only then), an admin port apart from
the proxy port and admin TLS only with it, no CORS ``*`` with credentials. The codec
runs them on each object right after building it, so they see typed values; an object whose own fields failed
to read is not checked again. Models, deployments and MCP servers are also held to the bounds the admin API
declares for the same columns (:mod:`voidllm.bounds`: names and aliases at most 256 characters, URLs 2,048,
provider keys and MCP secrets printable ASCII since they are sent in headers, weights, priorities, retries and
prices in range).

*Document rules* (:func:`check_document`) relate entries across the file: unique model names, aliases that
collide with nothing, fallbacks that point at an existing model without forming a cycle, unique MCP aliases,
and the required encryption key. They read the raw parsed document, tolerating entries of the wrong shape
(those are reported by the codec), so they run even when some other part of the file has errors.

Each problem is a key path relative to the checked object plus a message; single-value rules live in
``checks.py``. Reference: ``internal/config/validate.go`` of the Go original.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from voidllm import bounds as b
from voidllm.bounds import Bounds
from voidllm.config.models import CorsConfig, DatabaseConfig, RedisConfig, ServerConfig, TLSConfig
from voidllm.config.settings import OtelConfig, SSOConfig
from voidllm.config.upstreams import DeploymentConfig, MCPServerConfig, ModelConfig, PricingConfig
from voidllm.providers.registry import PROVIDERS

__all__ = ["Path", "Problem", "check_document", "check_object", "format_path", "issuer_problem"]

Path = tuple[str | int, ...]
Problem = tuple[Path, str]


def format_path(path: Path) -> str:
    """``("models", 2, "weight")`` → ``models[2].weight``; the empty path is ``<root>``."""
    text = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path).lstrip(".")
    return text or "<root>"


def _required(obj: Any, field: str, why: str) -> Iterator[Problem]:
    if not getattr(obj, field):
        yield (field,), f"required {why}"


_UPSTREAM_BOUNDS = {
    "name": b.NAME,
    "base_url": b.URL,
    "api_key": b.HEADER_VALUE,
    "azure_deployment": b.NAME,
    "azure_api_version": b.NAME,
    "gcp_project": b.NAME,
    "gcp_location": b.NAME,
}
_BOUNDS: dict[type, dict[str, Bounds]] = {
    ModelConfig: {
        **_UPSTREAM_BOUNDS,
        "aliases": b.MODEL_ALIASES,
        "max_context_tokens": b.CONTEXT_TOKENS,
        "max_retries": b.RETRIES,
        "fallback": b.NAME,
    },
    DeploymentConfig: {**_UPSTREAM_BOUNDS, "weight": b.WEIGHT, "priority": b.PRIORITY},
    PricingConfig: {"input_per_1m": b.PRICE, "output_per_1m": b.PRICE},
    MCPServerConfig: {
        "name": b.NAME,
        "alias": b.MCP_ALIAS,
        "url": b.URL,
        "auth_header": b.HEADER_NAME,
        "auth_token": b.HEADER_VALUE,
        "oauth_token_url": b.URL,
        "oauth_client_id": b.HEADER_VALUE,
        "oauth_client_secret": b.HEADER_VALUE,
        "oauth_scopes": b.TEXT,
    },
}
"""Fields whose values flow into the same columns as the admin API's, with the API's bounds."""


def _bounds(obj: Any) -> Iterator[Problem]:
    """Each field of :data:`_BOUNDS` out of its bounds (a list's items by their index), and URLs whose host
    the HTTP client cannot use."""
    for field, bounds in _BOUNDS.get(type(obj), {}).items():
        value = getattr(obj, field)
        if bounds is b.URL and value and bounds.problem(value) is None and not _usable_host(value):
            yield (field,), "must have a valid host name"
        if not isinstance(value, tuple) or bounds.items is None:
            if (problem := bounds.problem(value)) is not None:
                yield (field,), problem
            continue
        if (problem := attrs.evolve(bounds, items=None).problem(value)) is not None:
            yield (field,), problem
            continue
        for index, item in enumerate(value):
            if (problem := bounds.items.problem(item)) is not None:
                yield (field, index), problem


def _usable_host(url: str) -> bool:
    try:
        return b.valid_host(urlsplit(url).hostname or "")
    except ValueError:
        return False


def _provider_fields(obj: ModelConfig | DeploymentConfig) -> Iterator[Problem]:
    """The fields a model or deployment needs for its provider."""
    provider = PROVIDERS.get(obj.provider)
    for field in provider.required_fields if provider else ():
        yield from _required(obj, field, f"for provider '{obj.provider}'")


def _model(model: ModelConfig) -> Iterator[Problem]:
    if not model.deployments:
        yield from _required(model, "provider", "when the model has no deployments")
        yield from _required(model, "base_url", "when the model has no deployments")
        yield from _provider_fields(model)
        if model.strategy:
            yield ("strategy",), "must be empty when the model has no deployments"
        return
    yield from _required(model, "strategy", "when the model has deployments")
    first: dict[str, int] = {}
    for index, deployment in enumerate(model.deployments):
        name = deployment.name
        if name in first:
            message = f"duplicate deployment name {name!r} (see deployments[{first[name]}])"
            yield ("deployments", index, "name"), message
        first.setdefault(name, index)


def _mcp_server(server: MCPServerConfig) -> Iterator[Problem]:
    if server.auth_type == "header":
        yield from _required(server, "auth_header", "when auth_type is 'header'")
    if server.auth_type == "oauth":
        yield from _required(server, "oauth_client_id", "when auth_type is 'oauth'")
        yield from _required(server, "oauth_client_secret", "when auth_type is 'oauth'")


def _tls(tls: TLSConfig) -> Iterator[Problem]:
    if tls.enabled:
        yield from _required(tls, "cert", "when tls is enabled")
        yield from _required(tls, "key", "when tls is enabled")
    elif tls.cert or tls.key:  # a team would believe TLS is on
        yield ("enabled",), "must be true when cert or key is set (or remove them)"


def _server(server: ServerConfig) -> Iterator[Problem]:
    admin = server.admin
    if admin.port and admin.port == server.proxy.port:
        yield (
            ("admin", "port"),
            "must differ from server.proxy.port (0 serves the admin API on the proxy port)",
        )
    if not admin.port and admin.tls.enabled:
        yield ("admin", "tls", "enabled"), "applies only to a separate admin port: set server.admin.port"
    if not admin.port and admin.host:
        yield ("admin", "host"), "applies only to a separate admin port: set server.admin.port"


def _database(database: DatabaseConfig) -> Iterator[Problem]:
    if database.driver == "postgres":
        yield from _required(database, "dsn", "for the postgres driver")


def _redis(redis: RedisConfig) -> Iterator[Problem]:
    if redis.enabled:
        yield from _required(redis, "url", "when redis is enabled")


def _cors(cors: CorsConfig) -> Iterator[Problem]:
    if cors.allow_credentials and "*" in cors.allowed_origins:
        yield ("allowed_origins",), "must list exact origins, not '*', when allow_credentials is true"


def _otel(otel: OtelConfig) -> Iterator[Problem]:
    if not otel.endpoint:
        return
    parts = urlsplit(otel.endpoint)
    if otel.protocol == "http/protobuf" and (
        parts.scheme not in ("http", "https") or not _usable_host(otel.endpoint)
    ):
        yield ("endpoint",), "must be an http:// or https:// URL for protocol http/protobuf"
    elif otel.protocol == "grpc" and not (parts.scheme in ("http", "https") and _usable_host(otel.endpoint)):
        if not _usable_host(f"//{otel.endpoint}"):
            yield ("endpoint",), "must be host:port or an http:// or https:// URL for protocol grpc"


def issuer_problem(issuer: str) -> str | None:
    """What is wrong with an OpenID Provider's issuer URL: it must be https, or http on a loopback host
    (``127.0.0.1``, ``::1``, ``localhost``: tests and local development), without a query or fragment."""
    try:
        parts = urlsplit(issuer)
    except ValueError:
        return "must be an https:// URL"
    if parts.query or parts.fragment or not parts.hostname:
        return "must be an https:// URL without a query or fragment"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost"):
        return None
    return "must be an https:// URL (http only for 127.0.0.1 or localhost)"


def _sso(sso: SSOConfig) -> Iterator[Problem]:
    if sso.issuer and (problem := issuer_problem(sso.issuer)) is not None:
        yield ("issuer",), problem
    if sso.client_secret and (problem := b.HEADER_VALUE.problem(sso.client_secret)) is not None:
        yield ("client_secret",), problem
    if not sso.enabled:
        return
    yield from _required(sso, "issuer", "when sso is enabled")
    yield from _required(sso, "client_id", "when sso is enabled")
    if sso.auto_provision:
        yield from _required(sso, "default_org_slug", "when sso is enabled with auto_provision")
    if "openid" not in sso.scopes:
        yield ("scopes",), "must include openid"


_OBJECT_RULES: dict[type, Callable[[Any], Iterator[Problem]]] = {
    ModelConfig: _model,
    DeploymentConfig: _provider_fields,
    MCPServerConfig: _mcp_server,
    TLSConfig: _tls,
    ServerConfig: _server,
    DatabaseConfig: _database,
    RedisConfig: _redis,
    CorsConfig: _cors,
    OtelConfig: _otel,
    SSOConfig: _sso,
}


def check_object(obj: object) -> list[Problem]:
    """The cross-field problems of one config object and its bounds (none for classes without such rules)."""
    rule = _OBJECT_RULES.get(type(obj))
    return [*_bounds(obj), *(rule(obj) if rule is not None else ())]


@attrs.frozen
class _ModelRef:
    """What the document rules need from one raw ``models[]`` entry."""

    index: int
    name: str
    aliases: tuple[tuple[int, str], ...]
    fallback: str

    @classmethod
    def from_raw(cls, index: int, raw: Mapping[str, Any]) -> _ModelRef:
        aliases = raw.get("aliases")
        listed = enumerate(aliases) if isinstance(aliases, list) else enumerate(())
        return cls(
            index=index,
            name=_text(raw.get("name")),
            aliases=tuple((position, _text(alias)) for position, alias in listed if _text(alias)),
            fallback=_text(raw.get("fallback")),
        )


def _text(value: Any) -> str:
    return str(value) if isinstance(value, str) else ""


def _entries(document: Mapping[str, Any], key: str) -> list[tuple[int, Mapping[str, Any]]]:
    items = document.get(key)
    if not isinstance(items, list):
        return []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, Mapping)]


def _names(refs: list[_ModelRef]) -> Iterator[str]:
    first: dict[str, int] = {}
    for ref in refs:
        if ref.name in first:
            where = f"models[{first[ref.name]}]"
            yield f"models[{ref.index}].name: duplicate model name {ref.name!r} (see {where})"
        elif ref.name:
            first[ref.name] = ref.index


def _aliases(refs: list[_ModelRef]) -> Iterator[str]:
    names = {ref.name: ref.index for ref in refs if ref.name}
    owners: dict[str, int] = {}
    for ref in refs:
        for position, alias in ref.aliases:
            where = f"models[{ref.index}].aliases[{position}]"
            if alias in names:
                yield f"{where}: alias {alias!r} is the name of models[{names[alias]}]"
            elif alias in owners:
                yield f"{where}: alias {alias!r} is already an alias of models[{owners[alias]}]"
            else:
                owners[alias] = ref.index


def _resolve(refs: list[_ModelRef]) -> dict[str, _ModelRef]:
    """Model by name or alias; names win over aliases, the first definition over later ones."""
    table: dict[str, _ModelRef] = {}
    for ref in refs:
        for _, alias in ref.aliases:
            table.setdefault(alias, ref)
    for ref in reversed(refs):
        if ref.name:
            table[ref.name] = ref
    return table


def _fallback_targets(refs: list[_ModelRef], table: dict[str, _ModelRef]) -> Iterator[str]:
    for ref in refs:
        if not ref.fallback:
            continue
        target = table.get(ref.fallback)
        where = f"models[{ref.index}].fallback"
        if target is None:
            close = difflib.get_close_matches(ref.fallback, list(table), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield f"{where}: unknown model {ref.fallback!r}{hint}"
        elif target.index == ref.index:
            yield f"{where}: a model cannot fall back to itself"


def _fallback_cycles(refs: list[_ModelRef], table: dict[str, _ModelRef]) -> Iterator[str]:
    """Report each cycle once, at its member listed first in the file, as ``a -> b -> a``."""
    for ref in refs:
        chain = [ref]
        while (step := table.get(chain[-1].fallback)) is not None and step not in chain:
            chain.append(step)
        if step is ref and len(chain) > 1 and ref.index == min(member.index for member in chain):
            cycle = " -> ".join(member.name for member in [*chain, ref])
            yield f"models[{ref.index}].fallback: fallback chain forms a cycle: {cycle}"


def _mcp_aliases(document: Mapping[str, Any]) -> Iterator[str]:
    first: dict[str, int] = {}
    for index, raw in _entries(document, "mcp_servers"):
        alias = _text(raw.get("alias"))
        if alias in first:
            yield f"mcp_servers[{index}].alias: duplicate alias {alias!r} (see mcp_servers[{first[alias]}])"
        elif alias:
            first[alias] = index


def _encryption_key(document: Mapping[str, Any]) -> Iterator[str]:
    settings = document.get("settings", {})
    if isinstance(settings, Mapping) and settings.get("encryption_key") in (None, ""):
        yield "settings.encryption_key: required; set it here or in VOIDLLM_ENCRYPTION_KEY"


def check_document(document: Mapping[str, Any]) -> list[str]:
    """Problems across entries of the raw parsed document, as ``path: message`` lines."""
    refs = [_ModelRef.from_raw(index, raw) for index, raw in _entries(document, "models")]
    table = _resolve(refs)
    return [
        *_encryption_key(document),
        *_names(refs),
        *_aliases(refs),
        *_fallback_targets(refs, table),
        *_fallback_cycles(refs, table),
        *_mcp_aliases(document),
    ]
