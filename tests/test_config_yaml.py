"""Reading voidllm.yaml: ${VAR} interpolation, YAML typing and syntax errors."""

from __future__ import annotations

import textwrap

import pytest

from voidllm.config import Config, ConfigError, parse_config
from voidllm.config.yamlread import interpolate, read_yaml

KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 bytes


def load(text: str, **environ: str) -> Config:
    return parse_config(textwrap.dedent(text), environ={"VOIDLLM_ENCRYPTION_KEY": KEY, **environ})


def problems(text: str, **environ: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load(text, **environ)
    return info.value.problems


@pytest.mark.parametrize(
    ("text", "environ", "result"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A}", {}, ""),
        ("${A}", {"A": ""}, ""),
        ("${A:-dflt}", {}, "dflt"),
        ("${A:-dflt}", {"A": ""}, "dflt"),
        ("${A:-dflt}", {"A": "set"}, "set"),
        ("${A:-}", {}, ""),
        ("${A:-postgres://u:p@h:5432/db}", {}, "postgres://u:p@h:5432/db"),
        ("${A:-two words: here}", {}, "two words: here"),
        ("pre-${A}-${B:-b}-post", {"A": "a"}, "pre-a-b-post"),
        ("${1A} ${A-x} $A", {"A": "a"}, "${1A} ${A-x} $A"),
    ],
)
def test_interpolate(text: str, environ: dict[str, str], result: str) -> None:
    assert interpolate(text, environ) == result


def test_variable_is_substituted_in_a_value() -> None:
    cfg = load("logging:\n  level: ${LEVEL}\n", LEVEL="debug")
    assert cfg.logging.level == "debug"


def test_unset_variable_leaves_the_key_unset_so_the_default_applies() -> None:
    cfg = load("server:\n  proxy:\n    host: ${HOST}\n")
    assert cfg.server.proxy.host == "0.0.0.0"


def test_quoted_unset_variable_is_an_empty_string() -> None:
    cfg = load('models:\n  - {name: m, provider: openai, base_url: "http://up", api_key: "${NOPE}"}\n')
    assert cfg.models[0].api_key == ""


def test_empty_variable_uses_the_default() -> None:
    cfg = load("database:\n  dsn: ${DSN:-/var/lib/voidllm/db.sqlite}\n", DSN="")
    assert cfg.database.dsn == "/var/lib/voidllm/db.sqlite"


def test_default_with_colons_and_spaces() -> None:
    cfg = load(
        """\
        database:
          dsn: ${DSN:-postgresql://user:secret@db:5432/voidllm}
        settings:
          bootstrap:
            org_name: "${ORG:-Acme: Research Lab}"
            admin_email: ${EMAIL:-ops team@example.com}
        """
    )
    assert cfg.database.dsn == "postgresql://user:secret@db:5432/voidllm"
    assert cfg.database.driver == "postgres"
    assert cfg.settings.bootstrap.org_name == "Acme: Research Lab"
    assert cfg.settings.bootstrap.org_slug == "acme-research-lab"
    assert cfg.settings.bootstrap.admin_email == "ops team@example.com"


def test_value_with_colon_space_and_hash_stays_one_plain_string() -> None:
    cfg = load("settings:\n  bootstrap:\n    org_name: ${ORG}\n", ORG="a: b # not a comment\nc: d")
    assert cfg.settings.bootstrap.org_name == "a: b # not a comment\nc: d"


def test_comments_are_not_interpolated() -> None:
    # Interpolating the raw text (as the Go original does) would turn this comment into a second key.
    text = "logging:\n  # level: ${EVIL}\n  format: text\n"
    cfg = load(text, EVIL="x\n  level: debug")
    assert cfg.logging.level == "info"
    assert cfg.logging.format == "text"


def test_unquoted_interpolation_is_typed_like_yaml() -> None:
    cfg = load(
        """\
        server:
          proxy:
            port: ${PORT:-8080}
          workers: ${WORKERS}
        settings:
          usage:
            drop_on_full: ${DROP}
          circuit_breaker:
            enabled: ${CB:-false}
        models:
          - name: m
            provider: openai
            base_url: http://up
            pricing:
              input_per_1m: ${PRICE}
        """,
        PORT="9090",
        WORKERS="4",
        DROP="false",
        PRICE="1.5",
    )
    assert cfg.server.proxy.port == 9090
    assert cfg.server.workers == 4
    assert cfg.settings.usage.drop_on_full is False
    assert cfg.settings.circuit_breaker.enabled is False
    assert cfg.models[0].pricing.input_per_1m == 1.5


def test_quoted_interpolation_of_a_number_field_is_a_type_error() -> None:
    assert problems('server:\n  proxy:\n    port: "${PORT}"\n', PORT="9090") == (
        "server.proxy.port: expected an integer, got a string",
    )


def test_number_like_value_keeps_its_text_in_a_string_field() -> None:
    cfg = load(
        """\
        models:
          - name: m
            provider: openai
            base_url: http://up
            api_key: ${KEY}
            gcp_project: ${PROJECT}
        """,
        KEY="0123",
        PROJECT="1.10",
    )
    assert cfg.models[0].api_key == "0123"
    assert cfg.models[0].gcp_project == "1.10"


def test_unquoted_number_in_a_string_field_asks_for_quotes() -> None:
    assert problems("models:\n  - {name: 42, provider: openai, base_url: 'http://up'}\n") == (
        "models[0].name: expected a string, got an integer (put the value in quotes)",
    )


def test_dates_stay_strings() -> None:
    cfg = load(
        "models:\n  - {name: m, provider: azure, base_url: 'https://x', azure_deployment: d,"
        " azure_api_version: 2024-10-21}\n"
    )
    assert cfg.models[0].azure_api_version == "2024-10-21"


def test_null_value_means_unset() -> None:
    cfg = load("server:\n  proxy:\n    port:\n    host: ~\nmodels:\n")
    assert cfg.server.proxy.port == 8080
    assert cfg.server.proxy.host == "0.0.0.0"
    assert cfg.models == ()


def test_empty_document_gives_defaults() -> None:
    assert load("# nothing here\n") == Config(settings=load("").settings)
    assert load("").server.proxy.port == 8080


def test_yaml_syntax_error_names_the_line() -> None:
    assert problems("server:\n  proxy:\n    port: [8080\n") == (
        "invalid YAML at line 4, column 1: expected ',' or ']', but got '<stream end>'",
    )


def test_duplicate_key_is_an_error() -> None:
    assert problems("logging:\n  level: info\n  level: debug\n") == (
        "invalid YAML at line 3, column 3: duplicate key 'level'",
    )


def test_root_must_be_a_mapping() -> None:
    assert problems("- a\n- b\n") == ("<root>: expected a mapping, got a list",)


def test_read_yaml_is_safe() -> None:
    with pytest.raises(Exception, match="could not determine a constructor"):
        read_yaml("!!python/object/apply:os.system ['true']", {})
