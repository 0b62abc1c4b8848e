"""Guard policies (voidllm.guard.policy): mode order, merge rules, strict parsing naming the path."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from voidllm.errors import BadRequestError
from voidllm.guard import kinds
from voidllm.guard.policy import OFF, GuardPolicy, GuardPolicyError, Mode, dump_policy, merge, parse_policy


def test_modes_are_ordered_from_off_to_block() -> None:
    assert Mode.OFF < Mode.FLAG < Mode.REDACT < Mode.BLOCK
    assert [m.label for m in Mode] == ["off", "flag", "redact", "block"]


def test_default_policy_is_off_for_every_kind() -> None:
    assert not OFF.active
    assert all(OFF.mode(kind) is Mode.OFF for kind in kinds.ALL_KINDS)
    assert not OFF.responses
    assert parse_policy({}) == OFF


def test_groups_are_shorthands_and_a_named_kind_overrides_its_group() -> None:
    policy = parse_policy({"detectors": {"pii": "redact", "phone": "off", "credentials": "block"}})
    assert all(policy.mode(kind) is Mode.BLOCK for kind in kinds.CREDENTIALS)
    assert all(policy.mode(kind) is Mode.REDACT for kind in kinds.PII if kind != kinds.PHONE)
    assert policy.mode(kinds.PHONE) is Mode.OFF
    # The order of the keys does not matter: the kind wins over its group either way.
    assert parse_policy({"detectors": {"email": "flag", "pii": "block"}}).mode(kinds.EMAIL) is Mode.FLAG


def test_off_kinds_are_not_stored_and_dump_round_trips() -> None:
    policy = parse_policy({"detectors": {"email": "redact", "jwt": "off"}, "responses": True})
    assert dict(policy.detectors) == {"email": Mode.REDACT}
    assert dump_policy(policy) == {"detectors": {"email": "redact"}, "responses": True}
    assert parse_policy(dump_policy(policy)) == policy


def test_merge_takes_the_most_restrictive_mode_per_kind_and_responses_if_any() -> None:
    model = GuardPolicy(detectors={kinds.EMAIL: Mode.FLAG, kinds.JWT: Mode.BLOCK})
    org = GuardPolicy(detectors={kinds.EMAIL: Mode.REDACT, kinds.PHONE: Mode.FLAG})
    team = GuardPolicy(detectors={kinds.PHONE: Mode.OFF}, responses=True)
    key = GuardPolicy(detectors={kinds.EMAIL: Mode.FLAG})
    merged = merge(model, org, team, key)
    assert dict(merged.detectors) == {kinds.EMAIL: Mode.REDACT, kinds.JWT: Mode.BLOCK, kinds.PHONE: Mode.FLAG}
    assert merged.responses
    assert merge() == OFF
    assert merge(key, org) == merge(org, key)
    assert not merge(model, org).responses


def test_at_least() -> None:
    policy = GuardPolicy(detectors={kinds.EMAIL: Mode.FLAG, kinds.JWT: Mode.BLOCK, kinds.IBAN: Mode.REDACT})
    assert policy.at_least(Mode.REDACT) == {kinds.JWT, kinds.IBAN}
    assert policy.at_least(Mode.FLAG) == {kinds.JWT, kinds.IBAN, kinds.EMAIL}


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ([], "guard"),
        ({"detector": {}}, "guard.detector"),
        ({"detectors": {"emial": "redact"}}, "guard.detectors.emial"),
        ({"detectors": {"email": "mask"}}, "guard.detectors.email"),
        ({"detectors": {"email": True}}, "guard.detectors.email"),
        ({"detectors": {"pii": None}}, "guard.detectors.pii"),
        ({"detectors": ["email"]}, "guard.detectors"),
        ({"responses": "yes"}, "guard.responses"),
        ({"responses": 1}, "guard.responses"),
    ],
)
def test_strict_parsing_names_the_path(value: Any, path: str) -> None:
    with pytest.raises(GuardPolicyError) as caught:
        parse_policy(value)
    assert caught.value.path == path
    assert caught.value.param == path
    assert str(caught.value).startswith(f"{path}: ")


def test_the_error_is_a_400_and_never_echoes_the_value() -> None:
    secret = "sk-proj-" + "A1b2C3d4" * 6
    with pytest.raises(GuardPolicyError) as caught:
        parse_policy({"detectors": {"email": secret}}, path="settings.guard")
    assert isinstance(caught.value, BadRequestError)
    assert caught.value.status == 400
    assert caught.value.param == "settings.guard.detectors.email"
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)


def test_a_long_unknown_key_is_clipped_in_the_path() -> None:
    with pytest.raises(GuardPolicyError) as caught:
        parse_policy({"detectors": {"x" * 500: "off"}})
    assert len(caught.value.path) < 100


def test_the_package_exports_what_it_imports() -> None:
    import types

    import voidllm.guard as guard

    public = {
        name
        for name, value in vars(guard).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert set(guard.__all__) == public


def test_a_policy_pickles_to_an_equal_one() -> None:
    """``server.workers`` > 1 pickles the configuration, ``settings.guard`` included, for each worker."""
    policy = parse_policy({"detectors": {"pii": "redact", "jwt": "block"}, "responses": True})
    for value in (policy, OFF):
        again = pickle.loads(pickle.dumps(value))
        assert again == value
        assert again.mode("jwt") is value.mode("jwt")
