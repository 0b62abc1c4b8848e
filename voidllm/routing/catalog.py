"""What a key can reach: the model registry seen through scoped aliases and model-access allowlists.

The proxy asks the catalog, never the registry directly: :meth:`Catalog.resolve` maps a requested name to a
model (a team alias first, then an org alias, then the registry's own names and aliases,
docs/reference/behaviour.md 1.3 step 5) and :meth:`Catalog.allowed` applies the org, team and key allowlists
(docs/reference/behaviour.md 4: an empty list allows everything, and every non-empty level must allow, so the
most restrictive wins).

Every part is replaced whole (``catalog.registry = ...``) when the store changes, so a request always sees
one consistent snapshot and lookups stay plain dict reads.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from voidllm.identity import KeyIdentity
from voidllm.request_policy import ScopePolicy
from voidllm.routing.registry import Model, Registry


@attrs.frozen
class AccessRules:
    """Model allowlists by org, team and key id; a scope without an entry allows every model."""

    orgs: Mapping[str, frozenset[str]] = attrs.field(factory=dict)
    teams: Mapping[str, frozenset[str]] = attrs.field(factory=dict)
    keys: Mapping[str, frozenset[str]] = attrs.field(factory=dict)

    def allows(self, identity: KeyIdentity, model_name: str) -> bool:
        for allowed in (
            self.orgs.get(identity.org_id),
            self.teams.get(identity.team_id) if identity.team_id else None,
            self.keys.get(identity.key_id),
        ):
            if allowed and model_name not in allowed:
                return False
        return True


@attrs.frozen
class ScopedAliases:
    """Alias -> model name, per team and per org."""

    orgs: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict)
    teams: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict)

    def lookup(self, identity: KeyIdentity, name: str) -> str | None:
        if identity.team_id:
            target = self.teams.get(identity.team_id, {}).get(name)
            if target is not None:
                return target
        return self.orgs.get(identity.org_id, {}).get(name)

    def visible_to(self, identity: KeyIdentity) -> dict[str, str]:
        """Every scoped alias the key sees (alias -> model name); a team alias hides an org alias."""
        seen = dict(self.orgs.get(identity.org_id, {}))
        if identity.team_id:
            seen.update(self.teams.get(identity.team_id, {}))
        return seen


@attrs.define(eq=False)
class Catalog:
    """The registry, the allowlists and the scoped aliases currently in force; see the module docstring."""

    registry: Registry
    access: AccessRules = attrs.field(factory=AccessRules)
    aliases: ScopedAliases = attrs.field(factory=ScopedAliases)
    policies: Mapping[str, ScopePolicy] = attrs.field(factory=dict)
    """Each model's request and guard policies by canonical name (only models that have one)."""

    def resolve(self, identity: KeyIdentity, name: str) -> Model | None:
        """The model ``name`` means for this key, or ``None``."""
        if self.aliases.orgs or self.aliases.teams:
            target = self.aliases.lookup(identity, name)
            if target is not None:
                return self.registry.resolve(target)
        return self.registry.resolve(name)

    def allowed(self, identity: KeyIdentity, model_name: str) -> bool:
        """Whether the key may use the model with canonical name ``model_name``."""
        return self.access.allows(identity, model_name)

    def visible(self, identity: KeyIdentity) -> list[Model]:
        """The models the key may use, sorted by name."""
        return [m for m in self.registry.models if self.allowed(identity, m.name)]

    def aliases_of(self, identity: KeyIdentity) -> dict[str, list[str]]:
        """Model name -> the key's scoped aliases leading to it (sorted), as ``GET /v1/models`` lists them."""
        found: dict[str, list[str]] = {}
        for alias, target in sorted(self.aliases.visible_to(identity).items()):
            model = self.registry.resolve(target)
            if model is not None:
                found.setdefault(model.name, []).append(alias)
        return found
