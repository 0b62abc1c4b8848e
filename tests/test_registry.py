"""The model registry: names and aliases, upstream order, and refusal of what this version cannot serve."""

from __future__ import annotations

from voidllm.config import parse_config
from voidllm.routing.registry import Registry


def registry(yaml_models: str) -> Registry:
    config = parse_config(
        "settings:\n  encryption_key: sixteen-chars-or-more\nmodels:\n" + yaml_models, environ={}
    )
    return Registry.from_config(config.models)


def test_names_and_aliases_resolve_to_the_canonical_model() -> None:
    reg = registry(
        """
  - name: zeta
    provider: openai
    base_url: https://api.example.test/v1/
    api_key: sk-secret
    aliases: [fast, cheap]
    pricing: {input_per_1m: 1.5, output_per_1m: 2}
  - name: alpha
    provider: vllm
    base_url: http://127.0.0.1:8000/v1
"""
    )
    assert [m.name for m in reg.models] == ["alpha", "zeta"]
    zeta = reg.resolve("fast")
    assert zeta is not None
    assert zeta is reg.resolve("cheap") is reg.resolve("zeta")
    assert zeta.upstreams[0].url("chat/completions") == "https://api.example.test/v1/chat/completions"
    assert zeta.upstreams[0].name == "zeta"
    assert zeta.pricing.input_per_1m == 1.5
    assert "sk-secret" not in repr(zeta)
    assert reg.resolve("nope") is None
    assert reg.resolve("Alpha") is None


def test_priority_deployments_are_ordered_by_priority_then_listing() -> None:
    reg = registry(
        """
  - name: m
    strategy: priority
    deployments:
      - {name: b, provider: openai, base_url: "http://b/v1", priority: 2}
      - {name: a, provider: custom, base_url: "http://a/v1", priority: 1}
      - {name: c, provider: ollama, base_url: "http://c/v1", priority: 1}
"""
    )
    model = reg.resolve("m")
    assert model is not None
    assert [u.name for u in model.upstreams] == ["m/a", "m/c", "m/b"]


def test_provider_specific_fields_reach_the_upstream() -> None:
    reg = registry(
        """
  - name: azure-gpt
    provider: azure
    base_url: https://acme.openai.azure.com
    azure_deployment: gpt4o-prod
    azure_api_version: 2024-10-21
  - name: gem
    strategy: weighted
    deployments:
      - {name: v, provider: vertex, base_url: "https://europe-west4-aiplatform.googleapis.com",
         gcp_project: p1, gcp_location: europe-west4, weight: 3}
"""
    )
    azure = reg.resolve("azure-gpt")
    assert azure is not None
    assert (azure.upstreams[0].azure_deployment, azure.upstreams[0].azure_api_version) == (
        "gpt4o-prod",
        "2024-10-21",
    )
    gem = reg.resolve("gem")
    assert gem is not None
    assert gem.strategy == "weighted"
    vertex = gem.upstreams[0]
    assert (vertex.provider, vertex.gcp_project, vertex.gcp_location, vertex.weight) == (
        "vertex",
        "p1",
        "europe-west4",
        3,
    )
