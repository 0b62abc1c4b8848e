"""The model registry: every configured model by name and alias, with the upstreams that serve it.

A registry is an immutable snapshot: the models of ``voidllm.yaml`` (:meth:`Model.from_config`) plus the
active models created through the admin API (built from their rows by :mod:`voidllm.routing.catalog_store`),
put together by :meth:`Registry.build`. A change builds a new registry and swaps it into the catalog whole,
so lookups on the hot path are one dict access and a request never sees half an update. A model's upstreams
are its ``deployments`` by ascending ``priority`` (ties in the order listed), or the model's own
``provider``/``base_url`` as a single upstream named after the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from voidllm.config import ModelConfig


@attrs.frozen
class Pricing:
    """Currency units per one million tokens."""

    input_per_1m: float = 0.0
    output_per_1m: float = 0.0


@attrs.frozen
class Upstream:
    """One place a model is served from.

    ``weight`` and ``priority`` come from the deployment (``weighted`` and ``priority`` strategies); a model
    without deployments has the defaults.
    """

    name: str
    provider: str
    base_url: str
    api_key: str = attrs.field(default="", repr=False)
    azure_deployment: str = ""
    azure_api_version: str = ""
    gcp_project: str = ""
    gcp_location: str = ""
    weight: int = 1
    priority: int = 0

    def url(self, path: str) -> str:
        """The upstream URL for an API path such as ``chat/completions`` (base_url includes ``/v1``)."""
        return f"{self.base_url}/{path}"


@attrs.frozen
class Model:
    """A model as the proxy serves it."""

    name: str
    type: str
    aliases: tuple[str, ...]
    upstreams: tuple[Upstream, ...]
    timeout: float | None = None
    pricing: Pricing = Pricing()
    strategy: str = "round-robin"
    max_retries: int = 0
    attempt_timeout: float | None = None
    hedge_after: float | None = None
    fallback: str | None = None

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> Model:
        if cfg.deployments:
            ordered = sorted(cfg.deployments, key=lambda d: d.priority)  # stable: ties keep the listed order
            upstreams = tuple(
                Upstream(
                    f"{cfg.name}/{d.name}",
                    d.provider,
                    d.base_url.rstrip("/"),
                    d.api_key,
                    azure_deployment=d.azure_deployment,
                    azure_api_version=d.azure_api_version,
                    gcp_project=d.gcp_project,
                    gcp_location=d.gcp_location,
                    weight=d.weight,
                    priority=d.priority,
                )
                for d in ordered
            )
        else:
            upstreams = (
                Upstream(
                    cfg.name,
                    cfg.provider,
                    cfg.base_url.rstrip("/"),
                    cfg.api_key,
                    azure_deployment=cfg.azure_deployment,
                    azure_api_version=cfg.azure_api_version,
                    gcp_project=cfg.gcp_project,
                    gcp_location=cfg.gcp_location,
                ),
            )
        return cls(
            name=cfg.name,
            type=cfg.type,
            aliases=tuple(cfg.aliases),
            upstreams=upstreams,
            timeout=cfg.timeout,
            pricing=Pricing(cfg.pricing.input_per_1m, cfg.pricing.output_per_1m),
            strategy=cfg.strategy or "round-robin",
            max_retries=cfg.max_retries,
            attempt_timeout=cfg.attempt_timeout,
            hedge_after=cfg.hedge_after,
            fallback=cfg.fallback or None,
        )


@attrs.frozen
class Registry:
    """Models by canonical name and by alias."""

    models: tuple[Model, ...] = ()
    _lookup: Mapping[str, Model] = attrs.field(factory=dict)

    @classmethod
    def from_config(cls, models: Iterable[ModelConfig]) -> Registry:
        """Build the registry from validated model configs."""
        return cls.build(Model.from_config(cfg) for cfg in models)

    @classmethod
    def build(cls, models: Iterable[Model]) -> Registry:
        """A registry of ``models``; a later model replaces an earlier one of the same name.

        Names win over aliases, and an alias already taken keeps its first owner (the admin API and config
        validation refuse such collisions; this only keeps a registry built from inconsistent rows usable).
        """
        by_name: dict[str, Model] = {}
        for model in models:
            by_name[model.name] = model
        built = tuple(sorted(by_name.values(), key=lambda m: m.name))
        lookup: dict[str, Model] = dict(by_name)
        for model in built:
            for alias in model.aliases:
                lookup.setdefault(alias, model)
        return cls(built, lookup)

    def resolve(self, name: str) -> Model | None:
        """The model called ``name`` (canonical name or alias), or ``None``."""
        return self._lookup.get(name)
