"""Guard policies: a mode per finding kind, merged most restrictive first, parsed strictly from JSON values.

``Mode`` is ordered ``off < flag < redact < block``: ``flag`` counts a finding, ``redact`` replaces it with a
typed placeholder before the request leaves, ``block`` refuses the request. A :class:`GuardPolicy` holds the
modes that are not ``off`` and ``responses`` (redact the same kinds in the upstream's answers too). Policies
of a model, an organisation, a team and a key are combined with :func:`merge`: per kind the most restrictive
mode wins, and responses are redacted if any policy asks.

:func:`parse_policy` turns ``{"detectors": {"email": "redact", "credentials": "block"}, "responses": true}``
into a policy. It is strict, for the admin API (a 400) and ``voidllm.yaml`` (a load error) alike: an unknown
key, kind or mode, or a value of the wrong type, raises :class:`GuardPolicyError` naming the path
(``guard.detectors.emial``). A group key (``credentials``, ``pii``) sets every kind of its group; a kind named
beside its group overrides the group's mode, whichever is more or less restrictive, so ``{"pii": "redact",
"phone": "off"}`` means what it reads.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from voidllm.errors import BadRequestError
from voidllm.guard import kinds


class Mode(enum.IntEnum):
    """What the guard does with a finding of a kind, ordered from least to most restrictive."""

    OFF = 0
    FLAG = 1
    REDACT = 2
    BLOCK = 3

    @property
    def label(self) -> str:
        """The mode as policies spell it: ``off``, ``flag``, ``redact``, ``block``."""
        return self.name.lower()


MODES: MappingProxyType[str, Mode] = MappingProxyType({mode.label: mode for mode in Mode})


class GuardPolicyError(BadRequestError):
    """A policy value is not valid; ``param`` is the path of the offending key (``guard.detectors.emial``).

    The message names the path and what was expected, never the value given (it could be anything a client
    typed)."""

    code = "invalid_guard_policy"

    def __init__(self, path: str, expected: str) -> None:
        super().__init__(f"{path}: {expected}", param=path)
        self.path = path


def _frozen_modes(value: Mapping[str, Mode]) -> Mapping[str, Mode]:
    return MappingProxyType({kind: Mode(mode) for kind, mode in sorted(value.items()) if mode})


@attrs.frozen
class GuardPolicy:
    """The guard's settings for one scope (or the merge of several): a mode per kind, off when absent."""

    detectors: Mapping[str, Mode] = attrs.field(factory=dict, converter=_frozen_modes, hash=False)
    """Modes other than off, by kind (a read-only mapping)."""
    responses: bool = False
    """Also redact, in the upstream's answers, every kind whose mode is redact or block."""

    def mode(self, kind: str) -> Mode:
        return self.detectors.get(kind, Mode.OFF)

    def __reduce__(self) -> tuple[Any, ...]:
        # a read-only mapping does not pickle: rebuilt from a plain dict (``server.workers`` > 1 sends the
        # configuration, ``settings.guard`` included, to each worker process)
        return (GuardPolicy, (dict(self.detectors), self.responses))

    @property
    def active(self) -> bool:
        """False when every kind is off: the caller skips the guard entirely (off costs nothing)."""
        return bool(self.detectors)

    def at_least(self, mode: Mode) -> frozenset[str]:
        """The kinds whose mode is ``mode`` or more restrictive."""
        return frozenset(kind for kind, m in self.detectors.items() if m >= mode)


OFF = GuardPolicy()
"""The default policy: every kind off, responses untouched."""


def merge(*policies: GuardPolicy) -> GuardPolicy:
    """The combination of scopes' policies: per kind the most restrictive mode, responses if any asks."""
    detectors: dict[str, Mode] = {}
    for policy in policies:
        for kind, mode in policy.detectors.items():
            if mode > detectors.get(kind, Mode.OFF):
                detectors[kind] = mode
    return GuardPolicy(detectors=detectors, responses=any(p.responses for p in policies))


def parse_policy(value: Any, path: str = "guard") -> GuardPolicy:
    """A :class:`GuardPolicy` from its JSON form, strictly.

    Args:
        value: ``{"detectors": {kind or group: mode}, "responses": bool}``; both keys optional.
        path: where the value sits, for error messages (``guard``, ``settings.guard``).

    Raises:
        GuardPolicyError: naming the path of the first invalid key or value.
    """
    if not isinstance(value, Mapping):
        raise GuardPolicyError(path, "expected an object with detectors and responses")
    for key in value:
        if key not in ("detectors", "responses"):
            raise GuardPolicyError(f"{path}.{_clip(key)}", "unknown key (expected detectors or responses)")
    responses = value.get("responses", False)
    if not isinstance(responses, bool):
        raise GuardPolicyError(f"{path}.responses", "expected true or false")
    return GuardPolicy(
        detectors=_parse_detectors(value.get("detectors", {}), f"{path}.detectors"), responses=responses
    )


def _clip(key: object) -> str:
    """A key for an error path: at most 40 characters (it is the caller's text)."""
    text = str(key)
    return text if len(text) <= 40 else text[:40] + "…"


def _parse_detectors(value: Any, path: str) -> dict[str, Mode]:
    if not isinstance(value, Mapping):
        raise GuardPolicyError(path, "expected an object of detector: mode")
    by_group: dict[str, Mode] = {}
    by_kind: dict[str, Mode] = {}
    for key, mode_name in value.items():
        where = f"{path}.{_clip(key)}"
        if not isinstance(key, str) or (key not in kinds.GROUPS and key not in kinds.LABELS):
            raise GuardPolicyError(where, "unknown detector (expected a kind, credentials or pii)")
        if not isinstance(mode_name, str) or mode_name not in MODES:
            raise GuardPolicyError(where, "expected one of off, flag, redact, block")
        if key in kinds.GROUPS:
            by_group.update(dict.fromkeys(kinds.GROUPS[key], MODES[mode_name]))
        else:
            by_kind[key] = MODES[mode_name]
    return by_group | by_kind


def dump_policy(policy: GuardPolicy) -> dict[str, Any]:
    """The JSON form of a policy (kinds not off, by name), the inverse of :func:`parse_policy`."""
    return {
        "detectors": {kind: mode.label for kind, mode in policy.detectors.items()},
        "responses": policy.responses,
    }
