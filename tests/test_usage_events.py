"""Usage values: the event → row mapping, OpenAI usage parsing, cost estimates."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from voidllm.store.tables import usage_events
from voidllm.usage import TokenUsage, UsageEvent, UsageStatus, cost_estimate

STARTED = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def full_event(**changes: Any) -> UsageEvent:
    event = UsageEvent(
        request_id="req-1",
        key_id="k" * 36,
        key_type="user",
        org_id="o" * 36,
        team_id="t" * 36,
        user_id="u" * 36,
        service_account_id="s" * 36,
        model_name="gpt-4o",
        requested_model_name="fast",
        provider="openai",
        deployment_name="east",
        prompt_tokens=100,
        completion_tokens=50,
        total_tokens=150,
        cost_estimate=0.00125,
        duration_ms=850,
        ttft_ms=120,
        tokens_per_second=58.5,
        status_code=200,
        status=UsageStatus.OK,
        stream=True,
        source="ci",
        project="alpha",
        guard_findings='{"request":{"email":2}}',
        guard_action="redact",
        created_at=STARTED,
    )
    return attrs.evolve(event, **changes)


def test_to_row_maps_every_column() -> None:
    row = full_event().to_row()
    assert set(row) == {column.name for column in usage_events.columns}
    assert UUID7.match(row.pop("id"))
    assert row == {
        "request_id": "req-1",
        "key_id": "k" * 36,
        "key_type": "user",
        "org_id": "o" * 36,
        "team_id": "t" * 36,
        "user_id": "u" * 36,
        "service_account_id": "s" * 36,
        "model_name": "gpt-4o",
        "requested_model_name": "fast",
        "deployment_name": "east",
        "provider": "openai",
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "total_tokens": 150,
        "cost_estimate": 0.00125,
        "request_duration_ms": 850,
        "ttft_ms": 120,
        "tokens_per_second": 58.5,
        "status_code": 200,
        "status": "ok",
        "stream": True,
        "source": "ci",
        "project": "alpha",
        "guard_findings": '{"request":{"email":2}}',
        "guard_action": "redact",
        "created_at": STARTED,
    }


def test_an_event_keeps_the_id_it_was_made_with() -> None:
    event = full_event()
    assert {event.to_row()["id"] for _ in range(3)} == {event.id}
    assert len({full_event().id for _ in range(100)}) == 100


def test_optional_fields_default_to_null() -> None:
    event = UsageEvent(
        request_id=None, key_id="k", key_type="team", org_id="o", model_name="m", created_at=STARTED
    )
    row = event.to_row()
    assert row["team_id"] is row["user_id"] is row["service_account_id"] is None
    assert row["requested_model_name"] is row["deployment_name"] is row["cost_estimate"] is None
    assert row["ttft_ms"] is row["tokens_per_second"] is row["source"] is row["project"] is None
    assert (row["status"], row["stream"], row["provider"], row["total_tokens"]) == ("ok", False, "", 0)


def test_model_names_are_truncated_to_256_characters() -> None:
    long = "m" * 300
    row = full_event(model_name=long, requested_model_name=long, deployment_name=long).to_row()
    assert row["model_name"] == row["requested_model_name"] == row["deployment_name"] == "m" * 256


def test_client_supplied_text_is_clipped_to_its_column() -> None:
    row = full_event(request_id="r" * 100, source="s" * 100, project="p" * 100, provider="x" * 40).to_row()
    assert (len(row["request_id"]), len(row["source"]), len(row["project"]), len(row["provider"])) == (
        64,
        64,
        64,
        32,
    )


def test_created_at_is_stored_as_utc() -> None:
    local = datetime(2025, 3, 4, 7, 6, 7, tzinfo=timezone(timedelta(hours=2)))
    created = full_event(created_at=local).to_row()["created_at"]
    assert created == datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert created.tzinfo is UTC


def test_naive_created_at_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        full_event(created_at=datetime(2025, 1, 1))


def test_status_accepts_its_string_values_only() -> None:
    assert full_event(status="client_disconnect").status is UsageStatus.CLIENT_DISCONNECT
    assert {status.value for status in UsageStatus} == {
        "ok",
        "upstream_error",
        "client_disconnect",
        "incomplete",
        "timeout",
        "blocked",
    }
    with pytest.raises(ValueError, match="nonsense"):
        full_event(status="nonsense")


@pytest.mark.parametrize("field", ["key_id", "org_id", "key_type", "model_name"])
def test_required_identifiers_must_be_strings(field: str) -> None:
    with pytest.raises(TypeError):
        full_event(**{field: None})


def test_events_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        full_event().prompt_tokens = 1  # type: ignore[misc]


# -- TokenUsage.from_openai ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(
            {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}, (10, 5, 15), id="chat"
        ),
        pytest.param(
            {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 2},
            },
            (10, 5, 15),
            id="chat-with-details",
        ),
        pytest.param(
            {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10, "input_tokens_details": {}},
            (7, 3, 10),
            id="responses-api",
        ),
        pytest.param({"prompt_tokens": 8, "total_tokens": 8}, (8, 0, 8), id="embeddings"),
        pytest.param({"prompt_tokens": 4, "completion_tokens": 6}, (4, 6, 10), id="no-total"),
        pytest.param({"input_tokens": 11, "output_tokens": 2}, (11, 2, 13), id="input-output-no-total"),
        pytest.param({"total_tokens": 9}, (0, 0, 9), id="total-only"),
        pytest.param(
            {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 3},
            (10, 5, 15),
            id="total-too-small",
        ),
        pytest.param(
            {"prompt_tokens": "12", "completion_tokens": None, "total_tokens": [1]}, (0, 0, 0), id="garbage"
        ),
        pytest.param({"prompt_tokens": True, "completion_tokens": False}, (0, 0, 0), id="booleans"),
        pytest.param({"prompt_tokens": -5, "completion_tokens": 2}, (0, 2, 2), id="negative"),
        pytest.param({"prompt_tokens": 3.0, "completion_tokens": 2.5}, (3, 0, 3), id="floats"),
        pytest.param(
            {"prompt_tokens": float("nan"), "completion_tokens": float("inf")}, (0, 0, 0), id="nan-inf"
        ),
        pytest.param(
            {"prompt_tokens": 10**30, "completion_tokens": 5},
            (2**63 - 1, 5, 2**63 - 1),
            id="clamped-to-bigint",
        ),
        pytest.param(
            {"prompt_tokens": 1, "completion_tokens": 2, "input_tokens": 50, "output_tokens": 60},
            (1, 2, 3),
            id="chat-names-win",
        ),
    ],
)
def test_from_openai_reads_usage(usage: dict[str, Any], expected: tuple[int, int, int]) -> None:
    assert TokenUsage.from_openai(usage) == TokenUsage(*expected)


@pytest.mark.parametrize("usage", [{}, {"cost": 1}, None, [], "usage", 42, [("prompt_tokens", 1)]])
def test_from_openai_without_usage_is_none(usage: object) -> None:
    assert TokenUsage.from_openai(usage) is None


# -- cost ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "prices", "expected"),
    [
        ((1000, 500), (2.5, 10.0), 0.0075),
        ((123_456, 7_890), (0.15, 0.6), 0.023252399999999996),
        ((1, 0), (3.0, 15.0), 3e-06),
        ((2_000_000, 1_000_000), (0.0, 1.25), 1.25),
        ((1_000_000, 0), (0.5, 0.0), 0.5),
        ((0, 0), (2.5, 10.0), 0.0),
    ],
)
def test_cost_estimate(tokens: tuple[int, int], prices: tuple[float, float], expected: float) -> None:
    usage = TokenUsage(tokens[0], tokens[1], sum(tokens))
    assert cost_estimate(usage, input_per_1m=prices[0], output_per_1m=prices[1]) == expected


def test_cost_estimate_without_pricing_is_none() -> None:
    assert cost_estimate(TokenUsage(1000, 1000, 2000), input_per_1m=0.0, output_per_1m=0.0) is None


def test_package_exports() -> None:
    import types

    import voidllm.usage

    public = {name for name, value in vars(voidllm.usage).items() if not name.startswith("_")}
    submodules = {name for name in public if isinstance(getattr(voidllm.usage, name), types.ModuleType)}
    # submodules become attributes once anything imports them; the services are imported by the server
    assert submodules <= {
        "batches",
        "cost",
        "events",
        "metrics",
        "writer",
        "rollups",
        "retention",
        "spill",
        "incidents",
    }
    assert {"cost", "events", "writer"} <= submodules
    assert set(voidllm.usage.__all__) == public - submodules
