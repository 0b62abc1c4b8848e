"""Applying a policy to a request (voidllm.guard.scan, voidllm.guard.walk): modes, placeholders, outcomes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from voidllm.guard import kinds
from voidllm.guard.policy import GuardPolicy, Mode, parse_policy
from voidllm.guard.scan import Outcome, RequestGuard, redact_text, scan
from voidllm.guard.walk import guard_anthropic, guard_mcp_call, guard_openai
from voidllm.proxy.guarding import redact_tool_result

EMAIL = "jane.doe@example.com"
EMAIL_2 = "ops@example.org"
CARD = "4111 1111 1111 1111"
KEY = "sk-proj-" + "Zq8Lm3Xv7Tn2Rb5Wk9Hc4Jd6Fg1Ps0Ya" * 2
TEXT = f"Mail {EMAIL} about card {CARD}, key {KEY}."
VALUES = (EMAIL, EMAIL_2, CARD, KEY, CARD.replace(" ", ""))


def _policy(**modes: str) -> GuardPolicy:
    return parse_policy({"detectors": modes})


def test_off_changes_nothing_and_counts_nothing() -> None:
    parts, outcome = scan([TEXT], GuardPolicy())
    assert parts == [TEXT]
    assert outcome == Outcome()


def test_flag_counts_only() -> None:
    parts, outcome = scan([TEXT, EMAIL], _policy(email="flag", credit_card="flag"))
    assert parts == [TEXT, EMAIL]
    assert dict(outcome.counts) == {kinds.EMAIL: 2, kinds.CREDIT_CARD: 1}
    assert dict(outcome.by_mode(Mode.FLAG)) == {kinds.EMAIL: 2, kinds.CREDIT_CARD: 1}
    assert outcome.blocked == ()


def test_redact_replaces_with_typed_placeholders() -> None:
    parts, outcome = scan([TEXT], _policy(pii="redact", credentials="redact"))
    assert parts == ["Mail [EMAIL_1] about card [CREDIT_CARD_1], key [OPENAI_KEY_1]."]
    assert dict(outcome.by_mode(Mode.REDACT)) == {kinds.EMAIL: 1, kinds.CREDIT_CARD: 1, kinds.OPENAI_KEY: 1}


def test_block_names_the_kinds_and_counts_never_values() -> None:
    parts, outcome = scan([TEXT, KEY], _policy(email="flag", openai_key="block", credit_card="redact"))
    assert outcome.blocked == (kinds.OPENAI_KEY,)
    assert outcome.findings == (
        (kinds.CREDIT_CARD, Mode.REDACT, 1),
        (kinds.EMAIL, Mode.FLAG, 1),
        (kinds.OPENAI_KEY, Mode.BLOCK, 2),
    )
    assert KEY not in parts[0]  # a blocked kind is never forwarded even if a caller did


def test_the_same_value_gets_the_same_placeholder_across_parts() -> None:
    guard = RequestGuard(_policy(pii="redact"))
    first = guard.scan(f"{EMAIL} and {EMAIL_2}")
    second = guard.scan(f"again {EMAIL_2}, then {EMAIL.upper()}; card {CARD} = {CARD.replace(' ', '')}")
    third = guard.scan(f"card {CARD.replace(' ', '-')}")
    assert first == "[EMAIL_1] and [EMAIL_2]"
    assert second == "again [EMAIL_2], then [EMAIL_1]; card [CREDIT_CARD_1] = [CREDIT_CARD_1]"
    assert third == "card [CREDIT_CARD_1]"
    assert guard.redactions == 7
    assert dict(guard.outcome().counts) == {kinds.EMAIL: 4, kinds.CREDIT_CARD: 3}


def test_numbers_count_per_kind() -> None:
    guard = RequestGuard(_policy(pii="redact"))
    out = guard.scan(f"{EMAIL} {CARD} {EMAIL_2} 5555 5555 5555 4444")
    assert out == "[EMAIL_1] [CREDIT_CARD_1] [EMAIL_2] [CREDIT_CARD_2]"


def test_responses_redact_redact_and_block_kinds_with_the_request_placeholders() -> None:
    policy = parse_policy(
        {"detectors": {"email": "redact", "openai_key": "block", "phone": "flag"}, "responses": True}
    )
    guard = RequestGuard(policy)
    assert guard.scan(f"to {EMAIL_2}") == "to [EMAIL_1]"
    answer = guard.redact_response(f"I wrote to {EMAIL} and {EMAIL_2}; key {KEY}; call +44 20 7946 0958")
    assert answer == "I wrote to [EMAIL_2] and [EMAIL_1]; key [OPENAI_KEY_1]; call +44 20 7946 0958"
    assert guard.outcome().response_findings == ((kinds.EMAIL, 2), (kinds.OPENAI_KEY, 1))
    # Without responses, answers are left alone.
    plain = RequestGuard(_policy(email="redact"))
    assert plain.redact_response(EMAIL) == EMAIL
    assert redact_text(EMAIL, policy)[0] == "[EMAIL_1]"


def test_a_tool_result_is_redacted_in_its_text_blocks_and_every_structured_string() -> None:
    guard = RequestGuard(parse_policy({"detectors": {"email": "redact"}, "responses": True}))
    result: dict[str, Any] = {
        "content": [{"type": "text", "text": f"to {EMAIL}"}, {"type": "image", "data": EMAIL}],
        "structuredContent": {EMAIL: [EMAIL, {"to": f"<{EMAIL}>", "n": 3}], "ok": True},
    }
    redact_tool_result(result, guard)
    assert result == {
        "content": [{"type": "text", "text": "to [EMAIL_1]"}, {"type": "image", "data": EMAIL}],
        "structuredContent": {EMAIL: ["[EMAIL_1]", {"to": "<[EMAIL_1]>", "n": 3}], "ok": True},
    }


def test_no_value_in_any_repr_or_outcome() -> None:
    guard = RequestGuard(
        parse_policy({"detectors": {"pii": "redact", "credentials": "block"}, "responses": True})
    )
    guard.scan(TEXT)
    guard.redact_response(TEXT)
    outcome = guard.outcome()
    for shown in (repr(guard), repr(outcome), str(outcome), repr(outcome.counts), repr(guard.policy)):
        for value in VALUES:
            assert value not in shown
    assert "jane" not in repr(guard) + repr(outcome)


# Walking bodies -------------------------------------------------------------------------------------------


def _redacting() -> RequestGuard:
    return RequestGuard(_policy(email="redact", openai_key="redact"))


def test_openai_chat_body() -> None:
    body: dict[str, Any] = {
        "model": "gpt-4o",
        "user": EMAIL,  # not text: left alone
        "messages": [
            {"role": "system", "content": f"Support agent. Escalate to {EMAIL_2}."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"My address is {EMAIL}"},
                    {"type": "image_url", "image_url": {"url": f"https://x.example/{EMAIL}.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "send", "arguments": f'{{"to": "{EMAIL}"}}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": f"sent with {KEY}"},
        ],
    }
    guard = _redacting()
    guard_openai(body, guard)
    assert body["user"] == EMAIL
    assert body["messages"][0]["content"] == "Support agent. Escalate to [EMAIL_1]."
    assert body["messages"][1]["content"][0]["text"] == "My address is [EMAIL_2]"
    assert body["messages"][1]["content"][1]["image_url"]["url"].endswith(f"{EMAIL}.png")
    assert body["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"to": "[EMAIL_2]"}'
    assert body["messages"][3]["content"] == "sent with [OPENAI_KEY_1]"
    assert guard.redactions == 4


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"prompt": f"to {EMAIL}", "suffix": EMAIL}, {"prompt": "to [EMAIL_1]", "suffix": "[EMAIL_1]"}),
        ({"prompt": [EMAIL, "x"]}, {"prompt": ["[EMAIL_1]", "x"]}),
        ({"input": [EMAIL, [1, 2]]}, {"input": ["[EMAIL_1]", [1, 2]]}),
        (
            {"input": EMAIL, "instructions": f"cc {EMAIL_2}"},
            {"input": "[EMAIL_2]", "instructions": "cc [EMAIL_1]"},
        ),
        (
            {
                "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": EMAIL}]},
                    {"type": "function_call", "call_id": "c", "name": "f", "arguments": f'["{EMAIL_2}"]'},
                    {"type": "function_call_output", "call_id": "c", "output": EMAIL},
                ]
            },
            {
                "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "[EMAIL_1]"}]},
                    {"type": "function_call", "call_id": "c", "name": "f", "arguments": '["[EMAIL_2]"]'},
                    {"type": "function_call_output", "call_id": "c", "output": "[EMAIL_1]"},
                ]
            },
        ),
    ],
)
def test_openai_completions_embeddings_responses_bodies(
    body: dict[str, Any], expected: dict[str, Any]
) -> None:
    guard_openai(body, _redacting())
    assert body == expected


def test_anthropic_messages_body() -> None:
    body: dict[str, Any] = {
        "model": "claude",
        "system": [{"type": "text", "text": f"cc {EMAIL_2}"}],
        "messages": [
            {"role": "user", "content": f"hi, I am {EMAIL}"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "sending"},
                    {"type": "tool_use", "id": "t", "name": "mail", "input": {"to": [EMAIL], "n": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [{"type": "text", "text": f"ok {KEY}"}],
                    },
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": EMAIL}},
                ],
            },
        ],
    }
    guard = _redacting()
    guard_anthropic(body, guard)
    assert body["system"][0]["text"] == "cc [EMAIL_1]"
    assert body["messages"][0]["content"] == "hi, I am [EMAIL_2]"
    assert body["messages"][1]["content"][1]["input"] == {"to": ["[EMAIL_2]"], "n": 1}
    assert body["messages"][2]["content"][0]["content"][0]["text"] == "ok [OPENAI_KEY_1]"
    assert body["messages"][2]["content"][1]["source"]["data"] == EMAIL
    string_system: dict[str, Any] = {
        "system": EMAIL,
        "messages": [{"role": "user", "content": [{"type": "tool_result", "content": EMAIL}]}],
    }
    guard_anthropic(string_system, _redacting())
    assert string_system == {
        "system": "[EMAIL_1]",
        "messages": [{"role": "user", "content": [{"type": "tool_result", "content": "[EMAIL_1]"}]}],
    }


def test_anthropic_documents_and_thinking() -> None:
    body: dict[str, Any] = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": EMAIL},
                    },
                    {
                        "type": "document",
                        "source": {"type": "content", "content": [{"type": "text", "text": EMAIL}]},
                    },
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": EMAIL},
                    },
                ],
            },
            {"role": "assistant", "content": [{"type": "thinking", "thinking": EMAIL, "signature": "s"}]},
        ]
    }
    guard_anthropic(body, _redacting())
    user, assistant = body["messages"]
    assert user["content"][0]["source"]["data"] == "[EMAIL_1]"
    assert user["content"][1]["source"]["content"][0]["text"] == "[EMAIL_1]"
    assert user["content"][2]["source"]["data"] == EMAIL
    assert assistant["content"][0]["thinking"] == EMAIL


def test_mcp_tools_call_arguments() -> None:
    params: dict[str, Any] = {
        "name": "send",
        "arguments": {"to": EMAIL, "cc": [EMAIL_2, 3], "meta": {"k": KEY}},
    }
    guard = _redacting()
    guard_mcp_call(params, guard)
    assert params == {
        "name": "send",
        "arguments": {"to": "[EMAIL_1]", "cc": ["[EMAIL_2]", 3], "meta": {"k": "[OPENAI_KEY_1]"}},
    }


def test_walkers_leave_odd_shapes_alone() -> None:
    odd: dict[str, Any] = {
        "messages": ["x", {"content": 3, "tool_calls": [None, {"function": 1}]}],
        "input": 5,
    }
    before = copy.deepcopy(odd)
    guard = _redacting()
    guard_openai(odd, guard)
    guard_anthropic({"messages": 1, "system": 2}, guard)
    guard_mcp_call({"arguments": "x"}, guard)
    assert odd == before
    assert guard.redactions == 0
