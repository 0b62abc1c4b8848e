"""Request policies as values (issue 22 point 2): the strict parser naming the path, the merge rules (most
restrictive wins) and the checks, which name the parameter or header and never echo the value sent."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from voidllm.errors import BadRequestError, PermissionDeniedError
from voidllm.request_policy import (
    Bound,
    RequestPolicy,
    RequestPolicyError,
    RequiredHeader,
    dump_policy,
    merge,
    parse_policy,
)

FULL: dict[str, Any] = {
    "params": {
        "allow": ["messages", "max_tokens", "n", "temperature", "stream"],
        "deny": ["logprobs"],
        "bounds": {
            "max_tokens": {"max": 1000},
            "n": {"min": 1, "max": 1},
            "temperature": {"min": 0, "max": 1},
        },
    },
    "required_headers": [{"name": "X-App", "value": "checkout"}, {"name": "x-team"}],
    "allowed_origins": ["https://App.example/", "http://localhost:5173", "https://b.example:443"],
}


def test_a_full_document_parses_and_round_trips() -> None:
    policy = parse_policy(FULL)
    assert policy.allow == frozenset({"messages", "max_tokens", "n", "temperature", "stream"})
    assert policy.deny == frozenset({"logprobs"})
    assert policy.bounds["max_tokens"] == Bound(None, 1000)
    assert policy.required_headers == (RequiredHeader("x-app", "checkout"), RequiredHeader("x-team"))
    assert policy.allowed_origins == frozenset(
        {"https://app.example", "http://localhost:5173", "https://b.example"}
    )
    assert parse_policy(dump_policy(policy)) == policy
    assert parse_policy({}).empty
    assert parse_policy({"params": None, "required_headers": None, "allowed_origins": None}).empty


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ([], "request"),
        ({"parms": {}}, "request.parms"),
        ({"params": {"alow": []}}, "request.params.alow"),
        ({"params": {"allow": "tools"}}, "request.params.allow"),
        ({"params": {"deny": ["ok", "not a name"]}}, "request.params.deny[1]"),
        ({"params": {"deny": ["model"]}}, "request.params.deny[0]"),
        ({"params": {"bounds": {"max_tokens": {"max": "10"}}}}, "request.params.bounds.max_tokens.max"),
        ({"params": {"bounds": {"max_tokens": {"max": True}}}}, "request.params.bounds.max_tokens.max"),
        ({"params": {"bounds": {"max_tokens": {"max": 1e16}}}}, "request.params.bounds.max_tokens.max"),
        ({"params": {"bounds": {"n": {"min": 2, "max": 1}}}}, "request.params.bounds.n.min"),
        ({"params": {"bounds": {"n": {}}}}, "request.params.bounds.n"),
        ({"params": {"bounds": {"n": {"mx": 1}}}}, "request.params.bounds.n.mx"),
        ({"params": {"bounds": []}}, "request.params.bounds"),
        ({"required_headers": [{"value": "x"}]}, "request.required_headers[0].name"),
        ({"required_headers": [{"name": "Authorization"}]}, "request.required_headers[0].name"),
        ({"required_headers": [{"name": "x-a", "value": "\n"}]}, "request.required_headers[0].value"),
        ({"required_headers": [{"name": "x-a"}, {"name": "X-A"}]}, "request.required_headers[1].name"),
        ({"allowed_origins": ["*"]}, "request.allowed_origins[0]"),
        ({"allowed_origins": ["https://a.example/path"]}, "request.allowed_origins[0]"),
        ({"allowed_origins": ["ftp://a.example"]}, "request.allowed_origins[0]"),
        ({"allowed_origins": "https://a.example"}, "request.allowed_origins"),
    ],
)
def test_invalid_documents_name_the_path(document: Any, path: str) -> None:
    with pytest.raises(RequestPolicyError) as caught:
        parse_policy(document)
    assert caught.value.path == path
    assert caught.value.param == path
    assert caught.value.extra["field"] == path
    assert caught.value.status == 400
    assert "\n" not in caught.value.message
    assert "Authorization" not in caught.value.message


def test_merge_is_most_restrictive() -> None:
    org = parse_policy(
        {
            "params": {
                "allow": ["messages", "tools", "max_tokens"],
                "deny": ["logprobs"],
                "bounds": {"n": {"max": 2}},
            },
            "required_headers": [{"name": "x-app"}],
            "allowed_origins": ["https://a.example", "https://b.example"],
        }
    )
    team = parse_policy(
        {"params": {"deny": ["tools"], "bounds": {"n": {"min": 1}, "max_tokens": {"max": 100}}}}
    )
    key = parse_policy(
        {
            "params": {"allow": ["messages", "max_tokens", "stream"], "bounds": {"max_tokens": {"max": 50}}},
            "required_headers": [{"name": "x-team", "value": "t"}],
            "allowed_origins": ["https://b.example", "https://c.example"],
        }
    )
    merged = merge(org, team, key)
    assert merged is not None
    assert merged.allow == frozenset({"messages", "max_tokens"})  # intersection of the lists set
    assert merged.deny == {"logprobs", "tools"}  # union
    assert merged.bounds == {"n": Bound(1, 2), "max_tokens": Bound(None, 50)}  # intersections of ranges
    assert merged.required_headers == (RequiredHeader("x-app"), RequiredHeader("x-team", "t"))  # union
    assert merged.allowed_origins == frozenset({"https://b.example"})  # intersection of the lists set
    assert merge(None, None) is None
    assert merge(parse_policy({}), None) is None
    assert merge(None, team) == team


def test_disjoint_bounds_refuse_the_parameter_altogether() -> None:
    merged = merge(
        parse_policy({"params": {"bounds": {"n": {"min": 2}}}}),
        parse_policy({"params": {"bounds": {"n": {"max": 1}}}}),
    )
    assert merged is not None
    assert merged.bounds["n"].empty
    for value in (1, 2, 1.5):
        with pytest.raises(BadRequestError) as caught:
            merged.check_params({"model": "m", "n": value})
        assert caught.value.code == "parameter_not_allowed"
        assert caught.value.param == "n"
    merged.check_params({"model": "m"})  # absent: nothing to refuse


def test_check_params() -> None:
    policy = parse_policy(FULL)
    policy.check_params({"model": "m", "messages": [], "max_tokens": 1000, "n": 1, "temperature": 0.5})
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"logprobs": True}, "logprobs", "parameter_not_allowed"),
        ({"tools": [{"secret": "x"}]}, "tools", "parameter_not_allowed"),
        ({"max_tokens": 1001}, "max_tokens", "parameter_out_of_bounds"),
        ({"n": 0}, "n", "parameter_out_of_bounds"),
        ({"temperature": 1.25}, "temperature", "parameter_out_of_bounds"),
        ({"temperature": "hot"}, "temperature", "parameter_out_of_bounds"),
        ({"max_tokens": True}, "max_tokens", "parameter_out_of_bounds"),
    ]
    for extra, param, code in cases:
        with pytest.raises(BadRequestError) as caught:
            policy.check_params({"model": "m", "messages": [], **extra})
        assert (caught.value.param, caught.value.code) == (param, code)
        assert param in caught.value.message
        for value in extra.values():
            if not isinstance(value, bool):
                assert repr(value) not in caught.value.message
                assert str(value) not in caught.value.message
    with pytest.raises(BadRequestError, match="at most 1000"):
        policy.check_params({"model": "m", "max_tokens": 5000})
    RequestPolicy().check_params({"anything": 1})


FORM_POLICY: dict[str, Any] = {
    "params": {
        "allow": ["file", "prompt", "temperature", "timestamp_granularities", "n"],
        "bounds": {"temperature": {"min": 0, "max": 1}, "n": {"min": 1, "max": 2}},
    }
}


def test_check_form_reads_names_and_numbers_strictly() -> None:
    policy = parse_policy(FORM_POLICY)
    fine: list[tuple[str, str | None]] = [
        ("model", "whisper"),
        ("file", None),
        ("prompt", "words"),
        ("temperature", " 0.5 "),
        ("timestamp_granularities[]", "word"),
        ("timestamp_granularities[]", "segment"),
        ("n", "2"),
        ("n", "+1e0"),
        ("temperature", ".25"),
        ("temperature", "1."),
    ]
    policy.check_form(fine)
    cases: list[tuple[tuple[str, str | None], str, str]] = [
        (("language", "en"), "language", "parameter_not_allowed"),
        (("language[]", "en"), "language", "parameter_not_allowed"),
        (("temperature", "1.5"), "temperature", "parameter_out_of_bounds"),
        (("temperature", "-0.1"), "temperature", "parameter_out_of_bounds"),
        (("n", "3"), "n", "parameter_out_of_bounds"),
        (("n", "1e400"), "n", "parameter_out_of_bounds"),  # not finite
        (("n", "1" * 65), "n", "parameter_out_of_bounds"),  # longer than 64 characters
    ]
    not_numbers = ["", " ", "hot", "true", "nan", "inf", "-inf", "0x1", "1,5", "1_0", "1 2", "e5", "."]
    not_numbers.append("\u0661")  # an Arabic-Indic one: float() would read it
    cases += [(("temperature", value), "temperature", "parameter_out_of_bounds") for value in not_numbers]
    cases.append((("temperature", None), "temperature", "parameter_out_of_bounds"))  # a file part
    for field, param, code in cases:
        with pytest.raises(BadRequestError) as caught:
            policy.check_form([("model", "m"), ("prompt", "p"), field, ("n", "1")])
        assert (caught.value.param, caught.value.code) == (param, code), field
        assert field[1] is None or not field[1].strip() or field[1] not in caught.value.message
    with pytest.raises(BadRequestError) as repeated:  # every occurrence of a repeated field is checked
        policy.check_form([("n", "1"), ("n", "5")])
    assert repeated.value.param == "n"
    denied = parse_policy({"params": {"deny": ["mask"]}})
    with pytest.raises(BadRequestError, match="mask"):  # a file part is a parameter too
        denied.check_form([("image", None), ("mask", None)])
    disjoint = merge(
        denied,
        parse_policy({"params": {"bounds": {"n": {"min": 3}}}}),
        parse_policy({"params": {"bounds": {"n": {"max": 1}}}}),
    )
    assert disjoint is not None
    with pytest.raises(BadRequestError, match="leave no value") as empty:
        disjoint.check_form([("n", "junk")])
    assert empty.value.code == "parameter_not_allowed"
    RequestPolicy().check_form([("anything", "1"), ("file", None)])


def test_check_headers_names_the_header_never_the_value() -> None:
    policy = parse_policy(FULL)
    policy.check_headers([(b"x-app", b"checkout"), (b"X-Team", b"any")])
    for headers, missing in (
        ([(b"x-team", b"a")], "x-app"),
        ([(b"x-app", b"checkout")], "x-team"),
        ([(b"x-app", b""), (b"x-team", b"a")], "x-app"),
    ):
        with pytest.raises(PermissionDeniedError) as caught:
            policy.check_headers(headers)
        assert caught.value.code == "required_header"
        assert missing in caught.value.message
    with pytest.raises(PermissionDeniedError) as caught:
        policy.check_headers([(b"x-app", b"SECRET-VALUE"), (b"x-team", b"a")])
    assert "SECRET-VALUE" not in caught.value.message
    assert "checkout" not in caught.value.message


def test_allows_origin() -> None:
    policy = parse_policy(FULL)
    assert policy.allows_origin("https://app.example")
    assert not policy.allows_origin("https://evil.example")
    assert RequestPolicy().allows_origin("https://anything.example")
    assert not parse_policy({"allowed_origins": []}).allows_origin("https://app.example")


def test_a_policy_pickles_to_an_equal_one() -> None:
    policy = parse_policy(FULL)
    assert pickle.loads(pickle.dumps(policy)) == policy
