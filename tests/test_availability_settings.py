"""Settings for features this version does not have stop startup instead of being silently ignored."""

from __future__ import annotations

import pytest

from voidllm.availability import check_available, unavailable_settings
from voidllm.config import ConfigError, parse_config

BASE = "settings:\n  encryption_key: sixteen-chars-or-more\n"


def test_retention_is_available() -> None:
    text = BASE + "  retention:\n    usage_events: 90d\n    audit_logs: 365d\n    mcp_tool_calls: 30d\n"
    assert unavailable_settings(parse_config(text, environ={})) == []


def test_mcp_servers_are_available() -> None:
    text = BASE + "mcp_servers:\n  - {name: a, alias: a, url: 'http://127.0.0.1:1'}\n"
    assert unavailable_settings(parse_config(text, environ={})) == []


def test_defaults_and_the_example_config_are_available() -> None:
    assert unavailable_settings(parse_config(BASE, environ={})) == []
    with open("config.example.yaml") as handle:
        example = parse_config(handle.read(), environ={"VOIDLLM_ENCRYPTION_KEY": "x" * 20})
    assert unavailable_settings(example) == []


def test_a_separate_admin_port_is_available() -> None:
    text = BASE + "server:\n  admin:\n    port: 9090\n"
    assert unavailable_settings(parse_config(text, environ={})) == []


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        (
            "settings:\n  encryption_key: sixteen-chars-or-more\n"
            "  mcp:\n    code_mode:\n      enabled: true\n",
            "settings.mcp.code_mode.enabled",
        ),
    ],
)
def test_each_unavailable_feature_is_named(yaml_text: str, key: str) -> None:
    text = yaml_text if "encryption_key" in yaml_text else BASE + yaml_text
    config = parse_config(text, environ={})
    with pytest.raises(ConfigError) as caught:
        check_available(config)
    assert [p.split(":")[0] for p in caught.value.problems] == [key]
